//! The linearizability search for one partition: Wing & Gong / Lowe's
//! just-in-time linearization with a memo of (linearized set, model state),
//! over a doubly linked list of call/return entries as in Porcupine.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// A sequential specification, specialised to the operations of one partition.
pub trait SeqModel {
    type State: Clone + Eq + Hash;
    fn init(&mut self) -> Self::State;
    /// Applies partition op `op` to `state`; `None` if the op, with the output
    /// it reported, cannot take effect in `state`.
    fn step(&mut self, state: &Self::State, op: usize) -> Option<Self::State>;
    fn show_state(&self, state: &Self::State) -> String;
    /// Whether `op` never changes the state when it can take effect (a read).
    /// The search linearizes such ops as soon as they fit and never tries
    /// them later: if a linearization places a read later, moving the read
    /// forward to a point where it already fits gives another one.
    fn read_only(&self, _op: usize) -> bool {
        false
    }
    /// Ops with the same `Some(key)` have the same effect on every state
    /// (same function, same arguments). Of identical ops that never returned
    /// (info), the search tries them only in call order: exchanging two of
    /// them in a linearization gives another linearization.
    fn effect_key(&self, _op: usize) -> Option<u128> {
        None
    }
    /// Whether `op` fits every state and leads to one in which only blind
    /// writes (ops that fit every state and ignore it) fit: a write whose
    /// value nobody observes. In a linearization such a write can always move
    /// to just before the next blind write, where the latter overwrites it,
    /// so the search never chooses one alone: it linearizes every callable
    /// one together, as one choice, and lets a blind write follow.
    fn overwritten(&self, _op: usize) -> bool {
        false
    }
    /// The one state `op` needs to take effect, as a small id (`None`: it
    /// fits several states, or the model cannot tell). With [`leaves`] and
    /// [`state_id`] it lets the search refuse a step that strands an op:
    /// leaving a state that an acknowledged op still needs when no op left
    /// can bring that state back.
    ///
    /// [`leaves`]: SeqModel::leaves
    /// [`state_id`]: SeqModel::state_id
    fn needs(&self, _op: usize) -> Option<u32> {
        None
    }
    /// The one state `op` leaves, whatever the state before (`None`: it
    /// depends on that state, or the model cannot tell).
    fn leaves(&self, _op: usize) -> Option<u32> {
        None
    }
    /// The id of `state` as `needs` and `leaves` name it.
    fn state_id(&self, _state: &Self::State) -> Option<u32> {
        None
    }
    /// Called before an explaining search: undoes simplifications that
    /// would hide values from the explanation.
    fn prepare_explanation(&mut self) {}
    /// Heap bytes owned by `state` (beyond `size_of::<State>()`), counted
    /// against the memory limit for every state the memo keeps.
    fn state_heap_bytes(&self, _state: &Self::State) -> usize {
        0
    }
    /// Bytes the model has built for the current search (values made by
    /// appends), counted against the memory limit.
    fn search_bytes(&self) -> usize {
        0
    }
    /// Called when a search ends: drops what the model built for it.
    fn end_search(&mut self) {}
    /// Bytes the next [`step`](SeqModel::step) may allocate at most (a
    /// table about to grow), so a search can stop before it passes the
    /// memory limit rather than after.
    fn step_growth(&self) -> usize {
        0
    }
}

/// What the stranding check counts: for each state id, the acknowledged ops
/// not linearized yet that need it, and the ops not linearized yet that can
/// bring it about. Enabled only when every op that may change the state
/// says which state it leaves.
struct Stranding {
    enabled: bool,
    needs: Vec<Option<u32>>,
    leaves: Vec<Option<u32>>,
    needed: Vec<u32>,
    producers: Vec<u32>,
}

impl Stranding {
    fn new<M: SeqModel>(model: &M, ops: &[Interval], read_only: &[bool], enabled: bool) -> Self {
        let n = ops.len();
        let needs: Vec<Option<u32>> = (0..n).map(|i| model.needs(i)).collect();
        let leaves: Vec<Option<u32>> = (0..n)
            .map(|i| if read_only[i] { None } else { model.leaves(i) })
            .collect();
        let enabled = enabled && (0..n).all(|i| read_only[i] || leaves[i].is_some());
        let ids = needs
            .iter()
            .chain(&leaves)
            .flatten()
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut st = Stranding {
            enabled,
            needs,
            leaves,
            needed: vec![0; ids],
            producers: vec![0; ids],
        };
        if enabled {
            for (i, op) in ops.iter().enumerate() {
                st.count(i, op.ret.is_some(), 1);
            }
        }
        st
    }

    /// Adds `delta` for op `op` (`ok`: it must be linearized).
    fn count(&mut self, op: usize, ok: bool, delta: i32) {
        if !self.enabled {
            return;
        }
        if ok && let Some(v) = self.needs[op] {
            self.needed[v as usize] = self.needed[v as usize].wrapping_add_signed(delta);
        }
        if let Some(v) = self.leaves[op] {
            self.producers[v as usize] = self.producers[v as usize].wrapping_add_signed(delta);
        }
    }

    /// Whether linearizing `op` (acknowledged if `ok`) in state `from`
    /// strands another op.
    fn strands(&self, op: usize, ok: bool, from: Option<u32>) -> bool {
        match from {
            Some(v) if self.enabled && self.leaves[op] != from => {
                let own = u32::from(ok && self.needs[op] == from);
                let v = v as usize;
                v < self.needed.len() && self.needed[v] > own && self.producers[v] == 0
            }
            _ => false,
        }
    }
}

/// An operation's real-time interval (ranks, not nanoseconds). `ret: None`
/// means it may take effect at any time after `call`, or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub call: i64,
    pub ret: Option<i64>,
}

/// Shared limits for a check running on several threads.
#[derive(Debug)]
pub struct Control {
    stop: AtomicBool,
    deadline: Option<Instant>,
    mem_used: AtomicUsize,
    mem_peak: AtomicUsize,
    mem_limit: usize,
}

impl Control {
    pub fn new(deadline: Option<Instant>, mem_limit: usize) -> Control {
        Control {
            stop: AtomicBool::new(false),
            deadline,
            mem_used: AtomicUsize::new(0),
            mem_peak: AtomicUsize::new(0),
            mem_limit,
        }
    }

    /// Asks every search using this control to give up.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn mem_used(&self) -> usize {
        self.mem_used.load(Ordering::Relaxed)
    }

    /// The most memo memory in use at once (bytes, approximate).
    pub fn mem_peak(&self) -> usize {
        self.mem_peak.load(Ordering::Relaxed)
    }

    fn add_mem(&self, bytes: usize) {
        let now = self.mem_used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.mem_peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub_mem(&self, bytes: usize) {
        self.mem_used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether allocating `bytes` more would pass the memory limit.
    fn would_exceed(&self, bytes: usize) -> bool {
        self.mem_used.load(Ordering::Relaxed).saturating_add(bytes) > self.mem_limit
    }

    fn check(&self) -> Option<Abort> {
        if self.stop.load(Ordering::Relaxed) {
            return Some(Abort::Stopped);
        }
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Some(Abort::TimeLimit);
        }
        if self.mem_used.load(Ordering::Relaxed) > self.mem_limit {
            return Some(Abort::MemoryLimit);
        }
        None
    }
}

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    /// Another partition was found illegal (or the caller stopped).
    Stopped,
    TimeLimit,
    MemoryLimit,
    /// It used the iterations it was given; a later run may get more.
    Budget,
}

/// A search's iteration budget when it may run to the end.
pub const UNLIMITED: u64 = u64::MAX;

/// Drops `x` on a thread of its own when it is big, so that freeing a large
/// search does not delay the verdict (a process about to exit does not wait
/// for it at all).
pub fn drop_big<T: Send + 'static>(x: T, bytes: usize) {
    if bytes < (64 << 20) || !std::mem::needs_drop::<T>() {
        return;
    }
    // If no thread can be started, the closure and `x` are dropped here.
    let _ = std::thread::Builder::new()
        .name("checker-free".into())
        .spawn(move || drop(x));
}

/// The deepest point the search reached before a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// Partition ops linearized, in order.
    pub prefix: Vec<usize>,
    /// Model state after the prefix.
    pub state: String,
    /// The op whose completion came while it could not be linearized.
    pub op: usize,
}

/// The result of searching one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchResult {
    /// A linearization (info ops that never took effect are left out).
    Linearizable(Vec<usize>),
    /// No linearization exists; `stuck` is filled when explaining.
    Illegal(Option<Stuck>),
    Aborted(Abort, Option<Stuck>),
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// FxHash: fast, non-cryptographic hashing of model states and values.
#[derive(Default)]
pub struct FxHasher(u64);

/// A `HashMap` hasher builder using [`FxHasher`].
pub type FxBuild = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time (little-endian), the last few zero-padded.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.write_u64(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let last = rest.iter().rev().fold(0u64, |w, &b| w << 8 | u64::from(b));
            self.write_u64(last);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Passes an already mixed u64 through.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Partitions with more ops than this keep 128-bit fingerprints of the
/// linearized sets in the memo instead of the sets themselves.
pub const EXACT_MEMO_MAX_OPS: usize = 2048;

/// The memo of visited (linearized set, state) pairs, stored in arenas:
/// a hash -> first entry index map plus per-entry chains. Each entry holds
/// the state, a second independent 64-bit fingerprint of the set, and (for
/// partitions of up to [`EXACT_MEMO_MAX_OPS`] ops) the set itself. Without
/// the set, two different sets are confused only if both 64-bit Zobrist
/// fingerprints collide (about 2^-128 per pair of entries); that could only
/// hide a linearization, never invent one.
struct Memo<S> {
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    chain: Vec<u32>,
    fingerprints: Vec<u64>,
    bits: Vec<u64>,
    states: Vec<S>,
    /// Words of the set stored per entry (0 = fingerprints only).
    words: usize,
    /// Heap bytes owned by the states kept.
    state_heap: usize,
}

impl<S: Eq> Memo<S> {
    fn new(words: usize) -> Memo<S> {
        Memo {
            heads: HashMap::default(),
            chain: Vec::new(),
            fingerprints: Vec::new(),
            bits: Vec::new(),
            states: Vec::new(),
            words,
            state_heap: 0,
        }
    }

    /// Bytes allocated, from the capacities (a hash map slot: key, value and
    /// a control byte).
    fn bytes(&self) -> usize {
        self.heads.capacity() * (8 + 4 + 1)
            + self.chain.capacity() * 4
            + self.fingerprints.capacity() * 8
            + self.bits.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.state_heap
    }

    /// Bytes the next insert may allocate: arrays that are full double.
    fn growth(&self) -> usize {
        let mut g = 0;
        if self.states.len() == self.states.capacity() {
            g +=
                self.states.capacity().max(4) * (std::mem::size_of::<S>() + 4 + 8 + self.words * 8);
        }
        if self.heads.len() == self.heads.capacity() {
            g += self.heads.capacity().max(4) * (8 + 4 + 1);
        }
        g
    }

    /// Inserts; returns false if already present. `heap` is the heap bytes
    /// `state` owns.
    fn insert(&mut self, hash: u64, fingerprint: u64, bits: &[u64], state: &S, heap: usize) -> bool
    where
        S: Clone,
    {
        let new = self.states.len() as u32;
        let mut at = match self.heads.get(&hash) {
            Some(&i) => i,
            None => {
                self.heads.insert(hash, new);
                NIL
            }
        };
        let mut last = NIL;
        while at != NIL {
            let i = at as usize;
            if self.fingerprints[i] == fingerprint
                && self.states[i] == *state
                && (self.words == 0 || self.bits[i * self.words..(i + 1) * self.words] == *bits)
            {
                return false;
            }
            last = at;
            at = self.chain[i];
        }
        if last != NIL {
            self.chain[last as usize] = new;
        }
        self.chain.push(NIL);
        self.fingerprints.push(fingerprint);
        if self.words > 0 {
            self.bits.extend_from_slice(bits);
        }
        self.states.push(state.clone());
        self.state_heap += heap;
        true
    }
}

/// For each op that never returned, the identical such op called just
/// before it (NIL if none).
fn pending_twins<M: SeqModel>(model: &M, ops: &[Interval]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    order.sort_by_key(|&i| (ops[i].call, i));
    let mut last: HashMap<u128, u32, FxBuild> = HashMap::default();
    let mut twin = vec![NIL; ops.len()];
    for i in order {
        if let Some(key) = model.effect_key(i)
            && let Some(before) = last.insert(key, i as u32)
        {
            twin[i] = before;
        }
    }
    twin
}

/// Unlinks an op's call and (if any) return entry from the list.
fn lift(next: &mut [u32], prev: &mut [u32], call: u32, ret: u32) {
    for node in [call, ret] {
        if node != NIL {
            let (p, nx) = (prev[node as usize], next[node as usize]);
            next[p as usize] = nx;
            if nx != NIL {
                prev[nx as usize] = p;
            }
        }
    }
}

/// Relinks what [`lift`] unlinked; ops are unlifted in reverse order.
fn unlift(next: &mut [u32], prev: &mut [u32], call: u32, ret: u32) {
    for node in [ret, call] {
        if node != NIL {
            let (p, nx) = (prev[node as usize], next[node as usize]);
            next[p as usize] = node;
            if nx != NIL {
                prev[nx as usize] = node;
            }
        }
    }
}

/// Searches for a linearization of the partition's ops. With `explain`, a
/// failure carries the deepest linearizable prefix found. After `budget`
/// iterations it gives up with [`Abort::Budget`]. Every byte it keeps (the
/// memo, the values the model builds) is counted in `ctl`, and given back
/// when it returns.
pub fn search<M: SeqModel>(
    model: &mut M,
    ops: &[Interval],
    ctl: &Control,
    explain: bool,
    budget: u64,
) -> SearchResult
where
    M::State: Send + 'static,
{
    let n = ops.len();
    // Entries: 0 is the head sentinel; then one call per op and one return
    // per op that completed ok.
    let mut entries: Vec<(i64, bool, u32)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        entries.push((op.call, false, i as u32));
        if let Some(r) = op.ret {
            entries.push((r, true, i as u32));
        }
    }
    entries.sort_unstable();
    // Calls between two returns may sit in any order: put the op that must
    // return first first, so the first path tried tends to be a linearization.
    let ret_of = |op: u32| ops[op as usize].ret.unwrap_or(i64::MAX);
    for block in entries.chunk_by_mut(|a, b| !a.1 && !b.1) {
        if block.len() > 1 && !block[0].1 {
            block.sort_unstable_by_key(|&(_, _, op)| (ret_of(op), op));
        }
    }
    let len = entries.len() + 1;
    let mut next = vec![NIL; len];
    let mut prev = vec![NIL; len];
    let mut op_of = vec![NIL; len];
    let mut is_call = vec![false; len];
    let mut call_node = vec![NIL; n];
    let mut ret_node = vec![NIL; n];
    for (k, &(_, ret, op)) in entries.iter().enumerate() {
        let node = k + 1;
        op_of[node] = op;
        is_call[node] = !ret;
        if ret {
            ret_node[op as usize] = node as u32;
        } else {
            call_node[op as usize] = node as u32;
        }
        prev[node] = (node - 1) as u32;
        next[node - 1] = node as u32;
    }
    drop(entries);

    let zobrist: Vec<u64> = (0..n as u64).map(|i| splitmix(i ^ 0x5eed)).collect();
    let zobrist2: Vec<u64> = (0..n as u64)
        .map(|i| splitmix(i.wrapping_add(0x0123_4567_89ab_cdef).rotate_left(17)))
        .collect();
    let words = n.div_ceil(64).max(1);
    let mut bits = vec![0u64; words];
    let mut bits_hash = 0u64;
    let mut bits_hash2 = 0u64;
    let mut memo: Memo<M::State> = Memo::new(if n <= EXACT_MEMO_MAX_OPS { words } else { 0 });
    let mut mem_reported = 0usize;

    let mut remaining_ok = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut state = model.init();
    // (op, whether it was linearized together with the op below it, the
    // state before it).
    let mut stack: Vec<(u32, bool, M::State)> = Vec::new();
    let mut best: Option<Stuck> = None;
    let mut cur = next[HEAD as usize];
    let mut iterations: u64 = 0;

    let state_hash = |s: &M::State| {
        let mut h = FxHasher::default();
        s.hash(&mut h);
        h.finish()
    };

    let read_only: Vec<bool> = (0..n).map(|i| model.read_only(i)).collect();
    let overwritten: Vec<bool> = (0..n).map(|i| model.overwritten(i)).collect();
    let twin_before = pending_twins(model, ops);
    // Off while explaining: the deepest prefix shown stays that of the plain
    // search.
    let mut stranding = Stranding::new(model, ops, &read_only, !explain);
    // Each level is scanned twice: first for reads that fit (forced moves),
    // then for the other ops (choices).
    let mut reads_phase = true;

    // Takes a linearized op back out (its state is restored by the caller).
    macro_rules! unlinearize {
        ($op:expr) => {{
            let op: usize = $op;
            bits[op / 64] &= !(1 << (op % 64));
            bits_hash ^= zobrist[op];
            bits_hash2 ^= zobrist2[op];
            unlift(&mut next, &mut prev, call_node[op], ret_node[op]);
            stranding.count(op, ops[op].ret.is_some(), 1);
            if ops[op].ret.is_some() {
                remaining_ok += 1;
            }
        }};
    }

    let result = 'search: loop {
        if remaining_ok == 0 {
            break SearchResult::Linearizable(stack.iter().map(|(o, _, _)| *o as usize).collect());
        }
        iterations += 1;
        if iterations & 1023 == 0 {
            let now = memo.bytes() + model.search_bytes();
            if now > mem_reported {
                ctl.add_mem(now - mem_reported);
            } else {
                ctl.sub_mem(mem_reported - now);
            }
            mem_reported = now;
            if let Some(a) = ctl.check() {
                break SearchResult::Aborted(a, best.take());
            }
            if iterations >= budget {
                break SearchResult::Aborted(Abort::Budget, best.take());
            }
        }
        let growth = memo.growth() + model.step_growth();
        if growth > 0 && ctl.would_exceed(growth) {
            break SearchResult::Aborted(Abort::MemoryLimit, best.take());
        }
        debug_assert!(cur != NIL, "an ok return is always ahead of the cursor");
        let c = cur as usize;
        let mut dead_end = false;
        if is_call[c] {
            let op = op_of[c] as usize;
            if read_only[op] != reads_phase {
                cur = next[c];
                continue;
            }
            if overwritten[op] {
                // One choice per level: at the first callable such write.
                let mut at = next[HEAD as usize];
                while at != c as u32 && !overwritten[op_of[at as usize] as usize] {
                    at = next[at as usize];
                }
                if at == c as u32
                    && !stranding.strands(op, ops[op].ret.is_some(), model.state_id(&state))
                {
                    // Linearize every callable overwritten write, again as
                    // lifting returns makes more of them callable.
                    let depth = stack.len();
                    loop {
                        let mut found = false;
                        let mut at = next[HEAD as usize];
                        while at != NIL && is_call[at as usize] {
                            let w = op_of[at as usize] as usize;
                            at = next[at as usize];
                            if overwritten[w] {
                                let Some(new_state) = model.step(&state, w) else {
                                    continue;
                                };
                                found = true;
                                bits[w / 64] |= 1 << (w % 64);
                                bits_hash ^= zobrist[w];
                                bits_hash2 ^= zobrist2[w];
                                let grouped = stack.len() > depth;
                                stack.push((
                                    w as u32,
                                    grouped,
                                    std::mem::replace(&mut state, new_state),
                                ));
                                lift(&mut next, &mut prev, call_node[w], ret_node[w]);
                                stranding.count(w, ops[w].ret.is_some(), -1);
                                if ops[w].ret.is_some() {
                                    remaining_ok -= 1;
                                }
                            }
                        }
                        if !found {
                            break;
                        }
                    }
                    let key = bits_hash ^ state_hash(&state).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    let heap = model.state_heap_bytes(&state);
                    if stack.len() > depth && memo.insert(key, bits_hash2, &bits, &state, heap) {
                        cur = next[HEAD as usize];
                        reads_phase = true;
                        continue;
                    }
                    // Seen before: undo the group.
                    while stack.len() > depth {
                        let (w, _, prev_state) = stack.pop().expect("group member");
                        state = prev_state;
                        unlinearize!(w as usize);
                    }
                }
                cur = next[c];
                continue;
            }
            let twin = twin_before[op];
            if twin != NIL && bits[twin as usize / 64] & (1 << (twin % 64)) == 0 {
                // An identical pending op called earlier is not linearized
                // yet: trying this one first would only repeat its choices.
                cur = next[c];
                continue;
            }
            if !read_only[op]
                && stranding.strands(op, ops[op].ret.is_some(), model.state_id(&state))
            {
                cur = next[c];
                continue;
            }
            if let Some(new_state) = model.step(&state, op) {
                bits[op / 64] |= 1 << (op % 64);
                let h = bits_hash ^ zobrist[op];
                let h2 = bits_hash2 ^ zobrist2[op];
                let key = h ^ state_hash(&new_state).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let heap = model.state_heap_bytes(&new_state);
                if memo.insert(key, h2, &bits, &new_state, heap) {
                    bits_hash = h;
                    bits_hash2 = h2;
                    stack.push((op as u32, false, std::mem::replace(&mut state, new_state)));
                    lift(&mut next, &mut prev, call_node[op], ret_node[op]);
                    stranding.count(op, ops[op].ret.is_some(), -1);
                    if ops[op].ret.is_some() {
                        remaining_ok -= 1;
                    }
                    cur = next[HEAD as usize];
                    reads_phase = true;
                    continue;
                }
                bits[op / 64] &= !(1 << (op % 64));
                // A read that fits leads only to explored states: so does
                // everything else from here.
                dead_end = reads_phase;
            }
            if !dead_end {
                cur = next[c];
                continue;
            }
        }
        if !dead_end && reads_phase {
            reads_phase = false;
            cur = next[HEAD as usize];
            continue;
        }
        if !dead_end && explain && best.as_ref().is_none_or(|b| stack.len() > b.prefix.len()) {
            // A return: its op should have been linearized by now.
            best = Some(Stuck {
                prefix: stack.iter().map(|(o, _, _)| *o as usize).collect(),
                state: model.show_state(&state),
                op: op_of[c] as usize,
            });
        }
        // Backtrack; past a read, keep going (it was a forced move).
        loop {
            let Some((op, grouped, prev_state)) = stack.pop() else {
                break 'search SearchResult::Illegal(best.take());
            };
            let op = op as usize;
            state = prev_state;
            unlinearize!(op);
            if !read_only[op] && !grouped {
                cur = next[call_node[op] as usize];
                reads_phase = false;
                break;
            }
        }
    };
    ctl.sub_mem(mem_reported);
    model.end_search();
    let bytes = memo.bytes();
    drop_big(memo, bytes);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashing bytes is hashing them as little-endian words, the last one
    /// zero-padded.
    #[test]
    fn fx_hashes_bytes_as_padded_words() {
        let mut rng = crate::generate::Rng::new(9);
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let mut words = FxHasher::default();
            for chunk in bytes.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                words.write_u64(u64::from_le_bytes(w));
            }
            let mut h = FxHasher::default();
            h.write(&bytes);
            assert_eq!(h.finish(), words.finish(), "{bytes:?}");
        }
    }
}
