//! The short table a finished run prints, one line per strategy (and point of a sweep),
//! and the colours of the terminal: verdicts coloured when stdout is a terminal and
//! `NO_COLOR` is not set, plain text otherwise, as ripgrep and hyperfine do.

use std::ffi::OsStr;
use std::fmt::Write;
use std::io::IsTerminal;

use crate::checker::Verdict;
use crate::plan::notice::FaultKind;
use crate::results::{Results, TrialResult};

/// Whether what goes to stdout may carry colours: it is a terminal, `NO_COLOR` is unset or
/// empty (<https://no-color.org>), and `TERM` is not `dumb`.
pub fn colour_for_stdout() -> bool {
    wants_colour(
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
        std::io::stdout().is_terminal(),
    )
}

/// The rule of [`colour_for_stdout`], given what it reads.
pub fn wants_colour(no_color: Option<&OsStr>, term: Option<&OsStr>, is_terminal: bool) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty()) && term != Some(OsStr::new("dumb"))
}

/// An ANSI colour of the terminal, by the SGR code that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(&'static str);

impl Colour {
    /// For what went well: safe, faster.
    pub const GREEN: Colour = Colour("32");
    /// For what went wrong: oversold, slower, more races.
    pub const RED: Colour = Colour("31");
    /// For what is wrong but not oversold: inconsistent.
    pub const YELLOW: Colour = Colour("33");
    /// For a crash.
    pub const MAGENTA: Colour = Colour("35");
    /// For a deadlock, the worst verdict.
    pub const BOLD_RED: Colour = Colour("1;31");
    /// For what is within noise.
    pub const DIM: Colour = Colour("2");
}

/// `text` in `colour` when `on`, else as it is.
pub fn paint(text: &str, colour: Colour, on: bool) -> String {
    if on {
        format!("\x1b[{}m{text}\x1b[0m", colour.0)
    } else {
        text.to_string()
    }
}

/// The colour of a verdict, worse is louder.
pub fn verdict_colour(v: Verdict) -> Colour {
    match v {
        Verdict::Safe => Colour::GREEN,
        Verdict::Inconsistent => Colour::YELLOW,
        Verdict::Oversold => Colour::RED,
        Verdict::Crashed => Colour::MAGENTA,
        Verdict::Deadlock => Colour::BOLD_RED,
    }
}

/// The name of a verdict as results.json spells it: `oversold`.
pub fn verdict_name(v: Verdict) -> String {
    <&str>::from(v).to_string()
}

/// The table, with its verdicts coloured when `colour`.
pub fn render(results: &Results, colour: bool) -> String {
    let mut s = String::new();
    let sweep = results.scenario.sweep.as_ref();
    let lags = sweep.is_some_and(|w| !w.lag_ms.is_empty());
    if sweep.is_some() {
        let _ = write!(s, "{:>6} {:>8} ", "buyers", "hold µs");
    }
    if lags {
        let _ = write!(s, "{:>7} {:>13} ", "lag ms", "lost/failover");
    }
    let _ = writeln!(
        s,
        "{:<14} {:>6} {:>9} {:>12} {:>12} {:>10} {:>10}  verdicts",
        "strategy", "trials", "anomalous", "max oversold", "purchases/s", "p50 µs", "p99 µs"
    );
    for run in &results.runs {
        if let Some(p) = run.point {
            let _ = write!(s, "{:>6} {:>8} ", p.buyers, p.hold_us);
        }
        if lags {
            let lag = run
                .point
                .and_then(|p| p.lag_ms)
                .map(|l| l.to_string())
                .unwrap_or_default();
            let _ = write!(s, "{lag:>7} {:>13.1} ", lost_per_failover(&run.trials));
        }
        let m = &run.summary;
        let verdicts: Vec<String> = m
            .verdicts
            .iter()
            .map(|(v, n)| paint(&format!("{n} {}", verdict_name(*v)), verdict_colour(*v), colour))
            .collect();
        let _ = writeln!(
            s,
            "{:<14} {:>6} {:>9} {:>12} {:>12.0} {:>10.1} {:>10.1}  {}",
            run.strategy.name(),
            m.trials,
            m.anomalous,
            m.max_oversold,
            m.mean_purchases_per_s,
            m.p50_us,
            m.p99_us,
            verdicts.join(", ")
        );
    }
    s
}

/// Acknowledged sales lost, over the trials whose primary was killed (0 if none was).
pub fn lost_per_failover<'a>(trials: impl IntoIterator<Item = &'a TrialResult>) -> f64 {
    let (mut failovers, mut lost) = (0u64, 0u64);
    for t in trials {
        if t.faults.iter().any(|f| f.kind == FaultKind::KillPrimary) {
            (failovers, lost) = (failovers + 1, lost + t.check.lost_acknowledged);
        }
    }
    lost as f64 / failovers.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let on =
            |no: Option<&str>, term: Option<&str>, tty| wants_colour(no.map(OsStr::new), term.map(OsStr::new), tty);
        assert!(on(None, Some("xterm-256color"), true));
        assert!(on(None, None, true));
        assert!(!on(None, Some("xterm"), false), "a pipe or a file gets plain text");
        assert!(!on(Some("1"), Some("xterm"), true), "NO_COLOR set: plain");
        assert!(!on(Some("anything"), None, true));
        assert!(
            on(Some(""), None, true),
            "an empty NO_COLOR is unset, as no-color.org says"
        );
        assert!(!on(None, Some("dumb"), true));
    }

    #[test]
    fn painted_verdicts_carry_their_colour_and_plain_ones_none() {
        assert_eq!(
            paint("3 safe", verdict_colour(Verdict::Safe), true),
            "\x1b[32m3 safe\x1b[0m"
        );
        assert_eq!(
            paint("3 oversold", verdict_colour(Verdict::Oversold), true),
            "\x1b[31m3 oversold\x1b[0m"
        );
        assert_eq!(paint("3 safe", Colour::GREEN, false), "3 safe");
        assert_eq!(verdict_name(Verdict::Inconsistent), "inconsistent");
    }
}
