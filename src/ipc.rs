//! Datagram sockets in Linux's abstract namespace, for the seller and the entry queue.
//!
//! Abstract names leave no file behind, whatever happens to the process that bound them, and
//! a datagram socket lets a server drain every waiting request at each wake-up.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

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
    use std::os::fd::AsRawFd;
    let mut fds = [libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    loop {
        // SAFETY: one valid pollfd, for as long as the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) } >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits for requests, then takes every one already waiting, up to `max`: one wake-up
/// serves a whole batch. `socket` must be non-blocking.
pub fn recv_batch(socket: &UnixDatagram, buf: &mut Vec<(SocketAddr, [u8; 16], usize)>, max: usize) -> io::Result<()> {
    buf.clear();
    wait_readable(socket)?;
    while buf.len() < max {
        let mut bytes = [0u8; 16];
        match socket.recv_from(&mut bytes) {
            Ok((n, from)) => buf.push((from, bytes, n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
