//! The time and memory limits hold, also for values built by `append`, and
//! giving up costs no more than the limit.

mod common;

use common::{checker, code, s, stderr, write};
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// Key "0" of Porcupine's c50-bad history: appends over 230 ops whose
/// search runs for minutes, building ever longer values.
fn hard_append_key() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine/c50-bad.txt.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| l.contains(":key \"0\""))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

/// Under a 256 MiB address-space limit and a 64 MiB memory limit the search
/// must stop with "unknown": the values its appends build are counted. (If
/// they were not, as before, it would keep about 4 times the limit and
/// abort when the address space ran out.)
#[test]
fn memory_limit_counts_values_built_by_append() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key0.txt", hard_append_key());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checker"));
    cmd.args(["check", s(&key), "--model", "kv", "--threads", "1"])
        .args([
            "--memo-limit-mb",
            "64",
            "--time-limit",
            "60s",
            "--json",
            "--timings",
        ]);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let limit = 256 << 20;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let v = json(&o);
    assert!(
        v["reason"].as_str().unwrap().contains("memo memory limit"),
        "{v}"
    );
    let peak = v["timings"]["memo_peak_bytes"].as_u64().unwrap();
    assert!(peak <= 64 << 20 && peak > 16 << 20, "peak {peak}");
}

/// Stopping at the time limit is on time, and freeing what the search built
/// is not counted as reading the file. The limit is 4 s so that the search
/// builds enough (hundreds of MiB) for its freeing to show; the slack for a
/// loaded machine is generous.
#[test]
fn time_limit_is_held_and_freeing_is_not_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key0.txt", hard_append_key());
    let start = std::time::Instant::now();
    let o = checker(&[
        "check",
        s(&key),
        "--model",
        "kv",
        "--threads",
        "1",
        "--time-limit",
        "4s",
        "--json",
        "--timings",
    ]);
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(code(&o), 2);
    let v = json(&o);
    assert!(v["reason"].as_str().unwrap().contains("time limit"), "{v}");
    let decide = v["timings"]["decide_ms"].as_f64().unwrap();
    let parse = v["timings"]["parse_ms"].as_f64().unwrap();
    assert!((4000.0..5500.0).contains(&decide), "decide {decide} ms");
    assert!(parse < 200.0, "parse {parse} ms for 30 KB");
    assert!(wall < 7.0, "{wall} s in all");
}
