//! The flags of `harness run`, and the checks that refuse settings that
//! would make a run meaningless (no clients, no time, a fault that cannot
//! happen on the cluster asked for).

use std::path::PathBuf;
use std::time::Duration;

use super::faults::schedule::Targets;
use super::faults::{Family, parse_families};
use super::workload::Mix;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// How long clients run under faults (e.g. 30s, 2m, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Duration,
    /// Faults to inject: kill,pause,partition,slow,power (comma-separated),
    /// all, or none. `power` needs root and /dev/fuse; `all` leaves it out
    /// where they are missing.
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Mean time between the starts of two faults; the gaps and the faults'
    /// lengths are random and scale with it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub nemesis_interval: Duration,
    /// Which faults to draw: `any`, only those aimed at the `leader`, or
    /// only those that leave a majority up (`minority`).
    #[arg(long, default_value = "any", value_parser = ["any", "leader", "minority"])]
    pub nemesis_target: String,
    /// Concurrent logical clients (default: 4 per node; the first two per
    /// node are pinned to it).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Number of keys (few, so that operations collide).
    #[arg(long, default_value_t = 5)]
    pub keys: u32,
    /// Relative weights of the operations.
    #[arg(long, default_value = "set=35,get=45,cas=15,noop=5")]
    pub mix: String,
    /// Total operations per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Fixes the operations, keys, values, clients and fault schedule
    /// (default: random; the run prints the one it used).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The `node` binary (default: `node` beside this program).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Extra argument passed to every node (repeatable), e.g.
    /// `--node-arg=--election-timeout-min-ms=150`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Where run directories are created.
    #[arg(long, default_value = "histories")]
    pub out: PathBuf,
    /// An operation without an answer after this is recorded as `info`.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Longest wait for a leader at the start, and for the nodes to agree
    /// after healing.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub recovery_timeout: Duration,
    /// Time limit of the linearizability check (then the verdict is unknown).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub check_time_limit: Duration,
    /// Keep the nodes' data directories of a run that passes (a run that
    /// fails always keeps them).
    #[arg(long)]
    pub keep_data: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a plain number of seconds (the
/// syntax of every duration flag: [`raftkv::duration`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    raftkv::duration::parse(s)
}

/// What the flags mean once checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub families: Vec<Family>,
    pub targets: Targets,
    pub mix: Mix,
    pub concurrency: usize,
}

/// Checks the flags together; the error names the flag at fault.
pub fn validate(args: &Args) -> Result<Settings, String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if args.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    if args.duration.is_zero() {
        return Err("--duration must be longer than 0 (e.g. 30s)".into());
    }
    for (flag, value) in [
        ("--nemesis-interval", args.nemesis_interval),
        ("--op-timeout", args.op_timeout),
        ("--recovery-timeout", args.recovery_timeout),
        ("--check-time-limit", args.check_time_limit),
    ] {
        if value.is_zero() {
            return Err(format!("{flag} must be longer than 0"));
        }
    }
    let concurrency = args.concurrency.unwrap_or(4 * args.nodes as usize);
    if concurrency == 0 {
        return Err(
            "--concurrency must be at least 1 (a run without clients tests nothing)".into(),
        );
    }
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        return Err(format!(
            "--rate {rate}: must be a positive number of operations per second"
        ));
    }
    let families = parse_families(&args.nemesis)?;
    let targets = Targets::parse(&args.nemesis_target)?;
    let explicit = args.nemesis.trim() != "all";
    let mut families = families;
    if args.nodes == 1 {
        if let Some(f) = families
            .iter()
            .find(|f| f.is_network())
            .filter(|_| explicit)
        {
            return Err(format!(
                "--nemesis {}: a 1-node cluster has no network between nodes to {}; use kill or pause, or more --nodes",
                f.name(),
                if *f == Family::Partition {
                    "partition"
                } else {
                    "slow down"
                }
            ));
        }
        families.retain(|f| !f.is_network());
    }
    if targets == Targets::Minority && args.nodes < 3 && !families.is_empty() {
        return Err(format!(
            "--nemesis-target minority: a cluster of {} node{} has no minority to fault: \
             stopping any one node loses the quorum; use 3 or more --nodes or --nemesis-target any",
            args.nodes,
            if args.nodes == 1 { "" } else { "s" }
        ));
    }
    let mix: Mix = args.mix.parse()?;
    Ok(Settings {
        families,
        targets,
        mix,
        concurrency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(flags: &[&str]) -> Args {
        let mut argv = vec!["run"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e300h").is_err());
    }

    #[test]
    fn the_defaults_are_valid() {
        let s = validate(&args(&[])).unwrap();
        assert_eq!(s.families, Family::ALL.to_vec());
        assert_eq!(s.concurrency, 12);
        assert_eq!(s.targets, Targets::Any);
    }

    #[test]
    fn meaningless_settings_are_refused_with_the_flag_named() {
        let refused = |flags: &[&str]| validate(&args(flags)).unwrap_err();
        assert!(refused(&["--concurrency", "0"]).starts_with("--concurrency must be at least 1"));
        assert!(refused(&["--duration", "0s"]).starts_with("--duration must be longer than 0"));
        assert!(refused(&["--nemesis-interval", "0ms"]).starts_with("--nemesis-interval"));
        assert!(refused(&["--rate", "0"]).starts_with("--rate 0"));
        assert!(refused(&["--nodes", "0"]).starts_with("--nodes"));
        let e = refused(&["--nodes", "1", "--nemesis", "partition"]);
        assert!(
            e.starts_with("--nemesis partition: a 1-node cluster"),
            "{e}"
        );
        let e = refused(&["--nodes", "1", "--nemesis", "kill,slow"]);
        assert!(e.starts_with("--nemesis slow"), "{e}");
        let e = refused(&[
            "--nodes",
            "2",
            "--nemesis",
            "kill",
            "--nemesis-target",
            "minority",
        ]);
        assert!(e.contains("stopping any one node loses the quorum"), "{e}");
        assert!(refused(&["--nemesis", "kill,flood"]).contains("\"flood\""));
        assert!(refused(&["--mix", "set=0"]).contains("--mix"));
    }

    #[test]
    fn all_on_one_node_keeps_the_process_faults_and_power_cuts() {
        let s = validate(&args(&["--nodes", "1"])).unwrap();
        assert_eq!(s.families, vec![Family::Kill, Family::Pause, Family::Power]);
        // Minority on 3 nodes is fine; on 2 without faults there is nothing to refuse.
        validate(&args(&["--nodes", "3", "--nemesis-target", "minority"])).unwrap();
        validate(&args(&[
            "--nodes",
            "2",
            "--nemesis",
            "none",
            "--nemesis-target",
            "minority",
        ]))
        .unwrap();
    }
}
