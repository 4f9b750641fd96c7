//! The `sim` command line: parse, load the scenario, run it, write the results and the
//! report, print the table, and exit with what the run showed. Each step is one call into
//! the library; CONTRIBUTING.md's "The layers" is the map of its modules.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};

use sim::history::export::Format;
use sim::results::saved::Destination;
use sim::results::{Results, expect, foreign, saved, spreadsheet as tabulate, summary as table};
use sim::runner::{FolderLock, Interrupts, KeepHistories, RunEnd, RunOptions};
use sim::scenario::{self, Limits, StrategyName, Variant};
use sim::{compare, report, runner, store, worker};

/// `println!` to standard output, where a reader that went away (`sim … | head -1`) is no
/// error: the command goes on to its end and exits as it would have, as ripgrep does. Any
/// other failure to write returns an error from the function it is in.
macro_rules! out {
    ($($arg:tt)*) => {
        say(&format!("{}\n", format_args!($($arg)*)))?
    };
}

/// `eprintln!` to standard error, where a reader that went away is no error and no panic:
/// there is nowhere left to say anything.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Exit statuses, as docs/reference/command-line.md promises them.
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
        #[command(flatten)]
        exports: ExportArgs,
    },
    /// What changed between two runs of one scenario: speed with its 95 % interval, and races
    #[command(
        after_help = "Exit status: 0 no gate failed; 1 a --fail-if-* gate failed; 2 bad input \
                            (a missing folder, an unreadable results.json, two different scenarios \
                            without --force).\nExample: sim compare reports/before reports/after --fail-if-slower 10"
    )]
    Compare(CompareArgs),
    /// Print a shell's completion script for sim (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print sim's manual page (roff), for `man`; or write one page per command into a folder
    Man {
        /// Write sim.1 and a page per command (sim-run.1, sim-compare.1, …) into DIR instead
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Judge histories again: the trials of an earlier run, or a history any program recorded
    #[command(
        after_help = "sim check DIR judges every saved history of the run in DIR again with this sim's checker and \
                      rewrites results.json and the report.\n\
                      sim check --history FILE.jsonl --initial N --final M [--out DIR] judges operations in JSON lines \
                      (see docs/reference/history.md, \"History as operations\").\n\
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
    /// The guard of a service a scenario starts (started by `sim run`, not by hand)
    #[command(name = "__service-guard", hide = true)]
    ServiceGuard { runner: u32, start: String },
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
    /// With --history: how far apart the recording processes' stamps of one moment can be, in
    /// ns; two operations closer than this are taken as concurrent
    #[arg(long, value_name = "NS", default_value_t = 0, requires = "history")]
    clock_uncertainty: u64,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file (TOML); see scenarios/, and docs/reference/scenario.md for its fields
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
    #[command(flatten)]
    exports: ExportArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// Also write the summary table, as Markdown, to FILE (for a README or a pull request)
    #[arg(long, value_name = "FILE")]
    export_markdown: Option<PathBuf>,
    /// Also write one CSV row per trial, with every count, to FILE (for pandas or a spreadsheet)
    #[arg(long, value_name = "FILE")]
    export_csv: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    /// The output folder of the baseline run (it holds results.json)
    dir_a: PathBuf,
    /// The output folder of the run judged against it
    dir_b: PathBuf,
    /// Where to write the comparison page [default: DIR_B/compare.html]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Compare two runs of different scenarios all the same
    #[arg(long)]
    force: bool,
    /// A change whose 95 % interval reaches inside ±PCT percent is within noise
    #[arg(long, value_name = "PCT", default_value_t = compare::DEFAULT_NOISE_PCT, value_parser = parse_percent)]
    noise: f64,
    /// Exit 1 when a strategy's purchases/s fell by more than PCT percent, with 95 % confidence
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    fail_if_slower: Option<f64>,
    /// Exit 1 when a strategy's share of anomalous trials rose significantly (Fisher's exact test, p < 0.05)
    #[arg(long)]
    fail_if_anomalous: bool,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "\"{text}\" is not a percentage from 0 to under 100: give e.g. 10 for 10 %"
        )),
    }
}

/// A built-in strategy, or any other name as a variant of a service: the scenario, once
/// read, says which it may be (`Scenario::choose_strategies`).
fn parse_strategy(name: &str) -> Result<StrategyName, String> {
    Ok(StrategyName::parse(name).unwrap_or_else(|| StrategyName::Service(Variant::new(name))))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args),
        Command::Report { dir, exports } => rebuild_report(dir, &exports),
        Command::Check(args) => check(args),
        Command::Export { dir, format, out } => export(dir, format, out),
        Command::Compare(args) => compare(args),
        Command::Completions { shell } => completions(shell),
        Command::Man { out_dir } => man(out_dir),
        Command::Worker { plan } => worker::spawner::main(&plan).map(|()| 0),
        Command::ServiceGuard { runner, start } => store::service::guard::main(runner, &start),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            note!("error: {e:#}");
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
    write_exports(&results, &args.exports)?;

    say(&table::render(&results, table::colour_for_stdout()))?;
    for v in &results.violations {
        out!("expectation not met: {v}");
    }
    for note in results.not_checkable() {
        out!("{note}");
    }
    out!("report: {}", page.display());
    let kept = results.finished_trials();
    Ok(match end {
        RunEnd::Interrupted => {
            note!(
                "interrupted: {} holds the {kept} trial(s) that finished",
                out.join("results.json").display()
            );
            INTERRUPTED
        }
        RunEnd::Failed(why) => {
            note!(
                "error: the run stopped early: {why}\n{} holds the {kept} trial(s) that finished, and the report shows them",
                out.join("results.json").display()
            );
            BAD_INPUT
        }
        RunEnd::Completed if !results.violations.is_empty() => EXPECTATION_VIOLATED,
        RunEnd::Completed => 0,
    })
}

fn rebuild_report(dir: PathBuf, exports: &ExportArgs) -> Result<u8> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give the output folder of an earlier `sim run`",
            dir.display()
        );
    }
    let _folder = FolderLock::for_report(&dir, "sim report")?;
    let results = Results::read(&dir)?;
    for note in results.missing_histories() {
        note!("note: {note}");
    }
    let page = report::write(&dir, &results)?;
    write_exports(&results, exports)?;
    out!("report: {}", page.display());
    Ok(0)
}

fn check(args: CheckArgs) -> Result<u8> {
    let (Some(file), Some(initial), Some(final_stock)) = (&args.history, args.initial, args.final_stock) else {
        let dir = args.dir.unwrap_or_default();
        // Held until the results and the report are rewritten: no run replaces them meanwhile.
        let _folder = match dir.is_dir() {
            true => FolderLock::for_report(&dir, "sim check")?,
            false => None,
        };
        let (results, notes) = saved::check_folder(&dir)?;
        let page = report::write(&dir, &results)?;
        say(&table::render(&results, table::colour_for_stdout()))?;
        for note in notes {
            out!("{note}");
        }
        for v in &results.violations {
            out!("expectation not met: {v}");
        }
        out!("report: {}", page.display());
        return Ok(if results.violations.is_empty() {
            0
        } else {
            EXPECTATION_VIOLATED
        });
    };
    let judged = foreign::check(file, initial, final_stock, args.clock_uncertainty)?;
    say(&foreign::summary(&judged))?;
    let safe = foreign::is_safe(&judged);
    if let Some(out) = &args.out {
        let results = foreign::write(out, file, judged, initial)?;
        let page = report::write(out, &results)?;
        out!("report: {}", page.display());
    }
    Ok(if safe { 0 } else { ANOMALOUS })
}

fn export(dir: PathBuf, format: Format, out: Option<PathBuf>) -> Result<u8> {
    let to = out.map_or(Destination::Stdout, Destination::Path);
    for file in saved::export(&dir, format, to)? {
        note!("wrote {}", file.display());
    }
    Ok(0)
}

/// Writes the Markdown and CSV tables the command line asked for.
fn write_exports(results: &Results, exports: &ExportArgs) -> Result<()> {
    if let Some(file) = &exports.export_markdown {
        tabulate::write(file, &tabulate::markdown(results), "--export-markdown")?;
    }
    if let Some(file) = &exports.export_csv {
        tabulate::write(file, &tabulate::csv(results), "--export-csv")?;
    }
    Ok(())
}

fn compare(args: CompareArgs) -> Result<u8> {
    let options = compare::Options {
        force: args.force,
        noise_pct: args.noise,
        fail_if_slower_pct: args.fail_if_slower,
        fail_if_anomalous: args.fail_if_anomalous,
    };
    let comparison = compare::compare(&args.dir_a, &args.dir_b, &options)?;
    say(&comparison.table(table::colour_for_stdout()))?;
    let out = match args.out {
        Some(out) => out,
        None => compare::page_in(&args.dir_b)?,
    };
    let page = comparison.write_page(&out)?;
    out!("report: {}", page.display());
    for warning in comparison.unjudged(&options) {
        note!("warning: {warning}");
    }
    let failures = comparison.failures(&options);
    for failure in &failures {
        out!("regression: {failure}");
    }
    Ok(if failures.is_empty() { 0 } else { EXPECTATION_VIOLATED })
}

/// Writes `text` to standard output, as [`out!`] does.
fn say(text: &str) -> Result<()> {
    write_out(text.as_bytes())
}

fn write_out(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

/// Prints the completion script of `shell`; a closed pipe is not an error.
fn completions(shell: clap_complete::Shell) -> Result<u8> {
    let mut script = Vec::new();
    // clap_complete offers hidden commands too: the worker's is left out.
    let full = Cli::command();
    let mut public = clap::Command::new("sim")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(full.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    clap_complete::generate(shell, &mut public, "sim", &mut script);
    print_all(&script)
}

/// Prints the manual page, in roff, or writes every command's page into `out_dir`.
fn man(out_dir: Option<PathBuf>) -> Result<u8> {
    if let Some(dir) = out_dir {
        clap_mangen::generate_to(Cli::command(), &dir).with_context(|| {
            format!(
                "cannot write the manual pages into --out-dir {}: give a folder that exists and that you can write to",
                dir.display()
            )
        })?;
        out!("manual pages: {}", dir.display());
        return Ok(0);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    print_all(&page)
}

fn print_all(bytes: &[u8]) -> Result<u8> {
    write_out(bytes).map(|()| 0)
}
