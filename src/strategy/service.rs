//! A variant of the user's own service (`store = "service"`): each purchase is one `buy`
//! sent to it, judged by the store's client ([`crate::store::Answer`]). An indeterminate
//! answer is sent again with the same idempotency key, up to the variant's `retries`, each
//! send an attempt of its own in the history; a purchase that was sent again and sold is sent
//! once more with its key, to see whether the service replays its answer (the same ticket)
//! or sells a second time (another ticket: recorded as a second sale under the same key,
//! which the checker calls `duplicate_sale`).

use std::io;

use super::{Purchase, Strategy};
use rand::RngExt;

use crate::history::{Kind, Outcome, Record, Role};
use crate::plan::{Hold, TrialPlan};
use crate::store::{Answer, BuyRequest, Stock, Ticket};
use crate::sys::clock::{now_ns, ticks};

/// Every variant of the service.
pub struct Variant;

impl Strategy for Variant {
    fn buyer(&self, plan: &TrialPlan, buyer: u32) -> io::Result<Box<dyn Purchase>> {
        Ok(Box::new(Buyer {
            buyer,
            attempt: 0,
            tag: plan.tag.clone(),
            retries: plan.service.as_ref().map_or(0, |s| s.retries),
            more: std::collections::VecDeque::new(),
            schedule: Schedule::of(plan, buyer),
        }))
    }
}

struct Buyer {
    buyer: u32,
    /// The number of its next purchase, from 0.
    attempt: u32,
    tag: String,
    retries: u32,
    /// The last purchase's attempts after its first, to be recorded after it.
    more: std::collections::VecDeque<Record>,
    /// An open loop's planned send times.
    schedule: Option<Schedule>,
}

impl Buyer {
    /// Notes `answer` in `op`, as its buyer was told.
    fn note(op: &mut Record, answer: &Answer) {
        match answer {
            Answer::Sold(ticket) => {
                let value = ticket.value();
                op.set_value(value);
                op.set_written(value - 1);
                if let Ticket::Id(_) = ticket {
                    op.mark_id_ticket();
                }
                op.set_outcome(Outcome::Sold);
            }
            Answer::SoldOut => op.set_outcome(Outcome::SoldOut),
            Answer::Failed(_) => op.set_outcome(Outcome::Failed),
            Answer::Unknown(_) => op.set_outcome(Outcome::Unknown),
        }
    }
}

impl Purchase for Buyer {
    fn purchase(&mut self, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> io::Result<()> {
        // A fault planned for this buyer lands before the request: it never left.
        hold.pause();
        let request = BuyRequest {
            attempt: self.attempt,
            key: format!("{}-{}-{}", self.tag, self.buyer, self.attempt),
        };
        let key = ((self.buyer as u64) << 32) | self.attempt as u64;
        self.attempt += 1;
        op.set_entry(key);
        if let Some(schedule) = &mut self.schedule {
            // Latency counts from the planned time, however late the purchase leaves.
            op.set_start_tick(schedule.wait());
            op.mark_planned();
        }
        op.stamp_read(); // sent
        let mut answer = stock.buy(&request)?;
        op.stamp_end();
        Buyer::note(op, &answer);
        // Each time it is sent again is an attempt of its own in the history, under the
        // same key: a lost answer may have sold, and the checker counts it both ways.
        let mut tries = 0;
        while matches!(answer, Answer::Unknown(_)) && tries < self.retries {
            tries += 1;
            let (again, said) = Buyer::send(stock, &request, key, op.start_tick())?;
            self.more.push_back(again);
            answer = said;
        }
        if let (true, Answer::Sold(ticket)) = (tries > 0, &answer) {
            // Sent again, and sold: once more with the same key, which must replay it. Another
            // ticket is a second sale, recorded; the same one is the replay it should be.
            let (replay, said) = Buyer::send(stock, &request, key, op.start_tick())?;
            if matches!(&said, Answer::Sold(other) if other != ticket) {
                self.more.push_back(replay);
            }
        }
        Ok(())
    }

    fn next_record(&mut self) -> Option<Record> {
        self.more.pop_front()
    }
}

impl Buyer {
    /// Sends the purchase again, with its key: the record of that attempt, and the answer.
    /// Its invocation is the purchase's first: a sale answered now may have been made by the
    /// first send, whose answer was lost, so it is concurrent with all that came since.
    fn send(stock: &mut dyn Stock, request: &BuyRequest, key: u64, first: u64) -> io::Result<(Record, Answer)> {
        let mut again = Record::new(Kind::Purchase);
        again.set_start_tick(first);
        again.set_entry(key);
        again.count_retry();
        again.stamp_read();
        let answer = stock.buy(request)?;
        again.stamp_end();
        Buyer::note(&mut again, &answer);
        Ok((again, answer))
    }
}

/// How near its planned time an open loop's purchase stops sleeping and polls the clock.
const SPIN_NS: u64 = 200_000;

/// When an open loop's purchases are meant to leave (`[buyers] rate`): each buyer's share
/// of the rate, evenly spaced and staggered across buyers (`constant`), or with exponential
/// gaps drawn from the seed (`poisson`). A purchase's latency counts from its planned time,
/// so that a service that stalls cannot hide the queue behind it (coordinated omission, as
/// wrk2 corrects it).
pub struct Schedule {
    /// The gate, as this buyer saw it: on the monotonic clock, and in ticks.
    origin: Option<(u64, u64)>,
    /// The next purchase's planned time, ns after the origin.
    next_ns: f64,
    /// The mean gap between this buyer's purchases, in ns.
    gap_ns: f64,
    poisson: Option<rand::rngs::ChaCha8Rng>,
}

impl Schedule {
    /// Buyer `buyer`'s schedule of a plan with a rate; `None` for a closed loop.
    pub fn of(plan: &TrialPlan, buyer: u32) -> Option<Schedule> {
        let rate = plan.rate.filter(|r| *r > 0.0)?;
        let buyers = plan.buyers.max(1) as f64;
        let gap_ns = buyers / rate * 1e9;
        let poisson = (plan.arrivals == crate::scenario::Arrivals::Poisson).then(|| plan.rng(Role::Buyer, buyer));
        Some(Schedule {
            origin: None,
            next_ns: match poisson {
                Some(_) => 0.0,
                None => buyer as f64 / rate * 1e9,
            },
            gap_ns,
            poisson,
        })
    }

    /// Waits until the next purchase's planned time; its stamp in ticks (earlier than now
    /// when the buyer is late).
    pub fn wait(&mut self) -> u64 {
        let (origin_ns, origin_ticks) = *self.origin.get_or_insert_with(|| (now_ns(), ticks()));
        if let Some(rng) = &mut self.poisson {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            self.next_ns += -u.ln() * self.gap_ns;
        }
        let planned = origin_ns + self.next_ns as u64;
        if self.poisson.is_none() {
            self.next_ns += self.gap_ns;
        }
        let now = now_ns();
        if planned > now {
            // A sleep wakes tens of µs late, as much as a purchase takes at the rates an open
            // loop is asked for: it sleeps to within SPIN_NS of the planned time, then yields
            // the CPU until it comes.
            if planned - now > SPIN_NS {
                std::thread::sleep(std::time::Duration::from_nanos(planned - now - SPIN_NS));
            }
            while now_ns() < planned {
                crate::sys::shm::yield_cpu();
            }
            return ticks();
        }
        // Late: the stamp goes back to the planned time, at the clock's rate since the gate.
        let (t, n) = (ticks(), now_ns());
        let elapsed_ns = n.saturating_sub(origin_ns);
        let per_ns = match elapsed_ns {
            0 => 1.0,
            e => t.saturating_sub(origin_ticks) as f64 / e as f64,
        };
        t.saturating_sub(((n - planned) as f64 * per_ns) as u64)
    }
}
