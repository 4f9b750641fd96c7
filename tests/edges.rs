//! Reliability at the edges (issue 14): the documented maximum of buyers, an output folder
//! that two runs want at once, a disk that is full or fills, and runs that keep only some
//! histories.

mod common;

use common::{run_scenario, u};

#[test]
fn a_thousand_buyers_are_accepted_and_run() {
    // The documented maximum: sim's helpers (the spawner, the seller) come on top of it.
    let run = run_scenario(
        "trials = 1\nstrategy = \"file-lock\"\n[stock]\ninitial = 50\n\
         [buyers]\ncount = 1000\nattempts = 1\nhold_us = 0\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let trials = run.trials("file-lock");
    assert_eq!(trials.len(), 1);
    let t = &trials[0];
    assert_eq!(u(&t["attempts"]), 1000, "{t}");
    assert_eq!(u(&t["sold"]), 50, "{t}");
    assert_eq!(t["verdict"], "safe", "{t}");
}

#[test]
fn a_bound_on_processes_names_the_field_that_was_written() {
    let run = run_scenario(
        "strategy = \"queue\"\n[buyers]\ncount = 999\n[producers]\ncount = 5\n",
        &[],
    );
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("field `producers.count`"), "{err}");
    assert!(err.contains("1004 worker processes"), "{err}");
    assert!(!run.out.exists(), "nothing runs: {err}");
}
