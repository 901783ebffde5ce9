//! The nemesis: carries out a schedule against a running cluster.
//!
//! Every planned fault runs as a task of its own: it waits for its start,
//! resolves its aim against the cluster as it is then, applies itself,
//! records a nemesis event, waits out its length (never past the end of the
//! workload) and undoes itself. Faults overlap freely; a node is held by at
//! most one process fault at a time (an aim finds no free node: the fault
//! is skipped), and the network is the merge of every active partition and
//! slow fault. A watcher notes nodes that exit on their own.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::super::LiveState;
use super::super::proxy::{LinkId, LinkMode, NodeId, Proxies};
use super::super::recorder::{EventType, NEMESIS, Recorder};
use super::super::target::{NodeView, Observe, Role};
use super::super::watch::{ClusterWatch, Leadership};
use super::partition::{self, Cut, CutStyle};
use super::power::{self, PowerCut};
use super::process::{self, Aim};
use super::slow::{self, SlowSpec};
use super::{Plan, Planned, Shape};
use crate::cluster::{Cluster, NodeState};

/// A node that exited without being told to.
#[derive(Debug, Clone, PartialEq)]
pub struct Crash {
    pub node: NodeId,
    pub status: String,
    /// Seconds since the workload started.
    pub time_s: f64,
    /// Set when the node stopped for a reason outside the system under
    /// test (its port taken by another program): a set-up error, not a
    /// finding.
    pub setup_error: Option<String>,
}

impl Crash {
    /// A crash of `node`, classified by the end of its log.
    pub fn new(node: NodeId, status: String, time_s: f64, log: &std::path::Path) -> Crash {
        Crash {
            node,
            status,
            time_s,
            setup_error: setup_error(log),
        }
    }
}

/// The line of a node's log that says it could not listen on its port, if
/// that is how it ended.
fn setup_error(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    let last = text.lines().rev().take(5).find(|l| {
        l.contains("cannot listen on") && l.to_ascii_lowercase().contains("address already in use")
    })?;
    Some(last.trim().to_string())
}

/// What the nemesis did.
#[derive(Debug, Default, Clone)]
pub struct NemesisReport {
    /// Faults applied.
    pub applied: usize,
    /// Faults whose aim found no node to hit (held by another fault).
    pub skipped: usize,
    /// The plans applied, by name, with how often.
    pub plans: BTreeMap<String, usize>,
    pub crashes: Vec<Crash>,
}

/// What the active faults hold.
#[derive(Default)]
struct Held {
    /// Node -> the fault that killed or paused it.
    nodes: BTreeMap<NodeId, u32>,
    /// Fault -> the modes it imposes on links.
    links: BTreeMap<u32, BTreeMap<LinkId, LinkMode>>,
}

pub struct Nemesis<O: Observe> {
    cluster: Arc<Mutex<Cluster>>,
    proxies: Arc<Proxies>,
    observer: Arc<O>,
    watch: Arc<ClusterWatch>,
    rec: Arc<Recorder>,
    live: Arc<LiveState>,
    ids: Vec<NodeId>,
    start: Instant,
    deadline: Instant,
    tear: Option<TearFn>,
    power: Option<Arc<dyn PowerCut>>,
    held: Mutex<Held>,
    report: Mutex<NemesisReport>,
}

/// Why a fault did not happen.
struct Skipped;

/// What a process fault does to its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Kill,
    KillTorn,
    PowerCut,
    Pause,
}

/// Leaves a torn write at the end of the log in a (stopped) node's data
/// directory; says where (`None` when there is no log yet).
pub type TearFn = fn(
    &std::path::Path,
    &mut ChaCha8Rng,
) -> Result<Option<super::super::target::TornWrite>, String>;

/// Seconds since the Unix epoch, to line an event up with node log lines.
fn unix_now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl<O: Observe> Nemesis<O> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cluster: Arc<Mutex<Cluster>>,
        proxies: Arc<Proxies>,
        observer: Arc<O>,
        watch: Arc<ClusterWatch>,
        rec: Arc<Recorder>,
        live: Arc<LiveState>,
        start: Instant,
        deadline: Instant,
        tear: Option<TearFn>,
        power: Option<Arc<dyn PowerCut>>,
    ) -> Arc<Nemesis<O>> {
        let ids = cluster.lock().unwrap().ids();
        Arc::new(Nemesis {
            cluster,
            proxies,
            observer,
            watch,
            rec,
            live,
            ids,
            start,
            deadline,
            tear,
            power,
            held: Mutex::new(Held::default()),
            report: Mutex::new(NemesisReport::default()),
        })
    }

    /// Runs `schedule` until the deadline, then undoes whatever is still
    /// active (the run heals everything after this anyway).
    pub async fn run(self: Arc<Self>, schedule: Vec<Planned>) -> NemesisReport {
        let crash_watch = tokio::spawn(self.clone().watch_crashes());
        let mut tasks = Vec::new();
        for planned in schedule {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                let name = planned.plan.name();
                match me.execute(&planned).await {
                    Ok(()) => {
                        let mut r = me.report.lock().unwrap();
                        r.applied += 1;
                        *r.plans.entry(name).or_default() += 1;
                    }
                    Err(Skipped) => me.report.lock().unwrap().skipped += 1,
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        // Crashes are watched for the whole workload, faults or not.
        self.sleep_until(self.deadline).await;
        crash_watch.abort();
        self.note_crashes();
        self.report.lock().unwrap().clone()
    }

    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    async fn watch_crashes(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.note_crashes();
        }
    }

    fn note_crashes(&self) {
        let crashes: Vec<(NodeId, ExitStatus, std::path::PathBuf)> = {
            let mut cluster = self.cluster.lock().unwrap();
            let crashed = cluster.crashed();
            crashed
                .into_iter()
                .map(|(node, status)| (node, status, cluster.log_path(node)))
                .collect()
        };
        for (node, status, log) in crashes {
            let status = status.to_string();
            self.rec.record(
                NEMESIS,
                EventType::Info,
                "crashed",
                None,
                json!({ "node": node, "status": status }),
                None,
            );
            *self.live.last_fault.lock().unwrap() = format!("node {node} exited ({status})");
            self.report.lock().unwrap().crashes.push(Crash::new(
                node,
                status,
                self.seconds(),
                &log,
            ));
        }
    }

    /// Sleeps until `t` or the deadline, whichever is first; false once the
    /// deadline has passed.
    async fn sleep_until(&self, t: Instant) -> bool {
        let until = t.min(self.deadline);
        tokio::time::sleep_until(until.into()).await;
        Instant::now() < self.deadline
    }

    fn record(&self, planned: &Planned, f: &str, mut value: Value) {
        value["fault"] = planned.id.into();
        value["plan"] = planned.plan.name().into();
        self.rec
            .record(NEMESIS, EventType::Info, f, None, value, None);
        *self.live.last_fault.lock().unwrap() = format!("{f} ({})", planned.plan.name());
    }

    async fn execute(&self, planned: &Planned) -> Result<(), Skipped> {
        if !self.sleep_until(self.start + planned.start).await {
            return Err(Skipped);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(planned.choice_seed);
        let end = Instant::now() + planned.length;
        match planned.plan {
            Plan::Kill(aim) | Plan::KillTorn(aim) | Plan::Pause(aim) | Plan::PowerCut(aim) => {
                let action = match planned.plan {
                    Plan::Kill(_) => Action::Kill,
                    Plan::KillTorn(_) => Action::KillTorn,
                    Plan::PowerCut(_) => Action::PowerCut,
                    _ => Action::Pause,
                };
                // An election usually comes within a second under this
                // schedule; waiting longer would stack faults on the next.
                let patience = planned.length.min(Duration::from_millis(1500));
                let nodes = self.aim(aim, patience, &mut rng).await;
                let nodes = self.hold(planned, &nodes, action, &mut rng)?;
                self.sleep_until(end.max(Instant::now())).await;
                self.release(planned, &nodes, action);
            }
            Plan::Partition(shape) => {
                let leader = self.leader().await;
                let cut = partition::cut(shape, &self.ids, leader, &mut rng);
                self.cut(planned, &cut, CutStyle::draw(&mut rng));
                self.sleep_until(end).await;
                self.uncut(planned, "heal");
            }
            Plan::Slow(spec) => self.slow(planned, spec, end, &mut rng).await,
            Plan::PauseLeaderResumeDeaf => self.pause_resume_deaf(planned, end).await?,
            Plan::LagThenKillLeader => self.lag_then_kill(planned, end, &mut rng).await?,
            Plan::LagThenRestartOthers => {
                self.lag_then_restart_others(planned, end, &mut rng).await?
            }
            Plan::IsolateLeaderThenKill => self.isolate_then_kill(planned, end, &mut rng).await?,
            Plan::LagThenCatchUpSlowly => {
                self.lag_then_catch_up_slowly(planned, end, &mut rng)
                    .await?
            }
        }
        Ok(())
    }

    async fn leader(&self) -> Option<NodeId> {
        match super::super::target::leader_of(&self.observer.views().await) {
            Some((id, _)) => Some(id),
            None => self.watch.leadership().leader.map(|(id, _)| id),
        }
    }

    fn free(&self) -> BTreeSet<NodeId> {
        let held = self.held.lock().unwrap();
        self.ids
            .iter()
            .copied()
            .filter(|id| !held.nodes.contains_key(id))
            .collect()
    }

    /// The nodes `aim` picks now. A fault aimed at the leader waits (for at
    /// most `patience`) until some node leads, one aimed at a new leader
    /// until a leader elected a moment ago is in office.
    async fn aim(&self, aim: Aim, patience: Duration, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
        match aim {
            Aim::Leader => {
                self.await_leadership(patience, |l| l.leader.is_some())
                    .await
            }
            Aim::NewLeader => {
                self.await_leadership(patience, |l| {
                    l.leader.is_some() && l.since.elapsed() < Duration::from_millis(300)
                })
                .await
            }
            _ => {}
        }
        let views = self.observer.views().await;
        process::pick(aim, self.ids.len(), &self.free(), &views, rng)
    }

    /// Returns once the leadership the watch sees satisfies `ready`, or
    /// after `patience`, or at the deadline.
    async fn await_leadership(&self, patience: Duration, ready: impl Fn(&Leadership) -> bool) {
        let mut rx = self.watch.subscribe();
        let give_up = (Instant::now() + patience).min(self.deadline);
        loop {
            if ready(&rx.borrow_and_update()) {
                return;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(give_up.into()) => return,
            }
        }
    }

    /// Takes `nodes` for fault `planned` (those still free), kills or
    /// pauses them (leaving a torn write where asked), and records it.
    fn hold(
        &self,
        planned: &Planned,
        nodes: &[NodeId],
        action: Action,
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<NodeId>, Skipped> {
        let taken: Vec<NodeId> = {
            let mut held = self.held.lock().unwrap();
            let taken: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|id| !held.nodes.contains_key(id))
                .collect();
            for &id in &taken {
                held.nodes.insert(id, planned.id);
            }
            taken
        };
        if taken.is_empty() {
            return Err(Skipped);
        }
        let mut torn = Vec::new();
        {
            let mut cluster = self.cluster.lock().unwrap();
            for &id in &taken {
                let result = match action {
                    Action::Kill | Action::KillTorn | Action::PowerCut => cluster.kill(id),
                    Action::Pause if cluster.state(id) == NodeState::Running => cluster.pause(id),
                    Action::Pause => Ok(()),
                };
                if let Err(e) = result {
                    eprintln!("harness run: {e}");
                }
                if action == Action::KillTorn
                    && let Some(tear) = self.tear
                {
                    match tear(&cluster.data_dir(id), rng) {
                        Ok(Some(t)) => torn.push(json!({
                            "node": id,
                            "bytes": t.bytes,
                            "file": t.file.display().to_string(),
                            "kept": t.kept,
                            "unix_s": unix_now_s(),
                        })),
                        Ok(None) => torn.push(json!({ "node": id, "bytes": 0 })),
                        Err(e) => eprintln!("harness run: node {id}: {e}"),
                    }
                }
            }
        }
        let mut value = json!({ "nodes": taken });
        if action == Action::KillTorn {
            value["torn"] = torn.into();
        }
        if action == Action::PowerCut {
            // Every node of the cut is dead before any loses its data: a
            // whole-cluster cut is one instant.
            value["cuts"] = self.cut_power(&taken, rng).into();
        }
        let f = match action {
            Action::Pause => "pause",
            Action::PowerCut => "power-cut",
            Action::Kill | Action::KillTorn => "kill",
        };
        self.record(planned, f, value);
        Ok(taken)
    }

    /// Drops what `nodes` (killed and reaped) never made durable; what each
    /// lost, for the history.
    fn cut_power(&self, nodes: &[NodeId], rng: &mut ChaCha8Rng) -> Vec<Value> {
        let Some(supply) = &self.power else {
            eprintln!("harness run: a power cut without lazy data directories; only killed");
            return Vec::new();
        };
        let mut cuts = Vec::new();
        for &id in nodes {
            let torn = power::draw_torn(rng);
            let seed = rng.random();
            match supply.cut(id, torn, seed) {
                Ok(r) => cuts.push(json!({
                    "node": id,
                    "torn": torn.to_string(),
                    "bytes_lost": r.bytes_lost,
                    "bytes_kept": r.bytes_kept,
                    "files_reverted": r.files_reverted,
                    "entries_undone": r.entries_undone,
                })),
                Err(e) => eprintln!("harness run: power cut of node {id}: {e}"),
            }
        }
        cuts
    }

    /// Restarts or resumes `nodes` and lets them go.
    fn release(&self, planned: &Planned, nodes: &[NodeId], action: Action) {
        let kill = action != Action::Pause;
        let f = match action {
            Action::Pause => "resume",
            Action::PowerCut => "power-on",
            Action::Kill | Action::KillTorn => "restart",
        };
        {
            let mut cluster = self.cluster.lock().unwrap();
            for &id in nodes {
                let result = match (kill, cluster.state(id)) {
                    (true, NodeState::Down) => cluster.start(id),
                    (false, NodeState::Paused) => cluster.resume(id),
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    eprintln!("harness run: {e}");
                }
            }
        }
        {
            let mut held = self.held.lock().unwrap();
            for id in nodes {
                held.nodes.remove(id);
            }
        }
        self.record(planned, f, json!({ "nodes": nodes }));
    }

    /// Sets the link modes of fault `id` (replacing its earlier ones) and
    /// pushes the merged network to the proxies.
    fn set_links(&self, id: u32, modes: BTreeMap<LinkId, LinkMode>) {
        let mut held = self.held.lock().unwrap();
        if modes.is_empty() {
            held.links.remove(&id);
        } else {
            held.links.insert(id, modes);
        }
        self.push_links(&held);
    }

    /// Adds `modes` to those fault `id` holds (a link it holds already
    /// takes the stricter of both) and pushes the merged network.
    fn add_links(&self, id: u32, modes: &BTreeMap<LinkId, LinkMode>) {
        let mut held = self.held.lock().unwrap();
        let own = held.links.entry(id).or_default();
        for (&link, &mode) in modes {
            slow::merge(own, link, mode);
        }
        self.push_links(&held);
    }

    fn push_links(&self, held: &Held) {
        let mut merged = BTreeMap::new();
        for modes in held.links.values() {
            for (&link, &mode) in modes {
                slow::merge(&mut merged, link, mode);
            }
        }
        self.proxies.set_modes(&merged);
    }

    fn cut(&self, planned: &Planned, cut: &Cut, style: CutStyle) {
        self.cut_styled(planned, cut, |_| style);
    }

    /// Cuts `cut`'s links, each in the style `style_of` gives it.
    fn cut_styled(&self, planned: &Planned, cut: &Cut, style_of: impl Fn(LinkId) -> CutStyle) {
        let styles: BTreeMap<LinkId, CutStyle> =
            cut.links.iter().map(|&l| (l, style_of(l))).collect();
        self.set_links(
            planned.id,
            styles.iter().map(|(&l, s)| (l, s.mode())).collect(),
        );
        let links: Vec<[NodeId; 2]> = cut.links.iter().map(|&(a, b)| [a, b]).collect();
        let dropped: Vec<[NodeId; 2]> = styles
            .iter()
            .filter(|(_, s)| **s == CutStyle::Drop)
            .map(|(&(a, b), _)| [a, b])
            .collect();
        let style = if dropped.is_empty() {
            CutStyle::Reset.name()
        } else if dropped.len() == links.len() {
            CutStyle::Drop.name()
        } else {
            "mixed"
        };
        let mut value = json!({
            "shape": cut.name,
            "groups": cut.description,
            "cut": links,
            "style": style,
        });
        if style == "mixed" {
            value["dropped"] = dropped.into();
        }
        self.record(planned, "partition", value);
    }

    fn uncut(&self, planned: &Planned, f: &str) {
        self.set_links(planned.id, BTreeMap::new());
        self.record(planned, f, json!({}));
    }

    /// Slows the spec's links until `end`, stalling some of them now and
    /// then if the spec says so.
    async fn slow(&self, planned: &Planned, spec: SlowSpec, end: Instant, rng: &mut ChaCha8Rng) {
        let leader = self.leader().await;
        let links = spec.pick_links(&self.ids, leader, rng);
        let base = self.slow_links(planned, &links, spec.delay, spec.jitter, spec.stalls);
        let mut stalls = 0u32;
        if spec.stalls {
            let all: Vec<LinkId> = links.iter().copied().collect();
            loop {
                let (wait, length) = slow::next_stall(rng);
                let k = rng.random_range(1..=all.len());
                let stalled: Vec<LinkId> = all.choose_multiple(rng, k).copied().collect();
                if !self.sleep_until((Instant::now() + wait).min(end)).await
                    || Instant::now() >= end
                {
                    break;
                }
                let mut modes = base.clone();
                for l in &stalled {
                    if let Some(m) = modes.get_mut(l) {
                        m.stalled = true;
                    }
                }
                self.set_links(planned.id, modes);
                stalls += 1;
                let go_on = self.sleep_until((Instant::now() + length).min(end)).await;
                self.set_links(planned.id, base.clone());
                if !go_on || Instant::now() >= end {
                    break;
                }
            }
        } else {
            self.sleep_until(end).await;
        }
        self.set_links(planned.id, BTreeMap::new());
        self.record(planned, "slow-end", json!({ "stalls": stalls }));
    }

    /// Slows `links` by `delay` (plus up to `jitter`), beside whatever
    /// else the fault holds, and records it; returns the links' modes.
    fn slow_links(
        &self,
        planned: &Planned,
        links: &BTreeSet<LinkId>,
        delay: Duration,
        jitter: Duration,
        stalls: bool,
    ) -> BTreeMap<LinkId, LinkMode> {
        let mode = LinkMode {
            delay,
            jitter,
            ..LinkMode::OPEN
        };
        let modes: BTreeMap<LinkId, LinkMode> = links.iter().map(|&l| (l, mode)).collect();
        self.add_links(planned.id, &modes);
        let listed: Vec<[NodeId; 2]> = links.iter().map(|&(a, b)| [a, b]).collect();
        self.record(
            planned,
            "slow",
            json!({
                "links": listed,
                "delay_ms": delay.as_secs_f64() * 1e3,
                "jitter_ms": jitter.as_secs_f64() * 1e3,
                "stalls": stalls,
            }),
        );
        modes
    }

    /// Makes the leader deaf (every link into it cut) and pauses it until
    /// another node leads (for at most 60 % of the fault's length) and has
    /// led for a moment, then resumes it, still deaf, and lets it hear the
    /// others again a moment later.
    /// Deaf before the pause, so that no message of the new term waits in
    /// its sockets: on resuming it acts as the leader of its old term
    /// (answers reads, takes writes, sends appends) until it steps down.
    async fn pause_resume_deaf(&self, planned: &Planned, end: Instant) -> Result<(), Skipped> {
        let mut rng = ChaCha8Rng::seed_from_u64(planned.choice_seed);
        let target = self.aim(Aim::Leader, planned.length / 2, &mut rng).await;
        let Some(&old) = target.first() else {
            return Err(Skipped);
        };
        self.cut(planned, &partition::deaf(&self.ids, old), CutStyle::Reset);
        let nodes = match self.hold(planned, &target, Action::Pause, &mut rng) {
            Ok(nodes) => nodes,
            Err(skipped) => {
                self.uncut(planned, "heal");
                return Err(skipped);
            }
        };
        let budget = planned.length.mul_f64(0.6);
        self.await_leadership(budget, |l| matches!(l.leader, Some((id, _)) if id != old))
            .await;
        // Let the new leader commit a little before the old one wakes.
        let work = Duration::from_millis(rng.random_range(200..1000));
        self.sleep_until((Instant::now() + work).min(end)).await;
        self.release(planned, &nodes, Action::Pause);
        // Deaf for a while after waking (it steps down within an election
        // timeout), then hearing the others again while clients that were
        // waiting on it may still be waiting for their answers.
        let deaf_for = Duration::from_millis(rng.random_range(100..1500));
        self.sleep_until((Instant::now() + deaf_for).min(end)).await;
        self.uncut(planned, "heal");
        self.sleep_until(end.max(Instant::now())).await;
        Ok(())
    }

    /// Cuts a follower off for 40 % of the fault's length, kills the
    /// leader while the follower is still cut off (so it cannot catch up),
    /// lets the follower back in as the hub of a star for a moment, then
    /// heals, and restarts the leader at `end`: the lagging node stands for
    /// election against nodes that hold entries it lacks.
    async fn lag_then_kill(
        &self,
        planned: &Planned,
        end: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), Skipped> {
        let lagger = self.lag_follower(planned, rng).await?;
        let target = self.aim(Aim::Leader, Duration::ZERO, rng).await;
        let target: Vec<NodeId> = target.into_iter().filter(|&id| id != lagger).collect();
        let killed = self.hold(planned, &target, Action::Kill, rng);
        self.lagger_as_hub(planned, lagger);
        self.sleep_until(Instant::now() + hub_time(rng)).await;
        self.uncut(planned, "heal");
        if let Ok(nodes) = killed {
            self.sleep_until(end.max(Instant::now())).await;
            self.release(planned, &nodes, Action::Kill);
        }
        Ok(())
    }

    /// Lets a lagging follower back in as the hub of a star: the others
    /// reach it and not each other. While that lasts it is the only node
    /// that can hear from a majority, so the only one that can be elected,
    /// and its log lacks what the others committed: a correct cluster
    /// elects no one until the heal; one that grants votes without
    /// comparing logs elects it, and it overwrites committed entries.
    fn lagger_as_hub(&self, planned: &Planned, lagger: NodeId) {
        self.cut(
            planned,
            &partition::star(&self.ids, lagger),
            CutStyle::Reset,
        );
    }

    /// Cuts a follower off for 40 % of the fault's length, kills every
    /// other node, lets the follower back in as the hub of a star and
    /// restarts the others a moment later, then heals. The follower's
    /// election timer ran out long ago, the restarted nodes know no leader
    /// and cannot reach each other: its request for votes comes first, from
    /// a log that lacks what the others committed without it.
    async fn lag_then_restart_others(
        &self,
        planned: &Planned,
        end: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), Skipped> {
        let lagger = self.lag_follower(planned, rng).await?;
        let others: Vec<NodeId> = self.ids.iter().copied().filter(|&x| x != lagger).collect();
        let killed = self.hold(planned, &others, Action::Kill, rng);
        self.lagger_as_hub(planned, lagger);
        if let Ok(nodes) = killed {
            let down = Duration::from_millis(rng.random_range(50..500));
            self.sleep_until(Instant::now() + down).await;
            self.release(planned, &nodes, Action::Kill);
        }
        self.sleep_until(Instant::now() + hub_time(rng)).await;
        self.uncut(planned, "heal");
        self.sleep_until(end.max(Instant::now())).await;
        Ok(())
    }

    /// Cuts the leader off from everyone (its packets dropped, those to it
    /// reset) and slows the links among the others until another node
    /// leads: its clients' writes pile up in its log alone, its appends in
    /// the network. Lets its packets out to the followers two to three
    /// crossings after another node is seen leading, to the new leader
    /// with the others' to it 30 to 200 ms later, and kills it 0 to 100 ms
    /// after it is seen following the new leader with an applied index
    /// past the commit index it had alone (the new leader's entries have
    /// durably replaced its lone ones); restarts it
    /// at `end`. The waits are short so that the overwrite is a truncation
    /// of the old leader's log rather than a snapshot (the new leader still
    /// holds the entries after the fork) and the kill comes before the old
    /// leader's next snapshot covers it: a log that does not make the
    /// truncation durable brings the overwritten entries back at the
    /// restart.
    async fn isolate_then_kill(
        &self,
        planned: &Planned,
        end: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), Skipped> {
        let target = self.aim(Aim::Leader, planned.length / 2, rng).await;
        let Some(&old) = target.first() else {
            return Err(Skipped);
        };
        let cut = partition::cut(Shape::LeaderAlone, &self.ids, Some(old), rng);
        // What it sends is dropped, not reset, and let through first: the
        // appends it sent alone arrive soon after the election, when the
        // followers may hold the new leader's first entries at the same
        // indexes, not yet known to be committed. What is sent to it is
        // reset and let through 30 to 200 ms later: the new leader's first
        // append to it is lost by then, so it hears the new leader anew and
        // a heartbeat may come before the append that mends its log.
        self.cut_styled(planned, &cut, |(from, _)| {
            if from == old {
                CutStyle::Drop
            } else {
                CutStyle::Reset
            }
        });
        // Meanwhile the links among the others are slow (10 to 40 ms each
        // way), so that between a follower's acknowledgement of the new
        // leader's first entry and its learning that the entry is
        // committed lie two crossings, not a fraction of a millisecond.
        let hop = Duration::from_secs_f64(process::log_uniform(rng, 0.01, 0.04));
        let others: Vec<NodeId> = self.ids.iter().copied().filter(|&id| id != old).collect();
        let among = partition::within(&others);
        let slow = self.slow_links(planned, &among, hop, Duration::ZERO, false);
        let new = self
            .await_new_leader(old, planned.length.mul_f64(0.5))
            .await;
        // The new leader's first entry reaches a follower one crossing
        // after the election, the new leader knows it committed after the
        // second, the follower after the third: let what the old leader
        // sent reach the followers in between. It reaches the new leader
        // only at the heal: taken before the commit, it would replace the
        // new leader's own first entries and its followers would follow.
        let work = hop.mul_f64(rng.random_range(2.0..3.0));
        self.sleep_until((Instant::now() + work).min(end)).await;
        let mut deaf = partition::deaf(&self.ids, old);
        if let Some(new) = new {
            deaf.links.insert((old, new));
            deaf.description += &format!(", [{old}] -/-> [{new}] held");
        }
        self.cut_styled(planned, &deaf, |(from, _)| {
            if from == old {
                CutStyle::Drop
            } else {
                CutStyle::Reset
            }
        });
        self.add_links(planned.id, &slow);
        let deaf_for = Duration::from_secs_f64(process::log_uniform(rng, 0.03, 0.2));
        self.sleep_until((Instant::now() + deaf_for).min(end)).await;
        let alone_commit = self.view_of(old).await.map_or(0, |v| v.commit_index);
        self.uncut(planned, "heal");
        self.record(planned, "slow-end", json!({ "stalls": 0 }));
        let give_up = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < give_up {
            // Applied past what it had committed alone: the new leader's
            // entries replaced its own in its log (durably: a node applies
            // only what it stored), and the clients still waiting on it
            // for those indexes have their answers.
            let rejoined = self.view_of(old).await.is_some_and(|v| {
                v.leader.is_some_and(|l| l != old) && v.applied_index > alone_commit
            });
            if rejoined {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = Duration::from_millis(rng.random_range(0..100));
        self.sleep_until(Instant::now() + after).await;
        let nodes = self.hold(planned, &[old], Action::Kill, rng)?;
        let down = Instant::now() + Duration::from_millis(300);
        self.sleep_until(end.max(down)).await;
        self.release(planned, &nodes, Action::Kill);
        Ok(())
    }

    /// Returns the first node other than `old` that says it leads, or
    /// nothing after `patience`. Asks every node every millisecond rather
    /// than waiting for the watch (every 100 ms): the new leader's first
    /// entries are committed within milliseconds, and what the old leader
    /// sent alone should arrive while some node still holds them
    /// uncommitted.
    async fn await_new_leader(&self, old: NodeId, patience: Duration) -> Option<NodeId> {
        let give_up = (Instant::now() + patience).min(self.deadline);
        while Instant::now() < give_up {
            let views = self.observer.views().await;
            if let Some(v) = views.iter().find(|v| v.id != old && v.role == Role::Leader) {
                return Some(v.id);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    /// What node `id` says of itself now, if it answers.
    async fn view_of(&self, id: NodeId) -> Option<NodeView> {
        self.observer.views().await.into_iter().find(|v| v.id == id)
    }

    /// Cuts a follower off for 40 % of the fault's length, then lets it
    /// back in over links slowed by 20 to 120 ms each way (plus jitter)
    /// for the rest: it needs snapshots to catch up, and while each one
    /// travels the leader compacts again and its probes, appends and
    /// snapshots to the follower cross in flight.
    async fn lag_then_catch_up_slowly(
        &self,
        planned: &Planned,
        end: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), Skipped> {
        let lagger = self.lag_follower(planned, rng).await?;
        let delay = Duration::from_secs_f64(process::log_uniform(rng, 0.02, 0.12));
        let jitter = delay.mul_f64(0.5 * rng.random::<f64>());
        let links: BTreeSet<LinkId> = self
            .ids
            .iter()
            .filter(|&&x| x != lagger)
            .flat_map(|&x| [(x, lagger), (lagger, x)])
            .collect();
        self.uncut(planned, "heal");
        self.slow_links(planned, &links, delay, jitter, false);
        self.sleep_until(end.max(Instant::now())).await;
        self.set_links(planned.id, BTreeMap::new());
        self.record(planned, "slow-end", json!({ "stalls": 0 }));
        Ok(())
    }

    /// Waits for a leader, cuts a random follower off from every other
    /// node and keeps it so for 40 % of the fault's length, while the
    /// others commit without it. Returns the follower, still cut off.
    async fn lag_follower(
        &self,
        planned: &Planned,
        rng: &mut ChaCha8Rng,
    ) -> Result<NodeId, Skipped> {
        self.await_leadership(planned.length / 2, |l| l.leader.is_some())
            .await;
        let leader = self.leader().await;
        let followers: Vec<NodeId> = self
            .ids
            .iter()
            .copied()
            .filter(|&id| Some(id) != leader)
            .collect();
        let Some(&lagger) = followers.choose(rng) else {
            return Err(Skipped);
        };
        let others: Vec<NodeId> = self.ids.iter().copied().filter(|&x| x != lagger).collect();
        let cut = Cut {
            name: "follower-alone",
            description: format!("[{lagger}] | {others:?}"),
            links: partition::between(&[lagger], &others),
        };
        self.cut(planned, &cut, CutStyle::Reset);
        self.sleep_until(Instant::now() + planned.length.mul_f64(0.4))
            .await;
        Ok(lagger)
    }
}

/// How long a lagging follower stays the hub of a star: 0.8 to 1.5 s,
/// several election timeouts of a node with the default settings (300 to
/// 600 ms), so that it stands for election more than once while no other
/// node can win.
fn hub_time(rng: &mut ChaCha8Rng) -> Duration {
    Duration::from_secs_f64(process::log_uniform(rng, 0.8, 1.5))
}
