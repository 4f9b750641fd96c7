//! `compare.html`: the comparison as a page of the report's look and charts: the two runs,
//! the judgements in words, each change with its interval, purchases/s and the share of
//! anomalous trials of A and B side by side, and the whole table.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::text::{anomaly_word, conclusion, interval, p_value, percent, points, share, speed_word};
use super::{Change, Comparison, Row, Shift, Side};
use crate::report::format::{amount, micros};
use crate::report::side_by_side::{self, Bar, Pair, Shares};

/// Writes the page to `path` and returns it: a file is written aside first and then
/// renamed, so that a browser never opens half a page; anything else that is not a folder (a
/// pipe, `/dev/stdout`) is written straight into, never replaced.
pub fn write(c: &Comparison, path: &Path) -> Result<PathBuf> {
    let html = render(c, path)?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => bail!(
            "--out {} is a folder: give the page's file name, e.g. {}",
            path.display(),
            path.join(super::FILE_NAME).display()
        ),
        Ok(m) if !m.is_file() => {
            std::fs::write(path, html).with_context(|| format!("cannot write --out {}", path.display()))?;
            return Ok(path.to_path_buf());
        }
        _ => {}
    }
    // Written aside, then renamed; a link at either name is replaced, never written through.
    crate::sys::file::replace(path, html.as_bytes()).with_context(|| {
        format!(
            "cannot write {}: give --out FILE in a folder that exists and that you can write to",
            path.display()
        )
    })?;
    Ok(path.to_path_buf())
}

fn render(c: &Comparison, path: &Path) -> Result<String> {
    let pairs = |f: fn(&crate::results::TrialResult) -> f64| -> Vec<Pair> {
        c.rows
            .iter()
            .map(|r| Pair {
                label: r.key.label(),
                strategy: r.key.strategy,
                a: trials(&c.a, r).iter().map(|t| f(t)).collect(),
                b: trials(&c.b, r).iter().map(|t| f(t)).collect(),
            })
            .collect()
    };
    let bars = |f: fn(&Row) -> &Change| -> Vec<Bar> {
        c.rows
            .iter()
            .map(|r| Bar {
                label: r.key.label(),
                strategy: r.key.strategy,
                change: f(r).interval.map(|i| (i.estimate, i.low, i.high)),
            })
            .collect()
    };
    let purchases_change = side_by_side::changes(&bars(|r| &r.purchases), "purchases/s", c.noise)?;
    let p50_change = side_by_side::changes(&bars(|r| &r.p50), "p50 latency", c.noise)?;
    let p99_change = side_by_side::changes(&bars(|r| &r.p99), "p99 latency", c.noise)?;
    let throughput = side_by_side::throughput(&pairs(|t| t.speed.purchases_per_s))?;
    let shares: Vec<_> = c
        .rows
        .iter()
        .map(|r| Shares {
            label: r.key.label(),
            strategy: r.key.strategy,
            a: (r.anomalous.a, r.anomalous.trials_a),
            b: (r.anomalous.b, r.anomalous.trials_b),
        })
        .collect();
    let anomalous = side_by_side::anomalous_share(&shares)?;
    let here = path.parent().unwrap_or(Path::new(""));
    let name = &c.b.results.scenario.name;
    let noise = format!("±{} %", crate::report::format::axis(c.noise * 100.0));

    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "sim compare: " (name) }
                style { (PreEscaped(side_by_side::stylesheet())) (PreEscaped(EXTRA_CSS)) }
            }
            body {
                header {
                    h1 { "sim compare: " (name) }
                    dl.meta {
                        (side("A", &c.a, here))
                        (side("B", &c.b, here))
                    }
                    @if !c.differences.is_empty() {
                        div.warning {
                            "These are runs of different scenarios, compared because of --force:"
                            ul { @for d in &c.differences { li { code { (d.field) } ": " (d.a) " in A, " (d.b) " in B" } } }
                        }
                    }
                    @if c.a.results.machine != c.b.results.machine {
                        p.warning { "A and B ran on different machines: a change of speed may be the machine's, not the code's." }
                    }
                    @for (s, n) in [(&c.a, "A"), (&c.b, "B")] {
                        @if let Some(why) = &s.results.stopped {
                            p.warning { "Run " (n) " stopped early (" (why) "): it holds only the trials that finished." }
                        } @else if s.results.interrupted {
                            p.warning { "Run " (n) " was interrupted: it holds only the trials that finished." }
                        }
                    }
                }
                section #words {
                    h2 { "What changed" }
                    @for line in conclusion(c).lines() { p.conclusion { (line) } }
                    ul.findings {
                        @for r in &c.rows { li { (tag(r)) ": " (finding(r)) } }
                    }
                    @if !c.only_in_a.is_empty() || !c.only_in_b.is_empty() {
                        p.note {
                            "Not compared, as only one run has them: "
                            @for k in &c.only_in_a { (k.label()) " (only A) " }
                            @for k in &c.only_in_b { (k.label()) " (only B) " }
                        }
                    }
                }
                section #changes {
                    h2 { "Changes, with their uncertainty" }
                    figure { (PreEscaped(purchases_change)) }
                    figure { (PreEscaped(p50_change)) }
                    figure { (PreEscaped(p99_change)) }
                    p.how {
                        "How to read this: each dot is how much B's figure differs from A's, in percent of A's; the \
                         line through it is the 95 % interval of that change, from a bootstrap over trials (each run's \
                         trials drawn again with replacement, 10,000 times, as criterion does). The grey band is the \
                         noise band, " (noise) ". A line that reaches into the band, or crosses zero, is a change \
                         within noise: these trials cannot tell it from luck. A change is also within noise when a \
                         t-test of the trials' means (criterion's, against trials drawn from both runs together) \
                         gives p of 0.05 or more: with few trials the interval alone is too narrow. For \
                         purchases/s, left is slower; for a latency, right is slower."
                    }
                }
                section #speed {
                    h2 { "Purchases per second" }
                    figure { (PreEscaped(throughput)) }
                    p.how {
                        "How to read this: for each strategy, A's trials on the left in grey and B's on the right in \
                         the strategy's colour: one dot per trial, and a bar at their mean. Two clouds that overlap \
                         are a difference within noise."
                    }
                }
                section #outcomes {
                    h2 { "Anomalous trials" }
                    figure { (PreEscaped(anomalous)) }
                    p.how {
                        "How to read this: the share of each strategy's trials whose verdict is not safe, A in grey, \
                         B coloured, with the counts. Whether a change of share is more than luck is Fisher's exact \
                         test on the two counts (in the table below): p under 0.05 is a significant change."
                    }
                }
                section #table {
                    h2 { "Every figure" }
                    (table(c))
                }
                footer {
                    "Drawn by sim " (c.b.results.sim_version) " from the two " code { "results.json" } " by "
                    code { "sim compare" } ". No script, no network: everything is in this file."
                }
            }
        }
    };
    Ok(page.into_string())
}

fn trials<'a>(side: &'a Side, row: &Row) -> Vec<&'a crate::results::TrialResult> {
    side.results
        .runs
        .iter()
        .filter(|r| r.strategy == row.key.strategy && r.point == row.key.point)
        .flat_map(|r| &r.trials)
        .collect()
}

fn tag(r: &Row) -> Markup {
    let rest = r.key.label();
    let rest = rest.strip_prefix(r.key.strategy.name()).unwrap_or("");
    html! { (side_by_side::strategy_tag(r.key.strategy)) (rest) }
}

/// A link to a run's report, relative to the page when both are on one path, and its facts.
fn side(name: &str, s: &Side, here: &Path) -> Markup {
    let r = &s.results;
    let report = s.dir.join(crate::report::FILE_NAME);
    let href = relative(here, &report);
    html! {
        dt { (name) }
        dd {
            a href=(href) { (s.dir.display()) }
            ": sim " (r.sim_version) ", run " (r.created) ", " (r.machine.cpus) " CPUs (" (r.machine.cpu_model) "), "
            (r.runs.iter().map(|x| x.trials.len()).sum::<usize>()) " trials"
        }
    }
}

/// `target` as seen from the folder `from`: relative when both can be made absolute.
fn relative(from: &Path, target: &Path) -> String {
    let absolute = |p: &Path| {
        if p.as_os_str().is_empty() {
            std::env::current_dir().ok()
        } else {
            std::path::absolute(p).ok()
        }
    };
    let (Some(from), Some(to)) = (absolute(from), absolute(target)) else {
        return target.display().to_string();
    };
    fn clean(p: &Path) -> Vec<Component<'_>> {
        let mut out: Vec<Component<'_>> = Vec::new();
        for c in p.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    }
    let (f, t) = (clean(&from), clean(&to));
    let common = f.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..f.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c.as_os_str());
    }
    rel.display().to_string()
}

fn finding(r: &Row) -> String {
    let speed = |what: &str, ch: &Change| match ch.shift {
        Shift::Unknown => format!("{what}: too few trials to tell"),
        s => format!(
            "{what} {} ({}, 95 % interval {})",
            speed_word(s),
            ch.interval.map_or_else(|| "–".into(), |i| percent(i.estimate)),
            interval(ch)
        ),
    };
    let a = &r.anomalous;
    format!(
        "{}; {}; {}; anomalous trials {} → {}, {} (Fisher p = {}).",
        speed("purchases/s", &r.purchases),
        speed("p50 latency", &r.p50),
        speed("p99 latency", &r.p99),
        share(a.a, a.trials_a),
        share(a.b, a.trials_b),
        anomaly_word(a.shift),
        p_value(a.p)
    )
}

fn table(c: &Comparison) -> Markup {
    let judgement = |s: Shift, word: &str| html! { span class=(class(s)) { (word) } };
    html! {
        table.summary.compare {
            thead { tr {
                th { "strategy" } th { "measure" } th { "A" } th { "B" } th { "change" } th { "95 % interval, p (t-test; Fisher)" } th { "judgement" }
            } }
            tbody {
                @for r in &c.rows {
                    tr.first {
                        td rowspan="5" { (tag(r)) }
                        td { "purchases/s" } td { (amount(r.purchases.a)) } td { (amount(r.purchases.b)) }
                        td { (estimate(&r.purchases)) } td { (interval(&r.purchases)) }
                        td { (judgement(r.purchases.shift, speed_word(r.purchases.shift))) }
                    }
                    @for (what, ch) in [("p50 latency", &r.p50), ("p99 latency", &r.p99)] {
                        tr {
                            td { (what) } td { (micros(ch.a)) } td { (micros(ch.b)) }
                            td { (estimate(ch)) } td { (interval(ch)) }
                            td { (judgement(ch.shift, speed_word(ch.shift))) }
                        }
                    }
                    tr {
                        td { "anomalous trials" }
                        td { (share(r.anomalous.a, r.anomalous.trials_a)) }
                        td { (share(r.anomalous.b, r.anomalous.trials_b)) }
                        td { (points(r)) } td { "p = " (p_value(r.anomalous.p)) " (Fisher)" }
                        td { (judgement(r.anomalous.shift, anomaly_word(r.anomalous.shift))) }
                    }
                    tr {
                        td { "verdicts" }
                        td { @for (v, a, _) in r.verdicts() { @if a > 0 { (side_by_side::verdict_badge(v, &format!("{} {a}", crate::results::summary::verdict_name(v)))) " " } } }
                        td { @for (v, _, b) in r.verdicts() { @if b > 0 { (side_by_side::verdict_badge(v, &format!("{} {b}", crate::results::summary::verdict_name(v)))) " " } } }
                        td {} td {} td {}
                    }
                }
            }
        }
    }
}

fn estimate(ch: &Change) -> String {
    ch.interval.map_or_else(|| "–".into(), |i| percent(i.estimate))
}

fn class(s: Shift) -> &'static str {
    match s {
        Shift::Better => "better",
        Shift::Worse => "worse",
        Shift::WithinNoise => "noise",
        Shift::Unknown => "unknown",
    }
}

const EXTRA_CSS: &str = "
span.better{color:#3b7d34;font-weight:600}span.worse{color:#c0392b;font-weight:600}
span.noise,span.unknown{color:#777}p.conclusion{font-size:1.08em}
table.compare tr.first td{border-top:2px solid #ddd}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_page() {
        assert_eq!(
            relative(Path::new("/r/b"), Path::new("/r/a/index.html")),
            "../a/index.html"
        );
        assert_eq!(relative(Path::new("/r/b"), Path::new("/r/b/index.html")), "index.html");
        assert_eq!(
            relative(Path::new("/r/b/./"), Path::new("/r/x/../b/index.html")),
            "index.html"
        );
    }
}
