//! The public Kv service: validates requests, hands them to the driver and
//! maps the state machine's replies onto gRPC answers.
//!
//! Followers do not forward: writes and reads on a follower are answered
//! with the not-leader status that names the leader.

use std::sync::Arc;
use std::time::Duration;

use raftkv::proto::{self, kv_server::Kv};
use raftkv_core::Role;
use raftkv_kv::{Command, Reply, Request};
use tokio::sync::oneshot;
use tonic::metadata::MetadataMap;
use tonic::{Code, Response, Status};

use crate::config::Settings;
use crate::driver::{DriverHandle, Input};
use crate::errors;

pub struct KvService {
    driver: DriverHandle,
    settings: Arc<Settings>,
}

impl KvService {
    pub fn new(driver: DriverHandle, settings: Arc<Settings>) -> Self {
        KvService { driver, settings }
    }

    fn check_key(&self, key: &str) -> Result<(), Status> {
        if key.is_empty() {
            return Err(Status::invalid_argument("key is empty"));
        }
        if key.len() > self.settings.max_key_bytes {
            return Err(Status::invalid_argument(format!(
                "key is {} bytes, over the limit of {} bytes",
                key.len(),
                self.settings.max_key_bytes
            )));
        }
        Ok(())
    }

    fn check_value(&self, what: &str, value: &[u8]) -> Result<(), Status> {
        if value.len() > self.settings.max_value_bytes {
            return Err(Status::invalid_argument(format!(
                "{what} is {} bytes, over the limit of {} bytes",
                value.len(),
                self.settings.max_value_bytes
            )));
        }
        Ok(())
    }

    /// How long to wait for the outcome: the client's grpc-timeout (a little
    /// earlier, so that this answer beats the transport's own cancellation),
    /// else the server default.
    fn deadline(&self, metadata: &MetadataMap) -> Duration {
        match metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
        {
            Some(t) => t.saturating_sub((t / 10).min(Duration::from_millis(20))),
            None => self.settings.request_timeout,
        }
    }

    /// Asks the driver something it answers from its own state (no
    /// consensus round), within the request timeout.
    async fn ask_locally<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.driver.send(input(tx))?;
        match tokio::time::timeout(self.settings.request_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Status::unavailable("node is shutting down")),
            Err(_) => Err(Status::deadline_exceeded("node did not answer in time")),
        }
    }

    async fn propose(
        &self,
        metadata: &MetadataMap,
        session: Option<proto::Session>,
        command: Command,
    ) -> Result<Reply, Status> {
        let session = session.ok_or_else(|| {
            Status::invalid_argument("session is missing (client_id and seq are required)")
        })?;
        if session.client_id == 0 {
            return Err(Status::invalid_argument(
                "session.client_id must be non-zero",
            ));
        }
        if session.seq == 0 {
            return Err(Status::invalid_argument(
                "session.seq must be non-zero (the first is 1)",
            ));
        }
        let client_id = session.client_id;
        let request = Request {
            client_id,
            seq: session.seq,
            time_ms: 0,
            command,
        };
        let (tx, rx) = oneshot::channel();
        self.driver.send(Input::Propose { request, reply: tx })?;
        let reply = wait(self.deadline(metadata), rx).await??;
        match reply {
            Reply::SessionExpired => Err(errors::session_expired(client_id)),
            Reply::StaleSequence { last_seq } => Err(errors::stale_sequence(session.seq, last_seq)),
            reply => Ok(reply),
        }
    }
}

/// An inclusive log range that starts at 1 or later and is not empty.
fn check_range(from: u64, to: u64) -> Result<(), Status> {
    if from == 0 || to < from {
        return Err(Status::invalid_argument(format!(
            "entry range [{from}, {to}] is empty or starts at 0"
        )));
    }
    Ok(())
}

/// Waits for the driver's answer; on timeout the command may still apply.
async fn wait<T>(deadline: Duration, rx: oneshot::Receiver<T>) -> Result<T, Status> {
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(errors::outcome_unknown(
            Code::Unavailable,
            "node is shutting down",
        )),
        Err(_) => Err(errors::outcome_unknown(
            Code::DeadlineExceeded,
            format!(
                "no outcome within {} ms; the command may or may not be applied",
                deadline.as_millis()
            ),
        )),
    }
}

/// Parses a grpc-timeout header value: up to 8 digits and a unit.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn reply_index(reply: &Reply) -> Result<u64, Status> {
    match reply {
        Reply::Set { index } | Reply::Noop { index } | Reply::Cas { index, .. } => Ok(*index),
        Reply::SessionExpired | Reply::StaleSequence { .. } => Err(Status::internal(
            "session reply where a result was expected",
        )),
    }
}

fn role_to_proto(role: Role) -> proto::Role {
    match role {
        Role::Follower => proto::Role::Follower,
        Role::PreCandidate => proto::Role::PreCandidate,
        Role::Candidate => proto::Role::Candidate,
        Role::Leader => proto::Role::Leader,
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Kv for KvService {
    async fn set(&self, request: tonic::Request<proto::SetRequest>) -> Answer<proto::SetResponse> {
        let (metadata, _, req) = request.into_parts();
        self.check_key(&req.key)?;
        self.check_value("value", &req.value)?;
        let command = Command::Set {
            key: req.key,
            value: req.value,
        };
        let reply = self.propose(&metadata, req.session, command).await?;
        match reply {
            Reply::Set { index } => Ok(Response::new(proto::SetResponse { index })),
            _ => Err(Status::failed_precondition(
                "this client's sequence number was already used by a different command",
            )),
        }
    }

    async fn get(&self, request: tonic::Request<proto::GetRequest>) -> Answer<proto::GetResponse> {
        let (metadata, _, req) = request.into_parts();
        self.check_key(&req.key)?;
        let (tx, rx) = oneshot::channel();
        self.driver.send(Input::Read {
            key: req.key,
            reply: tx,
        })?;
        // A read changes nothing, so a timeout is a plain failure.
        let deadline = self.deadline(&metadata);
        let (value, index) = match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(_)) => return Err(Status::unavailable("node is shutting down")),
            Err(_) => {
                return Err(Status::deadline_exceeded(format!(
                    "read not confirmed within {} ms",
                    deadline.as_millis()
                )));
            }
        };
        Ok(Response::new(proto::GetResponse { value, index }))
    }

    async fn no_op(
        &self,
        request: tonic::Request<proto::NoOpRequest>,
    ) -> Answer<proto::NoOpResponse> {
        let (metadata, _, req) = request.into_parts();
        let reply = self.propose(&metadata, req.session, Command::Noop).await?;
        match reply {
            Reply::Noop { index } => Ok(Response::new(proto::NoOpResponse { index })),
            other => Ok(Response::new(proto::NoOpResponse {
                index: reply_index(&other)?,
            })),
        }
    }

    async fn cas(&self, request: tonic::Request<proto::CasRequest>) -> Answer<proto::CasResponse> {
        let (metadata, _, req) = request.into_parts();
        self.check_key(&req.key)?;
        if let Some(expected) = &req.expected {
            self.check_value("expected", expected)?;
        }
        self.check_value("new_value", &req.new_value)?;
        let command = Command::Cas {
            key: req.key,
            expected: req.expected,
            new_value: req.new_value,
        };
        let reply = self.propose(&metadata, req.session, command).await?;
        match reply {
            Reply::Cas {
                applied,
                previous,
                index,
            } => Ok(Response::new(proto::CasResponse {
                applied,
                previous,
                index,
            })),
            _ => Err(Status::failed_precondition(
                "this client's sequence number was already used by a different command",
            )),
        }
    }

    async fn status(
        &self,
        request: tonic::Request<proto::StatusRequest>,
    ) -> Answer<proto::StatusResponse> {
        let with_digest = request.into_inner().with_digest;
        let status = self
            .ask_locally(|reply| Input::Status { with_digest, reply })
            .await?;
        let leader_id = status.core.leader.unwrap_or(0);
        let leader_addr = if leader_id == self.settings.id {
            self.settings.listen.to_string()
        } else {
            self.settings
                .peers
                .get(&leader_id)
                .cloned()
                .unwrap_or_default()
        };
        Ok(Response::new(proto::StatusResponse {
            node_id: self.settings.id,
            role: role_to_proto(status.core.role) as i32,
            term: status.core.term,
            leader_id,
            leader_addr,
            commit_index: status.core.commit,
            applied_index: status.applied,
            last_log_index: status.core.last_index,
            first_log_index: status.core.first_index,
            snapshot_index: status.snapshot_index,
            state_digest: status.digest.unwrap_or(0),
            applied_chain: status.applied_chain,
        }))
    }

    async fn entry_hashes(
        &self,
        request: tonic::Request<proto::EntryHashesRequest>,
    ) -> Answer<proto::EntryHashesResponse> {
        let proto::EntryHashesRequest {
            from_index,
            to_index,
        } = request.into_inner();
        check_range(from_index, to_index)?;
        let hashes = self
            .ask_locally(|reply| Input::EntryHashes {
                from: from_index,
                to: to_index,
                reply,
            })
            .await?;
        Ok(Response::new(proto::EntryHashesResponse {
            entries: hashes
                .entries
                .into_iter()
                .map(|(index, term, hash)| proto::EntryHash { index, term, hash })
                .collect(),
            first_log_index: hashes.first_index,
            last_log_index: hashes.last_index,
        }))
    }

    async fn committed_entries(
        &self,
        request: tonic::Request<proto::CommittedEntriesRequest>,
    ) -> Answer<proto::CommittedEntriesResponse> {
        let proto::CommittedEntriesRequest {
            from_index,
            to_index,
        } = request.into_inner();
        check_range(from_index, to_index)?;
        let found = self
            .ask_locally(|reply| Input::CommittedEntries {
                from: from_index,
                to: to_index,
                reply,
            })
            .await?;
        Ok(Response::new(proto::CommittedEntriesResponse {
            entries: found
                .entries
                .into_iter()
                .map(|(index, term, command)| proto::CommittedEntry {
                    index,
                    term,
                    command: command.map(logged_command),
                })
                .collect(),
            first_log_index: found.first_index,
            commit_index: found.commit,
        }))
    }
}

/// A logged request as the `CommittedEntries` RPC shows it.
fn logged_command(request: Request) -> proto::LoggedCommand {
    let (op, key, value) = match request.command {
        Command::Set { key, value } => ("set", key, value),
        Command::Cas { key, new_value, .. } => ("cas", key, new_value),
        Command::Noop => ("noop", String::new(), Vec::new()),
    };
    proto::LoggedCommand {
        session: Some(proto::Session {
            client_id: request.client_id,
            seq: request.seq,
        }),
        op: op.into(),
        key,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("500u"), Some(Duration::from_micros(500)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
    }
}
