//! The board the `queue` strategy's buyers and seller share: a file of the trial's folder,
//! mapped by both sides, with a header and one slot per buyer process.
//!
//! A buyer posts its request in its slot (`state` 1) and bumps `requests`; the seller scans
//! the slots, sells for each request, writes the reply into the slot (`state` 2). Either side
//! polls, yielding the CPU, for [SPIN_NS] before it sleeps on a futex (the buyer on its
//! slot's `state`, the seller on `requests`), so that a peer on the other CPU is answered
//! without a wake-up. A sleeper says so first (`sleeping`) and then checks again, so that no
//! wake-up is lost; the other side wakes it only when it says it sleeps.

use std::fs::OpenOptions;
use std::io;
use std::mem::size_of;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI64, AtomicU64};

use memmap2::MmapMut;

use super::Reply;
use crate::clock::now_ns;

/// The board's file in the trial's folder.
pub const FILE: &str = "seller.board";

/// How long either side polls before it sleeps.
const SPIN_NS: u64 = 20_000;
/// A sleeper's longest nap before it looks again.
const NAP: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 100_000_000,
};

const IDLE: u32 = 0;
const REQUEST: u32 = 1;
const REPLIED: u32 = 2;

#[repr(C, align(64))]
struct Header {
    /// Bumped by every request and by the stop: the seller sleeps on it.
    requests: AtomicU32,
    /// 1 while the seller sleeps (or is about to) on `requests`.
    seller_sleeping: AtomicU32,
    /// Set by the runner once the clients are done: the seller returns.
    stop: AtomicU32,
}

/// One buyer process's slot.
#[repr(C, align(64))]
struct Slot {
    /// [IDLE], [REQUEST] waiting, or [REPLIED].
    state: AtomicU32,
    /// 1 while the buyer sleeps (or is about to) on `state`.
    sleeping: AtomicU32,
    outcome: AtomicU32,
    value: AtomicI64,
    written: AtomicI64,
    read_tick: AtomicU64,
    write_tick: AtomicU64,
}

/// One side's mapping of the board.
pub struct Board {
    map: MmapMut,
    slots: usize,
}

impl Board {
    /// Creates the board for `slots` buyer processes in the trial's folder (the runner's part).
    pub fn create(dir: &Path, slots: u32) -> io::Result<()> {
        std::fs::write(
            dir.join(FILE),
            vec![0u8; size_of::<Header>() + slots as usize * size_of::<Slot>()],
        )
    }

    pub fn open(dir: &Path) -> io::Result<Board> {
        let path = dir.join(FILE);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        // SAFETY: the file is only ever accessed through atomic operations on shared
        // mappings like this one, by the runner, the seller and the buyers; it is not
        // truncated while they map it.
        let map = unsafe { MmapMut::map_mut(&file)? };
        let len = map.len();
        if len < size_of::<Header>() || !(len - size_of::<Header>()).is_multiple_of(size_of::<Slot>()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes: not a board", path.display()),
            ));
        }
        Ok(Board {
            map,
            slots: (len - size_of::<Header>()) / size_of::<Slot>(),
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned, at least a header long (checked in `open`),
        // lives as long as `self`, and all-zero bytes are a valid header of atomics.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.slots, "slot {i} of a board of {}", self.slots);
        // SAFETY: slot i lies inside the mapping (the assertion above and the length checked
        // in `open`), 64-byte aligned after the 64-byte header; all-zero is a valid slot.
        unsafe { &*(self.map.as_ptr().add(size_of::<Header>() + i * size_of::<Slot>()) as *const Slot) }
    }

    /// How many buyer processes have a slot.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// A buyer's side: posts a request in slot `i` and wakes the seller if it sleeps.
    pub fn post(&self, i: usize) {
        let (h, slot) = (self.header(), self.slot(i));
        slot.state.store(REQUEST, SeqCst);
        h.requests.fetch_add(1, SeqCst);
        if h.seller_sleeping.load(SeqCst) == 1 {
            futex_wake(&h.requests);
        }
    }

    /// A buyer's side: waits for the reply to the request posted in slot `i`, takes it and
    /// frees the slot.
    pub fn wait_reply(&self, i: usize) -> Reply {
        let slot = self.slot(i);
        while !spin_until(SPIN_NS, || slot.state.load(SeqCst) == REPLIED) {
            slot.sleeping.store(1, SeqCst);
            if slot.state.load(SeqCst) == REQUEST {
                futex_wait(&slot.state, REQUEST);
            }
            slot.sleeping.store(0, SeqCst);
        }
        let reply = Reply {
            outcome: slot.outcome.load(Relaxed) as u8,
            value: slot.value.load(Relaxed),
            written: slot.written.load(Relaxed),
            read_tick: slot.read_tick.load(Relaxed),
            write_tick: slot.write_tick.load(Relaxed),
        };
        slot.state.store(IDLE, SeqCst);
        reply
    }

    /// The seller's loop: answers every request with `sell`'s reply, scanning the slots in
    /// turn, until the runner sets `stop`.
    pub fn serve(&self, mut sell: impl FnMut() -> io::Result<Reply>) -> io::Result<()> {
        let h = self.header();
        let waiting = || (0..self.slots).any(|i| self.slot(i).state.load(SeqCst) == REQUEST);
        while h.stop.load(SeqCst) == 0 {
            let mut found = false;
            for i in 0..self.slots {
                let slot = self.slot(i);
                if slot.state.load(SeqCst) != REQUEST {
                    continue;
                }
                found = true;
                let reply = sell()?;
                slot.outcome.store(reply.outcome as u32, Relaxed);
                slot.value.store(reply.value, Relaxed);
                slot.written.store(reply.written, Relaxed);
                slot.read_tick.store(reply.read_tick, Relaxed);
                slot.write_tick.store(reply.write_tick, Relaxed);
                slot.state.store(REPLIED, SeqCst);
                if slot.sleeping.load(SeqCst) == 1 {
                    futex_wake(&slot.state);
                }
            }
            if found {
                continue;
            }
            let seen = h.requests.load(SeqCst);
            if spin_until(SPIN_NS, || h.requests.load(SeqCst) != seen) {
                continue;
            }
            h.seller_sleeping.store(1, SeqCst);
            let seen = h.requests.load(SeqCst);
            if h.stop.load(SeqCst) == 0 && !waiting() {
                futex_wait(&h.requests, seen);
            }
            h.seller_sleeping.store(0, SeqCst);
        }
        Ok(())
    }

    /// The runner's side: tells the seller to return, and wakes it.
    pub fn stop(&self) {
        let h = self.header();
        h.stop.store(1, SeqCst);
        h.requests.fetch_add(1, SeqCst);
        futex_wake(&h.requests);
    }
}

/// Sleeps while `word` holds `expected`, for at most [NAP]; a wake-up, a signal, a change or
/// the nap's end return alike, and the caller looks again.
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned 32-bit word of a shared mapping; FUTEX_WAIT without
    // the private flag, as the word is shared between processes; the timeout outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &NAP as *const libc::timespec,
        )
    };
}

/// Wakes every process sleeping on `word` (at most one does).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE reads no memory but the word's address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Polls `ready()` until it holds or `spin_ns` have passed, yielding the CPU between polls
/// (to a peer on the same CPU, whose answer it waits for); whether it became ready.
fn spin_until(spin_ns: u64, mut ready: impl FnMut() -> bool) -> bool {
    let start = now_ns();
    loop {
        if ready() {
            return true;
        }
        // SAFETY: no arguments; gives the CPU to a peer that waits for it on this one.
        unsafe { libc::sched_yield() };
        if now_ns().saturating_sub(start) > spin_ns {
            return ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gets_its_reply_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        Board::create(dir.path(), 2).unwrap();
        let seller = Board::open(dir.path()).unwrap();
        assert_eq!(seller.slots(), 2);
        let server = std::thread::spawn(move || {
            let mut n = 0;
            seller
                .serve(|| {
                    n += 1;
                    Ok(Reply {
                        outcome: 1,
                        value: 100 - n,
                        written: 99 - n,
                        read_tick: n as u64,
                        write_tick: n as u64 + 1,
                    })
                })
                .unwrap();
            n
        });
        let buyer = Board::open(dir.path()).unwrap();
        let mut values = Vec::new();
        for k in 0..1000 {
            let i = k % 2;
            buyer.post(i);
            if k % 100 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1)); // let the seller sleep
            }
            let r = buyer.wait_reply(i);
            assert_eq!(r.outcome, 1);
            assert_eq!(r.written, r.value - 1);
            values.push(r.value);
        }
        Board::open(dir.path()).unwrap().stop();
        assert_eq!(server.join().unwrap(), 1000);
        assert_eq!(values, (0..1000).map(|n| 99 - n).collect::<Vec<i64>>());
    }
}
