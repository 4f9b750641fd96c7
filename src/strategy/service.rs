//! A variant of the user's own service (`store = "service"`): each purchase is one `buy`
//! sent to it, judged by the store's client ([`crate::store::Answer`]). An indeterminate
//! answer is sent again with the same idempotency key, up to the variant's `retries`, each
//! send an attempt of its own in the history; a purchase that was sent again and sold is sent
//! once more with its key, to see whether the service replays its answer (the same ticket)
//! or sells a second time (another ticket: recorded as a second sale under the same key,
//! which the checker calls `duplicate_sale`).

use std::io;

use super::{Purchase, Strategy};
use crate::history::{Kind, Outcome, Record};
use crate::plan::{Hold, TrialPlan};
use crate::store::{Answer, BuyRequest, Stock, Ticket};

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
