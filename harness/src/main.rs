//! `harness`: local clusters, a client, a benchmark, and Jepsen-style
//! fault-injection runs against real `node` processes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod check;
mod client_cmd;
mod cluster;
mod cluster_cmd;
mod run;

#[derive(Parser)]
#[command(name = "harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local cluster of `node` processes until Ctrl-C or SIGTERM.
    Cluster(cluster_cmd::Args),
    /// Send commands to a cluster, or open an interactive prompt.
    Client(client_cmd::Args),
    /// Measure throughput and latency of a cluster.
    Bench(bench::Args),
    /// Run clients against a cluster under faults, record and check the history.
    Run(run::Args),
    /// Re-check a stored run directory.
    Check(check::Args),
    /// The lazy filesystem that `run --nemesis power` mounts under each node.
    #[command(subcommand, hide = true)]
    Lazyfs(raftkv_lazyfs::cli::Command),
}

/// Exit statuses, the same for every subcommand and for `node` and
/// `checker`: 0 success; 1 a failure (a violation found by `run` or
/// `check`, a request or a node that failed); 2 no verdict (`run`/`check`
/// out of time) or a `cas` not applied (`client`); 3 a usage, input or
/// set-up error: nothing was decided.
pub mod exit {
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 3;
}
const EXIT_USAGE: u8 = exit::USAGE;

// The bench client issues many small requests; mimalloc keeps its own CPU
// cost (shared with the nodes on one machine) low.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                // --help and --version
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Cluster(args) => cluster_cmd::main(args),
        Command::Client(args) => client_cmd::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Run(args) => run::main(args),
        Command::Check(args) => {
            restore_sigpipe();
            check::main(args)
        }
        Command::Lazyfs(cmd) => raftkv_lazyfs::cli::run(cmd),
    }
}

/// Output to a closed pipe (`harness check RUN | head -1`) ends the process
/// quietly, as it does for other Unix tools, instead of a panic in
/// `println!`: Rust ignores SIGPIPE unless told otherwise. Only for commands
/// that touch no socket: hyper writes to connections with `writev`, which
/// raises SIGPIPE on a connection a killed node reset, and the default
/// disposition would end the whole process there.
fn restore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called from main before any thread exists; the
    // default disposition installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// A usage error found before anything ran: says so on stderr, exits 3.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs a subcommand's async body on a fresh runtime: exit 0 on success, 1
/// with the error on stderr otherwise, 3 if no runtime can be started.
fn run_to_exit_code(body: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    run_to_exit_code_on(None, body)
}

/// Like [`run_to_exit_code`] on a runtime of `worker_threads` threads
/// (`None`: one per CPU).
fn run_to_exit_code_on(
    worker_threads: Option<usize>,
    body: impl std::future::Future<Output = Result<(), String>>,
) -> ExitCode {
    let runtime = match raftkv::runtime::build(worker_threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::FAILED)
        }
    }
}
