//! `ofd-lock`: an open-file-description byte-range lock (`fcntl` `F_OFD_SETLKW`) over the
//! whole stock file.
//!
//! Like a flock, it belongs to the open file description, so each buyer opens the file
//! itself and the kernel drops the lock when its holder dies; unlike a classic POSIX
//! (`F_SETLKW`) lock, it is not lost when the process closes any other descriptor of the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

use super::{Lock, Locked, Purchase, Strategy};
use crate::plan::TrialPlan;

/// The `ofd-lock` strategy.
pub struct OfdLock;

impl Strategy for OfdLock {
    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        // A write lock needs a descriptor open for writing.
        let lock = WholeFile {
            file: OpenOptions::new().read(true).write(true).open(&plan.stock_path)?,
        };
        Ok(Box::new(Locked::new(lock, plan)))
    }
}

/// A buyer's own open file description of the stock file, to lock from its first byte to
/// past its last.
struct WholeFile {
    file: File,
}

impl WholeFile {
    fn set(&self, kind: libc::c_int) -> io::Result<()> {
        let range = libc::flock {
            l_type: kind as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0, // to the end, however long the file grows
            l_pid: 0, // as F_OFD_* requires
        };
        loop {
            // SAFETY: a valid descriptor this struct owns, and a flock that outlives the call.
            if unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_SETLKW, &range) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Lock for WholeFile {
    fn acquire(&mut self) -> io::Result<()> {
        self.set(libc::F_WRLCK)
    }

    fn release(&mut self) -> io::Result<()> {
        self.set(libc::F_UNLCK)
    }
}
