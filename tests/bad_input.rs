//! Bad input of every kind exits 2 with one message that names the file and what is wrong,
//! and runs nothing.

mod common;

use common::{run_scenario, sim};

/// Runs a bad scenario and returns its error message, after checking the exit status, that
/// the message names the scenario file, and that no output was written.
fn refused(scenario: &str) -> String {
    let run = run_scenario(scenario, &[]);
    let err = run.stderr();
    assert_eq!(run.code(), 2, "{scenario:?} gave {}: {err}", run.code());
    assert!(
        err.contains("scenario.toml"),
        "the message does not name the file: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!run.out.exists(), "{scenario:?} wrote output before it was refused");
    err
}

#[test]
fn a_syntax_error_names_the_line() {
    let err = refused("name = \"x\"\ntrials = = 3\n");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn an_unknown_field_is_named_with_what_is_allowed() {
    let err = refused("[buyers]\ncont = 3\n");
    assert!(
        err.contains("line 2") && err.contains("cont") && err.contains("count"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_is_named() {
    let err = refused("[buyers]\ncount = \"thirty\"\n");
    assert!(err.contains("line 2") && err.contains("thirty"), "{err}");
}

#[test]
fn zero_and_negative_counts_are_refused_with_the_bounds() {
    for (text, field) in [
        ("[buyers]\ncount = 0\n", "buyers.count"),
        ("trials = -3\n", "trials"),
        ("[producers]\nqueue_capacity = 0\n", "producers.queue_capacity"),
        ("[semaphore]\npermits = 0\n", "semaphore.permits"),
    ] {
        let err = refused(text);
        assert!(err.contains(field) && err.contains("from 1 to"), "{text:?}: {err}");
    }
}

#[test]
fn an_unknown_strategy_is_quoted_with_the_known_ones() {
    let err = refused("strategy = [\"none\", \"mutex\"]\n");
    assert!(err.contains("\"mutex\"") && err.contains("\"file-lock\""), "{err}");
}

#[test]
fn a_stock_file_outside_the_output_folder_is_refused() {
    for path in ["../escape.txt", "/tmp/escape.txt"] {
        let err = refused(&format!("[stock]\nfile = \"{path}\"\n"));
        assert!(err.contains("stock.file"), "{err}");
    }
}

#[test]
fn too_many_processes_name_the_limit_and_how_to_lift_it() {
    let err = refused("[buyers]\ncount = 100000\n");
    assert!(err.contains("--max-processes"), "{err}");
}

#[test]
fn a_missing_scenario_file_is_named() {
    let out = sim().args(["run", "no/such/scenario.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/scenario.toml"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run"][..],
        &["run", "x.toml", "--strategy", "mutex"],
        &["run", "x.toml", "--trials", "0"],
        &["frobnicate"],
    ] {
        let out = sim().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn an_output_folder_holding_other_files_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), "precious").unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, "trials = 1\n[buyers]\ncount = 2\n").unwrap();
    let out = sim()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("thesis.tex")).unwrap(),
        "precious"
    );
}

#[test]
fn sim_report_on_a_folder_without_results_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = sim().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("results.json"));
    std::fs::write(dir.path().join("results.json"), "{\"runs\": [").unwrap();
    let out = sim().arg("report").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_strategy_its_store_cannot_serve_is_refused_naming_the_stores_that_can() {
    for strategy in ["atomic", "optimistic"] {
        let err = refused(&format!("strategy = \"{strategy}\"\n[stock]\nstore = \"file\"\n"));
        assert!(
            err.contains("field `strategy`") && err.contains(&format!("\"{strategy}\"")),
            "{err}"
        );
        assert!(err.contains("store \"file\"") && err.contains("\"shm\""), "{err}");
    }
    let err = refused("strategy = \"lease\"\n[lock]\nfencing = true\n[stock]\nstore = \"manager\"\n");
    assert!(err.contains("fenced write") && err.contains("\"shm\""), "{err}");
}

#[test]
fn lease_fields_without_a_lease_are_refused() {
    let err = refused("strategy = \"file-lock\"\n[lock]\nlease_ms = 50\n");
    assert!(err.contains("lock.lease_ms") && err.contains("\"lease\""), "{err}");
    let err = refused("strategy = \"file-lock\"\n[lock]\nfencing = true\n");
    assert!(err.contains("lock.fencing") && err.contains("\"lease\""), "{err}");
    let err = refused("strategy = \"lease\"\n[lock]\nlease_ms = 0\n");
    assert!(err.contains("lock.lease_ms") && err.contains("from 1 to"), "{err}");
}

#[test]
fn a_strategy_chosen_on_the_command_line_is_checked_against_the_store() {
    let run = run_scenario("strategy = \"none\"\n", &["--strategy", "atomic"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("--strategy") && run.stderr().contains("\"shm\""),
        "{}",
        run.stderr()
    );
    assert!(!run.out.exists());
}
