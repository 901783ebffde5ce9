//! Per-link TCP proxies: the network the nemesis partitions.
//!
//! For every ordered pair of nodes (i, j) the harness listens on a loopback
//! port that node i is told is j's address. Everything node i sends to j goes
//! through that link's proxy, which forwards to j's real port. Raft messages
//! are one-way RPCs that each node sends over its own connection (a reply is a
//! new message back over the receiver's connection), so blocking the link
//! (i, j) cuts i -> j only: one-way partitions need nothing more.
//!
//! Blocking a link closes its open connections and closes every new one as
//! soon as it is accepted, so the sender sees a connection error and keeps
//! retrying. No root, no iptables: it runs the same on a laptop and in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type NodeId = u64;

/// One direction of the network between two nodes.
struct Link {
    listen: SocketAddr,
    blocked: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The proxies for all ordered pairs of a cluster.
pub struct Proxies {
    links: BTreeMap<(NodeId, NodeId), Link>,
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
                let (blocked, blocked_rx) = watch::channel(false);
                let task = tokio::spawn(serve(
                    listener,
                    target,
                    blocked_rx,
                    forwarded_connections.clone(),
                ));
                links.insert(
                    (from, to),
                    Link {
                        listen,
                        blocked,
                        task,
                    },
                );
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

    /// Blocks exactly the links in `cut` and unblocks all others.
    pub fn set_cut(&self, cut: &BTreeSet<(NodeId, NodeId)>) {
        for (pair, link) in &self.links {
            link.blocked.send_if_modified(|b| {
                let want = cut.contains(pair);
                let changed = *b != want;
                *b = want;
                changed
            });
        }
    }

    /// Unblocks every link.
    pub fn heal(&self) {
        self.set_cut(&BTreeSet::new());
    }

    /// The links currently blocked.
    #[cfg(test)]
    pub fn blocked(&self) -> BTreeSet<(NodeId, NodeId)> {
        self.links
            .iter()
            .filter(|(_, l)| *l.blocked.borrow())
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
    blocked: watch::Receiver<bool>,
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
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        if *blocked.borrow() {
            drop(inbound);
            continue;
        }
        let _ = inbound.set_nodelay(true);
        forwarded.fetch_add(1, Ordering::Relaxed);
        connections.spawn(forward(inbound, target, blocked.clone()));
    }
    // `connections` is dropped with the task, which aborts every forwarder.
}

/// Copies bytes both ways until either side closes or the link is blocked.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut blocked: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = blocked.wait_for(|b| *b) => {}
    }
    // Dropping both streams closes them; with SO_LINGER 0 the peer would get
    // a reset, but a plain close is enough for gRPC to notice.
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
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
}
