//! The HTML report, through the real binary: one self-contained page with a chart per
//! section, escaped, and drawn again byte for byte by `sim report`.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, run_scenario, sim};
use scraper::{Html, Selector};

const HOSTILE: &str = "<script>alert(1)</script> & \"quotes\" <img src=x onerror=alert(2)>";

/// Every strategy, two trials, twelve buyers for five tickets with a 10 ms race window:
/// small and quick, and `none` is certain to oversell. The expectation holds whatever
/// happens.
fn every_strategy() -> String {
    format!(
        r#"
name = "report-test"
description = '{HOSTILE}'
trials = 2
seed = 7
strategy = ["none", "file-lock", "semaphore", "queue"]

[stock]
initial = 5

[buyers]
count = 12
hold_us = 10000

[expect]
deadlock = false
"#
    )
}

fn page(run: &Run) -> String {
    assert_eq!(run.code(), 0, "stdout: {}\nstderr: {}", run.stdout(), run.stderr());
    std::fs::read_to_string(run.out.join("index.html")).expect("index.html beside results.json")
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&Selector::parse(css).unwrap()).collect()
}

#[test]
fn the_page_shows_every_section_and_strategy_and_loads_nothing() {
    let run = run_scenario(&every_strategy(), &[]);
    let html = page(&run);
    assert!(run.stdout().contains("index.html"), "{}", run.stdout());
    let doc = Html::parse_document(&html);
    assert!(
        doc.errors.is_empty(),
        "the page does not parse cleanly: {:?}",
        doc.errors
    );

    for section in ["outcomes", "timeline", "stock", "speed"] {
        let charts = select(&doc, &format!("section#{section} svg"));
        assert!(!charts.is_empty(), "no chart in section {section}");
    }
    // A timeline and a stock chart for each strategy.
    assert_eq!(select(&doc, "section#timeline svg.timeline").len(), 4);
    assert_eq!(select(&doc, "section#stock svg").len(), 4);
    assert!(
        select(&doc, "p.how").len() >= 6,
        "a how-to-read paragraph under each chart"
    );

    let text: String = doc.root_element().text().collect();
    for strategy in ["none", "file-lock", "semaphore", "queue"] {
        assert!(
            select(&doc, "header .verdicts .strategy")
                .iter()
                .any(|s| s.text().collect::<String>() == strategy),
            "no verdict badge for {strategy}"
        );
        assert!(text.contains(strategy));
    }
    // `none` oversells with twelve buyers for five tickets held 10 ms: its
    // verdict, its first anomaly in words and its racing bars are on the page.
    assert!(text.contains("oversold 2/2"), "{text}");
    let none = &select(&doc, "ul.findings li")[0];
    assert!(
        none.text().collect::<String>().contains("sold ticket"),
        "{}",
        none.html()
    );
    assert!(!select(&doc, "svg.timeline g.dup").is_empty());

    // Nothing from elsewhere: no script at all, no external source, link or style import.
    assert!(select(&doc, "script, link, img, iframe, object, embed").is_empty());
    for element in select(&doc, "*") {
        for (name, value) in element.value().attrs() {
            let value = value.trim().to_ascii_lowercase();
            assert!(
                !(value.starts_with("http:") || value.starts_with("https:") || value.starts_with("//"))
                    || name == "xmlns",
                "{name}=\"{value}\" loads from the network"
            );
            assert!(!name.starts_with("on"), "an event handler: {name}");
        }
    }
    for style in select(&doc, "style") {
        let css = style.text().collect::<String>();
        assert!(!css.contains("url(") && !css.contains("@import"));
    }
}

#[test]
fn a_hostile_description_is_shown_as_text() {
    let run = run_scenario(&every_strategy(), &[]);
    let html = page(&run);
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(!html.contains("<img src=x"));
    let doc = Html::parse_document(&html);
    let description = select(&doc, "header p.description");
    assert_eq!(description.len(), 1);
    assert_eq!(description[0].text().collect::<String>(), HOSTILE);
    assert!(select(&doc, "script, img").is_empty());
}

#[test]
fn sim_report_draws_the_same_page_again() {
    let run = run_scenario(&every_strategy(), &[]);
    let first = page(&run);
    std::fs::remove_file(run.out.join("index.html")).unwrap();
    let again = sim().arg("report").arg(&run.out).output().unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("index.html"));
    let second = std::fs::read_to_string(run.out.join("index.html")).unwrap();
    assert!(first == second, "sim report drew a different page");
}

/// results.json leaves out empty expectations when it is written, and then cannot be read
/// back without them: scenario.rs's `Expectations::flags` needs `#[serde(default)]`.
#[test]
fn a_scenario_without_expectations_is_drawn_again() {
    let run = run_scenario(&every_strategy().replace("[expect]\ndeadlock = false\n", ""), &[]);
    let first = page(&run);
    let (code, err) = report(&run.out);
    assert_eq!(code, 0, "{err}");
    assert!(first == std::fs::read_to_string(run.out.join("index.html")).unwrap());
}

#[test]
fn thousands_of_purchases_are_windowed_around_the_first_anomaly() {
    let scenario = r#"
name = "many"
trials = 1
strategy = "none"
[stock]
initial = 1000
[buyers]
count = 2
attempts = 1500
hold_us = 0
[expect]
deadlock = false
"#;
    let run = run_scenario(scenario, &[]);
    let doc = Html::parse_document(&page(&run));
    let note: String = select(&doc, "section#timeline p.note")
        .iter()
        .flat_map(|p| p.text())
        .collect();
    assert!(note.contains("3,000 purchases"), "{note}");
    assert!(note.contains("2,000"), "{note}");
    let bars = select(&doc, "svg.timeline g").len();
    assert!(bars <= 2000, "{bars} bars");
}

/// `count` buyers, one attempt each, in one trial of `file-lock`: enough tickets for all.
fn buyers(count: u32) -> String {
    format!(
        "name = \"lanes\"\ntrials = 1\nstrategy = \"file-lock\"\n[stock]\ninitial = 200\n\
         [buyers]\ncount = {count}\nattempts = 1\nhold_us = 0\n[expect]\ndeadlock = false\n"
    )
}

fn texts(doc: &Html, css: &str) -> Vec<String> {
    select(doc, css).iter().map(|e| e.text().collect()).collect()
}

#[test]
fn past_128_processes_lanes_are_aggregated_and_the_page_says_so() {
    // 128 buyers: a lane each, a bar per purchase, no word of aggregation.
    let doc = Html::parse_document(&page(&run_scenario(&buyers(128), &[])));
    assert_eq!(select(&doc, "svg.timeline g.sold").len(), 128);
    assert!(select(&doc, "svg.timeline g.cell").is_empty());
    assert!(select(&doc, "section#timeline p.aggregated").is_empty());
    let labels = texts(&doc, "svg.timeline text.lane-label");
    assert_eq!(
        labels.last().map(String::as_str),
        Some("buyer 126"),
        "every other lane labelled"
    );

    // 129: lanes of three buyers each, their purchases counted per bucket of time, and a
    // note beside the timeline that says so and where single processes are.
    let doc = Html::parse_document(&page(&run_scenario(&buyers(129), &[])));
    let note = texts(&doc, "section#timeline p.note.aggregated").concat();
    assert!(note.contains("Lanes aggregated: 129 processes"), "{note}");
    assert!(note.contains("each lane stands for 3 consecutive processes"), "{note}");
    assert!(note.contains("sim export DIR"), "{note}");
    let labels = texts(&doc, "svg.timeline text.lane-label");
    assert_eq!(labels.len(), 43, "{labels:?}");
    assert_eq!(
        (labels[0].as_str(), labels[42].as_str()),
        ("buyers 0–2", "buyers 126–128")
    );
    assert!(select(&doc, "svg.timeline g.sold").is_empty());
    let cells = texts(&doc, "svg.timeline g.cell title");
    assert!(!cells.is_empty());
    let sold: u32 = cells
        .iter()
        .filter_map(|t| {
            t.split(" under way (")
                .nth(1)?
                .split(" sold")
                .next()?
                .parse::<u32>()
                .ok()
        })
        .sum();
    assert!(sold >= 129, "every sale in at least one cell: {cells:?}");
}

#[test]
fn a_killed_store_is_drawn_across_the_timeline_and_in_the_stock_chart() {
    assert!(
        Path::new("/usr/bin/redis-server").is_file(),
        "redis-server is not installed: install the Debian package redis-server, or run scripts/test, which does"
    );
    let scenario = "name = \"kill-store\"\ntrials = 1\nstrategy = \"atomic\"\n[stock]\nstore = \"redis\"\n\
                    initial = 100\n[buyers]\ncount = 4\nattempts = 5\nhold_us = 2000\n[faults]\nkill_store = true\n";
    let doc = Html::parse_document(&page(&run_scenario(scenario, &[])));
    let line = texts(&doc, "section#timeline svg.timeline g.store-killed title").concat();
    assert!(
        line.starts_with("store killed: buyer ") && line.contains("sent SIGKILL to the store's server at"),
        "{line}"
    );
    assert_eq!(texts(&doc, "svg.timeline g.store-killed text"), ["store killed"]);
    assert!(
        texts(&doc, "section#timeline ul.legend li")
            .iter()
            .any(|l| l.starts_with("store killed")),
        "a legend entry"
    );
    let stock = texts(&doc, "section#stock svg title").concat();
    assert_eq!(stock, line, "the stock chart's line has the same hover text");
    assert!(
        texts(&doc, "section#stock svg text")
            .iter()
            .any(|t| t.trim() == "store killed")
    );
}

/// A finished small run to break in different ways.
fn small_run() -> Run {
    let scenario = r#"
name = "small"
trials = 1
strategy = "file-lock"
[stock]
initial = 3
[buyers]
count = 4
hold_us = 100
[expect]
deadlock = false
"#;
    let run = run_scenario(scenario, &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    run
}

fn report(dir: &Path) -> (i32, String) {
    let out = sim().arg("report").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn history_file(run: &Run) -> PathBuf {
    run.out.join("trials/file-lock/000/history.bin")
}

#[test]
fn sim_report_names_what_is_missing_or_broken() {
    let (code, err) = report(Path::new("/nonexistent/sim-report"));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/sim-report"), "{err}");

    let run = small_run();
    let empty = tempfile::tempdir().unwrap();
    let (code, err) = report(empty.path());
    assert_eq!(code, 2);
    assert!(err.contains("results.json"), "{err}");

    // A history file cut short.
    let file = history_file(&run);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
    let (code, err) = report(&run.out);
    assert_eq!(code, 2);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // The history file gone.
    std::fs::remove_file(history_file(&run)).unwrap();
    let (code, err) = report(&run.out);
    assert_eq!(code, 2);
    assert!(err.contains(&file.display().to_string()), "{err}");

    // A trial folder as an earlier sim left it: a history folder of one file per worker.
    let old = file.with_file_name("history");
    std::fs::create_dir(&old).unwrap();
    let (code, err) = report(&run.out);
    assert_eq!(code, 2);
    assert!(
        err.contains(&old.display().to_string()) && err.contains("run the scenario again"),
        "{err}"
    );

    // results.json cut short.
    let results = run.out.join("results.json");
    let text = std::fs::read(&results).unwrap();
    std::fs::write(&results, &text[..text.len() / 2]).unwrap();
    let (code, err) = report(&run.out);
    assert_eq!(code, 2);
    assert!(err.contains(&results.display().to_string()), "{err}");
}

#[test]
fn a_trial_folder_outside_the_output_folder_is_refused() {
    let run = small_run();
    let path = run.out.join("results.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace("\"trials/file-lock/000\"", "\"../../etc\"");
    assert_ne!(text, edited, "the trial folder as results.json names it");
    std::fs::write(&path, edited).unwrap();
    let (code, err) = report(&run.out);
    assert_eq!(code, 2);
    assert!(err.contains("../../etc") && err.contains("not inside"), "{err}");
}
