//! `lease`: a lock that expires `[lock] lease_ms` after it was taken, as a lock file with an
//! expiry, or Redis's `SET NX PX`.
//!
//! The lease carries its holder, its expiry and a token that grows with each grant. A waiter
//! breaks a lease past its expiry, as many tools break a stale lock file. So a holder paused
//! longer than its lease (a GC pause, a VM migration, SIGSTOP) wakes up with its lease given
//! to another buyer, and still writes: the stock is oversold. With `[lock] fencing = true`
//! the holder's write carries its token, and the store refuses one older than a token it has
//! accepted: the late write fails, and is counted as `fenced`.
//!
//! The lease's state lives in a shared mapping of the trial's folder, where a guard word makes
//! each look at it (take, break, release) one step; or in the store, when it keeps leases of
//! its own (Redis: `SET NX PX`, which expires by itself).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use super::{Purchase, Strategy};
use crate::history::{NO_VALUE, Outcome, Record};
use crate::plan::{Fixture, Hold, TrialPlan};
use crate::store::{Leases, Reading, Stock};
use crate::sys::clock::now_ns;
use crate::sys::shm::{Mapping, yield_cpu};

/// The lease's file in the trial's folder.
const FILE: &str = "lease";
/// Words of the mapping: the guard, the holder's pid (0: none), the expiry on
/// `CLOCK_MONOTONIC`, the last token granted.
const GUARD: usize = 0;
const HOLDER: usize = 4;
const EXPIRY: usize = 8;
const TOKEN: usize = 16;

/// The `lease` strategy.
pub struct Lease;

impl Strategy for Lease {
    fn prepare(&self, plan: &TrialPlan) -> io::Result<Box<dyn Fixture>> {
        let path = plan.trial_dir.join(FILE);
        std::fs::write(&path, [0u8; 64])?;
        Ok(Box::new(LeaseFile(path)))
    }

    fn buyer(&self, plan: &TrialPlan, _buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(Leaseholder {
            map: Mapping::open(&plan.trial_dir.join(FILE))?,
            pid: std::process::id(),
            lease_ns: plan.lease_ms * 1_000_000,
            fencing: plan.fencing,
        }))
    }
}

/// The lease's file, removed after the trial: it holds no evidence.
struct LeaseFile(PathBuf);

impl Fixture for LeaseFile {}

impl Drop for LeaseFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A buyer's side: its mapping of the lease.
struct Leaseholder {
    map: Mapping,
    pid: u32,
    lease_ns: u64,
    fencing: bool,
}

impl Leaseholder {
    /// Runs `f` on the lease's state with the guard held.
    fn guarded<T>(&self, f: impl FnOnce() -> T) -> T {
        let guard = self.map.atomic_u32(GUARD);
        while guard.compare_exchange_weak(0, 1, Acquire, Relaxed).is_err() {
            yield_cpu();
        }
        let result = f();
        guard.store(0, Release);
        result
    }

    /// Waits until this buyer holds the lease, breaking it if it expired; its token.
    fn take(&self) -> u64 {
        let (holder, expiry, token) = (
            self.map.atomic_u32(HOLDER),
            self.map.atomic_u64(EXPIRY),
            self.map.atomic_u64(TOKEN),
        );
        // Polls of the one grant: a waiter that sees the lease change hands keeps polling,
        // however long the queue before it.
        let (mut spins, mut seen) = (0u32, 0u64);
        loop {
            let granted = self.guarded(|| {
                let now = now_ns();
                let left = expiry.load(Relaxed).saturating_sub(now);
                if holder.load(Relaxed) == 0 || left == 0 {
                    holder.store(self.pid, Relaxed);
                    expiry.store(now + self.lease_ns, Relaxed);
                    Ok(token.fetch_add(1, Relaxed) + 1)
                } else {
                    Err((token.load(Relaxed), left))
                }
            });
            match granted {
                Ok(token) => return token,
                Err((grant, _)) if grant != seen => {
                    (spins, seen) = (0, grant);
                    yield_cpu();
                }
                // A holder hands over within microseconds: poll. One that holds the same
                // grant longer may be paused, and its lease runs out in `left`: sleep
                // towards it.
                Err(_) if spins < 64 => {
                    spins += 1;
                    yield_cpu();
                }
                Err((_, left)) => std::thread::sleep(Duration::from_nanos(left.min(50_000))),
            }
        }
    }

    /// Gives the lease back, if it is still this buyer's grant.
    fn give_back(&self, mine: u64) {
        self.guarded(|| {
            let holder = self.map.atomic_u32(HOLDER);
            if holder.load(Relaxed) == self.pid && self.map.atomic_u64(TOKEN).load(Relaxed) == mine {
                holder.store(0, Relaxed);
            }
        });
    }
}

/// Waits until `holder` holds the store's lease: its token.
fn take_from(leases: &mut dyn Leases, holder: u32, lease_ms: u64) -> io::Result<u64> {
    loop {
        match leases.try_take(holder, lease_ms)? {
            Ok(token) => return Ok(token),
            // Each try is a round trip to the server: wait a little, or until the lease runs
            // out if that comes sooner.
            Err(left) => std::thread::sleep(left.min(Duration::from_micros(200))),
        }
    }
}

impl Purchase for Leaseholder {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        let token = match stock.leases() {
            Some(leases) => take_from(leases, self.pid, self.lease_ns / 1_000_000)?,
            None => self.take(),
        };
        let reading = stock.read()?;
        op.stamp_read();
        match reading {
            Reading::Unreadable => op.set_outcome(Outcome::Unreadable),
            Reading::Value(value) => {
                op.set_value(value);
                hold.pause();
                if value <= 0 {
                    op.set_outcome(Outcome::SoldOut);
                } else {
                    op.set_written(value - 1);
                    let written = match self.fencing {
                        true => stock.fenced_write(value - 1, token)?,
                        false => stock.write(value - 1).map(|()| true)?,
                    };
                    op.stamp_write();
                    if written {
                        op.set_outcome(Outcome::Sold);
                    } else {
                        op.set_written(NO_VALUE); // refused: the stock never held it
                        op.set_outcome(Outcome::Fenced);
                    }
                }
            }
        }
        match stock.leases() {
            Some(leases) => leases.give_back(self.pid)?,
            None => self.give_back(token),
        }
        op.stamp_end();
        Ok(())
    }
}
