//! Tests that need a second process. This binary re-runs itself as the
//! child (selected by an environment variable): one child holds the data
//! dir's lock, another appends entries until it is SIGKILLed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use raftkv_core::{Entry, EntryKind, HardState};
use raftkv_wal::{Wal, WalError};

const CHILD_ENV: &str = "RAFTKV_WAL_TEST_CHILD";

/// Kills and reaps the child even when the test panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's stdout lines, read on a thread so that waiting can time out.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn new(out: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next line; panics if the child printed nothing for 60 s or exited.
    fn next(&self) -> String {
        match self.0.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(e) => panic!("no line from the child: {e}"),
        }
    }
}

fn spawn_child(mode: &str, dir: &Path) -> (KillOnDrop, Lines) {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = Lines::new(child.0.stdout.take().unwrap());
    (child, out)
}

/// The data of entry `index`: its size varies up to 64 KiB so that a kill
/// can land inside a large write.
fn data_of(index: u64) -> Vec<u8> {
    let len = (index.wrapping_mul(2_654_435_761) % 65_536) as usize;
    (0..len).map(|i| (index as usize + i) as u8).collect()
}

/// Holds the lock until stdin closes or the process is killed.
fn child_hold_lock(dir: &Path) {
    let (_wal, _) = Wal::open(dir).expect("child opens wal");
    println!("locked");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Appends entries after whatever the log holds, syncing every few, and
/// prints the last index after each sync: those entries are acknowledged.
fn child_append(dir: &Path) {
    let (mut wal, restored) = Wal::open(dir).expect("child opens wal");
    let mut next = restored.entries.len() as u64 + 1;
    let term = restored.hard_state.term + 1;
    wal.write(
        Some(&HardState {
            term,
            vote: Some(1),
            commit: 0,
        }),
        None,
        &[],
    )
    .unwrap();
    let mut stdout = std::io::stdout();
    loop {
        for _ in 0..4 {
            let e = Entry {
                term,
                index: next,
                kind: EntryKind::Command,
                data: data_of(next),
            };
            wal.write(None, None, &[e]).unwrap();
            next += 1;
        }
        wal.sync().unwrap();
        writeln!(stdout, "{}", next - 1).unwrap();
        stdout.flush().unwrap();
    }
}

fn lock_held_by_another_process(tmp: &Path) {
    let dir = tmp.join("locked");
    let (holder, out) = spawn_child("hold-lock", &dir);
    assert_eq!(out.next(), "locked");

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
}

fn sigkill_loses_no_synced_entry(tmp: &Path) {
    let dir: PathBuf = tmp.join("killed");
    let mut acknowledged = 0u64;
    for round in 0..6u64 {
        let (child, out) = spawn_child("append", &dir);
        // Let it run for a while; every line read is an acknowledgement.
        let run_for = Duration::from_millis(50 + 40 * round);
        let start = Instant::now();
        let mut acked_this_round = 0;
        while start.elapsed() < run_for || acked_this_round == 0 {
            acknowledged = out.next().trim().parse().unwrap();
            acked_this_round += 1;
        }
        drop(child); // SIGKILL, mid-write or mid-sync or anywhere.

        let (wal, restored) = Wal::open(&dir).unwrap();
        let n = restored.entries.len() as u64;
        assert!(
            n >= acknowledged,
            "round {round}: {n} entries survived, {acknowledged} were acknowledged"
        );
        for (i, e) in restored.entries.iter().enumerate() {
            let index = i as u64 + 1;
            assert_eq!(e.index, index);
            assert!(
                e.data == data_of(index),
                "round {round}: entry {index} differs"
            );
        }
        assert_eq!(restored.hard_state.term, round + 1);
        println!(
            "  round {round}: {acknowledged} acknowledged, {n} survived, torn tail: {:?}",
            wal.torn_tail()
        );
        drop(wal);
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, dir) = spec.split_once(':').expect("mode:dir");
        match mode {
            "hold-lock" => child_hold_lock(Path::new(dir)),
            "append" => child_append(Path::new(dir)),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    type Test = fn(&Path);
    let tests: [(&str, Test); 2] = [
        ("lock_held_by_another_process", lock_held_by_another_process),
        (
            "sigkill_loses_no_synced_entry",
            sigkill_loses_no_synced_entry,
        ),
    ];
    for (name, test) in tests {
        test(tmp.path());
        println!("test {name} ... ok");
    }
    println!("process tests: {} passed, 0 failed", tests.len());
}
