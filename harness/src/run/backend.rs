//! The workload's view of a real cluster, over `raftkv::client`, and the
//! leader lookup the nemesis and the progress line use.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use raftkv::client::{Client, ClientError, ClientOptions, NodeStatus};
use raftkv::proto::Role;

use super::proxy::NodeId;
use super::workload::{Backend, Completion, Op, Session};

/// Opens sessions that share one set of connections.
pub struct ClusterBackend {
    base: Client,
}

impl ClusterBackend {
    pub async fn connect(
        addrs: &BTreeMap<NodeId, SocketAddr>,
        op_timeout: Duration,
    ) -> Result<ClusterBackend, String> {
        let addrs: Vec<String> = addrs.values().map(|a| a.to_string()).collect();
        let options = ClientOptions {
            request_timeout: Duration::from_millis(500).min(op_timeout),
            overall_timeout: op_timeout,
            connect_timeout: Duration::from_millis(200),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
            ..ClientOptions::default()
        };
        let base = Client::connect(&addrs, options)
            .await
            .map_err(|e| e.to_string())?;
        Ok(ClusterBackend { base })
    }

    /// True when a no-op write commits (the cluster can make progress).
    pub async fn probe_write(&self) -> bool {
        self.base.fork().noop().await.is_ok()
    }

    /// The node that claims leadership in the highest term, if any answers.
    pub async fn leader(&self) -> Option<NodeId> {
        leader_of(&self.base.status_all().await)
    }
}

/// The leader among status answers: the highest-term node claiming it.
pub fn leader_of(statuses: &[NodeStatus]) -> Option<NodeId> {
    statuses
        .iter()
        .filter_map(|s| s.status.as_ref().ok())
        .filter(|st| st.role == Role::Leader as i32)
        .max_by_key(|st| st.term)
        .map(|st| st.node_id)
}

pub struct ClusterSession {
    client: Client,
}

impl Backend for ClusterBackend {
    type Session = ClusterSession;
    async fn session(&self) -> Result<ClusterSession, String> {
        Ok(ClusterSession {
            client: self.base.fork(),
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

impl Session for ClusterSession {
    async fn execute(&mut self, op: &Op) -> Completion {
        match op {
            Op::Set { key, value } => match self.client.set(key.clone(), value.clone()).await {
                Ok(_) => Completion::Ok(None),
                Err(e) => failed(e),
            },
            Op::Get { key } => match self.client.get(key.clone()).await {
                Ok(out) => Completion::Ok(out.value.map(text)),
                Err(e) => failed(e),
            },
            Op::Cas { key, expected, new } => {
                let expected = expected.as_ref().map(|v| v.clone().into_bytes());
                match self.client.cas(key.clone(), expected, new.clone()).await {
                    Ok(out) if out.applied => Completion::Ok(None),
                    Ok(out) => Completion::Fail(format!(
                        "cas not applied: value was {:?}",
                        out.previous.map(text)
                    )),
                    Err(e) => failed(e),
                }
            }
            Op::Noop => match self.client.noop().await {
                Ok(_) => Completion::Ok(None),
                Err(e) => failed(e),
            },
        }
    }
}
