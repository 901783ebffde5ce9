//! The lazy filesystem mounted for real (needs root and /dev/fuse; set
//! RAFTKV_SKIP_FUSE_TESTS=1 to skip these tests explicitly where they are
//! missing). Processes write through the mount, are SIGKILLed, the power
//! is cut, and what survives is exactly what was synced. This binary
//! re-runs itself as those processes (selected by an environment
//! variable).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use raftkv_core::{Entry, EntryKind, HardState};
use raftkv_lazyfs::{
    Launcher, LazyFsProcess, MountOptions, Mounted, TornMode, check_available, mounts,
};
use raftkv_wal::{Wal, WalError, first_segment_path};

const CHILD_ENV: &str = "RAFTKV_LAZYFS_TEST_CHILD";
const SKIP_ENV: &str = "RAFTKV_SKIP_FUSE_TESTS";
const LAZYFS: &str = env!("CARGO_BIN_EXE_lazyfs");

/// Kills and reaps the child even when the test panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// SIGKILL, then reap: once this returns the process has no request in
    /// flight on the filesystem.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// A child's stdout lines, read on a thread so that waiting can time out.
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

fn spawn_child(mode: &str, path: &Path) -> (KillOnDrop, Lines) {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, format!("{mode}:{}", path.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = Lines::new(child.0.stdout.take().unwrap());
    (child, out)
}

/// A backing directory and a mount point in a fresh temporary directory.
struct Dirs {
    _tmp: tempfile::TempDir,
    backing: PathBuf,
    mnt: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let backing = tmp.path().join("backing");
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    Dirs {
        _tmp: tmp,
        backing,
        mnt,
    }
}

fn mount(d: &Dirs) -> Mounted {
    Mounted::mount(&d.backing, &d.mnt, &MountOptions::default()).unwrap()
}

fn record(i: usize) -> String {
    format!("record {i:04}\n")
}

fn records(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(record).collect::<String>().into_bytes()
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

// ---- children ----

/// Appends 20 records with an fdatasync after each, then 20 more with no
/// sync, prints `written` and waits to be killed.
fn child_records(path: &Path) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    sync_dir(path.parent().unwrap());
    for i in 0..20 {
        f.write_all(record(i).as_bytes()).unwrap();
        f.sync_data().unwrap();
    }
    for i in 20..40 {
        f.write_all(record(i).as_bytes()).unwrap();
    }
    println!("written");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn entry(index: u64, len: usize) -> Entry {
    Entry {
        term: 1,
        index,
        kind: EntryKind::Command,
        data: (0..len).map(|i| (index as usize * 31 + i) as u8).collect(),
    }
}

/// Opens a WAL in a new data dir, syncs 10 entries, then writes 300 more
/// of 4 KiB with no sync (more than the WAL buffers, so most reach the
/// file), prints `written` and waits to be killed.
fn child_wal_unsynced(dir: &Path) {
    let (mut wal, _) = Wal::open(dir).unwrap();
    let hs = HardState {
        term: 1,
        vote: Some(1),
        commit: 0,
    };
    let synced: Vec<Entry> = (1..=10).map(|i| entry(i, 100)).collect();
    wal.write_sync(Some(&hs), None, &synced).unwrap();
    for i in 11..=310 {
        wal.write(None, None, &[entry(i, 4096)]).unwrap();
    }
    println!("written");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Appends entries, syncing every 4, and prints the last index after each
/// sync: those entries are acknowledged. Runs until killed.
fn child_wal_append(dir: &Path) {
    let (mut wal, restored) = Wal::open(dir).unwrap();
    let mut next = restored.entries.len() as u64 + 1;
    let term = restored.hard_state.term + 1;
    let hs = HardState {
        term,
        vote: Some(1),
        commit: 0,
    };
    wal.write(Some(&hs), None, &[]).unwrap();
    let mut stdout = std::io::stdout();
    loop {
        for _ in 0..4 {
            let mut e = entry(next, (next as usize * 7919) % 20_000);
            e.term = term;
            wal.write(None, None, &[e]).unwrap();
            next += 1;
        }
        wal.sync().unwrap();
        writeln!(stdout, "{}", next - 1).unwrap();
        stdout.flush().unwrap();
    }
}

/// Holds the WAL's lock until killed.
fn child_hold_lock(dir: &Path) {
    let (_wal, _) = Wal::open(dir).unwrap();
    println!("locked");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Sits in `dir` (keeping the mount busy) until killed.
fn child_cwd(dir: &Path) {
    std::env::set_current_dir(dir).unwrap();
    println!("inside");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

// ---- tests ----

fn killed_writer_loses_unsynced_bytes() {
    let d = dirs();
    let fs = mount(&d);
    let file = d.mnt.join("log");
    let (child, out) = spawn_child("records", &file);
    assert_eq!(out.next(), "written");
    assert_eq!(
        fs::read(&file).unwrap(),
        records(0..40),
        "reads see unsynced data"
    );
    assert_eq!(fs.stats().unsynced_bytes, 20 * 12);
    child.kill();
    assert_eq!(
        fs::read(&file).unwrap(),
        records(0..40),
        "SIGKILL alone keeps it"
    );
    let report = fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(report.bytes_lost, 20 * 12);
    assert_eq!(
        fs::read(&file).unwrap(),
        records(0..20),
        "the power cut does not"
    );
    assert_eq!(fs::metadata(&file).unwrap().len(), 20 * 12);
    fs.unmount().unwrap();
    assert_eq!(fs::read(d.backing.join("log")).unwrap(), records(0..20));
    assert!(!d.backing.join(".lazyfs").exists());
}

fn torn_prefix_keeps_part_of_the_unsynced_tail() {
    let mut kept_some = false;
    for seed in 0..6 {
        let d = dirs();
        let fs = mount(&d);
        let file = d.mnt.join("log");
        let (child, out) = spawn_child("records", &file);
        assert_eq!(out.next(), "written");
        child.kill();
        let r = fs.power_cut(TornMode::Prefix, seed).unwrap();
        let after = fs::read(&file).unwrap();
        let all = records(0..40);
        assert!(after.len() >= 20 * 12, "seed {seed}: synced records kept");
        assert_eq!(
            after[..],
            all[..after.len()],
            "seed {seed}: a prefix of what was written"
        );
        assert_eq!(r.bytes_kept, after.len() as u64 - 20 * 12);
        kept_some |= r.bytes_kept > 0;
    }
    assert!(kept_some, "seeds 0..6 keep some torn bytes");
}

fn rename_needs_a_directory_fsync() {
    let d = dirs();
    let fs = mount(&d);
    let put = |name: &str, data: &[u8]| {
        let mut f = File::create(d.mnt.join(name)).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    };
    put("snap", b"old");
    sync_dir(&d.mnt);
    // Without a directory fsync the rename is lost.
    put("snap.tmp", b"new");
    fs::rename(d.mnt.join("snap.tmp"), d.mnt.join("snap")).unwrap();
    assert_eq!(fs::read(d.mnt.join("snap")).unwrap(), b"new");
    fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(fs::read(d.mnt.join("snap")).unwrap(), b"old");
    assert!(!d.mnt.join("snap.tmp").exists(), "never durably named");
    // With it, it survives.
    put("snap.tmp", b"new");
    fs::rename(d.mnt.join("snap.tmp"), d.mnt.join("snap")).unwrap();
    sync_dir(&d.mnt);
    fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(fs::read(d.mnt.join("snap")).unwrap(), b"new");
    let names: Vec<_> = fs::read_dir(&d.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["snap"]);
}

fn unlink_and_create_need_a_directory_fsync() {
    let d = dirs();
    let fs = mount(&d);
    let mut f = File::create(d.mnt.join("seg-1")).unwrap();
    f.write_all(b"entries").unwrap();
    f.sync_all().unwrap();
    drop(f);
    File::create(d.mnt.join("never-synced")).unwrap();
    fs::create_dir(d.mnt.join("sub")).unwrap();
    sync_dir(&d.mnt);
    fs::remove_file(d.mnt.join("never-synced")).unwrap();
    File::create(d.mnt.join("new")).unwrap().sync_all().unwrap();
    fs::remove_file(d.mnt.join("seg-1")).unwrap();
    File::create(d.mnt.join("sub/inner"))
        .unwrap()
        .sync_all()
        .unwrap();
    let r = fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(r.entries_undone, 4);
    assert_eq!(
        fs::read(d.mnt.join("seg-1")).unwrap(),
        b"entries",
        "unlink undone"
    );
    assert!(d.mnt.join("never-synced").exists(), "unlink undone");
    assert!(!d.mnt.join("new").exists(), "create undone");
    assert!(d.mnt.join("sub").is_dir());
    assert!(
        !d.mnt.join("sub/inner").exists(),
        "create in a subdirectory undone"
    );
}

fn the_kernel_serves_nothing_stale_after_a_cut() {
    let d = dirs();
    let fs = mount(&d);
    let path = d.mnt.join("f");
    let mut f = File::create(&path).unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_all().unwrap();
    sync_dir(&d.mnt);
    f.write_all(b"+lost").unwrap();
    drop(f);
    File::create(d.mnt.join("gone")).unwrap();
    // Give the kernel every chance to cache: attributes, data, entries.
    assert_eq!(fs::metadata(&path).unwrap().len(), 11);
    assert_eq!(fs::read(&path).unwrap(), b"synced+lost");
    assert_eq!(fs::read_dir(&d.mnt).unwrap().count(), 2);
    assert!(d.mnt.join("gone").exists());
    // A handle held across the cut (against the rules) fails afterwards.
    let mut held = OpenOptions::new().write(true).open(&path).unwrap();

    fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 6, "size");
    assert_eq!(fs::read(&path).unwrap(), b"synced", "data");
    assert!(!d.mnt.join("gone").exists(), "entry");
    assert_eq!(fs::read_dir(&d.mnt).unwrap().count(), 1, "listing");
    let e = held.write_all(b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
    // O_APPEND lands at the end that survived, whatever the kernel thought.
    let mut a = OpenOptions::new().append(true).open(&path).unwrap();
    a.write_all(b"!").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"synced!");
    // A file that comes back after a cut shows its durable size.
    drop(a);
    fs::remove_file(&path).unwrap();
    assert!(!path.exists());
    fs.power_cut(TornMode::None, 0).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"synced");
}

fn flock_works_between_processes() {
    let d = dirs();
    let _fs = mount(&d);
    let dir = d.mnt.join("data");
    let (holder, out) = spawn_child("hold-lock", &dir);
    assert_eq!(out.next(), "locked");
    let pid = holder.0.id();
    match Wal::open(&dir) {
        Err(WalError::Locked { pid: Some(p), .. }) => assert_eq!(p, pid),
        other => panic!("expected Locked, got {:?}", other.map(|_| ())),
    }
    holder.kill();
    Wal::open(&dir).expect("the lock is free once its holder died");
}

fn wal_loses_exactly_its_unsynced_entries() {
    for (torn, seed) in [
        (TornMode::None, 0),
        (TornMode::Prefix, 1),
        (TornMode::Prefix, 2),
        (TornMode::Pages, 3),
    ] {
        let d = dirs();
        let fs = mount(&d);
        // A data dir the WAL creates itself: its directory fsyncs must be
        // enough for the dir, the log and the lock file to survive.
        let dir = d.mnt.join("node-1");
        let (child, out) = spawn_child("wal-unsynced", &dir);
        assert_eq!(out.next(), "written");
        assert!(
            fs.stats().unsynced_bytes > 1 << 20,
            "{torn}: unsynced entries reached the file"
        );
        child.kill();
        let r = fs.power_cut(torn, seed).unwrap();
        let (wal, restored) = Wal::open(&dir).unwrap_or_else(|e| panic!("{torn} {seed}: {e}"));
        let n = restored.entries.len() as u64;
        assert!(n >= 10, "{torn} {seed}: synced entries survive, {n} did");
        for (i, e) in restored.entries.iter().enumerate() {
            let want = entry(i as u64 + 1, if i < 10 { 100 } else { 4096 });
            assert!(*e == want, "{torn} {seed}: entry {} differs", i + 1);
        }
        assert_eq!(restored.hard_state.term, 1);
        if torn == TornMode::None {
            assert_eq!(n, 10, "nothing unsynced survives");
            assert!(wal.torn_tail().is_none());
        } else {
            // Whatever survived beyond the synced part is whole entries
            // plus, maybe, a torn tail the WAL cut.
            let kept = r.bytes_kept;
            println!(
                "  {torn} seed {seed}: {kept} torn bytes kept, {n} entries, torn tail cut: {:?}",
                wal.torn_tail().map(|t| t.bytes)
            );
        }
        assert!(first_segment_path(&d.mnt.join("node-1")).exists());
        drop(wal);
    }
}

fn wal_acknowledged_entries_survive_power_cuts() {
    let d = dirs();
    let fs = mount(&d);
    let dir = d.mnt.join("node");
    let mut acknowledged = 0u64;
    let modes = [TornMode::None, TornMode::Prefix, TornMode::Pages];
    let mut lost = 0;
    for round in 0..9u64 {
        let (child, out) = spawn_child("wal-append", &dir);
        // Kill after a number of acknowledgements: anywhere in a write or
        // a sync.
        for _ in 0..3 + round * 2 {
            acknowledged = out.next().trim().parse().unwrap();
        }
        child.kill();
        let r = fs.power_cut(modes[round as usize % 3], round).unwrap();
        lost += r.bytes_lost;
        let (wal, restored) = Wal::open(&dir).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let n = restored.entries.len() as u64;
        assert!(
            n >= acknowledged,
            "round {round}: {n} entries survived, {acknowledged} were acknowledged"
        );
        for (i, e) in restored.entries.iter().enumerate() {
            assert_eq!(e.index, i as u64 + 1, "round {round}");
        }
        assert_eq!(
            restored.hard_state.term,
            round + 1,
            "round {round}: the term is durable"
        );
        println!(
            "  round {round}: {acknowledged} acknowledged, {n} survived, {} bytes lost, torn tail: {:?}",
            r.bytes_lost,
            wal.torn_tail().map(|t| t.bytes)
        );
    }
    println!("  {lost} unsynced bytes lost in all");
}

fn child_process_api_mounts_cuts_and_unmounts() {
    let d = dirs();
    let log = d.backing.parent().unwrap().join("lazyfs.log");
    let mut p = LazyFsProcess::spawn(
        &Launcher::binary(LAZYFS),
        &d.backing,
        &d.mnt,
        &MountOptions::default(),
        Some(&log),
    )
    .unwrap();
    let mut f = File::create(d.mnt.join("f")).unwrap();
    f.write_all(b"kept").unwrap();
    f.sync_all().unwrap();
    sync_dir(&d.mnt);
    f.write_all(b" and lost").unwrap();
    drop(f);
    assert_eq!(p.stats().unwrap().unsynced_bytes, 9);
    let r = p.power_cut(TornMode::None, 5).unwrap();
    assert_eq!(r.bytes_lost, 9);
    assert_eq!(fs::read(d.mnt.join("f")).unwrap(), b"kept");
    assert_eq!(p.stats().unwrap().power_cuts, 1);
    p.unmount().unwrap();
    assert!(!mounts::lazyfs_mounts().unwrap().contains(&d.mnt));
    assert_eq!(fs::read(d.backing.join("f")).unwrap(), b"kept");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("power cut of"), "{text}");
}

/// Runs `lazyfs mount` over `d` (with `extra` arguments) until it says it
/// is ready.
fn lazyfs_server(d: &Dirs, extra: &[&str]) -> KillOnDrop {
    let mut child = KillOnDrop(
        Command::new(LAZYFS)
            .arg("mount")
            .args(extra)
            .arg("--backing")
            .arg(&d.backing)
            .arg("--mount")
            .arg(&d.mnt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = Lines::new(child.0.stdout.take().unwrap());
    assert!(out.next().starts_with("ready"));
    child
}

fn a_dead_parent_leaves_no_mount() {
    let d = dirs();
    let mut child = lazyfs_server(&d, &["--control", "stdio"]);
    let mnt = d.mnt.canonicalize().unwrap();
    assert!(mounts::lazyfs_mounts().unwrap().contains(&mnt));
    // What a parent's death does to the pipe.
    drop(child.0.stdin.take());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!mounts::lazyfs_mounts().unwrap().contains(&mnt));
}

fn a_killed_server_leaves_a_stale_mount_that_is_cleaned() {
    let d = dirs();
    let child = lazyfs_server(&d, &[]);
    let mnt = d.mnt.canonicalize().unwrap();
    child.kill();
    let e = fs::metadata(&d.mnt).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    // Mounting again cleans it up.
    let fs = mount(&d);
    File::create(d.mnt.join("x")).unwrap();
    fs.unmount().unwrap();
    // And the cleaner finds one left by a killed process.
    lazyfs_server(&d, &[]).kill();
    let parent = d.mnt.parent().unwrap().canonicalize().unwrap();
    assert_eq!(mounts::clean_stale_mounts(&parent).unwrap(), [mnt]);
    assert!(fs::metadata(&d.mnt).unwrap().is_dir());
}

fn a_busy_mount_is_detached() {
    let d = dirs();
    let fs = mount(&d);
    let (child, out) = spawn_child("cwd", &d.mnt);
    assert_eq!(out.next(), "inside");
    let e = fs.unmount().unwrap_err();
    assert!(e.contains("busy"), "{e}");
    assert!(
        !mounts::lazyfs_mounts()
            .unwrap()
            .contains(&d.mnt.canonicalize().unwrap())
    );
    child.kill();
}

fn bad_mounts_are_refused_clearly() {
    let d = dirs();
    let fs = mount(&d);
    let e = Mounted::mount(&d.backing, &d.mnt, &MountOptions::default()).unwrap_err();
    assert!(e.contains("already has a lazy filesystem"), "{e}");
    drop(fs);
    let inner = d.backing.join("mnt");
    fs::create_dir(&inner).unwrap();
    let e = Mounted::mount(&d.backing, &inner, &MountOptions::default()).unwrap_err();
    assert!(e.contains("must not contain each other"), "{e}");
    let e = Mounted::mount(&d.backing.join("nope"), &d.mnt, &MountOptions::default()).unwrap_err();
    assert!(e.contains("backing directory") && e.contains("nope"), "{e}");
    std::os::unix::fs::symlink("x", d.backing.join("link")).unwrap();
    let e = Mounted::mount(&d.backing, &d.mnt, &MountOptions::default()).unwrap_err();
    assert!(e.contains("neither a regular file nor a directory"), "{e}");
    fs::remove_file(d.backing.join("link")).unwrap();
    let log = d.backing.parent().unwrap().join("lazyfs.log");
    let missing = d.backing.join("missing");
    let e = LazyFsProcess::spawn(
        &Launcher::binary(LAZYFS),
        &missing,
        &d.mnt,
        &MountOptions::default(),
        Some(&log),
    )
    .unwrap_err();
    assert!(
        e.contains("did not mount") && e.contains("lazyfs: backing directory"),
        "{e}"
    );
    let o = Command::new(LAZYFS)
        .args(["mount", "--backing", "/nonexistent-x", "--mount", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("lazyfs: backing directory /nonexistent-x"),
        "{err}"
    );
}

fn mode_bits_and_sizes_pass_through() {
    let d = dirs();
    let fs = mount(&d);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(d.mnt.join("m"))
        .unwrap();
    f.set_len(4096).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(d.mnt.join("m")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::metadata(d.mnt.join("m")).unwrap().len(), 4096);
    f.sync_all().unwrap();
    sync_dir(&d.mnt);
    drop(f);
    // O_TRUNC on an existing file (an unsynced truncation).
    fs::write(d.mnt.join("t"), b"0123456789").unwrap();
    fs::write(d.mnt.join("t"), b"ab").unwrap();
    assert_eq!(fs::read(d.mnt.join("t")).unwrap(), b"ab");
    fs.unmount().unwrap();
    let md = fs::metadata(d.backing.join("m")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    assert_eq!(md.len(), 4096);
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (mode, path) = spec.split_once(':').expect("mode:path");
        let path = Path::new(path);
        match mode {
            "records" => child_records(path),
            "wal-unsynced" => child_wal_unsynced(path),
            "wal-append" => child_wal_append(path),
            "hold-lock" => child_hold_lock(path),
            "cwd" => child_cwd(path),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    if let Err(e) = check_available() {
        if std::env::var_os(SKIP_ENV).is_some() {
            println!("lazyfs FUSE tests skipped ({SKIP_ENV} is set): {e}");
            return;
        }
        panic!(
            "the lazy filesystem cannot mount here: {e}\n(set {SKIP_ENV}=1 to skip these tests explicitly)"
        );
    }
    type Test = fn();
    let tests: &[(&str, Test)] = &[
        (
            "killed_writer_loses_unsynced_bytes",
            killed_writer_loses_unsynced_bytes,
        ),
        (
            "torn_prefix_keeps_part_of_the_unsynced_tail",
            torn_prefix_keeps_part_of_the_unsynced_tail,
        ),
        (
            "rename_needs_a_directory_fsync",
            rename_needs_a_directory_fsync,
        ),
        (
            "unlink_and_create_need_a_directory_fsync",
            unlink_and_create_need_a_directory_fsync,
        ),
        (
            "the_kernel_serves_nothing_stale_after_a_cut",
            the_kernel_serves_nothing_stale_after_a_cut,
        ),
        (
            "flock_works_between_processes",
            flock_works_between_processes,
        ),
        (
            "wal_loses_exactly_its_unsynced_entries",
            wal_loses_exactly_its_unsynced_entries,
        ),
        (
            "wal_acknowledged_entries_survive_power_cuts",
            wal_acknowledged_entries_survive_power_cuts,
        ),
        (
            "child_process_api_mounts_cuts_and_unmounts",
            child_process_api_mounts_cuts_and_unmounts,
        ),
        (
            "a_dead_parent_leaves_no_mount",
            a_dead_parent_leaves_no_mount,
        ),
        (
            "a_killed_server_leaves_a_stale_mount_that_is_cleaned",
            a_killed_server_leaves_a_stale_mount_that_is_cleaned,
        ),
        ("a_busy_mount_is_detached", a_busy_mount_is_detached),
        (
            "bad_mounts_are_refused_clearly",
            bad_mounts_are_refused_clearly,
        ),
        (
            "mode_bits_and_sizes_pass_through",
            mode_bits_and_sizes_pass_through,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        test();
        println!("test {name} ... ok");
        passed += 1;
    }
    println!("lazyfs FUSE tests: {passed} passed, 0 failed");
}
