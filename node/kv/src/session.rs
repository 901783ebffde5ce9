//! Client sessions for exactly-once semantics (Raft dissertation §6.3):
//! per client, the latest sequence number applied and its reply.
//!
//! Sessions are replicated state, so everything here depends only on the
//! applied entries: time is the leader's stamp carried in each request, and
//! a session's activity is ordered by the log index that last touched it.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::Reply;

/// Limits on sessions. Every replica must use the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session idle for longer than this (by the leaders' time stamps)
    /// expires.
    pub ttl_ms: u64,
    /// Beyond this many sessions the least recently active are dropped
    /// (at least one session is always kept).
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl_ms: 60 * 60 * 1000,
            max_sessions: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) last_seq: u64,
    pub(crate) reply: Reply,
    pub(crate) last_active_ms: u64,
    pub(crate) last_active_index: u64,
}

/// What a request's sequence number means for its session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// New: apply it and record the reply.
    Apply,
    /// Already applied: answer with the stored reply.
    Duplicate(Reply),
    /// Refused without applying.
    Refuse(Reply),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sessions {
    by_client: BTreeMap<u64, Session>,
    /// (last_active_index, client_id): least recently active first.
    by_activity: BTreeSet<(u64, u64)>,
}

impl Sessions {
    pub(crate) fn len(&self) -> usize {
        self.by_client.len()
    }

    pub(crate) fn get(&self, client_id: u64) -> Option<&Session> {
        self.by_client.get(&client_id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&u64, &Session)> {
        self.by_client.iter()
    }

    /// Drops every session idle for longer than `ttl_ms` at time `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64, ttl_ms: u64) {
        while let Some(&(index, client_id)) = self.by_activity.first() {
            let idle = self
                .by_client
                .get(&client_id)
                .map(|s| now_ms.saturating_sub(s.last_active_ms));
            if idle.is_some_and(|idle| idle <= ttl_ms) {
                break;
            }
            self.by_activity.remove(&(index, client_id));
            self.by_client.remove(&client_id);
        }
    }

    /// Decides what to do with request `seq` of `client_id`, refreshing the
    /// session's activity when the client is answered from it.
    pub(crate) fn admit(&mut self, client_id: u64, seq: u64, now_ms: u64, index: u64) -> Admission {
        match self.by_client.get(&client_id) {
            None if seq == 1 => Admission::Apply,
            None => Admission::Refuse(Reply::SessionExpired),
            Some(s) if seq > s.last_seq => Admission::Apply,
            Some(s) if seq < s.last_seq => Admission::Refuse(Reply::StaleSequence {
                last_seq: s.last_seq,
            }),
            Some(s) => {
                let reply = s.reply.clone();
                self.touch(client_id, now_ms, index);
                Admission::Duplicate(reply)
            }
        }
    }

    fn touch(&mut self, client_id: u64, now_ms: u64, index: u64) {
        if let Some(s) = self.by_client.get_mut(&client_id) {
            self.by_activity.remove(&(s.last_active_index, client_id));
            s.last_active_ms = now_ms;
            s.last_active_index = index;
            self.by_activity.insert((index, client_id));
        }
    }

    /// Records the reply of the newly applied request `seq`, opening the
    /// session if needed, then enforces `max_sessions`.
    pub(crate) fn record(
        &mut self,
        client_id: u64,
        seq: u64,
        reply: Reply,
        now_ms: u64,
        index: u64,
        max_sessions: usize,
    ) {
        self.insert(
            client_id,
            Session {
                last_seq: seq,
                reply,
                last_active_ms: now_ms,
                last_active_index: index,
            },
        );
        while self.by_client.len() > max_sessions.max(1) {
            let Some((_, oldest)) = self.by_activity.pop_first() else {
                break;
            };
            self.by_client.remove(&oldest);
        }
    }

    /// Inserts or replaces a session.
    pub(crate) fn insert(&mut self, client_id: u64, session: Session) {
        if let Some(old) = self.by_client.get(&client_id) {
            self.by_activity.remove(&(old.last_active_index, client_id));
        }
        self.by_activity
            .insert((session.last_active_index, client_id));
        self.by_client.insert(client_id, session);
    }
}
