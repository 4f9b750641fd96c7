//! The patterns of the multiprocessing lesson, each field's behaviour on the real binary.

mod common;

use common::{each_in_parallel, run_scenario, run_shipped, u};

#[test]
fn a_sync_pool_serialises_even_an_unguarded_sale() {
    let run = run_scenario(
        "trials = 3\nstrategy = \"none\"\n[stock]\ninitial = 5\n\
         [buyers]\ncount = 10\nhold_us = 3000\npool = 3\npool_mode = \"sync\"\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("none") {
        assert_eq!(t["verdict"], "safe", "{t}");
        assert_eq!(
            (u(&t["attempts"]), u(&t["sold"]), u(&t["final_stock"])),
            (10, 5, 0),
            "{t}"
        );
    }
    // Three processes ran the ten tasks between them.
    let history = sim::history::History::read(&run.out.join("trials/none/000/history.bin"), 0).unwrap();
    let pids: std::collections::BTreeSet<u32> = history.workers.iter().map(|w| w.pid).collect();
    assert_eq!((history.workers.len(), pids.len()), (3, 3), "{:?}", history.workers);
    assert_eq!(history.ops.len(), 10);
}

#[test]
fn an_async_pool_races() {
    let run = run_scenario(
        "trials = 3\nstrategy = \"none\"\n[stock]\ninitial = 5\n\
         [buyers]\ncount = 10\nhold_us = 20000\npool = 3\npool_mode = \"async\"\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("none") {
        assert_eq!(u(&t["attempts"]), 10, "{t}");
        assert!(u(&t["oversold"]) > 0, "three tasks at once all read 5: {t}");
    }
}

#[test]
fn daemon_buyers_leave_entries_unconsumed_unless_the_queue_is_joinable() {
    for joinable in [false, true] {
        let run = run_scenario(
            &format!(
                "trials = 2\nstrategy = \"file-lock\"\n[stock]\ninitial = 30\n\
                 [buyers]\ncount = 2\nhold_us = 10000\ndaemon = true\n\
                 [producers]\ncount = 3\nentries = 10\nqueue_capacity = 30\njoinable = {joinable}\n"
            ),
            &[],
        );
        assert_eq!(run.code(), 0, "{}", run.stderr());
        for t in run.trials("file-lock") {
            let (attempts, unconsumed) = (u(&t["attempts"]), u(&t["unconsumed"]));
            assert_eq!(u(&t["produced"]), 30, "{t}");
            if joinable {
                assert_eq!(unconsumed, 0, "a joinable queue is drained before the buyers end: {t}");
                assert_eq!(u(&t["sold"]), 30, "{t}");
            } else {
                assert!(unconsumed > 0, "daemon buyers ended with entries waiting: {t}");
                // A buyer ended between a take and its purchase leaves the entry abandoned.
                assert_eq!(attempts + unconsumed + u(&t["abandoned"]), 30, "{t}");
            }
            assert_eq!(t["verdict"], "safe", "{t}");
        }
    }
}

#[test]
fn a_lock_around_the_write_alone_still_oversells() {
    let run = run_scenario(
        "trials = 3\nstrategy = [\"file-lock\", \"semaphore\"]\n[stock]\ninitial = 10\n\
         [buyers]\ncount = 30\nhold_us = 20000\n[lock]\nscope = \"write\"\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["file-lock", "semaphore"] {
        for t in run.trials(strategy) {
            assert!(u(&t["oversold"]) > 0, "{strategy}: {t}");
        }
    }
}

#[test]
fn the_manager_store_reaches_exactly_zero_under_a_lock_and_loses_updates_without() {
    let run = run_scenario(
        "trials = 2\nstrategy = [\"file-lock\", \"semaphore\", \"queue\", \"none\"]\n\
         [stock]\ninitial = 60\nstore = \"manager\"\n[buyers]\ncount = 60\nhold_us = 5000\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["file-lock", "semaphore", "queue"] {
        for t in run.trials(strategy) {
            assert_eq!((u(&t["final_stock"]), u(&t["sold"])), (0, 60), "{strategy}: {t}");
            assert_eq!(t["verdict"], "safe", "{strategy}: {t}");
        }
    }
    for t in run.trials("none") {
        assert!(u(&t["lost_updates"]) > 0, "{t}");
        assert!(u(&t["final_stock"]) > 0, "{t}");
    }
}

#[test]
fn daemon_buyers_need_producers() {
    let run = run_scenario("[buyers]\ndaemon = true\n", &[]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("buyers.daemon"), "{}", run.stderr());
}

#[test]
fn every_shipped_scenario_meets_its_expectations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    each_in_parallel(names, 2, |name| {
        let run = run_shipped(&name, &["--trials", "2"]);
        assert_eq!(run.code(), 0, "{name}: {}{}", run.stdout(), run.stderr());
        assert!(
            !run.results()["scenario"]["description"].as_str().unwrap().is_empty(),
            "{name}"
        );
    });
}
