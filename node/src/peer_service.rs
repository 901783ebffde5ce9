//! The receiving side of the peer transport: forwards every message of a
//! batch, in order, to the driver.

use raftkv::proto::{MessageBatch, SendAck, raft_peer_server::RaftPeer};
use raftkv_core::NodeId;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

use crate::convert::message_from_proto;
use crate::driver::{DriverHandle, Input};

pub struct PeerService {
    id: NodeId,
    driver: DriverHandle,
    /// Becomes true when the node shuts down: open streams end then.
    closing: watch::Receiver<bool>,
}

impl PeerService {
    pub fn new(id: NodeId, driver: DriverHandle, closing: watch::Receiver<bool>) -> Self {
        PeerService {
            id,
            driver,
            closing,
        }
    }
}

impl PeerService {
    /// Hands a batch's messages addressed to this node to the driver, or
    /// none of them if one is malformed.
    fn deliver(&self, batch: MessageBatch) -> Result<(), Status> {
        let mut messages = Vec::with_capacity(batch.messages.len());
        for (i, m) in batch.messages.into_iter().enumerate() {
            let msg = message_from_proto(m)
                .map_err(|e| Status::invalid_argument(format!("message {i} of the batch: {e}")))?;
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
}
