//! The races sim exists to show, and the strategies that prevent them, on the real binary.

mod common;

use common::{run_scenario, u};

#[test]
fn none_oversells_with_a_wide_race_window() {
    // 40 buyers all read the stock within a few ms of the gate; none writes before 25 ms.
    let run = run_scenario(
        "trials = 3\nstrategy = \"none\"\n[stock]\ninitial = 10\n[buyers]\ncount = 40\nhold_us = 50000\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("none") {
        assert_eq!(u(&t["attempts"]), 40, "{t}");
        assert!(u(&t["oversold"]) > 0, "a trial without oversell: {t}");
        assert!(u(&t["duplicate_tickets"]) > 0, "{t}");
        assert!(u(&t["lost_updates"]) > 0, "{t}");
        assert_eq!(t["verdict"], "oversold", "{t}");
        assert_eq!(u(&t["sold"]), u(&t["oversold"]) + 10, "{t}");
    }
}

#[test]
fn the_safe_strategies_sell_exactly_the_stock() {
    // 20 buyers × 3 attempts for 25 tickets: contended, and more attempts than tickets.
    let run = run_scenario(
        "trials = 8\nstrategy = [\"file-lock\", \"semaphore\", \"queue\"]\n[stock]\ninitial = 25\n\
         [buyers]\ncount = 20\nattempts = 3\nhold_us = 300\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["file-lock", "semaphore", "queue"] {
        let trials = run.trials(strategy);
        assert_eq!(trials.len(), 8);
        for t in trials {
            assert_eq!(t["verdict"], "safe", "{strategy}: {t}");
            assert_eq!(u(&t["sold"]), 25, "{strategy}: {t}");
            assert_eq!(u(&t["final_stock"]), 0, "{strategy}: {t}");
            assert_eq!(u(&t["attempts"]), 60, "{strategy}: {t}");
            assert_eq!(u(&t["sold_out"]), 35, "{strategy}: {t}");
            for anomaly in [
                "oversold",
                "duplicate_tickets",
                "lost_updates",
                "torn_reads",
                "order_violations",
                "indeterminate",
            ] {
                assert_eq!(u(&t[anomaly]), 0, "{strategy} {anomaly}: {t}");
            }
        }
    }
}

#[test]
fn a_truncating_writer_lets_unguarded_readers_find_the_file_empty() {
    // Many buyers, many attempts, no hold: reads and truncate-then-write interleave constantly.
    let run = run_scenario(
        "trials = 2\nstrategy = \"none\"\n[stock]\ninitial = 100000\nwrite = \"truncate\"\n\
         [buyers]\ncount = 8\nattempts = 3000\nhold_us = 0\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let torn: u64 = run.trials("none").iter().map(|t| u(&t["torn_reads"])).sum();
    assert!(torn > 0, "no torn read in 48,000 unguarded attempts");
}

#[test]
fn producers_entries_are_all_accounted_for() {
    for blocking in [true, false] {
        let run = run_scenario(
            &format!(
                "trials = 3\nstrategy = [\"none\", \"file-lock\"]\n[stock]\ninitial = 1000\n[buyers]\ncount = 6\nhold_us = 100\n\
                 [producers]\ncount = 4\nentries = 25\nqueue_capacity = 2\nblocking = {blocking}\n"
            ),
            &[],
        );
        assert_eq!(run.code(), 0, "{}", run.stderr());
        for strategy in ["none", "file-lock"] {
            for t in run.trials(strategy) {
                let (attempts, dropped, unconsumed) = (u(&t["attempts"]), u(&t["dropped"]), u(&t["unconsumed"]));
                assert_eq!(u(&t["produced"]), 100, "{t}");
                assert_eq!(attempts + dropped + unconsumed, 100, "blocking = {blocking}: {t}");
                assert_eq!(unconsumed, 0, "buyers run until the queue closes: {t}");
                if blocking {
                    assert_eq!(dropped, 0, "a blocking put never drops: {t}");
                }
            }
        }
    }
}

#[test]
fn a_violated_expectation_exits_1_and_says_which() {
    let run = run_scenario(
        "trials = 2\nstrategy = \"file-lock\"\n[buyers]\ncount = 5\nhold_us = 0\n[expect]\noversell = true\n",
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stdout()
            .contains("expectation not met: file-lock: expected oversell"),
        "{}",
        run.stdout()
    );
    assert_eq!(run.results()["violations"].as_array().unwrap().len(), 1);
}

#[test]
fn command_line_flags_override_the_scenario() {
    let run = run_scenario(
        "trials = 9\nseed = 1\nstrategy = [\"none\", \"queue\"]\n[buyers]\ncount = 3\nhold_us = 0\n",
        &["--trials", "2", "--seed", "77", "--strategy", "queue"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let results = run.results();
    assert_eq!(results["runs"].as_array().unwrap().len(), 1);
    let trials = run.trials("queue");
    assert_eq!(trials.len(), 2);
    assert_eq!((u(&trials[0]["seed"]), u(&trials[1]["seed"])), (77, 78));
    assert!(run.stdout().contains("report: "), "{}", run.stdout());
}

#[test]
fn a_semaphore_run_leaves_no_semaphore_behind() {
    let before = semaphores();
    let run = run_scenario(
        "trials = 3\nstrategy = \"semaphore\"\n[buyers]\ncount = 4\nhold_us = 0\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let left: Vec<String> = semaphores().into_iter().filter(|s| !before.contains(s)).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn semaphores() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("sem.sim."))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_sweep_runs_every_combination_and_judges_each_strategy_over_all_of_them() {
    let run = run_scenario(
        "trials = 2\nstrategy = [\"none\", \"file-lock\"]\n[stock]\ninitial = 10000\n\
         [buyers]\ncount = [1, 3]\nattempts = 50\nhold_us = [0, 100]\n[expect.file-lock]\nanomaly = false\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let results = run.results();
    let runs = results["runs"].as_array().unwrap();
    let points: Vec<(String, u64, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["strategy"].as_str().unwrap().to_string(),
                u(&r["point"]["buyers"]),
                u(&r["point"]["hold_us"]),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for s in ["none", "file-lock"] {
        for (b, h) in [(1, 0), (1, 100), (3, 0), (3, 100)] {
            expected.push((s.to_string(), b, h));
        }
    }
    assert_eq!(points, expected);
    for r in runs {
        for t in r["trials"].as_array().unwrap() {
            assert_eq!(u(&t["attempts"]), u(&r["point"]["buyers"]) * 50, "{t}");
        }
    }
    assert!(run.stdout().contains("buyers"), "{}", run.stdout());
}

#[test]
fn every_new_lock_sells_exactly_the_stock_on_shared_memory() {
    // 12 buyers × 3 attempts for 25 tickets, each holding 300 µs: contended, sold out.
    let strategies = [
        "ofd-lock",
        "sysv-semaphore",
        "robust-mutex",
        "lease",
        "atomic",
        "optimistic",
    ];
    let list = strategies.map(|s| format!("\"{s}\"")).join(", ");
    let run = run_scenario(
        &format!(
            "trials = 4\nstrategy = [{list}]\n[stock]\nstore = \"shm\"\ninitial = 25\n\
             [buyers]\ncount = 12\nattempts = 3\nhold_us = 300\n[lock]\nlease_ms = 1000\n[transaction]\nretries = 1000\n"
        ),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in strategies {
        for t in run.trials(strategy) {
            assert_eq!(t["verdict"], "safe", "{strategy}: {t}");
            assert_eq!(u(&t["sold"]), 25, "{strategy}: {t}");
            assert_eq!(u(&t["final_stock"]), 0, "{strategy}: {t}");
        }
    }
}

#[test]
fn one_step_strategies_stay_in_real_time_order_at_full_speed() {
    // Without a race window, 8 buyers take a ticket every few nanoseconds: stamps taken out
    // of order around the compare-exchange made a quarter of such trials look inconsistent.
    let run = run_scenario(
        "trials = 20\nstrategy = [\"atomic\", \"optimistic\"]\n[stock]\nstore = \"shm\"\ninitial = 24000\n\
         [buyers]\ncount = 8\nattempts = 3000\nhold_us = 0\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["atomic", "optimistic"] {
        for t in run.trials(strategy) {
            assert_eq!(t["verdict"], "safe", "{strategy}: {t}");
            assert_eq!(u(&t["order_violations"]), 0, "{strategy}: {t}");
        }
    }
}

#[test]
fn no_exact_strategy_is_judged_anomalous_without_a_race_window() {
    // Serial sales a few hundred nanoseconds apart, where stamps of one moment taken on two
    // CPUs differ by tens of them: every trial must be safe, each judged with its measured
    // clock uncertainty. Taken as exact, such stamps make most trials of a semaphore at two
    // buyers and 200,000 purchases each look out of order.
    let strategies = [
        "file-lock",
        "semaphore",
        "queue",
        "ofd-lock",
        "sysv-semaphore",
        "robust-mutex",
        "atomic",
        "optimistic",
    ];
    let list = strategies.map(|s| format!("\"{s}\"")).join(", ");
    let matrix = run_scenario(
        &format!(
            "trials = 2\nstrategy = [{list}]\n[stock]\nstore = \"shm\"\ninitial = 200000\n\
             [buyers]\ncount = [2, 8]\nattempts = 8000\nhold_us = 0\n"
        ),
        &[],
    );
    let semaphore = run_scenario(
        "trials = 4\nstrategy = \"semaphore\"\n[stock]\nstore = \"shm\"\ninitial = 1000000\n\
         [buyers]\ncount = 2\nattempts = 200000\nhold_us = 0\n",
        &[],
    );
    let mut judged = 0;
    for run in [&matrix, &semaphore] {
        assert_eq!(run.code(), 0, "{}", run.stderr());
        for point in run.results()["runs"].as_array().unwrap() {
            for t in point["trials"].as_array().unwrap() {
                let what = format!("{} at {}: {t}", point["strategy"], point["point"]);
                assert_eq!(t["verdict"], "safe", "{what}");
                assert_eq!(u(&t["order_violations"]), 0, "{what}");
                assert!(u(&t["clock_uncertainty_ns"]) > 0, "{what}");
                judged += 1;
            }
        }
    }
    assert_eq!(judged, strategies.len() * 2 * 2 + 4);
}
