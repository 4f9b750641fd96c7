//! The page: the header, the findings in words, and a section per chart, each chart followed
//! by how to read it. maud escapes every text; only SVG that plotters drew is inserted as is.

use anyhow::Result;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::evidence::Evidence;
use super::sweep::{self, Axis, Measure};
use super::{format, outcomes, palette, speed, stock, timeline};
use crate::checker::Verdict;
use crate::plan::notice::FaultKind;
use crate::results::Results;
use crate::scenario::Scenario;
use crate::scenario::StrategyName;

pub fn render(results: &Results, evidence: &[Evidence]) -> Result<String> {
    let share = outcomes::anomalous_share(evidence)?;
    let counts = outcomes::counts(evidence)?;
    let spread = outcomes::oversold_spread(evidence)?;
    let throughput = speed::throughput(evidence)?;
    let latency = speed::latency(evidence)?;
    let mut stock_charts = Vec::new();
    for e in evidence {
        if let Some(f) = &e.featured {
            stock_charts.push(stock::chart(
                e.strategy,
                &f.history,
                &f.judged,
                f.trial.initial_stock,
                &f.trial.faults,
            )?);
        }
    }
    let sweeps = [
        (Axis::Buyers, Measure::PurchasesPerSecond),
        (Axis::Buyers, Measure::AnomalousShare),
        (Axis::Hold, Measure::AnomalousShare),
        (Axis::Lag, Measure::LostPerFailover),
        (Axis::Lag, Measure::PurchasesPerSecond),
    ];
    let mut sweep_charts = Vec::new();
    for (axis, measure) in sweeps {
        if let Some(svg) = sweep::chart(evidence, axis, measure)? {
            sweep_charts.push(svg);
        }
    }
    let fault_kinds: Vec<FaultKind> = evidence
        .iter()
        .filter_map(|e| e.featured.as_ref())
        .flat_map(|f| f.trial.faults.iter().map(|f| f.kind))
        .collect();
    let s = &results.scenario;

    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "sim: " (s.name) }
                style { (PreEscaped(CSS)) (PreEscaped(timeline::css_rules())) }
            }
            body {
                (header(results, evidence))
                section #words {
                    h2 { "What happened" }
                    ul.findings {
                        @for e in evidence {
                            li { (strategy_tag(e.strategy)) ": " (finding(e)) }
                        }
                    }
                }
                section #timeline {
                    h2 { "Timeline" }
                    p.how {
                        "How to read this: one lane per process, time running to the right. Each purchase is a thin \
                         line from the moment it was called to the moment it returned (waiting for a lock or a reply \
                         included), and a thick bar from its read of the stock to its write: its read-modify-write. \
                         A purchase that wrote nothing is a short mark at its read. Hover a bar for its details. \
                         If bars in different lanes overlap in time, those buyers read the stock before one another \
                         wrote it: the strip on top counts them, grey for one at a time, red for an overlap. Under an \
                         honest strategy the bars form a staircase that never overlaps. Each strategy shows its worst trial. \
                         The colour is what the buyer was told (sold, sold out, the stock unreadable, or nothing: its \
                         process died inside the purchase); what the checker found in a purchase colours it over that: \
                         a torn read (a stock unreadable or holding a number never written), phantom stock (a number \
                         above the initial stock), an order violation (a ticket no lower than one sold before it began), \
                         a sale acknowledged then lost (its buyer was told it bought the ticket; the store's own record \
                         of sales does not hold it), a duplicate ticket (every receipt of a ticket sold more than once). \
                         Two sales are ordered in time only when one ended more than the trial's clock uncertainty \
                         before the other began: stamps of one moment taken by two processes differ by up to that \
                         much (the counters of two CPUs, and when each stamp is read), measured before each trial's \
                         start gate"
                        (uncertainty(evidence))
                        ". Closer than that, two sales are concurrent, and no order violation rests on them. \
                         These are the checker's own judgements, the same that results.json counts. Past "
                        (timeline::MAX_LANES) " processes a lane stands for a band of them, and shows how many of their \
                         purchases were under way in each moment, in the same colours: the note above such a timeline says so."
                    }
                    (timeline::legend(&fault_kinds))
                    @for e in evidence {
                        h3 { (strategy_tag(e.strategy)) " " (trial_heading(e)) }
                        @if let Some(f) = &e.featured {
                            (timeline::render(&f.history, &f.judged, &f.trial.check.anomalies, &f.trial.faults))
                        } @else if e.trials.is_empty() {
                            p.note { "No trial of this strategy finished." }
                        } @else {
                            p.note { "The run kept no history of this strategy's trials (--keep-histories): there is no timeline to draw." }
                        }
                    }
                }
                section #stock {
                    h2 { "Stock over time" }
                    div.grid {
                        @for svg in &stock_charts {
                            figure { (PreEscaped(svg)) }
                        }
                    }
                    p.how {
                        "How to read this: the coloured line is what the stock held after each write, in each \
                         strategy's worst trial; the wide grey line is the honest count, the initial stock less the \
                         tickets sold so far. Where the coloured line stays above the grey one, sales were made \
                         that the stock does not show: the gap at the end is the lost updates. Where the grey line \
                         falls below zero (the red band), tickets that did not exist were sold. Where the coloured \
                         line climbs above where it started, a torn write made phantom stock: tickets that never \
                         existed, offered for sale (lost updates are then not counted: the rise hides them)."
                    }
                }
                section #outcomes {
                    h2 { "Outcomes" }
                    figure { (PreEscaped(share)) }
                    p.how {
                        "How to read this: each bar is the share of a strategy's trials whose verdict is not safe; \
                         the label gives the count. An honest strategy stays at zero in every trial."
                    }
                    @if let Some(svg) = counts {
                        figure { (PreEscaped(svg)) }
                        p.how {
                            "How to read this: for each strategy, one bar per kind of anomaly, as high as its mean \
                             over the trials; the black tick and the number above are the worst trial. \
                             Oversold: tickets sold beyond the stock. Duplicate tickets: receipts whose ticket \
                             another buyer also holds. Lost updates: sales that the stock does not show. \
                             Torn reads: reads of an empty or half-written stock, or of a number never written to it (such a \
                             buyer may still have been told it sold). Phantom stock: how far the stock rose above its \
                             initial count. Order violations: sales whose ticket is no lower than one sold before they \
                             began. Lost acknowledged: sales a buyer was told of that the store's own record of sales \
                             does not hold. Kinds that no trial showed are left out."
                        }
                    } @else {
                        p.clean {
                            "No trial of any strategy oversold, sold a ticket twice, lost an update, read a torn stock, \
                             rose above its initial stock, went back in order or lost an acknowledged sale: there are no \
                             anomaly counts to draw."
                        }
                    }
                    @if let Some(svg) = spread {
                        figure { (PreEscaped(svg)) }
                        p.how {
                            "How to read this: one dot per trial at the number of tickets it oversold (spread \
                             sideways so that equal values stay visible; with many trials, a histogram on its side), \
                             and a black line at the median. A wide spread means the race is luck: the same \
                             scenario oversells by more or less from one run to the next."
                        }
                    } @else {
                        p.clean { "No trial oversold: there is no spread of overselling to draw." }
                    }
                }
                section #speed {
                    h2 { "Speed" }
                    figure { (PreEscaped(throughput)) }
                    p.how {
                        "How to read this: purchases completed per second of each trial (dots) and their mean (bar), \
                         from the start gate to the last process finishing. Safety costs speed: a strategy that \
                         serializes the sale cannot go faster than one purchase per hold."
                    }
                    figure { (PreEscaped(latency)) }
                    (latency_table(evidence))
                    p.how {
                        "How to read this: for each latency on the (logarithmic) axis, the share of a strategy's \
                         purchases, over all its trials, that completed within it. A curve far to the right is a slow \
                         strategy; a long flat tail is buyers queueing for the lock or the seller. Percentiles are \
                         read to within 2.3 %."
                    }
                }
                @if !sweep_charts.is_empty() {
                    section #sweep {
                        h2 { "Sweep" }
                        @for svg in &sweep_charts {
                            figure { (PreEscaped(svg)) }
                        }
                        p.how {
                            "How to read this: the scenario ran every strategy at each combination of buyer count and \
                             race window (the hold between a buyer's read and its write). Each chart follows one of \
                             the two, pooling the trials over the other: one line per strategy, one point per value. \
                             Purchases per second shows what guarding costs as buyers are added; the share of trials \
                             with an anomaly shows how the race grows with more buyers or a wider window. The other \
                             sections pool every point of a strategy together."
                        }
                    }
                }
                footer {
                    "Drawn by sim " (results.sim_version) " from " code { "results.json" } " and the trial histories \
                     beside it; " code { "sim report DIR" } " draws it again. No script, no network: everything is in this file."
                }
            }
        }
    };
    Ok(page.into_string())
}

fn header(results: &Results, evidence: &[Evidence]) -> Markup {
    let s = &results.scenario;
    let seeds: Vec<u64> = results
        .runs
        .iter()
        .flat_map(|r| r.trials.iter().map(|t| t.seed))
        .collect();
    let seeds = match (seeds.iter().min(), seeds.iter().max()) {
        (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
        (Some(a), _) => a.to_string(),
        _ => s.seed.to_string(),
    };
    let m = &results.machine;
    html! {
        header {
            h1 { "sim: " (s.name) }
            @if !s.description.is_empty() { p.description { (s.description) } }
            p.setup { (setup(s)) }
            dl.meta {
                dt { "seeds" } dd { (seeds) }
                dt { "run" } dd { (results.created) }
                dt { "sim" } dd { (results.sim_version) }
                dt { "machine" } dd { (m.kernel) ", " (format::plural(m.cpus as u64, "CPU", "CPUs")) " (" (m.cpu_model) ")" }
            }
            @if results.interrupted {
                p.warning { "The run was interrupted: this report shows only the trials that finished." }
            } @else if let Some(why) = &results.stopped {
                p.warning { "The run stopped early (" (why) "): this report shows only the trials that finished." }
            }
            @if let Some(ms) = s.buyers.duration_ms {
                p.note {
                    "A soak of " (format::plural(ms, "ms", "ms")) ": its purchases were checked segment by segment as \
                     the buyers wrote them, and the segments removed unless kept (trials/…/segments/). The counts, \
                     verdicts and latencies cover every purchase; the timeline and the stock chart, which draw a \
                     whole history, have none to draw."
                }
            }
            @let missing = results.missing_histories();
            @if !missing.is_empty() {
                div.note {
                    "The run kept only some histories (--keep-histories): the timeline, the stock chart and the \
                     latencies draw on the others; the counts cover every trial."
                    ul { @for m in &missing { li { (m) } } }
                }
            }
            @if !results.violations.is_empty() {
                div.warning {
                    "Expectations of the scenario that the run contradicted:"
                    ul { @for v in &results.violations { li { (v) } } }
                }
            }
            div.verdicts {
                @for e in evidence {
                    div.verdict {
                        (strategy_tag(e.strategy))
                        @if e.trials.is_empty() { span.badge.none { "no trial finished" } }
                        @for (v, n) in e.verdicts() {
                            span.badge style=(format!("background:{}", palette::verdict(v))) {
                                (<&str>::from(v)) " " (n) "/" (e.trials.len())
                            }
                        }
                    }
                }
            }
            @let sweep = results.runs.iter().any(|r| r.point.is_some());
            @if sweep {
                details {
                    summary { "Each of the " (results.runs.len()) " runs: a strategy at a point of the sweep" }
                    (runs_table(results, true))
                }
            } @else {
                (runs_table(results, false))
            }
        }
    }
}

/// One line per run, as the command line prints it.
fn runs_table(results: &Results, sweep: bool) -> Markup {
    html! {
        table.summary {
            thead { tr {
                th { "strategy" }
                @if sweep { th { "buyers" } th { "hold" } }
                th { "trials" } th { "anomalous" } th { "max oversold" }
                th { "purchases/s" } th { "p50 latency" } th { "p99 latency" } th { "spawn" }
            } }
            tbody {
                @for run in &results.runs {
                    @let m = &run.summary;
                    tr {
                        td { (strategy_tag(run.strategy)) }
                        @if sweep {
                            td { (run.point.map_or(String::new(), |p| p.buyers.to_string())) }
                            td { (run.point.map_or(String::new(), |p| format::duration_axis(p.hold_us as f64))) }
                        }
                        td { (m.trials) }
                        td { (m.anomalous) }
                        td { (m.max_oversold) }
                        td { (format::amount(m.mean_purchases_per_s)) }
                        td { (format::micros(m.p50_us)) }
                        td { (format::micros(m.p99_us)) }
                        td { (format::amount(m.mean_spawn_ms)) " ms" }
                    }
                }
            }
        }
    }
}

/// The scenario in one sentence.
fn setup(s: &Scenario) -> String {
    let mut parts = vec![format!(
        "{} in a {} store written by {}",
        format::plural(s.stock.initial.max(0) as u64, "ticket", "tickets"),
        s.stock.store.name(),
        <&str>::from(s.stock.write)
    )];
    let b = &s.buyers;
    let list = |items: Vec<String>| match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    };
    let (counts, holds) = match &s.sweep {
        Some(sweep) => (
            sweep.count.iter().map(|c| c.to_string()).collect(),
            sweep.hold_us.iter().map(|h| format::duration_axis(*h as f64)).collect(),
        ),
        None => (vec![b.count.to_string()], vec![format::duration_axis(b.hold_us as f64)]),
    };
    let mut buyers = format!(
        "{} {} making {} each, holding {} between read and write",
        list(counts),
        if s.sweep.is_none() && b.count == 1 {
            "buyer"
        } else {
            "buyers"
        },
        format::plural(b.attempts as u64, "attempt", "attempts"),
        list(holds)
    );
    if let Some(pool) = b.pool {
        buyers += &format!(" on a pool of {pool} ({})", <&str>::from(b.pool_mode));
    }
    parts.push(buyers);
    if let Some(p) = &s.producers {
        parts.push(format!(
            "{} putting {} each into a queue of {} ({})",
            format::plural(p.count as u64, "producer", "producers"),
            format::plural(p.entries as u64, "entry", "entries"),
            p.queue_capacity,
            if p.blocking { "blocking" } else { "dropping when full" }
        ));
    }
    parts.push(format!(
        "lock scope {}, {}",
        <&str>::from(s.lock.scope),
        format::plural(s.semaphore.permits as u64, "semaphore permit", "semaphore permits")
    ));
    let f = &s.faults;
    if f.kill_buyers > 0 || f.stop_buyers > 0 || f.kill_seller {
        parts.push(format!(
            "faults: {} killed, {} stopped for {} ms{}",
            format::plural(f.kill_buyers as u64, "buyer", "buyers"),
            format::plural(f.stop_buyers as u64, "buyer", "buyers"),
            f.stop_ms,
            if f.kill_seller { ", the seller killed" } else { "" }
        ));
    }
    parts.push(format!(
        "{} per strategy",
        format::plural(s.trials as u64, "trial", "trials")
    ));
    parts.join("; ") + "."
}

pub(super) fn strategy_tag(strategy: StrategyName) -> Markup {
    html! {
        span.strategy style=(format!("border-color:{}", palette::css(palette::strategy(strategy)))) { (strategy.name()) }
    }
}

fn trial_heading(e: &Evidence) -> Markup {
    match &e.featured {
        Some(f) => {
            let v = f.trial.check.verdict;
            let why = if v == Verdict::Safe {
                "every trial was safe; the first"
            } else {
                "the worst trial"
            };
            html! {
                "trial " (f.trial.trial)
                @if let Some(p) = f.point { " at " (p.buyers) " buyers, " (format::duration_axis(p.hold_us as f64)) " hold" }
                " (" (why) ") "
                span.badge style=(format!("background:{}", palette::verdict(v))) { (<&str>::from(v)) }
            }
        }
        None => html! {},
    }
}

/// The clock uncertainties of the run's trials, as the timeline's note says them: ": 48 to
/// 61 ns in this run's trials", or nothing when no trial measured one.
fn uncertainty(evidence: &[Evidence]) -> String {
    let bounds = evidence
        .iter()
        .flat_map(|e| &e.trials)
        .map(|t| t.check.clock_uncertainty_ns);
    match bounds.fold(None, |r: Option<(u64, u64)>, b| {
        Some(r.map_or((b, b), |(l, h)| (l.min(b), h.max(b))))
    }) {
        Some((0, 0)) | None => String::new(),
        Some((l, h)) if l == h => format!(" ({l} ns in this run's trials)"),
        Some((l, h)) => format!(" ({l} to {h} ns in this run's trials)"),
    }
}

/// The first anomaly of a strategy's worst trial in one sentence, or why there is none.
fn finding(e: &Evidence) -> Markup {
    let n = e.trials.len() as u64;
    let Some(f) = &e.featured else {
        if e.trials.is_empty() {
            return html! { "no trial finished." };
        }
        return html! {
            (e.anomalous()) " of " (n) " trials went wrong; the run kept none of their histories (--keep-histories), \
             so only their counts are shown."
        };
    };
    let c = &f.trial.check;
    match c.anomalies.first() {
        None if c.verdict == Verdict::Safe => html! {
            "no anomaly in " (if n == 1 { "its one trial".to_string() } else { format!("any of its {n} trials") }) ": "
            (format::plural(c.sold, "ticket", "tickets")) " sold in trial " (f.trial.trial) ", each once, and the stock agreed with the sales"
            @if c.indeterminate > 0 { " (" (format::plural(c.indeterminate, "purchase", "purchases")) " indeterminate: their process died inside them)" }
            "."
        },
        None => html! {
            "trial " (f.trial.trial) " was judged " (<&str>::from(c.verdict)) "."
        },
        Some(a) => {
            let more = c.anomalies.len();
            html! {
                "in trial " (f.trial.trial) ", " (a.text) "."
                span.more {
                    " " (e.anomalous()) " of " (n) " trials went wrong"
                    @if c.oversold > 0 { "; this one oversold " (format::plural(c.oversold, "ticket", "tickets")) }
                    @if c.lost_acknowledged > 0 && a.kind != crate::checker::AnomalyKind::LostAcknowledged {
                        "; the store's record of sales lost " (format::plural(c.lost_acknowledged, "sale", "sales")) " its buyers were told of"
                    }
                    @if more > 1 { " and had " (if more >= crate::checker::MAX_ANOMALIES { format!("at least {more}") } else { more.to_string() }) " anomalies" }
                    "."
                }
            }
        }
    }
}

fn latency_table(evidence: &[Evidence]) -> Markup {
    html! {
        table.summary {
            thead { tr { th { "strategy" } th { "purchases" } th { "p50" } th { "p90" } th { "p99" } th { "max" } } }
            tbody {
                @for e in evidence {
                    @let q = |p: f64| e.latency.quantile_us(p).map_or("–".to_string(), format::micros);
                    tr {
                        td { (strategy_tag(e.strategy)) }
                        td { (format::count(e.latency.total())) }
                        td { (q(0.5)) } td { (q(0.9)) } td { (q(0.99)) } td { (q(1.0)) }
                    }
                    // An open loop's latency counts from the planned send time; beside it,
                    // the service time from the send, of the trial whose p99 was the worst.
                    @if let Some(s) = e
                        .trials
                        .iter()
                        .filter_map(|t| t.speed.service_time.as_ref())
                        .max_by(|a, b| a.p99_us.total_cmp(&b.p99_us))
                    {
                        tr {
                            td { "↳ service time, from the send" }
                            td { "worst trial" }
                            td { (format::micros(s.p50_us)) } td { (format::micros(s.p90_us)) }
                            td { (format::micros(s.p99_us)) } td { (format::micros(s.max_us)) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) const CSS: &str = r#"
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1120px;margin:0 auto;padding:1.5em;background:#fff}
h1{margin:.2em 0;font-size:1.9em}h2{margin-top:2em;border-bottom:2px solid #eee;padding-bottom:.2em}h3{margin:1.6em 0 .4em;font-size:1.1em}
.description{font-size:1.15em;margin:.2em 0}.setup{color:#555}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;color:#444;font-size:.92em}dl.meta dt{font-weight:600}dl.meta dd{margin:0}
.verdicts{display:flex;flex-wrap:wrap;gap:.6em 1.6em;margin:1em 0}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 .5em;margin-left:.35em;font-size:.88em;font-weight:600}.badge.none{background:#888}
.strategy{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace;border-left:5px solid;padding-left:.35em}
table.summary{border-collapse:collapse;margin:.8em 0;font-size:.92em}table.summary th,table.summary td{padding:.2em .8em;text-align:right;border-bottom:1px solid #eee}
table.summary th:first-child,table.summary td:first-child{text-align:left}
.warning{background:#fff3cd;border-left:4px solid #c26a00;padding:.4em .8em}
details{margin:.8em 0}summary{cursor:pointer;color:#444}ul.findings{padding-left:1.2em}ul.findings li{margin:.35em 0}.more{color:#666}
figure{margin:.8em 0}svg{max-width:100%;height:auto;display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:.5em}
.how{color:#444;background:#f7f7f7;border-left:4px solid #ccc;padding:.4em .8em;font-size:.93em}
.clean{color:#3b7d34}.note{color:#555;font-style:italic}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.4em;font-size:.9em}
.swatch{display:inline-block;width:1.6em;height:.8em;margin-right:.4em;vertical-align:middle;border-radius:2px}.swatch.outline{border:2px solid #000;box-sizing:border-box}
svg.timeline{font:11px sans-serif;background:#fff}
svg.timeline .axis{fill:#555}svg.timeline .lane-label{fill:#333}svg.timeline .grid{stroke:#e4e4e4;stroke-width:1}
svg.timeline rect.lane{fill:#f6f6f6}svg.timeline path.one{fill:#bbb}svg.timeline path.many{fill:#e15759}
svg.timeline g line{stroke-width:1;stroke-opacity:.55}
svg.timeline g.indet line{stroke-dasharray:3 2}
svg.timeline g.first rect{stroke:#000;stroke-width:1.2}
svg.timeline g:hover rect{stroke:#000;stroke-width:1.5}
svg.timeline rect.stopped{fill:#7d3c98;fill-opacity:.18}svg.timeline path.killed{stroke:#000;stroke-width:2}
.swatch.stopped{background:#7d3c98;opacity:.35}.killed{font-weight:700;margin-right:.4em}
svg.timeline g.store-killed line{stroke:#8c1c13;stroke-width:2}svg.timeline g.store-killed text{fill:#8c1c13;font-weight:600}
.swatch.store-killed{background:#8c1c13;width:3px;height:1.1em}
svg.timeline rect.cut{fill:#d68910;fill-opacity:.16}svg.timeline rect.promotion{fill:#8c1c13;fill-opacity:.12}svg.timeline rect.partition{fill:#2e86c1;fill-opacity:.16}svg.timeline rect.command{fill:#7d3c98;fill-opacity:.14}
.swatch.cut{background:#d68910;opacity:.4}.swatch.promotion{background:#8c1c13;opacity:.3}.swatch.partition{background:#2e86c1;opacity:.4}.swatch.command{background:#7d3c98;opacity:.35}
svg.timeline line.anomaly{stroke:#000;stroke-dasharray:4 3}svg.timeline text.anomaly{fill:#000;font-weight:600}
footer{margin-top:3em;color:#777;font-size:.88em;border-top:1px solid #eee;padding-top:.6em}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:0 .25em}
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::{Limits, parse};

    fn scenario(toml: &str) -> Scenario {
        parse(Path::new("t.toml"), toml, Limits::default()).expect("a valid scenario")
    }

    #[test]
    fn the_setup_reads_as_a_sentence() {
        let s = scenario("name = \"t\"\n[stock]\ninitial = 10\n[buyers]\ncount = 30\nhold_us = 2000\n");
        let text = setup(&s);
        assert!(
            text.starts_with(
                "10 tickets in a file store written by truncate; 30 buyers making 1 attempt each, holding 2 ms"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("trial per strategy.") || text.ends_with("trials per strategy."),
            "{text}"
        );

        let s = scenario("name = \"t\"\n[buyers]\ncount = [1, 2, 4]\nhold_us = [0, 200]\n[faults]\nkill_buyers = 1\n");
        let text = setup(&s);
        assert!(
            text.contains("1, 2 or 4 buyers") && text.contains("holding 0 µs or 200 µs"),
            "{text}"
        );
        assert!(text.contains("faults: 1 buyer killed"), "{text}");
    }
}
