//! The progress display: a bar on a terminal, a plain line every few seconds
//! otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::LiveState;

pub struct Progress {
    bar: Option<ProgressBar>,
    task: Option<JoinHandle<()>>,
}

fn line(live: &LiveState, start: Instant) -> String {
    let ok = live.counters.ok.load(Ordering::Relaxed);
    let fail = live.counters.fail.load(Ordering::Relaxed);
    let info = live.counters.info.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64().max(0.001);
    let rate = (ok + fail + info) as f64 / secs;
    let leader = match live.leader.load(Ordering::Relaxed) {
        0 => "none".to_string(),
        n => n.to_string(),
    };
    let fault = live
        .last_fault
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let phase = live.phase.lock().map(|p| p.clone()).unwrap_or_default();
    format!(
        "{phase} | {rate:.0} ops/s | ok {ok} fail {fail} info {info} | leader {leader} | {}",
        if fault.is_empty() {
            "no fault yet"
        } else {
            &fault
        }
    )
}

impl Progress {
    pub fn start(quiet: bool, total: Duration, live: Arc<LiveState>, start: Instant) -> Progress {
        if quiet {
            return Progress {
                bar: None,
                task: None,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total.as_secs().max(1));
            bar.set_style(
                ProgressStyle::with_template("{elapsed:>4}/{len:<4}s [{bar:25}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            let b = bar.clone();
            let task = tokio::spawn(async move {
                loop {
                    b.set_position(start.elapsed().as_secs().min(total.as_secs()));
                    b.set_message(line(&live, start));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            Progress {
                bar: Some(bar),
                task: Some(task),
            }
        } else {
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    eprintln!(
                        "[{:>5.1}s/{}s] {}",
                        start.elapsed().as_secs_f64(),
                        total.as_secs(),
                        line(&live, start)
                    );
                }
            });
            Progress {
                bar: None,
                task: Some(task),
            }
        }
    }

    pub fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
