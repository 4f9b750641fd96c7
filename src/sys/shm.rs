//! Shared memory: the one module where sim looks at mapped bytes as typed values.
//!
//! Workers of a trial share files mapped into memory: each worker's region of the history
//! file, the `queue` strategy's board, a pool's task counter. What one process stores there,
//! the others see at once, and what a killed process stored stays in the file. Everything
//! `unsafe` about that is here, behind a safe interface:
//! - a [`Mapping`] maps a file, or a part of it;
//! - plain data (`repr(C)` structs of integers, [`Pod`]) is read and written through
//!   bytemuck's checked casts ([`Mapping::pod_mut`], [`read_pod`]);
//! - words shared by several processes at once are atomics ([`Mapping::atomic_u32`] and its
//!   siblings), checked for bounds and alignment;
//! - a process sleeps on such a word with a futex ([`futex_wait`], [`futex_wake`]);
//! - how many processes are attached to a System V segment of another program (a killed
//!   PostgreSQL's), [`sysv_attached`].

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::{align_of, size_of};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::time::Duration;

pub use bytemuck::{Pod, Zeroable, bytes_of};
use memmap2::{MmapMut, MmapOptions};
use rustix::thread::futex;

/// The page size of every machine sim runs on (x86-64 and arm64 Linux with 4 KiB pages):
/// regions that are mapped alone start on one.
pub const PAGE: u64 = 4096;

/// Gives `file` its first `len` bytes on disk now, every block allocated (`posix_fallocate`):
/// a mapping of a sparse file meets a full disk only when a page is first written, as a
/// SIGBUS that kills the writer; allocated up front, a full disk is an error here instead.
pub fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("a file longer than off_t holds"))?;
    // SAFETY: `file` is open for the duration of the call, and posix_fallocate only reads its
    // descriptor and two integers.
    let error = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    // It returns the error number rather than setting errno.
    match error {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// A file, or a part of one, mapped shared into this process for reading and writing.
pub struct Mapping {
    map: MmapMut,
}

impl Mapping {
    /// Maps the whole file at `path`.
    pub fn open(path: &Path) -> io::Result<Mapping> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len() as usize;
        Mapping::range(&file, 0, len)
    }

    /// Maps `len` bytes of `file` from `offset`, a multiple of [`PAGE`].
    pub fn range(file: &File, offset: u64, len: usize) -> io::Result<Mapping> {
        // SAFETY: sim maps only files it made for sharing (a history file, a board, a pool's
        // counter) and never truncates one while a process maps it. Through this type, a
        // mapping's bytes are either written by one process alone (`pod_mut`, a worker's own
        // history region, read by others only after it exited) or accessed atomically.
        let map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        Ok(Mapping { map })
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it maps no byte at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Touches every page for writing now, so that the page faults and block allocations of
    /// the first writes happen here rather than inside the operations being timed.
    pub fn prefault(&mut self) {
        for at in (0..self.map.len()).step_by(PAGE as usize) {
            // The value read goes through black_box, so the store of it cannot be left out.
            self.map[at] = std::hint::black_box(self.map[at]);
        }
    }

    /// The plain-data `T` at byte `at`, for the process that alone writes it. Panics if it
    /// does not fit or is misaligned: a caller's layout error, not an input's.
    pub fn pod_mut<T: Pod>(&mut self, at: usize) -> &mut T {
        bytemuck::from_bytes_mut(&mut self.map[at..at + size_of::<T>()])
    }

    /// The pointer to a `T` at byte `at`, checked to lie inside the mapping and be aligned.
    fn word<T>(&self, at: usize) -> *mut T {
        assert!(
            at.is_multiple_of(align_of::<T>()) && at + size_of::<T>() <= self.map.len(),
            "a {}-byte word at byte {at} of a {}-byte mapping",
            size_of::<T>(),
            self.map.len()
        );
        // The mapping is page-aligned, so an aligned offset is an aligned address.
        self.map.as_ptr().wrapping_add(at) as *mut T
    }

    /// The 32-bit word at byte `at`, shared with every process that maps the same file.
    pub fn atomic_u32(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `word` checked bounds and alignment; the bytes live as long as `self`; every
        // process accesses shared words only atomically (see `range`), and all bit patterns
        // are valid integers.
        unsafe { AtomicU32::from_ptr(self.word(at)) }
    }

    /// The 64-bit word at byte `at`, as [`Mapping::atomic_u32`].
    pub fn atomic_u64(&self, at: usize) -> &AtomicU64 {
        // SAFETY: as in `atomic_u32`.
        unsafe { AtomicU64::from_ptr(self.word(at)) }
    }

    /// The signed 64-bit word at byte `at`, as [`Mapping::atomic_u32`].
    pub fn atomic_i64(&self, at: usize) -> &AtomicI64 {
        // SAFETY: as in `atomic_u32`.
        unsafe { AtomicI64::from_ptr(self.word(at)) }
    }
}

/// A process-shared robust pthread mutex in a mapping: when its holder dies, the next
/// process to lock it is told so, and repairs it.
pub struct RobustMutex<'a> {
    mutex: *mut libc::pthread_mutex_t,
    _map: std::marker::PhantomData<&'a Mapping>,
}

/// How a [`RobustMutex`] was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// From a holder that unlocked it.
    Clean,
    /// From a holder that died holding it (`EOWNERDEAD`); this process made it consistent.
    Recovered,
}

impl Mapping {
    /// Initialises a process-shared robust mutex at byte `at`: the runner's part, before any
    /// worker maps the file.
    pub fn init_robust_mutex(&mut self, at: usize) -> io::Result<()> {
        let mutex = self.word::<libc::pthread_mutex_t>(at);
        // SAFETY: `mutex` points into this mapping (checked by `word`), which no other
        // process uses yet; the attribute object lives on this stack and is destroyed after.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            check(libc::pthread_mutexattr_init(&mut attr))?;
            check(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))?;
            check(libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST))?;
            let made = check(libc::pthread_mutex_init(mutex, &attr));
            libc::pthread_mutexattr_destroy(&mut attr);
            made
        }
    }

    /// The robust mutex at byte `at`, initialised by [`Mapping::init_robust_mutex`].
    #[inline]
    pub fn robust_mutex(&self, at: usize) -> RobustMutex<'_> {
        RobustMutex {
            mutex: self.word(at),
            _map: std::marker::PhantomData,
        }
    }
}

impl RobustMutex<'_> {
    /// Waits until this process holds it; says whether it was taken from a dead holder.
    #[inline]
    pub fn lock(&self) -> io::Result<Taken> {
        // SAFETY: the mutex lies inside a live mapping and was initialised, shared and
        // robust, before any worker started.
        match unsafe { libc::pthread_mutex_lock(self.mutex) } {
            0 => Ok(Taken::Clean),
            libc::EOWNERDEAD => {
                // SAFETY: as above; this process holds the mutex, as EOWNERDEAD says.
                check(unsafe { libc::pthread_mutex_consistent(self.mutex) })?;
                Ok(Taken::Recovered)
            }
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    /// Lets it go.
    #[inline]
    pub fn unlock(&self) -> io::Result<()> {
        // SAFETY: as in `lock`; this process holds it.
        check(unsafe { libc::pthread_mutex_unlock(self.mutex) })
    }
}

/// A pthread call's result as an `io::Result`.
#[inline]
fn check(code: libc::c_int) -> io::Result<()> {
    match code {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Reads a plain-data `T` from the start of `bytes`, whatever their alignment. Panics if
/// `bytes` is shorter than a `T`.
pub fn read_pod<T: Pod>(bytes: &[u8]) -> T {
    bytemuck::pod_read_unaligned(&bytes[..size_of::<T>()])
}

/// Sleeps while `word` holds `expected`, for at most `nap`; a wake-up, a signal, a change or
/// the nap's end return alike, and the caller looks again. Not `FUTEX_PRIVATE`: the word may
/// be shared between processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, nap: Duration) {
    let timeout = futex::Timespec {
        tv_sec: nap.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: nap.subsec_nanos().into(),
    };
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&timeout));
}

/// Wakes every process sleeping on `word`.
pub fn futex_wake(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

/// Gives the CPU to another process that is ready to run on it: to a peer whose answer this
/// one is polling for.
pub fn yield_cpu() {
    rustix::thread::sched_yield();
}

/// How many processes are attached to the System V shared memory segment `shmid`; `None` if
/// there is no such segment (or it cannot be looked at).
pub fn sysv_attached(shmid: i32) -> Option<u64> {
    // SAFETY: shmid_ds is a plain C struct, for which all zeroes is a valid value.
    let mut stat: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT only fills `stat`, a valid shmid_ds that outlives the call.
    let found = unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut stat) } == 0;
    found.then_some(stat.shm_nattch as u64)
}

/// Removes the System V shared memory segment `shmid` (`IPC_RMID`): what a server killed
/// outright leaves behind, once no process is attached to it.
pub fn sysv_remove(shmid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer: a null one is what it takes.
    match unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;

    #[test]
    fn two_mappings_of_one_file_share_their_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let (a, b) = (Mapping::open(&path).unwrap(), Mapping::open(&path).unwrap());
        a.atomic_u64(8).store(7, SeqCst);
        assert_eq!(b.atomic_u64(8).load(SeqCst), 7);
        a.atomic_u32(4).fetch_add(3, SeqCst);
        assert_eq!(b.atomic_u32(4).load(SeqCst), 3);
        assert_eq!(std::fs::read(&path).unwrap()[8], 7, "stored in the file");
    }

    #[test]
    fn a_robust_mutex_is_recovered_from_a_dead_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutex");
        std::fs::write(&path, [0u8; 64]).unwrap();
        Mapping::open(&path).unwrap().init_robust_mutex(0).unwrap();
        let holder = std::thread::spawn(move || {
            let map = Mapping::open(&path).unwrap();
            assert_eq!(map.robust_mutex(0).lock().unwrap(), Taken::Clean);
            // The thread ends holding it, as a killed process would. Its mapping stays, as
            // a dying process's does until the kernel has marked its robust mutexes.
            std::mem::forget(map);
        });
        holder.join().unwrap();
        let map = Mapping::open(&dir.path().join("mutex")).unwrap();
        let mutex = map.robust_mutex(0);
        assert_eq!(mutex.lock().unwrap(), Taken::Recovered);
        mutex.unlock().unwrap();
        assert_eq!(mutex.lock().unwrap(), Taken::Clean);
        mutex.unlock().unwrap();
    }

    #[test]
    #[should_panic(expected = "a 8-byte word at byte 60")]
    fn a_word_past_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        std::fs::write(&path, [0u8; 64]).unwrap();
        Mapping::open(&path).unwrap().atomic_u64(60);
    }

    #[test]
    #[should_panic]
    fn a_misaligned_word_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        std::fs::write(&path, [0u8; 64]).unwrap();
        Mapping::open(&path).unwrap().atomic_u32(2);
    }
}
