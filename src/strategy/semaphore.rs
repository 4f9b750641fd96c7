//! `semaphore`: a POSIX named semaphore with `permits`, as `multiprocessing.Lock` is one with
//! a single permit. With more permits, that many buyers are inside at once and race.
//!
//! The runner owns the semaphore: it creates it under a name unique to the trial (O_EXCL, so
//! a stale one is never reused), and unlinks it when the trial ends, also on an error. A
//! semaphore held by a killed process stays taken: that is the `deadlock` this strategy risks.

use std::ffi::CString;
use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::{Fixture, TrialPlan};

/// Names start with this, then the runner's pid (the plan's tag starts with it):
/// `sweep_stale` recognises leftovers by it.
const PREFIX: &str = "sim.";

/// The `semaphore` strategy.
pub struct Semaphore;

impl Strategy for Semaphore {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Ok(Box::new(OwnedSemaphore::create(&name(plan), plan.permits)?))
    }

    fn sweep_stale(&self) -> usize {
        sweep_stale()
    }

    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        let lock = SemaphoreLock(NamedSemaphore::open_with(&name(plan), 0, 0)?);
        Ok(Box::new(Locked::new(lock, plan)))
    }
}

/// The trial's semaphore: `/sim.<tag>.semaphore`.
fn name(plan: &TrialPlan) -> String {
    format!("/{}", plan.name("semaphore"))
}

/// An open named semaphore.
pub struct NamedSemaphore {
    sem: *mut libc::sem_t,
}

// SAFETY: a sem_t from sem_open is a process-wide handle, usable from any thread.
unsafe impl Send for NamedSemaphore {}

impl NamedSemaphore {
    fn open_with(name: &str, flags: libc::c_int, permits: u32) -> io::Result<NamedSemaphore> {
        let c = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "semaphore name holds a NUL"))?;
        // SAFETY: `c` is a valid C string; mode and value are passed as sem_open's varargs.
        let sem = unsafe { libc::sem_open(c.as_ptr(), flags, 0o600 as libc::c_uint, permits as libc::c_uint) };
        if sem == libc::SEM_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("semaphore {name}: {e}")));
        }
        Ok(NamedSemaphore { sem })
    }

    /// Takes a permit, waiting for one.
    pub fn wait(&self) -> io::Result<()> {
        loop {
            // SAFETY: `sem` is an open semaphore until drop.
            if unsafe { libc::sem_wait(self.sem) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Gives a permit back.
    pub fn post(&self) -> io::Result<()> {
        // SAFETY: as in `wait`.
        if unsafe { libc::sem_post(self.sem) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed once.
        unsafe { libc::sem_close(self.sem) };
    }
}

/// The runner's semaphore for one trial: created fresh, unlinked on drop.
pub struct OwnedSemaphore {
    name: String,
    _sem: NamedSemaphore,
}

impl OwnedSemaphore {
    /// Creates the semaphore `name` with `permits`; fails rather than reuse an existing one.
    pub fn create(name: &str, permits: u32) -> io::Result<OwnedSemaphore> {
        let sem = NamedSemaphore::open_with(name, libc::O_CREAT | libc::O_EXCL, permits)?;
        Ok(OwnedSemaphore {
            name: name.to_string(),
            _sem: sem,
        })
    }

    /// Its name, `/sim.…`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Fixture for OwnedSemaphore {}

impl Drop for OwnedSemaphore {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.name.as_str()) {
            // SAFETY: a valid C string; unlinking a name already gone is harmless.
            unsafe { libc::sem_unlink(c.as_ptr()) };
        }
    }
}

/// Removes semaphores left by sim runs whose process is gone (killed with SIGKILL, say).
/// Returns how many it removed.
pub fn sweep_stale() -> usize {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix("sem.")) else {
            continue;
        };
        let Some(pid) = rest
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive && let Ok(c) = CString::new(format!("/{rest}")) {
            // SAFETY: a valid C string naming a semaphore.
            if unsafe { libc::sem_unlink(c.as_ptr()) } == 0 {
                removed += 1;
            }
        }
    }
    removed
}

/// A buyer's side: the semaphore opened by name, as a [`Lock`].
struct SemaphoreLock(NamedSemaphore);

impl Lock for SemaphoreLock {
    fn acquire(&mut self) -> io::Result<()> {
        self.0.wait()
    }

    fn release(&mut self) -> io::Result<()> {
        self.0.post()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owned_semaphore_is_unlinked_when_dropped() {
        let name = format!("/sim.{}.unit-test", std::process::id());
        let owned = OwnedSemaphore::create(&name, 1).unwrap();
        let path = format!("/dev/shm/sem.{}", &owned.name()[1..]);
        assert!(std::path::Path::new(&path).exists());
        let mut lock = SemaphoreLock(NamedSemaphore::open_with(owned.name(), 0, 0).unwrap());
        lock.acquire().unwrap();
        lock.release().unwrap();
        assert!(OwnedSemaphore::create(&name, 1).is_err(), "O_EXCL refuses a second one");
        drop(owned);
        assert!(!std::path::Path::new(&path).exists());
    }
}
