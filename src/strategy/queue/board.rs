//! The board the `queue` strategy's buyers and seller share: a file of the trial's folder,
//! mapped by both sides, with a header and one slot per buyer process.
//!
//! A buyer posts its request in its slot (`state` 1) and bumps `requests`; the seller scans
//! the slots, sells for each request, writes the reply into the slot (`state` 2). Either side
//! polls, yielding the CPU, for [SPIN_NS] before it sleeps on a futex (the buyer on its
//! slot's `state`, the seller on `requests`), so that a peer on the other CPU is answered
//! without a wake-up. A sleeper says so first (`sleeping`) and then checks again, so that no
//! wake-up is lost; the other side wakes it only when it says it sleeps.

use std::io;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};
use std::time::Duration;

use super::Reply;
use crate::history::Outcome;
use crate::sys::clock::now_ns;
use crate::sys::shm::{Mapping, futex_wait, futex_wake, yield_cpu};

/// The board's file in the trial's folder.
pub const FILE: &str = "seller.board";

/// How long either side polls before it sleeps.
const SPIN_NS: u64 = 20_000;
/// A sleeper's longest nap before it looks again.
const NAP: Duration = Duration::from_millis(100);

const IDLE: u32 = 0;
const REQUEST: u32 = 1;
const REPLIED: u32 = 2;

/// Where the header's words lie, at the start of the file. Each word is shared by several
/// processes and only ever accessed atomically, through [`Header`].
#[repr(C, align(64))]
struct HeaderLayout {
    /// Bumped by every request and by the stop: the seller sleeps on it.
    requests: u32,
    /// 1 while the seller sleeps (or is about to) on `requests`.
    seller_sleeping: u32,
    /// Set by the runner once the clients are done: the seller returns.
    stop: u32,
}

/// Where one buyer process's slot's words lie, after the header, one slot after another.
#[repr(C, align(64))]
struct SlotLayout {
    /// [IDLE], [REQUEST] waiting, or [REPLIED].
    state: u32,
    /// 1 while the buyer sleeps (or is about to) on `state`.
    sleeping: u32,
    outcome: u32,
    value: i64,
    written: i64,
    read_tick: u64,
    write_tick: u64,
}

/// The header's words in a mapping of the board.
struct Header<'a>(&'a Mapping);

impl<'a> Header<'a> {
    fn requests(&self) -> &'a AtomicU32 {
        self.0.atomic_u32(offset_of!(HeaderLayout, requests))
    }

    fn seller_sleeping(&self) -> &'a AtomicU32 {
        self.0.atomic_u32(offset_of!(HeaderLayout, seller_sleeping))
    }

    fn stop(&self) -> &'a AtomicU32 {
        self.0.atomic_u32(offset_of!(HeaderLayout, stop))
    }
}

/// One slot's words in a mapping of the board.
struct Slot<'a> {
    map: &'a Mapping,
    at: usize,
}

impl<'a> Slot<'a> {
    fn state(&self) -> &'a AtomicU32 {
        self.map.atomic_u32(self.at + offset_of!(SlotLayout, state))
    }

    fn sleeping(&self) -> &'a AtomicU32 {
        self.map.atomic_u32(self.at + offset_of!(SlotLayout, sleeping))
    }

    fn outcome(&self) -> &'a AtomicU32 {
        self.map.atomic_u32(self.at + offset_of!(SlotLayout, outcome))
    }

    fn value(&self) -> &'a AtomicI64 {
        self.map.atomic_i64(self.at + offset_of!(SlotLayout, value))
    }

    fn written(&self) -> &'a AtomicI64 {
        self.map.atomic_i64(self.at + offset_of!(SlotLayout, written))
    }

    fn read_tick(&self) -> &'a AtomicU64 {
        self.map.atomic_u64(self.at + offset_of!(SlotLayout, read_tick))
    }

    fn write_tick(&self) -> &'a AtomicU64 {
        self.map.atomic_u64(self.at + offset_of!(SlotLayout, write_tick))
    }
}

/// One side's mapping of the board.
pub struct Board {
    map: Mapping,
    slots: usize,
}

impl Board {
    /// Creates the board for `slots` buyer processes in the trial's folder (the runner's part).
    pub fn create(dir: &Path, slots: u32) -> io::Result<()> {
        std::fs::write(
            dir.join(FILE),
            vec![0u8; size_of::<HeaderLayout>() + slots as usize * size_of::<SlotLayout>()],
        )
    }

    /// Maps the board of the trial whose folder is `dir`.
    pub fn open(dir: &Path) -> io::Result<Board> {
        let path = dir.join(FILE);
        let map = Mapping::open(&path)?;
        let len = map.len();
        if len < size_of::<HeaderLayout>() || !(len - size_of::<HeaderLayout>()).is_multiple_of(size_of::<SlotLayout>())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes: not a board", path.display()),
            ));
        }
        Ok(Board {
            map,
            slots: (len - size_of::<HeaderLayout>()) / size_of::<SlotLayout>(),
        })
    }

    fn header(&self) -> Header<'_> {
        Header(&self.map)
    }

    fn slot(&self, i: usize) -> Slot<'_> {
        assert!(i < self.slots, "slot {i} of a board of {}", self.slots);
        Slot {
            map: &self.map,
            at: size_of::<HeaderLayout>() + i * size_of::<SlotLayout>(),
        }
    }

    /// How many buyer processes have a slot.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// A buyer's side: posts a request in slot `i` and wakes the seller if it sleeps.
    pub fn post(&self, i: usize) {
        let (h, slot) = (self.header(), self.slot(i));
        slot.state().store(REQUEST, SeqCst);
        h.requests().fetch_add(1, SeqCst);
        if h.seller_sleeping().load(SeqCst) == 1 {
            futex_wake(h.requests());
        }
    }

    /// A buyer's side: waits for the reply to the request posted in slot `i`, takes it and
    /// frees the slot.
    pub fn wait_reply(&self, i: usize) -> Reply {
        let slot = self.slot(i);
        let state = slot.state();
        while !spin_until(SPIN_NS, || state.load(SeqCst) == REPLIED) {
            slot.sleeping().store(1, SeqCst);
            if state.load(SeqCst) == REQUEST {
                futex_wait(state, REQUEST, NAP);
            }
            slot.sleeping().store(0, SeqCst);
        }
        let reply = Reply {
            outcome: Outcome::from_repr(slot.outcome().load(Relaxed) as u8).unwrap_or(Outcome::Pending),
            value: slot.value().load(Relaxed),
            written: slot.written().load(Relaxed),
            read_tick: slot.read_tick().load(Relaxed),
            write_tick: slot.write_tick().load(Relaxed),
        };
        state.store(IDLE, SeqCst);
        reply
    }

    /// The seller's loop: answers every request with `sell`'s reply, scanning the slots in
    /// turn, until the runner sets `stop`.
    pub fn serve(&self, mut sell: impl FnMut() -> io::Result<Reply>) -> io::Result<()> {
        let h = self.header();
        let (requests, stop) = (h.requests(), h.stop());
        let waiting = || (0..self.slots).any(|i| self.slot(i).state().load(SeqCst) == REQUEST);
        while stop.load(SeqCst) == 0 {
            let mut found = false;
            for i in 0..self.slots {
                let slot = self.slot(i);
                if slot.state().load(SeqCst) != REQUEST {
                    continue;
                }
                found = true;
                let reply = sell()?;
                slot.outcome().store(reply.outcome as u32, Relaxed);
                slot.value().store(reply.value, Relaxed);
                slot.written().store(reply.written, Relaxed);
                slot.read_tick().store(reply.read_tick, Relaxed);
                slot.write_tick().store(reply.write_tick, Relaxed);
                slot.state().store(REPLIED, SeqCst);
                if slot.sleeping().load(SeqCst) == 1 {
                    futex_wake(slot.state());
                }
            }
            if found {
                continue;
            }
            let seen = requests.load(SeqCst);
            if spin_until(SPIN_NS, || requests.load(SeqCst) != seen) {
                continue;
            }
            h.seller_sleeping().store(1, SeqCst);
            let seen = requests.load(SeqCst);
            if stop.load(SeqCst) == 0 && !waiting() {
                futex_wait(requests, seen, NAP);
            }
            h.seller_sleeping().store(0, SeqCst);
        }
        Ok(())
    }

    /// The runner's side: tells the seller to return, and wakes it.
    pub fn stop(&self) {
        let h = self.header();
        h.stop().store(1, SeqCst);
        h.requests().fetch_add(1, SeqCst);
        futex_wake(h.requests());
    }
}

/// Polls `ready()` until it holds or `spin_ns` have passed, yielding the CPU between polls
/// (to a peer on the same CPU, whose answer it waits for); whether it became ready.
fn spin_until(spin_ns: u64, mut ready: impl FnMut() -> bool) -> bool {
    let start = now_ns();
    loop {
        if ready() {
            return true;
        }
        yield_cpu();
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
                        outcome: Outcome::Sold,
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
            assert_eq!(r.outcome, Outcome::Sold);
            assert_eq!(r.written, r.value - 1);
            values.push(r.value);
        }
        Board::open(dir.path()).unwrap().stop();
        assert_eq!(server.join().unwrap(), 1000);
        assert_eq!(values, (0..1000).map(|n| 99 - n).collect::<Vec<i64>>());
    }
}
