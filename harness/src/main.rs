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
}

/// Exit status for a usage error, as for any other harness error (`run` and
/// `check` reserve 1 and 2 for "violation" and "unknown").
const EXIT_USAGE: u8 = 3;

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
        Command::Check(args) => check::main(args),
    }
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
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
