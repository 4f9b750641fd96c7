//! Worker processes: one process per buyer, producer, seller, entry queue or manager, each
//! forked by the trial's spawner (the `sim` binary re-executed once per trial in a hidden
//! mode, see [`spawner`]).
//!
//! Each worker has three descriptors: standard input is the start gate (a pipe whose writer
//! the runner closes to let everyone go at once), standard output is a pipe on which the
//! worker says it is ready and whose end-of-file tells the runner that every worker of its
//! group has exited, and standard error is the trial's `workers.log`.

mod buyer;
mod entry_queue;
pub mod pool;
mod producer;
pub mod spawner;

use anyhow::{Context, Result, bail};

use crate::history::{Recorder, Role};
use crate::plan::TrialPlan;
use crate::sys::process::{self, Signal};
use crate::{store, strategy};

pub use entry_queue::socket as entry_queue_socket;

/// One worker's life, in the process the spawner forked for it.
pub fn run(plan: &TrialPlan, role: Role, index: u32) -> Result<()> {
    crate::sys::clock::use_tsc(plan.tsc);
    let Some(region) = plan.regions.iter().find(|r| r.role == role && r.index == index) else {
        bail!("the plan has no history region for {} {index}", role.name())
    };
    let mut recorder =
        Recorder::open(&plan.history, region).with_context(|| format!("opening {}", plan.history.display()))?;
    let (strategy, store) = (strategy::registry(plan.strategy), store::registry(plan.store));
    let result = match role {
        Role::Buyer => buyer::run(plan, index, &mut recorder),
        Role::Producer => producer::run(plan, index, &mut recorder),
        Role::EntryQueue => entry_queue::run(plan, &mut recorder),
        // A server process of the strategy's (a seller) or the store's (a manager).
        server if strategy.servers().contains(&server) => strategy.serve(plan, server, &mut recorder),
        server => store.serve(plan, server, &mut recorder),
    };
    result.with_context(|| format!("{} {index}", role.name()))?;
    recorder.finish();
    Ok(())
}

/// Ends this process when its parent dies, however it dies: the spawner with the runner,
/// each worker with the spawner, so that no worker outlives the runner.
fn die_with_parent(parent_pid: u32) {
    let _ = process::set_death_signal(Signal::KILL);
    // Holds of a few microseconds would otherwise last the default 50 µs of slack.
    let _ = process::set_timer_slack(1);
    if process::parent_pid() != parent_pid {
        process::exit_now(3); // the parent died before the line above
    }
}
