//! Property tests over everything sim reads from outside: scenario text, history files, and
//! histories fed to the checker. Arbitrary input yields a result or an error, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use sim::checker::{self, Facts, FinalStock};
use sim::history::{self, History, Kind, Op, Outcome, Recorder, Role, Worker};
use sim::scenario::{self, Limits};

/// A sealed history file of a buyer with three purchases and a seller that never started.
fn real_history() -> &'static Vec<u8> {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(history::FILE_NAME);
        let regions = history::create_file(&path, &[(Role::Buyer, 0, 4), (Role::Seller, 0, 4)]).unwrap();
        let mut buyer = Recorder::open(&path, &regions[0]).unwrap();
        buyer.ready();
        for ticket in [3, 2, 1] {
            let op = buyer.begin(Kind::Purchase).unwrap();
            op.set_value(ticket);
            op.set_written(ticket - 1);
            op.set_outcome(Outcome::Sold);
        }
        drop(buyer);
        history::seal_file(&path).unwrap();
        std::fs::read(&path).unwrap()
    })
}

const FIELDS: &[&str] = &[
    "name",
    "description",
    "trials",
    "seed",
    "strategy",
    "deadline_ms",
    "initial",
    "file",
    "store",
    "write",
    "count",
    "attempts",
    "hold_us",
    "pool",
    "pool_mode",
    "daemon",
    "entries",
    "queue_capacity",
    "blocking",
    "joinable",
    "permits",
    "scope",
    "kill_buyers",
    "stop_buyers",
    "stop_ms",
    "kill_seller",
    "oversell",
    "final_stock",
    "anomaly",
];
const TABLES: &[&str] = &[
    "",
    "[stock]",
    "[buyers]",
    "[producers]",
    "[semaphore]",
    "[lock]",
    "[faults]",
    "[expect]",
    "[expect.none]",
];

/// A TOML value of any type, with numbers at and beyond every bound.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-3i64..3).prop_map(|n| n.to_string()),
        Just("1000000000000000".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z\\-\\./]{0,12}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"none\"",
            "\"file-lock\"",
            "\"queue\"",
            "\"manager\"",
            "\"sync\"",
            "\"write\"",
            "\"in-place\""
        ])
        .prop_map(String::from),
        prop::collection::vec("[a-z\\-]{0,9}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("1.5".to_string()),
        Just("{ a = 1 }".to_string()),
    ]
}

/// Scenario text made of real tables and fields with arbitrary values.
fn scenario_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(TABLES), prop::sample::select(FIELDS), value()),
        0..12,
    )
    .prop_map(|lines| {
        let mut text = String::new();
        for (table, field, value) in lines {
            if !table.is_empty() {
                text.push_str(table);
                text.push('\n');
            }
            text.push_str(&format!("{field} = {value}\n"));
        }
        text
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

fn parse(text: &str) -> Result<scenario::Scenario, scenario::ScenarioError> {
    scenario::parse(Path::new("fuzz.toml"), text, Limits::default())
}

proptest! {
    // PROPTEST_CASES=100000 cargo test --test fuzz runs a longer campaign; in the debug
    // build, where an arithmetic overflow panics rather than wraps.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_scenario_or_an_error_naming_the_file(text in "\\PC{0,200}") {
        if let Err(e) = parse(&text) {
            prop_assert!(e.to_string().starts_with("fuzz.toml"));
        }
    }

    #[test]
    fn structured_scenarios_are_valid_within_bounds_or_refused(text in scenario_text()) {
        match parse(&text) {
            Ok(s) => {
                prop_assert!(s.trials >= 1 && s.buyers.count >= 1 && s.buyers.attempts >= 1);
                prop_assert!(s.semaphore.permits >= 1 && s.deadline_ms >= 1 && s.stock.initial >= 0);
                prop_assert!(u64::from(s.buyers.count) <= scenario::DEFAULT_MAX_PROCESSES);
                prop_assert!(scenario::check_inside(Path::new(&s.stock.file)).is_ok());
                prop_assert!(!s.strategies.is_empty());
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.starts_with("fuzz.toml") && message.len() < 2000, "{}", message);
            }
        }
    }

    #[test]
    fn a_valid_scenario_mangled_anywhere_never_panics(at in 0usize..400, cut in 0usize..20, insert in "\\PC{0,8}") {
        let base = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/lottery.toml")).unwrap();
        let mut chars: Vec<char> = base.chars().collect();
        let at = at.min(chars.len());
        let end = (at + cut).min(chars.len());
        chars.splice(at..end, insert.chars());
        let _ = parse(&chars.into_iter().collect::<String>());
    }

    #[test]
    fn any_bytes_are_a_history_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        real in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        // Random bytes, or a real history file with a few bytes changed and perhaps cut
        // short, so that the headers pass and what lies behind them is read too.
        let mut bytes = if real { real_history().clone() } else { bytes };
        if !bytes.is_empty() {
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            if cut_it {
                bytes.truncate(cut.index(bytes.len()));
            }
        }
        let mut history = History::default();
        let _ = history.add_file(Path::new("fuzz.bin"), &bytes, 0);
    }

    #[test]
    fn the_checker_judges_any_history(ops in prop::collection::vec(op(), 0..60), initial in -2i64..30, final_stock in prop::option::of(-2i64..30), deadline in any::<bool>()) {
        let workers = (0..4).map(|i| Worker {
            role: if i == 3 { sim::history::Role::Seller } else { sim::history::Role::Buyer },
            index: i,
            pid: 100 + i,
            ready_ns: -5,
            finish_ns: (i != 2).then_some(1_000_000),
        }).collect();
        let history = History { workers, ops };
        let facts = Facts {
            initial_stock: initial,
            final_stock: final_stock.map_or(FinalStock::Unreadable("x".into()), FinalStock::Value),
            deadline_hit: deadline,
            sales_record: None,
            clock_uncertainty_ns: 0,
            failover_ns: None,
        };
        let c = checker::check(&history, &facts);
        prop_assert_eq!(c.attempts, c.sold + c.sold_out + c.unreadable + c.fenced + c.gave_up + c.indeterminate);
        prop_assert!(c.torn_reads >= c.unreadable && c.torn_reads <= c.attempts);
        // What the report draws is what the checker counted.
        let judged = checker::judge(&history, &facts);
        let told = |t: checker::Told| judged.ops.iter().filter(|j| j.told() == Some(t)).count() as u64;
        prop_assert_eq!(
            (told(checker::Told::Sold), told(checker::Told::SoldOut), told(checker::Told::Unreadable)),
            (c.sold, c.sold_out, c.unreadable)
        );
        prop_assert_eq!(judged.ops.iter().filter(|j| j.torn()).count() as u64, c.torn_reads);
        prop_assert_eq!(judged.ops.iter().filter(|j| j.order_violation()).count() as u64, c.order_violations);
        prop_assert!(c.anomalies.len() <= checker::MAX_ANOMALIES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_json_lines_are_read_or_refused_never_a_panic(lines in prop::collection::vec(json_line(), 0..12)) {
        let text = lines.join("\n");
        if let Err(e) = sim::history::import::parse(Path::new("f.jsonl"), text.as_bytes()) {
            let e = e.to_string();
            prop_assert!(e.starts_with("f.jsonl, line "), "{}", e);
        }
    }

    #[test]
    fn a_history_goes_out_as_operations_and_comes_back_the_same(
        calls in prop::collection::vec((0u32..4, 0u64..3, 0u64..3, outcome_of_purchase(), prop::option::of(-3i64..30), any::<bool>()), 0..40),
    ) {
        // Each buyer's purchases one after another, with gaps and durations that may be zero.
        let mut clock = [0u64; 4];
        let mut per_worker: Vec<Vec<Op>> = vec![Vec::new(); 4];
        for (w, gap, took, outcome, value, wrote) in calls {
            let start = clock[w as usize] + gap;
            let end = start + took;
            clock[w as usize] = end;
            let mut op = Op::new(w, Kind::Purchase, outcome, start)
                .with_read(Some(start + took / 2))
                .with_value(match outcome {
                    Outcome::Unreadable => None,
                    // A sale has the ticket it read: the format refuses one without.
                    Outcome::Sold => Some(value.unwrap_or(1)),
                    _ => value,
                });
            if wrote && outcome == Outcome::Sold {
                op = op.with_write(Some(end)).with_written(value.map(|v| v - 1));
            }
            if outcome != Outcome::Pending {
                op = op.with_end(Some(end));
            }
            per_worker[w as usize].push(op);
        }
        let workers = (0..4).map(|i| Worker { role: Role::Buyer, index: i, pid: 1, ready_ns: 0, finish_ns: None }).collect();
        let present: Vec<u32> = (0..4).filter(|&w| !per_worker[w as usize].is_empty()).collect();
        let history = History { workers, ops: per_worker.concat() };
        let mut text = Vec::new();
        sim::history::export::write(&history, sim::history::export::Format::Jsonl, &mut text).unwrap();
        let back = sim::history::import::parse(Path::new("h.jsonl"), &text).unwrap();
        // The workers that made an operation, numbered as they were.
        let labels: Vec<u32> = back.workers.iter().map(|w| w.index).collect();
        prop_assert_eq!(&labels, &present);
        let renumbered: Vec<Op> = history.ops.iter().map(|op| {
            let mut op = *op;
            op.worker = present.iter().position(|&w| w == op.worker).unwrap() as u32;
            op
        }).collect();
        prop_assert_eq!(&back.ops, &renumbered);
        let facts = Facts::ended(10, 3);
        prop_assert_eq!(checker::check(&back, &facts), checker::check(&History { workers: back.workers.clone(), ops: renumbered }, &facts));
    }

    #[test]
    fn any_history_exported_reads_back(ops in prop::collection::vec(op(), 0..60)) {
        let workers = (0..4).map(|i| Worker { role: Role::Buyer, index: i, pid: 1, ready_ns: 0, finish_ns: None }).collect();
        let history = History { workers, ops };
        let mut text = Vec::new();
        sim::history::export::write(&history, sim::history::export::Format::Jsonl, &mut text).unwrap();
        let back = sim::history::import::parse(Path::new("h.jsonl"), &text);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err().map(|e| e.to_string()), String::from_utf8_lossy(&text));
        prop_assert_eq!(back.unwrap().ops.len(), history.ops.len());
    }
}

fn outcome_of_purchase() -> impl Strategy<Value = Outcome> {
    prop::sample::select(vec![
        Outcome::Pending,
        Outcome::Sold,
        Outcome::SoldOut,
        Outcome::Unreadable,
    ])
}

/// A line that is often valid and often not in one way or another.
fn json_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "process",
        "type",
        "f",
        "time",
        "value",
        "written",
        "read_time",
        "write_time",
        "error",
        "entry",
        "other",
    ]);
    let value = prop::sample::select(vec![
        "0",
        "3",
        "-1",
        "18446744073709551616",
        "1.5",
        "null",
        "\"invoke\"",
        "\"ok\"",
        "\"fail\"",
        "\"info\"",
        "\"purchase\"",
        "\"sale\"",
        "\"put\"",
        "\"take\"",
        "\"unreadable\"",
        "\"x\\u0041\"",
        "[]",
        "{}",
        "\"",
    ]);
    prop_oneof![
        prop::collection::vec((key, value), 0..8).prop_map(|fields| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", body.join(", "))
        }),
        (
            0i64..3,
            prop::sample::select(vec!["invoke", "ok", "fail", "info"]),
            0u64..100
        )
            .prop_map(|(p, t, time)| {
                format!("{{\"process\": {p}, \"type\": \"{t}\", \"f\": \"purchase\", \"time\": {time}, \"value\": 1}}")
            }),
        ".{0,40}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop::sample::select(vec![Kind::Purchase, Kind::Purchase, Kind::Put, Kind::Take, Kind::Sale]);
    let outcome = prop::sample::select(vec![
        Outcome::Pending,
        Outcome::Sold,
        Outcome::SoldOut,
        Outcome::Unreadable,
        Outcome::Ok,
        Outcome::Dropped,
        Outcome::Closed,
    ]);
    let time = prop::option::of(0u64..2_000_000);
    (
        0u32..4,
        kind,
        outcome,
        0u64..2_000_000,
        time.clone(),
        time.clone(),
        time,
        prop::option::of(-3i64..30),
        prop::option::of(-3i64..30),
    )
        .prop_map(|(worker, kind, outcome, start, read, write, end, value, written)| {
            // A process's moments in their order, as any recorder takes them: the format
            // refuses them out of it. A sold purchase has the ticket it read.
            let (read, write, end) = (
                read.map(|t| start + t),
                write.map(|t| start + 2_000_000 + t),
                end.map(|t| start + 4_000_000 + t),
            );
            let value = match (kind, outcome) {
                (Kind::Purchase, Outcome::Sold | Outcome::Ok) => Some(value.unwrap_or(1)),
                _ => value,
            };
            Op::new(worker, kind, outcome, start)
                .with_read(read)
                .with_write(write)
                .with_end(end)
                .with_value(value)
                .with_written(written)
        })
}

/// A finished run of a small scenario, made once: its folder, for the fuzzing of its
/// results.json.
fn small_run() -> &'static std::path::PathBuf {
    static RUN: OnceLock<(tempfile::TempDir, std::path::PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let scenario = dir.path().join("small.toml");
        std::fs::write(
            &scenario,
            "name = \"small\"\ntrials = 2\nstrategy = [\"none\", \"file-lock\"]\n[stock]\ninitial = 5\n[buyers]\ncount = 2\nattempts = 3\nhold_us = 0\n",
        )
        .unwrap();
        let out = dir.path().join("run");
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
            .status;
        assert!(status.code().is_some_and(|c| c <= 1), "{status}");
        (dir, out)
    })
    .1
}

/// A copy of the small run's folder whose results.json holds `bytes`.
fn run_with_results(bytes: &[u8]) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(small_run().join("."))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(copy.path().join("results.json"), bytes).unwrap();
    copy
}

/// Runs `sim report`, `sim check` and `sim compare` on the folder: each ends with 0, 1, or 2
/// and an error in words, never a panic.
fn every_reader_of_results_answers(dir: &Path) -> Result<(), TestCaseError> {
    let other = small_run();
    let runs: [Vec<&std::ffi::OsStr>; 4] = [
        vec!["report".as_ref(), dir.as_os_str()],
        vec!["check".as_ref(), dir.as_os_str()],
        vec![
            "compare".as_ref(),
            dir.as_os_str(),
            other.as_os_str(),
            "--out".as_ref(),
            "/dev/null".as_ref(),
        ],
        vec![
            "compare".as_ref(),
            other.as_os_str(),
            dir.as_os_str(),
            "--out".as_ref(),
            "/dev/null".as_ref(),
        ],
    ];
    for args in runs {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "{:?}: {:?}\n{}", args, code, err);
        prop_assert!(!err.contains("panicked"), "{:?}: {}", args, err);
        if code == Some(2) {
            prop_assert!(
                err.starts_with("error: ") && err.trim_end().len() > 20,
                "{:?}: {}",
                args,
                err
            );
        }
    }
    Ok(())
}

proptest! {
    // Each case runs the binary four times: a few dozen cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_results_json_is_read_or_refused_in_words(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = run_with_results(&bytes);
        every_reader_of_results_answers(dir.path())?;
    }

    #[test]
    fn a_results_json_mangled_anywhere_is_read_or_refused_in_words(at in 0usize..20_000, cut in 0usize..40, insert in "\\PC{0,12}") {
        let mut text = std::fs::read(small_run().join("results.json")).unwrap();
        let at = at.min(text.len());
        let end = (at + cut).min(text.len());
        text.splice(at..end, insert.bytes());
        let dir = run_with_results(&text);
        every_reader_of_results_answers(dir.path())?;
    }
}

/// The probe's cases, kept: each is refused in words, naming its line and field.
#[test]
fn the_probes_json_lines_are_refused_naming_the_line_and_the_field() {
    let invoke = |t: u64| format!("{{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": {t}}}\n");
    let cases = [
        (
            invoke(500) + "{\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 200, \"value\": 3}",
            "line 2: field \"time\"",
        ),
        (
            invoke(100)
                + "{\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 300, \"value\": 3, \"read_time\": 50, \"write_time\": 10}",
            "line 2: field \"read_time\"",
        ),
        (
            invoke(100) + "{\"process\": 1, \"type\": \"ok\", \"f\": \"purchase\", \"time\": 300}",
            "line 2: field \"value\"",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 9223372036854775808}".into(),
            "line 1: field \"time\" is 9223372036854775808, out of range",
        ),
        (
            "{\"process\": 1, \"type\": \"invoke\", \"f\": \"purchase\", \"time\": 1, \"entry\": -1}".into(),
            "line 1: field \"entry\" is -1, out of range",
        ),
        (
            invoke(1) + &" ".repeat((1 << 20) + 1),
            "line 2: the line is longer than 1 MiB",
        ),
    ];
    for (text, want) in cases {
        let e = sim::history::import::parse(Path::new("f.jsonl"), text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f.jsonl, ") && e.contains(want), "{want}\n→ {e}");
    }
}

/// The probe's scenarios, kept: refused in words, with no password in them.
#[test]
fn the_probes_scenarios_are_refused_without_their_secrets() {
    for (text, want) in [
        (
            "[stock]\nstore = \"postgres\"\nurl = \"postgres://admin:s3cretpw@127.0.0.1:54329/postgres\" junk\n",
            "line 3",
        ),
        (
            "[stock]\nstore = \"postgres\"\nurl = \"host=127.0.0.1 port=54329 user=admin password=s3cretpw\"\n",
            "stock.url",
        ),
        (
            "[stock]\nstore = \"redis\"\n[buyers]\nduration_ms = 3000\n[faults]\nkill_store = true\n",
            "faults.kill_store",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains("s3cretpw"), "{text}\n→ {e}");
    }
    let name = format!("name = \"{}\"\n", "é".repeat(51));
    assert!(parse(&name).is_ok());
}
