//! Renders timeline pages in headless Chromium and checks what they show:
//! the screenshot's pixels, and the state the page's script writes into the
//! DOM (`#timeline-state`): which key and window are in view, whether the
//! op that cannot be linearized is there and how wide, the time axis, the
//! lanes. Chromium is required (Debian package `chromium`).
//! `REPORT_KEEP_SCREENSHOTS=DIR` keeps the screenshots.

#[path = "browser/mod.rs"]
mod browser;

use browser::{dom, is_highlight, num, screenshot, text_of, timeline_state, url};
use raftkv_checker::generate::{GenOptions, kv_history, to_jsonl};
use raftkv_checker::{
    CheckOptions, Event, EventType, Process, Val, Verdict, check_text, render_html,
};
use std::path::{Path, PathBuf};

fn small_history(stale: bool) -> String {
    let mut s = String::new();
    let mut t = 0;
    let mut ev = |p: &str, ty: &str, f: &str, k: &str, v: &str| {
        t += 1000;
        s.push_str(&format!(
            "{{\"time\":{t},\"process\":{p},\"type\":\"{ty}\",\"f\":\"{f}\",\"key\":\"{k}\",\"value\":{v}}}\n"
        ));
    };
    for k in ["a", "b", "c"] {
        ev("0", "invoke", "set", k, "1");
        ev("1", "invoke", "get", k, "null");
        ev("0", "ok", "set", k, "1");
        ev("1", "ok", "get", k, "1");
    }
    ev("\"nemesis\"", "info", "kill", "", "\"n1\"");
    ev("2", "invoke", "set", "b", "2");
    ev("2", "info", "set", "b", "2");
    ev("3", "invoke", "set", "b", "3");
    ev("3", "ok", "set", "b", "3");
    ev("4", "invoke", "cas", "b", "[3,4]");
    ev("4", "fail", "cas", "b", "[3,4]");
    ev("\"nemesis\"", "info", "restart", "", "\"n1\"");
    ev("5", "invoke", "get", "b", "null");
    ev("5", "ok", "get", "b", if stale { "1" } else { "3" });
    s
}

/// Checks `text`, writes its page into `dir` and returns the page's path.
fn page(dir: &Path, text: &str, expected: Verdict) -> PathBuf {
    let out = check_text(text, &CheckOptions::default()).unwrap();
    assert_eq!(out.verdict, expected, "{}", out.summary());
    let page = render_html(&out);
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no network references"
    );
    let path = dir.join("timeline.html");
    std::fs::write(&path, &page).unwrap();
    path
}

fn count(px: &[[u8; 3]], f: impl Fn(&[u8; 3]) -> bool) -> usize {
    px.iter().filter(|p| f(p)).count()
}

fn green(p: &[u8; 3]) -> bool {
    p[1] > 150 && p[0] < 140 && p[2] < 140
}

#[test]
fn small_page_marks_the_offending_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for stale in [true, false] {
        let expected = if stale {
            Verdict::NotLinearizable
        } else {
            Verdict::Linearizable
        };
        let html = page(dir.path(), &small_history(stale), expected);
        let (w, h, px) = screenshot(&url(&html, ""), &format!("small-{stale}"));
        assert!(w >= 1000 && h >= 600, "screenshot {w}x{h}");
        let non_white = count(&px, |p| p.iter().any(|&c| c < 235));
        assert!(non_white > px.len() / 50, "blank: {non_white} pixels");
        counts.push((count(&px, is_highlight), count(&px, green)));
        let state = timeline_state(&dom(&url(&html, "")));
        assert_eq!(state["key"], "b", "{state:?}");
        assert_eq!(state["offending-in-view"], stale.to_string(), "{state:?}");
    }
    let [(hl_bad, green_bad), (hl_good, green_good)] = counts[..] else {
        unreachable!()
    };
    assert!(
        green_bad > 500 && green_good > 500,
        "ok bars: {green_bad}, {green_good}"
    );
    // The legend has a small swatch of the highlight colour; the offending
    // op's outline adds far more.
    assert!(
        hl_good < 400,
        "highlight pixels without a failure: {hl_good}"
    );
    assert!(
        hl_bad > hl_good + 400,
        "offending op not marked: {hl_bad} vs {hl_good}"
    );
}

/// A generated history of `ops` ops with nemesis events every `fault_every`
/// events (a kill, then a restart half-way to the next), and, if `bad_at`,
/// an ok read that far through the history returning a value nobody wrote.
fn big_history(ops: usize, keys: usize, fault_every: usize, bad_at: Option<f64>) -> String {
    let mut events = kv_history(&GenOptions {
        ops,
        processes: 12,
        keys,
        info_rate: 0.02,
        with_fail: true,
        seed: 7,
    });
    if let Some(at) = bad_at {
        let from = (events.len() as f64 * at) as usize;
        let i = (from..events.len())
            .find(|&i| {
                events[i].kind == EventType::Ok && events[i].f == "get" && !events[i].value.is_nil()
            })
            .expect("an ok read");
        events[i].value = Val::Str("never-written".into());
    }
    let mut out: Vec<Event> = Vec::with_capacity(events.len() + 64);
    for (i, e) in events.into_iter().enumerate() {
        if fault_every > 0 && i > 0 && i % fault_every == 0 {
            let f = if (i / fault_every) % 2 == 1 {
                "kill"
            } else {
                "restart"
            };
            out.push(Event {
                line: 0,
                index: None,
                time: e.time,
                process: Process::Nemesis,
                kind: EventType::Info,
                f: f.into(),
                key: None,
                value: Val::Str("n1".into()),
            });
        }
        out.push(e);
    }
    to_jsonl(&out)
}

#[test]
fn a_large_failing_history_opens_on_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    let text = big_history(60_000, 6, 20_000, Some(0.6));
    let html = page(dir.path(), &text, Verdict::NotLinearizable);
    let outcome = check_text(&text, &CheckOptions::default()).unwrap();
    let failure = outcome.failure.as_ref().unwrap();
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 1_000_000, "page of {size} bytes for 60k ops");

    let state = timeline_state(&dom(&url(&html, "")));
    assert_eq!(state["key"], failure.key, "{state:?}");
    assert_eq!(state["view"], "failure", "{state:?}");
    assert_eq!(
        state["offending"],
        failure.op.unwrap().to_string(),
        "{state:?}"
    );
    assert_eq!(state["offending-in-view"], "true", "{state:?}");
    // Drawn large enough to see, among its neighbours, not the whole key.
    assert!(num(&state, "offending-px") >= 20.0, "{state:?}");
    assert!(num(&state, "ops-in-view") < 300.0, "{state:?}");
    assert_eq!(state["prefix-end-in-view"], "true", "{state:?}");
    assert!(num(&state, "concurrent-in-view") >= 1.0, "{state:?}");
    // A time axis with labelled ticks, and a label per lane.
    assert!(num(&state, "ticks") >= 4.0, "{state:?}");
    assert!(state["tick-labels"].contains(" s"), "{state:?}");
    let lanes = num(&state, "lanes") as usize;
    assert!(lanes >= 12, "{state:?}");
    assert_eq!(state["lane-labels"].split('|').count(), lanes, "{state:?}");
    assert!(
        state["lane-labels"].split('|').all(|l| l.starts_with('p')),
        "{state:?}"
    );

    let (_, _, px) = screenshot(&url(&html, ""), "large-failing");
    assert!(count(&px, is_highlight) > 400, "offending op outlined");
    assert!(count(&px, green) > 3000, "ok bars drawn");

    // Zoom out to the whole key, and back in through a link.
    let whole = timeline_state(&dom(&url(&html, "whole")));
    assert_eq!(whole["view"], "whole", "{whole:?}");
    assert!(num(&whole, "from") <= num(&whole, "key-from"), "{whole:?}");
    assert!(num(&whole, "to") >= num(&whole, "key-to"), "{whole:?}");
    assert_eq!(whole["ops-in-view"], whole["ops"], "{whole:?}");
    let (from, to) = (num(&state, "from"), num(&state, "to"));
    let link = format!("key={}&t={from},{to}", failure.key);
    let back = timeline_state(&dom(&url(&html, &link)));
    assert_eq!(back["offending-in-view"], "true", "{back:?}");
    assert!(
        (num(&back, "from") - from).abs() < (to - from) * 0.01,
        "{back:?}"
    );
}

#[test]
fn hovering_an_op_shows_the_state_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = big_history(3_000, 3, 0, Some(0.5));
    let html = page(dir.path(), &text, Verdict::NotLinearizable);
    let outcome = check_text(&text, &CheckOptions::default()).unwrap();
    let f = outcome.failure.as_ref().unwrap();
    // The last op of the prefix: its state is the state after the prefix.
    let last = *f.prefix.last().unwrap();
    let d = dom(&url(&html, &format!("key={}&op={last}", f.key)));
    let tip = text_of(&d, "tip");
    let state = f.state.as_ref().unwrap();
    assert!(
        tip.contains(&format!("op {last} ")) && tip.contains(&format!("state after: {state}")),
        "tip: {tip}"
    );
    // The failing op's tip says why.
    let d = dom(&url(&html, &format!("key={}&op={}", f.key, f.op.unwrap())));
    assert!(text_of(&d, "tip").contains("CANNOT BE LINEARIZED"));
}

#[test]
fn a_passing_history_opens_on_its_busiest_fault() {
    let dir = tempfile::tempdir().unwrap();
    let text = big_history(20_000, 4, 8_000, None);
    let html = page(dir.path(), &text, Verdict::Linearizable);
    let state = timeline_state(&dom(&url(&html, "")));
    assert_eq!(state["view"], "fault", "{state:?}");
    assert!(num(&state, "ops-in-view") < 300.0, "{state:?}");
    let outcome = check_text(&text, &CheckOptions::default()).unwrap();
    let kills: Vec<f64> = outcome
        .history
        .nemesis
        .iter()
        .filter(|n| n.f == "kill")
        .map(|n| n.time.unwrap() as f64 / 1e9)
        .collect();
    let (from, to) = (num(&state, "from"), num(&state, "to"));
    assert!(
        kills.iter().any(|&k| from < k && k < to),
        "a kill in view: {kills:?} {state:?}"
    );
}

/// The headline run (5 nodes, 60 s, kills) records about 340,000 ops on 5
/// keys; its timeline must stay small enough to open at once and attach to
/// a CI log.
#[test]
fn a_page_of_340k_ops_stays_under_5_mb() {
    let dir = tempfile::tempdir().unwrap();
    let text = big_history(340_000, 5, 30_000, Some(0.9));
    let html = page(dir.path(), &text, Verdict::NotLinearizable);
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 5_000_000, "page of {size} bytes");
    let state = timeline_state(&dom(&url(&html, "whole")));
    let total: f64 = num(&state, "ops");
    assert!(
        total > 340_000.0 / 5.0 * 0.8,
        "the failing key is drawn whole: {state:?}"
    );
}
