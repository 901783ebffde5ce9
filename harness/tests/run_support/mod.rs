//! Shared by the `run_*` integration tests: a release `node` binary built
//! with the `planted-mistakes` feature, and a way to run `harness run`.
//!
//! The node is built once per test binary with
//! `cargo build --release -p raftkv-node --features planted-mistakes
//! --target-dir <target>/planted`, a target dir of its own so that the
//! nested cargo does not wait for the lock the outer `cargo test` holds.
//! With `RAFTKV_PLANT` unset that binary is the correct node (the planted
//! code paths are switched off); with it set, one mistake is active.
//! `RAFTKV_PLANTED_NODE=/path/to/node` skips the build and uses that binary
//! (it must have been built with the feature).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The target dir the harness binary was built in.
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    // <target>/<profile>/harness
    exe.parent()
        .and_then(Path::parent)
        .expect("harness binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// Builds (once) and returns the node binary with planted mistakes.
pub fn planted_node() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        if let Some(bin) = std::env::var_os("RAFTKV_PLANTED_NODE") {
            return PathBuf::from(bin);
        }
        let target = target_dir().join("planted");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args([
                "build",
                "--release",
                "-p",
                "raftkv-node",
                "--features",
                "planted-mistakes",
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("run cargo build for the node");
        assert!(status.success(), "building the planted node failed");
        let bin = target.join("release").join("node");
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Runs one `harness run` at a time per test binary: runs in parallel on
/// two cores would mostly measure the machine's load.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct RunResult {
    pub code: i32,
    pub output: Output,
    pub elapsed: Duration,
    pub run_dir: PathBuf,
}

impl RunResult {
    pub fn summary(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.run_dir.join("summary.json"))
            .unwrap_or_else(|e| panic!("summary.json of {}: {e}", self.run_dir.display()));
        serde_json::from_str(&text).expect("summary.json is JSON")
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {} after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.elapsed,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// Runs `harness run --quiet --out OUT ARGS` with `RAFTKV_PLANT=plant`.
pub fn harness_run(out: &Path, plant: Option<&str>, args: &[&str]) -> RunResult {
    harness_run_on(&planted_node(), out, plant, args)
}

/// [`harness_run`] with another node binary.
pub fn harness_run_on(node: &Path, out: &Path, plant: Option<&str>, args: &[&str]) -> RunResult {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.arg("run")
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .arg("--node-bin")
        .arg(node)
        .args(args)
        .env("RUST_LOG", "info");
    match plant {
        Some(p) => cmd.env("RAFTKV_PLANT", p),
        None => cmd.env_remove("RAFTKV_PLANT"),
    };
    let start = Instant::now();
    let output = cmd.output().expect("run harness");
    let elapsed = start.elapsed();
    let run_dir = std::fs::canonicalize(out.join("latest")).unwrap_or_else(|_| out.join("latest"));
    RunResult {
        code: output.status.code().unwrap_or(-1),
        output,
        elapsed,
        run_dir,
    }
}

/// Pids of live processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        // Zombies have an empty command line and are not running.
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}
