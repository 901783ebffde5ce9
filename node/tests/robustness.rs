//! Durability across crashes, damaged logs, bad flags and bad input, with
//! real node processes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;
use raftkv::proto::{CasRequest, GetRequest, NoOpRequest, Session, SetRequest};
use tonic::Code;

/// Writes `n` keys through a single-node cluster and SIGKILLs it.
async fn write_then_crash(cluster: &mut Cluster, n: u64) -> Vec<(String, Vec<u8>)> {
    let leader = cluster.wait_leader(&[0], Duration::from_secs(10)).await;
    let mut acked = Vec::new();
    for seq in 1..=n {
        let key = format!("key-{seq}");
        let value = vec![seq as u8; 100];
        set(&cluster.addr(leader), 5, seq, &key, &value)
            .await
            .unwrap();
        acked.push((key, value));
    }
    cluster.kill(0);
    acked
}

/// (offset, length) of every record: `[len u32][crc u32][body of len bytes]`.
fn records(log: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= log.len() {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        if at + 8 + len > log.len() {
            break;
        }
        out.push((at, 8 + len));
        at += 8 + len;
    }
    out
}

#[test]
fn torn_wal_tail_is_cut_and_acknowledged_writes_survive() {
    run(async {
        let mut cluster = Cluster::start(1, &[]);
        let acked = write_then_crash(&mut cluster, 30).await;
        let wal = wal_file(&cluster.nodes[0].data_dir);
        let before = std::fs::read(&wal).unwrap();
        // A record whose header promises more bytes than were written.
        let mut torn = Vec::new();
        torn.extend_from_slice(&200u32.to_le_bytes());
        torn.extend_from_slice(&[0xab, 0xcd, 0xef, 0x01, 2, 9, 9]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&wal)
            .unwrap()
            .write_all(&torn)
            .unwrap();

        cluster.spawn(0);
        for (key, value) in &acked {
            assert_eq!(
                get_on_cluster(&cluster, &[0], key).await.as_deref(),
                Some(&value[..]),
                "{key}"
            );
        }
        let log = std::fs::read_to_string(&cluster.nodes[0].log).unwrap();
        assert!(
            log.contains("torn"),
            "no log line about the torn tail:\n{log}"
        );
        // The torn bytes are gone and new writes land after the old records.
        set(&cluster.addr(0), 6, 1, "after", b"restart")
            .await
            .unwrap();
        let after = std::fs::read(&wal).unwrap();
        assert_eq!(&after[..before.len()], &before[..]);
        assert_ne!(&after[before.len()..before.len() + 4], &torn[..4]);
    });
}

#[test]
fn corrupt_record_mid_log_stops_the_node_and_leaves_the_file() {
    run(async {
        let mut cluster = Cluster::start(1, &[]);
        write_then_crash(&mut cluster, 30).await;
        let wal = wal_file(&cluster.nodes[0].data_dir);
        let mut bytes = std::fs::read(&wal).unwrap();
        let recs = records(&bytes);
        assert!(
            recs.len() > 10,
            "expected many records, found {}",
            recs.len()
        );
        let (offset, len) = recs[recs.len() / 2];
        bytes[offset + len - 1] ^= 0x5a;
        std::fs::write(&wal, &bytes).unwrap();

        cluster.spawn(0);
        let (status, log) = wait_exit(&mut cluster, 0, Duration::from_secs(10));
        assert!(!status.success(), "node started on a corrupt log:\n{log}");
        assert!(log.contains("corrupt"), "{log}");
        assert!(
            log.contains(&wal.display().to_string()),
            "error does not name the file:\n{log}"
        );
        assert!(
            log.contains("offset"),
            "error does not name the offset:\n{log}"
        );
        assert_eq!(std::fs::read(&wal).unwrap(), bytes, "the log was changed");
    });
}

#[test]
fn second_node_on_the_same_data_dir_is_refused() {
    run(async {
        let mut cluster = Cluster::start(1, &[]);
        cluster.wait_leader(&[0], Duration::from_secs(10)).await;
        // Same data dir, another port.
        let port = free_ports(1)[0];
        let out = Command::new(env!("CARGO_BIN_EXE_node"))
            .args(["--id", "1", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--peers", &format!("1=127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&cluster.nodes[0].data_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("in use by another process"), "{stderr}");
        // The first node is unaffected.
        set(&cluster.addr(0), 1, 1, "k", b"v").await.unwrap();
        cluster.kill(0);
    });
}

#[test]
fn bad_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_node"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: usage errors exit 3");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&[
        "--id",
        "1",
        "--listen",
        "127.0.0.1:1",
        "--peers",
        "1=127.0.0.1:1,1=127.0.0.1:2",
    ]);
    assert!(e.contains("--peers") && e.contains("twice"), "{e}");
    let e = run(&[
        "--id",
        "3",
        "--listen",
        "127.0.0.1:1",
        "--peers",
        "1=127.0.0.1:1",
    ]);
    assert!(e.contains("does not list this node's id 3"), "{e}");
    let e = run(&[
        "--id",
        "1",
        "--listen",
        "nowhere",
        "--peers",
        "1=127.0.0.1:1",
    ]);
    assert!(e.contains("--listen"), "{e}");
    let e = run(&[
        "--id",
        "1",
        "--listen",
        "127.0.0.1:1",
        "--peers",
        "1=127.0.0.1:1",
        "--heartbeat-ms",
        "500",
    ]);
    assert!(e.contains("--heartbeat-ms"), "{e}");
    let e = run(&["--id", "1", "--listen", "127.0.0.1:1"]);
    assert!(e.contains("--peers"), "{e}");
}

#[test]
fn a_start_up_failure_is_reported_once_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // Hold the port so that the node cannot listen on it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["--id", "1", "--listen", &addr, "--peers"])
        .arg(format!("1={addr}"))
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot listen on").count(),
        1,
        "the error must appear exactly once:\n{stderr}"
    );
    assert!(stderr.contains(&addr), "{stderr}");

    // A data dir that is a file is named as such.
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "--id",
            "1",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "1=127.0.0.1:1",
        ])
        .arg("--data-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a directory"), "{stderr}");
}

fn session(client_id: u64, seq: u64) -> Option<Session> {
    Some(Session { client_id, seq })
}

#[test]
fn bad_input_gets_a_clear_status_and_the_node_keeps_serving() {
    run(async {
        let cluster = Cluster::start(1, &["--max-value-bytes", "1000", "--max-key-bytes", "16"]);
        let leader = cluster.wait_leader(&[0], Duration::from_secs(10)).await;
        let addr = cluster.addr(leader);
        let mut c = client(&addr).await;

        let invalid = |r: Result<tonic::Response<_>, tonic::Status>, needle: &str| {
            let e = r.map(|_: tonic::Response<()>| ()).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(
                e.message().contains(needle),
                "{needle:?} not in {:?}",
                e.message()
            );
        };
        let unit = |r: Result<tonic::Response<raftkv::proto::SetResponse>, tonic::Status>| {
            r.map(|_| tonic::Response::new(()))
        };
        invalid(
            unit(c.set(set_request(1, 1, "", b"v")).await),
            "key is empty",
        );
        invalid(
            unit(c.set(set_request(1, 1, &"k".repeat(17), b"v")).await),
            "key is 17 bytes, over the limit of 16",
        );
        invalid(
            unit(c.set(set_request(1, 1, "k", &[0; 1001])).await),
            "value is 1001 bytes, over the limit of 1000",
        );
        invalid(unit(c.set(set_request(0, 1, "k", b"v")).await), "client_id");
        invalid(unit(c.set(set_request(1, 0, "k", b"v")).await), "seq");
        invalid(
            unit(
                c.set(SetRequest {
                    session: None,
                    key: "k".into(),
                    value: b"v".to_vec(),
                })
                .await,
            ),
            "session is missing",
        );
        let e = c.get(GetRequest { key: String::new() }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let e = c
            .cas(CasRequest {
                session: session(1, 1),
                key: "k".into(),
                expected: Some(vec![0; 1001]),
                new_value: vec![],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("expected is 1001 bytes"), "{e:?}");
        let e = c
            .no_op(NoOpRequest {
                session: session(0, 1),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);

        // Garbage on the port: random bytes, and an HTTP/1 request.
        for garbage in [
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect::<Vec<u8>>(),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\x00\x00\x00\x00\x00\xff\xff\xff\xff"
                .to_vec(),
        ] {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(&garbage);
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }

        // None of it was applied, and the node still serves.
        assert_eq!(
            c.get(GetRequest { key: "k".into() })
                .await
                .unwrap()
                .into_inner()
                .value,
            None
        );
        let cas = c
            .cas(CasRequest {
                session: session(9, 1),
                key: "k".into(),
                expected: None,
                new_value: b"one".to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(cas.applied);
        assert_eq!(cas.previous, None);
        let cas = c
            .cas(CasRequest {
                session: session(9, 2),
                key: "k".into(),
                expected: None,
                new_value: b"two".to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!cas.applied);
        assert_eq!(cas.previous.as_deref(), Some(&b"one"[..]));
        let noop = c
            .no_op(NoOpRequest {
                session: session(9, 3),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(noop.index > cas.index);
        assert_eq!(
            c.get(GetRequest { key: "k".into() })
                .await
                .unwrap()
                .into_inner()
                .value
                .as_deref(),
            Some(&b"one"[..])
        );
    });
}

#[test]
fn health_and_reflection_answer_and_a_stuck_write_times_out_as_unknown() {
    run(async {
        // Slow elections: the leader keeps leading (CheckQuorum) for at
        // least two seconds after its followers die, while the writes below
        // wait for their deadline.
        let mut cluster = Cluster::start(
            3,
            &[
                "--election-timeout-min-ms",
                "2000",
                "--election-timeout-max-ms",
                "2500",
            ],
        );
        let leader = cluster
            .wait_leader(&[0, 1, 2], Duration::from_secs(10))
            .await;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", cluster.addr(leader)))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let health_channel = channel.clone();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "raftkv.v1.Kv".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        // Server reflection lists the public and peer services.
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut reflection = ServerReflectionClient::new(health_channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = reflection
            .server_reflection_info(tonic::codegen::tokio_stream::iter(vec![request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().expect("one answer");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("unexpected reflection answer {answer:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for wanted in [
            "raftkv.v1.Kv",
            "raftkv.v1.RaftPeer",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == wanted),
                "{wanted} not in {names:?}"
            );
        }

        // Without a quorum the write cannot commit; the client's deadline
        // ends the wait and the outcome is unknown.
        for i in 0..3 {
            if i != leader {
                cluster.kill(i);
            }
        }
        // The node answers 15 ms before the client's own timer fires; on a
        // loaded machine its answer can still arrive later (the client then
        // reports Cancelled), so a few attempts are allowed.
        let mut c = client(&cluster.addr(leader)).await;
        let mut late = Vec::new();
        for client_id in 3..8 {
            let mut request = tonic::Request::new(set_request(client_id, 1, "k", b"v"));
            request.set_timeout(Duration::from_millis(150));
            let e = c.set(request).await.unwrap_err();
            if e.code() == Code::Cancelled {
                late.push(e);
                continue;
            }
            assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
            assert_eq!(e.metadata().get("outcome").unwrap(), "unknown");
            return;
        }
        panic!("the node never answered before the client's deadline: {late:?}");
    });
}
