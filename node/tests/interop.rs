//! Stock Python gRPC tooling against a real cluster: stubs generated from
//! `proto/` by `grpc_tools.protoc`, the Kv RPCs through them, the standard
//! health service, and server reflection driving a stub built only from the
//! reflected descriptor (what generic gRPC tools do).
//!
//! Needs `python3` with grpcio, grpcio-tools, grpcio-health-checking and
//! grpcio-reflection; the test fails, naming them, when they are missing.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PIP_INSTALL: &str = "pip install grpcio==1.85.3 grpcio-tools==1.85.1 \
     grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 protobuf==7.36.2";
/// Exit code of the script when a Python package is missing.
const EXIT_MISSING_PACKAGE: i32 = 3;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// A child in its own process group, SIGKILLed as a group when dropped so
/// that the protoc it runs goes too.
struct GroupGuard(Child);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.0.id() as i32)), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kv_client.py")
}

/// Runs the interop script against `addrs`; returns its exit status and its
/// stdout and stderr.
fn run_script(addrs: &str, out_dir: &Path) -> (ExitStatus, String) {
    let stdout_path = out_dir.join("interop.stdout");
    let stderr_path = out_dir.join("interop.stderr");
    let spawned = Command::new("python3")
        .arg(script())
        .arg(addrs)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create stdout file"))
        .stderr(File::create(&stderr_path).expect("create stderr file"))
        .process_group(0)
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run python3 ({e}); the interop test needs python3 with pip, then: {PIP_INSTALL}"
        ),
    };
    let mut guard = GroupGuard(child);
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("wait for python3") {
            break status;
        }
        if Instant::now() > deadline {
            drop(guard);
            let output = read_output(&stdout_path, &stderr_path);
            panic!(
                "{} did not finish within {SCRIPT_TIMEOUT:?}:\n{output}",
                script().display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(guard);
    (status, read_output(&stdout_path, &stderr_path))
}

fn read_output(stdout: &Path, stderr: &Path) -> String {
    format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        std::fs::read_to_string(stdout).unwrap_or_default(),
        std::fs::read_to_string(stderr).unwrap_or_default()
    )
}

#[test]
fn python_grpcio_client_health_and_reflection() {
    let cluster = Cluster::start(3, &[]);
    common::run(cluster.wait_leader(&[0, 1, 2], Duration::from_secs(10)));
    let addrs = (0..cluster.nodes.len())
        .map(|i| cluster.addr(i))
        .collect::<Vec<_>>()
        .join(",");

    let (status, output) = run_script(&addrs, cluster.dir.path());
    println!("{output}");
    if status.code() == Some(EXIT_MISSING_PACKAGE) {
        panic!(
            "python3 lacks a gRPC package the interop test needs; install them with: {PIP_INSTALL}\n{output}"
        );
    }
    if !status.success() {
        cluster.dump_logs();
    }
    assert!(
        status.success(),
        "{} {addrs} failed ({status}):\n{output}",
        script().display()
    );
    assert!(
        output.contains("PASS:"),
        "the script exited 0 without reporting PASS:\n{output}"
    );
}
