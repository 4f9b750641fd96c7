//! `sysv-semaphore`: a System V semaphore of one permit, taken and given back with
//! `SEM_UNDO`, so that the kernel gives a dead holder's permit back: where a POSIX
//! `semaphore` deadlocks on a killed holder, this one goes on.
//!
//! The runner creates the set for each trial under a key that carries its pid, and removes
//! it when the trial ends, also on an error. A set left by a runner killed with SIGKILL is
//! found by its key and a mark in its second semaphore, and removed by the next run.

use std::io;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::{Fixture, TrialPlan};
use crate::sys::process;
use crate::sys::sysv::{Key, SemaphoreSet};

/// A set's second semaphore holds this, to tell sim's sets from any other program's.
const MARK: i32 = 0x51d;
/// Keys of sim's sets: this bit, then the runner's pid, then a trial's number.
const KEY_BIT: Key = 1 << 30;

/// The `sysv-semaphore` strategy.
pub struct SysvSemaphore;

impl Strategy for SysvSemaphore {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        Ok(Box::new(OwnedSet::create(key(plan))?))
    }

    fn sweep_stale(&self) -> usize {
        sweep_stale()
    }

    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        let set = SemaphoreSet::find(key(plan)).map_err(doing("finding the trial's System V semaphore"))?;
        Ok(Box::new(Locked::new(Permit { set }, plan)))
    }
}

/// The trial's key: the runner's pid and a number from the trial's tag.
fn key(plan: &TrialPlan) -> Key {
    let trial = plan
        .tag
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    KEY_BIT | ((plan.runner_pid as Key & 0x3f_ffff) << 7) | (trial & 0x7f) as Key
}

/// An error that says what was being done.
fn doing(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The runner's set for one trial: created fresh, removed on drop.
struct OwnedSet {
    set: SemaphoreSet,
}

impl OwnedSet {
    fn create(key: Key) -> io::Result<OwnedSet> {
        let set = SemaphoreSet::create(key, 2).map_err(doing("creating a System V semaphore"))?;
        let owned = OwnedSet { set };
        for (num, value) in [(0, 1), (1, MARK)] {
            set.set_value(num, value)
                .map_err(doing("setting a System V semaphore"))?;
        }
        Ok(owned)
    }
}

impl Fixture for OwnedSet {}

impl Drop for OwnedSet {
    fn drop(&mut self) {
        let _ = self.set.remove(); // a set already gone is no matter
    }
}

/// A buyer's side: the set's first semaphore, as a [`Lock`].
struct Permit {
    set: SemaphoreSet,
}

impl Lock for Permit {
    fn acquire(&mut self) -> io::Result<()> {
        self.set.change_with_undo(0, -1)
    }

    fn release(&mut self) -> io::Result<()> {
        self.set.change_with_undo(0, 1)
    }
}

/// Removes sets left by sim runs whose process is gone; how many it removed.
pub fn sweep_stale() -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/sysvipc/sem") else {
        return 0;
    };
    let mut removed = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(key), Some(id), Some(nsems)) = (
            fields.first().and_then(|k| k.parse::<Key>().ok()),
            fields.get(1).and_then(|i| i.parse::<i32>().ok()),
            fields.get(3),
        ) else {
            continue;
        };
        if key & KEY_BIT == 0 || key & (1 << 29) != 0 || *nsems != "2" {
            continue;
        }
        let set = SemaphoreSet::from_id(id);
        if set.value(1).ok() != Some(MARK) {
            continue;
        }
        let pid = ((key >> 7) & 0x3f_ffff) as u32;
        if process::is_gone(pid) && set.remove().is_ok() {
            removed += 1;
        }
    }
    removed
}
