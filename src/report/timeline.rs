//! The timeline, after Jepsen's `timeline.html`: one lane per process, one bar per purchase
//! from its read of the stock to its write, coloured by outcome, details on hover.
//!
//! Drawn as SVG markup by hand rather than with plotters, because each bar carries a
//! `<title>` (the hover text) that plotters cannot attach. maud escapes every text in it.

use maud::{Markup, html};

use super::format::{self, px};
use crate::checker::Anomaly;
use crate::history::{History, Kind, Op, Outcome};
use crate::notice::FaultKind;
use crate::results::FaultEvent;

/// Above this many purchases, the timeline shows a window of this many around the first
/// anomaly: more bars than pixels would show nothing and weigh megabytes.
pub const MAX_BARS: usize = 2000;

/// What became of a purchase, as the timeline colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Sold,
    SoldOut,
    Torn,
    Duplicate,
    Indeterminate,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Sold,
        Class::SoldOut,
        Class::Duplicate,
        Class::Torn,
        Class::Indeterminate,
    ];

    /// The CSS class that colours it (see the page's style sheet).
    pub fn css(self) -> &'static str {
        match self {
            Class::Sold => "sold",
            Class::SoldOut => "sold-out",
            Class::Torn => "torn",
            Class::Duplicate => "dup",
            Class::Indeterminate => "indet",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Class::Sold => "sold",
            Class::SoldOut => "sold out",
            Class::Torn => "torn read",
            Class::Duplicate => "duplicate ticket",
            Class::Indeterminate => "indeterminate",
        }
    }

    pub fn colour(self) -> &'static str {
        match self {
            Class::Sold => "#59a14f",
            Class::SoldOut => "#bab0ac",
            Class::Torn => "#f28e2b",
            Class::Duplicate => "#e15759",
            Class::Indeterminate => "#b07aa1",
        }
    }
}

/// Classifies every operation of a history: `None` for those that are not purchases. The
/// rules are the checker's: a value never written to the stock is a torn read, and a ticket
/// sold more than once is a duplicate for every receipt of it.
pub fn classify(history: &History, initial: i64) -> Vec<Option<Class>> {
    let purchases = || history.ops.iter().filter(|op| op.kind == Kind::Purchase);
    let mut written: Vec<i64> = std::iter::once(initial)
        .chain(purchases().filter_map(|op| op.written()))
        .collect();
    written.sort_unstable();
    written.dedup();
    let ever_written = |v: i64| written.binary_search(&v).is_ok();

    let mut sold: Vec<i64> = purchases()
        .filter(|op| op.outcome == Outcome::Sold)
        .filter_map(|op| op.value())
        .filter(|&v| ever_written(v))
        .collect();
    sold.sort_unstable();
    let mut duplicated: Vec<i64> = sold.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    duplicated.dedup();

    history
        .ops
        .iter()
        .map(|op| {
            (op.kind == Kind::Purchase).then(|| match (op.outcome, op.value()) {
                (Outcome::Unreadable, _) => Class::Torn,
                (Outcome::Sold | Outcome::SoldOut, Some(v)) if !ever_written(v) => Class::Torn,
                (Outcome::Sold, Some(v)) if duplicated.binary_search(&v).is_ok() => Class::Duplicate,
                (Outcome::Sold, _) => Class::Sold,
                (Outcome::SoldOut, _) => Class::SoldOut,
                _ => Class::Indeterminate,
            })
        })
        .collect()
}

/// One purchase as the timeline draws it; times in ns after the start gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub op: usize,
    pub class: Class,
    /// Invocation to completion (to the end of the trial, if it never completed).
    pub call: (u64, u64),
    /// Read to write: the critical section. A purchase that wrote nothing is a tick at its
    /// read; one that recorded no read spans its call.
    pub held: (u64, u64),
    /// It read and wrote the stock: `held` is a read-modify-write that others may overlap.
    pub wrote: bool,
}

/// The latest moment an operation recorded.
fn latest(op: &Op) -> u64 {
    [op.end(), op.write(), op.read()]
        .into_iter()
        .flatten()
        .fold(op.start, u64::max)
}

pub fn bars(history: &History, classes: &[Option<Class>]) -> Vec<Bar> {
    let last = history.ops.iter().map(latest).max().unwrap_or(0);
    history
        .ops
        .iter()
        .zip(classes)
        .enumerate()
        .filter_map(|(i, (op, class))| {
            let class = (*class)?;
            let done = op.end().unwrap_or(last).max(op.start);
            let (held, wrote) = match (op.read(), op.write()) {
                (Some(r), Some(w)) => ((r, w.max(r)), true),
                (Some(r), None) => ((r, r), false),
                (None, _) => ((op.start, done), false),
            };
            Some(Bar {
                op: i,
                class,
                call: (op.start, done),
                held,
                wrote,
            })
        })
        .collect()
}

/// The bars the timeline shows and the span of time it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub bars: Vec<Bar>,
    pub from: u64,
    pub to: u64,
    /// Purchases in the trial; more than `bars.len()` when this is a window.
    pub purchases: usize,
}

impl Window {
    pub fn is_partial(&self) -> bool {
        self.bars.len() < self.purchases
    }
}

/// All the bars if there are at most `max`; otherwise the `max` that read the stock nearest
/// after `anchor` (a quarter of them before it, for context), and only the time they span.
pub fn window(mut bars: Vec<Bar>, anchor: u64, max: usize) -> Window {
    let purchases = bars.len();
    bars.sort_unstable_by_key(|b| (b.held.0, b.op));
    if purchases <= max {
        let from = bars.iter().map(|b| b.call.0).min().unwrap_or(0);
        let to = bars.iter().map(|b| b.call.1).max().unwrap_or(0);
        return Window {
            bars,
            from,
            to,
            purchases,
        };
    }
    let at = bars.partition_point(|b| b.held.0 < anchor);
    let lo = at.saturating_sub(max / 4).min(purchases - max);
    let shown: Vec<Bar> = bars[lo..lo + max].to_vec();
    let from = shown.first().map_or(0, |b| b.held.0);
    let to = shown.iter().map(|b| b.held.1).max().unwrap_or(from);
    Window {
        bars: shown,
        from,
        to,
        purchases,
    }
}

/// How many read-modify-writes were open at once: (from, to, count) for every stretch of
/// time with at least one open, adjacent stretches of equal count merged. Intervals that
/// only touch do not overlap.
pub fn concurrency(intervals: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64, u32)> {
    let mut events: Vec<(u64, i32)> = Vec::new();
    for (a, b) in intervals {
        if b > a {
            events.push((a, 1));
            events.push((b, -1));
        }
    }
    events.sort_unstable(); // at one moment, closings (-1) before openings
    let mut out: Vec<(u64, u64, u32)> = Vec::new();
    let mut open: i64 = 0;
    let mut since = 0;
    for (t, delta) in events {
        if open > 0 && t > since {
            let n = open as u32;
            match out.last_mut() {
                Some(last) if last.1 == since && last.2 == n => last.1 = t,
                _ => out.push((since, t, n)),
            }
        }
        open += delta as i64;
        since = t;
    }
    out
}

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 92.0;
const RIGHT: f64 = 14.0;
const STRIP_TOP: f64 = 18.0;
const STRIP_H: f64 = 30.0;
const LANES_TOP: f64 = 62.0;
const LANES_MAX_H: f64 = 760.0;

/// The timeline of one trial, with a note when it shows only a window of it.
pub fn render(history: &History, initial: i64, anomalies: &[Anomaly], faults: &[FaultEvent]) -> Markup {
    let classes = classify(history, initial);
    let first = anomalies.first();
    let window = window(bars(history, &classes), first.map_or(0, |a| a.at_ns), MAX_BARS);
    if window.bars.is_empty() {
        return html! { p.note { "This trial recorded no purchase." } };
    }
    let (from, to) = (window.from, window.to.max(window.from + 1));
    let x = |t: u64| LEFT + (t.clamp(from, to) - from) as f64 / (to - from) as f64 * (WIDTH - LEFT - RIGHT);

    // One lane per process that made a purchase in the window, in role and index order.
    let mut lane_of: Vec<Option<usize>> = vec![None; history.workers.len()];
    let mut workers: Vec<usize> = window
        .bars
        .iter()
        .map(|b| history.ops[b.op].worker as usize)
        .filter(|&w| w < history.workers.len())
        .collect();
    workers.sort_unstable_by_key(|&w| (history.workers[w].role, history.workers[w].index, w));
    workers.dedup();
    for (lane, &w) in workers.iter().enumerate() {
        lane_of[w] = Some(lane);
    }
    let lanes = workers.len().max(1);
    let lane_h = (LANES_MAX_H / lanes as f64).clamp(3.0, 16.0);
    let label_every = (9.0 / lane_h).ceil().max(1.0) as usize;
    let axis_y = LANES_TOP + lanes as f64 * lane_h + 6.0;
    let height = axis_y + 30.0;

    let mut first_ops: Vec<usize> = first.map_or_else(Vec::new, |a| a.ops.clone());
    first_ops.sort_unstable();
    // The faults inside the window, each on its process's lane (all lanes if it has none).
    let fault_lane = |f: &FaultEvent| workers.iter().position(|&w| history.workers[w].label() == f.process);
    let faults: Vec<(&FaultEvent, Option<usize>)> = faults
        .iter()
        .filter(|f| f.at_ns <= to && f.until_ns.unwrap_or(to) >= from)
        .map(|f| (f, fault_lane(f)))
        .collect();
    let span_of = |lane: Option<usize>| match lane {
        Some(l) => (LANES_TOP + l as f64 * lane_h, lane_h),
        None => (LANES_TOP, lanes as f64 * lane_h),
    };
    let open = concurrency(window.bars.iter().filter(|b| b.wrote).map(|b| b.held));
    let most = open.iter().map(|o| o.2).max().unwrap_or(0);
    let (lo_ms, hi_ms) = (from as f64 / 1e6, to as f64 / 1e6);
    let ticks = format::ticks(lo_ms, hi_ms, 8);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        hi_ms - lo_ms
    };
    let x_ms = |ms: f64| LEFT + (ms - lo_ms) / (hi_ms - lo_ms).max(1e-9) * (WIDTH - LEFT - RIGHT);

    html! {
        @if window.is_partial() {
            p.note {
                "This trial made " (format::count(window.purchases as u64)) " purchases, too many to draw one by one: the timeline shows the "
                (format::count(window.bars.len() as u64)) " that read the stock from " (format::ms(from)) " to " (format::ms(window.bars.last().map_or(to, |b| b.held.0)))
                @if let Some(a) = first { ", around the first anomaly at " (format::ms(a.at_ns)) } @else { ", from the start of the sale" }
                "."
            }
        }
        svg.timeline viewBox=(format!("0 0 {} {}", px(WIDTH), px(height))) role="img"
            aria-label="timeline: one lane per process, one bar per purchase" {
            // The strip on top: read-modify-writes open at once.
            text.axis x=(px(LEFT - 6.0)) y=(px(STRIP_TOP + STRIP_H / 2.0 + 4.0)) text-anchor="end" { "at once" }
            line.grid x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(STRIP_TOP + STRIP_H)) y2=(px(STRIP_TOP + STRIP_H)) {}
            text.axis x=(px(LEFT)) y=(px(STRIP_TOP - 5.0)) {
                "read-modify-writes open at once: at most " (most)
                @if most > 1 { " (red: they overlap, so they raced)" } @else if most == 1 { " (never overlapping)" }
            }
            @for (class, d) in strip(&open, most, x) {
                path class=(class) d=(d) {
                    title { "read-modify-writes open at once (" (if class == "many" { "more than one" } else { "one" }) "); at most " (most) }
                }
            }
            // The lanes.
            @for (lane, &w) in workers.iter().enumerate() {
                @let y = LANES_TOP + lane as f64 * lane_h;
                @if lane % 2 == 1 {
                    rect.lane x=(px(LEFT)) y=(px(y)) width=(px(WIDTH - LEFT - RIGHT)) height=(px(lane_h)) {}
                }
                @if lane % label_every == 0 {
                    text.lane-label x=(px(LEFT - 6.0)) y=(px(y + lane_h / 2.0 + 3.5)) text-anchor="end" { (history.workers[w].label()) }
                }
            }
            @for (f, lane) in faults.iter().filter(|(f, _)| f.kind == FaultKind::Stop) {
                @let (y, h) = span_of(*lane);
                @let (x0, x1) = (x(f.at_ns), x(f.until_ns.unwrap_or(to)));
                rect.stopped x=(px(x0)) y=(px(y)) width=(px((x1 - x0).max(1.5))) height=(px(h)) {
                    title {
                        (f.process) " stopped (SIGSTOP) at " (format::ms(f.at_ns))
                        @if let Some(u) = f.until_ns { ", resumed at " (format::ms(u)) } @else { ", never resumed" }
                    }
                }
            }
            @for tick in &ticks {
                line.grid x1=(px(x_ms(*tick))) x2=(px(x_ms(*tick))) y1=(px(LANES_TOP)) y2=(px(axis_y)) {}
                text.axis x=(px(x_ms(*tick))) y=(px(axis_y + 14.0)) text-anchor="middle" { (format::tick_label(*tick, step)) }
            }
            text.axis x=(px(WIDTH - RIGHT)) y=(px(axis_y + 27.0)) text-anchor="end" { "ms after the sale opened" }
            @for bar in &window.bars {
                @let op = &history.ops[bar.op];
                @if let Some(lane) = history.workers.get(op.worker as usize).and(lane_of.get(op.worker as usize).copied().flatten()) {
                    @let y = LANES_TOP + lane as f64 * lane_h;
                    @let mid = y + lane_h / 2.0;
                    @let (x0, x1) = (x(bar.held.0), x(bar.held.1));
                    g class=(if first_ops.binary_search(&bar.op).is_ok() { format!("{} first", bar.class.css()) } else { bar.class.css().to_string() }) {
                        title { (hover(history, op, bar.class)) }
                        line x1=(px(x(bar.call.0))) x2=(px(x(bar.call.1))) y1=(px(mid)) y2=(px(mid)) {}
                        rect x=(px(x0)) y=(px(y + lane_h * 0.15)) width=(px((x1 - x0).max(1.5))) height=(px(lane_h * 0.7)) {}
                    }
                }
            }
            @for (f, lane) in faults.iter().filter(|(f, _)| f.kind == FaultKind::Kill) {
                @let (y, h) = span_of(*lane);
                @let (cx, cy, r) = (x(f.at_ns), y + h / 2.0, (h / 2.0).clamp(2.5, 6.0));
                path.killed d=(format!("M{} {}L{} {}M{} {}L{} {}", px(cx - r), px(cy - r), px(cx + r), px(cy + r), px(cx - r), px(cy + r), px(cx + r), px(cy - r))) {
                    title { (f.process) " killed (SIGKILL) at " (format::ms(f.at_ns)) }
                }
            }
            @if let Some(a) = first.filter(|a| (from..=to).contains(&a.at_ns)) {
                line.anomaly x1=(px(x(a.at_ns))) x2=(px(x(a.at_ns))) y1=(px(STRIP_TOP)) y2=(px(axis_y)) {}
                text.anomaly x=(px(x(a.at_ns) + 3.0)) y=(px(LANES_TOP - 4.0)) { "first anomaly" }
            }
        }
    }
}

/// The strip's shapes as SVG paths: one for the stretches with a single read-modify-write
/// open, one for those with several. One path each rather than a rectangle per stretch:
/// fewer bytes, and no hairline seams between neighbours.
fn strip(open: &[(u64, u64, u32)], most: u32, x: impl Fn(u64) -> f64) -> Vec<(&'static str, String)> {
    let bottom = STRIP_TOP + STRIP_H;
    let mut one = String::new();
    let mut many = String::new();
    for &(a, b, n) in open {
        let top = bottom - STRIP_H * n as f64 / most.max(1) as f64;
        let (x0, x1) = (x(a), x(b).max(x(a) + 0.5));
        let d = if n > 1 { &mut many } else { &mut one };
        d.push_str(&format!(
            "M{} {}V{}H{}V{}Z",
            px(x0),
            px(bottom),
            px(top),
            px(x1),
            px(bottom)
        ));
    }
    [("one", one), ("many", many)]
        .into_iter()
        .filter(|(_, d)| !d.is_empty())
        .collect()
}

/// The hover text of one purchase.
fn hover(history: &History, op: &Op, class: Class) -> String {
    let who = history
        .workers
        .get(op.worker as usize)
        .map_or_else(|| format!("process #{}", op.worker), |w| w.label());
    let what = match (class, op.value()) {
        (Class::Sold, Some(v)) => format!("sold ticket {v}"),
        (Class::Duplicate, Some(v)) => format!("sold ticket {v}, which was sold more than once"),
        (Class::Sold | Class::Duplicate, None) => "sold".to_string(),
        (Class::SoldOut, Some(v)) => format!("read {v}: sold out"),
        (Class::SoldOut, None) => "sold out".to_string(),
        (Class::Torn, Some(v)) => format!("torn read: {v}, a number never written to the stock"),
        (Class::Torn, None) => "torn read: the stock file was empty or unparseable".to_string(),
        (Class::Indeterminate, Some(v)) => {
            format!("indeterminate: read {v}, then its process died or was ended before it completed")
        }
        (Class::Indeterminate, None) => "indeterminate: its process died or was ended before it completed".to_string(),
    };
    let mut times = vec![format!("invoked {}", format::ms(op.start))];
    if let Some(t) = op.read() {
        times.push(format!("read {}", format::ms(t)));
    }
    if let (Some(t), Some(v)) = (op.write(), op.written()) {
        times.push(format!("wrote {v} at {}", format::ms(t)));
    }
    if let Some(t) = op.end() {
        times.push(format!("done {}", format::ms(t)));
    }
    format!("{who}: {what} ({})", times.join(", "))
}

/// The colour key, as HTML.
pub fn legend(faults: bool) -> Markup {
    html! {
        ul.legend {
            @for c in Class::ALL {
                li { span.swatch style=(format!("background:{}", c.colour())) {} (c.label()) }
            }
            li { span.swatch.outline {} "the first anomaly's purchases" }
            @if faults {
                li { span.swatch.stopped {} "process stopped (SIGSTOP)" }
                li { span.killed { "✕" } "process killed (SIGKILL)" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Role, Worker};

    const US: u64 = 1_000;

    fn buyers(n: u32) -> Vec<Worker> {
        (0..n)
            .map(|i| Worker {
                role: Role::Buyer,
                index: i,
                pid: 100 + i,
                ready_ns: -1,
                finish_ns: Some(1_000_000),
            })
            .collect()
    }

    fn purchase(worker: u32, read: u64, write: u64, value: i64, outcome: Outcome) -> Op {
        let sold = outcome == Outcome::Sold;
        Op::new(worker, Kind::Purchase, outcome, read.saturating_sub(US))
            .with_read(Some(read))
            .with_write(sold.then_some(write))
            .with_end(Some(write + US))
            .with_value(Some(value))
            .with_written(sold.then_some(value - 1))
    }

    #[test]
    fn purchases_are_classified_as_the_checker_counts_them() {
        let mut ops = vec![
            purchase(0, 10 * US, 20 * US, 3, Outcome::Sold),
            purchase(1, 11 * US, 21 * US, 3, Outcome::Sold), // ticket 3 again
            purchase(2, 30 * US, 40 * US, 2, Outcome::Sold),
            purchase(0, 50 * US, 51 * US, 1, Outcome::SoldOut),
            purchase(1, 60 * US, 61 * US, 90, Outcome::Sold), // never written: torn
        ];
        ops.push(purchase(2, 70 * US, 71 * US, 0, Outcome::Unreadable));
        ops.push(purchase(0, 80 * US, 81 * US, 1, Outcome::Pending).with_end(None));
        let mut put = purchase(2, 90 * US, 91 * US, 1, Outcome::Sold);
        put.kind = Kind::Put;
        ops.push(put);
        // Written values: 3 (initial), 2, 1 and 89 (by the torn one).
        let h = History {
            workers: buyers(3),
            ops,
        };
        let classes = classify(&h, 3);
        assert_eq!(
            classes,
            [
                Some(Class::Duplicate),
                Some(Class::Duplicate),
                Some(Class::Sold),
                Some(Class::SoldOut),
                Some(Class::Torn),
                Some(Class::Torn),
                Some(Class::Indeterminate),
                None,
            ]
        );
        // A sold-out read of a number never written is torn too, as the checker says.
        let mut h = h;
        h.ops[3] = h.ops[3].with_value(Some(0));
        assert_eq!(classify(&h, 3)[3], Some(Class::Torn));
    }

    #[test]
    fn bars_run_from_read_to_write_and_fall_back_to_the_call() {
        let pending = purchase(0, 80 * US, 81 * US, 1, Outcome::Pending)
            .with_end(None)
            .with_write(None);
        let no_read = purchase(1, 10 * US, 20 * US, 5, Outcome::Sold)
            .with_read(None)
            .with_write(None);
        let sold = purchase(2, 10 * US, 20 * US, 5, Outcome::Sold);
        let h = History {
            workers: buyers(3),
            ops: vec![pending, no_read, sold],
        };
        let classes = vec![Some(Class::Indeterminate), Some(Class::Sold), Some(Class::Sold)];
        let b = bars(&h, &classes);
        // The pending one runs to the trial's last recorded moment: its own read.
        assert_eq!(
            (b[0].call, b[0].held, b[0].wrote),
            ((79 * US, 80 * US), (80 * US, 80 * US), false)
        );
        assert_eq!(b[1].held, (9 * US, 21 * US));
        assert_eq!((b[2].held, b[2].wrote), ((10 * US, 20 * US), true));
    }

    #[test]
    fn a_long_history_is_windowed_around_the_anchor() {
        let bar = |i: usize| Bar {
            op: i,
            class: Class::Sold,
            call: (i as u64 * 10, i as u64 * 10 + 5),
            held: (i as u64 * 10 + 1, i as u64 * 10 + 4),
            wrote: true,
        };
        let all: Vec<Bar> = (0..100).rev().map(bar).collect();
        let w = window(all.clone(), 0, 200);
        assert!(!w.is_partial());
        assert_eq!((w.from, w.to, w.bars[0].op), (0, 995, 0));

        let w = window(all.clone(), 500, 20);
        assert!(w.is_partial());
        assert_eq!(w.bars.len(), 20);
        assert_eq!(w.bars[0].op, 45, "a quarter before the anchor");
        assert_eq!((w.from, w.to), (451, 644));

        let w = window(all.clone(), 10_000, 20);
        assert_eq!(w.bars[0].op, 80, "at the end: the last ones");
        let w = window(all, 0, 20);
        assert_eq!(w.bars[0].op, 0);
        assert!(window(Vec::new(), 0, 20).bars.is_empty());
    }

    #[test]
    fn concurrency_counts_overlaps_not_touches() {
        assert_eq!(concurrency([(0, 10), (10, 20)].into_iter()), [(0, 20, 1)]);
        assert_eq!(
            concurrency([(0, 10), (5, 20), (6, 8)].into_iter()),
            [(0, 5, 1), (5, 6, 2), (6, 8, 3), (8, 10, 2), (10, 20, 1)]
        );
        assert_eq!(
            concurrency([(0, 10), (30, 40), (5, 5)].into_iter()),
            [(0, 10, 1), (30, 40, 1)]
        );
        assert!(concurrency(std::iter::empty()).is_empty());
    }

    #[test]
    fn the_drawing_has_a_titled_bar_per_purchase() {
        let ops: Vec<Op> = (0..5)
            .map(|i| purchase(i, (10 + i as u64) * US, (30 + i as u64) * US, 5, Outcome::Sold))
            .collect();
        let h = History {
            workers: buyers(5),
            ops,
        };
        let svg = render(&h, 5, &[], &[]).into_string();
        assert_eq!(svg.matches("<g class=\"dup\">").count(), 5, "{svg}");
        assert_eq!(svg.matches("<title>buyer").count(), 5);
        assert!(svg.contains("at most 5"));
        assert!(!svg.contains("too many to draw"));
        assert!(
            render(&History::default(), 5, &[], &[])
                .into_string()
                .contains("no purchase")
        );
    }

    #[test]
    fn faults_are_drawn_on_their_process_lane() {
        let ops: Vec<Op> = (0..3)
            .map(|i| {
                purchase(
                    i,
                    (10 + i as u64) * US,
                    (30 + i as u64) * US,
                    5 - i as i64,
                    Outcome::Sold,
                )
            })
            .collect();
        let h = History {
            workers: buyers(3),
            ops,
        };
        let faults = [
            FaultEvent {
                kind: FaultKind::Stop,
                process: "buyer 1".into(),
                at_ns: 12 * US,
                until_ns: Some(25 * US),
            },
            FaultEvent {
                kind: FaultKind::Kill,
                process: "seller 0".into(),
                at_ns: 20 * US,
                until_ns: None,
            },
            FaultEvent {
                kind: FaultKind::Kill,
                process: "buyer 2".into(),
                at_ns: 900 * US, // after the window: not drawn
                until_ns: None,
            },
        ];
        let svg = render(&h, 5, &[], &faults).into_string();
        assert!(
            svg.contains("buyer 1 stopped (SIGSTOP) at 0.012 ms, resumed at 0.025 ms"),
            "{svg}"
        );
        assert!(svg.contains("seller 0 killed (SIGKILL) at 0.020 ms"));
        assert!(!svg.contains("buyer 2 killed"));
    }
}
