//! Conventions every subcommand keeps: usage errors exit 3 with a message
//! that names the flag, durations take one syntax, a closed output pipe
//! ends the process quietly, and a cluster that fails to start shows the
//! node's own error and keeps its log.

mod cli_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::{HARNESS, client, node_bin};

fn harness(args: &[&str]) -> (i32, String) {
    let out = Command::new(HARNESS)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run harness");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_3_and_name_what_is_wrong() {
    for (args, expect) in [
        (
            &["cluster", "--base-port", "0"][..],
            "--base-port must be a port number",
        ),
        (&["cluster", "--nodes", "0"], "--nodes must be at least 1"),
        (
            &["cluster", "--nodes", "3", "--base-port", "65534"],
            "beyond 65535",
        ),
        (&["cluster", "--leader-timeout", "-5s"], "negative"),
        (&["cluster", "--leader-timeout", "5x"], "unknown unit"),
        (&["run", "--duration", "-5s"], "negative"),
        (&["bench", "--duration", "1e20"], "unknown unit"),
        (&["bench", "--duration", "-1s"], "negative"),
        (&["bench", "--concurrency", "0"], "--concurrency"),
        (&["bench", "--cluster", "localhost"], "has no port"),
        (&["check", "--time-limit", "soon", "x"], "not a duration"),
        (&["frobnicate"], "unrecognized subcommand"),
    ] {
        let (code, stderr) = harness(args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
    for (args, expect) in [
        (&["--cluster", "127.0.0.1", "get", "k"][..], "has no port"),
        (&["--cluster", "127.0.0.1:0", "get", "k"], "bad port"),
        (
            &["--cluster", "127.0.0.1:1", "--timeout", "-5s", "get", "k"],
            "negative",
        ),
        (
            &["--cluster", "127.0.0.1:1", "--client-id", "0", "get", "k"],
            "non-zero",
        ),
        (
            &["--cluster", "127.0.0.1:1", "set", "k"],
            "usage: set KEY VALUE",
        ),
    ] {
        let (code, stderr) = harness(&[&["client"][..], args].concat());
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn the_prompt_does_not_claim_a_connection_nobody_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prompt = Command::new(HARNESS)
        .args(["client", "--cluster", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(prompt.stdin.take());
    let out = prompt.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no node answers"), "{stdout}");
    assert!(!stdout.contains("connected"), "{stdout}");
}

/// Runs `harness ARGS` with its stdout a pipe whose reading end is already
/// closed, as `| head -1` leaves it once `head` exits (closed before the
/// first write, so that the outcome does not depend on timing); returns how
/// it ended and its stderr.
fn into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let mut child = Command::new(HARNESS)
        .args(args)
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../histories/examples/kill-linearizable")
        .canonicalize()
        .unwrap();
    // Check a copy: `harness check` rewrites the report of the run it checks.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&example).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let (status, stderr) = into_closed_pipe(&["check", dir.path().to_str().unwrap(), "--no-write"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGPIPE as i32),
        "{status:?}: {stderr}"
    );
}

#[test]
fn a_node_that_cannot_start_shows_its_error_and_keeps_its_log() {
    // Hold a port so that node 1 cannot listen on it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(HARNESS)
        .args(["cluster", "--nodes", "1", "--base-port", &port])
        .arg("--node-bin")
        .arg(node_bin())
        .args(["--leader-timeout", "20s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    let kept: PathBuf = stderr
        .lines()
        .find_map(|l| {
            l.split_once("logs kept in ")
                .map(|(_, d)| PathBuf::from(d.trim()))
        })
        .unwrap_or_else(|| panic!("no kept directory named: {stderr}"));
    let log = std::fs::read_to_string(kept.join("node-1.log")).unwrap();
    assert!(log.contains("cannot listen on"), "{log}");
    std::fs::remove_dir_all(&kept).unwrap();
}

#[test]
fn an_unreachable_cluster_is_a_failure_not_a_usage_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = client(
        &format!("127.0.0.1:{port}"),
        &["--timeout", "500ms", "get", "k"],
    );
    assert_eq!(code, 1, "{err}");
}
