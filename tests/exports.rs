//! `--export-markdown` and `--export-csv` of `sim run` and `sim report`, through the real
//! binary: both parse, and every row says what results.json says.

mod common;

use common::{run_scenario, sim};
use serde_json::Value;

/// A CSV file as rows of fields, after RFC 4180: quoted fields may hold commas and doubled
/// quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        assert!(!quoted, "an unclosed quote in {line:?}");
        fields.push(field);
        rows.push(fields);
    }
    rows
}

/// The cells of a Markdown table's rows, header and alignment row included.
fn parse_markdown(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            assert!(
                line.starts_with("| ") && line.ends_with(" |"),
                "not a table row: {line:?}"
            );
            line[2..line.len() - 2].split(" | ").map(|c| c.to_string()).collect()
        })
        .collect()
}

fn verdicts(summary: &Value) -> String {
    // results.json keeps them in the order of the verdicts' declaration, safe first.
    let order = ["safe", "inconsistent", "oversold", "crashed", "deadlock"];
    order
        .iter()
        .filter_map(|v| summary["verdicts"].get(v).map(|n| format!("{n} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares one CSV row with its trial in results.json, column by column.
fn assert_row_matches(header: &[String], row: &[String], run: &Value, trial: &Value, scenario: &Value) {
    assert_eq!(row.len(), header.len(), "{row:?}");
    for (column, cell) in header.iter().zip(row) {
        let expected: Value = match column.as_str() {
            "strategy" => run["strategy"].clone(),
            "buyers" => run["point"]["buyers"]
                .as_u64()
                .map_or(scenario["buyers"]["count"].clone(), Value::from),
            "hold_us" => run["point"]["hold_us"]
                .as_u64()
                .map_or(scenario["buyers"]["hold_us"].clone(), Value::from),
            "p50_us" | "p90_us" | "p99_us" | "max_us" => trial["latency"][column].clone(),
            "faults" => Value::from(trial["faults"].as_array().map_or(0, |f| f.len())),
            // The lag of a failover: the point's in a sweep over it, else the scenario's.
            "lag_ms" => match (&run["point"]["lag_ms"], scenario["faults"]["failover"].as_bool()) {
                (Value::Number(n), _) => Value::Number(n.clone()),
                (_, Some(true)) => scenario["faults"]["lag_ms"].clone(),
                _ => Value::Null,
            },
            other => trial
                .get(other)
                .unwrap_or_else(|| panic!("column {other} is not in results.json"))
                .clone(),
        };
        match expected {
            Value::Null => assert_eq!(cell, "", "{column}"),
            Value::String(s) => assert_eq!(*cell, s, "{column}"),
            Value::Bool(b) => assert_eq!(*cell, b.to_string(), "{column}"),
            Value::Number(n) => {
                let got: f64 = cell
                    .parse()
                    .unwrap_or_else(|_| panic!("{column}: {cell:?} is not a number"));
                assert_eq!(got, n.as_f64().unwrap(), "{column}");
            }
            other => panic!("{column}: unexpected {other}"),
        }
    }
}

fn check_exports(markdown: &str, csv: &str, results: &Value) {
    let runs = results["runs"].as_array().unwrap();
    let sweep = runs.iter().any(|r| !r["point"].is_null());

    let table = parse_markdown(markdown);
    let mut header = vec!["strategy"];
    if sweep {
        header.extend(["buyers", "hold µs"]);
    }
    header.extend([
        "trials",
        "anomalous",
        "max oversold",
        "purchases/s",
        "p50 µs",
        "p99 µs",
        "verdicts",
    ]);
    assert_eq!(table[0], header);
    assert!(table[1].iter().all(|c| c == ":---" || c == "---:"), "{:?}", table[1]);
    assert_eq!(table.len(), 2 + runs.len(), "one row per run:\n{markdown}");
    for (row, run) in table[2..].iter().zip(runs) {
        let s = &run["summary"];
        let mut expected = vec![run["strategy"].as_str().unwrap().to_string()];
        if sweep {
            expected.push(run["point"]["buyers"].to_string());
            expected.push(run["point"]["hold_us"].to_string());
        }
        expected.extend([
            s["trials"].to_string(),
            s["anomalous"].to_string(),
            s["max_oversold"].to_string(),
            format!("{:.0}", s["mean_purchases_per_s"].as_f64().unwrap()),
            format!("{:.1}", s["p50_us"].as_f64().unwrap()),
            format!("{:.1}", s["p99_us"].as_f64().unwrap()),
            verdicts(s),
        ]);
        assert_eq!(*row, expected);
    }

    let rows = parse_csv(csv);
    let header = &rows[0];
    for column in [
        "strategy",
        "trial",
        "verdict",
        "sold",
        "oversold",
        "duplicate_tickets",
        "lost_updates",
        "torn_reads",
        "purchases_per_s",
        "p99_us",
    ] {
        assert!(header.iter().any(|h| h == column), "no column {column}: {header:?}");
    }
    let trials: Vec<(&Value, &Value)> = runs
        .iter()
        .flat_map(|run| run["trials"].as_array().unwrap().iter().map(move |t| (run, t)))
        .collect();
    assert_eq!(rows.len() - 1, trials.len(), "one row per trial");
    for (row, (run, trial)) in rows[1..].iter().zip(trials) {
        assert_row_matches(header, row, run, trial, &results["scenario"]);
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn markdown_and_csv_rows_match_results_json() {
    let files = tempfile::tempdir().unwrap();
    let (md, csv) = (files.path().join("summary.md"), files.path().join("trials.csv"));
    let run = run_scenario(
        "name = \"exports\"\ntrials = 3\nstrategy = [\"none\", \"file-lock\"]\n[stock]\ninitial = 5\n\
         [buyers]\ncount = 6\nhold_us = 2000\n",
        &[
            "--export-markdown",
            md.to_str().unwrap(),
            "--export-csv",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let results = run.results();
    check_exports(&read(&md), &read(&csv), &results);
    // `none` oversold in some trial, so the counts checked are not all zero.
    assert!(
        read(&csv)
            .lines()
            .any(|l| l.starts_with("none,") && l.contains(",oversold,")),
        "{}",
        read(&csv)
    );

    // `sim report` writes the same files from results.json alone.
    let (md2, csv2) = (files.path().join("again.md"), files.path().join("again.csv"));
    let again = sim()
        .arg("report")
        .arg(&run.out)
        .arg("--export-markdown")
        .arg(&md2)
        .arg("--export-csv")
        .arg(&csv2)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(read(&md2), read(&md));
    assert_eq!(read(&csv2), read(&csv));

    // A file that cannot be written is bad input, named.
    let bad = sim()
        .arg("report")
        .arg(&run.out)
        .arg("--export-csv")
        .arg(files.path().join("no/such/folder.csv"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("--export-csv") && stderr.contains("folder.csv"),
        "{stderr}"
    );
}

#[test]
fn a_sweep_exports_each_point() {
    let files = tempfile::tempdir().unwrap();
    let (md, csv) = (files.path().join("sweep.md"), files.path().join("sweep.csv"));
    let run = run_scenario(
        "name = \"sweep-exports\"\ntrials = 1\nstrategy = \"none\"\n[stock]\ninitial = 100\n\
         [buyers]\ncount = [1, 2]\nhold_us = [0, 100]\n",
        &[
            "--export-markdown",
            md.to_str().unwrap(),
            "--export-csv",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    check_exports(&read(&md), &read(&csv), &run.results());
    let rows = parse_csv(&read(&csv));
    let points: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[1].as_str(), r[2].as_str())).collect();
    assert_eq!(points.len(), 4, "{points:?}");
    for p in [("1", "0"), ("1", "100"), ("2", "0"), ("2", "100")] {
        assert!(points.contains(&p), "no row at {p:?}: {points:?}");
    }
}
