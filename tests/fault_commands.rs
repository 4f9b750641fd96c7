//! `[[faults.commands]]`, the user's own fault commands, run for real by the `sim` binary:
//! each runs at its moment and is undone after its duration, on a store sim did not start as
//! on its own; its moments are in results.json and on the timeline; a command that fails or
//! hangs fails the run, naming it, and leaves no process; an undo still owed runs when the
//! trial ends first or is interrupted.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{own_redis, processes_mentioning, run_in_background, run_scenario, u, wait_until};

/// A sale of `attempts` per buyer at 4 buyers with a race window of 1 ms, guarded, on the
/// file store, with `commands` after it.
fn sale(attempts: u32, commands: &str) -> String {
    format!(
        "trials = 1\nstrategy = \"file-lock\"\n[buyers]\ncount = 4\nattempts = {attempts}\nhold_us = 1000\n{commands}"
    )
}

fn events(t: &serde_json::Value) -> Vec<(String, u64, Option<u64>)> {
    t["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "command")
        .map(|f| {
            (
                f["process"].as_str().unwrap().to_string(),
                u(&f["at_ns"]),
                f["until_ns"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn a_command_runs_at_its_moment_its_undo_after_its_duration_and_both_are_on_the_timeline() {
    // "mark" breaks at 20 ms and mends 50 ms after; "long" would mend after a minute, and
    // the sale ends long before: its undo runs as the trial ends.
    let commands = "[[faults.commands]]\nname = \"mark\"\nrun = \"echo broke > \\\"$SIM_TRIAL_DIR/broke\\\"\"\n\
                    undo = [\"sh\", \"-c\", \"touch \\\"$SIM_TRIAL_DIR/mended\\\"\"]\nat_ms = 20\nduration_ms = 50\n\
                    [[faults.commands]]\nname = \"long\"\nrun = [\"true\"]\nundo = \"touch \\\"$SIM_TRIAL_DIR/long-mended\\\"\"\n\
                    duration_ms = 60000\n\
                    [[faults.commands]]\nname = \"never\"\nrun = \"touch \\\"$SIM_TRIAL_DIR/never\\\"\"\nat_ms = 600000\n";
    let run = run_scenario(&sale(200, commands), &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let t = &run.trials("file-lock")[0];
    let dir = run.out.join(t["dir"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(dir.join("broke")).unwrap(), "broke\n");
    assert!(
        dir.join("long-mended").exists(),
        "the undo owed at the end of the sale did not run"
    );
    assert!(!dir.join("never").exists(), "a command planned after the sale ran");
    assert!(dir.join("mended").exists(), "the undo, a list, did not run");
    let ev = events(t);
    let names: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["long", "mark"], "{t}");
    let (_, at, until) = &ev[1];
    assert!(*at >= 20_000_000, "run before its at_ms: {t}");
    assert!(
        until.is_some_and(|u| u >= at + 50_000_000),
        "undone before its duration: {t}"
    );
    let log = std::fs::read_to_string(dir.join("commands.log")).unwrap();
    for said in [
        "== mark run at",
        "== mark undo at",
        "== long undo at",
        "== never: not run",
    ] {
        assert!(log.contains(said), "no {said:?} in the log:\n{log}");
    }
    let page = std::fs::read_to_string(run.out.join("index.html")).unwrap();
    assert!(page.contains("rect class=\"command\""), "no band on the timeline");
    assert!(
        page.contains("mark ([[faults.commands]])"),
        "the band's hover text does not name it"
    );
}

#[test]
fn a_command_that_fails_or_hangs_fails_the_run_naming_it_and_leaves_no_process() {
    // A failed trial's folder is removed: the undo leaves its mark in the test's own.
    let marks = tempfile::tempdir().unwrap();
    let mended = marks.path().join("mended");
    let fails = format!(
        "[[faults.commands]]\nname = \"no such container\"\nrun = \"echo 'Error: no such container: db' >&2; exit 3\"\n\
         undo = [\"touch\", \"{}\"]\nduration_ms = 100\n",
        mended.display()
    );
    let run = run_scenario(&sale(2000, &fails), &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let e = run.stderr();
    for said in [
        "\"no such container\"",
        "faults.commands[0].run",
        "exit status: 3",
        "no such container: db",
    ] {
        assert!(e.contains(said), "no {said:?} in: {e}");
    }
    assert!(mended.exists(), "the undo of a failed run was not run");

    let hangs = "[[faults.commands]]\nname = \"hang\"\nrun = \"sleep 31.25 & sleep 31.5\"\ntimeout_ms = 300\n";
    let run = run_scenario(&sale(2000, hangs), &[]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("timeout_ms"), "{}", run.stderr());
    assert!(
        wait_until(Duration::from_secs(10), || processes_mentioning("sleep 31.").is_empty()),
        "left running: {:?}",
        processes_mentioning("sleep 31.")
    );
}

#[test]
fn ctrl_c_while_a_fault_holds_runs_its_undo() {
    // An interrupted trial's folder is removed: the marks are in the test's own.
    let dir = tempfile::tempdir().unwrap();
    let (broke, mended) = (dir.path().join("broke"), dir.path().join("mended"));
    let commands = format!(
        "[[faults.commands]]\nname = \"hold\"\nrun = [\"touch\", \"{}\"]\nundo = [\"touch\", \"{}\"]\nduration_ms = 60000\n",
        broke.display(),
        mended.display()
    );
    let file = dir.path().join("scenario.toml");
    std::fs::write(&file, sale(100_000, &commands)).unwrap();
    let mut sim = run_in_background(&file, dir.path());
    assert!(
        wait_until(Duration::from_secs(60), || broke.exists()),
        "the command never ran"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sim.id() as i32, libc::SIGINT) };
    assert_eq!(sim.wait().unwrap().code(), Some(130));
    assert!(mended.exists(), "the owed undo did not run");
}

#[test]
fn a_command_pauses_the_users_own_redis_and_the_sale_waits_for_it() {
    assert!(
        Path::new("/usr/bin/redis-server").is_file(),
        "redis-server is not installed: run scripts/test, which installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let server = own_redis(&socket, &[]);
    let pid = server.0.id();
    // The server sim did not start is stopped for 400 ms (by the shell's own kill, which
    // needs no procps): every buyer's sale waits.
    let scenario = format!(
        "trials = 1\nstrategy = \"atomic\"\n[stock]\nstore = \"redis\"\nurl = \"redis+unix://{}\"\ninitial = 100000\n\
         [buyers]\ncount = 4\nattempts = 3000\nhold_us = 0\n[[faults.commands]]\nname = \"pause redis\"\n\
         run = \"kill -STOP {pid}\"\nundo = \"kill -CONT {pid}\"\nat_ms = 30\nduration_ms = 400\n",
        socket.display()
    );
    let run = run_scenario(&scenario, &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let t = &run.trials("atomic")[0];
    assert_eq!(t["verdict"], "safe", "{t}");
    assert!(u(&t["sold"]) == 12_000, "{t}");
    assert!(
        t["latency"]["max_us"].as_f64().unwrap() >= 400_000.0,
        "no sale waited for the pause: {t}"
    );
    assert_eq!(events(t).len(), 1, "{t}");
}
