//! Headless Chromium for the report tests: screenshots, the DOM after the
//! page's script ran, and the state the timeline writes into
//! `<output id="timeline-state">`. Chromium is required (Debian package
//! `chromium`); without it the tests fail. Also used by the harness's
//! report tests (included by path).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the browser's whole process group when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Runs headless Chromium on `url` with `args` and returns its stdout.
/// Virtual time lets the page's script (and the inflating of its data)
/// finish before the snapshot, however slow the machine: it advances only
/// while the page is idle.
fn run(url: &str, args: &[String], profile: &Path) -> Vec<u8> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=60000",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(out.reopen().unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}); the HTML report tests need headless Chromium: apt-get install -y chromium",
                chromium()
            )
        });
    let mut browser = Browser(child);
    let start = Instant::now();
    loop {
        if let Some(status) = browser.0.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "chromium took over 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read(out.path()).unwrap()
}

pub fn url(html: &Path, fragment: &str) -> String {
    if fragment.is_empty() {
        format!("file://{}", html.display())
    } else {
        format!("file://{}#{fragment}", html.display())
    }
}

/// A 1400x900 screenshot of `url`, as RGB pixels.
pub fn screenshot(url: &str, keep_as: &str) -> (usize, usize, Vec<[u8; 3]>) {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    run(
        url,
        &[format!("--screenshot={}", png.display())],
        &dir.path().join("profile"),
    );
    assert!(png.exists(), "chromium wrote no screenshot");
    if let Ok(keep) = std::env::var("REPORT_KEEP_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png, Path::new(&keep).join(format!("{keep_as}.png"))).unwrap();
    }
    decode_png(&std::fs::read(&png).unwrap())
}

/// The DOM of `url` once its script has run.
pub fn dom(url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        url,
        &["--dump-dom".to_string()],
        &dir.path().join("profile"),
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// The attributes of the first element that starts with `start` (e.g.
/// `<output id="timeline-state"`), `data-` dropped from their names.
pub fn attributes(dom: &str, start: &str) -> HashMap<String, String> {
    let at = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap()];
    let mut out = HashMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].rsplit(' ').next().unwrap().to_string();
        let value_end = eq + 2 + rest[eq + 2..].find('"').unwrap();
        let value = rest[eq + 2..value_end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        out.insert(name.trim_start_matches("data-").to_string(), value);
        rest = &rest[value_end + 1..];
    }
    out
}

/// What the timeline shows, as it wrote it into `#timeline-state`
/// (attribute names as in the DOM: `ops-in-view`, `offending-px`, ...).
pub fn timeline_state(dom: &str) -> HashMap<String, String> {
    let state = attributes(dom, "<output id=\"timeline-state\"");
    assert_eq!(
        state.get("ready").map(String::as_str),
        Some("1"),
        "the timeline did not finish drawing: {state:?}"
    );
    assert!(!state.contains_key("error"), "script error: {state:?}");
    state
}

/// The text of the element with id `id` (tags inside dropped).
pub fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let open_end = start + dom[start..].find('>').unwrap() + 1;
    let close = open_end + dom[open_end..].find("</div>").unwrap();
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[open_end..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

pub fn num(state: &HashMap<String, String>, name: &str) -> f64 {
    state
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {state:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {state:?}"))
}

/// Decodes an 8-bit, non-interlaced RGB or RGBA PNG into RGB pixels.
pub fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut w, mut h, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
                assert_eq!(data[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * channels;
    let mut prev = vec![0u8; stride];
    let mut px = Vec::with_capacity(w * h);
    for row in 0..h {
        let line = &raw[row * (stride + 1)..(row + 1) * (stride + 1)];
        let filter = line[0];
        let mut cur = line[1..].to_vec();
        for i in 0..stride {
            let a = if i >= channels {
                cur[i - channels] as i16
            } else {
                0
            };
            let b = prev[i] as i16;
            let c = if i >= channels {
                prev[i - channels] as i16
            } else {
                0
            };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            };
            cur[i] = cur[i].wrapping_add(add as u8);
        }
        for p in cur.chunks(channels) {
            px.push([p[0], p[1], p[2]]);
        }
        prev = cur;
    }
    (w, h, px)
}

/// Pixels of the offending op's outline colour.
pub fn is_highlight(p: &[u8; 3]) -> bool {
    p[0] > 220 && p[1] < 70 && p[2] > 220
}
