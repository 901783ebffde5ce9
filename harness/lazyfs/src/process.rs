//! A lazy filesystem served by a child process (`lazyfs mount --control
//! stdio`), driven over its stdin and stdout.
//!
//! The child unmounts and exits when its stdin closes, so a parent that
//! dies, even by SIGKILL, leaves no mount behind: the kernel closes the
//! pipe and the child cleans up.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::control::{Request, Response};
use crate::model::{CutReport, Stats, TornMode};
use crate::mount::MountOptions;
use crate::mounts;

/// How long a request (a power cut, stats, mounting, exiting) may take
/// before the child is judged hung. Generous: a loaded machine is slow.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The command that runs `lazyfs`: the `lazyfs` binary, or any program
/// that embeds [`cli::Command`](crate::cli::Command) behind some leading
/// arguments (e.g. `harness lazyfs`).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl Launcher {
    /// The `lazyfs` binary at `path`.
    pub fn binary(path: impl Into<PathBuf>) -> Launcher {
        Launcher {
            program: path.into(),
            args: Vec::new(),
        }
    }

    /// This executable, which embeds the command line as `subcommand`.
    pub fn current_exe(subcommand: &str) -> Result<Launcher, String> {
        let program =
            std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
        Ok(Launcher {
            program,
            args: vec![subcommand.into()],
        })
    }
}

/// A mounted lazy filesystem in a child process. Dropping it unmounts.
#[derive(Debug)]
pub struct LazyFsProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    mountpoint: PathBuf,
    log: Option<PathBuf>,
    done: bool,
}

impl LazyFsProcess {
    /// Starts `launcher ... mount --backing BACKING --mount MOUNTPOINT
    /// --control stdio` and waits until the filesystem is mounted. The
    /// child's stderr goes to `log` (appended) if given, else to this
    /// process's stderr.
    pub fn spawn(
        launcher: &Launcher,
        backing: &Path,
        mountpoint: &Path,
        options: &MountOptions,
        log: Option<&Path>,
    ) -> Result<LazyFsProcess, String> {
        mounts::check_available()?;
        let mut cmd = Command::new(&launcher.program);
        cmd.args(&launcher.args)
            .arg("mount")
            .arg("--backing")
            .arg(backing)
            .arg("--mount")
            .arg(mountpoint)
            .args(["--control", "stdio"]);
        if !options.sync_backing {
            cmd.arg("--no-sync-backing");
        }
        // Its own process group: a Ctrl-C meant for the parent must not
        // unmount under processes the parent is still stopping; the parent
        // ends it by closing its stdin (or by dying).
        cmd.process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        match log {
            Some(path) => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                cmd.stderr(f);
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launcher.program.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("lazyfs-control".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let mut p = LazyFsProcess {
            stdin: child.stdin.take(),
            child,
            lines,
            mountpoint: mountpoint.to_path_buf(),
            log: log.map(Path::to_path_buf),
            done: false,
        };
        match p.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) if line.starts_with("ready") => Ok(p),
            Ok(line) => Err(p.failed(&format!("unexpected first line {line:?}"))),
            Err(_) => Err(p.failed("it did not mount")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Stops the child (SIGKILL) and describes why it failed: its exit
    /// status and the end of its log.
    fn failed(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        let _ = mounts::clean_stale_mounts(&self.mountpoint);
        self.done = true;
        let tail = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(5)..].join("\n")
            })
            .filter(|t| !t.is_empty())
            .map(|t| format!("; its log ends:\n{t}"))
            .unwrap_or_default();
        format!(
            "lazyfs for {}: {what} ({status}){tail}",
            self.mountpoint.display()
        )
    }

    fn call(&mut self, request: &Request) -> Result<Response, String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("lazyfs was stopped".into());
        };
        let text = serde_json::to_string(request).map_err(|e| e.to_string())?;
        if let Err(e) = writeln!(stdin, "{text}").and_then(|()| stdin.flush()) {
            return Err(self.failed(&format!("cannot send a request: {e}")));
        }
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => {
                serde_json::from_str(&line).map_err(|e| format!("bad response {line:?}: {e}"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.failed("no response in time")),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.failed("it exited")),
        }
    }

    /// Loses everything unsynced, as a power failure would. The caller has
    /// SIGKILLed and reaped every process using the filesystem.
    pub fn power_cut(&mut self, torn: TornMode, seed: u64) -> Result<CutReport, String> {
        match self.call(&Request::PowerCut { torn, seed })? {
            Response::PowerCut(r) => Ok(r),
            Response::Error(e) => Err(e),
            other => Err(format!("unexpected response {other:?}")),
        }
    }

    pub fn stats(&mut self) -> Result<Stats, String> {
        match self.call(&Request::Stats)? {
            Response::Stats(s) => Ok(s),
            Response::Error(e) => Err(e),
            other => Err(format!("unexpected response {other:?}")),
        }
    }

    /// Unmounts (the backing directory then holds exactly the durable
    /// state) and waits for the child to exit.
    pub fn unmount(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        // Closing stdin asks the child to unmount and exit.
        drop(self.stdin.take());
        loop {
            match self.lines.recv_timeout(REPLY_TIMEOUT) {
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(self.failed("it did not exit after its stdin closed"));
                }
            }
        }
        self.done = true;
        let status = self.child.wait().map_err(|e| e.to_string())?;
        // A child that could not unmount cleanly leaves a stale mount.
        let stale = mounts::clean_stale_mounts(&self.mountpoint).unwrap_or_default();
        if !status.success() {
            return Err(format!(
                "lazyfs for {} exited with {status}",
                self.mountpoint.display()
            ));
        }
        if !stale.is_empty() {
            return Err(format!(
                "lazyfs left a stale mount on {}",
                self.mountpoint.display()
            ));
        }
        Ok(())
    }
}

impl Drop for LazyFsProcess {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("{e}");
        }
    }
}
