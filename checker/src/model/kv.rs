//! The key-value model: each key is an independent register with `set`/`put`,
//! `get`, `cas` and `append`; `noop` touches no key.

use super::{Interner, Job, Partition, Semantics, bad_op, interval, read_constrains_nothing};
use crate::encoding;
use crate::error::CheckError;
use crate::history::{History, Op, Status, ValRef};
use crate::search::{Control, FxBuild, SearchResult, SeqModel};
use crate::value::Val;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// One operation on a key, values interned (0 = absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOp {
    Set(u32),
    /// A read that returned this value.
    Get(u32),
    Cas {
        expected: u32,
        new: u32,
    },
    Append(u32),
}

/// The sequential model of one key.
pub struct KvModel {
    pub ops: Vec<KvOp>,
    pub values: Interner,
    pub initial: u32,
    /// The value id that stands for every written value no op observes
    /// (see [`merge_unobserved_values`]).
    pub unobserved: Option<u32>,
    /// The ops as they were before that merge (empty if nothing merged),
    /// for explanations, which show the real values.
    pub unmerged_ops: Vec<KvOp>,
    /// Values interned before the search started, and their memory: those
    /// after are built by appends during the search.
    pub before_search: Option<(usize, usize)>,
    /// The longest value appended, and the longest state seen (bytes of
    /// their encodings): what the next append may intern at most.
    longest_append: usize,
    longest_state: usize,
}

impl KvModel {
    pub fn new(values: Interner, initial: u32) -> KvModel {
        KvModel {
            ops: Vec::new(),
            values,
            initial,
            unobserved: None,
            unmerged_ops: Vec::new(),
            before_search: None,
            longest_append: 0,
            longest_state: 0,
        }
    }

    /// The text an append extends or appends: a string's own text, nil's
    /// empty text, any other value as written.
    fn append_text(&self, id: u32) -> std::borrow::Cow<'_, str> {
        let b = self.values.encoded(id);
        match encoding::as_str(b) {
            Some(s) => s.into(),
            None if encoding::is_nil(b) => "".into(),
            None => encoding::decode(b).to_string().into(),
        }
    }
}

impl SeqModel for KvModel {
    type State = u32;

    fn init(&mut self) -> u32 {
        if self.before_search.is_none() {
            self.before_search = Some((self.values.len(), self.values.bytes()));
            let len = |&id: &u32| self.values.encoded(id).len();
            self.longest_append = self
                .ops
                .iter()
                .filter_map(|o| match o {
                    KvOp::Append(v) => Some(len(v)),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            self.longest_state = (0..self.values.len() as u32)
                .map(|id| len(&id))
                .max()
                .unwrap_or(0);
        }
        self.initial
    }

    fn step(&mut self, state: &u32, op: usize) -> Option<u32> {
        match self.ops[op] {
            KvOp::Set(v) => Some(v),
            KvOp::Get(v) => (v == *state).then_some(*state),
            KvOp::Cas { expected, new } => (expected == *state).then_some(new),
            KvOp::Append(suffix) => {
                let mut s = self.append_text(*state).into_owned();
                s.push_str(&self.append_text(suffix));
                let mut b = Vec::with_capacity(s.len() + 10);
                encoding::put_str(&mut b, &s);
                self.longest_state = self.longest_state.max(b.len());
                Some(self.values.id_encoded(&b))
            }
        }
    }

    fn effect_key(&self, op: usize) -> Option<u128> {
        let (tag, a, b) = match self.ops[op] {
            KvOp::Set(v) => (0u128, v, 0),
            KvOp::Get(v) => (1, v, 0),
            KvOp::Cas { expected, new } => (2, expected, new),
            KvOp::Append(v) => (3, v, 0),
        };
        Some(tag << 64 | u128::from(a) << 32 | u128::from(b))
    }

    fn read_only(&self, op: usize) -> bool {
        match self.ops[op] {
            KvOp::Get(_) => true,
            KvOp::Cas { expected, new } => expected == new,
            _ => false,
        }
    }

    fn needs(&self, op: usize) -> Option<u32> {
        match self.ops[op] {
            KvOp::Get(v) | KvOp::Cas { expected: v, .. } => Some(v),
            _ => None,
        }
    }

    fn leaves(&self, op: usize) -> Option<u32> {
        match self.ops[op] {
            KvOp::Set(v) | KvOp::Cas { new: v, .. } => Some(v),
            _ => None,
        }
    }

    fn state_id(&self, state: &u32) -> Option<u32> {
        Some(*state)
    }

    fn overwritten(&self, op: usize) -> bool {
        matches!(self.ops[op], KvOp::Set(v) if Some(v) == self.unobserved)
    }

    fn search_bytes(&self) -> usize {
        self.before_search
            .map_or(0, |(_, bytes)| self.values.bytes().saturating_sub(bytes))
    }

    fn step_growth(&self) -> usize {
        // An append interns a value as long as the longest state and suffix.
        if self.longest_append == 0 {
            return 0;
        }
        self.values
            .growth(self.longest_state + self.longest_append + 16)
    }

    fn end_search(&mut self) {
        if let Some((len, _)) = self.before_search.take() {
            self.values.truncate(len);
        }
    }

    fn prepare_explanation(&mut self) {
        if !self.unmerged_ops.is_empty() {
            self.ops = std::mem::take(&mut self.unmerged_ops);
            self.unobserved = None;
        }
    }

    fn show_state(&self, state: &u32) -> String {
        if Some(*state) == self.unobserved {
            return "a value no read observes".to_string();
        }
        match self.values.val(*state) {
            Val::Nil => "absent".to_string(),
            v => v.short(),
        }
    }
}

const EXPECTED: &str = "f set/put (value), get (ok value read, null = absent), cas (value [expected, new]), append (value) or noop, each but noop with a key";

/// What an op name means in the kv model.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Set,
    Get,
    Cas,
    Append,
    Noop,
}

fn kind(f: &str) -> Option<Kind> {
    Some(match f {
        "set" | "put" | "write" => Kind::Set,
        "get" | "read" => Kind::Get,
        "cas" => Kind::Cas,
        "append" => Kind::Append,
        "noop" => Kind::Noop,
        _ => return None,
    })
}

/// A key's ops, split off the history at once; the model is built when the
/// key is first searched and dropped once it is decided, so only the keys
/// being searched hold one.
pub struct KvJob {
    label: String,
    history: Arc<History>,
    initial: Val,
    /// The key's ops that take part (once built and decided: those of the
    /// simplified partition, from which the same partition is built again).
    op_ids: Vec<usize>,
    built: Option<Partition<KvModel>>,
}

impl KvJob {
    fn build(&mut self) -> &mut Partition<KvModel> {
        let (history, initial, ids) = (&self.history, &self.initial, &self.op_ids);
        self.built.get_or_insert_with(|| {
            let mut p = build(history, initial, ids);
            p.label = std::mem::take(&mut self.label);
            p
        })
    }
}

impl Job for KvJob {
    fn label(&self) -> &str {
        self.built.as_ref().map_or(&self.label, |p| &p.label)
    }
    fn op_ids(&self) -> &[usize] {
        self.built.as_ref().map_or(&self.op_ids, |p| &p.op_ids)
    }
    fn run(&mut self, ctl: &Control, explain: bool, budget: u64) -> SearchResult {
        self.build().run(ctl, explain, budget)
    }
    fn finish(&mut self) {
        if let Some(p) = self.built.take() {
            self.label = p.label;
            self.op_ids = p.op_ids;
        }
    }
    fn states_after(&mut self, order: &[usize]) -> Option<Vec<String>> {
        let states = self.build().states_after(order);
        self.finish();
        states
    }
}

/// Splits by key, on up to `threads` threads. Info reads, noops and (with
/// [`super::NilRead::Unknown`]) ok reads of nil constrain nothing and are
/// left out. Malformed ops are refused here, before any search.
pub fn partitions(
    history: &Arc<History>,
    sem: &Semantics,
    threads: usize,
) -> Result<Vec<Box<dyn Job>>, CheckError> {
    Ok(split(history, sem, threads)?
        .into_iter()
        .map(|(key, op_ids)| {
            let key = encoding::decode(history.values.get(key));
            Box::new(KvJob {
                label: super::key_label(&key),
                history: Arc::clone(history),
                initial: sem.initial.of(&key).clone(),
                op_ids,
                built: None,
            }) as Box<dyn Job>
        })
        .collect())
}

/// The simplified partition of each key, built at once.
pub fn key_partitions(
    history: &History,
    sem: &Semantics,
) -> Result<Vec<Partition<KvModel>>, CheckError> {
    Ok(split(history, sem, 1)?
        .into_iter()
        .map(|(key, candidates)| {
            let key = encoding::decode(history.values.get(key));
            let mut p = build(history, sem.initial.of(&key), &candidates);
            p.label = super::key_label(&key);
            p
        })
        .collect())
}

/// Each key's ops (in order of first use) with the ids of its ops that take
/// part. Long histories are split in ranges of ops on up to `threads`
/// threads, joined in op order (the first malformed op is the one refused).
fn split(
    history: &History,
    sem: &Semantics,
    threads: usize,
) -> Result<Vec<(ValRef, Vec<usize>)>, CheckError> {
    let pieces = threads.clamp(1, history.ops.len().div_ceil(SPLIT_RANGE_MIN).max(1));
    split_in(history, sem, pieces)
}

/// [`split`] in `pieces` ranges of ops, each on a thread.
fn split_in(
    history: &History,
    sem: &Semantics,
    pieces: usize,
) -> Result<Vec<(ValRef, Vec<usize>)>, CheckError> {
    let kinds: Vec<Option<Kind>> = history.fns.iter().map(|f| kind(f)).collect();
    let n = history.ops.len();
    if pieces <= 1 {
        return split_range(history, sem, &kinds, 0..n);
    }
    let ranges: Vec<std::ops::Range<usize>> = (0..pieces)
        .map(|i| i * n / pieces..(i + 1) * n / pieces)
        .collect();
    let split_ranges = std::thread::scope(|s| {
        let rest: Vec<_> = ranges[1..]
            .iter()
            .map(|r| s.spawn(|| split_range(history, sem, &kinds, r.clone())))
            .collect();
        let first = split_range(history, sem, &kinds, ranges[0].clone());
        std::iter::once(first)
            .chain(rest.into_iter().map(|h| h.join().expect("split thread")))
            .collect::<Vec<_>>()
    });
    let mut by_key: HashMap<ValRef, usize, FxBuild> = HashMap::default();
    let mut parts: Vec<(ValRef, Vec<usize>)> = Vec::new();
    for range in split_ranges {
        for (key, ids) in range? {
            match by_key.entry(key) {
                Entry::Occupied(e) => parts[*e.get()].1.extend(ids),
                Entry::Vacant(e) => {
                    e.insert(parts.len());
                    parts.push((key, ids));
                }
            }
        }
    }
    Ok(parts)
}

/// Ops split on one thread at least.
const SPLIT_RANGE_MIN: usize = 1 << 18;

/// [`split`] of the ops in `range`.
fn split_range(
    history: &History,
    sem: &Semantics,
    kinds: &[Option<Kind>],
    range: std::ops::Range<usize>,
) -> Result<Vec<(ValRef, Vec<usize>)>, CheckError> {
    let mut by_key: HashMap<ValRef, usize, FxBuild> = HashMap::default();
    let mut parts: Vec<(ValRef, Vec<usize>)> = Vec::new();
    let start = range.start;
    for (i, op) in history.ops[range].iter().enumerate() {
        if op.status == Status::Fail {
            continue;
        }
        let Some(k) = kinds[op.f as usize] else {
            return Err(bad_op(history, op, "kv", EXPECTED));
        };
        if k == Kind::Noop || (k == Kind::Get && read_constrains_nothing(history, op, sem.nil_read))
        {
            continue;
        }
        if op.key.is_none() {
            return Err(bad_op(history, op, "kv", EXPECTED));
        }
        if k == Kind::Cas && encoding::list_items::<2>(history.values.get(op.input)).is_none() {
            return Err(bad_op(history, op, "kv", "cas value [expected, new]"));
        }
        let pi = *by_key.entry(op.key).or_insert_with(|| {
            parts.push((op.key, Vec::new()));
            parts.len() - 1
        });
        parts[pi].1.push(start + i);
    }
    Ok(parts)
}

/// Ops gathered at a time by [`build`].
const GATHER: usize = 256;

/// The key-value model of ops `ids` (checked by [`split`]), simplified.
fn build(history: &History, initial: &Val, ids: &[usize]) -> Partition<KvModel> {
    // Most ops bring a value of a few bytes; growing the interner value by
    // value would copy it over and over.
    let mut values = Interner::with_capacity(ids.len() + 2, ids.len() * 8);
    let initial = values.id(initial);
    let mut model = KvModel::new(values, initial);
    let kinds: Vec<Kind> = history
        .fns
        .iter()
        .map(|f| kind(f).unwrap_or(Kind::Noop))
        .collect();
    model.ops.reserve_exact(ids.len());
    let mut intervals = Vec::with_capacity(ids.len());
    // The key's ops are spread over the history: gathering them first, in
    // loops without dependencies between iterations, lets their cache misses
    // overlap; a few hundred at a time, so that what the first loops
    // brought in is still cached when the last one reads it.
    let mut ops: Vec<Op> = Vec::with_capacity(GATHER.min(ids.len()));
    let mut observed: Vec<&[u8]> = Vec::with_capacity(GATHER.min(ids.len()));
    for chunk in ids.chunks(GATHER) {
        ops.clear();
        ops.extend(chunk.iter().map(|&id| history.ops[id]));
        observed.clear();
        observed.extend(ops.iter().map(|op| {
            history.values.get(match kinds[op.f as usize] {
                Kind::Get => op.output,
                _ => op.input,
            })
        }));
        for (op, value) in ops.iter().zip(&observed) {
            let values = &mut model.values;
            let kop = match kinds[op.f as usize] {
                Kind::Set => KvOp::Set(values.id_encoded(value)),
                Kind::Get => KvOp::Get(values.id_encoded(value)),
                Kind::Append => KvOp::Append(values.id_encoded(value)),
                _ => {
                    let [e, n] = encoding::list_items::<2>(value).expect("checked by split");
                    KvOp::Cas {
                        expected: values.id_encoded(e),
                        new: values.id_encoded(n),
                    }
                }
            };
            model.ops.push(kop);
            intervals.push(interval(history, op));
        }
    }
    let mut p = Partition {
        label: String::new(),
        op_ids: ids.to_vec(),
        intervals,
        model,
    };
    simplify(&mut p);
    p
}

/// Simplifies a partition before the search; the verdict is unchanged.
pub fn simplify(p: &mut Partition<KvModel>) {
    prune_unobserved_info_writes(p);
    merge_unobserved_values(p);
}

/// Gives every written value that no op observes (no ok read returns it, no
/// cas expects it) one shared id. The model only ever compares the state
/// with observed values, so states holding such values behave alike; merged,
/// the search's memo treats them as one, which collapses the orders of
/// concurrent writes nobody read. Partitions with appends are left alone.
pub fn merge_unobserved_values(p: &mut Partition<KvModel>) {
    let model = &mut p.model;
    if model.ops.iter().any(|o| matches!(o, KvOp::Append(_))) {
        return;
    }
    let mut observed = vec![false; model.values.len()];
    for o in &model.ops {
        if let KvOp::Get(v) | KvOp::Cas { expected: v, .. } = *o {
            observed[v as usize] = true;
        }
    }
    let unobserved_write =
        |o: &KvOp| matches!(*o, KvOp::Set(v) | KvOp::Cas { new: v, .. } if !observed[v as usize]);
    if !model.ops.iter().any(unobserved_write) {
        return;
    }
    model.unmerged_ops = model.ops.clone();
    let unobserved = model.values.push_anonymous();
    for o in &mut model.ops {
        if let KvOp::Set(v) | KvOp::Cas { new: v, .. } = o
            && !observed[*v as usize]
        {
            *v = unobserved;
        }
    }
    model.unobserved = Some(unobserved);
}

/// Simplifies info writes (set, cas) using what reads observed, before the
/// search. Partitions with appends are left alone (there the state depends
/// on every write).
///
/// - An info write whose new value nobody observes (no ok read returns it,
///   no cas expects it) is left out: after it only a set could follow, which
///   would equally follow without it.
/// - An info write that is the only writer of its value, when an ok read (or
///   ok cas) observes that value, must have taken effect before the earliest
///   such observer completed: it gets that completion as its return.
///
/// Without this, every info write stays pending to the end of the history and
/// multiplies the states the search visits.
pub fn prune_unobserved_info_writes(p: &mut Partition<KvModel>) {
    let ops = &p.model.ops;
    if ops.iter().any(|o| matches!(o, KvOp::Append(_))) {
        return;
    }
    let n_values = p.model.values.len();
    let mut keep = vec![true; ops.len()];
    let mut observed = vec![false; n_values];
    let mut first_observer_ret: Vec<Option<i64>> = vec![None; n_values];
    let mut writers = vec![0u32; n_values];
    // Dropping an info cas can make the value it expected unobserved, so
    // repeat until nothing changes.
    loop {
        observed.fill(false);
        first_observer_ret.fill(None);
        writers.fill(0);
        writers[p.model.initial as usize] += 1;
        for ((o, iv), _) in ops.iter().zip(&p.intervals).zip(&keep).filter(|(_, k)| **k) {
            let seen = match *o {
                KvOp::Get(v) => Some(v),
                KvOp::Cas { expected, new } => {
                    writers[new as usize] += 1;
                    Some(expected)
                }
                KvOp::Set(v) => {
                    writers[v as usize] += 1;
                    None
                }
                KvOp::Append(_) => None,
            };
            if let Some(v) = seen {
                observed[v as usize] = true;
                if let Some(r) = iv.ret {
                    let slot = &mut first_observer_ret[v as usize];
                    *slot = Some(slot.map_or(r, |x| x.min(r)));
                }
            }
        }
        let mut changed = false;
        for (i, (o, iv)) in ops.iter().zip(&p.intervals).enumerate() {
            if let KvOp::Set(v) | KvOp::Cas { new: v, .. } = *o
                && iv.ret.is_none()
                && keep[i]
                && !observed[v as usize]
            {
                keep[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for ((o, iv), k) in ops.iter().zip(p.intervals.iter_mut()).zip(&keep) {
        if let KvOp::Set(v) | KvOp::Cas { new: v, .. } = *o
            && iv.ret.is_none()
            && *k
            && observed[v as usize]
            && writers[v as usize] == 1
        {
            iv.ret = first_observer_ret[v as usize];
        }
    }
    if keep.iter().all(|&k| k) {
        return;
    }
    let mut i = 0;
    p.model.ops.retain(|_| (keep[i], i += 1).0);
    i = 0;
    p.op_ids.retain(|_| (keep[i], i += 1).0);
    i = 0;
    p.intervals.retain(|_| (keep[i], i += 1).0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenOptions, Rng, kv_history, repeat_a_written_value};
    use crate::search::{Control, SearchResult, UNLIMITED, search};
    use crate::{EventType, History};

    /// The kv model without the hints behind grouping unread sets and the
    /// stranding check: the plain search the reductions must agree with.
    struct Plain(KvModel);

    impl SeqModel for Plain {
        type State = u32;
        fn init(&mut self) -> u32 {
            self.0.init()
        }
        fn step(&mut self, state: &u32, op: usize) -> Option<u32> {
            self.0.step(state, op)
        }
        fn show_state(&self, state: &u32) -> String {
            self.0.show_state(state)
        }
        fn read_only(&self, op: usize) -> bool {
            self.0.read_only(op)
        }
        fn effect_key(&self, op: usize) -> Option<u128> {
            self.0.effect_key(op)
        }
        fn search_bytes(&self) -> usize {
            self.0.search_bytes()
        }
        fn end_search(&mut self) {
            self.0.end_search()
        }
    }

    /// Splitting the ops in ranges on several threads gives each key the
    /// same ops in the same order, and refuses the same first malformed op.
    #[test]
    fn split_in_ranges_is_split_at_once() {
        let mut rng = Rng::new(13);
        let (mut refused, mut split) = (0, 0);
        for seed in 0..300u64 {
            let mut events = kv_history(&GenOptions {
                ops: 50 + rng.below(300) as usize,
                processes: 2 + rng.below(8) as usize,
                keys: 1 + rng.below(20) as usize,
                info_rate: 0.1,
                with_fail: true,
                seed,
            });
            // Some histories get a malformed op or two.
            for _ in 0..rng.below(3) {
                let at = rng.below(events.len() as u64) as usize;
                if events[at].kind != EventType::Invoke {
                    continue;
                }
                match rng.below(3) {
                    0 => events[at].f = "frob".into(),
                    1 if events[at].f == "cas" => events[at].value = Val::Int(1),
                    _ => events[at].key = None,
                }
                let (p, f, key) = (
                    events[at].process.clone(),
                    events[at].f.clone(),
                    events[at].key.clone(),
                );
                if let Some(c) = events[at + 1..].iter_mut().find(|e| e.process == p) {
                    (c.f, c.key) = (f, key);
                }
            }
            let history = History::from_events(events).expect("well-formed");
            let sem = Semantics::default();
            let whole = split_in(&history, &sem, 1);
            match &whole {
                Ok(_) => split += 1,
                Err(_) => refused += 1,
            }
            for pieces in 2..6 {
                let ranges = split_in(&history, &sem, pieces);
                match (&whole, &ranges) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "seed {seed}, {pieces} pieces"),
                    (Err(a), Err(b)) => {
                        assert_eq!(a.to_string(), b.to_string(), "seed {seed}, {pieces} pieces")
                    }
                    _ => panic!("seed {seed}, {pieces} pieces: {whole:?} / {ranges:?}"),
                }
            }
        }
        assert!(
            refused > 50 && split > 50,
            "refused {refused}, split {split}"
        );
    }

    /// Grouping unread sets and refusing stranding steps are reductions of
    /// the search: on histories too long for the brute-force checker they
    /// must give the verdict of the search without them.
    #[test]
    fn search_reductions_change_no_verdict() {
        let mut rng = Rng::new(7);
        let (mut legal, mut illegal, mut grouped) = (0, 0, 0);
        for seed in 0..1500u64 {
            let mut events = kv_history(&GenOptions {
                ops: 20 + rng.below(40) as usize,
                processes: 3 + rng.below(8) as usize,
                keys: 1 + rng.below(2) as usize,
                info_rate: 0.1,
                with_fail: true,
                seed,
            });
            // Half the histories get a read changed to an older value.
            if rng.chance(0.5) {
                let reads: Vec<usize> = (0..events.len())
                    .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "get")
                    .collect();
                if !reads.is_empty() {
                    let i = reads[rng.below(reads.len() as u64) as usize];
                    let older: Vec<Val> = events[..i]
                        .iter()
                        .filter(|e| e.f == "set" && e.key == events[i].key)
                        .map(|e| e.value.clone())
                        .chain([Val::Nil])
                        .collect();
                    events[i].value = older[rng.below(older.len() as u64) as usize].clone();
                }
            }
            // A third write a value another set of the key wrote before, so
            // that some values have several writers.
            if rng.chance(0.3) {
                repeat_a_written_value(&mut events, &mut rng);
            }
            let history = History::from_events(events).expect("well-formed");
            for mut with in key_partitions(&history, &Semantics::default()).unwrap() {
                let mut without = Plain(KvModel {
                    ops: with.model.ops.clone(),
                    unobserved: with.model.unobserved,
                    ..KvModel::new(with.model.values.clone(), with.model.initial)
                });
                if (0..with.model.ops.len()).any(|i| with.model.overwritten(i)) {
                    grouped += 1;
                }
                let ctl = Control::new(None, usize::MAX);
                let a = search(&mut with.model, &with.intervals, &ctl, false, UNLIMITED);
                let b = search(&mut without, &with.intervals, &ctl, false, UNLIMITED);
                let ok = |r: &SearchResult| matches!(r, SearchResult::Linearizable(_));
                assert_eq!(ok(&a), ok(&b), "seed {seed}, key {}", with.label);
                if ok(&a) {
                    legal += 1;
                } else {
                    illegal += 1;
                }
            }
        }
        assert!(
            legal > 500 && illegal > 200 && grouped > 1000,
            "legal {legal}, illegal {illegal}, with overwritten writes {grouped}"
        );
    }
}
