//! The receiving side of the peer transport: forwards every message of a
//! batch, in order, to the driver; receives snapshots into a temporary file
//! that is verified and decoded before the driver sees it.

use std::path::PathBuf;

use raftkv::proto::{MessageBatch, SendAck, SnapshotChunk, raft_peer_server::RaftPeer};
use raftkv_core::{MessageKind, NodeId};
use raftkv_kv::{KvStore, SessionConfig};
use raftkv_wal::snapshot::Incoming;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::convert::message_from_proto;
use crate::driver::{DriverHandle, Input};
use crate::snapshots;

pub struct PeerService {
    id: NodeId,
    driver: DriverHandle,
    /// Becomes true when the node shuts down: open streams end then.
    closing: watch::Receiver<bool>,
    /// Where received snapshots are written.
    data_dir: PathBuf,
    /// For decoding received snapshots.
    sessions: SessionConfig,
}

impl PeerService {
    pub fn new(
        id: NodeId,
        driver: DriverHandle,
        closing: watch::Receiver<bool>,
        data_dir: PathBuf,
        sessions: SessionConfig,
    ) -> Self {
        PeerService {
            id,
            driver,
            closing,
            data_dir,
            sessions,
        }
    }
}

impl PeerService {
    /// Hands a batch's messages addressed to this node to the driver, or
    /// none of them if one is malformed. Snapshot messages come only with
    /// their data, by `InstallSnapshot`.
    fn deliver(&self, batch: MessageBatch) -> Result<(), Status> {
        let mut messages = Vec::with_capacity(batch.messages.len());
        for (i, m) in batch.messages.into_iter().enumerate() {
            let msg = message_from_proto(m)
                .map_err(|e| Status::invalid_argument(format!("message {i} of the batch: {e}")))?;
            if msg.kind == MessageKind::Snapshot {
                return Err(Status::invalid_argument(format!(
                    "message {i} of the batch is a snapshot message, which only InstallSnapshot carries"
                )));
            }
            if msg.to != self.id {
                debug!(
                    to = msg.to,
                    from = msg.from,
                    "message for another node dropped"
                );
                continue;
            }
            messages.push(msg);
        }
        for msg in messages {
            self.driver.send(Input::Peer(msg))?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn send(&self, request: Request<MessageBatch>) -> Result<Response<SendAck>, Status> {
        self.deliver(request.into_inner())?;
        Ok(Response::new(SendAck {}))
    }

    async fn stream(
        &self,
        request: Request<Streaming<MessageBatch>>,
    ) -> Result<Response<SendAck>, Status> {
        let mut batches = request.into_inner();
        let mut closing = self.closing.clone();
        loop {
            let batch = tokio::select! {
                batch = batches.message() => batch?,
                _ = closing.wait_for(|&c| c) => None,
            };
            match batch {
                Some(batch) => self.deliver(batch)?,
                None => return Ok(Response::new(SendAck {})),
            }
        }
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SendAck>, Status> {
        let mut chunks = request.into_inner();
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let msg = first
            .message
            .ok_or_else(|| Status::invalid_argument("the first chunk carries no message"))
            .and_then(|m| {
                message_from_proto(m).map_err(|e| Status::invalid_argument(format!("message: {e}")))
            })?;
        if msg.kind != MessageKind::Snapshot || msg.to != self.id {
            return Err(Status::invalid_argument(format!(
                "expected a snapshot message for node {}, got {:?} for node {}",
                self.id, msg.kind, msg.to
            )));
        }
        let meta = msg.snapshot.clone().expect("checked by message_from_proto");
        let mut incoming = Incoming::create(&self.data_dir, msg.from, &meta)
            .map_err(|e| Status::internal(e.to_string()))?;
        let write = |incoming: &mut Incoming, data: &[u8]| {
            incoming
                .write(data)
                .map_err(|e| Status::internal(e.to_string()))
        };
        write(&mut incoming, &first.data)?;
        let mut closing = self.closing.clone();
        loop {
            let chunk = tokio::select! {
                chunk = chunks.message() => chunk?,
                _ = closing.wait_for(|&c| c) => {
                    return Err(Status::unavailable("node is shutting down"));
                }
            };
            match chunk {
                Some(chunk) if chunk.message.is_some() => {
                    return Err(Status::invalid_argument(
                        "a message in a chunk other than the first",
                    ));
                }
                Some(chunk) => write(&mut incoming, &chunk.data)?,
                None => break,
            }
        }
        let bytes = incoming.bytes();
        let sessions = self.sessions;
        let expected = meta.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let (received, data) = incoming.finish(&expected)?;
            let store = KvStore::decode_snapshot(sessions, &data).map_err(|e| e.to_string())?;
            if store.applied_index() != expected.index {
                return Err(format!(
                    "the state machine in the snapshot is at index {}, not {}",
                    store.applied_index(),
                    expected.index
                ));
            }
            let digest = store.digest();
            Ok((received, store, digest))
        })
        .await
        .map_err(|e| Status::internal(format!("verifying the snapshot failed: {e}")))?;
        let (received, store, digest) = verified.map_err(|reason| {
            warn!(from = msg.from, index = meta.index, bytes, %reason, "received snapshot refused");
            Status::data_loss(format!(
                "snapshot {}/{} from node {} ({bytes} bytes) is not valid: {reason}",
                meta.index, meta.term, msg.from
            ))
        })?;
        self.driver.send(Input::InstallSnapshot {
            msg: Box::new(msg.clone()),
            incoming: Box::new(snapshots::Incoming {
                from: msg.from,
                received,
                chain: store.applied_chain(),
                store,
                digest,
            }),
        })?;
        Ok(Response::new(SendAck {}))
    }
}
