//! `harness bench` starts a local cluster, measures for 2 s and prints
//! figures that hang together.

mod cli_support;

use std::process::Command;

#[test]
fn bench_runs_two_seconds_and_reports_json() {
    let out = Command::new(cli_support::HARNESS)
        .args([
            "bench",
            "--nodes",
            "3",
            "--concurrency",
            "8",
            "--duration",
            "2s",
            "--warmup",
            "200ms",
            "--op",
            "mixed",
            "--json",
            "--node-bin",
        ])
        .arg(cli_support::node_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let ops = report["ops"].as_u64().unwrap();
    assert!(ops > 0, "{report}");
    let rate = report["ops_per_s"].as_f64().unwrap();
    assert!((rate - ops as f64 / 2.0).abs() < 1.0, "{report}");
    let lat = &report["latency_ms"];
    let (p50, p99, p999) = (
        lat["p50"].as_f64().unwrap(),
        lat["p99"].as_f64().unwrap(),
        lat["p999"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{report}");
    assert_eq!(report["op"], "mixed");
}

#[test]
fn bench_rejects_a_bad_duration() {
    let out = Command::new(cli_support::HARNESS)
        .args(["bench", "--duration", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a duration"), "{stderr}");
}

#[test]
fn bench_against_an_unreachable_cluster_fails_at_once() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = Command::new(cli_support::HARNESS)
        .args(["bench", "--cluster", &format!("127.0.0.1:{port}")])
        .args(["--duration", "30s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no node answered"), "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
