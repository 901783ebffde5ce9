use super::*;
use crate::generate::{GenOptions, Rng, kv_history, to_jsonl};
use crate::history::Event;

/// A random JSON value as text, sometimes with escapes, floats, big
/// numbers, nesting or spaces that only the slow path takes.
fn random_value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 2 { 7 } else { 9 }) {
        0 => "null".into(),
        1 => ["true", "false"][rng.below(2) as usize].into(),
        2 => format!("{}", rng.next_u64() as i64 >> rng.below(64)),
        3 => [
            "1.5",
            "-0",
            "1e3",
            "18446744073709551615",
            "-9223372036854775809",
            "0.1",
        ][rng.below(6) as usize]
            .into(),
        4 => format!("\"v{}\"", rng.below(1000)),
        5 => [
            "\"a\\\"b\"",
            "\"\\u00e9t\\u00e9\"",
            "\"tab\\there\"",
            "\"été\"",
            "\"\\/\"",
        ][rng.below(5) as usize]
            .into(),
        6 => "\"\"".into(),
        7 => {
            let n = rng.below(3);
            let items: Vec<String> = (0..n).map(|_| random_value(rng, depth + 1)).collect();
            format!("[{}]", items.join(if rng.chance(0.5) { "," } else { ", " }))
        }
        _ => {
            let n = rng.below(3);
            let items: Vec<String> = (0..n)
                .map(|i| format!("\"f{i}\":{}", random_value(rng, depth + 1)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

fn random_line(rng: &mut Rng) -> String {
    let mut fields = vec![
        format!(
            "\"process\":{}",
            if rng.chance(0.1) {
                "\"nemesis\"".to_string()
            } else {
                rng.below(50).to_string()
            }
        ),
        format!(
            "\"type\":\"{}\"",
            ["invoke", "ok", "fail", "info", "done"][rng.below(5) as usize]
        ),
        format!(
            "\"f\":\"{}\"",
            ["set", "get", "cas", "s\\u0065t"][rng.below(4) as usize]
        ),
        format!("\"value\":{}", random_value(rng, 0)),
    ];
    if rng.chance(0.8) {
        fields.insert(0, format!("\"time\":{}", rng.below(1 << 40)));
    }
    if rng.chance(0.8) {
        fields.insert(0, format!("\"index\":{}", rng.below(1 << 20)));
    }
    if rng.chance(0.9) {
        let key = ["\"k1\"", "\"k2\"", "7", "null", "\"k\\u0031\"", "[1]"][rng.below(6) as usize];
        fields.insert(fields.len() - 1, format!("\"key\":{key}"));
    }
    if rng.chance(0.05) {
        fields.push("\"extra\":[1,{\"a\":null}]".into());
    }
    if rng.chance(0.2) {
        let i = rng.below(fields.len() as u64) as usize;
        let j = rng.below(fields.len() as u64) as usize;
        fields.swap(i, j);
    }
    if rng.chance(0.05) {
        fields.remove(rng.below(fields.len() as u64) as usize);
    }
    let sep = if rng.chance(0.1) { ", " } else { "," };
    format!("{{{}}}", fields.join(sep))
}

/// Each fast path, where it takes a line, reads it as serde_json does;
/// where serde_json refuses a line, neither takes it.
#[test]
fn fast_paths_read_lines_as_serde_does() {
    let mut rng = Rng::new(5);
    let (mut template, mut general, mut slow_only) = (0, 0, 0);
    for case in 0..20_000 {
        let line = random_line(&mut rng);
        let slow = slow_line(&line, 2);
        for (which, fast) in [
            (
                "template",
                fast::template as fn(&[u8], u32, &mut Batch) -> Option<()>,
            ),
            ("general", fast::line),
        ] {
            let mut batch = Batch::default();
            if fast(line.as_bytes(), 0, &mut batch).is_none() {
                continue;
            }
            match which {
                "template" => template += 1,
                _ => general += 1,
            }
            let slow = match &slow {
                Ok(Some(e)) => e,
                other => panic!(
                    "case {case}: {which} took {line}, serde: {:?}",
                    other.as_ref().err()
                ),
            };
            let e = batch.events[0];
            assert_eq!(e.time, slow.time, "case {case} {which}: {line}");
            assert_eq!(
                e.process,
                slow.process.client(),
                "case {case} {which}: {line}"
            );
            assert_eq!(e.kind, slow.kind, "case {case} {which}: {line}");
            assert_eq!(
                batch.fns.get(e.f as usize),
                slow.f.as_bytes(),
                "case {case} {which}: {line}"
            );
            assert_eq!(
                e.key.map(|k| batch.keys.get(k as usize).to_vec()),
                slow.key.as_ref().map(encoding::to_bytes),
                "case {case} {which}: {line}"
            );
            assert_eq!(
                batch.range(e.value),
                encoding::to_bytes(&slow.value).as_slice(),
                "case {case} {which}: {line}"
            );
        }
        let mut batch = Batch::default();
        if fast::line(line.as_bytes(), 0, &mut batch).is_none() && matches!(slow, Ok(Some(_))) {
            slow_only += 1;
        }
    }
    assert!(
        template > 2000 && general > 5000 && slow_only > 2000,
        "template {template}, general {general}, slow only {slow_only}"
    );
}

/// One op as comparable values.
fn ops(h: &History) -> Vec<String> {
    h.ops
        .iter()
        .map(|o| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {} {} {} {} {} {}",
                o.process,
                h.f(o),
                h.key(o),
                h.input(o),
                h.output(o),
                o.status,
                o.invoke_time,
                o.complete_time,
                o.invoke_pos,
                o.complete_pos,
                o.invoke_line,
                o.complete_line
            )
        })
        .collect()
}

/// Any block size and number of parser threads gives the same history,
/// and an error names the same line.
#[test]
fn blocks_and_threads_do_not_change_the_history() {
    let events = kv_history(&GenOptions {
        ops: 3000,
        processes: 8,
        keys: 5,
        ..GenOptions::default()
    });
    let mut text = String::from("{\"format\":\"raftkv-history\",\"version\":1}\n");
    for (i, line) in to_jsonl(&events).lines().enumerate() {
        // Lines in other shapes, and blank lines, here and there.
        if i % 97 == 0 {
            text.push_str(&line.replace(",", ", "));
        } else if i % 89 == 0 {
            text.push_str(&line.replace("\"v", "\"\\u0076"));
        } else {
            text.push_str(line);
        }
        text.push_str(if i % 101 == 0 { "\n\n" } else { "\n" });
    }
    let one = parse(&text).unwrap();
    assert_eq!(one.events, events.len());
    let want = ops(&one);
    for (block, threads) in [(1, 1), (100, 3), (4096, 2), (30_000, 4)] {
        let h = read_in_blocks(text.as_bytes(), Vec::new(), threads, block).unwrap();
        assert_eq!(ops(&h), want, "block {block}, threads {threads}");
        assert_eq!((h.events, h.lines), (one.events, one.lines));
    }
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.len() - 17;
    let mut broken: Vec<&str> = lines.clone();
    broken[at] = "{\"process\":1,\"type\":\"invoke\"";
    let broken = broken.join("\n");
    for block in [100, 4096, 1 << 20] {
        match read_in_blocks(broken.as_bytes(), Vec::new(), 2, block) {
            Err(CheckError::Parse { line, .. }) => assert_eq!(line, at + 1, "block {block}"),
            other => panic!("{other:?}"),
        }
    }
}

/// A history as comparable parts (ops, nemesis events, events, lines,
/// timed), or the first error (line, what was expected).
type Built = Result<(Vec<String>, Vec<String>, usize, usize, bool), (usize, String)>;

/// A history as the reader must build it, or the first error: each line
/// read by serde_json alone, events paired one by one in file order. The
/// reader's blocks, fast paths, segments and joins must change nothing.
fn reference(text: &str) -> Built {
    use crate::history::{NO_POS, NO_TIME, Status};
    struct RefOp {
        process: i64,
        f: String,
        key: Option<Val>,
        input: Val,
        output: Val,
        status: Status,
        times: (i64, i64),
        pos: (u32, u32),
        lines: (usize, usize),
    }
    let mut ops: Vec<RefOp> = Vec::new();
    let mut nemesis = Vec::new();
    let mut pending: std::collections::HashMap<i64, usize> = Default::default();
    let (mut events, mut any_client, mut all_timed) = (0u32, false, true);
    let mut time_error: Option<(usize, String)> = None;
    let pieces: Vec<&str> = text.split('\n').collect();
    for (i, raw) in pieces.iter().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let e = match slow_line(trimmed, line) {
            Ok(None) => continue,
            Ok(Some(e)) => e,
            Err(CheckError::Parse { expected, .. }) => return Err((line, expected)),
            Err(other) => panic!("{other}"),
        };
        let pos = events;
        events += 1;
        let Process::Client(p) = e.process else {
            nemesis.push((e, line, pos));
            continue;
        };
        any_client = true;
        all_timed &= e.time.is_some();
        if e.kind == EventType::Invoke {
            if let Some(&prev) = pending.get(&p) {
                return Err((
                    line,
                    format!(
                        "a completion (ok/fail/info) for process {p}'s operation invoked on line {} before its next invoke",
                        ops[prev].lines.0
                    ),
                ));
            }
            pending.insert(p, ops.len());
            ops.push(RefOp {
                process: p,
                f: e.f,
                key: e.key,
                input: e.value,
                output: Val::Nil,
                status: Status::Info,
                times: (e.time.unwrap_or(NO_TIME), NO_TIME),
                pos: (pos, NO_POS),
                lines: (line, 0),
            });
            continue;
        }
        let Some(id) = pending.remove(&p) else {
            return Err((
                line,
                format!(
                    "an invoke by process {p} before this {} completion",
                    e.kind.as_str()
                ),
            ));
        };
        let op = &mut ops[id];
        if op.f != e.f {
            return Err((
                line,
                format!(
                    "f {:?} (as invoked on line {}), found {:?}",
                    op.f, op.lines.0, e.f
                ),
            ));
        }
        match (&op.key, e.key) {
            (_, None) => {}
            (None, k) => op.key = k,
            (Some(a), Some(b)) if *a != b => {
                return Err((
                    line,
                    format!(
                        "key {} (as invoked on line {}), found {}",
                        a.short(),
                        op.lines.0,
                        b.short()
                    ),
                ));
            }
            _ => {}
        }
        if let Some(t1) = e.time
            && op.times.0 != NO_TIME
            && t1 < op.times.0
            && time_error.is_none()
        {
            time_error = Some((
                line,
                format!(
                    "a time no earlier than the invoke's ({} on line {}), found {t1}",
                    op.times.0, op.lines.0
                ),
            ));
        }
        op.output = e.value;
        op.times.1 = e.time.unwrap_or(NO_TIME);
        op.lines.1 = line;
        op.status = match e.kind {
            EventType::Ok => Status::Ok,
            EventType::Fail => Status::Fail,
            _ => Status::Info,
        };
        op.pos.1 = if op.status == Status::Info {
            NO_POS
        } else {
            pos
        };
    }
    let timed = any_client && all_timed;
    if timed && let Some(e) = time_error {
        return Err(e);
    }
    let ops = ops
        .iter()
        .map(|o| {
            format!(
                "{} {} {:?} {:?} {:?} {:?} {} {} {} {} {} {}",
                o.process,
                o.f,
                o.key,
                o.input,
                o.output,
                o.status,
                o.times.0,
                o.times.1,
                o.pos.0,
                o.pos.1,
                o.lines.0,
                o.lines.1
            )
        })
        .collect();
    let nemesis = nemesis
        .into_iter()
        .map(|(e, line, pos)| {
            // Ranked by time in timed histories, else by position.
            let rank = if timed {
                e.time.unwrap_or(0)
            } else {
                i64::from(pos)
            };
            format!(
                "{:?} {:?} {} {:?} {line} {rank}",
                e.time, e.kind, e.f, e.value
            )
        })
        .collect();
    let lines = pieces.len() - usize::from(text.is_empty() || text.ends_with('\n'));
    Ok((ops, nemesis, events as usize, lines, timed))
}

/// What the reader built, as [`reference`] gives it.
fn as_reference(h: Result<History, CheckError>) -> Built {
    match h {
        Ok(h) => {
            let nemesis = h
                .nemesis
                .iter()
                .map(|n| {
                    format!(
                        "{:?} {:?} {} {:?} {} {}",
                        n.time, n.kind, n.f, n.value, n.line, n.rank
                    )
                })
                .collect();
            Ok((ops(&h), nemesis, h.events, h.lines, h.timed))
        }
        Err(CheckError::Parse { line, expected, .. }) => Err((line, expected)),
        Err(other) => panic!("{other}"),
    }
}

/// One generated event as a line in a random shape: the canonical one, with
/// spaces, fields reordered, strings escaped, or padded with whitespace.
fn shaped_line(e: &Event, rng: &mut Rng) -> String {
    let mut canonical = String::new();
    crate::generate::write_event(e, &mut canonical);
    let canonical = canonical.trim_end().to_string();
    let mut line = match rng.below(8) {
        0 => canonical.replace(",\"", ", \"").replace("\":", "\" : "),
        1 => {
            // Fields in another order (none contains a top-level comma
            // but the values, which are last).
            let inner = &canonical[1..canonical.len() - 1];
            let (head, value) = inner.split_at(inner.find(",\"value\":").unwrap_or(inner.len()));
            let mut fields: Vec<&str> = head.split(",\"").collect();
            let first = fields.remove(0).to_string();
            let mut fields: Vec<String> = fields.iter().map(|f| format!("\"{f}")).collect();
            fields.push(first);
            fields.reverse();
            let value = value.trim_start_matches(',');
            if !value.is_empty() {
                fields.insert(
                    rng.below(fields.len() as u64 + 1) as usize,
                    value.to_string(),
                );
            }
            format!("{{{}}}", fields.join(","))
        }
        2 => canonical
            .replace("\"v", "\"\\u0076")
            .replace("\"k", "\"\\u006b"),
        3 => canonical.replacen("{", "{\"extra\":[1,{\"a\":null}],", 1),
        4 => canonical.replace("\"index\":", "\"index\": "),
        _ => canonical,
    };
    if rng.chance(0.05) {
        line = format!(" \t{line}\t ");
    }
    if rng.chance(0.05) {
        line.push('\r');
    }
    line
}

/// Renames the history's values and keys so that one history is written
/// with other texts: non-ASCII (raw or escaped), long, or numbers beyond
/// i64.
fn rename(v: &Val, style: u64) -> Val {
    match v {
        Val::Str(s) => match style {
            1 => Val::Str(s.replace('v', "值").replace('k', "ключ")),
            2 => Val::Str(format!("{s}{}", "x".repeat(150))),
            3 => match s.strip_prefix('v') {
                Some(n) => Val::Num(format!("1{n:0>25}")),
                None => v.clone(),
            },
            4 => Val::Str(s.replace('v', "a\"b\\c\n")),
            _ => v.clone(),
        },
        Val::List(items) => Val::List(items.iter().map(|i| rename(i, style)).collect()),
        other => other.clone(),
    }
}

/// A history text with a defect (or none): a line dropped, repeated,
/// broken, or changed so that it does not pair; a header elsewhere than
/// first; a time that goes back.
fn damage(lines: &mut Vec<String>, rng: &mut Rng) {
    if lines.len() < 3 {
        return;
    }
    let at = rng.below(lines.len() as u64) as usize;
    match rng.below(10) {
        0 => {
            lines.remove(at);
        }
        1 => {
            let l = lines[at].clone();
            lines.insert(at + 1, l);
        }
        2 => {
            let l = &mut lines[at];
            let half = (0..=l.len() / 2).rev().find(|&i| l.is_char_boundary(i));
            l.truncate(half.unwrap_or(0));
        }
        3 => {
            lines[at] = lines[at]
                .replacen("\"set\"", "\"get\"", 1)
                .replacen("\"cas\"", "\"set\"", 1)
        }
        4 => lines[at] = lines[at].replace("\"k", "\"other-k"),
        5 => lines.insert(at, "{\"format\":\"raftkv-history\",\"version\":1}".into()),
        6 => lines[at] = lines[at].replace("\"type\":\"ok\"", "\"type\":\"done\""),
        7 => lines[at] = lines[at].replacen("\"process\":", "\"process\":1.5,\"p\":", 1),
        // A time that goes back, on one line or on every line from here on.
        8 | 9 => {
            let to = if rng.chance(0.5) { lines.len() } else { at + 1 };
            for l in &mut lines[at..to] {
                if let Some(i) = l.find("\"time\":") {
                    let end = l[i + 7..].find(',').map_or(l.len(), |j| i + 7 + j);
                    l.replace_range(i + 7..end, "1");
                }
            }
        }
        _ => unreachable!(),
    }
}

/// The reader (fast paths, blocks of any size on any number of threads,
/// segments paired apart and joined) builds the history that reading each
/// line with serde_json and pairing the events one by one builds, and
/// stops at the same first error with the same message.
#[test]
fn reader_agrees_with_line_by_line_reference() {
    let mut rng = Rng::new(11);
    let (mut good, mut bad, mut multi_block) = (0, 0, 0);
    for case in 0..1500u64 {
        let mut events = kv_history(&GenOptions {
            ops: 5 + rng.below(150) as usize,
            processes: 1 + rng.below(6) as usize,
            keys: 1 + rng.below(3) as usize,
            info_rate: 0.1,
            with_fail: true,
            seed: case,
        });
        let style = rng.below(6);
        let untimed = rng.chance(0.15);
        for e in &mut events {
            e.value = rename(&e.value, style);
            e.key = e.key.as_ref().map(|k| rename(k, style % 2));
            if untimed || rng.chance(0.01) {
                e.time = None;
            }
            if rng.chance(0.3) {
                e.index = None;
            }
        }
        // Nemesis events here and there.
        for _ in 0..rng.below(4) {
            let at = rng.below(events.len() as u64 + 1) as usize;
            let time = events.get(at).and_then(|e| e.time);
            events.insert(
                at,
                Event {
                    line: 0,
                    index: None,
                    time,
                    process: Process::Nemesis,
                    kind: EventType::Info,
                    f: ["start", "stop", ""][rng.below(3) as usize].into(),
                    key: None,
                    value: Val::Str("n1".into()),
                },
            );
        }
        let mut lines: Vec<String> = events.iter().map(|e| shaped_line(e, &mut rng)).collect();
        if rng.chance(0.3) {
            lines.insert(0, "{\"format\":\"raftkv-history\",\"version\":1}".into());
        }
        for _ in 0..rng.below(4) {
            let at = rng.below(lines.len() as u64 + 1) as usize;
            lines.insert(at, ["", "  ", "\t"][rng.below(3) as usize].into());
        }
        // Most damaged histories get one defect; some get two or three, so
        // that which error comes first matters.
        if rng.chance(0.5) {
            for _ in 0..1 + rng.below(3) * u64::from(rng.chance(0.5)) {
                damage(&mut lines, &mut rng);
            }
        }
        let mut text = lines.join("\n");
        if rng.chance(0.8) {
            text.push('\n');
        }
        let want = reference(&text);
        match &want {
            Ok(_) => good += 1,
            Err(_) => bad += 1,
        }
        assert_eq!(
            as_reference(parse(&text)),
            want,
            "case {case}, whole\n{text}"
        );
        for _ in 0..3 {
            let block = 1 + rng.below(text.len() as u64 / 2 + 1) as usize;
            let threads = 1 + rng.below(3) as usize;
            multi_block += usize::from(block < text.len());
            let got = read_in_blocks(text.as_bytes(), Vec::new(), threads, block);
            assert_eq!(
                as_reference(got),
                want,
                "case {case}, block {block}, threads {threads}\n{text}"
            );
        }
    }
    assert!(
        good > 500 && bad > 500 && multi_block > 4000,
        "good {good}, bad {bad}, split {multi_block}"
    );
}

/// Integers at the edges of i64 and of the unchecked 19-digit loop, in
/// every field that holds one: a fast path takes them only as serde_json
/// reads them.
#[test]
fn fast_paths_read_edge_integers_as_serde_does() {
    let numbers = [
        "0",
        "-1",
        "7",
        "999999999999999999",
        "-999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
        "-0",
        "00",
        "01",
        "-01",
        "1e5",
        "1.0",
        "-",
    ];
    let mut taken = 0;
    for n in numbers {
        for line in [
            format!(
                "{{\"time\":{n},\"process\":1,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k\",\"value\":1}}"
            ),
            format!(
                "{{\"process\":{n},\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k\",\"value\":1}}"
            ),
            format!(
                "{{\"process\":1,\"type\":\"invoke\",\"f\":\"set\",\"key\":{n},\"value\":[{n}]}}"
            ),
            format!(
                "{{\"index\":{n},\"process\":1,\"type\":\"invoke\",\"f\":\"set\",\"key\":\"k\",\"value\":{n}}}"
            ),
        ] {
            let slow = slow_line(&line, 2);
            for fast in [
                fast::template as fn(&[u8], u32, &mut Batch) -> Option<()>,
                fast::line,
            ] {
                let mut batch = Batch::default();
                if fast(line.as_bytes(), 0, &mut batch).is_none() {
                    continue;
                }
                taken += 1;
                let Ok(Some(slow)) = &slow else {
                    panic!("a fast path took {line}; serde_json: {:?}", slow.err());
                };
                let e = batch.events[0];
                assert_eq!(
                    (e.time, e.process),
                    (slow.time, slow.process.client()),
                    "{line}"
                );
                assert_eq!(
                    batch.range(e.value),
                    encoding::to_bytes(&slow.value),
                    "{line}"
                );
                assert_eq!(
                    e.key.map(|k| batch.keys.get(k as usize).to_vec()),
                    slow.key.as_ref().map(encoding::to_bytes),
                    "{line}"
                );
            }
        }
    }
    assert!(taken > 40, "{taken}");
}
