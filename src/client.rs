//! An async client for a raftkv cluster.
//!
//! [`Client`] talks to the `Kv` service of every node it is given. It
//!
//! - learns which node id lives at which address from each node's `Status`,
//!   and which node leads;
//! - sends every request to the node it believes leads (or, with
//!   [`Routing::Bound`], to the one node it is bound to, as a client of one
//!   server would), and follows a not-leader answer to the hinted leader: by
//!   the leader's id when it knows that id's address (the hinted address is
//!   where the answering node sends its own traffic, which may be a per-link
//!   proxy), else by the hinted address;
//! - retries with backoff until the operation's overall deadline, each
//!   attempt bounded by its own deadline;
//! - gives every write (`set`, `cas`, `noop`) a `(client_id, seq)` pair and
//!   reuses the same pair on every retry, so the cluster applies the write at
//!   most once and answers a retry with the stored reply.
//!
//! Results are typed: `Ok`, a definite failure (the cluster applied nothing:
//! [`ClientError::InvalidArgument`], [`ClientError::SessionExpired`],
//! [`ClientError::Unavailable`]) or [`ClientError::Indeterminate`] (the
//! outcome is unknown: a write may or may not take effect, possibly later).
//!
//! One `Client` is one session: it issues one request at a time (`&mut self`),
//! because the cluster only remembers the last reply of each session.
//! For concurrency, make more clients; [`Client::fork`] makes one that shares
//! the connections and the leader guess.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use raftkv::client::{Client, ClientOptions};
//! let addrs = vec!["127.0.0.1:7001".to_string(), "127.0.0.1:7002".to_string()];
//! let mut client = Client::connect(&addrs, ClientOptions::default()).await?;
//! client.set("k", b"v".to_vec()).await?;
//! assert_eq!(client.get("k").await?.value, Some(b"v".to_vec()));
//! let cas = client.cas("k", Some(b"v".to_vec()), b"w".to_vec()).await?;
//! assert!(cas.applied);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::proto::{
    CasRequest, CommittedEntriesRequest, CommittedEntriesResponse, EntryHashesRequest,
    EntryHashesResponse, GetRequest, NoOpRequest, Session, SetRequest, StatusRequest,
    StatusResponse, kv_client::KvClient,
};

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Session id; 0 picks a random non-zero id.
    pub client_id: u64,
    /// Continue an existing session of `client_id` (for a client id reused
    /// across processes): the first write uses a sequence number taken from
    /// the wall clock (microseconds since the Unix epoch), above any earlier
    /// process's; when the cluster has no such session, it opens one at 1.
    pub resume_session: bool,
    /// Bound on one attempt (one RPC to one node).
    pub request_timeout: Duration,
    /// Bound on one operation, all retries included.
    pub overall_timeout: Duration,
    /// Bound on establishing a TCP connection to a node.
    pub connect_timeout: Duration,
    /// First pause between attempts that found no leader; doubles up to
    /// `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
    /// When the cluster answers that the session expired, open a new session
    /// (a new random client id) and retry, if no earlier attempt of the
    /// operation may have been applied. Otherwise return
    /// [`ClientError::SessionExpired`].
    pub renew_expired_session: bool,
    /// Which node an operation goes to.
    pub routing: Routing,
}

/// Which node a [`Client`] sends an operation to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// The node believed to lead: a guess shared with forks, updated from
    /// status answers and redirects; after a failed attempt the client asks
    /// every node who leads, or tries the next node.
    #[default]
    Leader,
    /// Bound to the node at position `home` of the address list, as a client
    /// of one server: an operation starts at the node this client last used
    /// (its home at first, and always its home with `return_home`), follows
    /// a not-leader answer to the hinted leader, and after a failed attempt
    /// tries the same node again without asking the others. Only a node that
    /// refuses connections or knows no leader makes a client without
    /// `return_home` move on to the next address. A `pinned` client talks to
    /// its home only: a not-leader answer ends the operation (nothing was
    /// applied) instead of being followed.
    Bound {
        home: usize,
        return_home: bool,
        pinned: bool,
    },
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: 0,
            resume_session: false,
            request_timeout: Duration::from_secs(2),
            overall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(500),
            renew_expired_session: true,
            routing: Routing::Leader,
        }
    }
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The cluster rejected the request as malformed; nothing was applied.
    InvalidArgument(String),
    /// The session was unknown to the cluster; nothing was applied.
    SessionExpired,
    /// No attempt reached a leader before the deadline (no leader, not
    /// leader, connection refused); nothing was applied.
    Unavailable(String),
    /// The outcome is unknown: a write may have been applied, or may still be
    /// applied later (timeout, connection lost mid-request, leader lost after
    /// proposing).
    Indeterminate(String),
    /// The addresses given to [`Client::connect`] are unusable.
    Config(String),
}

impl ClientError {
    /// True when the cluster definitely applied nothing.
    pub fn is_definite(&self) -> bool {
        !matches!(self, ClientError::Indeterminate(_))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            ClientError::SessionExpired => write!(f, "session expired (nothing applied)"),
            ClientError::Unavailable(m) => write!(f, "unavailable (nothing applied): {m}"),
            ClientError::Indeterminate(m) => write!(f, "outcome unknown: {m}"),
            ClientError::Config(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Result of a `set`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOutput {
    /// Log index of the write.
    pub index: u64,
}

/// Result of a `get`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetOutput {
    /// `None` when the key is absent.
    pub value: Option<Vec<u8>>,
    /// Applied index the read was served at.
    pub index: u64,
}

/// Result of a `cas`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutput {
    /// True when the value was replaced.
    pub applied: bool,
    /// The value before the command (`None` when absent).
    pub previous: Option<Vec<u8>>,
    /// Log index of the command.
    pub index: u64,
}

/// Result of a `noop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoopOutput {
    /// Log index of the entry.
    pub index: u64,
}

/// One node's answer to `Status`, or why it gave none.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// The address the client uses for the node.
    pub addr: String,
    pub status: Result<StatusResponse, String>,
}

/// Connections and what is known about the cluster; shared by forks.
struct Shared {
    addrs: Vec<String>,
    channels: Vec<Channel>,
    /// Node id -> index into `addrs`.
    ids: HashMap<u64, usize>,
    /// Index of the node believed to lead.
    leader: usize,
}

/// A session with a raftkv cluster. See the module documentation.
pub struct Client {
    shared: Arc<Mutex<Shared>>,
    options: ClientOptions,
    client_id: u64,
    /// Sequence number of the next write.
    next_seq: u64,
    /// With [`Routing::Bound`], the position of the node the next attempt
    /// goes to.
    current: AtomicUsize,
    /// Position of the node that answered the last operation that succeeded.
    answered: AtomicUsize,
}

/// How one attempt ended.
enum Attempt<T> {
    Done(T),
    /// Not leader, definitely not applied; the hinted leader's id and address.
    Redirect {
        id: Option<u64>,
        addr: Option<String>,
    },
    /// Definitely not applied, no leader known: back off and try the next node.
    NoLeader(String),
    /// Definitely not applied: the node refused the connection.
    Unreachable(String),
    /// The attempt's outcome is unknown.
    Unknown(String),
    InvalidArgument(String),
    SessionExpired,
}

/// What an operation sends; kept so every retry sends the same request.
#[derive(Clone)]
enum Op {
    Set {
        key: String,
        value: Vec<u8>,
    },
    Get {
        key: String,
    },
    Cas {
        key: String,
        expected: Option<Vec<u8>>,
        new_value: Vec<u8>,
    },
    Noop,
}

enum Reply {
    Set(SetOutput),
    Get(GetOutput),
    Cas(CasOutput),
    Noop(NoopOutput),
}

fn random_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

fn wall_clock_seq() -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(2);
    micros.max(2)
}

/// Checks that `addr` is `HOST:PORT` (or a URI with a port), so that a
/// forgotten port is an error at once rather than a connection refused on
/// port 80 later.
pub fn check_address(addr: &str) -> Result<(), String> {
    let rest = addr.split_once("://").map_or(addr, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let port = match authority.rsplit_once(':') {
        // `[::1]` alone has a colon but no port.
        Some((host, port)) if !port.contains(']') && !host.is_empty() => port,
        _ => return Err(format!("address {addr:?} has no port; expected HOST:PORT")),
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("address {addr:?} has a bad port {port:?}")),
    }
}

fn endpoint(addr: &str, options: &ClientOptions) -> Result<Endpoint, ClientError> {
    check_address(addr).map_err(ClientError::Config)?;
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri)
        .map(|e| {
            e.connect_timeout(options.connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
        })
        .map_err(|e| ClientError::Config(format!("bad address {addr:?}: {e}")))
}

impl Client {
    /// Makes a client for the nodes at `addrs` (`host:port`), asks each for
    /// its `Status` (nodes that do not answer are skipped) and picks the
    /// leader. Fails only when `addrs` is empty or an address is malformed.
    pub async fn connect(addrs: &[String], options: ClientOptions) -> Result<Client, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::Config("no cluster address given".into()));
        }
        let mut channels = Vec::with_capacity(addrs.len());
        for addr in addrs {
            channels.push(endpoint(addr, &options)?.connect_lazy());
        }
        let client_id = if options.client_id == 0 {
            random_id()
        } else {
            options.client_id
        };
        let next_seq = if options.resume_session {
            wall_clock_seq()
        } else {
            1
        };
        let home = match options.routing {
            Routing::Bound { home, .. } => home,
            Routing::Leader => 0,
        };
        let client = Client {
            shared: Arc::new(Mutex::new(Shared {
                addrs: addrs.to_vec(),
                channels,
                ids: HashMap::new(),
                leader: 0,
            })),
            options,
            client_id,
            next_seq,
            current: AtomicUsize::new(home),
            answered: AtomicUsize::new(usize::MAX),
        };
        client.refresh().await;
        Ok(client)
    }

    /// A new session (random client id) over the same connections.
    pub fn fork(&self) -> Client {
        self.fork_with(self.options.clone())
    }

    /// A new session over the same connections with other settings: its
    /// own timeouts and routing (`client_id` 0: a random id; `resume_session`
    /// is ignored).
    pub fn fork_with(&self, options: ClientOptions) -> Client {
        let client_id = if options.client_id == 0 {
            random_id()
        } else {
            options.client_id
        };
        let home = match options.routing {
            Routing::Bound { home, .. } => home,
            Routing::Leader => self.shared.lock().unwrap().leader,
        };
        Client {
            shared: self.shared.clone(),
            options,
            client_id,
            next_seq: 1,
            current: AtomicUsize::new(home),
            answered: AtomicUsize::new(usize::MAX),
        }
    }

    /// Position (in [`Client::addrs`]) of the node that answered the last
    /// operation that succeeded.
    pub fn answered_by(&self) -> Option<usize> {
        match self.answered.load(Ordering::Relaxed) {
            usize::MAX => None,
            i => Some(i),
        }
    }

    /// The current session id (it changes when an expired session is renewed).
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The address of the node currently believed to lead.
    pub fn leader_addr(&self) -> String {
        let shared = self.shared.lock().unwrap();
        shared.addrs[shared.leader].clone()
    }

    /// The addresses the client uses.
    pub fn addrs(&self) -> Vec<String> {
        self.shared.lock().unwrap().addrs.clone()
    }

    /// Asks every node for its `Status`, concurrently, each bounded by the
    /// request timeout. Also updates the id map and the leader guess.
    pub async fn status_all(&self) -> Vec<NodeStatus> {
        self.status_all_inner(false).await
    }

    /// [`Client::status_all`] with each node's state-machine digest.
    pub async fn status_all_with_digest(&self) -> Vec<NodeStatus> {
        self.status_all_inner(true).await
    }

    /// The hashes of the log entries in `[from, to]` held by the node at
    /// position `node` of [`Client::addrs`].
    pub async fn entry_hashes(
        &self,
        node: usize,
        from: u64,
        to: u64,
    ) -> Result<EntryHashesResponse, String> {
        let mut kv = KvClient::new(self.channel(node)?);
        let request = self.bounded(EntryHashesRequest {
            from_index: from,
            to_index: to,
        });
        self.answer(kv.entry_hashes(request)).await
    }

    /// The committed entries in `[from, to]` that the node at position
    /// `node` holds, with their commands (answered by that node alone).
    pub async fn committed_entries(
        &self,
        node: usize,
        from: u64,
        to: u64,
    ) -> Result<CommittedEntriesResponse, String> {
        let mut kv = KvClient::new(self.channel(node)?);
        let request = self.bounded(CommittedEntriesRequest {
            from_index: from,
            to_index: to,
        });
        self.answer(kv.committed_entries(request)).await
    }

    /// `message` as a request the server gives up on after the request
    /// timeout.
    fn bounded<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.options.request_timeout);
        request
    }

    /// The answer of one node, within the request timeout.
    async fn answer<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, String> {
        let timeout = self.options.request_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(describe(&status)),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    fn channel(&self, node: usize) -> Result<Channel, String> {
        let shared = self.shared.lock().unwrap();
        shared
            .channels
            .get(node)
            .cloned()
            .ok_or_else(|| format!("no node at position {node}"))
    }

    async fn status_all_inner(&self, with_digest: bool) -> Vec<NodeStatus> {
        let (addrs, channels) = {
            let shared = self.shared.lock().unwrap();
            (shared.addrs.clone(), shared.channels.clone())
        };
        let timeout = self.options.request_timeout;
        let tasks: Vec<_> = channels
            .into_iter()
            .map(|channel| {
                tokio::spawn(async move {
                    let mut kv = KvClient::new(channel);
                    let mut request = tonic::Request::new(StatusRequest { with_digest });
                    request.set_timeout(timeout);
                    match tokio::time::timeout(timeout, kv.status(request)).await {
                        Ok(Ok(response)) => Ok(response.into_inner()),
                        Ok(Err(status)) => Err(describe(&status)),
                        Err(_) => Err(format!("no answer within {timeout:?}")),
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (addr, task) in addrs.into_iter().zip(tasks) {
            let status = task
                .await
                .unwrap_or_else(|e| Err(format!("status task failed: {e}")));
            out.push(NodeStatus { addr, status });
        }
        self.learn(&out);
        out
    }

    async fn refresh(&self) {
        self.status_all().await;
    }

    /// Records node ids and the leader from status answers. A leader is taken
    /// from the highest term seen, by its own claim first, else by hint.
    fn learn(&self, statuses: &[NodeStatus]) {
        let mut shared = self.shared.lock().unwrap();
        let mut best: Option<(u64, usize)> = None; // (term, index)
        let mut hinted: Option<(u64, u64)> = None; // (term, leader id)
        for (i, s) in statuses.iter().enumerate() {
            if let Ok(st) = &s.status {
                if st.node_id != 0 {
                    shared.ids.insert(st.node_id, i);
                }
                if st.role == crate::proto::Role::Leader as i32
                    && best.is_none_or(|(t, _)| st.term > t)
                {
                    best = Some((st.term, i));
                }
                if st.leader_id != 0 && hinted.is_none_or(|(t, _)| st.term > t) {
                    hinted = Some((st.term, st.leader_id));
                }
            }
        }
        if let Some((_, i)) = best {
            shared.leader = i;
        } else if let Some((_, id)) = hinted
            && let Some(&i) = shared.ids.get(&id)
        {
            shared.leader = i;
        }
    }

    /// Sets `key` to `value`.
    pub async fn set(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
    ) -> Result<SetOutput, ClientError> {
        let op = Op::Set {
            key: key.into(),
            value: value.into(),
        };
        match self.write(op).await? {
            Reply::Set(out) => Ok(out),
            _ => unreachable!("set answers with a set reply"),
        }
    }

    /// Reads `key` linearizably. A read changes nothing, so any error means
    /// no effect; `Indeterminate` only says the read got no answer.
    pub async fn get(&mut self, key: impl Into<String>) -> Result<GetOutput, ClientError> {
        let op = Op::Get { key: key.into() };
        match self.run(&op, None).await? {
            Reply::Get(out) => Ok(out),
            _ => unreachable!("get answers with a get reply"),
        }
    }

    /// Replaces the value of `key` by `new_value` if it equals `expected`
    /// (`None`: the key must be absent).
    pub async fn cas(
        &mut self,
        key: impl Into<String>,
        expected: Option<Vec<u8>>,
        new_value: impl Into<Vec<u8>>,
    ) -> Result<CasOutput, ClientError> {
        let op = Op::Cas {
            key: key.into(),
            expected,
            new_value: new_value.into(),
        };
        match self.write(op).await? {
            Reply::Cas(out) => Ok(out),
            _ => unreachable!("cas answers with a cas reply"),
        }
    }

    /// Commits an entry that changes nothing.
    pub async fn noop(&mut self) -> Result<NoopOutput, ClientError> {
        match self.write(Op::Noop).await? {
            Reply::Noop(out) => Ok(out),
            _ => unreachable!("noop answers with a noop reply"),
        }
    }

    /// Runs a write under the session: one sequence number for all its
    /// attempts. The number is used up unless the write definitely failed
    /// before any attempt could have been applied (the session then still
    /// expects it next).
    async fn write(&mut self, op: Op) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.options.overall_timeout;
        loop {
            let session = Session {
                client_id: self.client_id,
                seq: self.next_seq,
            };
            let result = self.run_until(&op, Some(session), deadline).await;
            match result {
                Ok(reply) => {
                    self.next_seq += 1;
                    return Ok(reply);
                }
                Err(RunError::Definite(ClientError::SessionExpired)) => {
                    if self.options.resume_session && self.next_seq != 1 {
                        // No session under this id yet: open it.
                        self.next_seq = 1;
                        continue;
                    }
                    self.client_id = random_id();
                    self.next_seq = 1;
                    if self.options.renew_expired_session && Instant::now() < deadline {
                        continue;
                    }
                    return Err(ClientError::SessionExpired);
                }
                Err(RunError::Definite(e)) => return Err(e),
                Err(RunError::MaybeApplied(e)) => {
                    // The seq may have been applied; never reuse it for
                    // another command.
                    self.next_seq += 1;
                    return Err(e);
                }
            }
        }
    }

    async fn run(&self, op: &Op, session: Option<Session>) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.options.overall_timeout;
        self.run_until(op, session, deadline)
            .await
            .map_err(RunError::into_error)
    }

    /// Sends `op` until it succeeds, definitely fails, or `deadline` passes.
    async fn run_until(
        &self,
        op: &Op,
        session: Option<Session>,
        deadline: Instant,
    ) -> Result<Reply, RunError> {
        let mut backoff = self.options.backoff_initial;
        let mut maybe_applied: Option<String> = None;
        let mut last_error = String::from("no attempt made");
        let mut redirects_in_a_row = 0u32;
        if let Routing::Bound {
            home,
            return_home: true,
            ..
        } = self.options.routing
        {
            self.current.store(home, Ordering::Relaxed);
        }
        let pinned = matches!(self.options.routing, Routing::Bound { pinned: true, .. });
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(match maybe_applied {
                    Some(m) => RunError::MaybeApplied(ClientError::Indeterminate(format!(
                        "{m}; last error: {last_error}"
                    ))),
                    None => RunError::Definite(ClientError::Unavailable(last_error)),
                });
            }
            let attempt_timeout = self.options.request_timeout.min(deadline - now);
            let (target, channel, addr) = {
                let shared = self.shared.lock().unwrap();
                let i = match self.options.routing {
                    Routing::Leader => shared.leader,
                    Routing::Bound { .. } => {
                        self.current.load(Ordering::Relaxed) % shared.addrs.len()
                    }
                };
                (i, shared.channels[i].clone(), shared.addrs[i].clone())
            };
            let attempt = attempt(channel, op, session, attempt_timeout).await;
            match attempt {
                Attempt::Done(reply) => {
                    self.answered.store(target, Ordering::Relaxed);
                    return Ok(reply);
                }
                Attempt::InvalidArgument(m) => {
                    return Err(match maybe_applied {
                        Some(prev) => RunError::MaybeApplied(ClientError::Indeterminate(format!(
                            "{prev}; then rejected: {m}"
                        ))),
                        None => RunError::Definite(ClientError::InvalidArgument(m)),
                    });
                }
                Attempt::SessionExpired => {
                    return Err(match maybe_applied {
                        Some(prev) => RunError::MaybeApplied(ClientError::Indeterminate(format!(
                            "{prev}; then the session expired"
                        ))),
                        None => RunError::Definite(ClientError::SessionExpired),
                    });
                }
                Attempt::Redirect { id, addr: hint } => {
                    last_error = format!("{addr}: not leader");
                    if pinned {
                        return Err(match maybe_applied {
                            Some(m) => RunError::MaybeApplied(ClientError::Indeterminate(format!(
                                "{m}; last error: {last_error}"
                            ))),
                            None => RunError::Definite(ClientError::Unavailable(last_error)),
                        });
                    }
                    redirects_in_a_row += 1;
                    if id.is_some_and(|id| !self.knows(id)) {
                        self.refresh().await;
                    }
                    let next = match self.resolve_hint(id, hint.as_deref()) {
                        Some(l) if l != target => Some(l),
                        _ => None,
                    };
                    match next {
                        Some(l) if redirects_in_a_row <= 3 => {
                            match self.options.routing {
                                Routing::Leader => self.shared.lock().unwrap().leader = l,
                                Routing::Bound { .. } => self.current.store(l, Ordering::Relaxed),
                            }
                            continue; // follow the hint at once
                        }
                        _ => {
                            // Hint missing, stale or bouncing.
                            self.pause(&mut backoff, deadline).await;
                            self.after_failure(target, false).await;
                            redirects_in_a_row = 0;
                        }
                    }
                }
                Attempt::NoLeader(m) => {
                    last_error = format!("{addr}: {m}");
                    redirects_in_a_row = 0;
                    self.pause(&mut backoff, deadline).await;
                    // A node that knows no leader may be cut off from the
                    // others for long: like an unreachable one.
                    self.after_failure(target, true).await;
                }
                Attempt::Unreachable(m) => {
                    last_error = format!("{addr}: {m}");
                    redirects_in_a_row = 0;
                    self.pause(&mut backoff, deadline).await;
                    self.after_failure(target, true).await;
                }
                Attempt::Unknown(m) => {
                    last_error = format!("{addr}: {m}");
                    if session.is_some() {
                        maybe_applied.get_or_insert_with(|| format!("{addr}: {m}"));
                    } else {
                        // A read has no effect: report it as unavailable.
                    }
                    redirects_in_a_row = 0;
                    self.pause(&mut backoff, deadline).await;
                    self.after_failure(target, false).await;
                }
            }
        }
    }

    /// After a failed attempt at node `target`: with [`Routing::Leader`],
    /// ask every node who leads and, if that points nowhere new, try the
    /// next node; a bound client stays, unless the node is `unreachable`
    /// (refuses connections or knows no leader) and the client does not
    /// return home.
    async fn after_failure(&self, target: usize, unreachable: bool) {
        match self.options.routing {
            Routing::Leader => {
                self.refresh().await;
                self.rotate_if_unchanged(target);
            }
            Routing::Bound { return_home, .. } => {
                if unreachable && !return_home {
                    let n = self.shared.lock().unwrap().addrs.len();
                    self.current.store((target + 1) % n, Ordering::Relaxed);
                }
            }
        }
    }

    /// True when the address of node `id` is known.
    fn knows(&self, id: u64) -> bool {
        self.shared.lock().unwrap().ids.contains_key(&id)
    }

    /// After a failed attempt at node `target`: if status answers did not
    /// point elsewhere, try the next node.
    fn rotate_if_unchanged(&self, target: usize) {
        let mut shared = self.shared.lock().unwrap();
        if shared.leader == target {
            shared.leader = (target + 1) % shared.addrs.len();
        }
    }

    async fn pause(&self, backoff: &mut Duration, deadline: Instant) {
        let jitter = 0.5 + rand::random::<f64>(); // 0.5x .. 1.5x
        let pause = backoff.mul_f64(jitter);
        let until = (Instant::now() + pause).min(deadline);
        tokio::time::sleep_until(until.into()).await;
        *backoff = (*backoff * 2).min(self.options.backoff_max);
    }

    /// Index of the node with id `id`, or of `addr` (added when new).
    fn resolve_hint(&self, id: Option<u64>, addr: Option<&str>) -> Option<usize> {
        let mut shared = self.shared.lock().unwrap();
        if let Some(id) = id
            && let Some(&i) = shared.ids.get(&id)
        {
            return Some(i);
        }
        let addr = addr?;
        if let Some(i) = shared.addrs.iter().position(|a| a == addr) {
            return Some(i);
        }
        let channel = endpoint(addr, &self.options).ok()?.connect_lazy();
        shared.addrs.push(addr.to_string());
        shared.channels.push(channel);
        let i = shared.addrs.len() - 1;
        if let Some(id) = id {
            shared.ids.insert(id, i);
        }
        Some(i)
    }
}

enum RunError {
    /// Nothing was applied.
    Definite(ClientError),
    /// An attempt may have been applied.
    MaybeApplied(ClientError),
}

impl RunError {
    fn into_error(self) -> ClientError {
        match self {
            RunError::Definite(e) | RunError::MaybeApplied(e) => e,
        }
    }
}

/// Sends one request to one node.
async fn attempt(
    channel: Channel,
    op: &Op,
    session: Option<Session>,
    timeout: Duration,
) -> Attempt<Reply> {
    let mut kv = KvClient::new(channel);
    let call = async {
        match op.clone() {
            Op::Set { key, value } => {
                let mut r = tonic::Request::new(SetRequest {
                    session,
                    key,
                    value,
                });
                r.set_timeout(timeout);
                kv.set(r).await.map(|resp| {
                    Reply::Set(SetOutput {
                        index: resp.into_inner().index,
                    })
                })
            }
            Op::Get { key } => {
                let mut r = tonic::Request::new(GetRequest { key });
                r.set_timeout(timeout);
                kv.get(r).await.map(|resp| {
                    let resp = resp.into_inner();
                    Reply::Get(GetOutput {
                        value: resp.value,
                        index: resp.index,
                    })
                })
            }
            Op::Cas {
                key,
                expected,
                new_value,
            } => {
                let mut r = tonic::Request::new(CasRequest {
                    session,
                    key,
                    expected,
                    new_value,
                });
                r.set_timeout(timeout);
                kv.cas(r).await.map(|resp| {
                    let resp = resp.into_inner();
                    Reply::Cas(CasOutput {
                        applied: resp.applied,
                        previous: resp.previous,
                        index: resp.index,
                    })
                })
            }
            Op::Noop => {
                let mut r = tonic::Request::new(NoOpRequest { session });
                r.set_timeout(timeout);
                kv.no_op(r).await.map(|resp| {
                    Reply::Noop(NoopOutput {
                        index: resp.into_inner().index,
                    })
                })
            }
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Attempt::Unknown(format!("no answer within {timeout:?}")),
        Ok(Ok(reply)) => Attempt::Done(reply),
        Ok(Err(status)) => classify(&status),
    }
}

/// Maps a gRPC status onto what the client may conclude (see the node's
/// status contract in `proto/raftkv/v1/kv.proto`).
fn classify<T>(status: &Status) -> Attempt<T> {
    let meta = status.metadata();
    let outcome_unknown = meta
        .get("outcome")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "unknown");
    if outcome_unknown {
        return Attempt::Unknown(describe(status));
    }
    match status.code() {
        Code::InvalidArgument => Attempt::InvalidArgument(status.message().to_string()),
        Code::FailedPrecondition => {
            if meta.get("session-expired").is_some() {
                Attempt::SessionExpired
            } else if meta.get("leader-id").is_some()
                || meta.get("leader-addr").is_some()
                || status.message().starts_with("not leader")
            {
                let id = meta
                    .get("leader-id")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|&id| id != 0);
                let addr = meta
                    .get("leader-addr")
                    .and_then(|v| v.to_str().ok())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                Attempt::Redirect { id, addr }
            } else {
                Attempt::Unknown(describe(status))
            }
        }
        Code::Unavailable if status.message().starts_with("no leader") => {
            Attempt::NoLeader(status.message().to_string())
        }
        Code::Unavailable if never_sent(status) => Attempt::Unreachable(describe(status)),
        _ => Attempt::Unknown(describe(status)),
    }
}

/// True when the request cannot have reached the node (connection refused).
fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = err.source();
    }
    let text = status.message();
    text.contains("Connection refused") || text.contains("tcp connect error")
}

fn describe(status: &Status) -> String {
    let message = status.message();
    let mut text = if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{:?}: {message}", status.code())
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        let s = err.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    //! The client against in-process fake nodes that follow the node's status
    //! contract, with faults the tests switch on.

    use super::*;
    use crate::proto::kv_server::{Kv, KvServer};
    use crate::proto::{CasResponse, GetResponse, NoOpResponse, Role, SetResponse, StatusResponse};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tonic::{Request, Response};

    /// State shared by the fake nodes of one cluster.
    #[derive(Default)]
    struct World {
        leader: AtomicU64,
        /// Addresses by node id (index id-1).
        addrs: Mutex<Vec<String>>,
        /// Every (client_id, seq) a leader received for a write, in order.
        received: Mutex<Vec<(u64, u64)>>,
        /// Applied sessions: client_id -> (last seq, reply index).
        sessions: Mutex<HashMap<u64, (u64, u64)>>,
        data: Mutex<HashMap<String, Vec<u8>>>,
        index: AtomicU64,
        /// Apply the next write but answer only after the client gave up.
        stall_next_reply: AtomicBool,
        /// Answer every write with "outcome unknown".
        always_unknown: AtomicBool,
        /// Answer writes with seq > 1 of unknown sessions with session-expired.
        enforce_sessions: AtomicBool,
        /// The node id of every get or write that reached a node, in order.
        visits: Mutex<Vec<u64>>,
    }

    struct FakeNode {
        id: u64,
        world: Arc<World>,
    }

    impl FakeNode {
        fn check_leader(&self) -> Result<(), Status> {
            self.world.visits.lock().unwrap().push(self.id);
            let leader = self.world.leader.load(Ordering::SeqCst);
            if leader == self.id {
                return Ok(());
            }
            if leader == 0 {
                return Err(Status::unavailable("no leader"));
            }
            let addr = self.world.addrs.lock().unwrap()[leader as usize - 1].clone();
            let mut status = Status::failed_precondition(format!(
                "not leader; leader is node {leader} at {addr}"
            ));
            status
                .metadata_mut()
                .insert("leader-id", leader.to_string().parse().unwrap());
            status
                .metadata_mut()
                .insert("leader-addr", addr.parse().unwrap());
            Err(status)
        }

        /// Applies a write once per (client_id, seq); returns its index.
        async fn write(
            &self,
            session: Option<Session>,
            apply: impl FnOnce(&World),
        ) -> Result<u64, Status> {
            self.check_leader()?;
            let s = session.ok_or_else(|| Status::invalid_argument("missing session"))?;
            if s.client_id == 0 || s.seq == 0 {
                return Err(Status::invalid_argument(
                    "client_id and seq must be non-zero",
                ));
            }
            let w = &self.world;
            w.received.lock().unwrap().push((s.client_id, s.seq));
            if w.always_unknown.load(Ordering::SeqCst) {
                let mut st = Status::unavailable("leadership lost");
                st.metadata_mut()
                    .insert("outcome", "unknown".parse().unwrap());
                return Err(st);
            }
            let index = {
                let mut sessions = w.sessions.lock().unwrap();
                match sessions.get(&s.client_id).copied() {
                    Some((last, index)) if last == s.seq => index,
                    None if s.seq > 1 && w.enforce_sessions.load(Ordering::SeqCst) => {
                        let mut st = Status::failed_precondition("session expired");
                        st.metadata_mut()
                            .insert("session-expired", "1".parse().unwrap());
                        return Err(st);
                    }
                    _ => {
                        apply(w);
                        let index = w.index.fetch_add(1, Ordering::SeqCst) + 1;
                        sessions.insert(s.client_id, (s.seq, index));
                        index
                    }
                }
            };
            if w.stall_next_reply.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Ok(index)
        }
    }

    #[tonic::async_trait]
    impl Kv for FakeNode {
        async fn set(&self, r: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
            let r = r.into_inner();
            if r.key.is_empty() {
                return Err(Status::invalid_argument("empty key"));
            }
            let index = self
                .write(r.session, |w| {
                    w.data
                        .lock()
                        .unwrap()
                        .insert(r.key.clone(), r.value.clone());
                })
                .await?;
            Ok(Response::new(SetResponse { index }))
        }

        async fn get(&self, r: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
            self.check_leader()?;
            let value = self
                .world
                .data
                .lock()
                .unwrap()
                .get(&r.into_inner().key)
                .cloned();
            Ok(Response::new(GetResponse {
                value,
                index: self.world.index.load(Ordering::SeqCst),
            }))
        }

        async fn no_op(&self, r: Request<NoOpRequest>) -> Result<Response<NoOpResponse>, Status> {
            let index = self.write(r.into_inner().session, |_| {}).await?;
            Ok(Response::new(NoOpResponse { index }))
        }

        async fn cas(&self, r: Request<CasRequest>) -> Result<Response<CasResponse>, Status> {
            let r = r.into_inner();
            let outcome = Arc::new(Mutex::new((false, None)));
            let o = outcome.clone();
            let index = self
                .write(r.session, |w| {
                    let mut data = w.data.lock().unwrap();
                    let previous = data.get(&r.key).cloned();
                    let applied = previous == r.expected;
                    if applied {
                        data.insert(r.key.clone(), r.new_value.clone());
                    }
                    *o.lock().unwrap() = (applied, previous);
                })
                .await?;
            let (applied, previous) = outcome.lock().unwrap().clone();
            Ok(Response::new(CasResponse {
                applied,
                previous,
                index,
            }))
        }

        async fn status(
            &self,
            _: Request<StatusRequest>,
        ) -> Result<Response<StatusResponse>, Status> {
            let leader = self.world.leader.load(Ordering::SeqCst);
            Ok(Response::new(StatusResponse {
                node_id: self.id,
                role: if leader == self.id {
                    Role::Leader
                } else {
                    Role::Follower
                } as i32,
                term: 1,
                leader_id: leader,
                ..Default::default()
            }))
        }

        async fn entry_hashes(
            &self,
            _: Request<EntryHashesRequest>,
        ) -> Result<Response<EntryHashesResponse>, Status> {
            Ok(Response::new(EntryHashesResponse::default()))
        }

        async fn committed_entries(
            &self,
            _: Request<CommittedEntriesRequest>,
        ) -> Result<Response<CommittedEntriesResponse>, Status> {
            Ok(Response::new(CommittedEntriesResponse::default()))
        }
    }

    #[test]
    fn addresses_need_a_port() {
        for ok in [
            "127.0.0.1:7001",
            "localhost:1",
            "[::1]:7001",
            "http://h:80/",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("127.0.0.1", "no port"),
            ("[::1]", "no port"),
            ("http://host", "no port"),
            (":7001", "no port"),
            ("h:0", "bad port"),
            ("h:70000", "bad port"),
            ("h:x", "bad port"),
        ] {
            let err = check_address(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    /// Starts `n` fake nodes on free loopback ports; node 1..=n.
    async fn fake_cluster(n: u64, leader: u64) -> (Arc<World>, Vec<String>) {
        let world = Arc::new(World::default());
        world.leader.store(leader, Ordering::SeqCst);
        let mut addrs = Vec::new();
        for id in 1..=n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap().to_string());
            let node = FakeNode {
                id,
                world: world.clone(),
            };
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(KvServer::new(node))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
        }
        *world.addrs.lock().unwrap() = addrs.clone();
        (world, addrs)
    }

    fn fast() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_millis(300),
            overall_timeout: Duration::from_secs(2),
            ..ClientOptions::default()
        }
    }

    #[tokio::test]
    async fn follows_a_redirect_from_a_follower_it_was_given_alone() {
        let (world, addrs) = fake_cluster(3, 3).await;
        // Only node 1's address: the client learns node 3 from the hint.
        let mut client = Client::connect(&addrs[..1], fast()).await.unwrap();
        let out = client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(out.index, 1);
        assert_eq!(client.get("k").await.unwrap().value, Some(b"v".to_vec()));
        assert_eq!(client.leader_addr(), addrs[2]);
        assert_eq!(world.received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn finds_a_new_leader_and_numbers_writes() {
        let (world, addrs) = fake_cluster(3, 1).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        client.set("a", b"1".to_vec()).await.unwrap();
        world.leader.store(2, Ordering::SeqCst);
        client.noop().await.unwrap();
        let cas = client
            .cas("a", Some(b"1".to_vec()), b"2".to_vec())
            .await
            .unwrap();
        assert!(cas.applied);
        let cas = client.cas("a", None, b"3".to_vec()).await.unwrap();
        assert!(!cas.applied);
        assert_eq!(cas.previous, Some(b"2".to_vec()));
        let id = client.client_id();
        let seqs: Vec<u64> = world
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|&(c, s)| {
                assert_eq!(c, id);
                s
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_reply_reuses_the_sequence_number() {
        let (world, addrs) = fake_cluster(3, 1).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        world.stall_next_reply.store(true, Ordering::SeqCst);
        let out = client.set("k", b"v".to_vec()).await.unwrap();
        let received = world.received.lock().unwrap().clone();
        assert!(received.len() >= 2, "retried: {received:?}");
        assert!(received.iter().all(|&r| r == received[0]), "{received:?}");
        // Applied once: the retry got the stored reply.
        assert_eq!(out.index, 1);
        assert_eq!(world.index.load(Ordering::SeqCst), 1);
        client.set("k", b"w".to_vec()).await.unwrap();
        assert_eq!(world.received.lock().unwrap().last().unwrap().1, 2);
    }

    #[tokio::test]
    async fn unknown_outcome_is_indeterminate_and_uses_up_the_seq() {
        let (world, addrs) = fake_cluster(1, 1).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        world.always_unknown.store(true, Ordering::SeqCst);
        let err = client.set("k", b"v".to_vec()).await.unwrap_err();
        assert!(matches!(err, ClientError::Indeterminate(_)), "{err}");
        assert!(!err.is_definite());
        world.always_unknown.store(false, Ordering::SeqCst);
        world.received.lock().unwrap().clear();
        client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(world.received.lock().unwrap()[0].1, 2);
    }

    #[tokio::test]
    async fn invalid_argument_is_definite_and_not_retried() {
        let (world, addrs) = fake_cluster(1, 1).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        let err = client.set("", b"v".to_vec()).await.unwrap_err();
        assert_eq!(err, ClientError::InvalidArgument("empty key".into()));
        assert!(err.is_definite());
        // The seq was not used up: the next write opens the session at 1.
        client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(world.received.lock().unwrap()[0].1, 1);
    }

    #[tokio::test]
    async fn no_leader_until_the_deadline_is_definite() {
        let (_world, addrs) = fake_cluster(3, 0).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        let started = Instant::now();
        let err = client.noop().await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn connection_refused_everywhere_is_definite() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addrs = vec![format!("127.0.0.1:{port}")];
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        let err = client.set("k", b"v".to_vec()).await.unwrap_err();
        assert!(err.is_definite(), "{err}");
        let status = client.status_all().await;
        assert!(status[0].status.is_err());
    }

    #[tokio::test]
    async fn a_resumed_session_falls_back_to_a_new_one() {
        let (world, addrs) = fake_cluster(1, 1).await;
        world.enforce_sessions.store(true, Ordering::SeqCst);
        let options = ClientOptions {
            client_id: 42,
            resume_session: true,
            ..fast()
        };
        let mut client = Client::connect(&addrs, options.clone()).await.unwrap();
        client.set("k", b"v".to_vec()).await.unwrap();
        let received = world.received.lock().unwrap().clone();
        assert_eq!(received.len(), 2);
        assert!(received[0].1 > 1);
        assert_eq!(received[1], (42, 1));
        // A second process with the same id continues the session.
        let mut again = Client::connect(&addrs, options).await.unwrap();
        again.set("k", b"w".to_vec()).await.unwrap();
        let last = *world.received.lock().unwrap().last().unwrap();
        assert_eq!(last.0, 42);
        assert!(last.1 > 1);
        assert_eq!(world.index.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_session_is_renewed_under_a_new_id() {
        let (world, addrs) = fake_cluster(1, 1).await;
        let mut client = Client::connect(&addrs, fast()).await.unwrap();
        client.set("k", b"v".to_vec()).await.unwrap();
        let old = client.client_id();
        world.sessions.lock().unwrap().clear(); // the cluster forgot it
        world.enforce_sessions.store(true, Ordering::SeqCst);
        client.set("k", b"w".to_vec()).await.unwrap();
        assert_ne!(client.client_id(), old);
        let received = world.received.lock().unwrap().clone();
        assert_eq!(received.last().unwrap(), &(client.client_id(), 1));
    }

    fn bound(home: usize, return_home: bool) -> ClientOptions {
        ClientOptions {
            routing: Routing::Bound {
                home,
                return_home,
                pinned: false,
            },
            ..fast()
        }
    }

    #[tokio::test]
    async fn a_bound_client_starts_at_its_node_and_follows_a_redirect() {
        let (world, addrs) = fake_cluster(3, 3).await;
        let base = Client::connect(&addrs, fast()).await.unwrap();
        let mut client = base.fork_with(bound(0, true));
        client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(client.answered_by(), Some(2));
        // Back at its own node for the next operation, then redirected again.
        client.get("k").await.unwrap();
        assert_eq!(*world.visits.lock().unwrap(), vec![1, 3, 1, 3]);
        // Its node now leads: no redirect.
        world.leader.store(1, Ordering::SeqCst);
        client.noop().await.unwrap();
        assert_eq!(client.answered_by(), Some(0));
        assert_eq!(world.visits.lock().unwrap().last(), Some(&1));
    }

    #[tokio::test]
    async fn a_bound_client_that_does_not_return_home_keeps_the_node_it_found() {
        let (world, addrs) = fake_cluster(3, 2).await;
        let base = Client::connect(&addrs, fast()).await.unwrap();
        let mut client = base.fork_with(bound(0, false));
        client.set("k", b"v".to_vec()).await.unwrap();
        client.set("k", b"w".to_vec()).await.unwrap();
        assert_eq!(*world.visits.lock().unwrap(), vec![1, 2, 2]);
        // A node that knows no leader is left for the next, as one that
        // refuses connections is: nothing applied, the other nodes asked.
        world.leader.store(0, Ordering::SeqCst);
        world.visits.lock().unwrap().clear();
        let err = client.get("k").await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        let visits = world.visits.lock().unwrap().clone();
        assert_eq!(visits.first(), Some(&2), "{visits:?}");
        assert!(visits.contains(&3) && visits.contains(&1), "{visits:?}");
    }

    #[tokio::test]
    async fn a_pinned_client_never_leaves_its_node() {
        let (world, addrs) = fake_cluster(3, 3).await;
        let base = Client::connect(&addrs, fast()).await.unwrap();
        let mut client = base.fork_with(ClientOptions {
            routing: Routing::Bound {
                home: 0,
                return_home: true,
                pinned: true,
            },
            ..fast()
        });
        // A not-leader answer ends the operation: nothing applied.
        let err = client.set("k", b"v".to_vec()).await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        assert_eq!(*world.visits.lock().unwrap(), vec![1]);
        // Its node leads: it is answered there.
        world.leader.store(1, Ordering::SeqCst);
        client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(client.answered_by(), Some(0));
        // No leader anywhere: it waits at its node until the deadline.
        world.leader.store(0, Ordering::SeqCst);
        world.visits.lock().unwrap().clear();
        let err = client.get("k").await.unwrap_err();
        assert!(matches!(err, ClientError::Unavailable(_)), "{err}");
        let visits = world.visits.lock().unwrap().clone();
        assert!(
            visits.len() >= 2 && visits.iter().all(|&v| v == 1),
            "{visits:?}"
        );
    }

    #[tokio::test]
    async fn a_bound_client_moves_on_from_a_node_that_refuses_connections() {
        let (world, mut addrs) = fake_cluster(2, 2).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        addrs.insert(0, format!("127.0.0.1:{port}"));
        let base = Client::connect(&addrs, fast()).await.unwrap();
        // Bound to the dead address: moves to the next, which redirects to
        // the leader.
        let mut client = base.fork_with(bound(0, false));
        client.set("k", b"v".to_vec()).await.unwrap();
        assert_eq!(client.answered_by(), Some(2));
        assert_eq!(*world.visits.lock().unwrap(), vec![1, 2]);
        // One that returns home keeps trying the dead node.
        let mut sticky = base.fork_with(bound(0, true));
        let err = sticky.set("k", b"w".to_vec()).await.unwrap_err();
        assert!(err.is_definite(), "{err}");
    }
}
