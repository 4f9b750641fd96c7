//! The baselines: bare loops that make the system calls of a strategy with nothing of sim
//! around them (no history, no clock readings, no trait objects), across forked processes
//! started together at a gate, timed from the gate opening to the last one finishing, as a
//! sim trial's `wall_ms` is. `file-lock` and `semaphore` are held against these. The same
//! loops also run recording a history as sim's workers do (`+history`), to tell what the
//! history costs from what the rest of sim does.
//!
//! `cargo bench --bench baseline`. Also here: prototypes of a `queue` seller, to show what a
//! seller process can reach on this machine with each way of taking its requests, and what
//! starting 100 processes costs here, bare.
//!
//! The children are forked from this (threaded) process, so they only make system calls on
//! memory prepared before the fork, and end with `_exit`; they die with the bench
//! (PR_SET_PDEATHSIG), and the semaphore is unlinked as soon as it is created.

mod common;

use std::ffi::CString;
use std::hint::black_box;
use std::io;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sim::sys::clock::{ticks, ticks_fenced, ticks_ordered};

const PROCESSES: [usize; 4] = [1, 2, 4, 8];
/// Purchases per race, as in `benches/trials.rs`.
const PURCHASES: usize = 24_000;
/// Purchases per race of the queue prototypes.
const QUEUE_PURCHASES: usize = 4_000;
const QUEUE_BUYERS: [usize; 2] = [1, 8];

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn check(r: libc::c_int, what: &str) -> libc::c_int {
    if r < 0 {
        panic!("{what}: {}", io::Error::last_os_error());
    }
    r
}

/// What a forked child has to wait at the start gate.
struct Gate {
    ready: libc::c_int,
    gate: libc::c_int,
}

impl Gate {
    /// Says this process is ready, then waits until the parent opens the gate.
    fn wait(&self) {
        // SAFETY: writing one byte from a valid buffer; reading into one.
        unsafe {
            libc::write(self.ready, [1u8].as_ptr().cast(), 1);
            let mut byte = 0u8;
            while libc::read(self.gate, (&raw mut byte).cast(), 1) != 0 {}
        }
    }
}

/// A fresh zeroed mapping of `len` bytes that forked children share with this process; the
/// caller unmaps it.
fn shared_zeroed(len: usize, what: &str) -> *mut libc::c_void {
    // SAFETY: a new anonymous mapping, asking nothing of existing memory.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "mapping {what}");
    map
}

/// Runs `work(i, gate)` in `n` forked processes that start together when the gate opens;
/// returns the time from the gate opening to the last of them finishing.
fn race(n: usize, work: &dyn Fn(usize, &Gate)) -> Duration {
    // One finishing time per child, in memory they share with this process.
    let len = n * std::mem::size_of::<u64>();
    let finish = shared_zeroed(len, "the finishing times").cast::<u64>(); // unmapped below
    let (mut ready, mut gate) = ([0; 2], [0; 2]);
    // SAFETY: arrays of two descriptors to fill.
    unsafe {
        check(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC), "pipe");
        check(libc::pipe2(gate.as_mut_ptr(), libc::O_CLOEXEC), "pipe");
    }
    let parent = std::process::id() as libc::pid_t;
    let mut children = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: the child makes system calls on memory prepared before the fork, then _exits.
        let pid = check(unsafe { libc::fork() }, "fork");
        if pid == 0 {
            // SAFETY: the child's own descriptors and its own exit.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(3);
                }
                libc::close(gate[1]);
                libc::close(ready[0]);
            }
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                work(
                    i,
                    &Gate {
                        ready: ready[1],
                        gate: gate[0],
                    },
                )
            }))
            .is_ok();
            // SAFETY: slot i of the shared mapping is this child's alone.
            unsafe {
                *finish.add(i) = now_ns();
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        children.push(pid);
    }
    // SAFETY: closing this process's copies of the children's ends; reading into a buffer.
    unsafe {
        libc::close(ready[1]);
        libc::close(gate[0]);
        let mut got = 0;
        let mut buf = [0u8; 64];
        while got < n {
            let r = libc::read(ready[0], buf.as_mut_ptr().cast(), buf.len().min(n - got));
            assert!(r > 0, "a child died before the gate");
            got += r as usize;
        }
    }
    let gate_ns = now_ns();
    // SAFETY: closing the gate's writer lets every child's read return 0.
    unsafe { libc::close(gate[1]) };
    let mut last = gate_ns;
    for (i, pid) in children.into_iter().enumerate() {
        let mut status = 0;
        // SAFETY: waiting for our own child; reading its slot once it has exited.
        unsafe {
            check(libc::waitpid(pid, &mut status, 0), "waitpid");
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child {i} failed: status {status}"
            );
            last = last.max(*finish.add(i));
        }
    }
    // SAFETY: the mapping and descriptor made above, no longer used.
    unsafe {
        libc::close(ready[0]);
        libc::munmap(finish.cast(), len);
    }
    Duration::from_nanos(last - gate_ns)
}

/// A fresh stock file holding `value`, returned as a C path for the children to open.
fn stock_file(dir: &Path, value: usize) -> CString {
    let path = dir.join("stock.txt");
    std::fs::write(&path, value.to_string()).expect("writing the stock");
    CString::new(path.into_os_string().into_encoded_bytes()).expect("a path without NUL")
}

fn read_stock(path: &CString) -> String {
    std::fs::read_to_string(path.to_str().expect("a UTF-8 path")).expect("reading the stock")
}

fn open_rw(path: &CString) -> libc::c_int {
    // SAFETY: a valid C string.
    check(
        unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) },
        "open",
    )
}

/// The read-modify-write a buyer makes, bare: pread, then if above zero pwrite the digits of
/// one less, and ftruncate only when the number got shorter. With a `record`, it notes what
/// sim's `strategy::sell` notes: the value and the moment read, the value and moment written.
fn sell(fd: libc::c_int, record: Option<&mut Record>) -> i64 {
    let mut buf = [0u8; 24];
    // SAFETY: reading into and writing from valid buffers of the lengths given.
    unsafe {
        let n = libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
        assert!(n > 0, "the stock file is empty");
        let n = n as usize;
        let value = buf[..n].iter().fold(0i64, |v, d| v * 10 + (d - b'0') as i64);
        let mut record = record;
        if let Some(r) = record.as_deref_mut() {
            r.read_ns = ticks_fenced();
            r.value = value;
        }
        if value <= 0 {
            return value;
        }
        let mut digits = [0u8; 20];
        let text = decimal(value - 1, &mut digits);
        if let Some(r) = record.as_deref_mut() {
            r.written = value - 1;
        }
        libc::pwrite(fd, text.as_ptr().cast(), text.len(), 0);
        if text.len() < n {
            libc::ftruncate(fd, text.len() as libc::off_t);
        }
        if let Some(r) = record {
            r.write_ns = ticks();
            r.outcome = 1;
        }
        value
    }
}

/// One operation as sim's history file lays it out: 64 bytes.
#[repr(C)]
struct Record {
    kind: u8,
    outcome: u8,
    _pad: [u8; 6],
    start_ns: u64,
    read_ns: u64,
    write_ns: u64,
    end_ns: u64,
    value: i64,
    written: i64,
    entry: u64,
}

/// A history file of `capacity` records after a 64-byte header, mapped shared, as a sim
/// worker's: each operation is written into the mapping, and nothing else.
struct HistoryFile {
    records: *mut Record,
    len: usize,
    capacity: usize,
}

/// How a bare loop records its operations.
#[derive(Clone, Copy, PartialEq)]
enum Recording {
    Off,
    /// As sim's workers: every page of the file written before the gate, and sim's stamps
    /// (`sim::sys::clock`): the invocation ordered, the read and the completion fenced, the
    /// write plain, each the time-stamp counter where the kernel keeps time with it.
    AsSim,
}

impl Recording {
    fn suffix(self) -> &'static str {
        match self {
            Recording::Off => "",
            Recording::AsSim => "+history",
        }
    }
}

impl HistoryFile {
    fn create(path: &CString, capacity: usize) -> HistoryFile {
        let size = 64 + capacity * std::mem::size_of::<Record>();
        // SAFETY: a valid C string; a new file sized and mapped here, never unmapped (the
        // process _exits).
        unsafe {
            let fd = check(
                libc::open(
                    path.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o644,
                ),
                "creating a history file",
            );
            check(libc::ftruncate(fd, size as libc::off_t), "sizing a history file");
            let map = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(map, libc::MAP_FAILED, "mapping a history file");
            libc::close(fd);
            for at in (0..size).step_by(4096) {
                *map.cast::<u8>().add(at) = 0; // as Recorder::open, before the gate
            }
            HistoryFile {
                records: map.cast::<u8>().add(64).cast(),
                len: 0,
                capacity,
            }
        }
    }

    /// Starts an operation, as `Recorder::begin`: a blank record stamped with the start.
    fn begin(&mut self) -> &mut Record {
        assert!(self.len < self.capacity, "history full");
        // SAFETY: inside the mapping, 8-aligned, written by this process alone.
        let record = unsafe { &mut *self.records.add(self.len) };
        self.len += 1;
        *record = Record {
            kind: 1,
            outcome: 0,
            _pad: [0; 6],
            start_ns: ticks_ordered(),
            read_ns: 0,
            write_ns: 0,
            end_ns: 0,
            value: i64::MIN,
            written: i64::MIN,
            entry: u64::MAX,
        };
        record
    }
}

/// The digits of `value` (not negative), without allocating.
fn decimal(value: i64, buf: &mut [u8; 20]) -> &[u8] {
    let (mut at, mut v) = (buf.len(), value);
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[at..];
        }
    }
}

/// A named semaphore of one permit, unlinked at once: forked children share its mapping.
struct Semaphore(*mut libc::sem_t);

impl Semaphore {
    fn new() -> Semaphore {
        let name = CString::new(format!("/sim-bench.{}", std::process::id())).expect("a name");
        // SAFETY: a valid C string; mode and value passed as sem_open's varargs.
        let sem = unsafe { libc::sem_open(name.as_ptr(), libc::O_CREAT | libc::O_EXCL, 0o600 as libc::c_uint, 1) };
        assert_ne!(sem, libc::SEM_FAILED, "sem_open: {}", io::Error::last_os_error());
        // SAFETY: the same name; the open semaphore stays usable.
        unsafe { libc::sem_unlink(name.as_ptr()) };
        Semaphore(sem)
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: opened in `new`, closed once.
        unsafe { libc::sem_close(self.0) };
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Guard {
    None,
    Flock,
    Semaphore,
    /// `fcntl(F_OFD_SETLKW)` over the whole stock file.
    Ofd,
    /// A System V semaphore taken with `SEM_UNDO`.
    Sysv,
    /// A process-shared robust pthread mutex.
    RobustMutex,
    /// The lease's take and give-back on shared words, around the file's read and write.
    Lease,
    /// A compare-exchange loop that decrements a shared count while it is above zero.
    Atomic,
    /// A load, then a compare-exchange from the value loaded, retried on conflict.
    Optimistic,
}

impl Guard {
    fn name(self) -> &'static str {
        match self {
            Guard::None => "none",
            Guard::Flock => "flock",
            Guard::Semaphore => "semaphore",
            Guard::Ofd => "ofd-lock",
            Guard::Sysv => "sysv-semaphore",
            Guard::RobustMutex => "robust-mutex",
            Guard::Lease => "lease",
            Guard::Atomic => "atomic",
            Guard::Optimistic => "optimistic",
        }
    }

    /// Whether the stock is a count in shared memory rather than the file.
    fn in_memory(self) -> bool {
        matches!(self, Guard::Atomic | Guard::Optimistic)
    }
}

/// Shared words the bare guards use: a robust mutex at 0, the lease's words at 64, the
/// in-memory count at 128.
const SHARED: usize = 256;
const MUTEX: usize = 0;
const LEASE: usize = 64;
const COUNT: usize = 128;

/// `F_OFD_SETLKW` of `kind` over the whole file, retried if a signal interrupts it.
fn ofd(fd: libc::c_int, kind: libc::c_int) {
    let range = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // SAFETY: an open descriptor and a flock that outlives the call.
    while unsafe { libc::fcntl(fd, libc::F_OFD_SETLKW, &range) } != 0 {}
}

/// `semop` of `delta` with `SEM_UNDO` on the set's first semaphore.
fn sysv(id: libc::c_int, delta: libc::c_short) {
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: libc::SEM_UNDO as libc::c_short,
    };
    // SAFETY: one valid sembuf.
    while unsafe { libc::semop(id, &mut op, 1) } != 0 {}
}

/// The lease's take, as `strategy::lease` makes it: under a guard word, take the lease if it
/// is free or expired, else poll.
fn lease_take(words: *mut u8, pid: u32) -> u64 {
    // SAFETY: the lease's words lie in the shared mapping, aligned, for the whole race.
    let (guard, holder, expiry, token) = unsafe {
        (
            AtomicU32::from_ptr(words.cast()),
            AtomicU32::from_ptr(words.add(4).cast()),
            AtomicU64::from_ptr(words.add(8).cast()),
            AtomicU64::from_ptr(words.add(16).cast()),
        )
    };
    loop {
        while guard.compare_exchange_weak(0, 1, SeqCst, Relaxed).is_err() {
            // SAFETY: no arguments.
            unsafe { libc::sched_yield() };
        }
        let now = now_ns();
        let free = holder.load(Relaxed) == 0 || expiry.load(Relaxed) <= now;
        let granted = free.then(|| {
            holder.store(pid, Relaxed);
            expiry.store(now + 1_000_000_000, Relaxed);
            token.fetch_add(1, Relaxed) + 1
        });
        guard.store(0, SeqCst);
        match granted {
            Some(t) => return t,
            // SAFETY: no arguments.
            None => unsafe {
                libc::sched_yield();
            },
        }
    }
}

/// The lease's give-back, if the grant is still this one.
fn lease_give_back(words: *mut u8, pid: u32, mine: u64) {
    // SAFETY: as in `lease_take`.
    let (guard, holder, token) = unsafe {
        (
            AtomicU32::from_ptr(words.cast()),
            AtomicU32::from_ptr(words.add(4).cast()),
            AtomicU64::from_ptr(words.add(16).cast()),
        )
    };
    while guard.compare_exchange_weak(0, 1, SeqCst, Relaxed).is_err() {
        // SAFETY: no arguments.
        unsafe { libc::sched_yield() };
    }
    if holder.load(Relaxed) == pid && token.load(Relaxed) == mine {
        holder.store(0, Relaxed);
    }
    guard.store(0, SeqCst);
}

/// One race of `processes` bare buyers that share `PURCHASES` under `guard`, recording
/// their operations or not.
fn bare_race(dir: &Path, guard: Guard, processes: usize, sem: &Semaphore, recording: Recording) -> Duration {
    let path = stock_file(dir, PURCHASES);
    let each = PURCHASES / processes;
    let sem = sem.0;
    let histories: Vec<CString> = (0..processes)
        .map(|i| {
            let path = dir.join(format!("buyer-{i:04}.bin"));
            let _ = std::fs::remove_file(&path);
            CString::new(path.into_os_string().into_encoded_bytes()).expect("a path without NUL")
        })
        .collect();
    let shared = shared_zeroed(SHARED, "the guards' shared words").cast::<u8>(); // unmapped below
    // SAFETY: the count's word lies in the fresh mapping, aligned; no child runs yet.
    let count = unsafe { AtomicI64::from_ptr(shared.add(COUNT).cast()) };
    count.store(PURCHASES as i64, SeqCst);
    if guard == Guard::RobustMutex {
        // SAFETY: a mutex in the fresh shared mapping, initialised before any child exists.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            check(
                libc::pthread_mutex_init(shared.add(MUTEX).cast(), &attr),
                "pthread_mutex_init",
            );
        }
    }
    // SAFETY: a new private set of one semaphore, removed below.
    let set = unsafe { libc::semget(libc::IPC_PRIVATE, 1, 0o600) };
    // SAFETY: SETVAL takes an int.
    check(
        unsafe { libc::semctl(check(set, "semget"), 0, libc::SETVAL, 1) },
        "semctl",
    );
    let wall = race(processes, &|i, gate| {
        let fd = open_rw(&path); // each its own open file description, or flock would not exclude
        let mut file = (recording != Recording::Off).then(|| HistoryFile::create(&histories[i], each));
        let pid = std::process::id();
        gate.wait();
        for _ in 0..each {
            let mut record = file.as_mut().map(HistoryFile::begin);
            // SAFETY: an open descriptor and semaphore, and words of the shared mapping.
            unsafe {
                match guard {
                    Guard::None => {
                        sell(fd, record.as_deref_mut());
                    }
                    Guard::Flock => {
                        libc::flock(fd, libc::LOCK_EX);
                        sell(fd, record.as_deref_mut());
                        libc::flock(fd, libc::LOCK_UN);
                    }
                    Guard::Semaphore => {
                        while libc::sem_wait(sem) != 0 {}
                        sell(fd, record.as_deref_mut());
                        libc::sem_post(sem);
                    }
                    Guard::Ofd => {
                        ofd(fd, libc::F_WRLCK);
                        sell(fd, record.as_deref_mut());
                        ofd(fd, libc::F_UNLCK);
                    }
                    Guard::Sysv => {
                        sysv(set, -1);
                        sell(fd, record.as_deref_mut());
                        sysv(set, 1);
                    }
                    Guard::RobustMutex => {
                        libc::pthread_mutex_lock(shared.add(MUTEX).cast());
                        sell(fd, record.as_deref_mut());
                        libc::pthread_mutex_unlock(shared.add(MUTEX).cast());
                    }
                    Guard::Lease => {
                        let token = lease_take(shared.add(LEASE), pid);
                        sell(fd, record.as_deref_mut());
                        lease_give_back(shared.add(LEASE), pid, token);
                    }
                    Guard::Atomic => {
                        let mut seen = count.load(Relaxed);
                        while seen > 0 {
                            match count.compare_exchange_weak(seen, seen - 1, SeqCst, Relaxed) {
                                Ok(_) => break,
                                Err(now) => seen = now,
                            }
                        }
                        black_box(seen);
                    }
                    Guard::Optimistic => loop {
                        let seen = count.load(Relaxed);
                        if seen <= 0 || count.compare_exchange(seen, seen - 1, SeqCst, Relaxed).is_ok() {
                            break;
                        }
                    },
                }
            }
            if let Some(r) = record {
                r.end_ns = ticks_fenced();
            }
        }
    });
    // SAFETY: IPC_RMID takes no fourth argument; the children are gone.
    unsafe { libc::semctl(set, 0, libc::IPC_RMID) };
    let left = count.load(SeqCst);
    // SAFETY: the mapping made above; every child that used it has exited.
    unsafe { libc::munmap(shared.cast(), SHARED) };
    match guard {
        Guard::None => {}
        g if g.in_memory() => assert_eq!(left, 0, "{} sold every ticket exactly once", g.name()),
        g => assert_eq!(read_stock(&path), "0", "{} sold every ticket exactly once", g.name()),
    }
    wall
}

/// The bare loops, and the same loops recording a history as sim's workers do (`+history`):
/// what recording itself costs, apart from everything else of sim.
fn bare_loops(c: &mut Criterion) {
    sim::sys::clock::use_tsc(sim::sys::clock::tsc_usable()); // as the runner tells its workers
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sem = Semaphore::new();
    let runs = [
        (Guard::None, Recording::Off),
        (Guard::Flock, Recording::Off),
        (Guard::Semaphore, Recording::Off),
        (Guard::Flock, Recording::AsSim),
        (Guard::Semaphore, Recording::AsSim),
        (Guard::Ofd, Recording::Off),
        (Guard::Sysv, Recording::Off),
        (Guard::RobustMutex, Recording::Off),
        (Guard::Lease, Recording::Off),
        (Guard::Lease, Recording::AsSim),
        (Guard::Atomic, Recording::Off),
        (Guard::Optimistic, Recording::Off),
    ];
    for (guard, recording) in runs {
        let mut group = c.benchmark_group(format!("bare/{}{}", guard.name(), recording.suffix()));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1500));
        group.throughput(Throughput::Elements(PURCHASES as u64));
        for processes in PROCESSES {
            group.bench_function(BenchmarkId::from_parameter(processes), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| bare_race(dir.path(), guard, processes, &sem, recording))
                        .sum()
                })
            });
        }
        group.finish();
    }
}

/// How a prototype seller takes its requests and keeps the stock.
#[derive(Clone, Copy)]
enum Seller {
    /// As sim's seller: wait with poll, then recvfrom until EAGAIN; per request pread,
    /// pwrite and a sendto of the reply.
    Drain,
    /// One recvmmsg (MSG_WAITFORONE) takes every waiting request; per request pread and
    /// pwrite; one sendmmsg answers the whole batch.
    Batch,
    /// As `Batch`, and the stock is read once and written once per batch: the seller owns
    /// it, so each sale's value is known without reading it back.
    BatchOneWrite,
    /// As `Drain`, but neither side sleeps at once: the seller polls its socket and the
    /// buyer its reply (non-blocking, with sched_yield between polls) for this many µs first.
    DrainYield { spin_us: u64 },
    /// No socket: each buyer has a slot in memory shared with the seller, posts its request
    /// there and sleeps on a futex; the seller scans the slots, sells, writes the reply into
    /// the slot and wakes the buyer, sleeping on a futex of its own when no slot holds a
    /// request. Either side polls (with sched_yield) this many µs before it sleeps, so that
    /// a peer running on the other CPU is answered without a wake-up.
    SharedMemory { spin_us: u64 },
}

impl Seller {
    fn name(self) -> &'static str {
        match self {
            Seller::Drain => "drain",
            Seller::Batch => "mmsg",
            Seller::BatchOneWrite => "mmsg-one-write",
            Seller::DrainYield { .. } => "drain-yield",
            Seller::SharedMemory { spin_us: 0 } => "shm-futex",
            Seller::SharedMemory { .. } => "shm-futex-yield",
        }
    }
}

const REQUEST: usize = 4;
const REPLY: usize = 40;
const BATCH: usize = 64;

/// The reply sim's seller sends: outcome, value, written, and the two clock readings.
fn reply(buf: &mut [u8; REPLY], value: i64, read_ns: u64) {
    buf[0] = 1;
    buf[8..16].copy_from_slice(&value.to_le_bytes());
    buf[16..24].copy_from_slice(&(value - 1).to_le_bytes());
    buf[24..32].copy_from_slice(&read_ns.to_le_bytes());
    buf[32..40].copy_from_slice(&now_ns().to_le_bytes());
}

fn serve_drain(socket: &UnixDatagram, fd: libc::c_int, total: usize, spin_ns: u64) {
    socket.set_nonblocking(true).expect("a non-blocking socket");
    let mut fds = [libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let mut served = 0;
    let mut request = [0u8; 16];
    while served < total {
        let waiting = || {
            let mut byte = [0u8; 1];
            // SAFETY: peeking into a valid one-byte buffer.
            unsafe {
                libc::recv(
                    socket.as_raw_fd(),
                    byte.as_mut_ptr().cast(),
                    1,
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                ) >= 0
            }
        };
        if !spin_until(spin_ns, waiting) {
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
        }
        while let Ok((_, from)) = socket.recv_from(&mut request) {
            let read_ns = now_ns();
            let value = sell(fd, None);
            let mut out = [0u8; REPLY];
            reply(&mut out, value, read_ns);
            let _ = socket.send_to_addr(&out, &from);
            served += 1;
        }
    }
}

fn serve_batch(socket: &UnixDatagram, fd: libc::c_int, total: usize, one_write: bool) {
    // SAFETY: plain C structs for which all-zero is a valid value.
    let mut names: [libc::sockaddr_un; BATCH] = unsafe { std::mem::zeroed() };
    let mut requests = [[0u8; 16]; BATCH];
    let mut replies = [[0u8; REPLY]; BATCH];
    // SAFETY: as above.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut out_iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut out: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovs[i] = libc::iovec {
            iov_base: requests[i].as_mut_ptr().cast(),
            iov_len: 16,
        };
        out_iovs[i] = libc::iovec {
            iov_base: replies[i].as_mut_ptr().cast(),
            iov_len: REPLY,
        };
        msgs[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_hdr.msg_name = (&raw mut names[i]).cast();
        out[i].msg_hdr.msg_iov = &raw mut out_iovs[i];
        out[i].msg_hdr.msg_iovlen = 1;
    }
    let mut served = 0;
    while served < total {
        for m in &mut msgs {
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        }
        // SAFETY: BATCH headers, each pointing at its own name and buffer.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        if one_write {
            // The seller owns the stock: read it once, sell n, write it once.
            let read_ns = now_ns();
            let mut buf = [0u8; 24];
            // SAFETY: reading into a valid buffer.
            let len = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) } as usize;
            let value = buf[..len].iter().fold(0i64, |v, d| v * 10 + (d - b'0') as i64);
            for (i, r) in replies.iter_mut().take(n).enumerate() {
                reply(r, value - i as i64, read_ns);
            }
            let mut digits = [0u8; 20];
            let text = decimal(value - n as i64, &mut digits);
            // SAFETY: writing from a valid buffer.
            unsafe {
                libc::pwrite(fd, text.as_ptr().cast(), text.len(), 0);
                if text.len() < len {
                    libc::ftruncate(fd, text.len() as libc::off_t);
                }
            }
        } else {
            for r in replies.iter_mut().take(n) {
                let read_ns = now_ns();
                let value = sell(fd, None);
                reply(r, value, read_ns);
            }
        }
        for i in 0..n {
            out[i].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: the first n reply headers, filled above.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    out[sent..].as_mut_ptr(),
                    (n - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                break;
            }
            sent += r as usize;
        }
        served += n;
    }
}

/// One race of `buyers` bare buyers, each sending a request and waiting for the reply, and
/// one prototype seller; purchases per second through the seller.
fn queue_race(dir: &Path, seller: Seller, buyers: usize) -> Duration {
    if let Seller::SharedMemory { spin_us } = seller {
        return shm_queue_race(dir, buyers, spin_us * 1_000);
    }
    let path = stock_file(dir, QUEUE_PURCHASES);
    let each = QUEUE_PURCHASES / buyers;
    let name = |who: &str| {
        SocketAddr::from_abstract_name(format!("sim-bench.{}.{who}", std::process::id()))
            .expect("an abstract socket name")
    };
    let seller_socket = UnixDatagram::bind_addr(&name("seller")).expect("binding the seller's socket");
    let sockets: Vec<UnixDatagram> = (0..buyers)
        .map(|i| {
            let s = UnixDatagram::bind_addr(&name(&format!("buyer{i}"))).expect("binding a buyer's socket");
            s.connect_addr(&name("seller")).expect("connecting to the seller");
            s
        })
        .collect();
    let wall = race(buyers + 1, &|i, gate| {
        if i == buyers {
            let fd = open_rw(&path);
            gate.wait();
            match seller {
                Seller::Drain => serve_drain(&seller_socket, fd, QUEUE_PURCHASES, 0),
                Seller::DrainYield { spin_us } => serve_drain(&seller_socket, fd, QUEUE_PURCHASES, spin_us * 1_000),
                Seller::Batch => serve_batch(&seller_socket, fd, QUEUE_PURCHASES, false),
                Seller::BatchOneWrite => serve_batch(&seller_socket, fd, QUEUE_PURCHASES, true),
                Seller::SharedMemory { .. } => unreachable!("served by shm_queue_race"),
            }
        } else {
            let socket = &sockets[i];
            let spin_ns = match seller {
                Seller::DrainYield { spin_us } => spin_us * 1_000,
                _ => 0,
            };
            gate.wait();
            let mut buf = [0u8; 64];
            for _ in 0..each {
                socket
                    .send(&(i as u32).to_le_bytes()[..REQUEST])
                    .expect("sending a request");
                let mut n = 0;
                let got = spin_until(spin_ns, || {
                    // SAFETY: receiving into a valid buffer.
                    let r = unsafe {
                        libc::recv(
                            socket.as_raw_fd(),
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            libc::MSG_DONTWAIT,
                        )
                    };
                    n = r.max(0) as usize;
                    r >= 0
                });
                if !got {
                    n = socket.recv(&mut buf).expect("receiving the reply");
                }
                assert_eq!(n, REPLY);
                black_box(&buf);
            }
        }
    });
    assert_eq!(
        read_stock(&path),
        "0",
        "the {} seller sold every ticket once",
        seller.name()
    );
    wall
}

/// A buyer's slot: `state` is 0 idle, 1 a request waits, 2 the reply is in.
#[repr(C, align(64))]
struct Slot {
    state: AtomicU32,
    /// The buyer sleeps on `state`: the seller must wake it.
    sleeping: AtomicU32,
    value: AtomicI64,
    read_ns: AtomicU64,
    write_ns: AtomicU64,
}

#[repr(C, align(64))]
struct Board {
    /// Bumped by every request: the seller sleeps on it.
    requests: AtomicU32,
    seller_sleeping: AtomicU32,
    slots: [Slot; 8],
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: a futex word in shared memory, alive for the call; no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

/// Polls `ready()` until it holds or `spin_ns` have passed, yielding the CPU between polls
/// (to a peer on the same CPU, whose answer it waits for); whether it became ready.
fn spin_until(spin_ns: u64, mut ready: impl FnMut() -> bool) -> bool {
    if spin_ns == 0 {
        return ready();
    }
    let start = now_ns();
    loop {
        if ready() {
            return true;
        }
        // SAFETY: no arguments; gives the CPU to a peer waiting for it on this one.
        unsafe { libc::sched_yield() };
        if now_ns() - start > spin_ns {
            return ready();
        }
    }
}

fn shm_queue_race(dir: &Path, buyers: usize, spin_ns: u64) -> Duration {
    assert!(buyers <= 8, "the board has 8 slots");
    let path = stock_file(dir, QUEUE_PURCHASES);
    let each = QUEUE_PURCHASES / buyers;
    let len = std::mem::size_of::<Board>();
    let board = shared_zeroed(len, "the board"); // unmapped below
    // SAFETY: the mapping is zeroed and as large as a Board; all-zero is a valid Board of
    // atomics.
    let b: &Board = unsafe { &*board.cast::<Board>() };
    let wall = race(buyers + 1, &|i, gate| {
        if i == buyers {
            let fd = open_rw(&path);
            gate.wait();
            let slots = &b.slots[..buyers];
            let mut served = 0;
            while served < QUEUE_PURCHASES {
                let mut found = 0;
                for slot in slots {
                    if slot.state.load(SeqCst) == 1 {
                        let read_ns = now_ns();
                        let value = sell(fd, None);
                        slot.value.store(value, Relaxed);
                        slot.read_ns.store(read_ns, Relaxed);
                        slot.write_ns.store(now_ns(), Relaxed);
                        slot.state.store(2, SeqCst);
                        if slot.sleeping.load(SeqCst) == 1 {
                            futex_wake(&slot.state);
                        }
                        found += 1;
                    }
                }
                served += found;
                if found == 0 {
                    let seen = b.requests.load(SeqCst);
                    if spin_until(spin_ns, || b.requests.load(SeqCst) != seen) {
                        continue;
                    }
                    b.seller_sleeping.store(1, SeqCst);
                    let seen = b.requests.load(SeqCst);
                    if !slots.iter().any(|s| s.state.load(SeqCst) == 1) {
                        futex_wait(&b.requests, seen);
                    }
                    b.seller_sleeping.store(0, SeqCst);
                }
            }
        } else {
            let slot = &b.slots[i];
            gate.wait();
            for _ in 0..each {
                slot.state.store(1, SeqCst);
                b.requests.fetch_add(1, SeqCst);
                if b.seller_sleeping.load(SeqCst) == 1 {
                    futex_wake(&b.requests);
                }
                while !spin_until(spin_ns, || slot.state.load(SeqCst) == 2) {
                    slot.sleeping.store(1, SeqCst);
                    if slot.state.load(SeqCst) == 1 {
                        futex_wait(&slot.state, 1);
                    }
                    slot.sleeping.store(0, SeqCst);
                }
                black_box(slot.value.load(Relaxed));
                slot.state.store(0, SeqCst);
            }
        }
    });
    // SAFETY: the mapping made above; the children are gone.
    unsafe { libc::munmap(board, len) };
    assert_eq!(
        read_stock(&path),
        "0",
        "the shared-memory seller sold every ticket once"
    );
    wall
}

fn queue_prototypes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for seller in [
        Seller::Drain,
        Seller::DrainYield { spin_us: 20 },
        Seller::Batch,
        Seller::BatchOneWrite,
        Seller::SharedMemory { spin_us: 0 },
        Seller::SharedMemory { spin_us: 20 },
    ] {
        let mut group = c.benchmark_group(format!("bare/queue-{}", seller.name()));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        group.throughput(Throughput::Elements(QUEUE_PURCHASES as u64));
        for buyers in QUEUE_BUYERS {
            group.bench_function(BenchmarkId::from_parameter(buyers), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| queue_race(dir.path(), seller, buyers)).sum())
            });
        }
        group.finish();
    }
}

/// What starting 100 workers costs here, bare: fork alone, fork and exec of a program that
/// does nothing, and creating 100 small files (a worker's history file each) on the disk
/// the trials use. `spawn/100-buyers` in `benches/trials.rs` is sim's figure.
fn spawn_100(c: &mut Criterion) {
    let mut group = c.benchmark_group("bare/spawn-100");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("fork", |b| b.iter_custom(|iters| (0..iters).map(|_| fork_100()).sum()));
    group.bench_function("exec-true", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| exec_100()).sum())
    });
    group.finish();
}

/// 100 forked children, each ready at a gate: from the first fork to all ready.
fn fork_100() -> Duration {
    let start = std::time::Instant::now();
    let mut ready = [0; 2];
    // SAFETY: an array of two descriptors to fill.
    check(unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) }, "pipe");
    let mut children = Vec::with_capacity(100);
    for _ in 0..100 {
        // SAFETY: the child writes one byte and _exits.
        let pid = check(unsafe { libc::fork() }, "fork");
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::write(ready[1], [1u8].as_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        children.push(pid);
    }
    // SAFETY: reading from our pipe; waiting for our children.
    unsafe {
        libc::close(ready[1]);
        let mut got = 0;
        let mut buf = [0u8; 100];
        while got < 100 {
            let r = libc::read(ready[0], buf.as_mut_ptr().cast(), 100 - got);
            assert!(r > 0, "a child died before it was ready");
            got += r as usize;
        }
        let elapsed = start.elapsed();
        libc::close(ready[0]);
        for pid in children {
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        elapsed
    }
}

/// 100 processes of /bin/true started as sim starts its workers: from the first to all exited.
fn exec_100() -> Duration {
    let start = std::time::Instant::now();
    let children: Vec<_> = (0..100)
        .map(|_| {
            std::process::Command::new("/bin/true")
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("starting /bin/true")
        })
        .collect();
    for mut child in children {
        child.wait().expect("waiting for /bin/true");
    }
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bare_loops, queue_prototypes, spawn_100
}
criterion_main!(benches);
