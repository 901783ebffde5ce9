//! `node`: one member of a raftkv cluster. See `node --help`.

mod config;
mod convert;
mod driver;
mod errors;
mod kv_service;
mod peer_service;
mod snapshots;
mod snapshotter;
mod storage;
mod transport;
mod wal_writer;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use raftkv::proto::{kv_server::KvServer, raft_peer_server::RaftPeerServer};
use raftkv_core::{Config, Raft};
use raftkv_kv::SessionConfig;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{error, info, warn};

use crate::config::{Args, Settings};
use crate::driver::{DriverHandle, Input};
use crate::kv_service::KvService;
use crate::peer_service::PeerService;
use crate::storage::Storage;
use crate::transport::{MAX_PEER_MESSAGE_BYTES, Transport};

// Many small short-lived allocations per request (protobuf, HTTP/2 frames,
// log entries): mimalloc serves them markedly cheaper than the system malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a usage error (bad flags), as for `harness` and `checker`.
const EXIT_USAGE: u8 = 3;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
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
    let settings = match args.validate() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("node: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Colour only on a terminal: logs redirected to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match start(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, through the log (stderr), with its time stamp.
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check_plant() -> Result<(), String> {
    #[cfg(feature = "planted-mistakes")]
    if let Some(p) = raftkv_plant::init()? {
        warn!(
            mistake = p.name(),
            "PLANTED MISTAKE ACTIVE: this node is deliberately incorrect"
        );
    }
    #[cfg(not(feature = "planted-mistakes"))]
    if std::env::var("RAFTKV_PLANT").is_ok_and(|v| !v.is_empty()) {
        return Err(
            "RAFTKV_PLANT is set, but this node was built without the planted-mistakes feature"
                .into(),
        );
    }
    Ok(())
}

fn start(settings: Settings) -> Result<(), String> {
    check_plant()?;
    let sessions = SessionConfig {
        ttl_ms: settings.session_ttl_ms,
        max_sessions: settings.max_sessions,
    };
    let mut storage = storage::open(&settings, sessions)?;
    let mut config = Config::new(settings.id, settings.peers.keys().copied().collect());
    config.election_ticks_min = settings.election_ticks_min;
    config.election_ticks_max = settings.election_ticks_max;
    config.heartbeat_ticks = settings.heartbeat_ticks;
    config.max_inflight_appends = settings.max_inflight_appends;
    let restored = std::mem::take(&mut storage.restored);
    let mut raft = Raft::new(config, restored, rand::random()).map_err(|e| {
        format!(
            "cannot start Raft from the data in {}: {e}",
            settings.data_dir.display()
        )
    })?;
    // The log after a restart holds everything back to the oldest segment
    // kept; only the catch-up entries behind the snapshot stay in memory.
    let snapshot_index = raft.snapshot().index;
    raft.compact(snapshot_index.saturating_sub(settings.snapshot_catchup_entries));
    let runtime = raftkv::runtime::build(settings.worker_threads)
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(Arc::new(settings), raft, storage))
}

async fn serve(settings: Arc<Settings>, raft: Raft, storage: Storage) -> Result<(), String> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let transport = Transport::start(settings.id, &settings.peers)?;
    let sessions = storage.kv.config();
    let (driver, handle) = driver::new(
        raft,
        storage.kv,
        settings.clone(),
        transport,
        storage.wal,
        storage.snapshots,
    );
    let driver_task = tokio::spawn(driver.run());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<KvServer<KvService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(raftkv::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("cannot build the reflection service: {e}"))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(raftkv::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("cannot build the reflection service: {e}"))?;

    let max_request = settings.max_key_bytes * 2 + settings.max_value_bytes * 2 + (64 << 10);
    let kv_service = KvServer::new(KvService::new(handle.clone(), settings.clone()))
        .max_decoding_message_size(max_request);
    // Set when shutdown begins: ends the peers' long-lived streams, which
    // the server's graceful shutdown would otherwise wait for.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let peer_service = RaftPeerServer::new(PeerService::new(
        settings.id,
        handle.clone(),
        closing_rx,
        settings.data_dir.clone(),
        sessions,
    ))
    .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);

    info!(id = settings.id, listen = %settings.listen, "serving");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(kv_service)
        .add_service(peer_service)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown_signal(handle).await;
            let _ = closing.send(true);
        });
    tokio::select! {
        result = server => {
            result.map_err(|e| format!("server failed: {e}"))?;
            info!("shut down");
            Ok(())
        }
        result = driver_task => match result {
            Ok(Ok(())) => Err("driver stopped".into()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("driver panicked: {e}")),
        },
    }
}

/// Resolves on SIGTERM or Ctrl-C, once a leader has handed leadership over
/// (the peer service keeps running meanwhile, so the hand-off can finish).
async fn shutdown_signal(driver: DriverHandle) {
    wait_for_signal().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    if driver.send(Input::Shutdown { reply: tx }).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => info!("interrupt received; shutting down"),
    }
}
