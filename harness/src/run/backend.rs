//! The workload's view of a raftkv cluster, over `raftkv::client`.
//!
//! Each logical process gets a session bound to one node, as a Jepsen client
//! is: process `p` is bound to the node at position `p mod N`, so every node
//! has clients, including a deposed leader and the minority side of a
//! partition. A not-leader answer is followed to the hinted leader, as a
//! real client would. Half the processes go back to their own node for
//! every operation; the other half stay with the node that last answered
//! (and move on from a node that refuses connections). Each process has its
//! own patience per attempt, from 30 ms to 2.5 s (log-uniform, drawn from
//! the seed): an impatient one retries a write (same session and sequence
//! number) while the first attempt may still be on its way to a commit; a
//! patient one is still waiting for its answer when its node loses and
//! regains touch with the others. A third of the processes make one attempt
//! per operation, as a Jepsen client does (redirects followed, no retry):
//! whatever their node answers is the outcome, however late it comes, and
//! a process whose node hangs moves on to its next operation when its
//! patience, 300 ms to 2.5 s, runs out.
//!
//! The first two workers per node are pinned to it: every operation goes to
//! that node only, in one attempt, and a not-leader answer ends it (then the
//! worker rests 100 ms, so that a follower is asked ten times a second, not
//! in a loop). Every node, whatever the others think of it, always has an
//! operation arriving: a deposed leader that wakes from a pause is asked
//! at once by a client that knows nothing newer. Two, so that while one
//! waits on a slow read the other's write is in flight (and the reverse)
//! when the node loses or regains touch with the others.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use raftkv::client::{Client, ClientError, ClientOptions, Routing};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::faults::process::log_uniform;
use super::proxy::NodeId;
use super::workload::{Backend, Completion, Done, Op, Session};

/// How one logical process behaves as a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientProfile {
    /// Position of its node in the address list.
    pub home: usize,
    /// Every operation starts at its own node again.
    pub return_home: bool,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    /// One attempt per operation: the attempt's outcome is the operation's.
    pub single_attempt: bool,
    /// Talks to its home node only (see the module's comment).
    pub pinned: bool,
}

/// How long a pinned worker rests after its node said it does not lead.
const PINNED_REST: Duration = Duration::from_millis(100);

/// Workers pinned to each node (the first ones, while there are enough).
const PINNED_PER_NODE: usize = 2;

impl ClientProfile {
    /// The profile of `process` (of `concurrency` workers) in a cluster of
    /// `nodes`, from the run's seed.
    pub fn draw(seed: u64, process: u64, concurrency: usize, nodes: usize) -> ClientProfile {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ 0x00C1_1E27 ^ process.wrapping_mul(0x2545_F491_4F6C_DD1D),
        );
        let worker = process % concurrency.max(1) as u64;
        if worker < (PINNED_PER_NODE * nodes) as u64 {
            return ClientProfile {
                home: (worker % nodes as u64) as usize,
                return_home: true,
                attempt_timeout: Duration::from_secs_f64(log_uniform(&mut rng, 0.3, 2.5)),
                single_attempt: true,
                pinned: true,
            };
        }
        let return_home = rng.random_bool(0.5);
        let single_attempt = rng.random_bool(1.0 / 3.0);
        // A single attempt shorter than a commit under load would make
        // nearly every write indeterminate.
        let shortest = if single_attempt { 0.3 } else { 0.03 };
        ClientProfile {
            home: (process % nodes.max(1) as u64) as usize,
            return_home,
            attempt_timeout: Duration::from_secs_f64(log_uniform(&mut rng, shortest, 2.5)),
            single_attempt,
            pinned: false,
        }
    }
}

/// Opens sessions that share one set of connections.
pub struct ClusterBackend {
    base: Client,
    /// Node ids in the order of the client's addresses.
    ids: Vec<NodeId>,
    seed: u64,
    op_timeout: Duration,
    concurrency: usize,
}

impl ClusterBackend {
    pub async fn connect(
        addrs: &BTreeMap<NodeId, SocketAddr>,
        op_timeout: Duration,
        seed: u64,
        concurrency: usize,
    ) -> Result<ClusterBackend, String> {
        let list: Vec<String> = addrs.values().map(|a| a.to_string()).collect();
        let base = Client::connect(&list, ClusterBackend::options(op_timeout))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ClusterBackend {
            base,
            ids: addrs.keys().copied().collect(),
            seed,
            op_timeout,
            concurrency,
        })
    }

    fn options(op_timeout: Duration) -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_millis(500).min(op_timeout),
            overall_timeout: op_timeout,
            connect_timeout: Duration::from_millis(200),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
            ..ClientOptions::default()
        }
    }

    /// True when a no-op write commits within a second or two (the cluster
    /// can make progress), however short `--op-timeout` is.
    pub async fn probe_write(&self) -> bool {
        let options = ClientOptions {
            overall_timeout: self.op_timeout.max(Duration::from_secs(2)),
            ..ClusterBackend::options(Duration::from_secs(2))
        };
        self.base.fork_with(options).noop().await.is_ok()
    }
}

pub struct ClusterSession {
    client: Client,
    ids: Vec<NodeId>,
    pinned: bool,
    /// How long to wait before the next operation.
    rest: Duration,
}

impl Backend for ClusterBackend {
    type Session = ClusterSession;
    async fn session(&self, process: u64) -> Result<ClusterSession, String> {
        let profile = ClientProfile::draw(self.seed, process, self.concurrency, self.ids.len());
        let attempt = profile.attempt_timeout.min(self.op_timeout);
        let options = ClientOptions {
            request_timeout: attempt,
            overall_timeout: if profile.single_attempt {
                attempt
            } else {
                self.op_timeout
            },
            routing: Routing::Bound {
                home: profile.home,
                return_home: profile.return_home,
                pinned: profile.pinned,
            },
            ..ClusterBackend::options(self.op_timeout)
        };
        Ok(ClusterSession {
            client: self.base.fork_with(options),
            ids: self.ids.clone(),
            pinned: profile.pinned,
            rest: Duration::ZERO,
        })
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

impl ClusterSession {
    fn failed(&mut self, e: ClientError) -> Completion {
        if self.pinned && matches!(e, ClientError::Unavailable(_)) {
            self.rest = PINNED_REST;
        }
        if e.is_definite() {
            Completion::Fail(e.to_string())
        } else {
            Completion::Info(e.to_string())
        }
    }

    fn done(&self, read: Option<String>, index: u64) -> Completion {
        Completion::Ok(self.served(read, index))
    }

    /// What the node that answered said: `read`, at log index `index`.
    fn served(&self, read: Option<String>, index: u64) -> Done {
        Done {
            read,
            node: self
                .client
                .answered_by()
                .and_then(|i| self.ids.get(i).copied()),
            log_index: Some(index),
        }
    }
}

impl Session for ClusterSession {
    fn rest(&mut self) -> Duration {
        std::mem::take(&mut self.rest)
    }

    async fn execute(&mut self, op: &Op) -> Completion {
        match op {
            Op::Set { key, value } => match self.client.set(key.clone(), value.clone()).await {
                Ok(out) => self.done(None, out.index),
                Err(e) => self.failed(e),
            },
            Op::Get { key } => match self.client.get(key.clone()).await {
                Ok(out) => self.done(out.value.map(text), out.index),
                Err(e) => self.failed(e),
            },
            Op::Cas { key, expected, new } => {
                let expected = expected.as_ref().map(|v| v.clone().into_bytes());
                match self.client.cas(key.clone(), expected, new.clone()).await {
                    Ok(out) if out.applied => self.done(None, out.index),
                    Ok(out) => Completion::Declined {
                        why: format!("cas not applied: value was {:?}", out.previous.map(text)),
                        done: self.served(None, out.index),
                    },
                    Err(e) => self.failed(e),
                }
            }
            Op::Noop => match self.client.noop().await {
                Ok(out) => self.done(None, out.index),
                Err(e) => self.failed(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_spread_over_nodes_and_patience() {
        let draw = |p| ClientProfile::draw(9, p, 45, 5);
        let profiles: Vec<ClientProfile> = (0..45).map(draw).collect();
        assert_eq!(profiles, (0..45).map(draw).collect::<Vec<_>>());
        // The first two workers per node are pinned to it, and so are the
        // processes that continue those workers.
        for p in [0, 1, 2, 3, 4, 5, 9, 45, 91, 99] {
            let profile = draw(p);
            assert!(profile.pinned && profile.single_attempt && profile.return_home);
            assert_eq!(profile.home as u64, p % 45 % 5);
        }
        assert!(!draw(10).pinned && !draw(55).pinned);
        let profiles: Vec<ClientProfile> = (10..45).map(draw).collect();
        for (p, profile) in profiles.iter().enumerate() {
            assert_eq!(profile.home, p % 5);
            let t = profile.attempt_timeout;
            assert!(
                t >= Duration::from_millis(30) && t <= Duration::from_millis(2500),
                "{t:?}"
            );
        }
        let returning = profiles.iter().filter(|p| p.return_home).count();
        assert!(
            (10..=30).contains(&returning),
            "{returning} of 35 return home"
        );
        let impatient = profiles
            .iter()
            .filter(|p| p.attempt_timeout < Duration::from_millis(100))
            .count();
        assert!(impatient >= 5, "{impatient} of 35 give up within 100 ms");
        let single: Vec<&ClientProfile> = profiles.iter().filter(|p| p.single_attempt).collect();
        assert!(
            (6..=22).contains(&single.len()),
            "{} of 35 make one attempt",
            single.len()
        );
        assert!(
            single
                .iter()
                .all(|p| p.attempt_timeout >= Duration::from_millis(300)),
            "a single attempt waits at least 300 ms"
        );
    }
}
