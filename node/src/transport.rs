//! Sends Raft messages to peers. Each peer has a long-lived channel (connected
//! lazily, reconnected with backoff) and a sender task that batches whatever
//! is queued into one `Send` RPC. Queues are bounded and `send` never waits:
//! when a peer is dead or slow its queue fills and further messages to it are
//! dropped, which Raft tolerates, so one peer never holds up the driver or
//! the other peers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use raftkv::proto::{MessageBatch, raft_peer_client::RaftPeerClient};
use raftkv_core::{Message, NodeId};
use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use crate::convert::message_to_proto;

/// Messages queued per peer before new ones are dropped.
const QUEUE_LEN: usize = 4096;
/// Most messages in one RPC.
const MAX_BATCH_MESSAGES: usize = 512;
/// Payload bytes after which a batch is closed (it holds at least one message).
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Largest gRPC message a peer accepts (above the batch size plus overhead).
pub const MAX_PEER_MESSAGE_BYTES: usize = 64 << 20;
const RPC_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

pub struct Transport {
    queues: HashMap<NodeId, mpsc::Sender<Message>>,
}

impl Transport {
    /// Starts a sender task for every peer except `me`. Must run inside a
    /// tokio runtime.
    pub fn start(me: NodeId, peers: &BTreeMap<NodeId, String>) -> Result<Transport, String> {
        let mut queues = HashMap::new();
        for (&id, addr) in peers {
            if id == me {
                continue;
            }
            let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| format!("--peers: bad address {addr:?} for node {id}: {e}"))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(5));
            let (tx, rx) = mpsc::channel(QUEUE_LEN);
            tokio::spawn(run_sender(id, addr.clone(), endpoint, rx));
            queues.insert(id, tx);
        }
        Ok(Transport { queues })
    }

    /// Queues messages without waiting; drops those whose peer queue is full.
    pub fn send(&self, messages: Vec<Message>) {
        for msg in messages {
            match self.queues.get(&msg.to) {
                Some(queue) => {
                    if let Err(mpsc::error::TrySendError::Full(m)) = queue.try_send(msg) {
                        debug!(to = m.to, kind = ?m.kind, "peer queue full; message dropped");
                    }
                }
                None => debug!(to = msg.to, "message for an unknown node dropped"),
            }
        }
    }
}

fn payload_bytes(msg: &Message) -> usize {
    64 + msg.entries.iter().map(|e| e.data.len() + 24).sum::<usize>()
}

async fn run_sender(
    to: NodeId,
    addr: String,
    endpoint: Endpoint,
    mut queue: mpsc::Receiver<Message>,
) {
    let mut client = RaftPeerClient::new(endpoint.connect_lazy())
        .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    while let Some(first) = queue.recv().await {
        let mut bytes = payload_bytes(&first);
        let mut batch = vec![message_to_proto(first)];
        while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(m) => {
                    bytes += payload_bytes(&m);
                    batch.push(message_to_proto(m));
                }
                Err(_) => break,
            }
        }
        let request = MessageBatch { messages: batch };
        let error = match tokio::time::timeout(RPC_TIMEOUT, client.send(request)).await {
            Ok(Ok(_)) => None,
            Ok(Err(status)) => Some(format!("{}: {}", status.code(), status.message())),
            Err(_) => Some(format!("no answer within {RPC_TIMEOUT:?}")),
        };
        match error {
            None => {
                if failing {
                    info!(peer = to, %addr, "peer reachable again");
                    failing = false;
                }
                backoff = BACKOFF_MIN;
            }
            Some(error) => {
                if !failing {
                    warn!(peer = to, %addr, %error, "sending to peer failed; retrying with backoff");
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
