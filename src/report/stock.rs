//! Stock over time: what the stock held after each write, against the honest count
//! (initial − sold so far). Where the two part, updates were lost; below zero, tickets that
//! did not exist were sold.

use anyhow::Result;
use maud::{Markup, html};
use plotters::prelude::*;

use super::palette::{self, FAINT};
use super::{format, plot, timeline};
use crate::checker::{self, Judged, Told};
use crate::history::History;
use crate::plan::notice::FaultKind;
use crate::results::FaultEvent;
use crate::scenario::StrategyName;

/// Above this many points a line is thinned (keeping each bucket's first, last, lowest and
/// highest point, so the drawn shape stays the same to the pixel).
const MAX_POINTS: usize = 4000;
const BUCKETS: usize = 1000;
const STOPPED: RGBColor = RGBColor(0x7d, 0x3c, 0x98);

/// The two lines of the chart, as (ms after the gate, tickets) points.
#[derive(Debug, Clone, PartialEq)]
pub struct StockLines {
    pub stored: Vec<(f64, f64)>,
    pub honest: Vec<(f64, f64)>,
    pub end_ms: f64,
}

/// The lines of a history as the checker judged it: the stock's writes (the buyers' and the
/// seller's) and the sales it counted.
pub fn lines(history: &History, judged: &Judged, initial: i64) -> StockLines {
    let writes = checker::judge::writes(history);
    let mut sales: Vec<u64> = history
        .ops
        .iter()
        .zip(&judged.ops)
        .filter(|(_, j)| j.told() == Some(Told::Sold))
        .map(|(op, _)| op.write().or(op.end()).unwrap_or(op.start))
        .collect();
    sales.sort_unstable();
    let end = history
        .ops
        .iter()
        .zip(&judged.ops)
        .filter(|(_, j)| j.told().is_some())
        .map(|(op, _)| op.latest())
        .max()
        .unwrap_or(0)
        .max(1);
    let honest: Vec<(u64, i64)> = sales
        .iter()
        .enumerate()
        .map(|(k, &t)| (t, initial.saturating_sub(k as i64 + 1)))
        .collect();
    let end_ms = end as f64 / 1e6;
    StockLines {
        stored: thin(steps(initial, &writes, end), 0.0, end_ms),
        honest: thin(steps(initial, &honest, end), 0.0, end_ms),
        end_ms,
    }
}

/// A step line from (0, initial) through each (time, value) change to `end`, in ms.
pub fn steps(initial: i64, changes: &[(u64, i64)], end: u64) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(changes.len() * 2 + 2);
    let mut value = initial as f64;
    points.push((0.0, value));
    for &(t, v) in changes {
        let t = t as f64 / 1e6;
        points.push((t, value));
        value = v as f64;
        points.push((t, value));
    }
    points.push((end as f64 / 1e6, value));
    points
}

/// At most 4 points per bucket of time: the first, lowest, highest and last (M4).
pub fn thin(points: Vec<(f64, f64)>, from: f64, to: f64) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS || to <= from {
        return points;
    }
    let bucket = |x: f64| (((x - from) / (to - from) * BUCKETS as f64) as usize).min(BUCKETS - 1);
    let mut out = Vec::with_capacity(BUCKETS * 4);
    let mut i = 0;
    while i < points.len() {
        let b = bucket(points[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && bucket(points[j].0) == b {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for k in keep {
            if k != last {
                out.push(points[k]);
                last = k;
            }
        }
        i = j;
    }
    out
}

/// The chart of one strategy's featured trial.
pub fn chart(
    strategy: StrategyName,
    history: &History,
    judged: &Judged,
    initial: i64,
    faults: &[FaultEvent],
) -> Result<String> {
    let l = lines(history, judged, initial);
    let values = l.stored.iter().chain(&l.honest).map(|p| p.1);
    let lowest = values.clone().fold(0f64, f64::min);
    let highest = values.fold(initial as f64, f64::max);
    let pad = ((highest - lowest) * 0.08).max(1.0);
    let colour = palette::strategy(strategy);
    let mut hovers = Vec::new();
    let svg = plot::svg((540, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .caption(strategy.name(), plot::font(15))
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..l.end_ms, (lowest - pad)..(highest + pad))?;
        chart
            .configure_mesh()
            .x_desc("ms after the sale opened")
            .y_desc("tickets")
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| format::axis(*x))
            .y_label_formatter(&|y| format::axis(*y))
            .label_style(plot::font(12))
            .axis_desc_style(plot::font(12))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        if lowest < 0.0 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, lowest - pad), (l.end_ms, 0.0)],
                palette::OVERSOLD.mix(0.08).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (l.end_ms, 0.0)],
                palette::OVERSOLD.mix(0.6).stroke_width(1),
            )))?;
        }
        // Faults, as Jepsen shades them: a band while a process was stopped, a line where one
        // was killed, a red one where the store's server was.
        let (y0, y1) = (lowest - pad, highest + pad);
        let ms = |ns: u64| (ns as f64 / 1e6).min(l.end_ms);
        chart.draw_series(faults.iter().filter(|f| f.kind == FaultKind::Stop).map(|f| {
            Rectangle::new(
                [(ms(f.at_ns), y0), (ms(f.until_ns.unwrap_or(u64::MAX)), y1)],
                STOPPED.mix(0.15).filled(),
            )
        }))?;
        chart.draw_series(faults.iter().filter(|f| f.kind == FaultKind::Kill).map(|f| {
            PathElement::new(
                vec![(ms(f.at_ns), y0), (ms(f.at_ns), y1)],
                BLACK.mix(0.6).stroke_width(1),
            )
        }))?;
        let store_killed = || faults.iter().filter(|f| f.kind == FaultKind::KillStore);
        let line = |x: f64| PathElement::new(vec![(x, y0), (x, y1)], palette::STORE_KILLED.stroke_width(2));
        let drawn = chart.draw_series(store_killed().map(|f| line(ms(f.at_ns))))?;
        if store_killed().next().is_some() {
            drawn.label("store killed").legend(|(x, y)| {
                PathElement::new(
                    vec![(x + 8, y - 6), (x + 8, y + 6)],
                    palette::STORE_KILLED.stroke_width(2),
                )
            });
        }
        // Where each fault is on the page, for its hover text.
        hovers = faults
            .iter()
            .map(|f| {
                let until = if f.kind == FaultKind::Stop {
                    f.until_ns.unwrap_or(u64::MAX)
                } else {
                    f.at_ns
                };
                Placed {
                    fault: f,
                    top_left: chart.backend_coord(&(ms(f.at_ns), y1)),
                    bottom_right: chart.backend_coord(&(ms(until), y0)),
                }
            })
            .collect();
        chart
            .draw_series(LineSeries::new(l.honest.iter().copied(), FAINT.stroke_width(4)))?
            .label("honest: initial − sold")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], FAINT.stroke_width(4)));
        chart
            .draw_series(LineSeries::new(l.stored.iter().copied(), colour.stroke_width(2)))?
            .label("in the stock")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        plot::legend(&mut chart, SeriesLabelPosition::LowerLeft)
    })?;
    Ok(plot::overlay(svg, fault_hovers(&hovers)))
}

/// A fault where the chart drew it, in the SVG's pixels.
struct Placed<'a> {
    fault: &'a FaultEvent,
    top_left: (i32, i32),
    bottom_right: (i32, i32),
}

/// Hover targets over the faults plotters drew, which it cannot title: a band the width of a
/// stop, a strip 8 px wide along a kill's line; drawn transparent.
fn fault_hovers(placed: &[Placed]) -> Markup {
    html! {
        @for p in placed {
            @let ((left, top), (right, bottom)) = (p.top_left, p.bottom_right);
            @let (x, width) = if right - left >= 8 { (left, right - left) } else { (left - 4, 8) };
            rect x=(x) y=(top) width=(width) height=(bottom - top) fill="transparent" {
                title { (timeline::fault_title(p.fault)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Kind, Op, Outcome, Role, Worker};

    const MS: u64 = 1_000_000;

    fn sale(worker: u32, read: u64, write: u64, value: i64) -> Op {
        Op::new(worker, Kind::Purchase, Outcome::Sold, read)
            .with_read(Some(read))
            .with_write(Some(write))
            .with_end(Some(write))
            .with_value(Some(value))
            .with_written(Some(value - 1))
    }

    #[test]
    fn a_lost_update_parts_the_lines() {
        // Two buyers read 3 and both write 2: the stock says 2, the honest count 1.
        let workers = (0..2)
            .map(|i| Worker {
                role: Role::Buyer,
                index: i,
                pid: i,
                ready_ns: 0,
                finish_ns: Some(10 * MS),
            })
            .collect();
        let h = History {
            workers,
            ops: vec![sale(0, MS, 3 * MS, 3), sale(1, 2 * MS, 4 * MS, 3)],
        };
        let l = lines(&h, &checker::judge(&h, &crate::checker::Facts::ended(3, 0)), 3);
        assert_eq!(l.end_ms, 4.0);
        assert_eq!(
            l.stored,
            [(0.0, 3.0), (3.0, 3.0), (3.0, 2.0), (4.0, 2.0), (4.0, 2.0), (4.0, 2.0)]
        );
        assert_eq!(l.honest.last(), Some(&(4.0, 1.0)));
        let stop = FaultEvent {
            kind: FaultKind::Stop,
            process: "buyer 1".into(),
            at_ns: MS,
            until_ns: None,
        };
        let svg = chart(
            StrategyName::None,
            &h,
            &checker::judge(&h, &crate::checker::Facts::ended(3, 0)),
            3,
            std::slice::from_ref(&stop),
        )
        .unwrap();
        assert!(svg.contains("honest"), "{svg}");
        assert!(svg.contains("<title>buyer 1 stopped (SIGSTOP) at 1.000 ms, never resumed</title>"));
        assert!(!svg.contains("store killed"), "{svg}");
        let store_killed = FaultEvent {
            kind: FaultKind::KillStore,
            process: "buyer 0".into(),
            at_ns: 2 * MS,
            ..stop
        };
        let svg = chart(
            StrategyName::None,
            &h,
            &checker::judge(&h, &crate::checker::Facts::ended(3, 0)),
            3,
            &[store_killed],
        )
        .unwrap();
        assert!(svg.contains("\nstore killed\n</text>"), "a legend entry: {svg}");
        assert!(
            svg.contains("<title>store killed: buyer 0 sent SIGKILL to the store's server at 2.000 ms"),
            "{svg}"
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        let empty = History::default();
        assert!(
            chart(
                StrategyName::None,
                &empty,
                &checker::judge(&empty, &crate::checker::Facts::ended(0, 0)),
                0,
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn thinning_keeps_the_extremes_of_each_bucket() {
        let points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, ((i * 7919) % 1000) as f64)).collect();
        let thinned = thin(points.clone(), 0.0, 100_000.0);
        assert!(thinned.len() <= BUCKETS * 4, "{}", thinned.len());
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0));
        let max = |p: &[(f64, f64)]| p.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let min = |p: &[(f64, f64)]| p.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        assert_eq!((min(&thinned), max(&thinned)), (min(&points), max(&points)));
        let few = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(thin(few.clone(), 0.0, 1.0), few);
    }
}
