//! The timeline, after Jepsen's `timeline.html`: one lane per process, one bar per purchase
//! from its read of the stock to its write, coloured by outcome, details on hover.
//!
//! Drawn as SVG markup by hand rather than with plotters, because each bar carries a
//! `<title>` (the hover text) that plotters cannot attach. maud escapes every text in it.

use maud::{Markup, html};

use super::format::{self, px};
use crate::checker::{Anomaly, Judged, Judgement, Told};
use crate::history::{History, Op, Outcome};
use crate::plan::notice::FaultKind;
use crate::results::FaultEvent;

pub use super::faults::fault_title;

/// Above this many purchases, the timeline shows a window of this many around the first
/// anomaly: more bars than pixels would show nothing and weigh megabytes.
pub const MAX_BARS: usize = 2000;

/// What a purchase's process was told, as the timeline colours it: (told, CSS class, label,
/// colour).
pub const TOLD: [(Told, &str, &str, &str); 5] = [
    (Told::Sold, "sold", "sold", "#59a14f"),
    (Told::SoldOut, "sold-out", "sold out", "#bab0ac"),
    (Told::Unreadable, "unreadable", "unreadable", "#edc948"),
    (Told::Failed, "failed", "failed (fenced or gave up)", "#4e79a7"),
    (Told::Indeterminate, "indet", "indeterminate", "#b07aa1"),
];

/// What the checker found in a purchase, drawn over its colour: (CSS class, label, colour).
/// A purchase may carry several; the last one listed wins the fill.
pub const MARKS: [(&str, &str, &str); 5] = [
    ("torn", "torn read", "#f28e2b"),
    ("phantom", "phantom stock", "#76b7b2"),
    ("order", "order violation", "#9c755f"),
    ("lost", "acknowledged, then lost by the store", "#1b1b1b"),
    ("dup", "duplicate ticket", "#e15759"),
];

/// What the checker found in a purchase, in the order of [`MARKS`].
fn found(j: Judgement) -> [bool; MARKS.len()] {
    [
        j.torn(),
        j.phantom(),
        j.order_violation(),
        j.lost_acknowledged(),
        j.duplicate(),
    ]
}

/// The CSS classes of a purchase the checker judged: what it was told, then what it found.
pub fn css(j: Judgement) -> String {
    let mut classes = String::from(TOLD.iter().find(|t| Some(t.0) == j.told()).map_or("other", |t| t.1));
    for (mark, on) in MARKS.iter().zip(found(j)) {
        if on {
            classes.push(' ');
            classes.push_str(mark.0);
        }
    }
    classes
}

/// One purchase as the timeline draws it; times in ns after the start gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Index into `History::ops`.
    pub op: usize,
    /// The checker's judgement of it.
    pub class: Judgement,
    /// Invocation to completion (to the end of the trial, if it never completed).
    pub call: (u64, u64),
    /// Read to write: the critical section. A purchase that wrote nothing is a tick at its
    /// read; one that recorded no read spans its call.
    pub held: (u64, u64),
    /// It read and wrote the stock: `held` is a read-modify-write that others may overlap.
    pub wrote: bool,
}

/// A bar for every purchase of the history, as the checker judged it.
pub fn bars(history: &History, judged: &Judged) -> Vec<Bar> {
    let last = history.ops.iter().map(Op::latest).max().unwrap_or(0);
    history
        .ops
        .iter()
        .zip(&judged.ops)
        .enumerate()
        .filter(|(_, (_, j))| j.told().is_some())
        .map(|(i, (op, &class))| {
            let done = op.end().unwrap_or(last).max(op.start);
            let (held, wrote) = match (op.read(), op.write()) {
                (Some(r), Some(w)) => ((r, w.max(r)), true),
                (Some(r), None) => ((r, r), false),
                (None, _) => ((op.start, done), false),
            };
            Bar {
                op: i,
                class,
                call: (op.start, done),
                held,
                wrote,
            }
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

/// Up to this many processes, a lane each. The lanes share [`LANES_MAX_H`]: at 128 a lane is
/// 5.9 px high, bars 4 px thick and every other lane labelled, still told apart; the
/// lesson's hundred processes (its `Manager` example, the shipped scenarios) keep a lane
/// each. Past it, a lane each would fall to a 3 px floor, labels would skip two lanes in
/// three, and at 1,000 buyers the four timelines would be 3,000 px high each and weigh 1.4 MB.
pub const MAX_LANES: usize = 128;

/// Past [`MAX_LANES`] processes, lanes stand for bands of processes, at most this many: at 64
/// a lane is 11.9 px high, the least that labels every lane (11 px text) and leaves a cell
/// room to stack its outcomes.
pub const MAX_BANDS: usize = 64;

/// The width of a bucket of time in an aggregated lane, px: wide enough to hover, and few
/// enough (99 across) that a trial has at most about 64 × 99 cells, however many purchases.
const CELL_W: f64 = 10.0;

/// The least height of an outcome in an aggregated cell, px: a lone duplicate ticket among
/// many sales stays visible.
const MIN_STACK: f64 = 1.5;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 112.0;
const RIGHT: f64 = 14.0;
const STRIP_TOP: f64 = 18.0;
const STRIP_H: f64 = 30.0;
const LANES_TOP: f64 = 62.0;
const LANES_MAX_H: f64 = 760.0;

/// The lanes of a timeline: one per process that made a purchase, in role and index order;
/// past [`MAX_LANES`] processes, one per band of consecutive processes of a role, at most
/// [`MAX_BANDS`] bands (and one more per other role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lanes {
    /// The processes (indices into `History::workers`) each lane stands for.
    pub members: Vec<Vec<usize>>,
    /// Processes per lane: 1, or the band of aggregated lanes (a role's last may hold fewer).
    pub band: usize,
    /// The processes with a purchase.
    pub processes: usize,
    /// The lane of each process, by its index in `History::workers`.
    lane_of: Vec<Option<usize>>,
}

impl Lanes {
    /// The lanes of the processes that made the purchases `bars`.
    pub fn new(history: &History, bars: &[Bar]) -> Lanes {
        let workers = &history.workers;
        let mut drawn: Vec<usize> = bars
            .iter()
            .map(|b| history.ops[b.op].worker as usize)
            .filter(|&w| w < workers.len())
            .collect();
        drawn.sort_unstable_by_key(|&w| (workers[w].role, workers[w].index, w));
        drawn.dedup();
        let band = match drawn.len() {
            n if n > MAX_LANES => n.div_ceil(MAX_BANDS),
            _ => 1,
        };
        let members: Vec<Vec<usize>> = drawn
            .chunk_by(|a, b| workers[*a].role == workers[*b].role)
            .flat_map(|role| role.chunks(band))
            .map(<[usize]>::to_vec)
            .collect();
        let mut lane_of = vec![None; workers.len()];
        for (lane, members) in members.iter().enumerate() {
            for &w in members {
                lane_of[w] = Some(lane);
            }
        }
        Lanes {
            members,
            band,
            processes: drawn.len(),
            lane_of,
        }
    }

    /// A lane stands for several processes.
    pub fn aggregated(&self) -> bool {
        self.band > 1
    }

    /// The lane of a process, by its index in `History::workers`.
    pub fn of_worker(&self, worker: u32) -> Option<usize> {
        self.lane_of.get(worker as usize).copied().flatten()
    }

    /// The lane of the process a fault names ("buyer 3"), if it has one.
    fn of_process(&self, history: &History, process: &str) -> Option<usize> {
        let worker = history.workers.iter().position(|w| w.label() == process)?;
        self.of_worker(worker as u32)
    }

    /// A lane's label: its process ("buyer 3"), or its band ("buyers 16–31").
    pub fn label(&self, history: &History, lane: usize) -> String {
        let workers = &history.workers;
        match self.members[lane].as_slice() {
            [one] => workers[*one].label(),
            [first, .., last] => format!(
                "{}s {}–{}",
                workers[*first].role.name(),
                workers[*first].index,
                workers[*last].index
            ),
            [] => String::new(),
        }
    }
}

/// Where the drawing puts a moment and a lane.
struct Frame {
    from: u64,
    to: u64,
    lanes: usize,
    lane_h: f64,
}

impl Frame {
    fn new(from: u64, to: u64, lanes: usize) -> Frame {
        let lanes = lanes.max(1);
        Frame {
            from,
            to: to.max(from + 1),
            lanes,
            lane_h: (LANES_MAX_H / lanes as f64).clamp(3.0, 16.0),
        }
    }

    fn x(&self, t: u64) -> f64 {
        LEFT + (t.clamp(self.from, self.to) - self.from) as f64 / (self.to - self.from) as f64 * (WIDTH - LEFT - RIGHT)
    }

    fn lane_y(&self, lane: usize) -> f64 {
        LANES_TOP + lane as f64 * self.lane_h
    }

    /// The top of the time axis, below the last lane.
    fn axis_y(&self) -> f64 {
        self.lane_y(self.lanes) + 6.0
    }

    /// The top and height of a lane, or of them all.
    fn span(&self, lane: Option<usize>) -> (f64, f64) {
        match lane {
            Some(l) => (self.lane_y(l), self.lane_h),
            None => (LANES_TOP, self.lanes as f64 * self.lane_h),
        }
    }
}

/// The timeline of one trial, with a note when it shows only a window of it, and one when
/// its lanes stand for bands of processes.
pub fn render(history: &History, judged: &Judged, anomalies: &[Anomaly], faults: &[FaultEvent]) -> Markup {
    let first = anomalies.first();
    let all = bars(history, judged);
    // Lanes for every process of the trial, so that a band is the same whatever the window.
    let lanes = Lanes::new(history, &all);
    // A failover turns on the primary's kill: the sales lost just before it, the promotion
    // and the resales after. Elsewhere the story starts at the first anomaly.
    let anchor = match faults.iter().find(|f| f.kind == FaultKind::KillPrimary) {
        Some(kill) => Some(("the primary's kill", kill.at_ns)),
        None => first.map(|a| ("the first anomaly", a.at_ns)),
    };
    let window = window(all, anchor.map_or(0, |a| a.1), MAX_BARS);
    if window.bars.is_empty() {
        return html! { p.note { "This trial recorded no purchase." } };
    }
    let frame = Frame::new(window.from, window.to, lanes.members.len());
    let (from, to) = (frame.from, frame.to);
    let x = |t: u64| frame.x(t);
    let label_every = (9.0 / frame.lane_h).ceil().max(1.0) as usize;
    let axis_y = frame.axis_y();
    let height = axis_y + 30.0;

    let mut first_ops: Vec<usize> = first.map_or_else(Vec::new, |a| a.ops.clone());
    first_ops.sort_unstable();
    // The faults inside the window, each on its process's lane (all lanes if it has none).
    let faults: Vec<(&FaultEvent, Option<usize>)> = faults
        .iter()
        .filter(|f| f.at_ns <= to && f.until_ns.unwrap_or(to) >= from)
        .map(|f| (f, lanes.of_process(history, &f.process)))
        .collect();
    let open = concurrency(window.bars.iter().filter(|b| b.wrote).map(|b| b.held));
    let (lo_ms, hi_ms) = (from as f64 / 1e6, to as f64 / 1e6);
    let ticks = format::ticks(lo_ms, hi_ms, 8);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        hi_ms - lo_ms
    };
    let x_ms = |ms: f64| LEFT + (ms - lo_ms) / (hi_ms - lo_ms).max(1e-9) * (WIDTH - LEFT - RIGHT);
    let buckets = ((WIDTH - LEFT - RIGHT) / CELL_W).round() as usize;

    html! {
        @if window.is_partial() {
            (window_note(&window, anchor, (from, to)))
        }
        @if lanes.aggregated() {
            (aggregated_note(&lanes, (to - from) / buckets as u64))
        }
        svg.timeline viewBox=(format!("0 0 {} {}", px(WIDTH), px(height))) role="img"
            aria-label=(if lanes.aggregated() {
                format!("timeline: one lane per {} processes, their purchases counted per bucket of time", lanes.band)
            } else {
                "timeline: one lane per process, one bar per purchase".to_string()
            }) {
            (strip_drawn(&open, &frame))
            // The lanes.
            @for lane in 0..lanes.members.len() {
                @let y = frame.lane_y(lane);
                @if lane % 2 == 1 {
                    rect.lane x=(px(LEFT)) y=(px(y)) width=(px(WIDTH - LEFT - RIGHT)) height=(px(frame.lane_h)) {}
                }
                @if lane % label_every == 0 {
                    text.lane-label x=(px(LEFT - 6.0)) y=(px(y + frame.lane_h / 2.0 + 3.5)) text-anchor="end" { (lanes.label(history, lane)) }
                }
            }
            // The faults of the store's servers and links: bands across every lane.
            (super::faults::bands_drawn(&faults, |t| frame.x(t), (from, to), (LANES_TOP, axis_y)))
            @for (f, lane) in faults.iter().filter(|(f, _)| f.kind == FaultKind::Stop) {
                @let (y, h) = frame.span(*lane);
                @let (x0, x1) = (x(f.at_ns), x(f.until_ns.unwrap_or(to)));
                rect.stopped x=(px(x0)) y=(px(y)) width=(px((x1 - x0).max(1.5))) height=(px(h)) {
                    title { (fault_title(f)) }
                }
            }
            @for tick in &ticks {
                line.grid x1=(px(x_ms(*tick))) x2=(px(x_ms(*tick))) y1=(px(LANES_TOP)) y2=(px(axis_y)) {}
                text.axis x=(px(x_ms(*tick))) y=(px(axis_y + 14.0)) text-anchor="middle" { (format::tick_label(*tick, step)) }
            }
            text.axis x=(px(WIDTH - RIGHT)) y=(px(axis_y + 27.0)) text-anchor="end" { "ms after the sale opened" }
            @if lanes.aggregated() {
                (cells_drawn(history, &lanes, &frame, &cells(history, &window.bars, &lanes, (from, to), buckets, &first_ops), buckets))
            } @else {
                (bars_drawn(history, &window.bars, &lanes, &frame, &first_ops))
            }
            (kills_drawn(&faults, &frame))
            @if let Some(a) = first.filter(|a| (from..=to).contains(&a.at_ns)) {
                line.anomaly x1=(px(x(a.at_ns))) x2=(px(x(a.at_ns))) y1=(px(STRIP_TOP)) y2=(px(axis_y)) {}
                text.anomaly x=(px(x(a.at_ns) + 3.0)) y=(px(LANES_TOP - 4.0)) { "first anomaly" }
            }
        }
    }
}

/// Which part of the trial a timeline that shows only a window of it draws: `from` to `to`.
fn window_note(window: &Window, anchor: Option<(&str, u64)>, (from, to): (u64, u64)) -> Markup {
    html! {
        p.note {
            "This trial made " (format::count(window.purchases as u64)) " purchases, too many to draw one by one: the timeline shows the "
            (format::count(window.bars.len() as u64)) " that read the stock from " (format::ms(from)) " to " (format::ms(window.bars.last().map_or(to, |b| b.held.0)))
            @if let Some((what, at)) = anchor { ", around " (what) " at " (format::ms(at)) } @else { ", from the start of the sale" }
            "."
        }
    }
}

/// The strip on top: how many read-modify-writes were open at once (`open`, as
/// [`concurrency`] gives them), red where more than one.
fn strip_drawn(open: &[(u64, u64, u32)], frame: &Frame) -> Markup {
    let most = open.iter().map(|o| o.2).max().unwrap_or(0);
    html! {
        text.axis x=(px(LEFT - 6.0)) y=(px(STRIP_TOP + STRIP_H / 2.0 + 4.0)) text-anchor="end" { "at once" }
        line.grid x1=(px(LEFT)) x2=(px(WIDTH - RIGHT)) y1=(px(STRIP_TOP + STRIP_H)) y2=(px(STRIP_TOP + STRIP_H)) {}
        text.axis x=(px(LEFT)) y=(px(STRIP_TOP - 5.0)) {
            "read-modify-writes open at once: at most " (most)
            @if most > 1 { " (red: they overlap, so they raced)" } @else if most == 1 { " (never overlapping)" }
        }
        @for (class, d) in strip(open, most, |t| frame.x(t)) {
            path class=(class) d=(d) {
                title { "read-modify-writes open at once (" (if class == "many" { "more than one" } else { "one" }) "); at most " (most) }
            }
        }
    }
}

/// A bar per purchase on its process's lane: the call as a line, the read-modify-write as a
/// box; those of the first anomaly (`first_ops`, sorted) marked.
fn bars_drawn(history: &History, bars: &[Bar], lanes: &Lanes, frame: &Frame, first_ops: &[usize]) -> Markup {
    let x = |t: u64| frame.x(t);
    html! {
        @for bar in bars {
            @let op = &history.ops[bar.op];
            @if let Some(lane) = lanes.of_worker(op.worker) {
                @let y = frame.lane_y(lane);
                @let mid = y + frame.lane_h / 2.0;
                @let (x0, x1) = (x(bar.held.0), x(bar.held.1));
                g class=(if first_ops.binary_search(&bar.op).is_ok() { format!("{} first", css(bar.class)) } else { css(bar.class) }) {
                    title { (hover(history, op, bar.class)) }
                    line x1=(px(x(bar.call.0))) x2=(px(x(bar.call.1))) y1=(px(mid)) y2=(px(mid)) {}
                    rect x=(px(x0)) y=(px(y + frame.lane_h * 0.15)) width=(px((x1 - x0).max(1.5))) height=(px(frame.lane_h * 0.7)) {}
                }
            }
        }
    }
}

/// The kills among `faults` (each with its lane, or none for all): a cross on a killed
/// process's lane, a line across every lane where the store's server was killed.
fn kills_drawn(faults: &[(&FaultEvent, Option<usize>)], frame: &Frame) -> Markup {
    let x = |t: u64| frame.x(t);
    let axis_y = frame.axis_y();
    html! {
        @for (f, lane) in faults.iter().filter(|(f, _)| f.kind == FaultKind::Kill) {
            @let (y, h) = frame.span(*lane);
            @let (cx, cy, r) = (x(f.at_ns), y + h / 2.0, (h / 2.0).clamp(2.5, 6.0));
            path.killed d=(format!("M{} {}L{} {}M{} {}L{} {}", px(cx - r), px(cy - r), px(cx + r), px(cy + r), px(cx - r), px(cy + r), px(cx + r), px(cy - r))) {
                title { (fault_title(f)) }
            }
        }
        // The store's server is no lane: its death is a line across them all.
        @for (f, _) in faults.iter().filter(|(f, _)| matches!(f.kind, FaultKind::KillStore | FaultKind::KillPrimary)) {
            g.store-killed {
                title { (fault_title(f)) }
                line x1=(px(x(f.at_ns))) x2=(px(x(f.at_ns))) y1=(px(STRIP_TOP)) y2=(px(axis_y)) {}
                text x=(px(x(f.at_ns) - 3.0)) y=(px(LANES_TOP - 4.0)) text-anchor="end" {
                    (if f.kind == FaultKind::KillStore { "store killed" } else { "primary killed" })
                }
            }
        }
    }
}

/// Why a timeline's lanes stand for bands of processes, and where single processes are.
fn aggregated_note(lanes: &Lanes, bucket_ns: u64) -> Markup {
    html! {
        p.note.aggregated {
            "Lanes aggregated: " (format::count(lanes.processes as u64)) " processes made purchases in this trial, more than the "
            (MAX_LANES) " lanes that can be read one by one, so each lane stands for "
            (lanes.band) " consecutive processes of one role (its label names them; a role's last lane may hold fewer). "
            "Each cell is " (format::ms(bucket_ns)) " of a lane: its height is how many of the lane's purchases were under way \
             (from read to write) then, against the busiest cell; its colours are their outcomes, as in the legend. \
             Hover a cell for its counts. Faults are drawn on the lane of their process. To see single processes, run at most "
            (MAX_LANES) " buyers, or write every operation of every process with " code { "sim export DIR" } "."
        }
    }
}

/// What the processes of one aggregated lane did in one bucket of time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    /// Purchases under way (from read to write), by what they were told, as [`TOLD`].
    pub told: [u32; TOLD.len()],
    /// Of those, how many carry each mark of [`MARKS`].
    pub marks: [u32; MARKS.len()],
    /// Of those, how many are drawn in each colour: [`TOLD`]'s, then [`MARKS`]'s.
    pub fills: [u32; TOLD.len() + MARKS.len()],
    /// It holds a purchase of the first anomaly.
    pub first: bool,
}

impl Cell {
    /// The purchases under way in it.
    pub fn purchases(&self) -> u32 {
        self.told.iter().sum()
    }
}

/// The colour a purchase is drawn in, as an index into [`Cell::fills`]: its last mark, as
/// [`css`] makes it win, or else what it was told.
fn fill(j: Judgement) -> Option<usize> {
    let mark = found(j).iter().rposition(|&on| on);
    let told = TOLD.iter().position(|t| Some(t.0) == j.told());
    mark.map(|m| TOLD.len() + m).or(told)
}

/// The cells of aggregated lanes, `buckets` to a lane and lane after lane: each purchase
/// counted in every bucket of `span` its read-modify-write touches.
pub fn cells(
    history: &History,
    bars: &[Bar],
    lanes: &Lanes,
    (from, to): (u64, u64),
    buckets: usize,
    first_ops: &[usize],
) -> Vec<Cell> {
    let mut cells = vec![Cell::default(); lanes.members.len() * buckets];
    let bucket = |t: u64| {
        let at = (t.clamp(from, to) - from) as f64 / (to - from).max(1) as f64;
        ((at * buckets as f64) as usize).min(buckets - 1)
    };
    for bar in bars {
        let (Some(lane), Some(told), Some(fill)) = (
            lanes.of_worker(history.ops[bar.op].worker),
            TOLD.iter().position(|t| Some(t.0) == bar.class.told()),
            fill(bar.class),
        ) else {
            continue;
        };
        let first = first_ops.binary_search(&bar.op).is_ok();
        for cell in &mut cells[lane * buckets..][bucket(bar.held.0)..=bucket(bar.held.1)] {
            cell.told[told] += 1;
            cell.fills[fill] += 1;
            for (n, on) in cell.marks.iter_mut().zip(found(bar.class)) {
                *n += u32::from(on);
            }
            cell.first |= first;
        }
    }
    cells
}

/// The heights of a cell's colours, stacked: together as high against `room` as its
/// purchases are against the busiest cell's, each colour present at least [`MIN_STACK`].
pub fn stack(fills: &[u32], busiest: u32, room: f64) -> Vec<f64> {
    let sum: u32 = fills.iter().sum();
    let present = fills.iter().filter(|&&n| n > 0).count() as f64;
    if sum == 0 {
        return vec![0.0; fills.len()];
    }
    let total = (room * f64::from(sum) / f64::from(busiest.max(sum)))
        .max(MIN_STACK * present)
        .min(room);
    let least = MIN_STACK.min(total / present);
    let spare = total - least * present;
    fills
        .iter()
        .map(|&n| match n {
            0 => 0.0,
            n => least + spare * f64::from(n) / f64::from(sum),
        })
        .collect()
}

/// The aggregated lanes' cells: a stack of outcome colours in each busy one, with its
/// counts on hover.
fn cells_drawn(history: &History, lanes: &Lanes, frame: &Frame, cells: &[Cell], buckets: usize) -> Markup {
    let busiest = cells.iter().map(Cell::purchases).max().unwrap_or(0);
    let width = (WIDTH - LEFT - RIGHT) / buckets as f64;
    let bucket_ns = (frame.to - frame.from) as f64 / buckets as f64;
    let at = |k: usize| frame.from + (bucket_ns * k as f64) as u64;
    html! {
        @for (i, cell) in cells.iter().enumerate().filter(|(_, c)| c.purchases() > 0) {
            @let (lane, b) = (i / buckets, i % buckets);
            @let bottom = frame.lane_y(lane) + frame.lane_h * 0.925;
            @let heights = stack(&cell.fills, busiest, frame.lane_h * 0.85);
            g class=(if cell.first { "cell first" } else { "cell" }) {
                title { (cell_hover(&lanes.label(history, lane), (at(b), at(b + 1)), cell)) }
                @for (k, h) in heights.iter().enumerate().filter(|(_, h)| **h > 0.0) {
                    @let below: f64 = heights[..k].iter().sum();
                    rect class=(fill_class(k)) x=(px(LEFT + b as f64 * width)) y=(px(bottom - below - h))
                        width=(px(width - 1.0)) height=(px(*h)) {}
                }
            }
        }
    }
}

/// The CSS class of a colour of [`Cell::fills`].
fn fill_class(k: usize) -> &'static str {
    match TOLD.get(k) {
        Some(t) => t.1,
        None => MARKS[k - TOLD.len()].0,
    }
}

/// The hover text of an aggregated cell: its lane and time, and the purchases under way.
fn cell_hover(lane: &str, (from, to): (u64, u64), cell: &Cell) -> String {
    let told: Vec<String> = TOLD
        .iter()
        .zip(cell.told)
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{n} {}", t.2))
        .collect();
    // To a tenth of the bucket: enough to place it, and short, for there may be thousands.
    let (a, b) = (from as f64 / 1e6, to as f64 / 1e6);
    let digits = (b - a) / 10.0;
    let mut text = format!(
        "{lane}, {}–{} ms: {} under way ({})",
        format::tick_label(a, digits),
        format::tick_label(b, digits),
        format::plural(u64::from(cell.purchases()), "purchase", "purchases"),
        told.join(", ")
    );
    for ((_, label, _), n) in MARKS.iter().zip(cell.marks).filter(|(_, n)| *n > 0) {
        text += &format!("; {label}: {n}");
    }
    if cell.first {
        text += "; among them the first anomaly's purchases";
    }
    text
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

/// The hover text of one purchase: what it was told, then what the checker found in it.
fn hover(history: &History, op: &Op, class: Judgement) -> String {
    let who = history
        .workers
        .get(op.worker as usize)
        .map_or_else(|| format!("process #{}", op.worker), |w| w.label());
    let mut what = match (class.told(), op.value()) {
        (Some(Told::Sold), Some(v)) => format!("sold ticket {v}"),
        (Some(Told::Sold), None) => "sold".to_string(),
        (Some(Told::SoldOut), Some(v)) => format!("read {v}: sold out"),
        (Some(Told::SoldOut), None) => "sold out".to_string(),
        (Some(Told::Unreadable), _) => "the stock file was empty or unparseable".to_string(),
        (Some(Told::Failed), v) if op.outcome == Outcome::Fenced => format!(
            "fenced: {}its write was refused, its lease's token being older than one the store had accepted",
            v.map_or(String::new(), |v| format!("read {v}; "))
        ),
        (Some(Told::Failed), _) => format!(
            "gave up after {} retries: the stock moved under every try",
            op.retries()
        ),
        (_, Some(v)) => format!("indeterminate: read {v}, then its process died or was ended before it completed"),
        (_, None) => "indeterminate: its process died or was ended before it completed".to_string(),
    };
    if op.retries() > 0 && op.outcome != Outcome::GaveUp {
        what += &format!("; after {} retries", op.retries());
    }
    if op.recovered() {
        what += "; took the lock from a holder that had died, and repaired it (EOWNERDEAD)";
    }
    if class.torn() {
        match (class.told(), op.value()) {
            (Some(Told::Unreadable), _) | (_, None) => what += "; torn read",
            (_, Some(v)) => what += &format!("; torn read: {v} is a number never written to the stock"),
        }
    }
    if class.phantom() {
        what += "; phantom stock: it read more than the initial stock";
    }
    if class.order_violation() {
        what += "; order violation: a sale that ended before it began holds a lower ticket";
    }
    if class.lost_acknowledged() {
        what += "; acknowledged, then lost: the store's record of sales does not hold it";
    }
    if class.duplicate() {
        what += "; duplicate ticket: another receipt holds it too";
    }
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

/// The colour key, as HTML, with the faults that `faults` holds.
pub fn legend(faults: &[FaultKind]) -> Markup {
    html! {
        ul.legend {
            @for (_, _, label, colour) in TOLD {
                li { span.swatch style=(format!("background:{colour}")) {} (label) }
            }
            @for (_, label, colour) in MARKS {
                li { span.swatch style=(format!("background:{colour}")) {} (label) }
            }
            li { span.swatch.outline {} "the first anomaly's purchases" }
            @if faults.iter().any(|k| matches!(k, FaultKind::Stop | FaultKind::Kill)) {
                li { span.swatch.stopped {} "process stopped (SIGSTOP)" }
                li { span.killed { "✕" } "process killed (SIGKILL)" }
            }
            @if faults.contains(&FaultKind::KillStore) {
                li { span.swatch.store-killed {} "store killed: its server SIGKILLed (a line across every lane)" }
            }
            @if faults.contains(&FaultKind::Failover) {
                li { span.swatch.cut {} "replicas cut off from the primary while the sale went on" }
                li { span.swatch.store-killed {} "primary killed (SIGKILL)" }
                li { span.swatch.promotion {} "from the kill until a replica was promoted" }
            }
            @if faults.contains(&FaultKind::Partition) {
                li { span.swatch.partition {} "primary partitioned from its replicas and the buyers" }
            }
            @if faults.contains(&FaultKind::Command) {
                li { span.swatch.command {} "a fault command of the scenario ([[faults.commands]]), from its run to its undo" }
            }
        }
    }
}

/// The timeline's CSS: a fill and stroke for each class of [`TOLD`] and [`MARKS`], marks
/// last so that they win; the same fills for the colours of an aggregated cell.
pub fn css_rules() -> String {
    let told = TOLD.iter().map(|t| (t.1, t.3));
    let marks = MARKS.iter().map(|m| (m.0, m.2));
    told.chain(marks)
        .map(|(class, colour)| {
            format!(
                "svg.timeline g.{class} rect,svg.timeline g.cell rect.{class}{{fill:{colour}}}\
                 svg.timeline g.{class} line{{stroke:{colour}}}\n"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Kind, Outcome, Role, Worker};

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

    fn classes(h: &History, initial: i64) -> Vec<String> {
        let judged = crate::checker::judge(h, &crate::checker::Facts::ended(initial, 0));
        bars(h, &judged).iter().map(|b| css(b.class)).collect()
    }

    #[test]
    fn purchases_are_drawn_as_the_checker_judged_them() {
        let mut ops = vec![
            purchase(0, 10 * US, 20 * US, 3, Outcome::Sold),
            purchase(1, 11 * US, 21 * US, 3, Outcome::Sold), // ticket 3 again
            purchase(2, 30 * US, 40 * US, 2, Outcome::Sold),
            purchase(0, 50 * US, 51 * US, 1, Outcome::SoldOut),
            purchase(1, 60 * US, 61 * US, 90, Outcome::Sold), // never written: torn, and sold
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
        assert_eq!(
            classes(&h, 3),
            [
                "sold dup",
                "sold dup",
                "sold",
                "sold-out",
                "sold torn phantom",
                "unreadable torn",
                "indet",
            ]
        );
        // The seller's writes count as written: a buyer that read one is no torn read.
        let mut h = h;
        let mut sale = purchase(2, 1, 2, 91, Outcome::Sold);
        sale.kind = Kind::Sale;
        h.ops.push(sale);
        // and one that began after lower tickets were sold went back in order.
        assert_eq!(classes(&h, 3)[4], "sold phantom order");
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
        let b = bars(&h, &crate::checker::judge(&h, &crate::checker::Facts::ended(5, 0)));
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
            class: Judgement::default(),
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
        let svg = render(
            &h,
            &crate::checker::judge(&h, &crate::checker::Facts::ended(5, 0)),
            &[],
            &[],
        )
        .into_string();
        assert_eq!(svg.matches("<g class=\"sold dup\">").count(), 5, "{svg}");
        assert_eq!(svg.matches("<title>buyer").count(), 5);
        assert!(svg.contains("at most 5"));
        assert!(!svg.contains("too many to draw"));
        assert!(
            render(
                &History::default(),
                &crate::checker::judge(&History::default(), &crate::checker::Facts::ended(5, 0)),
                &[],
                &[]
            )
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
            store_killed_by("buyer 0", 15 * US),
        ];
        let svg = render(
            &h,
            &crate::checker::judge(&h, &crate::checker::Facts::ended(5, 0)),
            &[],
            &faults,
        )
        .into_string();
        assert!(
            svg.contains("buyer 1 stopped (SIGSTOP) at 0.012 ms, resumed at 0.025 ms"),
            "{svg}"
        );
        assert!(svg.contains("seller 0 killed (SIGKILL) at 0.020 ms"));
        assert!(!svg.contains("buyer 2 killed"));
        assert_store_killed_across(&svg, "buyer 0", 3);
    }

    fn store_killed_by(process: &str, at_ns: u64) -> FaultEvent {
        FaultEvent {
            kind: FaultKind::KillStore,
            process: process.into(),
            at_ns,
            until_ns: None,
        }
    }

    /// The store's death is one titled line from the strip's top to below the last of
    /// `lanes` lanes, not a mark on the lane of the buyer that sent the signal.
    fn assert_store_killed_across(svg: &str, by: &str, lanes: usize) {
        let g = svg
            .split("<g class=\"store-killed\">")
            .nth(1)
            .unwrap_or_else(|| panic!("no store-killed line: {svg}"));
        let g = &g[..g.find("</g>").unwrap()];
        assert!(
            g.starts_with(&format!("<title>store killed: {by} sent SIGKILL to the store's server")),
            "{g}"
        );
        let bottom = Frame::new(0, 1, lanes).axis_y();
        assert!(
            g.contains(&format!("y1=\"{}\" y2=\"{}\"", px(STRIP_TOP), px(bottom))),
            "{g}"
        );
        assert!(g.contains(">store killed</text>"), "{g}");
    }

    /// Past [`MAX_LANES`]: bands of 3 buyers, 50 lanes.
    const CROWD: u32 = 150;

    /// [`CROWD`] buyers for as many tickets: 0 and 1 both sell the first ticket, the others
    /// one ticket each after them, 10 µs apart.
    fn crowd() -> History {
        let n = i64::from(CROWD);
        let mut ops = vec![
            purchase(0, 10 * US, 20 * US, n, Outcome::Sold),
            purchase(1, 12 * US, 22 * US, n, Outcome::Sold),
        ];
        ops.extend((2..CROWD).map(|i| {
            let read = (100 + 10 * u64::from(i)) * US;
            purchase(i, read, read + 5 * US, n + 1 - i64::from(i), Outcome::Sold)
        }));
        History {
            workers: buyers(CROWD),
            ops,
        }
    }

    #[test]
    fn past_max_lanes_a_lane_stands_for_a_band_of_each_role() {
        let lanes_of = |h: &History| {
            Lanes::new(
                h,
                &bars(
                    h,
                    &crate::checker::judge(h, &crate::checker::Facts::ended(CROWD.into(), 0)),
                ),
            )
        };
        let mut few = crowd();
        few.ops.retain(|op| (op.worker as usize) < MAX_LANES);
        let lanes = lanes_of(&few);
        assert!(!lanes.aggregated());
        assert_eq!((lanes.members.len(), lanes.band), (MAX_LANES, 1));
        assert_eq!(lanes.label(&few, 127), "buyer 127");

        let mut many = crowd();
        // A process of another role keeps a lane of its own, after the buyers.
        many.workers.push(Worker {
            role: Role::Seller,
            ..many.workers[0]
        });
        many.ops.push(purchase(CROWD, 5 * US, 6 * US, 1, Outcome::SoldOut));
        let lanes = lanes_of(&many);
        assert!(lanes.aggregated());
        assert_eq!((lanes.band, lanes.members.len(), lanes.processes), (3, 51, 151));
        assert_eq!(lanes.label(&many, 0), "buyers 0–2");
        assert_eq!(lanes.label(&many, 49), "buyers 147–149");
        assert_eq!(lanes.label(&many, 50), "seller 0");
        assert_eq!(lanes.of_worker(37), Some(12));
        assert_eq!(lanes.of_process(&many, "buyer 37"), Some(12));
        assert_eq!(lanes.of_process(&many, "pid 7"), None);

        let thousand = History {
            workers: buyers(1000),
            ops: (0..1000)
                .map(|i| purchase(i, (10 + i as u64) * US, (11 + i as u64) * US, 1, Outcome::SoldOut))
                .collect(),
        };
        let lanes = lanes_of(&thousand);
        assert_eq!((lanes.band, lanes.members.len()), (16, 63));
        assert_eq!(lanes.label(&thousand, 62), "buyers 992–999");
    }

    #[test]
    fn aggregated_cells_count_what_each_band_had_under_way() {
        let h = crowd();
        let judged = crate::checker::judge(&h, &crate::checker::Facts::ended(CROWD.into(), 0));
        let all = bars(&h, &judged);
        let lanes = Lanes::new(&h, &all);
        // Ten buckets of 10 µs: buyers 0 and 1 (lane 0, with 2) read at 10 and 12 µs and wrote
        // at 20 and 22 µs, so both are under way in buckets 1 and 2.
        let cells = cells(&h, &all, &lanes, (0, 100 * US), 10, &[1]);
        assert_eq!(cells.len(), 50 * 10);
        let dup = TOLD.len() + 4;
        for cell in &cells[1..=2] {
            assert_eq!(
                (cell.purchases(), cell.told[0], cell.marks[4], cell.fills[dup]),
                (2, 2, 2, 2)
            );
            assert!(cell.first);
        }
        assert_eq!(cells[0], Cell::default());
        assert_eq!(cells[3].purchases(), 0);
        // Buyers 2 to 5 came after the last bucket: they are counted in it, in their lanes.
        assert_eq!(cells[9].purchases(), 1);
        assert_eq!(cells[10 + 9].purchases(), 3);
        assert_eq!(cells[10 + 9].fills[0], 3, "sold, nothing found");
        assert!(!cells[10 + 9].first);
        let hover = cell_hover("buyers 0–2", (10 * US, 20 * US), &cells[1]);
        assert_eq!(
            hover,
            "buyers 0–2, 0.010–0.020 ms: 2 purchases under way (2 sold); duplicate ticket: 2; \
             among them the first anomaly's purchases"
        );
    }

    #[test]
    fn a_cells_colours_stack_to_its_share_of_the_busiest_and_none_vanishes() {
        let sum = |h: &[f64]| h.iter().sum::<f64>();
        let h = stack(&[15, 0, 1], 16, 10.0);
        assert!((sum(&h) - 10.0).abs() < 1e-9, "{h:?}");
        assert_eq!(h[1], 0.0);
        assert!(h[2] >= MIN_STACK && h[0] > h[2], "{h:?}");
        // One purchase where the busiest cell had 16: a sliver, but a visible one.
        assert_eq!(stack(&[1, 0], 16, 10.0), [MIN_STACK, 0.0]);
        assert_eq!(stack(&[8, 0], 16, 10.0), [5.0, 0.0]);
        // More colours than room for each at its least: they share the room.
        let h = stack(&[1; 9], 9, 9.0);
        assert!(h.iter().all(|&x| (x - 1.0).abs() < 1e-9), "{h:?}");
        assert_eq!(stack(&[0, 0], 3, 10.0), [0.0, 0.0]);
    }

    #[test]
    fn aggregated_lanes_say_so_and_keep_faults_in_their_band() {
        let h = crowd();
        let faults = [
            FaultEvent {
                kind: FaultKind::Kill,
                process: "buyer 51".into(),
                at_ns: 600 * US,
                until_ns: None,
            },
            store_killed_by("buyer 7", 300 * US),
        ];
        let svg = render(
            &h,
            &crate::checker::judge(&h, &crate::checker::Facts::ended(CROWD.into(), 0)),
            &[],
            &faults,
        )
        .into_string();
        assert!(
            svg.contains("Lanes aggregated: 150 processes made purchases in this trial, more than the 128 lanes"),
            "{svg}"
        );
        assert!(svg.contains("each lane stands for 3 consecutive processes"));
        assert!(svg.contains("<code>sim export DIR</code>"));
        assert!(svg.contains(">buyers 0–2</text>") && svg.contains(">buyers 147–149</text>"));
        // Cells, not bars: no purchase of its own, and the duplicate tickets in band 0.
        assert!(!svg.contains("<g class=\"sold"), "{svg}");
        assert!(svg.contains("<g class=\"cell\"><title>buyers 0–2, "));
        assert!(svg.contains("duplicate ticket: 2"));
        assert!(svg.contains("<rect class=\"dup\""));
        // The killed buyer's cross sits in its band's lane, the 18th of 50.
        let frame = Frame::new(0, 1, 50);
        let kill = svg.split("<path class=\"killed\" d=\"M").nth(1).expect("a kill drawn");
        let y: f64 = kill.split(['L', ' ']).nth(1).unwrap().parse().unwrap();
        assert!(
            (frame.lane_y(17)..frame.lane_y(18)).contains(&y),
            "{y} not in lane 17 of {frame_h}",
            frame_h = frame.lane_h
        );
        assert!(kill.contains("<title>buyer 51 killed (SIGKILL) at 0.600 ms</title>"));
        assert_store_killed_across(&svg, "buyer 7", 50);
    }

    #[test]
    fn the_legend_names_a_killed_store_only_when_one_was() {
        let with = legend(&[FaultKind::KillStore]).into_string();
        assert!(with.contains("store killed"), "{with}");
        assert!(!with.contains("SIGSTOP"), "{with}");
        let without = legend(&[FaultKind::Kill]).into_string();
        assert!(without.contains("SIGSTOP") && !without.contains("store killed"));
    }
}
