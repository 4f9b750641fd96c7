//! The comparison as the terminal shows it: a block of lines per strategy (and point),
//! one line per measure, A's value, B's, the change, its interval or test, and a word.

use std::fmt::Write;

use super::{Change, Comparison, Row, Shift};
use crate::report::format::{amount, axis, micros};
use crate::results::summary::{Colour, paint, verdict_colour, verdict_name};

/// A fraction as a signed percentage: `+12.3 %`, `-99.6 %`, `+386,000 %`.
pub fn percent(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let sign = if x > 0.0 {
        "+"
    } else if x < 0.0 {
        "-"
    } else {
        ""
    };
    let magnitude = (x * 100.0).abs();
    if magnitude >= 1e9 {
        format!("{sign}{magnitude:.2e} %")
    } else {
        format!("{sign}{} %", amount(magnitude))
    }
}

/// A fraction as an unsigned percentage: `99.3 %`.
pub fn magnitude(x: f64) -> String {
    percent(x.abs()).trim_start_matches('+').to_string()
}

/// A p-value in as few digits as it needs: `0.002`, `0.000` (under 0.0005), `1`.
pub fn p_value(p: f64) -> String {
    if p < 0.0005 {
        "0.000".into()
    } else if p >= 0.9995 {
        "1".into()
    } else {
        format!("{p:.3}")
    }
}

/// The word for a shift of speed: of purchases/s or of a latency.
pub fn speed_word(shift: Shift) -> &'static str {
    match shift {
        Shift::Better => "faster",
        Shift::Worse => "slower",
        Shift::WithinNoise => "within noise",
        Shift::Unknown => "too few trials",
    }
}

/// The word for a shift of the share of anomalous trials.
pub fn anomaly_word(shift: Shift) -> &'static str {
    match shift {
        Shift::Better => "fewer races",
        Shift::Worse => "more races",
        Shift::WithinNoise => "within noise",
        Shift::Unknown => "no trials",
    }
}

fn shift_colour(shift: Shift) -> Colour {
    match shift {
        Shift::Better => Colour::GREEN,
        Shift::Worse => Colour::RED,
        Shift::WithinNoise | Shift::Unknown => Colour::DIM,
    }
}

/// The 95 % interval of a change and the t-test's p: `-99.7 % to -99.5 %, p < 0.001`.
pub fn interval(c: &Change) -> String {
    match (c.interval, c.p) {
        (Some(i), Some(p)) => format!("{} to {}, p = {}", percent(i.low), percent(i.high), p_value(p)),
        (Some(i), None) => format!("{} to {}", percent(i.low), percent(i.high)),
        _ => "–".into(),
    }
}

/// `0 of 6`.
pub fn share(anomalous: u32, trials: u32) -> String {
    format!("{anomalous} of {trials}")
}

/// The change of the share of anomalous trials in percentage points: `+100 pts`.
pub fn points(row: &Row) -> String {
    let c = &row.anomalous;
    let share = |a: u32, n: u32| if n == 0 { 0.0 } else { a as f64 / n as f64 };
    let d = (share(c.b, c.trials_b) - share(c.a, c.trials_a)) * 100.0;
    if d == 0.0 {
        "0 pts".into()
    } else {
        format!("{}{} pts", if d > 0.0 { "+" } else { "-" }, amount(d.abs()))
    }
}

/// The verdict counts of one side: `6 safe`, `4 oversold, 2 safe`.
fn verdicts(row: &Row, side_b: bool, colour: bool) -> String {
    let list: Vec<String> = row
        .verdicts()
        .into_iter()
        .filter(|(_, a, b)| if side_b { *b > 0 } else { *a > 0 })
        .map(|(v, a, b)| {
            let n = if side_b { b } else { a };
            paint(&format!("{n} {}", verdict_name(v)), verdict_colour(v), colour)
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The whole table, then what only one side ran, then a sentence when all is within noise.
pub fn render(c: &Comparison, colour: bool) -> String {
    let mut s = String::new();
    sides(&mut s, c, colour);
    let _ = writeln!(s);

    let label_width = c
        .rows
        .iter()
        .map(|r| r.key.label().chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "{:<label_width$}  {:<11} {:>12} {:>12} {:>11}  {:<38} judgement",
        "strategy", "measure", "A", "B", "change", "95 % interval, p (t-test; Fisher)"
    );
    for row in &c.rows {
        row_lines(&mut s, row, label_width, colour);
    }
    for (keys, side) in [(&c.only_in_a, "A"), (&c.only_in_b, "B")] {
        for k in keys.iter() {
            let _ = writeln!(s, "only in {side}: {} (not compared)", k.label());
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", conclusion(c));
    s
}

/// The two runs, each on a line, and what makes them hard to compare: a different scenario,
/// another machine, a run that stopped early.
fn sides(s: &mut String, c: &Comparison, colour: bool) {
    let describe = |side: &super::Side| {
        let r = &side.results;
        format!(
            "{} (sim {}, {}, {} CPUs)",
            side.dir.display(),
            r.sim_version,
            r.created,
            r.machine.cpus
        )
    };
    let _ = writeln!(s, "A: {}", describe(&c.a));
    let _ = writeln!(s, "B: {}", describe(&c.b));
    for d in &c.differences {
        let _ = writeln!(
            s,
            "{}",
            paint(&format!("different scenario (--force): {d}"), Colour::YELLOW, colour)
        );
    }
    let (ma, mb) = (&c.a.results.machine, &c.b.results.machine);
    if ma != mb {
        let _ = writeln!(
            s,
            "note: different machines ({}, {} CPUs / {}, {} CPUs): a change of speed may be the machine's",
            ma.cpu_model, ma.cpus, mb.cpu_model, mb.cpus
        );
    }
    for (side, name) in [(&c.a, "A"), (&c.b, "B")] {
        if let Some(why) = &side.results.stopped {
            let _ = writeln!(
                s,
                "note: run {name} stopped early ({why}): it holds only the trials that finished"
            );
        } else if side.results.interrupted {
            let _ = writeln!(
                s,
                "note: run {name} was interrupted: it holds only the trials that finished"
            );
        }
    }
}

/// One strategy's (and point's) lines: a line per measure, then the verdicts of each side.
fn row_lines(s: &mut String, row: &Row, label_width: usize, colour: bool) {
    let label = row.key.label();
    // A speed measure's line: its two values shown by `show`, and the change judged.
    let speed = |measure, c: &Change, show: fn(f64) -> String| {
        let word = speed_word(c.shift).to_string();
        (measure, show(c.a), show(c.b), change(c), interval(c), word, c.shift)
    };
    let lines: [(&str, String, String, String, String, String, Shift); 4] = [
        speed("purchases/s", &row.purchases, amount),
        speed("p50 latency", &row.p50, micros),
        speed("p99 latency", &row.p99, micros),
        (
            "anomalous",
            share(row.anomalous.a, row.anomalous.trials_a),
            share(row.anomalous.b, row.anomalous.trials_b),
            points(row),
            format!("p = {} (Fisher)", p_value(row.anomalous.p)),
            anomaly_word(row.anomalous.shift).to_string(),
            row.anomalous.shift,
        ),
    ];
    for (i, (measure, a, b, ch, detail, word, shift)) in lines.iter().enumerate() {
        let name = if i == 0 { label.as_str() } else { "" };
        let _ = writeln!(
            s,
            "{name:<label_width$}  {measure:<11} {a:>12} {b:>12} {ch:>11}  {detail:<38} {}",
            paint(word, shift_colour(*shift), colour)
        );
    }
    let _ = writeln!(
        s,
        "{:<label_width$}  {:<11} {} → {}",
        "",
        "verdicts",
        verdicts(row, false, colour),
        verdicts(row, true, colour)
    );
}

fn change(c: &Change) -> String {
    c.interval.map_or_else(|| "–".to_string(), |i| percent(i.estimate))
}

/// The comparison in one sentence, or a few: what got worse, what got better, or that every
/// difference is within noise.
pub fn conclusion(c: &Comparison) -> String {
    if c.rows.is_empty() {
        return "Nothing to compare: no strategy (at no point) ran in both.".into();
    }
    let noise = format!("±{} %", axis(c.noise * 100.0));
    let mut worse = Vec::new();
    let mut better = Vec::new();
    for row in &c.rows {
        let label = row.key.label();
        for (what, ch) in [
            ("purchases/s", &row.purchases),
            ("p50 latency", &row.p50),
            ("p99 latency", &row.p99),
        ] {
            match ch.shift {
                Shift::Worse => worse.push(format!("{label}: {what} {} ({})", change(ch), speed_word(ch.shift))),
                Shift::Better => better.push(format!("{label}: {what} {} ({})", change(ch), speed_word(ch.shift))),
                _ => {}
            }
        }
        let a = &row.anomalous;
        match a.shift {
            Shift::Worse => worse.push(format!(
                "{label}: anomalous trials {} → {} of {} (p = {})",
                a.a,
                a.b,
                a.trials_b,
                p_value(a.p)
            )),
            Shift::Better => better.push(format!(
                "{label}: anomalous trials {} → {} of {} (p = {})",
                a.a,
                a.b,
                a.trials_b,
                p_value(a.p)
            )),
            _ => {}
        }
    }
    let unknown = c.rows.iter().filter(|r| r.purchases.shift == Shift::Unknown).count();
    let mut out = String::new();
    if worse.is_empty() && better.is_empty() {
        out += &format!(
            "Within noise: no difference between A and B goes beyond the noise band ({noise}) with 95 % \
             confidence and p < 0.05, and no share of anomalous trials changed significantly."
        );
    } else {
        if !worse.is_empty() {
            out += &format!("Worse in B: {}.", worse.join("; "));
        }
        if !better.is_empty() {
            if !out.is_empty() {
                out += "\n";
            }
            out += &format!("Better in B: {}.", better.join("; "));
        }
        out += &format!("\nEverything else is within noise ({noise}).");
    }
    let measures = c.rows.len() * 3;
    if measures >= 20 && !(worse.is_empty() && better.is_empty()) {
        out += &format!(
            "\n{measures} changes were tested: at p < 0.05, about {} of them may be judged beyond noise by \
             luck alone. Before trusting one, run both again with more trials (--trials).",
            (measures as f64 / 20.0).round()
        );
    }
    if unknown > 0 {
        out += &format!(
            "\n{unknown} of {} compared runs have fewer than 2 trials on a side: no interval can be told \
             for them; run with --trials 5 or more.",
            c.rows.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_p_values_read_well() {
        assert_eq!(percent(-0.996), "-99.6 %");
        assert_eq!(percent(0.123), "+12.3 %");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(3860.0), "+386,000 %");
        assert_eq!(percent(f64::NAN), "–");
        assert_eq!(percent(-4e302), "-4.00e304 %");
        assert_eq!(p_value(0.0021), "0.002");
        assert_eq!(p_value(0.0001), "0.000");
        assert_eq!(p_value(1.0), "1");
    }
}
