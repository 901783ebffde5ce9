//! The receiving side of the peer transport: forwards every message of a
//! batch, in order, to the driver.

use raftkv::proto::{MessageBatch, SendAck, raft_peer_server::RaftPeer};
use raftkv_core::NodeId;
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::convert::message_from_proto;
use crate::driver::{DriverHandle, Input};

pub struct PeerService {
    id: NodeId,
    driver: DriverHandle,
}

impl PeerService {
    pub fn new(id: NodeId, driver: DriverHandle) -> Self {
        PeerService { id, driver }
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn send(&self, request: Request<MessageBatch>) -> Result<Response<SendAck>, Status> {
        let batch = request.into_inner();
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
        Ok(Response::new(SendAck {}))
    }
}
