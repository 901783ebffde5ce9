//! `report.html` of the stored example runs, rendered in headless Chromium:
//! the page opens with the timeline on the failure (the report mirrors the
//! timeline's state into its own `#timeline-state`), zooms through its URL
//! fragment, and has latency and rate plots per operation.
//! `REPORT_KEEP_SCREENSHOTS=DIR` keeps the screenshots.

#[path = "../../checker/tests/browser/mod.rs"]
mod browser;

use browser::{dom, is_highlight, num, screenshot, timeline_state, url};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../histories/examples")
        .join(name)
        .canonicalize()
        .unwrap()
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn failing_report_opens_on_the_failure() {
    let run = example("kill-ack-before-commit");
    let report = run.join("report.html");
    let failure = &summary(&run)["check"]["failure"];
    let d = dom(&url(&report, ""));
    let state = timeline_state(&d);
    assert_eq!(state["key"], failure["key"].as_str().unwrap(), "{state:?}");
    assert_eq!(state["view"], "failure", "{state:?}");
    assert_eq!(
        state["offending"],
        failure["op"]["id"].to_string(),
        "{state:?}"
    );
    assert_eq!(state["offending-in-view"], "true", "{state:?}");
    assert!(num(&state, "offending-px") >= 20.0, "{state:?}");
    assert!(num(&state, "ticks") >= 3.0, "{state:?}");
    // Plots per operation, definite fails (cas) apart.
    for f in ["cas", "get", "set"] {
        assert!(
            d.contains(&format!("id=\"latency-{f}\"")),
            "latency plot of {f}"
        );
        assert!(d.contains(&format!("id=\"rate-{f}\"")), "rate plot of {f}");
    }
    assert!(d.contains("class=\"points-fail\""));

    let (_, _, px) = screenshot(&url(&report, ""), "report-failing");
    let hl = px.iter().filter(|p| is_highlight(p)).count();
    assert!(
        hl > 300,
        "the offending op is outlined on the first screen: {hl} pixels"
    );

    let whole = timeline_state(&dom(&url(&report, "whole")));
    assert_eq!(whole["view"], "whole", "{whole:?}");
    assert_eq!(whole["ops-in-view"], whole["ops"], "{whole:?}");
}

#[test]
fn passing_report_opens_on_a_fault() {
    let report = example("kill-linearizable").join("report.html");
    let state = timeline_state(&dom(&url(&report, "")));
    assert_eq!(state["view"], "fault", "{state:?}");
    assert_eq!(state["offending-in-view"], "false", "{state:?}");
    assert!(num(&state, "ops-in-view") >= 1.0, "{state:?}");
}
