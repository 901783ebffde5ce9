//! Faults: what the nemesis can do to a cluster, a seeded schedule of it,
//! and the loop that carries it out.
//!
//! Five families, each in its own module: process faults ([`process`]:
//! SIGKILL and restart, also with a torn write left at the end of the log
//! where the target can do that, SIGSTOP and SIGCONT, aimed at the leader,
//! a node just elected, the most lagging follower, one node, a minority, a
//! majority or every node), network partitions ([`partition`]: halves, the
//! leader alone, a bridge, the leader mute or deaf, a ring of overlapping
//! majorities; connections reset or packets dropped and delivered at the
//! heal), slow links ([`slow`]: delay, jitter and stalls per link),
//! and power cuts ([`power`]: SIGKILL and lose what was never fsynced, on
//! lazy filesystems, then restart). Compound faults chain families: the
//! leader paused until another node leads, then resumed while it still
//! cannot hear the others (it speaks before it learns the new term), and a
//! follower cut off until it lags, then the leader killed (or every other
//! node restarted) and the follower let back in to stand for election, and
//! the leader cut off while it takes writes alone, let back in moments
//! after another node leads (its dropped appends of the old term arrive
//! beside the new leader's first entries) and killed just after the new
//! leader overwrote them, and a lagging follower let
//! back in over slow links to catch up through snapshots.
//!
//! [`schedule`] draws the faults, their start times and their lengths from
//! the seed, densely and overlapping; [`nemesis`] resolves each one against
//! the running cluster (who leads, who lags) when it starts and undoes it
//! when it ends.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

pub mod nemesis;
pub mod partition;
pub mod power;
pub mod process;
pub mod schedule;
pub mod slow;

pub use partition::Shape;
pub use process::Aim;
pub use slow::SlowSpec;

/// A family of faults that `--nemesis` can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Kill,
    Pause,
    Partition,
    Slow,
    /// Needs root and `/dev/fuse` ([`power::check_available`]).
    Power,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Kill,
        Family::Pause,
        Family::Partition,
        Family::Slow,
        Family::Power,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Partition => "partition",
            Family::Slow => "slow",
            Family::Power => "power",
        }
    }

    /// True for the families that act on the network between nodes.
    pub fn is_network(self) -> bool {
        matches!(self, Family::Partition | Family::Slow)
    }
}

/// Parses `kill,pause,partition,slow,power` (comma-separated), `all` or
/// `none`.
pub fn parse_families(spec: &str) -> Result<Vec<Family>, String> {
    let spec = spec.trim();
    if spec == "all" {
        return Ok(Family::ALL.to_vec());
    }
    if spec == "none" {
        return Ok(Vec::new());
    }
    let mut families = BTreeSet::new();
    for part in spec.split(',') {
        let family = Family::ALL
            .into_iter()
            .find(|f| f.name() == part.trim())
            .ok_or_else(|| {
                format!(
                    "--nemesis: unknown fault {:?}; expected kill, pause, partition, slow, power (comma-separated), all or none",
                    part.trim()
                )
            })?;
        families.insert(family);
    }
    Ok(families.into_iter().collect())
}

/// One fault as the schedule plans it, before it meets the cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// SIGKILL the nodes `Aim` picks; restart them when the fault ends.
    Kill(Aim),
    /// Kill them as a crash in the middle of a write would: the start of a
    /// record that never finished is left at the end of each one's log.
    KillTorn(Aim),
    /// SIGKILL them, lose what they never fsynced (a torn write drawn per
    /// cut), restart them when the fault ends.
    PowerCut(Aim),
    /// SIGSTOP them; SIGCONT them when the fault ends.
    Pause(Aim),
    /// Cut the network into a shape.
    Partition(Shape),
    /// Slow some links down.
    Slow(SlowSpec),
    /// Pause the leader until another node leads, then cut it off from
    /// hearing the others and resume it: it acts on its old term until it
    /// steps down.
    PauseLeaderResumeDeaf,
    /// Cut a follower off until it lags behind, kill the leader, then let
    /// the follower back in: the lagging node stands for election.
    LagThenKillLeader,
    /// Cut a follower off until it lags behind, kill every other node, let
    /// the follower back in and restart the others: the lagging node, its
    /// election timer long expired, asks freshly started nodes for votes.
    LagThenRestartOthers,
    /// Cut the leader off (the links among the others slowed meanwhile)
    /// until another node leads, let out what it sent alone while the new
    /// leader's first entries are on their way, let it back in, and kill
    /// it a moment after the new leader has overwritten the entries it
    /// took alone: the overwrite must survive the restart.
    IsolateLeaderThenKill,
    /// Cut a follower off until it lags behind the leader's compacted log,
    /// then let it back in over slow links: it catches up through
    /// InstallSnapshot while the leader goes on compacting.
    LagThenCatchUpSlowly,
}

impl Plan {
    /// A short name for reports, e.g. `kill leader`, `partition bridge`.
    pub fn name(&self) -> String {
        match self {
            Plan::Kill(aim) => format!("kill {}", aim.name()),
            Plan::KillTorn(aim) => format!("kill {} mid-write", aim.name()),
            Plan::PowerCut(aim) => format!("power-cut {}", aim.name()),
            Plan::Pause(aim) => format!("pause {}", aim.name()),
            Plan::Partition(shape) => format!("partition {}", shape.name()),
            Plan::Slow(spec) => format!("slow {}", spec.links.name()),
            Plan::PauseLeaderResumeDeaf => "pause leader, resume deaf".into(),
            Plan::LagThenKillLeader => "lag follower, kill leader".into(),
            Plan::LagThenRestartOthers => "lag follower, restart the others".into(),
            Plan::IsolateLeaderThenKill => "isolate leader, kill it once back".into(),
            Plan::LagThenCatchUpSlowly => "lag follower, catch up slowly".into(),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A fault with its place in the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Numbers the faults of a run in start order (the nemesis events of one
    /// fault carry it).
    pub id: u32,
    /// When it starts, counted from the start of the workload.
    pub start: Duration,
    /// How long it lasts (compound faults split it between their steps).
    pub length: Duration,
    pub plan: Plan,
    /// Seeds the choices made when the fault meets the cluster (which
    /// follower, which half), so that they too follow from `--seed`.
    pub choice_seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families() {
        assert_eq!(parse_families("all").unwrap(), Family::ALL.to_vec());
        assert!(parse_families("none").unwrap().is_empty());
        assert_eq!(
            parse_families("slow, kill").unwrap(),
            vec![Family::Kill, Family::Slow]
        );
        let err = parse_families("kill,flood").unwrap_err();
        assert!(err.contains("\"flood\""), "{err}");
    }
}
