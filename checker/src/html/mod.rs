//! A self-contained timeline page (no network). It opens on the failure:
//! the operation that cannot be linearized, the operations concurrent with
//! it and the end of the longest linearizable prefix, with a time axis,
//! process lanes whose labels stay in view, the model's state after each
//! linearized operation on hover, and zoom from there out to the whole key
//! (a passing history opens on its busiest fault). Operations are embedded
//! in compact, deflated columns ([`columns`], [`data`]) and drawn by
//! `timeline.js` into a canvas, only those in view, so a history of
//! hundreds of thousands of operations makes a page of a few MB.
//!
//! The page can be steered for tests and links: `#key=LABEL&t=FROM,TO`
//! (history time units) or `#whole` in the URL, or `timeline.show(...)`,
//! `timeline.whole()` and `timeline.land()` from script. After every
//! drawing it writes what it shows into `<output id="timeline-state">`.

mod columns;
mod data;

pub use data::MAX_DRAWN_OPS;

use crate::check::Outcome;

/// The offending operation's outline colour (tests look for its pixels).
pub const HIGHLIGHT: &str = "#ff00ff";

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("timeline.css");
const SCRIPT: &str = include_str!("timeline.js");

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON that may sit inside a `<script>` element.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}

/// Renders the page.
pub fn render_html(outcome: &Outcome) -> String {
    let title = format!(
        "{} — {}",
        outcome
            .file
            .as_ref()
            .map_or("history".to_string(), |p| p.display().to_string()),
        outcome.verdict.as_str()
    );
    let data = data::page_data(outcome);
    // Each substitution's text is inserted once, so no placeholder can be
    // spelled by the data.
    let mut page = String::with_capacity(TEMPLATE.len() + data.blob.len() + 64 * 1024);
    let mut rest = TEMPLATE;
    while let Some(at) = rest.find("{{") {
        page.push_str(&rest[..at]);
        let end = at + rest[at..].find("}}").expect("placeholders are closed") + 2;
        match &rest[at..end] {
            "{{TITLE}}" => page.push_str(&escape(&title)),
            "{{VERDICT_CLASS}}" => page.push_str(outcome.verdict.as_str()),
            "{{SUMMARY}}" => page.push_str(&escape(&outcome.summary())),
            "{{HIGHLIGHT}}" => page.push_str(HIGHLIGHT),
            "{{STYLE}}" => page.push_str(STYLE),
            "{{SCRIPT}}" => page.push_str(SCRIPT),
            "{{META}}" => page.push_str(&script_json(&data.meta)),
            "{{BLOB}}" => page.push_str(&data.blob),
            other => panic!("unknown placeholder {other}"),
        }
        rest = &rest[end..];
    }
    page.push_str(rest);
    page
}

#[cfg(test)]
mod tests {
    #[test]
    fn script_and_style_cannot_close_their_element() {
        for asset in [super::SCRIPT, super::STYLE] {
            assert!(!asset.to_ascii_lowercase().contains("</script"));
            assert!(!asset.to_ascii_lowercase().contains("</style"));
        }
    }
}
