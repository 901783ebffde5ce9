//! Command-line flags of the `node` binary and their validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use raftkv_core::NodeId;

/// A raftkv node: serves the Kv service, the Raft peer service, gRPC health
/// and server reflection on one port.
#[derive(Debug, Clone, Parser)]
#[command(name = "node", version, about)]
pub struct Args {
    /// This node's id (non-zero; must appear in --peers).
    #[arg(long)]
    pub id: NodeId,
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Every voter as ID=HOST:PORT, comma separated, this node included. The
    /// address of node j is where this node sends its messages for j.
    #[arg(long)]
    pub peers: String,
    /// Directory of the write-ahead log (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Length of one Raft tick in milliseconds (or with a unit: 10ms, 1s;
    /// the same for every `-ms` flag).
    #[arg(long, default_value = "10", value_parser = millis, allow_hyphen_values = true)]
    pub tick_ms: u64,
    /// Leader heartbeat interval in milliseconds.
    #[arg(long, default_value = "50", value_parser = millis, allow_hyphen_values = true)]
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout in milliseconds.
    #[arg(long, default_value = "300", value_parser = millis, allow_hyphen_values = true)]
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomised election timeout in milliseconds.
    #[arg(long, default_value = "600", value_parser = millis, allow_hyphen_values = true)]
    pub election_timeout_max_ms: u64,
    /// Longest accepted key in bytes.
    #[arg(long, default_value_t = 1024)]
    pub max_key_bytes: usize,
    /// Longest accepted value in bytes.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_value_bytes: usize,
    /// Server-side deadline of a request that carries no grpc-timeout, in milliseconds.
    #[arg(long, default_value = "5000", value_parser = millis, allow_hyphen_values = true)]
    pub request_timeout_ms: u64,
    /// Idle client sessions expire after this many milliseconds (leader time).
    #[arg(long, default_value = "3600000", value_parser = millis, allow_hyphen_values = true)]
    pub session_ttl_ms: u64,
    /// Most client sessions kept; the least recently active are dropped beyond it.
    #[arg(long, default_value_t = 100_000)]
    pub max_sessions: usize,
    /// Most AppendEntries a leader keeps unacknowledged per follower; proposals
    /// made meanwhile wait and go out together in the next one.
    #[arg(long, default_value_t = 16)]
    pub max_inflight_appends: usize,
    /// Threads that run the gRPC services and the Raft driver (the log has
    /// its own); 0 means one per CPU. With 1, everything runs on one thread,
    /// so that replies queued together leave in one write. Nodes that share
    /// a machine run best with the CPUs split among them: `harness` gives
    /// each local node CPUs / nodes.
    #[arg(long, default_value_t = 0)]
    pub worker_threads: usize,
    /// Take a snapshot of the state machine every this many applied entries,
    /// then drop the log entries it covers (in memory and on disk); 0 never
    /// takes one (the log grows without bound).
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_entries: u64,
    /// Entries kept in the log behind a snapshot, so that a follower that
    /// lags by fewer catches up from the log rather than with the snapshot.
    #[arg(long, default_value_t = 5_000)]
    pub snapshot_catchup_entries: u64,
    /// Size at which a write-ahead log segment is closed and a new one
    /// started; whole segments are deleted once a snapshot covers them.
    #[arg(long, default_value_t = 64 << 20)]
    pub wal_segment_bytes: u64,
}

/// Validated settings derived from [`Args`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Every voter and the address this node sends to.
    pub peers: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    pub tick: Duration,
    pub heartbeat_ticks: u32,
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub max_inflight_appends: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub request_timeout: Duration,
    pub session_ttl_ms: u64,
    pub max_sessions: usize,
    /// `None`: one per CPU.
    pub worker_threads: Option<usize>,
    /// 0: no snapshots.
    pub snapshot_entries: u64,
    pub snapshot_catchup_entries: u64,
    pub wal_segment_bytes: u64,
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_peers(spec: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut peers = BTreeMap::new();
    for (n, item) in spec.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("--peers: entry {} is empty", n + 1));
        }
        let (id, addr) = item
            .split_once('=')
            .ok_or_else(|| format!("--peers: entry {} ({item:?}) is not ID=HOST:PORT", n + 1))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("--peers: entry {} ({item:?}) has a bad id", n + 1))?;
        if id == 0 {
            return Err(format!(
                "--peers: entry {} ({item:?}): id 0 is reserved",
                n + 1
            ));
        }
        let addr = addr.trim();
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("--peers: entry {} ({item:?}): address has no :PORT", n + 1))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("--peers: entry {} ({item:?}): bad address", n + 1));
        }
        if peers.insert(id, addr.to_string()).is_some() {
            return Err(format!("--peers: node id {id} appears twice"));
        }
    }
    Ok(peers)
}

/// A `-ms` flag: a bare number of milliseconds, or a duration with a unit.
fn millis(s: &str) -> Result<u64, String> {
    let d = raftkv::duration::parse_ms(s)?;
    u64::try_from(d.as_millis()).map_err(|_| format!("{s:?} is too long a duration"))
}

/// Refuses a `--peers` entry for this node that names another address than
/// `--listen` (other nodes would send this node's messages elsewhere). A
/// wildcard listen address (0.0.0.0, [::]) matches any host with its port.
fn check_own_peer_entry(id: NodeId, listen: SocketAddr, own: &str) -> Result<(), String> {
    let mismatch = || {
        format!(
            "--peers: this node ({id}) is listed at {own}, but --listen is {listen}; the two must name the same address"
        )
    };
    let (host, port) = own.rsplit_once(':').ok_or_else(mismatch)?;
    if port.parse::<u16>().ok() != Some(listen.port()) {
        return Err(mismatch());
    }
    if listen.ip().is_unspecified() {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let same_host = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == listen.ip(),
        // A name: accept it when it resolves to the listen address.
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(own)
            .map(|mut addrs| addrs.any(|a| a.ip() == listen.ip()))
            .unwrap_or(false),
    };
    if same_host { Ok(()) } else { Err(mismatch()) }
}

fn ticks(what: &str, ms: u64, tick_ms: u64) -> Result<u32, String> {
    let t = ms / tick_ms;
    if t == 0 {
        return Err(format!(
            "{what} ({ms} ms) is shorter than one tick ({tick_ms} ms)"
        ));
    }
    u32::try_from(t).map_err(|_| format!("{what} ({ms} ms) is too long"))
}

impl Args {
    pub fn validate(&self) -> Result<Settings, String> {
        if self.id == 0 {
            return Err("--id: must be non-zero".into());
        }
        let peers = parse_peers(&self.peers)?;
        let Some(own) = peers.get(&self.id) else {
            return Err(format!("--peers: does not list this node's id {}", self.id));
        };
        check_own_peer_entry(self.id, self.listen, own)?;
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(format!(
                "--data-dir: {} exists and is not a directory",
                self.data_dir.display()
            ));
        }
        if self.tick_ms == 0 {
            return Err("--tick-ms: must be at least 1".into());
        }
        let heartbeat_ticks = ticks("--heartbeat-ms", self.heartbeat_ms, self.tick_ms)?;
        let election_ticks_min = ticks(
            "--election-timeout-min-ms",
            self.election_timeout_min_ms,
            self.tick_ms,
        )?;
        let election_ticks_max = ticks(
            "--election-timeout-max-ms",
            self.election_timeout_max_ms,
            self.tick_ms,
        )?;
        if election_ticks_max <= election_ticks_min {
            return Err(format!(
                "--election-timeout-max-ms ({}) must exceed --election-timeout-min-ms ({}) by at least one tick",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if heartbeat_ticks >= election_ticks_min {
            return Err(format!(
                "--heartbeat-ms ({}) must be shorter than --election-timeout-min-ms ({})",
                self.heartbeat_ms, self.election_timeout_min_ms
            ));
        }
        if self.max_key_bytes == 0 {
            return Err("--max-key-bytes: must be at least 1".into());
        }
        if self.request_timeout_ms == 0 {
            return Err("--request-timeout-ms: must be at least 1".into());
        }
        if self.max_sessions == 0 {
            return Err("--max-sessions: must be at least 1".into());
        }
        if self.max_inflight_appends == 0 {
            return Err("--max-inflight-appends: must be at least 1".into());
        }
        if self.wal_segment_bytes < 4096 {
            return Err(format!(
                "--wal-segment-bytes: must be at least 4096, got {}",
                self.wal_segment_bytes
            ));
        }
        Ok(Settings {
            id: self.id,
            listen: self.listen,
            peers,
            data_dir: self.data_dir.clone(),
            tick: Duration::from_millis(self.tick_ms),
            heartbeat_ticks,
            election_ticks_min,
            election_ticks_max,
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            session_ttl_ms: self.session_ttl_ms,
            max_sessions: self.max_sessions,
            max_inflight_appends: self.max_inflight_appends,
            worker_threads: (self.worker_threads > 0).then_some(self.worker_threads),
            snapshot_entries: self.snapshot_entries,
            snapshot_catchup_entries: self.snapshot_catchup_entries,
            wal_segment_bytes: self.wal_segment_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Settings, String> {
        args_with_id("1", extra)
    }

    fn args_with_id(id: &str, extra: &[&str]) -> Result<Settings, String> {
        let mut argv = vec![
            "node",
            "--id",
            id,
            "--listen",
            "127.0.0.1:7001",
            "--peers",
            "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
            "--data-dir",
            "/tmp/x",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_convert_to_ticks() {
        let s = args(&[]).unwrap();
        assert_eq!(s.peers.len(), 3);
        assert_eq!(s.peers[&2], "127.0.0.1:7002");
        assert_eq!(s.heartbeat_ticks, 5);
        assert_eq!((s.election_ticks_min, s.election_ticks_max), (30, 60));
    }

    #[test]
    fn bad_peers_are_named() {
        assert!(parse_peers("1=a:1,1=b:2").unwrap_err().contains("twice"));
        assert!(parse_peers("1=a:1,,2=b:2").unwrap_err().contains("entry 2"));
        assert!(parse_peers("x=a:1").unwrap_err().contains("bad id"));
        assert!(parse_peers("1=a").unwrap_err().contains(":PORT"));
        assert!(parse_peers("0=a:1").unwrap_err().contains("reserved"));
        assert!(
            parse_peers("1=a:99999")
                .unwrap_err()
                .contains("bad address")
        );
    }

    #[test]
    fn inconsistent_timeouts_are_refused() {
        let e = args(&[
            "--election-timeout-min-ms",
            "600",
            "--election-timeout-max-ms",
            "300",
        ]);
        assert!(e.unwrap_err().contains("--election-timeout-max-ms"));
        let e = args(&["--heartbeat-ms", "400"]);
        assert!(e.unwrap_err().contains("--heartbeat-ms"));
        let e = args_with_id("4", &[]);
        assert!(e.unwrap_err().contains("does not list"));
        let e = args(&["--tick-ms", "0"]);
        assert!(e.unwrap_err().contains("--tick-ms"));
        let e = args(&["--max-inflight-appends", "0"]);
        assert!(e.unwrap_err().contains("--max-inflight-appends"));
        assert_eq!(
            args(&["--max-inflight-appends", "2"])
                .unwrap()
                .max_inflight_appends,
            2
        );
        assert_eq!(args(&[]).unwrap().worker_threads, None);
        let e = args(&["--wal-segment-bytes", "100"]);
        assert!(e.unwrap_err().contains("--wal-segment-bytes"));
        let s = args(&[]).unwrap();
        assert_eq!(
            (s.snapshot_entries, s.snapshot_catchup_entries),
            (10_000, 5_000)
        );
        let s = args(&["--snapshot-entries", "0"]).unwrap();
        assert_eq!(s.snapshot_entries, 0);
        assert_eq!(
            args(&["--worker-threads", "1"]).unwrap().worker_threads,
            Some(1)
        );
    }

    #[test]
    fn ms_flags_take_bare_milliseconds_or_a_unit() {
        let s = args(&["--tick-ms", "5", "--heartbeat-ms", "0.1s"]).unwrap();
        assert_eq!(s.tick, Duration::from_millis(5));
        assert_eq!(s.heartbeat_ticks, 20);
        let s = args(&["--request-timeout-ms", "2s"]).unwrap();
        assert_eq!(s.request_timeout, Duration::from_secs(2));
        let e = args(&["--heartbeat-ms", "-5"]).unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = args(&["--heartbeat-ms", "5x"]).unwrap_err();
        assert!(e.contains("unknown unit"), "{e}");
    }

    fn with_listen(listen: &str, peers: &str) -> Result<Settings, String> {
        Args::try_parse_from([
            "node",
            "--id",
            "1",
            "--listen",
            listen,
            "--peers",
            peers,
            "--data-dir",
            "/tmp/x",
        ])
        .map_err(|e| e.to_string())?
        .validate()
    }

    #[test]
    fn own_peer_entry_must_match_listen() {
        let e = with_listen("127.0.0.1:7001", "1=127.0.0.1:7009,2=127.0.0.1:7002").unwrap_err();
        assert!(
            e.contains("127.0.0.1:7009") && e.contains("--listen"),
            "{e}"
        );
        let e = with_listen("127.0.0.1:7001", "1=127.0.0.2:7001,2=127.0.0.1:7002").unwrap_err();
        assert!(e.contains("--listen"), "{e}");
        assert!(with_listen("0.0.0.0:7001", "1=10.1.2.3:7001,2=10.1.2.4:7002").is_ok());
        assert!(with_listen("127.0.0.1:7001", "1=localhost:7001,2=127.0.0.1:7002").is_ok());
        assert!(with_listen("[::1]:7001", "1=[::1]:7001,2=[::1]:7002").is_ok());
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().to_str().unwrap();
        let e = Args::try_parse_from([
            "node",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:7001",
            "--peers",
            "1=127.0.0.1:7001",
            "--data-dir",
            path,
        ])
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(e.contains("not a directory") && e.contains(path), "{e}");
    }
}
