//! Ctrl-C during `harness run`: exit 3 (harness error) and no node process
//! left behind. Also: bad flags give a clear message and exit 3.

mod run_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use run_support::{planted_node, processes_mentioning, serial};

#[test]
fn ctrl_c_stops_every_node() {
    let _serial = serial();
    let node = planted_node();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "run",
            "--quiet",
            "--nodes",
            "3",
            "--duration",
            "60s",
            "--nemesis",
            "pause",
        ])
        .arg("--out")
        .arg(out.path())
        .arg("--node-bin")
        .arg(&node)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the nodes are up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_mentioning(&dir).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(processes_mentioning(&dir).len() >= 3, "nodes never started");
    std::thread::sleep(Duration::from_secs(2));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("harness did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        processes_mentioning(&dir).is_empty(),
        "node processes outlived the harness"
    );
}

#[test]
fn bad_flags_are_named() {
    let out = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("run")
            .arg("--out")
            .arg(out.path())
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--nemesis", "flood", "--node-bin", "/bin/true"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("\"flood\""), "{err}");
    let (code, err) = run(&["--node-bin", "/nonexistent/node"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("/nonexistent/node"), "{err}");
    let (code, err) = run(&["--mix", "set=1,put=2", "--node-bin", "/bin/true"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("put"), "{err}");
    // Settings that would make a run meaningless are refused before anything starts.
    for (args, says) in [
        (
            &["--concurrency", "0"][..],
            "--concurrency must be at least 1",
        ),
        (
            &["--duration", "0s"][..],
            "--duration must be longer than 0",
        ),
        (
            &["--nodes", "1", "--nemesis", "partition"][..],
            "a 1-node cluster has no network",
        ),
        (
            &[
                "--nodes",
                "2",
                "--nemesis",
                "kill",
                "--nemesis-target",
                "minority",
            ][..],
            "loses the quorum",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--node-bin", "/bin/true"]);
        let (code, err) = run(&all);
        assert_eq!(code, Some(3), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "a refused run creates no run directory"
    );
}
