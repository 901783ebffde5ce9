//! `lazyfs`: mount a lazy filesystem by hand, or drive one.

use std::process::ExitCode;

use clap::Parser;

/// A FUSE filesystem that keeps what was never fsynced in memory and loses
/// it on a power cut.
#[derive(Debug, Parser)]
#[command(name = "lazyfs", version)]
struct Cli {
    #[command(subcommand)]
    command: raftkv_lazyfs::cli::Command,
}

fn main() -> ExitCode {
    raftkv_lazyfs::cli::run(Cli::parse().command)
}
