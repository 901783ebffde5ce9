//! Conversion between the core's Raft messages and their protobuf form.

use raftkv::proto;
use raftkv_core::{Entry, EntryKind, Message, MessageKind, SnapshotMeta};

fn kind_to_proto(kind: MessageKind) -> proto::MessageKind {
    match kind {
        MessageKind::Append => proto::MessageKind::Append,
        MessageKind::AppendResponse => proto::MessageKind::AppendResponse,
        MessageKind::Vote => proto::MessageKind::Vote,
        MessageKind::VoteResponse => proto::MessageKind::VoteResponse,
        MessageKind::PreVote => proto::MessageKind::PreVote,
        MessageKind::PreVoteResponse => proto::MessageKind::PreVoteResponse,
        MessageKind::Heartbeat => proto::MessageKind::Heartbeat,
        MessageKind::HeartbeatResponse => proto::MessageKind::HeartbeatResponse,
        MessageKind::TimeoutNow => proto::MessageKind::TimeoutNow,
        MessageKind::Snapshot => proto::MessageKind::Snapshot,
    }
}

fn kind_from_proto(kind: i32) -> Result<MessageKind, String> {
    Ok(match proto::MessageKind::try_from(kind) {
        Ok(proto::MessageKind::Append) => MessageKind::Append,
        Ok(proto::MessageKind::AppendResponse) => MessageKind::AppendResponse,
        Ok(proto::MessageKind::Vote) => MessageKind::Vote,
        Ok(proto::MessageKind::VoteResponse) => MessageKind::VoteResponse,
        Ok(proto::MessageKind::PreVote) => MessageKind::PreVote,
        Ok(proto::MessageKind::PreVoteResponse) => MessageKind::PreVoteResponse,
        Ok(proto::MessageKind::Heartbeat) => MessageKind::Heartbeat,
        Ok(proto::MessageKind::HeartbeatResponse) => MessageKind::HeartbeatResponse,
        Ok(proto::MessageKind::TimeoutNow) => MessageKind::TimeoutNow,
        Ok(proto::MessageKind::Snapshot) => MessageKind::Snapshot,
        Ok(proto::MessageKind::Unspecified) | Err(_) => {
            return Err(format!("unknown message kind {kind}"));
        }
    })
}

pub fn entry_to_proto(entry: Entry) -> proto::LogEntry {
    proto::LogEntry {
        term: entry.term,
        index: entry.index,
        kind: match entry.kind {
            EntryKind::Command => proto::EntryKind::Command,
            EntryKind::Noop => proto::EntryKind::Noop,
        } as i32,
        data: entry.data,
    }
}

pub fn entry_from_proto(entry: proto::LogEntry) -> Result<Entry, String> {
    let kind = match proto::EntryKind::try_from(entry.kind) {
        Ok(proto::EntryKind::Command) => EntryKind::Command,
        Ok(proto::EntryKind::Noop) => EntryKind::Noop,
        Err(_) => return Err(format!("unknown entry kind {}", entry.kind)),
    };
    Ok(Entry {
        term: entry.term,
        index: entry.index,
        kind,
        data: entry.data,
    })
}

pub fn snapshot_meta_to_proto(meta: SnapshotMeta) -> proto::SnapshotMeta {
    proto::SnapshotMeta {
        index: meta.index,
        term: meta.term,
        voters: meta.voters,
    }
}

pub fn snapshot_meta_from_proto(meta: proto::SnapshotMeta) -> SnapshotMeta {
    SnapshotMeta {
        index: meta.index,
        term: meta.term,
        voters: meta.voters,
    }
}

pub fn message_to_proto(msg: Message) -> proto::RaftMessage {
    proto::RaftMessage {
        kind: kind_to_proto(msg.kind) as i32,
        from: msg.from,
        to: msg.to,
        term: msg.term,
        log_index: msg.log_index,
        log_term: msg.log_term,
        entries: msg.entries.into_iter().map(entry_to_proto).collect(),
        commit: msg.commit,
        reject: msg.reject,
        reject_hint: msg.reject_hint,
        conflict_term: msg.conflict_term,
        read_ctx: msg.read_ctx,
        snapshot: msg.snapshot.map(snapshot_meta_to_proto),
    }
}

/// Fails on an unknown message or entry kind (a peer running other code),
/// and on a snapshot message without its metadata.
pub fn message_from_proto(msg: proto::RaftMessage) -> Result<Message, String> {
    let kind = kind_from_proto(msg.kind)?;
    if kind == MessageKind::Snapshot && msg.snapshot.is_none() {
        return Err("snapshot message without snapshot metadata".into());
    }
    Ok(Message {
        kind,
        from: msg.from,
        to: msg.to,
        term: msg.term,
        log_index: msg.log_index,
        log_term: msg.log_term,
        entries: msg
            .entries
            .into_iter()
            .map(entry_from_proto)
            .collect::<Result<_, _>>()?,
        commit: msg.commit,
        reject: msg.reject,
        reject_hint: msg.reject_hint,
        conflict_term: msg.conflict_term,
        read_ctx: msg.read_ctx,
        snapshot: msg.snapshot.map(snapshot_meta_from_proto),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let kinds = [
            MessageKind::Append,
            MessageKind::AppendResponse,
            MessageKind::Vote,
            MessageKind::VoteResponse,
            MessageKind::PreVote,
            MessageKind::PreVoteResponse,
            MessageKind::Heartbeat,
            MessageKind::HeartbeatResponse,
            MessageKind::TimeoutNow,
            MessageKind::Snapshot,
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let i = i as u64;
            let msg = Message {
                kind,
                from: 1 + i,
                to: 2 + i,
                term: 3 + i,
                log_index: 4 + i,
                log_term: 5 + i,
                entries: vec![
                    Entry {
                        term: 7,
                        index: 5,
                        kind: EntryKind::Noop,
                        data: vec![],
                    },
                    Entry {
                        term: 7,
                        index: 6,
                        kind: EntryKind::Command,
                        data: vec![1, 2, i as u8],
                    },
                ],
                commit: 6 + i,
                reject: i.is_multiple_of(2),
                reject_hint: 7 + i,
                conflict_term: 8 + i,
                read_ctx: 9 + i,
                snapshot: (kind == MessageKind::Snapshot).then(|| SnapshotMeta {
                    index: 10 + i,
                    term: 11 + i,
                    voters: vec![1, 2, 3],
                }),
            };
            let wire = prost::Message::encode_to_vec(&message_to_proto(msg.clone()));
            let decoded: proto::RaftMessage = prost::Message::decode(&wire[..]).unwrap();
            assert_eq!(message_from_proto(decoded).unwrap(), msg);
        }
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let mut m = message_to_proto(Message::new(MessageKind::Vote, 1, 2, 3));
        m.kind = 0;
        assert!(
            message_from_proto(m.clone())
                .unwrap_err()
                .contains("unknown message kind 0")
        );
        m.kind = 77;
        assert!(message_from_proto(m.clone()).is_err());
        m.kind = proto::MessageKind::Snapshot as i32;
        assert!(
            message_from_proto(m.clone())
                .unwrap_err()
                .contains("without snapshot metadata")
        );
        m.kind = proto::MessageKind::Append as i32;
        m.entries.push(proto::LogEntry {
            term: 1,
            index: 1,
            kind: 9,
            data: vec![],
        });
        assert!(
            message_from_proto(m)
                .unwrap_err()
                .contains("unknown entry kind 9")
        );
    }
}
