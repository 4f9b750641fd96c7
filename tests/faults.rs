//! Faults and interrupts on the real binary: each outcome judged right, nothing left behind.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{processes_mentioning, run_scenario, u};

fn semaphores_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("sem.sim.{pid}.")))
        .collect()
}

#[test]
fn a_killed_file_lock_holder_leaves_a_safe_trial() {
    let run = run_scenario(
        "trials = 3\nstrategy = \"file-lock\"\n[stock]\ninitial = 40\n[buyers]\ncount = 10\nattempts = 3\nhold_us = 1000\n\
         [faults]\nkill_buyers = 2\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("file-lock") {
        assert_eq!(t["verdict"], "safe", "the kernel drops a dead holder's flock: {t}");
        assert_eq!(u(&t["indeterminate"]), 2, "{t}");
        assert_eq!(
            u(&t["lost_updates"]),
            0,
            "an indeterminate sale is never a lost update: {t}"
        );
        let faults = t["faults"].as_array().unwrap();
        assert_eq!(faults.len(), 2, "{t}");
        assert!(faults.iter().all(|f| f["kind"] == "kill"), "{t}");
    }
}

#[test]
fn a_killed_semaphore_holder_deadlocks_the_trial_until_its_deadline() {
    let started = Instant::now();
    let run = run_scenario(
        // One attempt each, two of them killed holding the one permit: whichever dies first,
        // the other waits for the permit for ever.
        "trials = 2\ndeadline_ms = 1000\nstrategy = \"semaphore\"\n[stock]\ninitial = 40\n\
         [buyers]\ncount = 6\nattempts = 1\nhold_us = 1000\n[faults]\nkill_buyers = 2\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("semaphore") {
        assert_eq!(
            t["verdict"], "deadlock",
            "a POSIX semaphore stays taken by the dead: {t}"
        );
        assert_eq!(u(&t["lost_updates"]), 0, "{t}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "each trial ends at its deadline"
    );
    assert!(
        processes_mentioning(&run.out.to_string_lossy()).is_empty(),
        "workers left running"
    );
    let results = run.results();
    let anomalies = results["runs"][0]["trials"][0]["anomalies"].as_array().unwrap().clone();
    assert!(anomalies.iter().any(|a| a["kind"] == "deadlock"), "{anomalies:?}");
}

#[test]
fn a_killed_seller_crashes_the_trial_quickly() {
    let started = Instant::now();
    let run = run_scenario(
        "trials = 2\ndeadline_ms = 60000\nstrategy = \"queue\"\n[stock]\ninitial = 50\n\
         [buyers]\ncount = 8\nattempts = 10\nhold_us = 300\n[faults]\nkill_seller = true\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("queue") {
        assert_eq!(t["verdict"], "crashed", "{t}");
        assert_eq!(u(&t["oversold"]), 0, "{t}");
        assert_eq!(t["faults"][0]["process"], "seller 0", "{t}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no buyer waits for the dead seller until the deadline"
    );
}

#[test]
fn a_stopped_and_resumed_buyer_delays_but_does_not_break_a_safe_strategy() {
    let run = run_scenario(
        "trials = 2\nstrategy = [\"file-lock\", \"semaphore\", \"queue\"]\n[stock]\ninitial = 20\n\
         [buyers]\ncount = 6\nattempts = 3\nhold_us = 500\n[faults]\nstop_buyers = 1\nstop_ms = 300\n",
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["file-lock", "semaphore", "queue"] {
        for t in run.trials(strategy) {
            assert_eq!(t["verdict"], "safe", "{strategy}: {t}");
            assert_eq!(
                (u(&t["sold"]), u(&t["final_stock"]), u(&t["indeterminate"])),
                (18, 2, 0),
                "{strategy}: {t}"
            );
            let stop = &t["faults"][0];
            assert_eq!(stop["kind"], "stop", "{strategy}: {t}");
            let stopped_ns = u(&stop["until_ns"]) - u(&stop["at_ns"]);
            assert!(stopped_ns >= 300_000_000, "resumed after stop_ms, not before: {t}");
            assert!(t["wall_ms"].as_f64().unwrap() >= 300.0, "{strategy}: {t}");
        }
    }
}

/// A run of many long trials of `strategy`, once its second trial has begun (so the first
/// has finished); and its output folder.
fn long_run(dir: &Path, strategy: &str) -> (std::process::Child, std::path::PathBuf) {
    let scenario = dir.join("long.toml");
    std::fs::write(
        &scenario,
        format!(
            "trials = 1000\nstrategy = \"{strategy}\"\n[stock]\ninitial = 100\n[buyers]\ncount = 20\nhold_us = 20000\n"
        ),
    )
    .unwrap();
    let sim = common::run_in_background(&scenario, dir);
    let out = dir.join("out");
    let second = out.join(format!("trials/{strategy}/001/plan.json"));
    assert!(
        common::wait_until(Duration::from_secs(30), || second.exists()),
        "{} never appeared",
        second.display()
    );
    (sim, out)
}

#[test]
fn ctrl_c_ends_every_worker_removes_the_semaphore_and_keeps_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, out) = long_run(dir.path(), "semaphore");
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    let sent = Instant::now();
    let status = sim.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?} to stop",
        sent.elapsed()
    );
    assert!(
        processes_mentioning(&out.to_string_lossy()).is_empty(),
        "workers left running"
    );
    assert!(
        semaphores_of(sim.id()).is_empty(),
        "semaphore left: {:?}",
        semaphores_of(sim.id())
    );
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["interrupted"], true);
    let trials = results["runs"][0]["trials"].as_array().unwrap();
    assert!(!trials.is_empty() && trials.len() < 1000, "{} trials", trials.len());
    // Nothing half-made stays: the trial that was cut short has no folder.
    let folders = std::fs::read_dir(out.join("trials/semaphore")).unwrap().count();
    assert_eq!(folders, trials.len(), "a folder per finished trial, no more");
}

#[test]
fn a_runner_killed_outright_takes_its_workers_along_and_the_next_run_sweeps_its_semaphore() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, out) = long_run(dir.path(), "semaphore");
    std::thread::sleep(Duration::from_millis(50));
    sim.kill().unwrap(); // SIGKILL: no clean-up runs
    sim.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while !processes_mentioning(&out.to_string_lossy()).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        processes_mentioning(&out.to_string_lossy()).is_empty(),
        "workers outlived their runner"
    );
    // Its semaphore may or may not have been taken at the moment of death; if it is there,
    // the next run removes it.
    let stale = semaphores_of(sim.id());
    let next = run_scenario(
        "trials = 1\nstrategy = \"semaphore\"\n[buyers]\ncount = 2\nhold_us = 0\n",
        &[],
    );
    assert_eq!(next.code(), 0, "{}", next.stderr());
    assert!(
        semaphores_of(sim.id()).is_empty(),
        "stale semaphores not swept: {stale:?}"
    );
}

#[test]
fn a_worker_that_cannot_start_ends_the_run_with_its_error_and_leaves_nothing() {
    // Address space for the runner, not for the buyer's 6.4 GB history region: mapping it
    // fails inside the worker, before the start gate.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(
        &file,
        "trials = 1\nstrategy = \"semaphore\"\n[buyers]\ncount = 1\nattempts = 100000000\nhold_us = 0\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sim"));
    command.arg("run").arg(&file).arg("--out").arg(&out);
    // SAFETY: setrlimit is async-signal-safe and touches nothing but the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit {
                rlim_cur: 3 << 30,
                rlim_max: 3 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("buyer 0 exited before the start gate opened") && stderr.contains("workers.log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("history.bin"),
        "the worker's own error is quoted: {stderr}"
    );
    assert!(
        processes_mentioning(&out.to_string_lossy()).is_empty(),
        "processes left running"
    );
    assert!(
        semaphores_of(pid).is_empty(),
        "semaphore left: {:?}",
        semaphores_of(pid)
    );
}

/// The System V semaphore sets that the sim run `pid` made (its pid is in their key).
fn sysv_sets_of(pid: u32) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/sysvipc/sem").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let key: i64 = line.split_whitespace().next().unwrap().parse().unwrap();
            key & (1 << 30) != 0 && (key >> 7) & 0x3f_ffff == pid as i64
        })
        .map(String::from)
        .collect()
}

#[test]
fn ctrl_c_removes_the_system_v_semaphore() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, out) = long_run(dir.path(), "sysv-semaphore");
    assert!(
        !sysv_sets_of(sim.id()).is_empty(),
        "the trial's set should exist while it runs"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    assert_eq!(sim.wait().unwrap().code(), Some(130));
    assert!(sysv_sets_of(sim.id()).is_empty(), "left: {:?}", sysv_sets_of(sim.id()));
    assert!(
        processes_mentioning(&out.to_string_lossy()).is_empty(),
        "workers left running"
    );
}

#[test]
fn a_system_v_semaphore_of_a_runner_killed_outright_is_swept_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, _) = long_run(dir.path(), "sysv-semaphore");
    std::thread::sleep(Duration::from_millis(50));
    sim.kill().unwrap(); // SIGKILL: no clean-up runs, and the set stays
    sim.wait().unwrap();
    assert!(!sysv_sets_of(sim.id()).is_empty(), "a set should be left to sweep");
    let next = run_scenario(
        "trials = 1\nstrategy = \"sysv-semaphore\"\n[buyers]\ncount = 2\nhold_us = 0\n",
        &[],
    );
    assert_eq!(next.code(), 0, "{}", next.stderr());
    // Swept by this run (or by another test's sysv-semaphore run, which sweeps alike).
    assert!(
        sysv_sets_of(sim.id()).is_empty(),
        "not swept: {:?}",
        sysv_sets_of(sim.id())
    );
}

#[test]
fn killed_holders_of_every_local_lock_leave_no_lock_behind() {
    let run = common::run_shipped(
        "kill-holder.toml",
        &[
            "--trials",
            "1",
            "--strategy",
            "sysv-semaphore",
            "--strategy",
            "robust-mutex",
            "--strategy",
            "lease",
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for strategy in ["sysv-semaphore", "robust-mutex", "lease"] {
        let trial = &run.trials(strategy)[0];
        assert_eq!(trial["verdict"], "safe", "{strategy}");
        assert!(
            u(&trial["indeterminate"]) >= 1,
            "{strategy}: the killed purchases are indeterminate"
        );
    }
    let folder = |s: &str| run.out.join(format!("trials/{s}/000"));
    assert!(!folder("robust-mutex").join("robust.mutex").exists());
    assert!(!folder("lease").join("lease").exists());
    assert!(sysv_sets_of(std::process::id()).is_empty());
}
