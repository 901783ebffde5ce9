//! Random key-value histories from a simulated store: every op takes effect
//! at one instant between its invoke and completion, so the generated
//! history is linearizable. Used by tests and the bench.

use crate::history::{Event, EventType, Process};
use crate::value::Val;
use std::collections::HashMap;

/// A small fast PRNG (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    /// True with probability p.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub ops: usize,
    pub processes: usize,
    pub keys: usize,
    /// Fraction of ops that end as info (half of those never take effect).
    pub info_rate: f64,
    /// Whether cas ops whose expectation does not hold end as fail (else
    /// they are not generated).
    pub with_fail: bool,
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            ops: 100,
            processes: 8,
            keys: 4,
            info_rate: 0.05,
            with_fail: true,
            seed: 1,
        }
    }
}

struct Pending {
    f: &'static str,
    key: usize,
    input: Val,
    /// The result once applied.
    output: Option<(EventType, Val)>,
    /// Decided at invoke: ends as info.
    info: bool,
}

/// Generates a linearizable key-value history.
pub fn kv_history(opts: &GenOptions) -> Vec<Event> {
    let mut events = Vec::with_capacity(opts.ops * 2);
    kv_history_each(opts, |e| events.push(e));
    events
}

/// Writes a generated linearizable key-value history as JSON Lines, event by
/// event (it need not fit in memory).
pub fn write_kv_history(opts: &GenOptions, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut line = String::new();
    let mut result = Ok(());
    kv_history_each(opts, |e| {
        if result.is_ok() {
            line.clear();
            write_event(&e, &mut line);
            result = out.write_all(line.as_bytes());
        }
    });
    result
}

/// Generates a linearizable key-value history, handing each event to `emit`.
pub fn kv_history_each(opts: &GenOptions, mut emit: impl FnMut(Event)) {
    let mut rng = Rng::new(opts.seed);
    let mut store: HashMap<usize, Val> = HashMap::new();
    let mut n_events = 0usize;
    let mut ids: Vec<i64> = (0..opts.processes as i64).collect();
    let mut next_id = opts.processes as i64;
    let mut pending: Vec<Option<Pending>> = (0..opts.processes).map(|_| None).collect();
    let mut invoked = 0usize;
    let mut busy = 0usize;
    let mut time: i64 = 0;
    let mut value_no = 0u64;
    while invoked < opts.ops || busy > 0 {
        let p = rng.below(opts.processes as u64) as usize;
        time += 1 + rng.below(1000) as i64;
        let mut push = |kind: EventType, f: &str, key: usize, value: Val, process: i64| {
            n_events += 1;
            emit(Event {
                line: n_events,
                index: Some(n_events as u64 - 1),
                time: Some(time),
                process: Process::Client(process),
                kind,
                f: f.to_string(),
                key: Some(Val::Str(format!("k{key}"))),
                value,
            });
        };
        match &mut pending[p] {
            slot @ None => {
                if invoked >= opts.ops {
                    continue;
                }
                let key = rng.below(opts.keys as u64) as usize;
                let roll = rng.below(100);
                let (f, input) = if roll < 45 {
                    ("get", Val::Nil)
                } else if roll < 85 || !opts.with_fail {
                    value_no += 1;
                    ("set", Val::Str(format!("v{value_no}")))
                } else {
                    value_no += 1;
                    let cur = store.get(&key).cloned().unwrap_or(Val::Nil);
                    let expected = if rng.chance(0.6) {
                        cur
                    } else {
                        Val::Str(format!("v{}", rng.below(value_no + 1)))
                    };
                    (
                        "cas",
                        Val::List(vec![expected, Val::Str(format!("v{value_no}"))]),
                    )
                };
                push(EventType::Invoke, f, key, input.clone(), ids[p]);
                *slot = Some(Pending {
                    f,
                    key,
                    input,
                    output: None,
                    info: rng.chance(opts.info_rate),
                });
                invoked += 1;
                busy += 1;
            }
            Some(op) if op.output.is_none() && !(op.info && rng.chance(0.3)) => {
                // The linearization point.
                let cur = store.get(&op.key).cloned().unwrap_or(Val::Nil);
                op.output = Some(match op.f {
                    "get" => (EventType::Ok, cur),
                    "set" => {
                        store.insert(op.key, op.input.clone());
                        (EventType::Ok, op.input.clone())
                    }
                    _ => {
                        let list = op.input.as_list().expect("cas input is a pair");
                        if list[0] == cur {
                            store.insert(op.key, list[1].clone());
                            (EventType::Ok, op.input.clone())
                        } else {
                            (EventType::Fail, op.input.clone())
                        }
                    }
                });
            }
            slot @ Some(_) => {
                let op = slot.take().expect("matched Some");
                busy -= 1;
                if op.info {
                    push(EventType::Info, op.f, op.key, op.input, ids[p]);
                    ids[p] = next_id;
                    next_id += 1;
                } else {
                    let (kind, out) = op.output.expect("applied before completing");
                    push(kind, op.f, op.key, out, ids[p]);
                }
            }
        }
    }
}

/// Makes a random set write the value of another random set of its key (on
/// its invoke and its completion), so that a value has several writers and
/// identical pending writes occur. Does nothing if the two picks differ in
/// key or coincide.
pub fn repeat_a_written_value(events: &mut [Event], rng: &mut Rng) {
    let sets: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == EventType::Invoke && events[i].f == "set")
        .collect();
    if sets.len() < 2 {
        return;
    }
    let a = sets[rng.below(sets.len() as u64) as usize];
    let b = sets[rng.below(sets.len() as u64) as usize];
    if a == b || events[a].key != events[b].key {
        return;
    }
    let (value, process) = (events[a].value.clone(), events[b].process.clone());
    for e in events[b..]
        .iter_mut()
        .filter(|e| e.process == process)
        .take(2)
    {
        if e.f == "set" {
            e.value = value.clone();
        }
    }
}

/// Writes events as our JSON Lines.
pub fn to_jsonl(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 90);
    for e in events {
        write_event(e, &mut out);
    }
    out
}

/// Appends one event as a line of our JSON Lines, fields in the order of
/// HISTORY.md.
pub fn write_event(e: &Event, out: &mut String) {
    use std::fmt::Write;
    out.push('{');
    if let Some(i) = e.index {
        let _ = write!(out, "\"index\":{i},");
    }
    if let Some(t) = e.time {
        let _ = write!(out, "\"time\":{t},");
    }
    match &e.process {
        Process::Client(p) => {
            let _ = write!(out, "\"process\":{p},");
        }
        Process::Nemesis => out.push_str("\"process\":\"nemesis\","),
    }
    let _ = write!(
        out,
        "\"type\":\"{}\",\"f\":{}",
        e.kind.as_str(),
        serde_json::Value::from(e.f.as_str())
    );
    if let Some(k) = &e.key {
        let _ = write!(out, ",\"key\":{}", k.to_json());
    }
    let _ = writeln!(out, ",\"value\":{}}}", e.value.to_json());
}
