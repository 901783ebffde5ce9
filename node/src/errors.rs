//! The gRPC statuses the node answers with, as agreed with clients:
//! not-leader, no-leader and invalid-argument mean nothing was applied;
//! anything with `outcome: unknown` may or may not have been applied.

use std::collections::BTreeMap;

use raftkv_core::{NodeId, NotLeader};
use tonic::{Code, Status};

/// FAILED_PRECONDITION naming the leader, or UNAVAILABLE when none is known.
pub fn not_leader(leader: NotLeader, peers: &BTreeMap<NodeId, String>) -> Status {
    match leader {
        NotLeader::Leader(id) => {
            let addr = peers.get(&id).cloned().unwrap_or_default();
            let mut status =
                Status::failed_precondition(format!("not leader; leader is node {id} at {addr}"));
            insert(&mut status, "leader-id", &id.to_string());
            insert(&mut status, "leader-addr", &addr);
            status
        }
        NotLeader::Unknown => Status::unavailable("no leader"),
    }
}

/// The request may or may not take effect.
pub fn outcome_unknown(code: Code, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    insert(&mut status, "outcome", "unknown");
    status
}

pub fn session_expired(client_id: u64) -> Status {
    let mut status = Status::failed_precondition(format!(
        "session of client {client_id} expired (or never existed); the command was not applied; start again with seq 1"
    ));
    insert(&mut status, "session-expired", "1");
    status
}

pub fn stale_sequence(seq: u64, last_seq: u64) -> Status {
    let mut status = Status::failed_precondition(format!(
        "stale sequence number {seq}: this client's last applied command is {last_seq}"
    ));
    insert(&mut status, "last-seq", &last_seq.to_string());
    status
}

fn insert(status: &mut Status, key: &'static str, value: &str) {
    if let Ok(v) = value.parse() {
        status.metadata_mut().insert(key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_leader_carries_the_hint() {
        let peers = BTreeMap::from([(2, "127.0.0.1:7002".to_string())]);
        let s = not_leader(NotLeader::Leader(2), &peers);
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            "not leader; leader is node 2 at 127.0.0.1:7002"
        );
        assert_eq!(s.metadata().get("leader-id").unwrap(), "2");
        assert_eq!(s.metadata().get("leader-addr").unwrap(), "127.0.0.1:7002");
        let s = not_leader(NotLeader::Unknown, &peers);
        assert_eq!((s.code(), s.message()), (Code::Unavailable, "no leader"));
        let s = outcome_unknown(Code::DeadlineExceeded, "x");
        assert_eq!(s.metadata().get("outcome").unwrap(), "unknown");
        assert_eq!(
            session_expired(5)
                .metadata()
                .get("session-expired")
                .unwrap(),
            "1"
        );
    }
}
