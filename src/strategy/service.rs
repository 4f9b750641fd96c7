//! A variant of the user's own service (`store = "service"`): each purchase is one `buy`
//! sent to it, judged by the store's client ([`crate::store::Answer`]). An indeterminate
//! answer is sent again with the same idempotency key, up to the variant's `retries`; a
//! purchase that was sent again and sold is sent once more with its key, to see whether the
//! service replays its answer (the same ticket) or sells a second time (another ticket:
//! recorded as a second sale under the same key, which the checker calls `duplicate_sale`).

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
            second: None,
        }))
    }
}

struct Buyer {
    buyer: u32,
    /// The number of its next purchase, from 0.
    attempt: u32,
    tag: String,
    retries: u32,
    /// A second sale to the last purchase's key, to be recorded after it.
    second: Option<Record>,
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
        let key_entry = ((self.buyer as u64) << 32) | self.attempt as u64;
        self.attempt += 1;
        op.set_entry(key_entry);
        let mut tries = 0;
        let answer = loop {
            op.stamp_read(); // sent
            let answer = stock.buy(&request)?;
            if matches!(answer, Answer::Unknown(_)) && tries < self.retries {
                tries += 1;
                op.count_retry();
                continue;
            }
            break answer;
        };
        op.stamp_end();
        Buyer::note(op, &answer);
        if let (true, Answer::Sold(ticket)) = (tries > 0, &answer) {
            // Sent again, and sold: once more with the same key, which must replay it.
            let mut second = Record::new(Kind::Purchase);
            second.set_start_tick(crate::sys::clock::ticks());
            second.set_entry(key_entry);
            second.stamp_read();
            let again = stock.buy(&request)?;
            second.stamp_end();
            if let Answer::Sold(other) = &again
                && other != ticket
            {
                Buyer::note(&mut second, &again);
                self.second = Some(second);
            }
        }
        Ok(())
    }

    fn second_sale(&mut self) -> Option<Record> {
        self.second.take()
    }
}
