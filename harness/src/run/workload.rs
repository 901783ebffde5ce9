//! The workload: concurrent logical clients issuing a seeded random mix of
//! set/get/cas/noop over a few keys, recording every invoke and completion.
//!
//! A worker is one of `--concurrency` slots. It runs one operation at a time
//! as a logical process; after an indeterminate result it continues as a new
//! process (`process + concurrency`) with a new client session, as Jepsen
//! does, since the old process may still have an operation in flight. The
//! backend decides what a process's session is like (for a real cluster:
//! which node it is bound to, how patient it is).
//!
//! Every write has a value no other write of the run uses. A cas compares
//! with the value most recently seen for its key by any worker (now and
//! then with this worker's own, possibly older, view), so that many cas
//! operations apply.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::recorder::{EventType, Process, Recorder};

/// One operation a client issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Set {
        key: String,
        value: String,
    },
    Get {
        key: String,
    },
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    Noop,
}

impl Op {
    pub fn f(&self) -> &'static str {
        match self {
            Op::Set { .. } => "set",
            Op::Get { .. } => "get",
            Op::Cas { .. } => "cas",
            Op::Noop => "noop",
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Set { key, .. } | Op::Get { key } | Op::Cas { key, .. } => Some(key),
            Op::Noop => None,
        }
    }

    /// The `value` of the invoke event.
    pub fn invoke_value(&self) -> Value {
        match self {
            Op::Set { value, .. } => json!(value),
            Op::Get { .. } | Op::Noop => Value::Null,
            Op::Cas { expected, new, .. } => json!([expected, new]),
        }
    }
}

/// What a successful operation returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// For a get, the value read (None: absent).
    pub read: Option<String>,
    /// The node that answered, when known.
    pub node: Option<u64>,
    /// The log index the node gave (the write's entry, or the index a read
    /// was served at), when known.
    pub log_index: Option<u64>,
}

impl Done {
    /// A result that says nothing but "it happened".
    #[cfg(test)]
    pub fn plain() -> Done {
        Done::default()
    }

    /// A read of `value`.
    #[cfg(test)]
    pub fn read(value: Option<String>) -> Done {
        Done {
            read: value,
            ..Done::default()
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// It happened.
    Ok(Done),
    /// It definitely did not happen (a cas whose comparison failed, or a
    /// rejection before anything was proposed).
    Fail(String),
    /// It definitely did not happen, and the node named the log entry
    /// whose application decided so (a cas whose comparison failed).
    Declined { why: String, done: Done },
    /// It may or may not have happened.
    Info(String),
}

/// A client session against the cluster.
pub trait Session: Send + 'static {
    fn execute(&mut self, op: &Op) -> impl Future<Output = Completion> + Send;

    /// How long the worker waits before its next operation (asked after
    /// each one; a client that was told to go away may want to wait).
    fn rest(&mut self) -> Duration {
        Duration::ZERO
    }
}

/// Opens client sessions; each session has its own client id.
pub trait Backend: Send + Sync + 'static {
    type Session: Session;
    /// A session for logical process `process`.
    fn session(&self, process: u64) -> impl Future<Output = Result<Self::Session, String>> + Send;
}

/// The value most recently seen for each key, shared by all workers.
#[derive(Default)]
pub struct Latest(Mutex<HashMap<String, Option<String>>>);

impl Latest {
    fn get(&self, key: &str) -> Option<Option<String>> {
        self.0.lock().unwrap().get(key).cloned()
    }

    fn set(&self, key: &str, value: Option<String>) {
        self.0.lock().unwrap().insert(key.to_string(), value);
    }
}

/// Relative weights of the operations, from `--mix set=4,get=4,cas=1,noop=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub set: u32,
    pub get: u32,
    pub cas: u32,
    pub noop: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            set: 35,
            get: 45,
            cas: 15,
            noop: 5,
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            set: 0,
            get: 0,
            cas: 0,
            noop: 0,
        };
        for part in s.split(',') {
            let (name, weight) = part.split_once(['=', ':']).ok_or_else(|| {
                format!("--mix: {part:?} is not NAME=WEIGHT (e.g. set=4,get=4,cas=1,noop=1)")
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix: weight {weight:?} of {name} is not a whole number"))?;
            match name.trim() {
                "set" => mix.set = weight,
                "get" => mix.get = weight,
                "cas" => mix.cas = weight,
                "noop" => mix.noop = weight,
                other => {
                    return Err(format!(
                        "--mix: unknown operation {other:?}; expected set, get, cas or noop"
                    ));
                }
            }
        }
        if mix.set + mix.get + mix.cas + mix.noop == 0 {
            return Err("--mix: all weights are zero".into());
        }
        Ok(mix)
    }
}

/// Draws the operations of one worker.
pub struct Generator {
    rng: ChaCha8Rng,
    mix: Mix,
    keys: u32,
    worker: usize,
    written: u64,
    /// The last value this worker read or wrote per key.
    known: HashMap<String, Option<String>>,
    /// The last value any worker read or wrote per key.
    latest: Arc<Latest>,
}

impl Generator {
    pub fn new(seed: u64, worker: usize, mix: Mix, keys: u32, latest: Arc<Latest>) -> Generator {
        let stream = seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Generator {
            rng: ChaCha8Rng::seed_from_u64(stream),
            mix,
            keys: keys.max(1),
            worker,
            written: 0,
            known: HashMap::new(),
            latest,
        }
    }

    /// A value no other write of the run uses.
    fn fresh_value(&mut self) -> String {
        self.written += 1;
        format!("w{}-{}", self.worker, self.written)
    }

    pub fn next_op(&mut self) -> Op {
        let total = self.mix.set + self.mix.get + self.mix.cas + self.mix.noop;
        let mut roll = self.rng.random_range(0..total);
        let key = format!("k{}", self.rng.random_range(0..self.keys));
        if roll < self.mix.set {
            return Op::Set {
                value: self.fresh_value(),
                key,
            };
        }
        roll -= self.mix.set;
        if roll < self.mix.get {
            return Op::Get { key };
        }
        roll -= self.mix.get;
        if roll < self.mix.cas {
            // Mostly compare with the latest value seen, so that many cas
            // operations apply; sometimes with this worker's own view.
            let latest = self.latest.get(&key);
            let expected = match latest {
                Some(latest) if self.rng.random_bool(0.85) => latest,
                _ => self.known.get(&key).cloned().flatten(),
            };
            return Op::Cas {
                new: self.fresh_value(),
                expected,
                key,
            };
        }
        Op::Noop
    }

    /// Learns from a completed operation.
    pub fn observe(&mut self, op: &Op, completion: &Completion) {
        let Completion::Ok(done) = completion else {
            return;
        };
        let (key, value) = match op {
            Op::Set { key, value } => (key, Some(value.clone())),
            Op::Cas { key, new, .. } => (key, Some(new.clone())),
            Op::Get { key } => (key, done.read.clone()),
            Op::Noop => return,
        };
        self.latest.set(key, value.clone());
        self.known.insert(key.clone(), value);
    }
}

/// Live counters for the progress display and the summary.
#[derive(Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// Cas operations that applied, and that definitely did not (the
    /// comparison failed, or nothing was proposed).
    pub cas_ok: AtomicU64,
    pub cas_fail: AtomicU64,
}

/// Settings shared by all workers.
#[derive(Clone)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub concurrency: usize,
    pub keys: u32,
    pub mix: Mix,
    /// Total operations per second over all workers; None: as fast as possible.
    pub rate: Option<f64>,
    /// Longest an operation may take before it is recorded as `info`.
    pub op_timeout: Duration,
}

/// Records one operation: invoke, execute (bounded by `timeout`), completion.
async fn run_op<S: Session>(
    rec: &Recorder,
    counters: &Counters,
    session: &mut S,
    process: u64,
    op: &Op,
    timeout: Duration,
) -> Completion {
    let f = op.f();
    let key = op.key();
    rec.record(
        Process::Client(process),
        EventType::Invoke,
        f,
        key,
        op.invoke_value(),
        None,
    );
    let completion = match tokio::time::timeout(timeout, session.execute(op)).await {
        Ok(c) => c,
        Err(_) => Completion::Info("timed out".into()),
    };
    let (kind, value, error) = match &completion {
        Completion::Ok(done) => {
            counters.ok.fetch_add(1, Ordering::Relaxed);
            if let Op::Cas { .. } = op {
                counters.cas_ok.fetch_add(1, Ordering::Relaxed);
            }
            let value = match op {
                Op::Get { .. } => json!(done.read),
                other => other.invoke_value(),
            };
            (EventType::Ok, value, None)
        }
        Completion::Fail(why) | Completion::Declined { why, .. } => {
            counters.fail.fetch_add(1, Ordering::Relaxed);
            if let Op::Cas { .. } = op {
                counters.cas_fail.fetch_add(1, Ordering::Relaxed);
            }
            (EventType::Fail, op.invoke_value(), Some(why.clone()))
        }
        Completion::Info(why) => {
            counters.info.fetch_add(1, Ordering::Relaxed);
            (EventType::Info, op.invoke_value(), Some(why.clone()))
        }
    };
    match &completion {
        Completion::Ok(done) | Completion::Declined { done, .. } => rec.record_served(
            Process::Client(process),
            kind,
            f,
            key,
            value,
            error,
            done.node,
            done.log_index,
        ),
        _ => rec.record(Process::Client(process), kind, f, key, value, error),
    };
    completion
}

/// One worker's state across the main phase and the final reads.
pub struct Worker<B: Backend> {
    pub process: u64,
    session: Option<B::Session>,
    generator: Generator,
}

impl<B: Backend> Worker<B> {
    pub fn new(slot: usize, config: &WorkloadConfig, latest: Arc<Latest>) -> Worker<B> {
        Worker {
            process: slot as u64,
            session: None,
            generator: Generator::new(config.seed, slot, config.mix, config.keys, latest),
        }
    }

    /// The session, opened on first use (retrying while the cluster has no
    /// reachable node), or None once `deadline` passes.
    async fn session(&mut self, backend: &B, deadline: Instant) -> Option<&mut B::Session> {
        while self.session.is_none() {
            match backend.session(self.process).await {
                Ok(s) => self.session = Some(s),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => return None,
            }
        }
        self.session.as_mut()
    }

    async fn one(
        &mut self,
        backend: &B,
        rec: &Recorder,
        counters: &Counters,
        config: &WorkloadConfig,
        op: &Op,
        deadline: Instant,
    ) -> Option<Completion> {
        let process = self.process;
        let session = self.session(backend, deadline).await?;
        let completion = run_op(rec, counters, session, process, op, config.op_timeout).await;
        let rest = session.rest();
        if !rest.is_zero() {
            tokio::time::sleep(rest.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
        if let Completion::Info(_) = completion {
            self.process += config.concurrency as u64;
            self.session = None;
        }
        Some(completion)
    }

    /// Issues operations until `deadline`.
    pub async fn run(
        &mut self,
        backend: &B,
        rec: &Recorder,
        counters: &Counters,
        config: &WorkloadConfig,
        deadline: Instant,
    ) {
        let interval = config
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(config.concurrency as f64 / r));
        let mut next_at = tokio::time::Instant::now();
        while Instant::now() < deadline {
            if let Some(interval) = interval {
                tokio::time::sleep_until(next_at).await;
                next_at += interval;
                if Instant::now() >= deadline {
                    break;
                }
            }
            let op = self.generator.next_op();
            let Some(completion) = self
                .one(backend, rec, counters, config, &op, deadline)
                .await
            else {
                break;
            };
            self.generator.observe(&op, &completion);
        }
    }

    /// Reads every key once with an `ok` result if possible (up to a few
    /// attempts each, bounded by `deadline`). Returns how many keys were
    /// read successfully.
    pub async fn read_all(
        &mut self,
        backend: &B,
        rec: &Recorder,
        counters: &Counters,
        config: &WorkloadConfig,
        deadline: Instant,
    ) -> u32 {
        let mut read = 0;
        for k in 0..config.keys {
            let op = Op::Get {
                key: format!("k{k}"),
            };
            for _attempt in 0..5 {
                if Instant::now() >= deadline {
                    return read;
                }
                match self
                    .one(backend, rec, counters, config, &op, deadline)
                    .await
                {
                    Some(Completion::Ok(_)) => {
                        read += 1;
                        break;
                    }
                    Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    None => return read,
                }
            }
        }
        read
    }
}

/// Runs `config.concurrency` workers until `deadline`; returns them so the
/// final phase can continue with the same processes.
pub async fn run_workers<B: Backend>(
    backend: Arc<B>,
    rec: Arc<Recorder>,
    counters: Arc<Counters>,
    config: &WorkloadConfig,
    deadline: Instant,
) -> Vec<Worker<B>> {
    let mut tasks = Vec::new();
    let latest = Arc::new(Latest::default());
    for slot in 0..config.concurrency {
        let (backend, rec, counters, config, latest) = (
            backend.clone(),
            rec.clone(),
            counters.clone(),
            config.clone(),
            latest.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut worker = Worker::<B>::new(slot, &config, latest);
            worker
                .run(&backend, &rec, &counters, &config, deadline)
                .await;
            worker
        }));
    }
    let mut workers = Vec::new();
    for t in tasks {
        if let Ok(w) = t.await {
            workers.push(w);
        }
    }
    workers
}

/// Every worker reads every key; returns the number of (worker, key) reads
/// that succeeded.
pub async fn final_reads<B: Backend>(
    workers: Vec<Worker<B>>,
    backend: Arc<B>,
    rec: Arc<Recorder>,
    counters: Arc<Counters>,
    config: &WorkloadConfig,
    deadline: Instant,
) -> u32 {
    let mut tasks = Vec::new();
    for mut worker in workers {
        let (backend, rec, counters, config) = (
            backend.clone(),
            rec.clone(),
            counters.clone(),
            config.clone(),
        );
        tasks.push(tokio::spawn(async move {
            worker
                .read_all(&backend, &rec, &counters, &config, deadline)
                .await
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::run::recorder::read_history;
    use std::sync::Mutex;

    /// An in-memory store answering instantly and atomically, with an
    /// injected indeterminate result every `info_every` operations.
    pub struct MemoryBackend {
        pub data: Arc<Mutex<HashMap<String, String>>>,
        pub info_every: u64,
        pub count: Arc<AtomicU64>,
    }

    pub struct MemorySession {
        data: Arc<Mutex<HashMap<String, String>>>,
        info_every: u64,
        count: Arc<AtomicU64>,
    }

    impl Backend for MemoryBackend {
        type Session = MemorySession;
        async fn session(&self, _process: u64) -> Result<MemorySession, String> {
            Ok(MemorySession {
                data: self.data.clone(),
                info_every: self.info_every,
                count: self.count.clone(),
            })
        }
    }

    impl Session for MemorySession {
        async fn execute(&mut self, op: &Op) -> Completion {
            tokio::task::yield_now().await;
            let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(self.info_every) {
                return Completion::Info("injected".into());
            }
            let mut data = self.data.lock().unwrap();
            match op {
                Op::Set { key, value } => {
                    data.insert(key.clone(), value.clone());
                    Completion::Ok(Done::plain())
                }
                Op::Get { key } => Completion::Ok(Done::read(data.get(key).cloned())),
                Op::Cas { key, expected, new } => {
                    if data.get(key) == expected.as_ref() {
                        data.insert(key.clone(), new.clone());
                        Completion::Ok(Done::plain())
                    } else {
                        Completion::Fail("cas: expected value differs".into())
                    }
                }
                Op::Noop => Completion::Ok(Done::plain()),
            }
        }
    }

    #[test]
    fn parses_mix() {
        let mix: Mix = "set=4,get=4,cas=1,noop=1".parse().unwrap();
        assert_eq!((mix.set, mix.get, mix.cas, mix.noop), (4, 4, 1, 1));
        let mix: Mix = "get:1".parse().unwrap();
        assert_eq!((mix.set, mix.get), (0, 1));
        assert!("set=x".parse::<Mix>().unwrap_err().contains("\"x\""));
        assert!("put=1".parse::<Mix>().unwrap_err().contains("\"put\""));
        assert!("set=0".parse::<Mix>().is_err());
    }

    #[test]
    fn generator_is_seeded_and_values_are_unique() {
        let ops = |seed, worker| {
            let mut g = Generator::new(seed, worker, Mix::default(), 5, Arc::default());
            (0..200).map(|_| g.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(ops(1, 0), ops(1, 0));
        assert_ne!(ops(1, 0), ops(2, 0));
        assert_ne!(ops(1, 0), ops(1, 1));
        let mut values = std::collections::HashSet::new();
        for w in 0..4 {
            for op in ops(1, w) {
                let v = match op {
                    Op::Set { value, .. } => value,
                    Op::Cas { new, .. } => new,
                    _ => continue,
                };
                assert!(values.insert(v), "value written twice");
            }
        }
        let fs: std::collections::HashSet<&str> = ops(1, 0).iter().map(|o| o.f()).collect();
        assert_eq!(fs.len(), 4, "all four operations appear: {fs:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_record_a_well_formed_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Arc::new(Recorder::create(&path).unwrap());
        let counters = Arc::new(Counters::default());
        let backend = Arc::new(MemoryBackend {
            data: Default::default(),
            info_every: 17,
            count: Default::default(),
        });
        let config = WorkloadConfig {
            seed: 5,
            concurrency: 4,
            keys: 3,
            mix: Mix::default(),
            rate: Some(2000.0),
            op_timeout: Duration::from_secs(1),
        };
        let deadline = Instant::now() + Duration::from_millis(300);
        let workers = run_workers(
            backend.clone(),
            rec.clone(),
            counters.clone(),
            &config,
            deadline,
        )
        .await;
        assert_eq!(workers.len(), 4);
        // Each worker reads all 3 keys; an injected info is retried.
        let reads = final_reads(
            workers,
            backend,
            rec.clone(),
            counters.clone(),
            &config,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
        assert_eq!(reads, 12);
        rec.flush().unwrap();

        let events = read_history(&path).unwrap();
        let ops = events.len() / 2;
        // At 2000/s for 0.3 s: a few hundred operations, not unbounded.
        assert!((100..=1200).contains(&ops), "{ops} operations");
        // Every invoke is followed by exactly one completion of the same
        // process before that process invokes again; after an info the
        // process is never used again.
        let mut open: HashMap<u64, &str> = HashMap::new();
        let mut retired = std::collections::HashSet::new();
        for e in &events {
            let Process::Client(p) = e.process else {
                panic!("no nemesis here")
            };
            assert!(!retired.contains(&p), "process {p} used after info");
            match e.kind {
                EventType::Invoke => assert!(open.insert(p, &e.f).is_none()),
                kind => {
                    assert_eq!(open.remove(&p), Some(e.f.as_str()));
                    if kind == EventType::Info {
                        retired.insert(p);
                    }
                }
            }
        }
        assert!(open.is_empty());
        assert!(!retired.is_empty(), "the injected infos were recorded");
        assert_eq!(
            counters.ok.load(Ordering::Relaxed)
                + counters.fail.load(Ordering::Relaxed)
                + counters.info.load(Ordering::Relaxed),
            ops as u64
        );
    }
}
