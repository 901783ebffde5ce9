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
//! regains touch with the others.

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
}

impl ClientProfile {
    /// The profile of `process` in a cluster of `nodes`, from the run's seed.
    pub fn draw(seed: u64, process: u64, nodes: usize) -> ClientProfile {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ 0x00C1_1E27 ^ process.wrapping_mul(0x2545_F491_4F6C_DD1D),
        );
        ClientProfile {
            home: (process % nodes.max(1) as u64) as usize,
            return_home: rng.random_bool(0.5),
            attempt_timeout: Duration::from_secs_f64(log_uniform(&mut rng, 0.03, 2.5)),
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
}

impl ClusterBackend {
    pub async fn connect(
        addrs: &BTreeMap<NodeId, SocketAddr>,
        op_timeout: Duration,
        seed: u64,
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
}

impl Backend for ClusterBackend {
    type Session = ClusterSession;
    async fn session(&self, process: u64) -> Result<ClusterSession, String> {
        let profile = ClientProfile::draw(self.seed, process, self.ids.len());
        let options = ClientOptions {
            request_timeout: profile.attempt_timeout.min(self.op_timeout),
            routing: Routing::Bound {
                home: profile.home,
                return_home: profile.return_home,
            },
            ..ClusterBackend::options(self.op_timeout)
        };
        Ok(ClusterSession {
            client: self.base.fork_with(options),
            ids: self.ids.clone(),
        })
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn failed(e: ClientError) -> Completion {
    if e.is_definite() {
        Completion::Fail(e.to_string())
    } else {
        Completion::Info(e.to_string())
    }
}

impl ClusterSession {
    fn done(&self, read: Option<String>, index: u64) -> Completion {
        Completion::Ok(Done {
            read,
            node: self
                .client
                .answered_by()
                .and_then(|i| self.ids.get(i).copied()),
            log_index: Some(index),
        })
    }
}

impl Session for ClusterSession {
    async fn execute(&mut self, op: &Op) -> Completion {
        match op {
            Op::Set { key, value } => match self.client.set(key.clone(), value.clone()).await {
                Ok(out) => self.done(None, out.index),
                Err(e) => failed(e),
            },
            Op::Get { key } => match self.client.get(key.clone()).await {
                Ok(out) => self.done(out.value.map(text), out.index),
                Err(e) => failed(e),
            },
            Op::Cas { key, expected, new } => {
                let expected = expected.as_ref().map(|v| v.clone().into_bytes());
                match self.client.cas(key.clone(), expected, new.clone()).await {
                    Ok(out) if out.applied => self.done(None, out.index),
                    Ok(out) => Completion::Fail(format!(
                        "cas not applied: value was {:?}",
                        out.previous.map(text)
                    )),
                    Err(e) => failed(e),
                }
            }
            Op::Noop => match self.client.noop().await {
                Ok(out) => self.done(None, out.index),
                Err(e) => failed(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_spread_over_nodes_and_patience() {
        let profiles: Vec<ClientProfile> = (0..40).map(|p| ClientProfile::draw(9, p, 5)).collect();
        assert_eq!(
            profiles,
            (0..40)
                .map(|p| ClientProfile::draw(9, p, 5))
                .collect::<Vec<_>>()
        );
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
            "{returning} of 40 return home"
        );
        let impatient = profiles
            .iter()
            .filter(|p| p.attempt_timeout < Duration::from_millis(100))
            .count();
        assert!(impatient >= 5, "{impatient} of 40 give up within 100 ms");
    }
}
