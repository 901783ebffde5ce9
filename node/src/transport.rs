//! Sends Raft messages to peers. Each peer has a long-lived channel (connected
//! lazily, reconnected with backoff) and a sender task that batches whatever
//! is queued onto one long-lived `Stream` RPC: a batch costs one HTTP/2 data
//! frame, not a request of its own. Queues are bounded and `send` never
//! waits: when a peer is dead or slow its queue fills and further messages to
//! it are dropped, which Raft tolerates, so one peer never holds up the
//! driver or the other peers.
//!
//! Snapshots travel apart: each peer has a second channel (its own
//! connection) on which a snapshot file is streamed in chunks by the
//! `InstallSnapshot` RPC, so that a transfer of any size holds up neither
//! the heartbeats and appends to that peer nor anything to the others.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raftkv::proto::{MessageBatch, SnapshotChunk, raft_peer_client::RaftPeerClient};
use raftkv_core::{Message, NodeId};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
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
/// Batches buffered on a stream before the sender stops taking messages
/// from the queue (HTTP/2 flow control holds the rest back).
const STREAM_BATCHES: usize = 64;
/// A stream that stayed open this long proves the peer reachable: the next
/// failure starts over from the shortest backoff.
const HEALTHY_STREAM: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Bytes of a snapshot file per chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// Chunks read ahead of what the connection has taken.
const SNAPSHOT_CHUNKS_AHEAD: usize = 4;
/// A transfer gets this long, plus [`SNAPSHOT_TIME_PER_MB`] per megabyte.
const SNAPSHOT_TIME_BASE: Duration = Duration::from_secs(30);
const SNAPSHOT_TIME_PER_MB: Duration = Duration::from_millis(200);

/// How a snapshot transfer ended: the bytes sent, or why it failed.
pub type SnapshotOutcome = Result<u64, String>;

pub struct Transport {
    queues: HashMap<NodeId, mpsc::Sender<Message>>,
    /// Per peer, the client of the connection that carries snapshots.
    snapshot_clients: HashMap<NodeId, RaftPeerClient<Channel>>,
}

impl Transport {
    /// Starts a sender task for every peer except `me`. Must run inside a
    /// tokio runtime.
    pub fn start(me: NodeId, peers: &BTreeMap<NodeId, String>) -> Result<Transport, String> {
        let mut queues = HashMap::new();
        let mut snapshot_clients = HashMap::new();
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
            let snapshots = RaftPeerClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
            snapshot_clients.insert(id, snapshots);
            tokio::spawn(run_sender(id, addr.clone(), endpoint, rx));
            queues.insert(id, tx);
        }
        Ok(Transport {
            queues,
            snapshot_clients,
        })
    }

    /// Streams the snapshot file `file` with its message `msg` to `msg.to`
    /// in the background; `report` gets the outcome.
    pub fn send_snapshot(
        &self,
        msg: Message,
        file: PathBuf,
        report: impl FnOnce(SnapshotOutcome) + Send + 'static,
    ) {
        let Some(client) = self.snapshot_clients.get(&msg.to).cloned() else {
            report(Err(format!("node {} is not a peer", msg.to)));
            return;
        };
        tokio::spawn(async move {
            let outcome = stream_snapshot(client, msg, file).await;
            report(outcome);
        });
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

/// Takes `first` and whatever else is queued right now, up to the batch
/// limits, as one batch.
fn next_batch(first: Message, queue: &mut mpsc::Receiver<Message>) -> MessageBatch {
    let mut bytes = payload_bytes(&first);
    let mut messages = vec![message_to_proto(first)];
    while messages.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(m) => {
                bytes += payload_bytes(&m);
                messages.push(message_to_proto(m));
            }
            Err(_) => break,
        }
    }
    MessageBatch { messages }
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
    // Open a stream only once there is something to send, so an idle or
    // unreachable peer costs nothing.
    while let Some(first) = queue.recv().await {
        let (batches, rx) = mpsc::channel(STREAM_BATCHES);
        batches
            .try_send(next_batch(first, &mut queue))
            .expect("a new channel has room");
        let opened = Instant::now();
        let mut call = std::pin::pin!(client.stream(ReceiverStream::new(rx)));
        // Runs until the stream breaks; `None` when the node is shutting down.
        let error = loop {
            let first = tokio::select! {
                result = &mut call => break Some(stream_end(result)),
                next = queue.recv() => match next {
                    Some(m) => m,
                    None => break None,
                },
            };
            if failing && opened.elapsed() >= HEALTHY_STREAM {
                info!(peer = to, %addr, "peer reachable again");
                failing = false;
                backoff = BACKOFF_MIN;
            }
            let batch = next_batch(first, &mut queue);
            tokio::select! {
                result = &mut call => break Some(stream_end(result)),
                sent = batches.send(batch) => {
                    if sent.is_err() {
                        // The connection dropped the stream: its status says why.
                        break Some(stream_end(call.await));
                    }
                }
            }
        };
        let Some(error) = error else {
            return;
        };
        if opened.elapsed() >= HEALTHY_STREAM {
            backoff = BACKOFF_MIN;
        }
        if !failing {
            warn!(peer = to, %addr, %error, "sending to peer failed; retrying with backoff");
            failing = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Why a stream ended; the peer never ends one on its own.
fn stream_end<T>(result: Result<T, tonic::Status>) -> String {
    match result {
        Ok(_) => "the peer closed the stream".to_string(),
        Err(status) => format!("{}: {}", status.code(), status.message()),
    }
}

/// Sends `file` in chunks, the first one with `msg`; the peer answers once
/// it holds the whole file, verified.
async fn stream_snapshot(
    mut client: RaftPeerClient<Channel>,
    msg: Message,
    file: PathBuf,
) -> SnapshotOutcome {
    let mut f = tokio::fs::File::open(&file)
        .await
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let size = f
        .metadata()
        .await
        .map_err(|e| format!("cannot stat {}: {e}", file.display()))?
        .len();
    let limit = SNAPSHOT_TIME_BASE + SNAPSHOT_TIME_PER_MB * (size >> 20) as u32;
    let (chunks, rx) = mpsc::channel::<SnapshotChunk>(SNAPSHOT_CHUNKS_AHEAD);
    // Reads the file as the connection takes the chunks.
    let reader = tokio::spawn(async move {
        let mut message = Some(message_to_proto(msg));
        let mut sent = 0u64;
        loop {
            let mut data = vec![0u8; SNAPSHOT_CHUNK_BYTES];
            let mut filled = 0;
            while filled < data.len() {
                let n = f
                    .read(&mut data[filled..])
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            data.truncate(filled);
            if filled == 0 && message.is_none() {
                return Ok(sent);
            }
            sent += filled as u64;
            let chunk = SnapshotChunk {
                message: message.take(),
                data,
            };
            if chunks.send(chunk).await.is_err() {
                // The call ended; its status says why.
                return Ok(sent);
            }
            if filled < SNAPSHOT_CHUNK_BYTES {
                return Ok(sent);
            }
        }
    });
    let call = client.install_snapshot(ReceiverStream::new(rx));
    let result = tokio::time::timeout(limit, call).await;
    let read = reader
        .await
        .map_err(|e| format!("reader task failed: {e}"))?;
    match result {
        Err(_) => Err(format!("not done within {limit:?}")),
        Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
        Ok(Ok(_)) => read,
    }
}
