//! The fault proxy: a TCP forwarder on one link that sim starts (buyers → a store's server,
//! a replica → its primary), which the runner can partition, cut, slow down and reset, as
//! Toxiproxy does. This kernel has no `netem`, and a paused (SIGSTOPped) server loses
//! nothing on one machine, the kernel's socket buffers keeping what was sent to it: a link
//! that must lose what crosses it has to be dropped in between.
//!
//! It listens on 127.0.0.1 at a port of the kernel's choosing (or on a Unix socket, in front
//! of a PostgreSQL server's) and carries each connection
//! to its target on one thread, both ways, on non-blocking sockets. With no fault, a chunk
//! passes after one relaxed load of the link's state. A partition holds every chunk at that
//! point, both ways, and answers new connections by closing them; healed, the held chunks go
//! on, as a real partition's retransmissions would. A cut closes every connection and
//! refuses new ones until healed. Latency holds each chunk until it has been this long in
//! the proxy.
//!
//! A thread woken for each chunk would double the wake-ups of a request and its answer. So
//! after bytes move, a connection whose bytes tend to come soon keeps trying its sockets
//! for [`SPIN`], yielding the CPU between tries, and sleeps in `poll` only after that. At most one connection fewer than
//! the machine's CPUs spins at once, so that spinning never takes the last CPU from the
//! buyers and the servers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

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

/// Where a proxy listens, or what it forwards to: a TCP address or a Unix socket's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An address of 127.0.0.1.
    Tcp(SocketAddr),
    /// A Unix socket (a PostgreSQL server's `.s.PGSQL.<port>`).
    Unix(PathBuf),
}

impl Endpoint {
    fn connect(&self) -> io::Result<Stream> {
        Ok(match self {
            Endpoint::Tcp(addr) => Stream::Tcp(TcpStream::connect(addr)?),
            Endpoint::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        })
    }
}

/// One end of a connection.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// Non-blocking, and for TCP without Nagle's wait: a chunk goes on as it came.
    fn prepare(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)
            }
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Closes it at once: TCP with a reset rather than an orderly end.
    fn refuse(self) {
        if let Stream::Tcp(s) = &self {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&mut &*s).read(buf),
            Stream::Unix(s) => (&mut &*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&mut &*s).write(buf),
            Stream::Unix(s) => (&mut &*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

/// Where the proxy takes connections.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => Stream::Tcp(l.accept()?.0),
            Listener::Unix(l) => Stream::Unix(l.accept()?.0),
        })
    }
}

/// One connection through the proxy: both its sockets, to shut down on a reset.
struct Connection {
    id: u64,
    client: Stream,
    server: Stream,
    /// Set when it was reset: a direction held by a partition gives up.
    closed: Arc<AtomicBool>,
}

/// What the proxy's threads share.
struct Shared {
    target: Endpoint,
    /// How long a connection spins after bytes move.
    spin: Duration,
    state: AtomicU8,
    latency_ns: AtomicU64,
    stopping: AtomicBool,
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

    /// Shuts every connection down.
    fn reset(&self) {
        for c in self.connections().drain(..) {
            c.closed.store(true, Ordering::Relaxed);
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
    }

    fn set_state(&self, state: LinkState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

/// A fault proxy in front of one target. Dropping it closes its connections and its port.
pub struct Proxy {
    listen: Endpoint,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding a port of 127.0.0.1 to `target`, for clients that ask and wait
    /// for each answer: after bytes move, a connection spins a while for the next ones.
    pub fn start(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let listen = Endpoint::Tcp(listener.local_addr()?);
        Proxy::spawn(Listener::Tcp(listener), listen, Endpoint::Tcp(target), SPIN)
    }

    /// Starts forwarding a port of 127.0.0.1 to `target`, for a stream that waits for no
    /// answer (a replica's link to its primary): a connection sleeps as soon as no byte is
    /// ready, and leaves the spinning to request-and-answer links.
    pub fn start_streaming(target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let listen = Endpoint::Tcp(listener.local_addr()?);
        Proxy::spawn(Listener::Tcp(listener), listen, Endpoint::Tcp(target), Duration::ZERO)
    }

    /// Starts forwarding a Unix socket made at `at` to the one at `target`, for clients that
    /// ask and wait for each answer. Any user may connect to it (a standby's server runs as
    /// another user than the runner); the folder it is in keeps others out.
    pub fn start_unix(at: &Path, target: &Path) -> io::Result<Proxy> {
        let listener = UnixListener::bind(at)?;
        std::fs::set_permissions(at, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let (listen, target) = (Endpoint::Unix(at.to_path_buf()), Endpoint::Unix(target.to_path_buf()));
        Proxy::spawn(Listener::Unix(listener), listen, target, SPIN)
    }

    fn spawn(listener: Listener, listen: Endpoint, target: Endpoint, spin: Duration) -> io::Result<Proxy> {
        let shared = Arc::new(Shared {
            target,
            spin,
            state: AtomicU8::new(LinkState::Open as u8),
            latency_ns: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            let name = match &listen {
                Endpoint::Tcp(addr) => format!("proxy {}", addr.port()),
                Endpoint::Unix(_) => "proxy unix".to_string(),
            };
            std::thread::Builder::new()
                .name(name)
                .spawn(move || accept(listener, shared))?
        };
        Ok(Proxy {
            listen,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where it listens, if on TCP (a Unix proxy gives 0.0.0.0:0).
    pub fn addr(&self) -> SocketAddr {
        match &self.listen {
            Endpoint::Tcp(addr) => *addr,
            Endpoint::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    /// Where it forwards to.
    pub fn target(&self) -> &Endpoint {
        &self.shared.target
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
        let _ = match &self.listen {
            Endpoint::Tcp(addr) => TcpStream::connect_timeout(addr, Duration::from_secs(1)).map(drop),
            Endpoint::Unix(path) => UnixStream::connect(path).map(drop),
        };
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Endpoint::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The acceptor's loop: each connection let in gets its thread.
fn accept(listener: Listener, shared: Arc<Shared>) {
    loop {
        let client = listener.accept();
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.state() != LinkState::Open {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            client.refuse();
            continue;
        }
        let server = match shared.target.connect() {
            Ok(server) => server,
            Err(_) => {
                // The target is down: the client learns it as it would without a proxy.
                client.refuse();
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        if let Err(_e) = join(client, server, &shared) {
            continue;
        }
    }
}

/// How long a connection's thread keeps looking for bytes after it last moved some, before
/// it sleeps in `poll`: an answer that comes within it is passed on without a thread being
/// woken, which is most of what a proxy costs a request.
const SPIN: Duration = Duration::from_micros(50);

/// How often a chunk held by a partition looks whether the link was healed.
const HELD_POLL: Duration = Duration::from_millis(1);

/// Starts the thread that carries a connection both ways.
fn join(client: Stream, server: Stream, shared: &Arc<Shared>) -> io::Result<()> {
    for s in [&client, &server] {
        s.prepare()?;
    }
    let closed = Arc::new(AtomicBool::new(false));
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.connections().push(Connection {
        id,
        client: client.try_clone()?,
        server: server.try_clone()?,
        closed: Arc::clone(&closed),
    });
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name(format!("proxy conn {id}"))
        .spawn(move || {
            carry(&client, &server, &shared, &closed);
            shared.connections().retain(|c| c.id != id);
        })?;
    Ok(())
}

/// What one step of a direction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Bytes were read or written, or the direction ended.
    Moved,
    /// It waits for its socket: to read (`from`) or to write (`to`).
    Blocked,
    /// It holds a chunk until this moment (latency) or until the link heals (a partition).
    Holding(Option<Instant>),
    /// It has ended.
    Done,
}

/// One direction of a connection: the chunk read from `from` and not yet all written to `to`.
struct Direction<'a> {
    from: &'a Stream,
    to: &'a Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// When the chunk may be written: when it arrived plus the link's latency.
    due: Instant,
    /// `from` has ended: once the chunk is written, `to` is shut for writing.
    eof: bool,
    done: bool,
}

impl<'a> Direction<'a> {
    fn new(from: &'a Stream, to: &'a Stream) -> Direction<'a> {
        Direction {
            from,
            to,
            buf: vec![0u8; 64 * 1024],
            start: 0,
            end: 0,
            due: Instant::now(),
            eof: false,
            done: false,
        }
    }

    /// Reads a chunk if it holds none, lets the link's faults act on it, writes what it can.
    fn step(&mut self, shared: &Shared, closed: &AtomicBool) -> Step {
        if self.done {
            return Step::Done;
        }
        if self.start == self.end && !self.eof {
            match (&mut &*self.from).read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    self.due = Instant::now() + Duration::from_nanos(shared.latency_ns.load(Ordering::Relaxed));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::Moved,
                Err(_) => self.eof = true,
            }
        }
        if self.start < self.end {
            if let Some(held) = self.held(shared, closed) {
                return held;
            }
            match (&mut &*self.to).write(&self.buf[self.start..self.end]) {
                Ok(n) if n > 0 => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::Moved,
                _ => return self.end_it(),
            }
            return Step::Moved;
        }
        self.end_it()
    }

    /// Whether the link's faults hold the chunk now (`None`: it may go).
    fn held(&mut self, shared: &Shared, closed: &AtomicBool) -> Option<Step> {
        if closed.load(Ordering::Relaxed) || shared.stopping.load(Ordering::Relaxed) {
            return Some(self.end_it());
        }
        match shared.state() {
            LinkState::Cut => return Some(self.end_it()),
            LinkState::Partitioned => return Some(Step::Holding(None)),
            LinkState::Open => {}
        }
        (self.due > Instant::now()).then_some(Step::Holding(Some(self.due)))
    }

    /// Passes the end of the stream on.
    fn end_it(&mut self) -> Step {
        let _ = self.to.shutdown(Shutdown::Write);
        let _ = self.from.shutdown(Shutdown::Read);
        self.done = true;
        Step::Moved
    }

    /// What this direction waits for on `fd`, after a step that found it `Blocked`.
    fn interest(&self, fd: &Stream) -> PollFlags {
        let same = |s: &Stream| std::ptr::eq(s, fd);
        match (self.start < self.end, self.done) {
            (_, true) => PollFlags::empty(),
            (true, _) if same(self.to) => PollFlags::OUT,
            (false, _) if same(self.from) => PollFlags::IN,
            _ => PollFlags::empty(),
        }
    }
}

/// The connections of every proxy that spin now.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// How many connections may spin at once: one CPU is left to the buyers and the servers.
fn spin_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)))
}

/// A connection's place among those that spin, if it has one.
struct SpinSlot {
    held: bool,
}

impl SpinSlot {
    /// Whether this connection may spin: it has a place, or it takes a free one.
    fn take(&mut self) -> bool {
        if !self.held {
            let limit = spin_limit();
            self.held = SPINNING
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
                .is_ok();
        }
        self.held
    }

    /// Leaves its place to another connection.
    fn give_back(&mut self) {
        if std::mem::take(&mut self.held) {
            SPINNING.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Carries a connection both ways on one thread until both directions end. After bytes
/// move, it keeps trying both sockets for [`SPIN`] if the connection's bytes tend to come
/// within a few times that; then it sleeps in `poll` until a socket is ready or a held chunk is
/// due, and steps only the directions that can go on.
fn carry(client: &Stream, server: &Stream, shared: &Shared, closed: &AtomicBool) {
    let mut ways = [Direction::new(client, server), Direction::new(server, client)];
    let (mut steps, mut due) = ([Step::Moved; 2], [true; 2]);
    let mut spin_until = Instant::now() + shared.spin;
    let mut slot = SpinSlot { held: false };
    // How long the connection waits for bytes, as a moving average of its last waits: a
    // spin pays where the next bytes are near (a buyer alone, its answers in tens of µs),
    // and only takes CPU from the rest where they are far (many buyers queued).
    let (mut idle_since, mut typical_wait) = (None::<Instant>, Duration::ZERO);
    loop {
        for (i, way) in ways.iter_mut().enumerate() {
            if due[i] {
                steps[i] = way.step(shared, closed);
            }
        }
        if steps == [Step::Done, Step::Done] {
            return;
        }
        let now = Instant::now();
        let moved = steps.contains(&Step::Moved);
        if moved {
            if let Some(since) = idle_since.take() {
                typical_wait = (typical_wait * 3 + (now - since)) / 4;
            }
            spin_until = now + shared.spin;
        } else {
            idle_since.get_or_insert(now);
        }
        if now < spin_until && typical_wait < shared.spin * 4 && slot.take() {
            if !moved {
                std::thread::yield_now();
            }
            due = [true; 2];
            continue;
        }
        slot.give_back();
        due = wait(&ways, &steps, client, server);
    }
}

/// Sleeps until a direction can go on: its socket is ready, or the chunk it holds is due
/// (a partition is looked at every [`HELD_POLL`]). Which directions can.
fn wait(ways: &[Direction<'_>; 2], steps: &[Step; 2], client: &Stream, server: &Stream) -> [bool; 2] {
    let wake = steps
        .iter()
        .filter_map(|s| match s {
            Step::Holding(Some(due)) => Some(due.saturating_duration_since(Instant::now())),
            Step::Holding(None) => Some(HELD_POLL),
            _ => None,
        })
        .min();
    let sockets = [client, server];
    let wanted = sockets.map(|fd| ways[0].interest(fd) | ways[1].interest(fd));
    let watched: Vec<usize> = (0..2).filter(|&i| !wanted[i].is_empty()).collect();
    if watched.is_empty() && wake.is_none() {
        return [true; 2];
    }
    let timeout = wake.map(|d| Timespec::try_from(d).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 }));
    let mut fds: Vec<PollFd<'_>> = watched.iter().map(|&i| PollFd::new(sockets[i], wanted[i])).collect();
    if poll(&mut fds, timeout.as_ref()).is_err() {
        return [true; 2];
    }
    let mut ready = [PollFlags::empty(); 2];
    for (&i, fd) in watched.iter().zip(&fds) {
        ready[i] = fd.revents();
    }
    std::array::from_fn(|w| {
        let on = |i: usize| !ways[w].interest(sockets[i]).is_empty() && !ready[i].is_empty();
        matches!(steps[w], Step::Holding(_)) || on(0) || on(1)
    })
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
    fn many_connections_at_once_each_get_every_answer_whether_or_not_they_spin() {
        let proxy = Proxy::start(echo()).unwrap();
        let clients: Vec<_> = (0..8u8)
            .map(|c| {
                let addr = proxy.addr();
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    for i in 0..200u8 {
                        assert_eq!(round_trip(&mut s, &[c, i]).unwrap(), [c, i]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(proxy.counts(), (8, 0));
        assert!(SPINNING.load(Ordering::Relaxed) <= spin_limit());
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

    #[test]
    fn a_unix_socket_is_carried_and_partitioned_as_a_port_is() {
        let dir = tempfile::tempdir().unwrap();
        let (front, back) = (dir.path().join("front"), dir.path().join("back"));
        let listener = UnixListener::bind(&back).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut s = stream;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start_unix(&front, &back).unwrap();
        let mut s = UnixStream::connect(&front).unwrap();
        let mut round_trip = |bytes: &[u8]| {
            s.write_all(bytes).unwrap();
            let mut back = vec![0u8; bytes.len()];
            s.read_exact(&mut back).map(|_| back)
        };
        assert_eq!(round_trip(b"one").unwrap(), b"one");
        proxy.partition();
        assert!(UnixStream::connect(&front).is_ok_and(|mut t| {
            t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            matches!(t.read(&mut [0u8; 1]), Ok(0) | Err(_))
        }));
        proxy.heal();
        assert_eq!(round_trip(b"two").unwrap(), b"two");
        assert_eq!(proxy.counts(), (1, 1));
        drop(proxy);
        assert!(!front.exists(), "the proxy's socket outlived it");
    }
}
