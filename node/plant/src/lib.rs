//! Known mistakes that can be switched on, one at a time, to show that the
//! fault-injection gate catches them.
//!
//! Every crate of the node calls [`is`] where a mistake is planted. Without
//! the `active` feature (normal builds) [`is`] is a constant `false` and the
//! planted paths compile away; with it (the node's `planted-mistakes`
//! feature), the node's `main` calls [`init`] once, which reads
//! `RAFTKV_PLANT`. The Raft core stays free of I/O: it only reads the
//! process-wide choice that `main` made. Tests choose one with
//! [`plant_for_test`].
//!
//! Each mistake is one that real Raft and key-value implementations have
//! shipped. Its documentation says what it does, which rule it breaks and
//! how it shows: in a client history (a stale read, a lost or phantom
//! write), as replicas that diverge (state-machine digests or logs differ
//! once every node applied the same index), or in the nodes' logs.

#[cfg(feature = "active")]
use std::sync::atomic::{AtomicUsize, Ordering};

/// A mistake that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plant {
    // ---- driver -------------------------------------------------------
    /// Get answered from local state without a ReadIndex round. Breaks
    /// linearizable reads (§6.4): a deposed leader that has not yet heard
    /// of the new term serves values the new leader has overwritten.
    /// Shows as a stale read in the history.
    StaleRead,
    /// Set acknowledged when proposed, before it commits. Breaks "reply
    /// only once committed": a write that never reaches a majority, or is
    /// overwritten by the next leader, was acknowledged. Shows as a lost
    /// write in the history.
    AckBeforeCommit,
    /// A write pending when its leader steps down is answered as a definite
    /// failure (not-leader), although its entry may already be on other
    /// nodes and commit under the next leader. Breaks the client contract
    /// (outcome unknown). Shows in the history as a write that failed yet
    /// is read later.
    UnknownAsFailure,
    /// The leader evaluates a CAS against its applied state when it
    /// proposes it and replicates the outcome as a plain write. Breaks
    /// "commands take effect when applied, in log order": two CAS on the
    /// same key proposed before either applies both succeed, and a retried
    /// CAS is checked again. Shows as a non-linearizable CAS in the history.
    CasCheckedAtPropose,
    /// After losing leadership the driver keeps its pending proposals and
    /// matches replies to them by log index alone. When a new leader's
    /// entry replaces a proposal at its index, the waiting client gets the
    /// reply of that other command: a Set is acknowledged that was never
    /// applied. Shows as a lost write in the history.
    ReplyByIndex,
    // ---- Raft core ----------------------------------------------------
    /// Hard state written to the log without the vote. Breaks "vote is
    /// durable before it is sent" (Figure 2): a node that restarts in the
    /// same term can vote again. Shows in the node logs (a granted vote
    /// missing after a restart) and, rarely, as two leaders of one term.
    VoteNotPersisted,
    /// Votes (and pre-votes) are granted without comparing logs. Breaks the
    /// election restriction (§5.4.1): a node that lacks committed entries
    /// can win and overwrite them on the others. Shows as lost writes in the
    /// history and replicas whose committed logs differ.
    VoteIgnoresLog,
    /// The leader's heartbeat carries its full commit index to every
    /// follower, also one whose log it has not matched yet (it should carry
    /// min(match index, commit)); a follower only bounds it by its own last
    /// index. A deposed leader that comes back with uncommitted entries of
    /// its old term marks them committed and applies them. Breaks state
    /// machine safety (§5.4.3). Shows as replicas whose state machines and
    /// applied logs differ, and as phantom values read from that node.
    HeartbeatCommitUnbounded,
    /// A follower accepts an Append from a leader of a lower term. Breaks
    /// "reply false if term < currentTerm" (Figure 2): a deposed leader's
    /// late Append replaces entries of the newer term, also ones already
    /// acknowledged and committed. Shows as lost writes and diverging logs;
    /// it needs a late message (a resumed leader, a delayed link).
    StaleTermAppend,
    /// The leader answers a ReadIndex request from its own belief that it
    /// leads, without the heartbeat round that a majority acknowledges.
    /// Breaks §6.4 step 3: a leader cut off from the majority serves reads
    /// until CheckQuorum deposes it. Shows as stale reads in the history.
    ReadIndexNoQuorum,
    // ---- write-ahead log ----------------------------------------------
    /// `Wal::sync` calls fdatasync without first writing out the records it
    /// buffered, like a `BufWriter` synced without `flush`. Breaks "durable
    /// before any reply that depends on it": records acknowledged as
    /// durable are lost by a SIGKILL. Shows as lost writes (when a majority
    /// restarts) and as votes missing after a restart in the node logs.
    SyncWithoutFlush,
    /// Replay treats the log file as append-only: it skips truncation
    /// records and takes an entry for an index it already replayed as a
    /// duplicate. Entries replaced by a newer leader come back after a
    /// restart and the ones that replaced them are lost. Shows as replicas
    /// whose logs and state machines differ after a restart, and as lost
    /// writes.
    ReplayKeepsOverwritten,
    /// When a torn record ends the log, the cut starts at the last complete
    /// record instead of after it, so the last durable record goes too.
    /// Breaks "a torn tail is cut" (only what was never durable may go): an
    /// acknowledged entry or a granted vote is lost. Shows only when a
    /// crash leaves a torn tail; then as lost writes or a vote missing
    /// after the restart.
    TornTailCutsLastRecord,
    /// `Wal::sync` writes the buffered records but skips its `fdatasync`,
    /// and the node acknowledges what is only in the page cache. Breaks
    /// "durable before any reply that depends on it". A SIGKILL loses
    /// nothing (the kernel keeps the page cache); a power failure loses
    /// acknowledged entries and votes. Shows as lost writes (or votes
    /// missing after a restart) once a majority loses power.
    NoFsync,
    /// New log segments and snapshot files are created (or renamed into
    /// place) without an fsync of the data dir, so their directory entries
    /// are not durable although their content is. Breaks "files created
    /// and renamed with the directory fsynced". A SIGKILL loses nothing; a
    /// power failure makes the files vanish with every entry synced into
    /// them (a node's whole log, when its first segment goes). Shows as
    /// lost writes once a majority loses power.
    NoDirFsync,
    // ---- state machine ------------------------------------------------
    /// A retried (client_id, seq) already applied is answered by evaluating
    /// its command again, without applying it, instead of with the stored
    /// reply. Breaks exactly-once semantics (§6.3): a CAS that succeeded is
    /// reported as failed (or the reverse) to the retrying client. Shows in
    /// the history as a CAS whose reply contradicts the values read.
    DedupReevaluates,
    /// Session time comes from each replica's own clock when it applies an
    /// entry, not from the leader's time stamp in the entry. Breaks
    /// determinism of the state machine: replicas keep different session
    /// activity times and, with a short TTL or a replica that applies late,
    /// expire different sessions. Shows only as replicas whose
    /// state-machine digests differ.
    SessionClockLocal,
    /// A retried command applied again (session dedup bypassed). Breaks
    /// exactly-once semantics (§6.3). Shows as a write that takes effect
    /// twice in the history.
    DoubleApply,
    // ---- snapshots ------------------------------------------------------
    /// Snapshots hold the key-value map but not the client sessions. Breaks
    /// exactly-once across snapshots (§6.3): a node restored from one (at a
    /// restart, or by InstallSnapshot) applies a retry of a write the
    /// snapshot covers again, and answers other retries "session expired".
    /// Shows as replicas whose state machines differ at the same index (the
    /// digests in their `snapshot taken` lines), and as writes that take
    /// effect twice.
    SnapshotWithoutSessions,
    /// A follower that installs the leader's snapshot keeps its own state
    /// machine and only moves its applied index to the snapshot's. Breaks
    /// "the snapshot replaces the state machine" (§7): every write between
    /// what the follower had applied and the snapshot is missing on it.
    /// Shows as replicas whose state machines differ (their next snapshots'
    /// digests), and as stale reads and CAS outcomes once it leads.
    InstallKeepsStateMachine,
    /// A follower installs a snapshot at or below its commit index instead
    /// of ignoring it. Breaks the InstallSnapshot receiver rule (§7): its
    /// state machine and commit index go back, and entries it applied are
    /// applied again. Shows in the node logs (a snapshot installed below
    /// the applied index); it needs a stale or duplicated transfer.
    StaleSnapshotInstall,
}

impl Plant {
    /// Every mistake, in declaration order.
    pub const ALL: &'static [Plant] = &[
        Plant::StaleRead,
        Plant::AckBeforeCommit,
        Plant::UnknownAsFailure,
        Plant::CasCheckedAtPropose,
        Plant::ReplyByIndex,
        Plant::VoteNotPersisted,
        Plant::VoteIgnoresLog,
        Plant::HeartbeatCommitUnbounded,
        Plant::StaleTermAppend,
        Plant::ReadIndexNoQuorum,
        Plant::SyncWithoutFlush,
        Plant::ReplayKeepsOverwritten,
        Plant::TornTailCutsLastRecord,
        Plant::NoFsync,
        Plant::NoDirFsync,
        Plant::DedupReevaluates,
        Plant::SessionClockLocal,
        Plant::DoubleApply,
        Plant::SnapshotWithoutSessions,
        Plant::InstallKeepsStateMachine,
        Plant::StaleSnapshotInstall,
    ];

    /// The name `RAFTKV_PLANT` takes.
    pub fn name(self) -> &'static str {
        match self {
            Plant::StaleRead => "stale-read",
            Plant::AckBeforeCommit => "ack-before-commit",
            Plant::UnknownAsFailure => "unknown-as-failure",
            Plant::CasCheckedAtPropose => "cas-checked-at-propose",
            Plant::ReplyByIndex => "reply-by-index",
            Plant::VoteNotPersisted => "vote-not-persisted",
            Plant::VoteIgnoresLog => "vote-ignores-log",
            Plant::HeartbeatCommitUnbounded => "heartbeat-commit-unbounded",
            Plant::StaleTermAppend => "stale-term-append",
            Plant::ReadIndexNoQuorum => "read-index-no-quorum",
            Plant::SyncWithoutFlush => "sync-without-flush",
            Plant::ReplayKeepsOverwritten => "replay-keeps-overwritten",
            Plant::TornTailCutsLastRecord => "torn-tail-cuts-last-record",
            Plant::NoFsync => "no-fsync",
            Plant::NoDirFsync => "no-dir-fsync",
            Plant::DedupReevaluates => "dedup-reevaluates",
            Plant::SessionClockLocal => "session-clock-local",
            Plant::DoubleApply => "double-apply",
            Plant::SnapshotWithoutSessions => "snapshot-without-sessions",
            Plant::InstallKeepsStateMachine => "install-keeps-state-machine",
            Plant::StaleSnapshotInstall => "stale-snapshot-install",
        }
    }

    pub fn parse(value: &str) -> Result<Plant, String> {
        Plant::ALL
            .iter()
            .copied()
            .find(|p| p.name() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = Plant::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "RAFTKV_PLANT: unknown mistake {value:?} (expected one of: {})",
                    names.join(", ")
                )
            })
    }

    /// 1 + the position in [`Plant::ALL`]; 0 stands for none.
    #[cfg(feature = "active")]
    fn code(self) -> usize {
        self as usize + 1
    }
}

/// The planted mistake's [`Plant::code`], 0 for none.
#[cfg(feature = "active")]
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "active")]
fn set(plant: Option<Plant>) {
    ACTIVE.store(plant.map_or(0, Plant::code), Ordering::Relaxed);
}

/// Reads `RAFTKV_PLANT` once at start-up; returns the planted mistake.
#[cfg(feature = "active")]
pub fn init() -> Result<Option<Plant>, String> {
    let plant = match std::env::var("RAFTKV_PLANT") {
        Ok(v) if !v.is_empty() => Some(Plant::parse(&v)?),
        _ => None,
    };
    set(plant);
    Ok(plant)
}

/// True if `plant` is the mistake planted in this process.
#[cfg(feature = "active")]
#[inline]
pub fn is(plant: Plant) -> bool {
    ACTIVE.load(Ordering::Relaxed) == plant.code()
}

/// True if `plant` is the mistake planted in this process: never, in a
/// build without the `active` feature.
#[cfg(not(feature = "active"))]
#[inline(always)]
pub const fn is(_plant: Plant) -> bool {
    false
}

/// True when this build can plant mistakes.
pub const ENABLED: bool = cfg!(feature = "active");

/// Plants `plant` (or nothing) in this process until the returned guard is
/// dropped. The choice is process-wide, so the guard also keeps every other
/// test that takes one waiting: tests of one binary run one at a time.
#[cfg(feature = "active")]
pub fn plant_for_test(plant: Option<Plant>) -> TestPlant {
    use std::sync::Mutex;
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    set(plant);
    TestPlant { _guard: guard }
}

/// Holds a test's choice of mistake; see [`plant_for_test`].
#[cfg(feature = "active")]
pub struct TestPlant {
    _guard: std::sync::MutexGuard<'static, ()>,
}

#[cfg(feature = "active")]
impl Drop for TestPlant {
    fn drop(&mut self) {
        set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &p in Plant::ALL {
            assert_eq!(Plant::parse(p.name()), Ok(p));
        }
        let err = Plant::parse("nope").unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("stale-read"),
            "{err}"
        );
    }

    #[test]
    fn all_lists_every_mistake_once_in_declaration_order() {
        for (i, &p) in Plant::ALL.iter().enumerate() {
            assert_eq!(p as usize, i, "{p:?}");
        }
    }

    #[cfg(feature = "active")]
    #[test]
    fn a_test_plant_lasts_while_its_guard_lives() {
        {
            let _planted = plant_for_test(Some(Plant::DoubleApply));
            assert!(is(Plant::DoubleApply));
            assert!(!is(Plant::StaleRead));
        }
        assert!(!is(Plant::DoubleApply));
    }
}
