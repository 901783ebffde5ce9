//! The key-value store: the data plus the client sessions.

use std::collections::HashMap;

use raftkv_plant::{self as plant, Plant};

use crate::codec::{DecodeError, Reader, put_bytes, put_varint};
use crate::command::{Command, Reply, Request};
use crate::digest::{self, Fnv64};
use crate::session::{Admission, Session, SessionConfig, Sessions};

const SNAPSHOT_VERSION: u8 = 1;

/// The replicated state machine. Applying the same entries in the same
/// order to two stores with the same [`SessionConfig`] yields equal stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStore {
    config: SessionConfig,
    /// Unordered: lookups are all the service needs; the snapshot sorts.
    data: HashMap<String, Vec<u8>>,
    sessions: Sessions,
    applied_index: u64,
    /// Highest leader time stamp seen, so time never goes backwards.
    now_ms: u64,
    /// Hash chained over every log entry recorded with
    /// [`KvStore::record_entry`], for comparing replicas' histories.
    chain: u64,
}

impl KvStore {
    pub fn new(config: SessionConfig) -> Self {
        KvStore {
            config,
            data: HashMap::new(),
            sessions: Sessions::default(),
            applied_index: 0,
            now_ms: 0,
            chain: 0,
        }
    }

    /// Chains the log entry at `index` into [`KvStore::applied_chain`].
    /// The caller records every entry it applies or skips, in log order,
    /// before applying it; `kind` is the entry kind's stable code.
    pub fn record_entry(&mut self, index: u64, term: u64, kind: u8, data: &[u8]) {
        self.chain = digest::chain_next(self.chain, index, term, kind, data);
    }

    /// A hash chained over every entry recorded so far: two stores that
    /// recorded the same entries in the same order have the same chain.
    pub fn applied_chain(&self) -> u64 {
        self.chain
    }

    /// A hash of the whole replicated state (the snapshot encoding): equal
    /// stores give equal digests.
    pub fn digest(&self) -> u64 {
        Fnv64::default().write(&self.encode_snapshot()).finish()
    }

    /// Applies the command of the log entry at `index`. Exactly-once: a
    /// (client_id, seq) already applied returns the stored reply unchanged.
    ///
    /// Session rules: seq 1 with no session opens one; a higher seq with no
    /// session gets [`Reply::SessionExpired`]; a seq below the session's
    /// latest gets [`Reply::StaleSequence`]; a seq equal to it gets the
    /// stored reply. Idle sessions expire first, by the time stamps carried
    /// in the requests. A request with client_id 0 or seq 0 (which the node
    /// refuses to propose) is applied without a session.
    ///
    /// Indexes are expected to increase; the applied index never goes back.
    pub fn apply(&mut self, index: u64, request: &Request) -> Reply {
        self.applied_index = self.applied_index.max(index);
        let time_ms = if plant::is(Plant::SessionClockLocal) {
            local_clock_ms()
        } else {
            request.time_ms
        };
        self.now_ms = self.now_ms.max(time_ms);
        self.sessions.expire(self.now_ms, self.config.ttl_ms);

        if request.client_id == 0 || request.seq == 0 {
            return self.execute(index, &request.command);
        }
        match self
            .sessions
            .admit(request.client_id, request.seq, self.now_ms, index)
        {
            Admission::Duplicate(_) if plant::is(Plant::DedupReevaluates) => {
                self.evaluate(index, &request.command)
            }
            Admission::Duplicate(reply) | Admission::Refuse(reply) => reply,
            Admission::Apply => {
                let reply = self.execute(index, &request.command);
                self.sessions.record(
                    request.client_id,
                    request.seq,
                    reply.clone(),
                    self.now_ms,
                    index,
                    self.config.max_sessions,
                );
                reply
            }
        }
    }

    fn execute(&mut self, index: u64, command: &Command) -> Reply {
        match command {
            Command::Noop => Reply::Noop { index },
            Command::Set { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Reply::Set { index }
            }
            Command::Cas {
                key,
                expected,
                new_value,
            } => {
                let previous = self.data.get(key).cloned();
                let applied = previous == *expected;
                if applied {
                    self.data.insert(key.clone(), new_value.clone());
                }
                Reply::Cas {
                    applied,
                    previous,
                    index,
                }
            }
        }
    }

    /// What `command` would answer now, without applying it.
    fn evaluate(&self, index: u64, command: &Command) -> Reply {
        match command {
            Command::Noop => Reply::Noop { index },
            Command::Set { .. } => Reply::Set { index },
            Command::Cas { key, expected, .. } => {
                let previous = self.data.get(key).cloned();
                Reply::Cas {
                    applied: previous == *expected,
                    previous,
                    index,
                }
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(Vec::as_slice)
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// A Noop/undecodable entry: advance applied index only.
    pub fn skip(&mut self, index: u64) {
        self.applied_index = self.applied_index.max(index);
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of open client sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The latest sequence number applied for `client_id`, if it has a
    /// session.
    pub fn last_seq(&self, client_id: u64) -> Option<u64> {
        self.sessions.get(client_id).map(|s| s.last_seq)
    }

    /// The highest leader time stamp applied so far.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn config(&self) -> SessionConfig {
        self.config
    }

    /// The snapshot of this store and its [`KvStore::digest`], from one
    /// encoding.
    pub fn snapshot_with_digest(&self) -> (Vec<u8>, u64) {
        let state = self.encode_snapshot();
        let digest = Fnv64::default().write(&state).finish();
        if plant::is(Plant::SnapshotWithoutSessions) {
            let mut without = self.clone();
            without.sessions = Sessions::default();
            return (without.encode_snapshot(), digest);
        }
        (state, digest)
    }

    /// The whole replicated state (data, sessions, applied index, time,
    /// applied chain) as bytes; equal stores give equal bytes.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = vec![SNAPSHOT_VERSION];
        put_varint(&mut out, self.applied_index);
        put_varint(&mut out, self.now_ms);
        out.extend_from_slice(&self.chain.to_le_bytes());
        put_varint(&mut out, self.data.len() as u64);
        let mut data: Vec<_> = self.data.iter().collect();
        data.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, v) in data {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v);
        }
        put_varint(&mut out, self.sessions.len() as u64);
        for (client_id, s) in self.sessions.iter() {
            put_varint(&mut out, *client_id);
            put_varint(&mut out, s.last_seq);
            put_varint(&mut out, s.last_active_ms);
            put_varint(&mut out, s.last_active_index);
            s.reply.encode_into(&mut out);
        }
        out
    }

    /// Rebuilds a store from [`KvStore::encode_snapshot`] bytes.
    pub fn decode_snapshot(config: SessionConfig, bytes: &[u8]) -> Result<KvStore, DecodeError> {
        let mut r = Reader::new("snapshot", bytes);
        let version = r.u8()?;
        if version != SNAPSHOT_VERSION {
            return Err(DecodeError {
                what: "snapshot",
                offset: 0,
                reason: format!("unknown version {version}"),
            });
        }
        let mut store = KvStore::new(config);
        store.applied_index = r.varint()?;
        store.now_ms = r.varint()?;
        store.chain = r.u64_le()?;
        let keys = r.varint()?;
        let mut last_key: Option<String> = None;
        for _ in 0..keys {
            let key = r.string()?;
            let value = r.bytes()?.to_vec();
            if last_key.as_ref().is_some_and(|k| *k >= key) {
                return Err(r.error(format!("key {key:?} out of order")));
            }
            last_key = Some(key.clone());
            store.data.insert(key, value);
        }
        let sessions = r.varint()?;
        let mut last_client = None;
        for _ in 0..sessions {
            let client_id = r.varint()?;
            if last_client.is_some_and(|c| c >= client_id) {
                return Err(r.error(format!("session {client_id} out of order")));
            }
            last_client = Some(client_id);
            let session = Session {
                last_seq: r.varint()?,
                last_active_ms: r.varint()?,
                last_active_index: r.varint()?,
                reply: Reply::decode_from(&mut r)?,
            };
            store.sessions.insert(client_id, session);
        }
        r.finish()?;
        Ok(store)
    }
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(SessionConfig::default())
    }
}

/// This replica's wall clock, in milliseconds since the Unix epoch.
fn local_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
