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

/// A set's second semaphore holds this, to tell sim's sets from any other program's.
const MARK: libc::c_int = 0x51d;
/// Keys of sim's sets: this bit, then the runner's pid, then a trial's number.
const KEY_BIT: libc::key_t = 1 << 30;

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
        // SAFETY: semget only reads its arguments.
        let id = unsafe { libc::semget(key(plan), 0, 0) };
        if id < 0 {
            return Err(os_error("finding the trial's System V semaphore"));
        }
        Ok(Box::new(Locked::new(Permit { id }, plan)))
    }
}

/// The trial's key: the runner's pid and a number from the trial's tag.
fn key(plan: &TrialPlan) -> libc::key_t {
    let trial = plan
        .tag
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    KEY_BIT | ((plan.runner_pid as libc::key_t & 0x3f_ffff) << 7) | (trial & 0x7f) as libc::key_t
}

fn os_error(doing: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{doing}: {e}"))
}

/// The runner's set for one trial: created fresh, removed on drop.
struct OwnedSet {
    id: libc::c_int,
}

impl OwnedSet {
    fn create(key: libc::key_t) -> io::Result<OwnedSet> {
        // SAFETY: semget only reads its arguments; IPC_EXCL refuses a set already there.
        let id = unsafe { libc::semget(key, 2, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(os_error("creating a System V semaphore"));
        }
        let set = OwnedSet { id };
        for (num, value) in [(0, 1), (1, MARK)] {
            // SAFETY: SETVAL takes an int as its fourth argument.
            if unsafe { libc::semctl(id, num, libc::SETVAL, value) } < 0 {
                return Err(os_error("setting a System V semaphore"));
            }
        }
        Ok(set)
    }
}

impl Fixture for OwnedSet {}

impl Drop for OwnedSet {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no fourth argument; removing a set already gone fails harmlessly.
        unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
    }
}

/// A buyer's side: the set's first semaphore, as a [`Lock`].
struct Permit {
    id: libc::c_int,
}

impl Permit {
    fn op(&self, delta: libc::c_short) -> io::Result<()> {
        let mut op = libc::sembuf {
            sem_num: 0,
            sem_op: delta,
            sem_flg: libc::SEM_UNDO as libc::c_short,
        };
        loop {
            // SAFETY: one valid sembuf, for as long as the call.
            if unsafe { libc::semop(self.id, &mut op, 1) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Lock for Permit {
    fn acquire(&mut self) -> io::Result<()> {
        self.op(-1)
    }

    fn release(&mut self) -> io::Result<()> {
        self.op(1)
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
            fields.first().and_then(|k| k.parse::<libc::key_t>().ok()),
            fields.get(1).and_then(|i| i.parse::<libc::c_int>().ok()),
            fields.get(3),
        ) else {
            continue;
        };
        if key & KEY_BIT == 0 || key & (1 << 29) != 0 || *nsems != "2" {
            continue;
        }
        // SAFETY: GETVAL takes no fourth argument.
        if unsafe { libc::semctl(id, 1, libc::GETVAL) } != MARK {
            continue;
        }
        let pid = (key >> 7) & 0x3f_ffff;
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        // SAFETY: as in `OwnedSet::drop`.
        if !alive && unsafe { libc::semctl(id, 0, libc::IPC_RMID) } == 0 {
            removed += 1;
        }
    }
    removed
}
