//! `sim check` and `sim export` on the real binary: the report draws what the checker
//! counted, histories survive the trip through JSON lines, planted anomalies are found and
//! named, bad lines are refused, and saved runs are judged again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{Run, each_in_parallel, run_shipped, sim, u};
use scraper::{Html, Selector};
use serde_json::{Value, json};

/// The counts that a verdict rests on, as results.json and the check of a history hold them.
const COUNTS: [&str; 14] = [
    "attempts",
    "sold",
    "sold_out",
    "unreadable",
    "indeterminate",
    "oversold",
    "duplicate_tickets",
    "lost_updates",
    "torn_reads",
    "phantom_stock",
    "order_violations",
    "produced",
    "dropped",
    "unconsumed",
];

fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    names
}

/// Every trial of a run, with its strategy.
fn trials(run: &Run) -> Vec<(String, Value)> {
    let results = run.results();
    results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let strategy = r["strategy"].as_str().unwrap().to_string();
            r["trials"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (strategy.clone(), t.clone()))
        })
        .collect()
}

fn counts(t: &Value) -> BTreeMap<&'static str, u64> {
    COUNTS.iter().map(|&c| (c, u(&t[c]))).collect()
}

/// The timeline's bars of a page, by the classes each carries.
fn drawn(html: &str) -> (BTreeMap<String, u64>, BTreeSet<String>, usize) {
    let doc = Html::parse_document(html);
    let mut classes = BTreeMap::new();
    let mut dup_tickets = BTreeSet::new();
    let mut bars = 0;
    for g in doc.select(&Selector::parse("section#timeline svg g").unwrap()) {
        let Some(class) = g.value().attr("class") else { continue };
        if class == "store-killed" {
            continue; // the line of a killed server across every lane, no bar
        }
        bars += 1;
        for c in class.split_whitespace() {
            *classes.entry(c.to_string()).or_insert(0) += 1;
        }
        if class.split_whitespace().any(|c| c == "dup") {
            let title = g.text().collect::<String>();
            let ticket = title
                .split("sold ticket ")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            dup_tickets.insert(ticket.trim_end_matches(';').to_string());
        }
    }
    (classes, dup_tickets, bars)
}

/// The report of one trial alone: results.json of that trial beside the run's trials.
fn report_of_one(run: &Run, strategy: &str, trial: &Value, at: &Path) -> String {
    let mut results = run.results();
    let run_of = results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["strategy"] == strategy && r["trials"].as_array().unwrap().contains(trial))
        .unwrap()
        .clone();
    let mut one = run_of;
    one["trials"] = json!([trial]);
    results["runs"] = json!([one]);
    let _ = std::fs::remove_dir_all(at);
    std::fs::create_dir_all(at).unwrap();
    std::os::unix::fs::symlink(run.out.join("trials"), at.join("trials")).unwrap();
    std::fs::write(at.join("results.json"), results.to_string()).unwrap();
    let out = sim().arg("report").arg(at).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(at.join("index.html")).unwrap()
}

#[test]
fn every_shipped_scenario_is_drawn_as_counted_and_survives_the_trip_through_json_lines() {
    let scratch = tempfile::tempdir().unwrap();
    let checked = std::sync::atomic::AtomicUsize::new(0);
    each_in_parallel(shipped(), 2, |name| {
        let scratch = scratch.path().join(&name);
        std::fs::create_dir(&scratch).unwrap();
        let run = run_shipped(&name, &["--trials", "1"]);
        assert!(matches!(run.code(), 0 | 1), "{name}: {}", run.stderr());
        for (n, (strategy, t)) in trials(&run).into_iter().enumerate() {
            let what = format!("{name}, {strategy}, {}", t["dir"]);

            // What the report draws for the trial is what the checker counted.
            let html = report_of_one(&run, &strategy, &t, &scratch.join(format!("one-{n}")));
            let (classes, dup_tickets, bars) = drawn(&html);
            let c = |k: &str| classes.get(k).copied().unwrap_or(0);
            assert!(bars > 0 || u(&t["attempts"]) == 0, "{what}: no bar drawn");
            assert!(bars <= 2000, "{what}: shipped trials are drawn whole, not windowed");
            assert_eq!(bars as u64, u(&t["attempts"]), "{what}: one bar per attempt");
            assert_eq!(
                [
                    c("sold"),
                    c("sold-out"),
                    c("unreadable"),
                    c("indet"),
                    c("torn"),
                    c("order")
                ],
                [
                    u(&t["sold"]),
                    u(&t["sold_out"]),
                    u(&t["unreadable"]),
                    u(&t["indeterminate"]),
                    u(&t["torn_reads"]),
                    u(&t["order_violations"]),
                ],
                "{what}: {classes:?}\n{t}"
            );
            assert_eq!(
                c("dup") - dup_tickets.len() as u64,
                u(&t["duplicate_tickets"]),
                "{what}: receipts beyond the first of each ticket drawn as duplicates"
            );
            assert!(
                c("phantom") == 0 || u(&t["phantom_stock"]) > 0,
                "{what}: phantom reads drawn, none counted"
            );

            // Exported, then checked as any program's history: the same counts and verdict.
            let trial_dir = run.out.join(t["dir"].as_str().unwrap());
            let file = scratch.join(format!("{n}.jsonl"));
            let export = sim()
                .arg("export")
                .arg(&trial_dir)
                .arg("--out")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                export.status.success(),
                "{what}: {}",
                String::from_utf8_lossy(&export.stderr)
            );
            let out = scratch.join(format!("check-{n}"));
            let check = sim()
                .args(["check", "--history"])
                .arg(&file)
                .args([
                    "--initial",
                    &t["initial_stock"].to_string(),
                    "--final",
                    &t["final_stock"].to_string(),
                    // The bound the run judged its order by, which the export leaves out.
                    "--clock-uncertainty",
                    &t["clock_uncertainty_ns"].to_string(),
                ])
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            // A deadlock is a fact of the run (the deadline came), not of the operations: the
            // format has no deadline, so the same operations judged alone lose that verdict
            // (docs/reference/history.md says so), and keep every count.
            let deadlock = t["verdict"] == "deadlock";
            let safe = t["verdict"] == "safe" || (deadlock && t["anomalies"].as_array().is_some_and(|a| a.len() <= 1));
            assert_eq!(
                check.status.code(),
                Some(if safe { 0 } else { 1 }),
                "{what}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            let again: Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
            let again = &again["runs"][0]["trials"][0];
            assert_eq!(counts(again), counts(&t), "{what}");
            if !deadlock {
                assert_eq!(again["verdict"], t["verdict"], "{what}");
            }
            assert!(out.join("index.html").is_file());
            checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Every strategy of every scenario, and each point of the sweep.
    let checked = checked.into_inner();
    assert!(checked >= 60, "only {checked} trials checked");
}

/// A real safe history as JSON lines, with the facts to check it by: a file lock around
/// read-modify-write, 30 buyers for 10 tickets.
fn safe_history(strategy: &str) -> (Vec<Value>, i64, i64) {
    let run = run_shipped("lock.toml", &["--trials", "1", "--strategy", strategy]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let t = &run.trials(strategy)[0];
    assert_eq!(t["verdict"], "safe", "{t}");
    let export = sim()
        .arg("export")
        .arg(run.out.join(t["dir"].as_str().unwrap()))
        .output()
        .unwrap();
    assert!(export.status.success());
    let lines = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        lines,
        t["initial_stock"].as_i64().unwrap(),
        t["final_stock"].as_i64().unwrap(),
    )
}

/// One purchase of a history: its invocation's and its completion's line.
#[derive(Clone, Copy)]
struct Purchase {
    invoke: usize,
    done: usize,
}

fn purchases(lines: &[Value]) -> Vec<Purchase> {
    let mut open: BTreeMap<i64, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let p = l["process"].as_i64().unwrap();
        if l["type"] == "invoke" {
            open.insert(p, i);
        } else {
            out.push(Purchase {
                invoke: open.remove(&p).unwrap(),
                done: i,
            });
        }
    }
    out
}

/// The sales in the order they ended.
fn sales(lines: &[Value]) -> Vec<Purchase> {
    let mut sales: Vec<Purchase> = purchases(lines)
        .into_iter()
        .filter(|p| lines[p.done]["type"] == "ok")
        .collect();
    sales.sort_by_key(|p| lines[p.done]["time"].as_u64().unwrap());
    sales
}

fn check_lines(lines: &[Value], initial: i64, final_stock: i64) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = sim()
        .args(["check", "--history"])
        .arg(&file)
        .args([
            "--initial",
            &initial.to_string(),
            "--final",
            &final_stock.to_string(),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    (
        o.status.code().unwrap_or(-1),
        results["runs"][0]["trials"][0].clone(),
        stdout,
    )
}

fn kinds(t: &Value) -> BTreeSet<String> {
    t["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The counts an anomaly raises; those not named must stay zero.
const ANOMALY_COUNTS: [&str; 6] = [
    "oversold",
    "duplicate_tickets",
    "lost_updates",
    "torn_reads",
    "phantom_stock",
    "order_violations",
];

fn only(t: &Value, count: &str, want: u64, kind: &str, verdict: &str, stdout: &str) {
    for c in ANOMALY_COUNTS {
        assert_eq!(u(&t[c]), if c == count { want } else { 0 }, "{count}: {c}\n{t}");
    }
    assert_eq!(kinds(t), BTreeSet::from([kind.to_string()]), "{t}");
    assert_eq!(t["verdict"], verdict, "{t}");
    assert!(stdout.contains(&format!("verdict: {verdict}")), "{stdout}");
    assert!(stdout.contains(&format!("  {kind}: ")), "{stdout}");
}

#[test]
fn each_planted_anomaly_is_found_named_and_alone() {
    for strategy in ["file-lock", "semaphore"] {
        let (lines, initial, final_stock) = safe_history(strategy);
        let (code, t, _) = check_lines(&lines, initial, final_stock);
        assert_eq!((code, t["verdict"].as_str()), (0, Some("safe")), "{t}");
        let sales = sales(&lines);
        assert_eq!(sales.len() as i64, initial);
        // Two sales one after the other, tickets v and v − 1, the second completing after the
        // first did (under a lock a buyer may be descheduled between its unlock and its
        // completion, and the next one complete first: such a pair cannot be planted on, nor
        // two that completed one after the other but sold in the other order).
        let time = |at: usize| lines[at]["time"].as_u64().unwrap();
        let ticket = |p: &Purchase| lines[p.done]["value"].as_i64().unwrap();
        let (a, b) = sales[3..]
            .iter()
            .find_map(|a| {
                let b = sales.iter().find(|b| ticket(b) == ticket(a) - 1)?;
                (time(b.done) > time(a.done) + 1).then_some((*a, *b))
            })
            .expect("two sales of tickets v and v - 1 that completed in that order");

        // Duplicate ticket: b read what a read, in a call that overlapped a's.
        let mut planted = lines.clone();
        planted[b.done]["value"] = lines[a.done]["value"].clone();
        planted[b.invoke]["time"] = lines[a.invoke]["time"].clone();
        let (code, t, out) = check_lines(&planted, initial, final_stock);
        assert_eq!(code, 1);
        only(&t, "duplicate_tickets", 1, "duplicate-ticket", "inconsistent", &out);

        // Lost update: the stock ended one higher than the sales left it.
        let (code, t, out) = check_lines(&lines, initial, final_stock + 1);
        assert_eq!(code, 1);
        only(&t, "lost_updates", 1, "lost-update", "inconsistent", &out);

        // Torn read: a sold-out buyer found the stock unparseable.
        let sold_out = purchases(&lines)
            .into_iter()
            .find(|p| lines[p.done]["type"] == "fail")
            .unwrap();
        let mut planted = lines.clone();
        planted[sold_out.done]["value"] = Value::Null;
        planted[sold_out.done]["error"] = json!("unreadable");
        let (code, t, out) = check_lines(&planted, initial, final_stock);
        assert_eq!(code, 1);
        only(&t, "torn_reads", 1, "torn-read", "inconsistent", &out);
        assert_eq!((u(&t["unreadable"]), u(&t["attempts"])), (1, 30));

        // Phantom stock: the stock ended above where it started.
        let (code, t, out) = check_lines(&lines, initial, initial + 5);
        assert_eq!(code, 1);
        only(&t, "phantom_stock", 5, "phantom-stock", "inconsistent", &out);

        // Order violation: two sales one after the other swap their tickets, the second
        // invoked only once the first had completed (invocations come before the lock).
        let mut planted = lines.clone();
        let invoked = lines[a.done]["time"].as_u64().unwrap() + 1;
        planted[b.invoke]["time"] = json!(invoked);
        // Its read and write come after its invocation, as in any history.
        for field in ["read_time", "write_time"] {
            if let Some(t) = lines[b.done][field].as_u64() {
                planted[b.done][field] = json!(t.max(invoked));
            }
        }
        for field in ["value", "written"] {
            planted[a.done][field] = lines[b.done][field].clone();
            planted[b.done][field] = lines[a.done][field].clone();
        }
        let (code, t, out) = check_lines(&planted, initial, final_stock);
        assert_eq!(code, 1);
        only(&t, "order_violations", 1, "order", "inconsistent", &out);

        // Oversell: the first buyer told "sold out" is told it sold ticket 0 instead, and
        // writes -1.
        let late = purchases(&lines)
            .into_iter()
            .filter(|p| lines[p.done]["type"] == "fail")
            .min_by_key(|p| lines[p.done]["time"].as_u64().unwrap())
            .expect("a buyer told sold out");
        let mut planted = lines.clone();
        let done = &mut planted[late.done];
        done["type"] = json!("ok");
        done["written"] = json!(-1);
        done["write_time"] = done["time"].clone();
        let (code, t, out) = check_lines(&planted, initial, -1);
        assert_eq!(code, 1);
        only(&t, "oversold", 1, "oversold", "oversold", &out);
    }
}

fn check_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, text).unwrap();
    let o = sim()
        .args(["check", "--history"])
        .arg(&file)
        .args(["--initial", "10", "--final", "0"])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_histories_are_refused_naming_the_line_and_the_field() {
    let invoke = r#"{"process": 1, "type": "invoke", "f": "purchase", "time": 5}"#;
    let cases = [
        (
            format!("{invoke}\n{{\"process\": 1, \"type\": \"ok\""),
            "line 2: not JSON",
        ),
        (
            r#"{"process": 2, "type": "ok", "f": "purchase", "time": 9, "value": 10}"#.to_string(),
            "line 1: field \"type\" is \"ok\", but process 2 has no invocation open",
        ),
        (
            format!("{invoke}\n{invoke}"),
            "line 2: field \"type\" is \"invoke\", but process 1",
        ),
        (invoke.replace("invoke", "start"), "line 1: field \"type\" is \"start\""),
        (
            invoke.replace("purchase", "refund"),
            "line 1: field \"f\" is \"refund\"",
        ),
        (
            invoke.replace("\"time\": 5", "\"time\": -5"),
            "line 1: field \"time\" is -5, a negative count",
        ),
        (
            format!(
                "{invoke}\n{}",
                r#"{"process": 1, "type": "ok", "f": "purchase", "time": 9, "value": "ten"}"#
            ),
            "line 2: field \"value\" is \"ten\"",
        ),
    ];
    for (text, want) in cases {
        let (code, stderr) = check_text(&text);
        assert_eq!(code, 2, "{text}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("bad.jsonl"),
            "{text}\n→ {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one paragraph: {stderr}");
    }
    // A negative stock to start from.
    let o = sim()
        .args(["check", "--history", "x.jsonl", "--initial", "-3", "--final", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--initial is -3, a negative count"));
    // No file.
    let (code, stderr) = {
        let o = sim()
            .args([
                "check",
                "--history",
                "/nonexistent/h.jsonl",
                "--initial",
                "1",
                "--final",
                "0",
            ])
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/h.jsonl"), "{stderr}");
}

#[test]
fn a_saved_run_is_judged_again_and_its_edited_counts_put_right() {
    let run = run_shipped("lock.toml", &["--trials", "2", "--strategy", "file-lock"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let path = run.out.join("results.json");
    let before = run.results();
    let mut edited = before.clone();
    let t = &mut edited["runs"][0]["trials"][1];
    t["sold"] = json!(999);
    t["verdict"] = json!("oversold");
    t["anomalies"] = json!([]);
    std::fs::write(&path, edited.to_string()).unwrap();

    let o = sim().arg("check").arg(&run.out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("index.html"));
    let after = run.results();
    for (a, b) in after["runs"][0]["trials"]
        .as_array()
        .unwrap()
        .iter()
        .zip(before["runs"][0]["trials"].as_array().unwrap())
    {
        assert_eq!(counts(a), counts(b));
        assert_eq!(a["verdict"], b["verdict"]);
    }
    assert_eq!(after["runs"][0]["summary"]["verdicts"], json!({"safe": 2}));

    // Exported as a whole run: a file per trial, in JSON lines or EDN.
    let o = sim()
        .arg("export")
        .arg(&run.out)
        .args(["--format", "edn"])
        .output()
        .unwrap();
    assert!(o.status.success());
    for t in after["runs"][0]["trials"].as_array().unwrap() {
        let file: PathBuf = run.out.join(t["dir"].as_str().unwrap()).join("history.edn");
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count() as u64, 2 * u(&t["attempts"]));
        assert!(text.starts_with("{:process "), "{text}");
    }

    // Not a run's folder.
    let o = sim().arg("check").arg(run.out.join("trials")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("results.json"));
}

#[test]
fn the_python_example_records_a_history_sim_can_check() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/buyers.py");
    let file = dir.path().join("buyers.jsonl");
    let python = std::process::Command::new("python3")
        .arg(&script)
        .args(["--buyers", "4", "--tickets", "6", "--attempts", "3", "--lock", "--out"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .expect("python3 runs the example (install python3 to run this test)");
    assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
    let o = sim()
        .args(["check", "--history"])
        .arg(&file)
        .args(["--initial", "6", "--final", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("verdict: safe") && stdout.contains("attempts 12: sold 6, sold out 6"),
        "{stdout}"
    );
}

#[test]
fn an_order_violation_is_found_past_the_clock_uncertainty_and_not_within_it() {
    // Buyer 0 sold ticket 9 and finished; buyer 1 began `gap` ns later and sold ticket 10:
    // the stock went back up, if the stamps can tell the two apart.
    let history = |gap: u64| {
        let b = 10_000 + gap;
        vec![
            json!({"process": 0, "type": "invoke", "f": "purchase", "time": 0}),
            json!({"process": 0, "type": "ok", "f": "purchase", "time": 10_000, "value": 9, "written": 8}),
            json!({"process": 1, "type": "invoke", "f": "purchase", "time": b}),
            json!({"process": 1, "type": "ok", "f": "purchase", "time": b + 10_000, "value": 10, "written": 9}),
        ]
    };
    let check = |gap: u64, bound: &str| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.jsonl");
        let text: String = history(gap).iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join("out");
        let mut command = sim();
        command.args(["check", "--history"]).arg(&file);
        command.args(["--initial", "10", "--final", "8", "--out"]).arg(&out);
        if !bound.is_empty() {
            command.args(["--clock-uncertainty", bound]);
        }
        let o = command.output().unwrap();
        let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        (o.status.code(), results["runs"][0]["trials"][0].clone(), stdout)
    };
    let (code, t, out) = check(5_000, "100");
    assert_eq!(code, Some(1), "{out}");
    only(&t, "order_violations", 1, "order", "inconsistent", &out);
    assert_eq!(u(&t["clock_uncertainty_ns"]), 100);
    assert!(out.contains("clock uncertainty: 100 ns"), "{out}");
    assert!(
        out.contains("5.000 µs before it began (the clocks' uncertainty: 100 ns)"),
        "{out}"
    );

    let (code, t, out) = check(50, "100");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (u(&t["order_violations"]), t["verdict"].as_str()),
        (0, Some("safe")),
        "{t}"
    );

    // Without the flag, stamps are taken as exact: 50 ns apart is an order.
    let (code, t, out) = check(50, "");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        (u(&t["order_violations"]), u(&t["clock_uncertainty_ns"])),
        (1, 0),
        "{t}"
    );
}

#[test]
fn sim_check_judges_each_trial_with_its_saved_clock_uncertainty_and_says_so() {
    let run = run_shipped("lock.toml", &["--trials", "2", "--strategy", "semaphore"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let trials = run.trials("semaphore");
    let measured: Vec<u64> = trials.iter().map(|t| u(&t["clock_uncertainty_ns"])).collect();
    assert!(measured.iter().all(|&b| b > 0), "{measured:?}");
    // The first trial's history as an earlier sim wrote it: no bound in its header.
    let path = run.out.join(trials[0]["dir"].as_str().unwrap()).join("history.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        u64::from_le_bytes(bytes[48..56].try_into().unwrap()),
        measured[0],
        "the header holds the bound results.json has"
    );
    bytes[48..56].fill(0);
    std::fs::write(&path, bytes).unwrap();
    let o = sim().arg("check").arg(&run.out).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("note: 1 of 2 trials hold no clock uncertainty") && stdout.contains("trial 0 of semaphore"),
        "{stdout}"
    );
    assert!(stdout.contains("clock uncertainty: 0–"), "{stdout}");
    let again = run.trials("semaphore");
    assert_eq!(u(&again[0]["clock_uncertainty_ns"]), 0);
    assert_eq!(u(&again[1]["clock_uncertainty_ns"]), measured[1]);
}
