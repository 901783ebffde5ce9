//! A data dir locked by another process is refused with that process's pid,
//! and is free again once that process dies. This test binary re-runs itself
//! as the child that holds the lock.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use raftkv_wal::{Wal, WalError};

const CHILD_ENV: &str = "RAFTKV_WAL_TEST_HOLD_LOCK";

/// Kills and reaps the child even when the test panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child(dir: &str) {
    let (_wal, _) = Wal::open(std::path::Path::new(dir)).expect("child opens wal");
    println!("locked");
    // Hold the lock until the parent closes stdin or kills us.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut holder = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let pid = holder.0.id();
    match Wal::open(&dir) {
        Err(e @ WalError::Locked { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "data dir {} is in use by another process (pid {pid})",
                dir.display()
            )
        ),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }

    drop(holder);
    Wal::open(&dir).expect("lock is free once the holder died");
    println!("lock_process: 1 passed, 0 failed");
}
