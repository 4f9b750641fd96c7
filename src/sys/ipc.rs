//! Datagram sockets in Linux's abstract namespace, for the entry queue and the manager store.
//!
//! Abstract names leave no file behind, whatever happens to the process that bound them, and
//! a datagram socket lets a server drain every waiting request at each wake-up.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The abstract address `@name`.
pub fn address(name: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(name.as_bytes())
}

/// A socket bound to `name`.
pub fn bind(name: &str) -> io::Result<UnixDatagram> {
    UnixDatagram::bind_addr(&address(name)?)
        .map_err(|e| io::Error::new(e.kind(), format!("binding socket @{name}: {e}")))
}

/// A socket bound to `name` that sends to `peer` alone.
pub fn connect(name: &str, peer: &str) -> io::Result<UnixDatagram> {
    let socket = bind(name)?;
    socket
        .connect_addr(&address(peer)?)
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to @{peer}: {e}")))?;
    Ok(socket)
}

/// Sends one datagram to `peer` from an unbound socket, for the runner's stop message.
pub fn send_once(peer: &str, message: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to_addr(message, &address(peer)?).map(drop)
}

/// Receives, retrying when a signal interrupts the wait.
pub fn recv(socket: &UnixDatagram, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match socket.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Blocks until `socket` has something to read.
pub fn wait_readable(socket: &UnixDatagram) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(socket, PollFlags::IN)];
    loop {
        match poll(&mut fds, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The runner's message that ends a server: shorter than any request.
pub const STOP: &[u8] = b"Q";

/// A server process's side of the protocol.
pub trait Server {
    /// Handles one request (any reply is the server's to send).
    fn handle(&mut self, from: &SocketAddr, request: &[u8]) -> io::Result<()>;
    /// Called once after each batch of requests.
    fn settle(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server's loop: waits for requests, then takes every one already waiting (one wake-up
/// serves a whole batch), hands each to the server, and settles once per batch; returns when
/// the runner sends [`STOP`].
pub fn serve(socket: &UnixDatagram, server: &mut impl Server) -> io::Result<()> {
    const BATCH: usize = 256;
    socket.set_nonblocking(true)?;
    let mut batch: Vec<(SocketAddr, [u8; 16], usize)> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        wait_readable(socket)?;
        while batch.len() < BATCH {
            let mut bytes = [0u8; 16];
            match socket.recv_from(&mut bytes) {
                Ok((n, from)) => batch.push((from, bytes, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        for (from, bytes, n) in &batch {
            if bytes[..*n] == *STOP {
                return Ok(());
            }
            server.handle(from, &bytes[..*n])?;
        }
        server.settle()?;
    }
}
