//! `harness client` against a real 3-node cluster: one-shot commands, the
//! interactive prompt fed through stdin, and redirects from a follower.

mod cli_support;

use std::io::Write;
use std::process::{Command, Stdio};

use cli_support::{ClusterProc, HARNESS, client};

#[test]
fn one_shot_commands_prompt_and_redirects() {
    let cluster = ClusterProc::start(3);
    let all = cluster.cluster_arg();

    let (code, out, err) = client(&all, &["set", "k", "v1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("OK (index "), "{out}");

    let (code, out, _) = client(&all, &["get", "k"]);
    assert_eq!((code, out.trim()), (0, "v1"));

    let (code, out, _) = client(&all, &["get", "missing"]);
    assert_eq!((code, out.trim()), (0, "(absent)"));

    let (code, out, _) = client(&all, &["cas", "k", "v1", "v2"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = client(&all, &["cas", "k", "v1", "v3"]);
    assert_eq!(code, 2);
    assert_eq!(out.trim(), r#"not applied: value is "v2""#);
    let (code, _, _) = client(&all, &["cas", "new", "-", "x"]);
    assert_eq!(code, 0);
    let (code, out, _) = client(&all, &["cas", "new", "absent", "y"]);
    assert_eq!((code, out.trim()), (2, r#"not applied: value is "x""#));

    let (code, out, _) = client(&all, &["noop"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("OK (index "), "{out}");

    let (code, out, _) = client(&all, &["status"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(out.matches(" leader term ").count(), 1, "{out}");

    // Only a follower's address: the client follows the not-leader hint.
    let follower = cluster.follower_addr();
    let (code, _, err) = client(&follower, &["set", "via-follower", "yes"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = client(&follower, &["get", "via-follower"]);
    assert_eq!((code, out.trim()), (0, "yes"));

    // A reused client id continues its session across invocations.
    for value in ["a", "b"] {
        let (code, _, err) = client(&all, &["--client-id", "77", "set", "s", value]);
        assert_eq!(code, 0, "{err}");
    }
    let (_, out, _) = client(&all, &["get", "s"]);
    assert_eq!(out.trim(), "b");

    // Bad input: plain messages, non-zero status.
    let (code, _, err) = client(&all, &["set", "", "v"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: invalid argument"), "{err}");
    let (code, _, err) = client(&all, &["set", "k"]);
    assert_eq!(code, 3);
    assert!(err.contains("usage: set KEY VALUE"), "{err}");

    // The prompt, fed through stdin.
    let mut prompt = Command::new(HARNESS)
        .args(["client", "--cluster", &all])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    prompt
        .stdin
        .take()
        .unwrap()
        .write_all(b"help\nset p \"two words\"\nget p\nfrob\ncas p - z\nquit\nget p\n")
        .unwrap();
    let out = prompt.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("cas KEY FROM TO"), "help printed: {stdout}");
    assert!(stdout.contains("two words"), "{stdout}");
    assert!(
        stdout.contains(r#"not applied: value is "two words""#),
        "{stdout}"
    );
    assert!(stderr.contains("unknown command `frob`"), "{stderr}");
    // `quit` ends the prompt: the `get` after it never ran.
    assert_eq!(stdout.matches("two words").count(), 2, "{stdout}");
}

#[test]
fn unreachable_cluster_is_a_plain_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = client(
        &format!("127.0.0.1:{port}"),
        &["--timeout", "1", "set", "k", "v"],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: unavailable (nothing applied)"),
        "{err}"
    );
}
