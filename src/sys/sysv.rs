//! System V semaphore sets (`semget`, `semop`, `semctl`), which neither nix nor rustix wraps.
//! A set lives in the kernel until it is removed, whatever happens to the processes that
//! use it: `ipcs -s` lists them.
//!
//! [`SemaphoreSet::change_with_undo`] runs inside every purchase of the `sysv-semaphore`
//! strategy: one libc call, inlined into the caller.

use std::io;

/// The key a set is found by.
pub type Key = libc::key_t;

/// A set, by its id. It is the kernel's, not this value's: [`SemaphoreSet::remove`] removes
/// it, and a wrong id only makes the calls fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreSet {
    id: libc::c_int,
}

impl SemaphoreSet {
    /// Creates a set of `count` semaphores (each 0) under `key`, readable and writable by this
    /// user alone; fails if one exists (`IPC_EXCL`).
    pub fn create(key: Key, count: u16) -> io::Result<SemaphoreSet> {
        // SAFETY: semget only reads its three integer arguments.
        SemaphoreSet::checked(unsafe { libc::semget(key, count.into(), libc::IPC_CREAT | libc::IPC_EXCL | 0o600) })
    }

    /// The existing set under `key`.
    pub fn find(key: Key) -> io::Result<SemaphoreSet> {
        // SAFETY: as in `create`.
        SemaphoreSet::checked(unsafe { libc::semget(key, 0, 0) })
    }

    /// The set whose id is `id`, as `/proc/sysvipc/sem` lists it.
    pub fn from_id(id: i32) -> SemaphoreSet {
        SemaphoreSet { id }
    }

    fn checked(id: libc::c_int) -> io::Result<SemaphoreSet> {
        if id < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(SemaphoreSet { id })
        }
    }

    /// Sets semaphore `num` to `value` (`SETVAL`).
    pub fn set_value(self, num: u16, value: i32) -> io::Result<()> {
        // SAFETY: SETVAL reads an int as semctl's fourth, variadic, argument: `value`.
        minus_one_is_error(unsafe { libc::semctl(self.id, num.into(), libc::SETVAL, value) })
    }

    /// The value of semaphore `num` (`GETVAL`).
    pub fn value(self, num: u16) -> io::Result<i32> {
        // SAFETY: GETVAL reads no fourth argument.
        let value = unsafe { libc::semctl(self.id, num.into(), libc::GETVAL) };
        minus_one_is_error(value).map(|()| value)
    }

    /// Adds `delta` to semaphore `num`, waiting while that would take it below 0 (again after
    /// a signal's interruption). With `SEM_UNDO`: the kernel takes back what a process added
    /// when it ends, so a dead holder's permit comes back.
    #[inline]
    pub fn change_with_undo(self, num: u16, delta: i16) -> io::Result<()> {
        let mut op = libc::sembuf {
            sem_num: num,
            sem_op: delta,
            sem_flg: libc::SEM_UNDO as libc::c_short,
        };
        loop {
            // SAFETY: one valid sembuf, borrowed for the call.
            if unsafe { libc::semop(self.id, &mut op, 1) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Removes the set (`IPC_RMID`), waking whoever waits on it with an error.
    pub fn remove(self) -> io::Result<()> {
        // SAFETY: IPC_RMID reads no fourth argument.
        minus_one_is_error(unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) })
    }
}

fn minus_one_is_error(result: libc::c_int) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_created_once_found_by_key_changed_and_removed() {
        // Bit 29 set: a key that sim's trials (bit 30) and their sweep never use.
        let key = (1 << 29) | (std::process::id() as Key & 0xf_ffff);
        let set = SemaphoreSet::create(key, 2).unwrap();
        assert!(SemaphoreSet::create(key, 2).is_err(), "IPC_EXCL");
        assert_eq!(SemaphoreSet::find(key).unwrap(), set);
        set.set_value(0, 1).unwrap();
        set.set_value(1, 0x51d).unwrap();
        assert_eq!(set.value(1).unwrap(), 0x51d);
        set.change_with_undo(0, -1).unwrap();
        assert_eq!(set.value(0).unwrap(), 0);
        set.change_with_undo(0, 1).unwrap();
        assert_eq!(SemaphoreSet::from_id(set.id).value(0).unwrap(), 1);
        set.remove().unwrap();
        assert!(set.remove().is_err(), "removed already");
        assert!(SemaphoreSet::find(key).is_err());
    }
}
