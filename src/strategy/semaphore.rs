//! `semaphore`: a POSIX named semaphore with `permits`, as `multiprocessing.Lock` is one with
//! a single permit. With more permits, that many buyers are inside at once and race.
//!
//! The runner owns the semaphore: it creates it under a name unique to the trial (O_EXCL, so
//! a stale one is never reused), and unlinks it when the trial ends, also on an error. A
//! semaphore held by a killed process stays taken: that is the `deadlock` this strategy risks.

use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::{Fixture, TrialPlan};
use crate::sys::process;
use crate::sys::semaphore::{self, NamedSemaphore};

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
        let lock = SemaphoreLock(NamedSemaphore::open(&name(plan))?);
        Ok(Box::new(Locked::new(lock, plan)))
    }
}

/// The trial's semaphore: `/sim.<tag>.semaphore`.
fn name(plan: &TrialPlan) -> String {
    format!("/{}", plan.name("semaphore"))
}

/// The runner's semaphore for one trial: created fresh, unlinked on drop.
pub struct OwnedSemaphore {
    name: String,
    _sem: NamedSemaphore,
}

impl OwnedSemaphore {
    /// Creates the semaphore `name` with `permits`; fails rather than reuse an existing one.
    pub fn create(name: &str, permits: u32) -> io::Result<OwnedSemaphore> {
        let sem = NamedSemaphore::create(name, permits)?;
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
        let _ = semaphore::unlink(&self.name); // a name already gone is no matter
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
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if process::is_gone(pid) && semaphore::unlink(&format!("/{rest}")).is_ok() {
            removed += 1;
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
        let mut lock = SemaphoreLock(NamedSemaphore::open(owned.name()).unwrap());
        lock.acquire().unwrap();
        lock.release().unwrap();
        assert!(OwnedSemaphore::create(&name, 1).is_err(), "O_EXCL refuses a second one");
        drop(owned);
        assert!(!std::path::Path::new(&path).exists());
    }
}
