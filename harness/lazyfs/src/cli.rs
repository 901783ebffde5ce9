//! The `lazyfs` command line, also embeddable in another binary (the
//! harness runs it as a hidden subcommand so that it needs no second
//! executable).

use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

use crate::control::{self, Request, Response};
use crate::model::TornMode;
use crate::mount::{MountOptions, Mounted};
use crate::mounts;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mount a lazy filesystem over MOUNT, backed by BACKING, and serve it
    /// until SIGINT/SIGTERM/SIGHUP, an `exit` request, or (with
    /// `--control stdio`) the end of stdin. Prints `ready MOUNT` on stdout
    /// once mounted.
    Mount(MountArgs),
    /// Power cut of a `lazyfs mount --control SOCKET`: lose what is unsynced.
    Cut {
        #[arg(long, value_name = "SOCKET")]
        control: PathBuf,
        /// What a torn write keeps: none, prefix or pages.
        #[arg(long, default_value = "none")]
        torn: TornMode,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Counters and unsynced state of a `lazyfs mount --control SOCKET`.
    Stats {
        #[arg(long, value_name = "SOCKET")]
        control: PathBuf,
    },
    /// Whether this process can mount here (root and /dev/fuse).
    Check,
    /// Detach lazy filesystems at or under DIR whose process is gone
    /// (with --all, live ones as well).
    Clean {
        dir: PathBuf,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Directory holding the durable state (read at mount, kept after).
    #[arg(long, value_name = "DIR")]
    pub backing: PathBuf,
    /// Directory to mount over.
    #[arg(long = "mount", value_name = "DIR")]
    pub mountpoint: PathBuf,
    /// Where requests come from: `stdio` (stdin, answers on stdout; the end
    /// of stdin unmounts) or the path of a unix socket to listen on.
    #[arg(long, value_name = "stdio|SOCKET")]
    pub control: Option<String>,
    /// Do not fsync the backing directory when the filesystem's user syncs.
    #[arg(long)]
    pub no_sync_backing: bool,
}

pub fn run(cmd: Command) -> ExitCode {
    let result = match cmd {
        Command::Mount(args) => mount(args),
        Command::Cut {
            control,
            torn,
            seed,
        } => client(&control, &Request::PowerCut { torn, seed }),
        Command::Stats { control } => client(&control, &Request::Stats),
        Command::Check => mounts::check_available().map(|()| println!("lazyfs can mount here")),
        Command::Clean { dir, all } => clean(&dir, all),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lazyfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn clean(dir: &Path, all: bool) -> Result<(), String> {
    let done = if all {
        mounts::detach_all_under(dir)
    } else {
        mounts::clean_stale_mounts(dir)
    }
    .map_err(|e| e.to_string())?;
    for m in done {
        println!("detached {}", m.display());
    }
    Ok(())
}

fn client(socket: &Path, request: &Request) -> Result<(), String> {
    let conn = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let mut input = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let response = control::call(&conn, &mut input, request)?;
    if let Response::Error(e) = response {
        return Err(e);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&response).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Asks the main thread (waiting for a signal) to unmount and exit.
fn request_exit() {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
}

fn mount(args: MountArgs) -> Result<(), String> {
    // Termination signals are blocked in every thread and awaited by this
    // one, so that they unmount instead of killing the process.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let options = MountOptions {
        sync_backing: !args.no_sync_backing,
    };
    let mounted = Arc::new(Mounted::mount(&args.backing, &args.mountpoint, &options)?);
    eprintln!(
        "lazyfs: mounted {} over {} (sync backing: {})",
        mounted.backing().display(),
        mounted.mountpoint().display(),
        options.sync_backing
    );
    let mut socket = None;
    match args.control.as_deref() {
        None => {}
        Some("stdio") => {
            let m = mounted.clone();
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let _ = control::serve(&LoggedCuts(&m), stdin.lock(), std::io::stdout());
                request_exit();
            });
        }
        Some(path) => {
            let path = PathBuf::from(path);
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            socket = Some(path);
            let m = mounted.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let Ok(reader) = conn.try_clone() else {
                        continue;
                    };
                    if let Ok(true) = control::serve(&LoggedCuts(&m), BufReader::new(reader), &conn)
                    {
                        request_exit();
                        return;
                    }
                }
            });
        }
    }
    let mut out = std::io::stdout();
    writeln!(out, "ready {}", mounted.mountpoint().display())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    let signal = signals
        .wait()
        .map_err(|e| format!("waiting for signals: {e}"))?;
    let result = mounted.unmount();
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    eprintln!(
        "lazyfs: unmounted {} on {signal:?}",
        mounted.mountpoint().display()
    );
    result
}

/// The mounted filesystem, logging each power cut to stderr.
struct LoggedCuts<'a>(&'a Mounted);

impl control::Serve for LoggedCuts<'_> {
    fn handle(&self, request: &Request) -> Response {
        let response = control::handle(self.0, request);
        if let Response::PowerCut(r) = &response {
            eprintln!(
                "lazyfs: power cut of {}: {} files reverted, {} bytes lost, {} torn bytes kept, {} directory entries undone, {} files or directories gone",
                self.0.mountpoint().display(),
                r.files_reverted,
                r.bytes_lost,
                r.bytes_kept,
                r.entries_undone,
                r.inodes_dropped
            );
        }
        response
    }
}
