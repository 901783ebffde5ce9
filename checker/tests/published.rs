//! Verdicts on histories published with Knossos and Porcupine agree with
//! what those projects' own test suites assert.
//!
//! Porcupine's key-value histories (MIT) are kept in `tests/data/porcupine`
//! and always checked. The rest of their data stays in their repositories:
//! `every_published_history` reads checkouts named by `KNOSSOS_DIR`
//! (github.com/jepsen-io/knossos) and `PORCUPINE_DIR`
//! (github.com/anishathalye/porcupine) and is run with `--ignored`.

use raftkv_checker::format::edn;
use raftkv_checker::{
    CheckError, CheckOptions, Format, ModelKind, Outcome, Verdict, check_file, check_text,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn kv_options() -> CheckOptions {
    CheckOptions {
        model: ModelKind::Kv,
        time_limit: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    }
}

/// Porcupine's `checkKv`: the `-ok` files are linearizable, `-bad` are not.
/// One thread, so that a hard key cannot be left to another thread while a
/// violation on an easy key is found (c50-bad: Porcupine answers in 5 ms).
#[test]
fn porcupine_key_value_histories() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine");
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let text = gunzip(&dir.join(format!("{name}.txt.gz")));
        let opts = CheckOptions {
            threads: 1,
            ..kv_options()
        };
        let out = check_text(&text, &opts).unwrap();
        assert_eq!(out.format, Format::PorcupineKv);
        let expected = if name.ends_with("-ok") {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        assert_eq!(out.verdict, expected, "{name}: {}", out.summary());
    }
}

fn env_dir(var: &str) -> PathBuf {
    let dir = std::env::var_os(var).unwrap_or_else(|| {
        panic!("set {var} to a checkout of the project whose data this test reads")
    });
    PathBuf::from(dir)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// The 0-based position of the event starting on `line` among the file's
/// events: Knossos's `:index` for histories without one.
fn knossos_index(text: &str, line: usize) -> usize {
    let events = edn::parse(text).unwrap();
    events.iter().position(|e| e.line == line).unwrap()
}

fn verdict_matches(expected_valid: bool, out: &Result<Outcome, CheckError>) -> bool {
    match out {
        Ok(o) if expected_valid => o.verdict == Verdict::Linearizable,
        Ok(o) => o.verdict == Verdict::NotLinearizable,
        Err(_) => false,
    }
}

/// Every history Knossos and Porcupine publish, against their tests' verdicts.
#[test]
#[ignore = "reads KNOSSOS_DIR and PORCUPINE_DIR checkouts"]
fn every_published_history() {
    let knossos = env_dir("KNOSSOS_DIR");
    let porcupine = env_dir("PORCUPINE_DIR");
    let mut rows: Vec<(String, usize, usize)> = Vec::new();
    let mut disagreements = Vec::new();
    let mut tally = |group: &str, file: &Path, ok: bool, out: &Result<Outcome, CheckError>| {
        match rows.iter_mut().find(|r| r.0 == group) {
            Some(r) => {
                r.1 += 1;
                r.2 += ok as usize;
            }
            None => rows.push((group.to_string(), 1, ok as usize)),
        }
        if !ok {
            let got = match out {
                Ok(o) => o.verdict.as_str().to_string(),
                Err(e) => e.to_string(),
            };
            disagreements.push(format!("{}: {got}", file.display()));
        }
    };

    // Knossos's core_test/test-examples: data/cas-register/{good,bad} with
    // (cas-register 0), data/multi-register/good with
    // (multi-register {:x 0 :y 0}).
    // Knossos calls a history in which every op failed valid; this checker
    // says "unknown" unless told otherwise (see all_failed below).
    let initial_0 = CheckOptions {
        model: ModelKind::CasRegister,
        initial: Some(raftkv_checker::Val::Int(0)),
        require_ok: false,
        ..CheckOptions::default()
    };
    let mut all_failed = 0;
    for (sub, valid) in [("good", true), ("bad", false)] {
        for f in files(&knossos.join("data/cas-register").join(sub), "edn") {
            let out = check_file(&f, &initial_0);
            // A history of nemesis events only has nothing to check: Knossos
            // calls it valid, this checker refuses it (exit 3) by design.
            let only_nemesis = matches!(&out, Err(CheckError::Parse { expected, .. })
                if expected.contains("only") && expected.contains("nemesis events"));
            if only_nemesis {
                tally(
                    &format!("knossos cas-register/{sub}: nemesis events only, refused"),
                    &f,
                    true,
                    &out,
                );
                continue;
            }
            tally(
                &format!("knossos cas-register/{sub}"),
                &f,
                verdict_matches(valid, &out),
                &out,
            );
            let strict = CheckOptions {
                require_ok: true,
                ..initial_0.clone()
            };
            if let Ok(o) = check_file(&f, &strict)
                && o.verdict == Verdict::Unknown
            {
                assert!(
                    o.history
                        .ops
                        .iter()
                        .all(|op| op.status != raftkv_checker::Status::Ok)
                );
                all_failed += 1;
            }
        }
    }
    let multi = CheckOptions {
        initial: Some(edn::parse_value("{:x 0 :y 0}").unwrap()),
        ..CheckOptions::default()
    };
    for f in files(&knossos.join("data/multi-register/good"), "edn") {
        let out = check_file(&f, &multi);
        tally(
            "knossos multi-register/good",
            &f,
            verdict_matches(true, &out),
            &out,
        );
    }

    // Knossos's report_test renders the failure of data/mutex/bad/etcd.edn.
    for f in files(&knossos.join("data/mutex/bad"), "edn") {
        let out = check_file(&f, &CheckOptions::default());
        tally("knossos mutex/bad", &f, verdict_matches(false, &out), &out);
    }

    // The op each of Knossos's linear_test/wgl_test failure tests names:
    // (file, initial 0?, process, value read, :index of the completion).
    for (file, zero, process, value, index) in [
        ("bad-analysis.edn", true, 21, 2, 14),
        ("cas-failure.edn", true, 70, 0, 491),
        ("immediate-failure.edn", true, 1, 3, 3),
        ("rethink-fail-minimal.edn", false, 1, 3, 4),
        ("rethink-fail-smaller.edn", false, 12, 3, 217),
    ] {
        let path = knossos.join("data/cas-register/bad").join(file);
        let opts = CheckOptions {
            model: ModelKind::CasRegister,
            initial: zero.then_some(raftkv_checker::Val::Int(0)),
            ..CheckOptions::default()
        };
        let out = check_file(&path, &opts).unwrap();
        let op = &out.history.ops[out.failure.as_ref().unwrap().op.unwrap()];
        let text = std::fs::read_to_string(&path).unwrap();
        let h = &out.history;
        let got = (
            op.process,
            h.f(op).to_string(),
            h.output(op),
            knossos_index(&text, op.complete_line as usize),
        );
        let want = (
            process,
            "read".to_string(),
            raftkv_checker::Val::Int(value),
            index,
        );
        let ok = got == want;
        let blamed = format!("{got:?}");
        tally("knossos failing op named", &path, ok, &Ok(out));
        assert!(ok, "{file}: blamed {blamed}, Knossos's tests name {want:?}");
    }

    // Porcupine's TestEtcdJepsen*: checkJepsen(t, N, expected).
    let tests = std::fs::read_to_string(porcupine.join("porcupine_test.go")).unwrap();
    let cas = CheckOptions {
        model: ModelKind::CasRegister,
        ..CheckOptions::default()
    };
    for line in tests.lines().filter(|l| l.contains("checkJepsen(t, ")) {
        let args: Vec<&str> = line
            .split("checkJepsen(t, ")
            .nth(1)
            .unwrap()
            .trim_end_matches(')')
            .split(", ")
            .collect();
        let n: u32 = args[0].parse().unwrap();
        let f = porcupine.join(format!("test_data/jepsen/etcd_{n:03}.log"));
        let out = check_file(&f, &cas);
        tally(
            "porcupine jepsen etcd",
            &f,
            verdict_matches(args[1] == "true", &out),
            &out,
        );
    }
    // Porcupine's TestKv*: checkKv(t, "NAME", expected, partitioned).
    for line in tests
        .lines()
        .filter(|l| l.contains("checkKv(t, \"") && l.contains(", true)"))
    {
        let name = line.split('"').nth(1).unwrap();
        let valid = line.contains(&format!("\"{name}\", true"));
        let f = porcupine.join(format!("test_data/kv/{name}.txt"));
        let out = check_file(&f, &kv_options());
        tally("porcupine kv", &f, verdict_matches(valid, &out), &out);
    }

    println!(
        "by default (without --allow-no-ok): {all_failed} Knossos histories in which every op failed are unknown"
    );
    let mut table = String::from("| histories | checked | agree |\n|---|---|---|\n");
    for (group, n, ok) in &rows {
        table.push_str(&format!("| {group} | {n} | {ok} |\n"));
    }
    println!("{table}");
    assert!(
        disagreements.is_empty(),
        "{table}\ndisagreements:\n{}",
        disagreements.join("\n")
    );
}
