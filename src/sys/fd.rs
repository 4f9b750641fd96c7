//! Descriptors: reads and writes on the standard ones and on files at an offset, copies,
//! waiting until some are readable, and the descriptors a process inherits through `exec`.
//!
//! The stock file's `pread` and `pwrite` run inside every purchase: [`read_at`] and
//! [`write_at`] are one libc call each, inlined into the caller, with no loop of std's
//! around them (a short write or a signal is the caller's to handle, as a C loop does).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// Standard input. Std keeps descriptors 0 to 2 open for the whole life of a process, so it
/// may be borrowed for as long.
pub fn stdin() -> BorrowedFd<'static> {
    rustix::stdio::stdin()
}

/// Standard output, as [`stdin`].
pub fn stdout() -> BorrowedFd<'static> {
    rustix::stdio::stdout()
}

/// One `read`: how many bytes it read into `buf`, 0 at end-of-file. A signal's interruption
/// comes back as [`io::ErrorKind::Interrupted`].
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd, buf)?)
}

/// One `write`: how many bytes of `buf` it wrote. A signal's interruption comes back as
/// [`io::ErrorKind::Interrupted`].
pub fn write(fd: impl AsFd, buf: &[u8]) -> io::Result<usize> {
    Ok(rustix::io::write(fd, buf)?)
}

/// One `pread` of `file` at `offset`: how many bytes it read into `buf`, 0 past the end.
/// (A `&File` rather than any `AsFd`: std's `as_raw_fd` of a file inlines, its `as_fd` is a
/// call, and this runs inside every purchase.)
#[inline]
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset = offset_t(offset)?;
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is borrowed
    // mutably for the call; `file` is borrowed, so its descriptor stays open.
    let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), offset) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// One `pwrite` to `file` at `offset`: how many bytes of `buf` it wrote.
#[inline]
pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    let offset = offset_t(offset)?;
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`, borrowed for the call;
    // `file` is borrowed, so its descriptor stays open.
    let n = unsafe { libc::pwrite(file.as_raw_fd(), buf.as_ptr().cast(), buf.len(), offset) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[inline]
fn offset_t(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an offset past off_t"))
}

/// A copy of `fd` numbered `min` or above, closed at `exec` (`F_DUPFD_CLOEXEC`).
pub fn copy_above(fd: impl AsFd, min: RawFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, min)?)
}

/// Makes `fd` this process's standard output (`dup2` onto descriptor 1, which stays open
/// throughout, as std expects).
pub fn set_stdout(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::stdio::dup2_stdout(fd)?)
}

/// Waits until one of `fds` is readable, at its end, or in error, or until `timeout` passes
/// (`None`: for ever); says which are. A `None` among `fds` never is. An interruption by a
/// signal is an error of kind [`io::ErrorKind::Interrupted`].
pub fn poll_readable(fds: &[Option<BorrowedFd<'_>>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .flatten()
        .map(|&fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
        .collect();
    let timeout = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    rustix::event::poll(&mut polled, timeout.as_ref())?;
    let mut revents = polled.iter().map(|p| !p.revents().is_empty());
    Ok(fds
        .iter()
        .map(|fd| fd.is_some() && revents.next().unwrap_or(false))
        .collect())
}

/// The descriptors below 64 claimed by [`inherited`] in this process, one bit each.
static CLAIMED: AtomicU64 = AtomicU64::new(0);

/// Takes ownership of descriptor `fd`, which this process inherited through `exec`: the
/// spawner's requests and group pipes, set up by the runner. Refused for the standard
/// descriptors (std's), for a descriptor that is not open, for one that is closed at `exec`
/// (every descriptor std, sim and its dependencies open is, so such a one may be owned by
/// something else in this process), and for one claimed already.
pub fn inherited(fd: RawFd) -> io::Result<OwnedFd> {
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} {why}"),
        ))
    };
    if !(3..64).contains(&fd) {
        return refuse("is not one a process inherits here (3 to 63)");
    }
    // SAFETY: F_GETFD only reads the flags of the descriptor numbered `fd`, if it is open; it
    // touches no memory and changes nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("descriptor {fd} was not inherited: {}", io::Error::last_os_error()),
        ));
    }
    if flags & libc::FD_CLOEXEC != 0 {
        return refuse("is closed at exec, so it was opened in this process, not inherited");
    }
    if CLAIMED.fetch_or(1 << fd, Ordering::Relaxed) & (1 << fd) != 0 {
        return refuse("was claimed already");
    }
    // SAFETY: `fd` is open; it survived an exec, so no Rust object of this process opened it
    // (they all open close-on-exec), and CLAIMED makes this the only claim to it in this
    // process: from here on the returned OwnedFd is its one owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::IntoRawFd;

    #[test]
    fn reads_and_writes_at_an_offset() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello world").unwrap();
        assert_eq!(write_at(&file, b"W", 6).unwrap(), 1);
        let mut buf = [0u8; 32];
        let n = read_at(&file, &mut buf, 0).unwrap();
        assert_eq!(&buf[..n], b"hello World");
        assert_eq!(read_at(&file, &mut buf, 100).unwrap(), 0);
    }

    #[test]
    fn poll_says_which_are_readable_and_skips_the_none() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let (idle, _idle_writer) = std::io::pipe().unwrap();
        let fds = [Some(idle.as_fd()), None, Some(reader.as_fd())];
        let waited = poll_readable(&fds, Some(Duration::from_millis(1))).unwrap();
        assert_eq!(waited, [false, false, false]);
        writer.write_all(b"x").unwrap();
        assert_eq!(poll_readable(&fds, None).unwrap(), [false, false, true]);
    }

    #[test]
    fn a_copy_lies_above_its_floor_and_an_inherited_claim_is_checked() {
        let (reader, _writer) = std::io::pipe().unwrap();
        let copy = copy_above(&reader, 40).unwrap();
        assert!(copy.as_raw_fd() >= 40);
        assert!(inherited(copy.as_raw_fd()).is_err(), "closed at exec: opened here");
        assert!(inherited(1).is_err(), "std's");
        assert!(inherited(62).is_err(), "not open (or, if open, opened here)");
        // A descriptor without close-on-exec, as one inherited: claimed once only.
        let raw = copy.into_raw_fd();
        // SAFETY: test set-up on a descriptor this test owns (into_raw_fd above).
        assert_eq!(unsafe { libc::fcntl(raw, libc::F_SETFD, 0) }, 0);
        let owned = inherited(raw).unwrap();
        assert!(inherited(raw).is_err(), "a second claim");
        drop(owned);
    }
}
