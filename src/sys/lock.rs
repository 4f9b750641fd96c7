//! Open-file-description byte-range locks (`fcntl` `F_OFD_SETLKW`) over a whole file.
//!
//! rustix's `fcntl_lock` takes the classic, per-process, `F_SETLKW` lock, and nix is not a
//! dependency for this one call: it is a libc call here, inlined into the purchase that takes
//! it. It takes a `&File`, whose `as_raw_fd` inlines where std's `as_fd` is a call.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Takes the write lock over the whole of `file`, from its first byte to past its last
/// however long it grows, waiting for it (again after a signal's interruption). The lock
/// belongs to the open file description: the kernel drops it when the last descriptor of
/// that description closes, as when its process dies.
#[inline]
pub fn lock_whole(file: &File) -> io::Result<()> {
    set(file, libc::F_WRLCK)
}

/// Lets the lock of [`lock_whole`] go.
#[inline]
pub fn unlock_whole(file: &File) -> io::Result<()> {
    set(file, libc::F_UNLCK)
}

#[inline]
fn set(file: &File, kind: libc::c_int) -> io::Result<()> {
    let range = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0, // to the end, however long the file grows
        l_pid: 0, // as F_OFD_* requires
    };
    let fd = file.as_raw_fd();
    loop {
        // SAFETY: `fd` is borrowed, so open, for the call; F_OFD_SETLKW reads the flock, which
        // outlives the call.
        if unsafe { libc::fcntl(fd, libc::F_OFD_SETLKW, &range) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_description_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked");
        std::fs::write(&path, b"10").unwrap();
        let open = || std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let (first, second) = (open(), open());
        lock_whole(&first).unwrap();
        let waiter = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            lock_whole(&second).unwrap();
            unlock_whole(&second).unwrap();
            started.elapsed()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        unlock_whole(&first).unwrap();
        assert!(waiter.join().unwrap() >= std::time::Duration::from_millis(40));
    }
}
