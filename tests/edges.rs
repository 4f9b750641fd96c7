//! Reliability at the edges: the documented maximum of buyers, an output folder
//! that two runs want at once, a disk that is full or fills, and runs that keep only some
//! histories.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{run_scenario, u};
use serde_json::Value;

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

/// A child process that is ended if the test leaves early: nothing is left running.
struct Child(Option<std::process::Child>);

impl Child {
    fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Waits for it to end, and what it wrote.
    fn finish(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("waiting for sim")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `sim run SCENARIO --out OUT ARGS` started in the background.
fn start_run(scenario: &Path, out: &Path, args: &[&str]) -> Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting sim");
    Child(Some(child))
}

/// Waits for `what` to hold, for at most 30 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < until, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_run_into_a_folder_in_use_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("slow.toml");
    // 2 buyers selling 6 tickets under a lock, 100 ms each: the first run lasts about 0.6 s
    // per trial, five trials.
    std::fs::write(
        &scenario,
        "trials = 5\nstrategy = \"file-lock\"\n[stock]\ninitial = 6\n[buyers]\ncount = 2\nattempts = 3\nhold_us = 100000\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let first = start_run(&scenario, &out, &[]);
    let pid = first.id();
    let marker = out.join(".sim-run");
    wait_for("the first run to hold the folder", || {
        std::fs::read_to_string(&marker).is_ok_and(|t| t.contains(&format!("pid {pid},")))
    });

    let second = common::sim()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {pid}")),
        "the first run's pid is named: {err}"
    );
    assert!(err.contains("in use"), "{err}");

    let report = common::sim().arg("report").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("pid {pid}")), "{err}");

    let first = first.finish();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let results: Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let trials = results["runs"][0]["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 5);
    for t in trials {
        assert_eq!(t["verdict"], "safe", "{t}");
        assert!(out.join(t["dir"].as_str().unwrap()).join("history.bin").is_file());
    }
    // Once the first is done, the folder is free again.
    let again = common::sim().arg("report").arg(&out).output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A small tmpfs mounted on a temporary folder for one test, unmounted when dropped (also
/// when the test fails). Mounting needs root: a test that needs one fails without it, and
/// says so, rather than passing untested.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions and only reads the process's credentials.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "this test fills a disk: it mounts a {size} tmpfs, which needs root; run `cargo test` as root (or in a container that allows mount)"
        );
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(status.success(), "mount -t tmpfs on {} failed", dir.path().display());
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount").arg(self.dir.path()).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still busy: detach it now, the kernel frees it when the last user goes.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_run_too_big_for_the_disk_is_refused_before_it_starts() {
    let disk = Tmpfs::mount("2m");
    let scenario = disk.path().join("big.toml");
    // 10 buyers × 10,000 attempts of 64 bytes: 6.4 MB of history per trial.
    std::fs::write(
        &scenario,
        "trials = 2\nstrategy = \"file-lock\"\n[buyers]\ncount = 10\nattempts = 10000\nhold_us = 0\n",
    )
    .unwrap();
    let out = disk.path().join("out");
    let run = common::sim()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("this run needs 13 MB for its histories"), "{err}");
    assert!(
        err.contains("free; lower attempts or trials, or use --keep-histories anomalous"),
        "{err}"
    );
    assert_eq!(files(&out), [".sim-run"], "nothing ran");
}

#[test]
fn a_disk_that_fills_mid_run_stops_it_with_the_finished_trials_written() {
    let disk = Tmpfs::mount("32m");
    let scenario = disk.path().join("fills.toml");
    // Each trial has 2.6 MB of history (2 buyers × 20,000 attempts) and lasts until its
    // 1.5 s deadline (its buyers hold the lock for a second each): time enough to fill the
    // disk while the second trial runs.
    std::fs::write(
        &scenario,
        "trials = 5\nstrategy = \"file-lock\"\ndeadline_ms = 1500\n[stock]\ninitial = 100\n\
         [buyers]\ncount = 2\nattempts = 20000\nhold_us = 1000000\n",
    )
    .unwrap();
    let out = disk.path().join("out");
    let run = start_run(&scenario, &out, &[]);
    // The plan is written once the trial's history is allocated.
    let second = out.join("trials/file-lock/001/plan.json");
    wait_for("the second trial to start", || second.is_file());
    // Another program fills the disk, leaving 1 MiB: room for results.json and the report,
    // not for another history.
    let free = fs2::available_space(disk.path()).unwrap();
    let filler = vec![0u8; 1 << 20];
    let mut file = std::fs::File::create(disk.path().join("filler")).unwrap();
    for _ in 0..(free >> 20).saturating_sub(1) {
        std::io::Write::write_all(&mut file, &filler).unwrap();
    }
    drop(file);

    let output = run.finish();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the run stopped early: trial 2 of file-lock failed"),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("holds the 2 trial(s) that finished"), "{err}");

    let results: Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let stopped = results["stopped"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {results}"));
    assert!(
        stopped.contains("history.bin") && stopped.contains("No space left"),
        "{stopped}"
    );
    let trials = results["runs"][0]["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "the two finished trials are kept");
    // Nothing half-written: the failed trial's folder and every file written aside are gone.
    let left = files(&out);
    let mut expected = vec![".sim-run".to_string(), "index.html".into(), "results.json".into()];
    for n in ["000", "001"] {
        for f in ["history.bin", "plan.json", "stock.txt", "workers.log"] {
            expected.push(format!("trials/file-lock/{n}/{f}"));
        }
    }
    expected.sort();
    assert_eq!(left, expected);
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("The run stopped early"), "the report says so");
}

#[test]
fn keeping_only_anomalous_histories_removes_the_safe_ones_and_the_report_says_so() {
    // `none` with a wide race window oversells (see tests/races.rs); `file-lock` never does.
    let run = run_scenario(
        "trials = 3\nstrategy = [\"none\", \"file-lock\"]\n[stock]\ninitial = 10\n\
         [buyers]\ncount = 40\nhold_us = 50000\n",
        &["--keep-histories", "anomalous"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let mut anomalous = 0;
    for strategy in ["none", "file-lock"] {
        let trials = run.trials(strategy);
        assert_eq!(trials.len(), 3);
        for t in trials {
            let kept = t["verdict"] != "safe";
            anomalous += kept as u32;
            assert_eq!(t["history_kept"], kept, "{t}");
            let history = run.out.join(t["dir"].as_str().unwrap()).join("history.bin");
            assert_eq!(history.is_file(), kept, "{}", history.display());
        }
    }
    assert!(anomalous > 0, "some trial of none oversold, and kept its history");
    let page = std::fs::read_to_string(run.out.join("index.html")).unwrap();
    assert!(
        page.contains("kept only some histories"),
        "the page says which trials have none"
    );
    assert!(page.contains("file-lock: trial(s) 0, 1, 2 (of 3) have no history"));

    let report = common::sim().arg("report").arg(&run.out).output().unwrap();
    let err = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(0), "{err}");
    assert!(
        err.contains("note: file-lock: trial(s) 0, 1, 2 (of 3) have no history"),
        "{err}"
    );
}

#[test]
fn keeping_no_history_still_writes_the_results_and_the_report() {
    let run = run_scenario(
        "trials = 2\nstrategy = \"file-lock\"\n[stock]\ninitial = 5\n[buyers]\ncount = 4\nattempts = 2\nhold_us = 0\n",
        &["--keep-histories", "none"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for t in run.trials("file-lock") {
        assert_eq!(t["history_kept"], false, "{t}");
        assert_eq!(u(&t["sold"]), 5, "the counts are all there: {t}");
        assert!(!run.out.join(t["dir"].as_str().unwrap()).join("history.bin").exists());
    }
    let page = std::fs::read_to_string(run.out.join("index.html")).unwrap();
    assert!(page.contains("kept no history of this strategy"), "{page}");
    let report = common::sim().arg("report").arg(&run.out).output().unwrap();
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
}

#[test]
fn a_short_soak_buys_for_its_time_and_is_checked_segment_by_segment() {
    // A stock that cannot run out; 1.5 s of buying. Under `none` four buyers holding 1 ms
    // between read and write race all the time; under `file-lock` never.
    let run = run_scenario(
        "trials = 1\nstrategy = [\"file-lock\", \"none\"]\n[stock]\ninitial = 1000000000\n\
         [buyers]\ncount = 4\nduration_ms = 1500\nhold_us = 1000\n",
        &["--keep-histories", "anomalous"],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let safe = &run.trials("file-lock")[0];
    assert_eq!(safe["verdict"], "safe", "{safe}");
    let sold = u(&safe["sold"]);
    assert!(sold > 100, "it bought for 1.5 s: {safe}");
    assert_eq!(u(&safe["attempts"]), sold, "{safe}");
    assert_eq!(u(&safe["final_stock"]), 1_000_000_000 - sold, "{safe}");
    // Each buyer's 1.5 s count from its own start, just after the gate.
    assert!(safe["wall_ms"].as_f64().unwrap() > 1000.0, "{safe}");
    // A safe soak keeps nothing: every segment was removed once checked.
    let dir = run.out.join(safe["dir"].as_str().unwrap());
    assert_eq!(std::fs::read_dir(dir.join("segments")).unwrap().count(), 0);
    assert!(!dir.join("history.bin").exists());

    let raced = &run.trials("none")[0];
    assert_ne!(raced["verdict"], "safe", "{raced}");
    assert!(
        u(&raced["lost_updates"]) > 0 && u(&raced["duplicate_tickets"]) > 0,
        "{raced}"
    );
    let kept = std::fs::read_dir(run.out.join(raced["dir"].as_str().unwrap()).join("segments")).unwrap();
    assert!(kept.count() > 0, "the segments with anomalies are kept");
}

#[test]
fn a_soak_is_a_time_not_a_number_of_attempts() {
    let run = run_scenario("[buyers]\nattempts = 5\nduration_ms = 1000\n", &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("line 3, field `buyers.duration_ms`"),
        "{}",
        run.stderr()
    );
    let run = run_scenario("strategy = \"queue\"\n[buyers]\nduration_ms = 1000\n", &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("drop `queue`"), "{}", run.stderr());
}
