//! POSIX named semaphores (`sem_open`), which neither nix nor rustix wraps: on Linux each is a
//! file `/dev/shm/sem.NAME`, mapped by every process that opens it.
//!
//! [`NamedSemaphore::wait`] and [`NamedSemaphore::post`] run inside every purchase of the
//! `semaphore` strategy: one libc call each, inlined into the caller.

use std::ffi::CString;
use std::io;
use std::ptr::NonNull;

/// An open named semaphore, closed on drop (the name stays until [`unlink`]).
pub struct NamedSemaphore {
    sem: NonNull<libc::sem_t>,
}

// SAFETY: a sem_t from sem_open is a handle of the whole process: any thread may use or
// close it.
unsafe impl Send for NamedSemaphore {}

impl NamedSemaphore {
    /// Creates the semaphore `name` (`/…`) with `permits`, readable and writable by this user
    /// alone; fails rather than reuse one that exists (`O_EXCL`).
    pub fn create(name: &str, permits: u32) -> io::Result<NamedSemaphore> {
        NamedSemaphore::open_with(name, libc::O_CREAT | libc::O_EXCL, permits)
    }

    /// Opens the existing semaphore `name`.
    pub fn open(name: &str) -> io::Result<NamedSemaphore> {
        NamedSemaphore::open_with(name, 0, 0)
    }

    fn open_with(name: &str, flags: libc::c_int, permits: u32) -> io::Result<NamedSemaphore> {
        let c = c_name(name)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call; the mode and the
        // value are passed as sem_open's two variadic arguments, as unsigned ints (read only
        // with O_CREAT).
        let sem = unsafe { libc::sem_open(c.as_ptr(), flags, 0o600 as libc::c_uint, permits as libc::c_uint) };
        match NonNull::new(sem).filter(|_| sem != libc::SEM_FAILED) {
            Some(sem) => Ok(NamedSemaphore { sem }),
            None => {
                let e = io::Error::last_os_error();
                Err(io::Error::new(e.kind(), format!("semaphore {name}: {e}")))
            }
        }
    }

    /// Takes a permit, waiting for one (again after a signal's interruption).
    #[inline]
    pub fn wait(&self) -> io::Result<()> {
        loop {
            // SAFETY: `sem` is open until drop.
            if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Gives a permit back.
    #[inline]
    pub fn post(&self) -> io::Result<()> {
        // SAFETY: as in `wait`.
        if unsafe { libc::sem_post(self.sem.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open, and drop closes it once.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// Removes the name `name` (`/…`): processes that have the semaphore open keep it until they
/// close it.
pub fn unlink(name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    if unsafe { libc::sem_unlink(c.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "semaphore name holds a NUL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semaphore_is_created_once_shared_by_name_and_unlinked() {
        let name = format!("/sim-sys-test.{}", std::process::id());
        let created = NamedSemaphore::create(&name, 1).unwrap();
        assert!(NamedSemaphore::create(&name, 1).is_err(), "O_EXCL");
        let opened = NamedSemaphore::open(&name).unwrap();
        opened.wait().unwrap();
        created.post().unwrap();
        opened.wait().unwrap();
        opened.post().unwrap();
        unlink(&name).unwrap();
        assert!(NamedSemaphore::open(&name).is_err(), "unlinked");
        assert!(unlink(&name).is_err());
        assert_eq!(unlink("/nul\0").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
