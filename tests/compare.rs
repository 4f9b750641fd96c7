//! `sim compare`, through the real binary: a slower run is called slower and fails
//! `--fail-if-slower`, two runs of one scenario stay within noise, a run that races
//! against one that does not fails `--fail-if-anomalous`, and bad input exits 2.
//!
//! Every contrast is certain by construction, not by luck: a held lock serializes the
//! buyers, so a longer hold bounds purchases/s from above; a lock that covers only the
//! write lets every buyer read the same stock.

mod common;

use std::path::Path;

use common::{Run, run_scenario, sim};
use scraper::{Html, Selector};

/// Two buyers × two attempts under `file-lock`: four purchases one after another, each
/// holding `hold_us` ± 50 %.
fn serial(hold_us: u64, trials: u32) -> String {
    format!(
        "name = \"serial\"\ntrials = {trials}\nstrategy = \"file-lock\"\n[stock]\ninitial = 3\n\
         [buyers]\ncount = 2\nattempts = 2\nhold_us = {hold_us}\n"
    )
}

fn ran(run: &Run) -> &Path {
    assert_eq!(run.code(), 0, "stdout: {}\nstderr: {}", run.stdout(), run.stderr());
    &run.out
}

struct Compared {
    code: i32,
    stdout: String,
    stderr: String,
}

fn compare(a: &Path, b: &Path, args: &[&str]) -> Compared {
    let output = sim().arg("compare").arg(a).arg(b).args(args).output().unwrap();
    Compared {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The judgement at the end of the line of `measure` in the block of `strategy`.
fn judgement(stdout: &str, strategy: &str, measure: &str) -> String {
    let mut inside = false;
    for line in stdout.lines() {
        if line.starts_with(strategy) {
            inside = true;
        } else if !line.starts_with(' ') {
            inside = false;
        }
        if inside && line.contains(measure) {
            return line.to_string();
        }
    }
    panic!("no line of {measure} for {strategy} in:\n{stdout}")
}

#[test]
fn a_longer_hold_is_slower_and_fails_the_gate() {
    // Four purchases in a row, each holding at least 25 ms: at most 4 / 0.1 s = 40/s. With no
    // hold, four lock round trips take well under the 50 ms that 80/s would allow. Five trials
    // a side, so that the t-test can be sure (with three, its p cannot go much below 0.05).
    let fast = run_scenario(&serial(0, 5), &[]);
    let slow = run_scenario(&serial(50_000, 5), &[]);
    let (a, b) = (ran(&fast), ran(&slow));

    // Another hold is another scenario: refused, naming the field.
    let refused = compare(a, b, &[]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("buyers.hold_us is 0 in A and 50000 in B"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);

    let c = compare(a, b, &["--force", "--fail-if-slower", "50"]);
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("buyers.hold_us is 0 in A and 50000 in B"),
        "{}",
        c.stdout
    );
    assert!(
        judgement(&c.stdout, "file-lock", "purchases/s").ends_with("slower"),
        "{}",
        c.stdout
    );
    assert!(
        judgement(&c.stdout, "file-lock", "p50 latency").ends_with("slower"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("regression: file-lock: purchases/s fell by"),
        "{}",
        c.stdout
    );
    assert!(!c.stdout.contains('\x1b'), "colour in a pipe: {}", c.stdout);

    // The page is written into B, parses, and draws the changes and both runs' trials.
    let html = std::fs::read_to_string(b.join("compare.html")).expect("compare.html in DIR_B");
    let doc = Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let svgs = doc.select(&Selector::parse("section svg").unwrap()).count();
    assert_eq!(svgs, 5, "three change charts, purchases/s and the anomalous share");
    let worse = doc.select(&Selector::parse("span.worse").unwrap()).count();
    assert!(worse >= 3, "purchases/s, p50 and p99 judged worse: {worse}");
    assert!(!html.contains("<script"));

    // The other way round it is faster, and the gate holds; --out puts the page elsewhere.
    let page = fast.out.parent().unwrap().join("back.html");
    let back = compare(
        b,
        a,
        &["--force", "--fail-if-slower", "50", "--out", page.to_str().unwrap()],
    );
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert!(
        judgement(&back.stdout, "file-lock", "purchases/s").ends_with("faster"),
        "{}",
        back.stdout
    );
    assert!(page.is_file(), "--out names the page");
}

#[test]
fn two_runs_of_one_scenario_are_within_noise() {
    // Four purchases of 20 ms holds in a row: ~80 ms a trial, nearly all of it sleeping, so
    // that no load on the machine makes one run half as fast as the other.
    let first = run_scenario(&serial(20_000, 4), &[]);
    let second = run_scenario(&serial(20_000, 4), &[]);
    let (a, b) = (ran(&first), ran(&second));
    let c = compare(a, b, &["--fail-if-slower", "50", "--fail-if-anomalous"]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    assert!(!c.stdout.contains("regression"), "{}", c.stdout);
    assert!(
        judgement(&c.stdout, "file-lock", "anomalous").ends_with("within noise"),
        "{}",
        c.stdout
    );
    assert!(
        judgement(&c.stdout, "file-lock", "verdicts").contains("4 safe → 4 safe"),
        "{}",
        c.stdout
    );

    // The very same trials on both sides: every interval holds zero, so all is within noise
    // and even a gate of 0 % passes.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(a.join("results.json"), copy.path().join("results.json")).unwrap();
    let same = compare(a, copy.path(), &["--fail-if-slower", "0", "--fail-if-anomalous"]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    for measure in ["purchases/s", "p50 latency", "p99 latency", "anomalous"] {
        assert!(
            judgement(&same.stdout, "file-lock", measure).ends_with("within noise"),
            "{measure}: {}",
            same.stdout
        );
    }
    assert!(same.stdout.contains("Within noise: no difference"), "{}", same.stdout);
}

#[test]
fn a_run_that_races_against_one_that_does_not_fails_the_anomaly_gate() {
    // Ten buyers for three tickets, holding 7.5 ms or more: with the lock around the whole
    // sale none oversells; with the lock around the write alone, all read 3 before anyone
    // writes, and every trial oversells.
    let scenario = |scope: &str| {
        format!(
            "name = \"scope\"\ntrials = 6\nstrategy = \"file-lock\"\n[stock]\ninitial = 3\n\
             [buyers]\ncount = 10\nhold_us = 15000\n[lock]\nscope = \"{scope}\"\n"
        )
    };
    let safe = run_scenario(&scenario("read-modify-write"), &[]);
    let racing = run_scenario(&scenario("write"), &[]);
    let (a, b) = (ran(&safe), ran(&racing));
    let c = compare(a, b, &["--force", "--fail-if-anomalous"]);
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    let line = judgement(&c.stdout, "file-lock", "anomalous");
    assert!(line.contains("0 of 6") && line.ends_with("more races"), "{}", c.stdout);
    assert!(
        c.stdout
            .contains("regression: file-lock: anomalous trials rose from 0 of 6"),
        "{}",
        c.stdout
    );

    // Fewer races is no regression.
    let back = compare(b, a, &["--force", "--fail-if-anomalous"]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert!(
        judgement(&back.stdout, "file-lock", "anomalous").ends_with("fewer races"),
        "{}",
        back.stdout
    );
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let c = compare(&missing, dir.path(), &[]);
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(
        c.stderr.contains("nothing-here") && c.stderr.contains("not a folder"),
        "{}",
        c.stderr
    );

    // A folder without results.json, and one whose results.json is cut short.
    let empty = tempfile::tempdir().unwrap();
    let c = compare(empty.path(), empty.path(), &[]);
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(c.stderr.contains("results.json"), "{}", c.stderr);
    std::fs::write(empty.path().join("results.json"), "{\"scenario\": {").unwrap();
    let c = compare(empty.path(), empty.path(), &[]);
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(
        c.stderr.contains("results.json") && c.stderr.contains("truncated"),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("panicked"), "{}", c.stderr);

    // --out a folder: refused, naming the file it would take.
    let valid = run_scenario(&serial(0, 2), &[]);
    let v = ran(&valid);
    let c = compare(v, v, &["--out", dir.path().to_str().unwrap()]);
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(
        c.stderr.contains("is a folder") && c.stderr.contains("compare.html"),
        "{}",
        c.stderr
    );

    for bad in ["--noise=-1", "--fail-if-slower=abc", "--fail-if-slower=100"] {
        let c = compare(dir.path(), dir.path(), &[bad]);
        assert_eq!(c.code, 2, "{bad}: {}", c.stderr);
        let flag = bad.split('=').next().unwrap();
        assert!(
            c.stderr.contains(flag) && c.stderr.contains("percentage"),
            "{bad}: {}",
            c.stderr
        );
    }
}
