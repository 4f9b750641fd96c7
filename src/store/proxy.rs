//! The fault proxy: a TCP forwarder on one link that sim starts (buyers → a store's server,
//! a replica → its primary), which the runner can partition, cut, slow down and reset, as
//! Toxiproxy does. This kernel has no `netem`, and a paused (SIGSTOPped) server loses
//! nothing on one machine, the kernel's socket buffers keeping what was sent to it: a link
//! that must lose what crosses it has to be dropped in between.
//!
//! It listens on 127.0.0.1 at a port of the kernel's choosing and forwards each connection
//! to its target with two threads, one a direction, each reading a chunk and writing it on.
//! With no fault, a chunk passes after one relaxed load of the link's state. A partition
//! holds every chunk at that point, both ways, and answers new connections by closing them;
//! healed, the held chunks go on, as a real partition's retransmissions would. A cut closes
//! every connection and refuses new ones until healed. Latency holds each chunk until it has
//! been this long in the proxy.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a link passes traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Every byte goes through.
    Open = 0,
    /// Nothing goes through either way; held bytes go on once healed. New connections are
    /// closed as they come.
    Partitioned = 1,
    /// Every connection was closed, and new ones are closed as they come.
    Cut = 2,
}

impl LinkState {
    fn of(n: u8) -> LinkState {
        match n {
            1 => LinkState::Partitioned,
            2 => LinkState::Cut,
            _ => LinkState::Open,
        }
    }
}

/// One connection through the proxy: both its sockets, to shut down on a reset.
struct Connection {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    /// Set when it was reset: a direction held by a partition gives up.
    closed: Arc<AtomicBool>,
}

/// What the proxy's threads share.
struct Shared {
    target: SocketAddr,
    state: AtomicU8,
    latency_ns: AtomicU64,
    stopping: AtomicBool,
    /// Guards the wait of the directions held by a partition.
    held: Mutex<()>,
    changed: Condvar,
    connections: Mutex<Vec<Connection>>,
    next_id: AtomicU64,
    /// Connections made through it, and connections it turned away, since it started.
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    fn state(&self) -> LinkState {
        LinkState::of(self.state.load(Ordering::Relaxed))
    }

    fn connections(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while the link is partitioned; whether the chunk may go on (not if its
    /// connection was reset or the proxy is stopping).
    fn pass(&self, closed: &AtomicBool) -> bool {
        let mut guard = self.held.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if closed.load(Ordering::Relaxed) || self.stopping.load(Ordering::Relaxed) {
                return false;
            }
            match self.state() {
                LinkState::Open => return true,
                LinkState::Cut => return false,
                LinkState::Partitioned => {
                    guard = self
                        .changed
                        .wait_timeout(guard, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Shuts every connection down.
    fn reset(&self) {
        for c in self.connections().drain(..) {
            c.closed.store(true, Ordering::Relaxed);
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
        let _guard = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.changed.notify_all();
    }

    fn set_state(&self, state: LinkState) {
        let _guard = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.state.store(state as u8, Ordering::Relaxed);
        self.changed.notify_all();
    }
}

/// A fault proxy in front of one target. Dropping it closes its connections and its port.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding a port of 127.0.0.1 to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            state: AtomicU8::new(LinkState::Open as u8),
            latency_ns: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            held: Mutex::new(()),
            changed: Condvar::new(),
            connections: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("proxy {}", addr.port()))
                .spawn(move || accept(listener, shared))?
        };
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// How the link passes traffic now.
    pub fn state(&self) -> LinkState {
        self.shared.state()
    }

    /// Holds all traffic, both ways, and closes new connections, until [`Proxy::heal`].
    pub fn partition(&self) {
        self.shared.set_state(LinkState::Partitioned);
    }

    /// Closes every connection, and new ones as they come, until [`Proxy::heal`].
    pub fn cut(&self) {
        self.shared.set_state(LinkState::Cut);
        self.shared.reset();
    }

    /// Lets traffic through again; what a partition held goes on.
    pub fn heal(&self) {
        self.shared.set_state(LinkState::Open);
    }

    /// Closes every connection now; new ones are let in.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Holds each chunk until it has been `latency` in the proxy (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_ns
            .store(latency.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Connections let through, and connections turned away, since it started.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.accepted.load(Ordering::Relaxed),
            self.shared.refused.load(Ordering::Relaxed),
        )
    }

    /// The connections open through it now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.reset();
        // The acceptor waits in accept: a connection wakes it, and it sees it must stop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The acceptor's loop: each connection let in gets its two directions.
fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.state() != LinkState::Open {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            refuse(client);
            continue;
        }
        let server = match TcpStream::connect(shared.target) {
            Ok(server) => server,
            Err(_) => {
                // The target is down: the client learns it as it would without a proxy.
                refuse(client);
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        if let Err(_e) = join(client, server, &shared) {
            continue;
        }
    }
}

/// Closes a connection at once, with a reset rather than an orderly end.
fn refuse(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Starts the two directions of a connection.
fn join(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let closed = Arc::new(AtomicBool::new(false));
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let ended = Arc::new(AtomicU8::new(0));
    shared.connections().push(Connection {
        id,
        client: client.try_clone()?,
        server: server.try_clone()?,
        closed: Arc::clone(&closed),
    });
    for (from, to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        let (shared, closed, ended) = (Arc::clone(shared), Arc::clone(&closed), Arc::clone(&ended));
        std::thread::Builder::new()
            .name(format!("proxy conn {id}"))
            .spawn(move || {
                pump(&from, &to, &shared, &closed);
                // The second direction to end forgets the connection.
                if ended.fetch_add(1, Ordering::AcqRel) == 1 {
                    shared.connections().retain(|c| c.id != id);
                }
            })?;
    }
    Ok(())
}

/// One direction of a connection: reads a chunk, lets the link's faults act on it, writes
/// it on; passes the end of the stream on.
fn pump(from: &TcpStream, to: &TcpStream, shared: &Shared, closed: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match (&mut &*from).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let arrived = Instant::now();
        if shared.state.load(Ordering::Relaxed) != LinkState::Open as u8 && !shared.pass(closed) {
            break;
        }
        let latency = shared.latency_ns.load(Ordering::Relaxed);
        if latency > 0 {
            let due = arrived + Duration::from_nanos(latency);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        if (&mut &*to).write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that echoes every byte back, on its own thread, for as long as the test runs.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut s = stream;
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(bytes)?;
        let mut back = vec![0u8; bytes.len()];
        stream.read_exact(&mut back)?;
        Ok(back)
    }

    /// Whether a connection through the proxy is closed without an answer.
    fn closed_at_once(addr: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return true;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"x");
        let mut buf = [0u8; 1];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    }

    #[test]
    fn an_open_link_passes_every_byte_both_ways_in_order() {
        let proxy = Proxy::start(echo()).unwrap();
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let mut w = s.try_clone().unwrap();
            let big = big.clone();
            std::thread::spawn(move || w.write_all(&big).unwrap())
        };
        let mut back = vec![0u8; big.len()];
        s.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == big, "the bytes came back changed");
        assert_eq!(proxy.counts(), (1, 0));
    }

    #[test]
    fn a_partition_holds_traffic_both_ways_and_turns_new_connections_away_until_healed() {
        let proxy = Proxy::start(echo()).unwrap();
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut s, b"before").unwrap(), b"before");
        proxy.partition();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        s.write_all(b"during").unwrap();
        let mut buf = [0u8; 6];
        let e = s.read(&mut buf).unwrap_err();
        assert!(
            matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            "{e}"
        );
        assert!(closed_at_once(proxy.addr()), "a new connection got through a partition");
        proxy.heal();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"during", "what the partition held did not go on once healed");
        assert_eq!(round_trip(&mut s, b"after").unwrap(), b"after");
        let mut t = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut t, b"new").unwrap(), b"new");
    }

    #[test]
    fn a_cut_closes_every_connection_and_refuses_new_ones_until_healed() {
        let proxy = Proxy::start(echo()).unwrap();
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut s, b"before").unwrap(), b"before");
        proxy.cut();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(
            round_trip(&mut s, b"during").is_err(),
            "a cut connection still answered"
        );
        assert!(closed_at_once(proxy.addr()), "a new connection got through a cut");
        assert_eq!(proxy.open_connections(), 0);
        proxy.heal();
        let mut t = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut t, b"after").unwrap(), b"after");
    }

    #[test]
    fn a_reset_closes_the_connections_and_lets_new_ones_in() {
        let proxy = Proxy::start(echo()).unwrap();
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut s, b"one").unwrap(), b"one");
        proxy.reset();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(round_trip(&mut s, b"two").is_err());
        let mut t = TcpStream::connect(proxy.addr()).unwrap();
        assert_eq!(round_trip(&mut t, b"three").unwrap(), b"three");
    }

    #[test]
    fn latency_holds_each_chunk_both_ways() {
        let proxy = Proxy::start(echo()).unwrap();
        proxy.set_latency(Duration::from_millis(40));
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        let started = Instant::now();
        assert_eq!(round_trip(&mut s, b"slow").unwrap(), b"slow");
        // Held going and coming back: at least twice the latency, whatever the machine's load.
        assert!(
            started.elapsed() >= Duration::from_millis(80),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_dead_target_closes_the_connection_and_a_dropped_proxy_closes_its_port() {
        let gone = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let target = gone.local_addr().unwrap();
        drop(gone);
        let proxy = Proxy::start(target).unwrap();
        assert!(closed_at_once(proxy.addr()));
        let live = Proxy::start(echo()).unwrap();
        let addr = live.addr();
        let mut s = TcpStream::connect(addr).unwrap();
        assert_eq!(round_trip(&mut s, b"x").unwrap(), b"x");
        drop(live);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(round_trip(&mut s, b"y").is_err(), "a connection outlived its proxy");
        assert!(TcpStream::connect(addr).is_err(), "the port is still open");
    }
}
