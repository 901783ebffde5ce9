//! Per-link TCP proxies: the network the nemesis partitions and slows.
//!
//! For every ordered pair of nodes (i, j) the harness listens on a loopback
//! port that node i is told is j's address. Everything node i sends to j goes
//! through that link's proxy, which forwards to j's real port. Raft messages
//! are one-way RPCs that each node sends over its own connection (a reply is a
//! new message back over the receiver's connection), so a link's mode acts on
//! i -> j only: one-way partitions and one-way slowness need nothing more.
//!
//! A link is in a [`LinkMode`]:
//! - blocked: its open connections are closed and every new one is closed as
//!   soon as it is accepted, so the sender sees a connection error and keeps
//!   retrying;
//! - slowed: every chunk of bytes from i to j is held for a delay plus a
//!   random jitter (never reordered: TCP keeps order), and while the link
//!   stalls nothing is passed on at all (bytes queue, then the sender's
//!   writes block).
//!
//! No root, no iptables: it runs the same on a laptop and in CI.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub type NodeId = u64;

/// An ordered pair of nodes: traffic from `.0` to `.1`.
pub type LinkId = (NodeId, NodeId);

/// What a link does with the traffic it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkMode {
    /// Nothing passes.
    pub blocked: bool,
    /// Every chunk is held this long before it is passed on.
    pub delay: Duration,
    /// Plus a random extra delay of up to this.
    pub jitter: Duration,
    /// Nothing is passed on while set; bytes queue until it clears.
    pub stalled: bool,
}

impl LinkMode {
    pub const OPEN: LinkMode = LinkMode {
        blocked: false,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        stalled: false,
    };
}

/// One direction of the network between two nodes.
struct Link {
    listen: SocketAddr,
    mode: watch::Sender<LinkMode>,
    task: JoinHandle<()>,
}

/// The proxies for all ordered pairs of a cluster.
pub struct Proxies {
    links: BTreeMap<LinkId, Link>,
    forwarded_connections: Arc<AtomicU64>,
}

impl Proxies {
    /// Binds one proxy per ordered pair of distinct nodes in `targets`
    /// (node id -> that node's real address). Must run inside a Tokio runtime.
    pub async fn start(targets: &BTreeMap<NodeId, SocketAddr>) -> std::io::Result<Proxies> {
        let forwarded_connections = Arc::new(AtomicU64::new(0));
        let mut links = BTreeMap::new();
        for &from in targets.keys() {
            for (&to, &target) in targets {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let listen = listener.local_addr()?;
                let (mode, mode_rx) = watch::channel(LinkMode::OPEN);
                let task = tokio::spawn(serve(
                    listener,
                    target,
                    mode_rx,
                    forwarded_connections.clone(),
                ));
                links.insert((from, to), Link { listen, mode, task });
            }
        }
        Ok(Proxies {
            links,
            forwarded_connections,
        })
    }

    /// The address node `from` must use to reach node `to`.
    pub fn address(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(|l| l.listen)
    }

    /// Puts every link in the mode `modes` gives it; links not in `modes`
    /// are open.
    pub fn set_modes(&self, modes: &BTreeMap<LinkId, LinkMode>) {
        for (pair, link) in &self.links {
            let want = modes.get(pair).copied().unwrap_or(LinkMode::OPEN);
            link.mode.send_if_modified(|m| {
                let changed = *m != want;
                *m = want;
                changed
            });
        }
    }

    /// Blocks exactly the links in `cut` and opens all others.
    #[cfg(test)]
    pub fn set_cut(&self, cut: &std::collections::BTreeSet<LinkId>) {
        let modes = cut
            .iter()
            .map(|&pair| {
                (
                    pair,
                    LinkMode {
                        blocked: true,
                        ..LinkMode::OPEN
                    },
                )
            })
            .collect();
        self.set_modes(&modes);
    }

    /// Opens every link.
    pub fn heal(&self) {
        self.set_modes(&BTreeMap::new());
    }

    /// The links currently blocked.
    #[cfg(test)]
    pub fn blocked(&self) -> std::collections::BTreeSet<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| l.mode.borrow().blocked)
            .map(|(p, _)| *p)
            .collect()
    }

    /// How many connections have been forwarded in total (to tell a test
    /// that traffic really went through the proxies).
    pub fn forwarded_connections(&self) -> u64 {
        self.forwarded_connections.load(Ordering::Relaxed)
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for link in self.links.values() {
            link.task.abort();
        }
    }
}

/// Accepts connections for one link until the proxy is dropped.
async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    mode: watch::Receiver<LinkMode>,
    forwarded: Arc<AtomicU64>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((inbound, _)) = accepted else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if mode.borrow().blocked {
            drop(inbound);
            continue;
        }
        let _ = inbound.set_nodelay(true);
        forwarded.fetch_add(1, Ordering::Relaxed);
        connections.spawn(forward(inbound, target, mode.clone()));
    }
    // `connections` is dropped with the task, which aborts every forwarder.
}

/// Forwards one connection until either side closes or the link is blocked:
/// the link's direction through [`pass_on`], replies (HTTP/2 control frames)
/// unchanged.
async fn forward(inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<LinkMode>) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    let (in_read, mut in_write) = inbound.into_split();
    let (mut out_read, out_write) = outbound.into_split();
    tokio::select! {
        _ = pass_on(in_read, out_write, mode.clone()) => {}
        _ = tokio::io::copy(&mut out_read, &mut in_write) => {}
        _ = mode.wait_for(|m| m.blocked) => {}
    }
    // Dropping both streams closes them; a plain close is enough for gRPC to
    // notice.
}

/// Copies `from` to `to`, holding each chunk for the link's delay and
/// jitter and while it stalls. A reader and a writer joined by a bounded
/// queue: the reader stamps each chunk with the time it may leave (never
/// before the previous one), the writer waits for that time.
async fn pass_on(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mode: watch::Receiver<LinkMode>) {
    let (queue, mut queued) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let read_mode = mode.clone();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_due = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let m = *read_mode.borrow();
            let mut hold = m.delay;
            if !m.jitter.is_zero() {
                hold += m.jitter.mul_f64(rand::rng().random::<f64>());
            }
            let due = (Instant::now() + hold).max(last_due);
            last_due = due;
            if queue.send((due, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        let mut mode = mode;
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if mode.wait_for(|m| !m.stalled).await.is_err() {
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    // The writer drains what the reader queued before the reader's end
    // closes the queue.
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server standing in for a node.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        Ok(buf.to_vec())
    }

    async fn three_nodes() -> (Proxies, BTreeMap<NodeId, SocketAddr>) {
        let mut targets = BTreeMap::new();
        for id in 1..=3 {
            targets.insert(id, echo_server().await);
        }
        (Proxies::start(&targets).await.unwrap(), targets)
    }

    #[tokio::test]
    async fn forwards_each_ordered_pair_to_its_target() {
        let (proxies, _) = three_nodes().await;
        for from in 1..=3 {
            for to in 1..=3 {
                if from == to {
                    assert!(proxies.address(from, to).is_none());
                    continue;
                }
                let addr = proxies.address(from, to).unwrap();
                assert_eq!(roundtrip(addr).await.unwrap(), b"ping");
            }
        }
        assert_eq!(proxies.forwarded_connections(), 6);
    }

    #[tokio::test]
    async fn blocking_cuts_one_direction_and_open_connections() {
        let (proxies, _) = three_nodes().await;
        let a12 = proxies.address(1, 2).unwrap();
        let a21 = proxies.address(2, 1).unwrap();
        // An open connection before the cut.
        let mut open = TcpStream::connect(a12).await.unwrap();
        open.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.unwrap();

        proxies.set_cut(&BTreeSet::from([(1, 2)]));
        assert_eq!(proxies.blocked(), BTreeSet::from([(1, 2)]));
        // The open connection is closed: a read returns EOF or an error.
        let r = tokio::time::timeout(Duration::from_secs(2), open.read(&mut one))
            .await
            .expect("blocked connection must be closed promptly");
        assert!(matches!(r, Ok(0) | Err(_)));
        // New connections on the cut link fail; the reverse link still works.
        assert!(roundtrip(a12).await.is_err());
        assert_eq!(roundtrip(a21).await.unwrap(), b"ping");

        proxies.heal();
        assert!(proxies.blocked().is_empty());
        assert_eq!(roundtrip(a12).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn a_slow_link_delays_one_direction_and_a_stall_holds_it() {
        let (proxies, _) = three_nodes().await;
        let slow = LinkMode {
            delay: Duration::from_millis(150),
            ..LinkMode::OPEN
        };
        proxies.set_modes(&BTreeMap::from([((1, 2), slow)]));
        // An echo round trip through (1, 2) pays the delay once (the echo
        // comes back over the same connection, which is not slowed).
        let start = Instant::now();
        assert_eq!(
            roundtrip(proxies.address(1, 2).unwrap()).await.unwrap(),
            b"ping"
        );
        let slow_rtt = start.elapsed();
        assert!(slow_rtt >= Duration::from_millis(150), "{slow_rtt:?}");
        // The reverse link still passes traffic (its speed is not asserted:
        // a loaded machine may be slow anyway).
        assert!(roundtrip(proxies.address(2, 1).unwrap()).await.is_ok());

        // A stall holds the bytes until it clears; nothing is lost.
        let stalled = LinkMode {
            stalled: true,
            ..LinkMode::OPEN
        };
        proxies.set_modes(&BTreeMap::from([((1, 3), stalled)]));
        let mut s = TcpStream::connect(proxies.address(1, 3).unwrap())
            .await
            .unwrap();
        s.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf)).await;
        assert!(early.is_err(), "a stalled link passed bytes on");
        proxies.heal();
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("the stall cleared")
            .unwrap();
        assert_eq!(&buf, b"held");
    }
}
