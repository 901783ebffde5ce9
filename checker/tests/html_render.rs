//! Renders the timeline page in headless Chromium and checks the screenshot:
//! not blank, and the offending operation marked in the highlight colour.
//! Chromium is required (Debian package `chromium`); without it this fails.

use raftkv_checker::{CheckOptions, Verdict, check_text, render_html};
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

fn screenshot(html: &Path, png: &Path, profile: &Path) {
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
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,900")
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} ({e}); the HTML report test needs headless Chromium: apt-get install -y chromium",
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
            start.elapsed() < Duration::from_secs(90),
            "chromium took over 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(png.exists(), "chromium wrote no screenshot");
}

/// Decodes an 8-bit, non-interlaced RGB or RGBA PNG into RGB pixels.
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
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

fn is_highlight(p: &[u8; 3]) -> bool {
    p[0] > 220 && p[1] < 70 && p[2] > 220
}

fn history(stale: bool) -> String {
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

fn render_and_count(stale: bool) -> (usize, usize, usize) {
    let out = check_text(&history(stale), &CheckOptions::default()).unwrap();
    let expected = if stale {
        Verdict::NotLinearizable
    } else {
        Verdict::Linearizable
    };
    assert_eq!(out.verdict, expected, "{}", out.summary());
    let page = render_html(&out);
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no network references"
    );
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("timeline.html");
    std::fs::write(&html, &page).unwrap();
    let png = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    screenshot(&html, &png, &profile);
    if let Ok(keep) = std::env::var("CHECKER_KEEP_SCREENSHOT") {
        std::fs::copy(&png, format!("{keep}-{stale}.png")).unwrap();
    }
    let (w, h, px) = decode_png(&std::fs::read(&png).unwrap());
    assert!(w >= 1000 && h >= 600, "screenshot {w}x{h}");
    let non_white = px.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
    let green = px
        .iter()
        .filter(|p| p[1] > 150 && p[0] < 140 && p[2] < 140)
        .count();
    let highlight = px.iter().filter(|p| is_highlight(p)).count();
    assert!(
        non_white > px.len() / 50,
        "screenshot looks blank: {non_white} non-white pixels of {}",
        px.len()
    );
    (highlight, green, non_white)
}

#[test]
fn timeline_page_renders_and_marks_the_offending_op() {
    let (hl_bad, green_bad, _) = render_and_count(true);
    let (hl_good, green_good, _) = render_and_count(false);
    // The ok bars are drawn in both pages.
    assert!(
        green_bad > 2000 && green_good > 2000,
        "ok bars: {green_bad}, {green_good}"
    );
    // The legend carries a small swatch of the highlight colour; the
    // offending op's outline adds far more.
    assert!(
        hl_good < 600,
        "highlight pixels without a failure: {hl_good}"
    );
    assert!(
        hl_bad > hl_good + 600,
        "offending op not marked: {hl_bad} highlight pixels vs {hl_good}"
    );
}
