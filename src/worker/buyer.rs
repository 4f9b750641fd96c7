//! A buyer: makes its purchase attempts, one per entry when there are producers. In a pool,
//! one process runs the tasks of many buyers, in turn.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::entry_queue::{self, Take, take, task_done};
use super::pool::Pool;
use crate::history::{self, Kind, Record, Recorder, Role};
use crate::plan::{Hold, TrialPlan, ready_then_wait_for_gate};
use crate::store::Stock;
use crate::strategy::Purchase;
use crate::sys::ipc;
use crate::{store, strategy};

/// Buyer `index`'s life: its attempts, its pool's tasks, or the entries it takes.
pub fn run(plan: &TrialPlan, index: u32, recorder: &mut Recorder) -> Result<()> {
    let stock = store::registry(plan.store)
        .open(plan, Role::Buyer, index)
        .context("opening the stock")?;
    let strategy = strategy::registry(plan.strategy)
        .buyer(plan, index)
        .context("opening the strategy")?;
    let hold = Hold::new(plan, Role::Buyer, index);
    let entries = match &plan.producers {
        Some(_) => Some(ipc::connect(
            &plan.name(&format!("take{index}")),
            &entry_queue::socket(plan),
        )?),
        None => None,
    };
    let mut pool = match plan.pool {
        Some(_) => Some(Pool::open(&plan.trial_dir, plan.pool_mode).context("opening the pool")?),
        None => None,
    };
    let mut buyer = Buyer {
        stock,
        strategy,
        hold,
        recorder,
    };
    ready_then_wait_for_gate(buyer.recorder)?;
    match (entries, &mut pool) {
        (None, None) => match plan.duration_ms {
            Some(ms) => buyer.soak(plan, index, Duration::from_millis(ms))?,
            None => buyer.attempts(plan.attempts, None)?,
        },
        (None, Some(pool)) => {
            while let Some(_task) = pool.next(plan.buyers as u64) {
                pool.run(|| buyer.attempts(plan.attempts, None))??;
            }
        }
        (Some(queue), mut pool) => {
            let joinable = plan.producers.as_ref().is_some_and(|p| p.joinable);
            while let Take::Entry(entry) = take(&queue, index)? {
                match &mut pool {
                    Some(pool) => pool.run(|| buyer.attempts(1, Some(entry)))??,
                    None => buyer.attempts(1, Some(entry))?,
                }
                if joinable {
                    task_done(&queue, entry)?;
                }
            }
        }
    }
    Ok(())
}

struct Buyer<'a> {
    stock: Box<dyn Stock>,
    strategy: Box<dyn Purchase>,
    hold: Hold,
    recorder: &'a mut Recorder,
}

impl Buyer<'_> {
    /// Buys until `duration` after the gate, recording into segment files of its own: each
    /// is sealed and renamed when full or a second old, for the runner to check (and
    /// remove) while the buyer goes on, so that neither memory nor disk grows with the soak.
    fn soak(&mut self, plan: &TrialPlan, index: u32, duration: Duration) -> Result<()> {
        let end = Instant::now() + duration;
        let dir = plan.trial_dir.join(history::SEGMENTS_DIR);
        // The strategy's further records of a purchase (a service's retries) that did not fit
        // in the segment it was made in: they open the next.
        let mut over: std::collections::VecDeque<Record> = Default::default();
        for seq in 0.. {
            let part = history::segment_path(&dir, Role::Buyer, index, seq, false);
            let mut segment = Recorder::create(&part, Role::Buyer, index, history::SEGMENT_OPS)
                .with_context(|| format!("creating the segment {}", part.display()))?;
            segment.ready();
            let close = end.min(Instant::now() + Duration::from_secs(history::SEGMENT_SECONDS));
            while !over.is_empty() {
                let Some(op) = segment.begin(Kind::Purchase) else {
                    break;
                };
                *op = over.pop_front().expect("a record left over");
            }
            while over.is_empty() && Instant::now() < close {
                let Some(op) = segment.begin(Kind::Purchase) else {
                    break; // full: on to the next
                };
                purchase(&mut *self.strategy, &mut *self.stock, op, &mut self.hold)?;
                while let Some(record) = self.strategy.next_record() {
                    match segment.begin(Kind::Purchase) {
                        Some(op) => *op = record,
                        None => over.push_back(record),
                    }
                }
            }
            segment.finish();
            drop(segment); // sealed
            let sealed = history::segment_path(&dir, Role::Buyer, index, seq, true);
            std::fs::rename(&part, &sealed).with_context(|| format!("closing the segment {}", sealed.display()))?;
            if Instant::now() >= end && over.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Makes `n` purchase attempts, for the entry taken if there is one.
    fn attempts(&mut self, n: u32, entry: Option<u64>) -> Result<()> {
        for _ in 0..n {
            let op = self
                .recorder
                .begin(Kind::Purchase)
                .ok_or_else(|| anyhow!("history full: more attempts than planned"))?;
            if let Some(entry) = entry {
                op.set_entry(entry);
            }
            purchase(&mut *self.strategy, &mut *self.stock, op, &mut self.hold)?;
            while let Some(record) = self.strategy.next_record() {
                let op = self
                    .recorder
                    .begin(Kind::Purchase)
                    .ok_or_else(|| anyhow!("history full: more attempts than planned"))?;
                *op = record;
            }
        }
        Ok(())
    }
}

/// One purchase attempt. One whose outcome the store left unknown (its primary lost inside
/// it, or not confirmed by its replicas) stays unfinished in the history, indeterminate,
/// and the buyer goes on.
fn purchase(strategy: &mut dyn Purchase, stock: &mut dyn Stock, op: &mut Record, hold: &mut Hold) -> Result<()> {
    match strategy.purchase(stock, op, hold) {
        Err(e) if store::is_indeterminate(&e) => Ok(()),
        result => Ok(result?),
    }
}
