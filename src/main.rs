//! The `sim` command line: parse, load the scenario, run it, write the results and the
//! report, print the table, and exit with what the run showed. Each step is one call into
//! the library; README.md's "Layout" section is the map of its modules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use sim::export::Format;
use sim::runner::{FolderLock, Interrupts, KeepHistories, RunEnd, RunOptions};
use sim::saved::Destination;
use sim::scenario::{self, Limits, StrategyName};
use sim::{expect, foreign, report, results::Results, runner, saved, table, worker};

/// Exit statuses, as the README promises them.
const EXPECTATION_VIOLATED: u8 = 1;
/// `sim check --history`: the history shows an anomaly.
const ANOMALOUS: u8 = 1;
const BAD_INPUT: u8 = 2;
const INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(name = "sim", version, about = "Runs a ticket sale with real processes and checks it for races", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: every trial of every strategy, then check, write results.json and the report
    #[command(
        after_help = "Exit status: 0 the run met the scenario's [expect]; 1 an expectation was \
                            contradicted; 2 bad input, usage or setup error; 130 interrupted (the \
                            finished trials are written).\nExample: sim run scenarios/lottery.toml"
    )]
    Run(RunArgs),
    /// Rebuild the HTML report of an earlier run from its results.json and the histories it kept
    Report {
        /// The output folder of an earlier `sim run`
        dir: PathBuf,
    },
    /// Judge histories again: the trials of an earlier run, or a history any program recorded
    #[command(
        after_help = "sim check DIR judges every saved history of the run in DIR again with this sim's checker and \
                      rewrites results.json and the report.\n\
                      sim check --history FILE.jsonl --initial N --final M [--out DIR] judges operations in JSON lines \
                      (see the README, \"History as operations\").\n\
                      Exit status: 0 safe (DIR: the expectations held); 1 anomalous (DIR: an expectation was \
                      contradicted); 2 bad input."
    )]
    Check(CheckArgs),
    /// Write the histories as operations (JSON lines, or Jepsen EDN) for other tools
    #[command(
        after_help = "A trial's folder (trials/STRATEGY/NNN) goes to standard output, or to --out FILE; a run's \
                      folder writes history.jsonl (or .edn) into each trial's folder, or under --out DIR.\n\
                      Example: sim export reports/lottery/trials/none/000 > none.jsonl"
    )]
    Export {
        /// The output folder of a `sim run`, or one trial's folder in it
        dir: PathBuf,
        /// jsonl: one JSON object per line; edn: one Jepsen EDN map per line
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// A trial: the file to write instead of standard output; a run: the folder to write under
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// The spawner of a trial's workers (started by `sim run`, not by hand)
    #[command(name = "__worker", hide = true)]
    Worker { plan: PathBuf },
}

#[derive(Args)]
struct CheckArgs {
    /// The output folder of an earlier `sim run`
    #[arg(required_unless_present = "history", conflicts_with = "history")]
    dir: Option<PathBuf>,
    /// A history recorded by any program, as operations in JSON lines
    #[arg(long, value_name = "FILE.jsonl", requires_all = ["initial", "final_stock"])]
    history: Option<PathBuf>,
    /// With --history: the stock before the first operation
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    initial: Option<i64>,
    /// With --history: the stock after the last operation
    #[arg(long = "final", value_name = "M", allow_negative_numbers = true)]
    final_stock: Option<i64>,
    /// With --history: where to write results.json and the report
    #[arg(long, value_name = "DIR", requires = "history")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file (TOML); see scenarios/ and the README for its fields
    scenario: PathBuf,
    /// Where to write results.json, the histories and index.html [default: reports/<name>/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Trials per strategy, instead of the scenario's
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    trials: Option<u32>,
    /// The seed of the first trial (trial n uses seed + n), instead of the scenario's
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Run only this strategy (repeat for several), instead of the scenario's list
    #[arg(long, value_name = "NAME", value_parser = parse_strategy)]
    strategy: Vec<StrategyName>,
    /// The most buyer and producer processes one trial may start (sim's own helpers aside)
    #[arg(long, value_name = "N", default_value_t = scenario::DEFAULT_MAX_PROCESSES)]
    max_processes: u64,
    /// Which trials keep their history.bin once checked: all, those not safe, or none
    #[arg(long, value_name = "WHICH", value_enum, default_value_t = KeepHistories::All)]
    keep_histories: KeepHistories,
}

fn parse_strategy(name: &str) -> Result<StrategyName, String> {
    StrategyName::parse(name)
        .ok_or_else(|| format!("\"{name}\" is not a strategy: use one of {}", StrategyName::list()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Report { dir } => rebuild_report(dir),
        Command::Check(args) => check(args),
        Command::Export { dir, format, out } => export(dir, format, out),
        Command::Worker { plan } => worker::spawner::main(&plan).map(|()| 0),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn run(args: RunArgs) -> Result<u8> {
    let mut scenario = scenario::load(
        &args.scenario,
        Limits {
            max_processes: args.max_processes,
        },
    )?;
    if let Some(trials) = args.trials {
        scenario.trials = trials;
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if !args.strategy.is_empty() {
        scenario
            .choose_strategies(args.strategy)
            .map_err(|why| anyhow::anyhow!("--strategy: {why}"))?;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("reports").join(&scenario.name));
    let interrupts = Interrupts::install()?;
    // Held until the results and the report are written: no other sim writes here meanwhile.
    let _folder = FolderLock::for_run(&out)?;

    let options = RunOptions {
        keep_histories: args.keep_histories,
    };
    let (runs, end) = runner::run(&scenario, &out, options, &interrupts)?;
    let mut results = Results::new(&scenario, runs, matches!(end, RunEnd::Interrupted));
    results.stopped = end.why_stopped();
    results.violations = expect::violations(&results);
    let page = match results.write(&out).and_then(|()| report::write(&out, &results)) {
        Ok(page) => page,
        // The disk that stopped the run may stop its results too: say both.
        Err(e) => match &end {
            RunEnd::Failed(why) => return Err(e.context(format!("the run stopped early ({why}), then"))),
            _ => return Err(e),
        },
    };

    print!("{}", table::render(&results));
    for v in &results.violations {
        println!("expectation not met: {v}");
    }
    println!("report: {}", page.display());
    let kept = results.finished_trials();
    Ok(match end {
        RunEnd::Interrupted => {
            eprintln!(
                "interrupted: {} holds the {kept} trial(s) that finished",
                out.join("results.json").display()
            );
            INTERRUPTED
        }
        RunEnd::Failed(why) => {
            eprintln!(
                "error: the run stopped early: {why}\n{} holds the {kept} trial(s) that finished, and the report shows them",
                out.join("results.json").display()
            );
            BAD_INPUT
        }
        RunEnd::Completed if !results.violations.is_empty() => EXPECTATION_VIOLATED,
        RunEnd::Completed => 0,
    })
}

fn rebuild_report(dir: PathBuf) -> Result<u8> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give the output folder of an earlier `sim run`",
            dir.display()
        );
    }
    let _folder = FolderLock::for_report(&dir)?;
    let results = Results::read(&dir)?;
    for note in results.missing_histories() {
        eprintln!("note: {note}");
    }
    let page = report::write(&dir, &results)?;
    println!("report: {}", page.display());
    Ok(0)
}

fn check(args: CheckArgs) -> Result<u8> {
    let (Some(file), Some(initial), Some(final_stock)) = (&args.history, args.initial, args.final_stock) else {
        let dir = args.dir.unwrap_or_default();
        let results = saved::check_folder(&dir)?;
        let page = report::write(&dir, &results)?;
        print!("{}", table::render(&results));
        for v in &results.violations {
            println!("expectation not met: {v}");
        }
        println!("report: {}", page.display());
        return Ok(if results.violations.is_empty() {
            0
        } else {
            EXPECTATION_VIOLATED
        });
    };
    let judged = foreign::check(file, initial, final_stock)?;
    print!("{}", foreign::summary(&judged));
    let safe = foreign::is_safe(&judged);
    if let Some(out) = &args.out {
        let results = foreign::write(out, file, judged, initial)?;
        let page = report::write(out, &results)?;
        println!("report: {}", page.display());
    }
    Ok(if safe { 0 } else { ANOMALOUS })
}

fn export(dir: PathBuf, format: Format, out: Option<PathBuf>) -> Result<u8> {
    let to = out.map_or(Destination::Stdout, Destination::Path);
    for file in saved::export(&dir, format, to)? {
        eprintln!("wrote {}", file.display());
    }
    Ok(0)
}
