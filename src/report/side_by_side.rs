//! Charts of two runs side by side, for `sim compare`: purchases/s of every trial of A
//! and B, the share of anomalous trials of each, and each change with its interval. They
//! take plain figures, so that the report knows nothing of the comparison that uses them,
//! and they share the report's plumbing, colours and style: A is grey, B has its
//! strategy's colour.

use anyhow::Result;
use maud::{Markup, html};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{self, FAINT, INK};
use super::{format, plot};
use crate::checker::Verdict;
use crate::history::stats::mean;
use crate::scenario::StrategyName;

/// One strategy (at one point) in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// What the chart calls it: `file-lock`, or with its point of a sweep.
    pub label: String,
    /// Whose colour B is drawn in.
    pub strategy: StrategyName,
    /// A's value per trial.
    pub a: Vec<f64>,
    /// B's value per trial.
    pub b: Vec<f64>,
}

/// A relative change with its interval, as fractions (`-0.25` is 25 % lower in B).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// What the chart calls it.
    pub label: String,
    /// Whose colour it is drawn in.
    pub strategy: StrategyName,
    /// The change, and its 95 % interval; `None` where it cannot be told.
    pub change: Option<(f64, f64, f64)>,
}

/// One strategy's anomalous trials in both runs: (anomalous, trials) of A and of B.
#[derive(Debug, Clone, PartialEq)]
pub struct Shares {
    /// What the chart calls it.
    pub label: String,
    /// Whose colour B is drawn in.
    pub strategy: StrategyName,
    /// A's anomalous trials and trials.
    pub a: (u32, u32),
    /// B's.
    pub b: (u32, u32),
}

/// The report's style sheet, for a page of the same look.
pub fn stylesheet() -> &'static str {
    super::page::CSS
}

/// A strategy's name in its colour, as the report shows it.
pub fn strategy_tag(strategy: StrategyName) -> Markup {
    super::page::strategy_tag(strategy)
}

/// A badge in a verdict's colour, saying `text`.
pub fn verdict_badge(verdict: Verdict, text: &str) -> Markup {
    html! {
        span.badge style=(format!("background:{}", palette::verdict(verdict))) { (text) }
    }
}

/// `+12.3 %`, or `+4.00e304 %` past a million.
fn signed_percent(x: f64) -> String {
    if x.abs() < 1e6 {
        format!("{x:+.1} %")
    } else {
        format!("{x:+.2e} %")
    }
}

/// The widest change the changes chart spans, in percent.
const LIMIT_PCT: f64 = 1e9;

/// The highest purchases/s the throughput chart spans; a trial faster than that (only in an
/// edited results.json) is drawn at the top.
const LIMIT_RATE: f64 = 1e12;

fn finite(v: &[f64]) -> Vec<f64> {
    v.iter()
        .copied()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x.min(LIMIT_RATE))
        .collect()
}

/// Purchases per second of every trial (dots) and their mean (bar): per strategy, A on the
/// left in grey, B on the right in the strategy's colour.
pub fn throughput(pairs: &[Pair]) -> Result<String> {
    let names: Vec<String> = pairs.iter().map(|p| p.label.clone()).collect();
    let top = pairs
        .iter()
        .flat_map(|p| finite(&p.a).into_iter().chain(finite(&p.b)))
        .fold(0f64, f64::max);
    plot::svg((1000, 320), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(plot::slots(pairs.len()), 0f64..plot::headroom(top))?;
        plot::slot_axes(&mut chart, &names, &|y| format::axis(*y), "purchases per second")?;
        for (i, pair) in pairs.iter().enumerate() {
            let strategy = palette::strategy(pair.strategy);
            for (side, values, colour, name) in [(0.0, &pair.a, FAINT, "A"), (0.5, &pair.b, strategy, "B")] {
                let values = finite(values);
                let x = i as f64 + side;
                if let Some(m) = (!values.is_empty()).then(|| mean(&values)) {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.08, 0.0), (x + 0.42, m)],
                        colour.mix(0.35).filled(),
                    )))?;
                    if values.len() <= 500 {
                        chart.draw_series(
                            values
                                .iter()
                                .enumerate()
                                .map(|(t, &v)| Circle::new((x + 0.25 + plot::jitter(t) * 0.25, v), 3, colour.filled())),
                        )?;
                    }
                    let highest = values.iter().copied().fold(m, f64::max);
                    chart.draw_series(std::iter::once(Text::new(
                        format!("{name} {}/s", format::amount(m)),
                        (x + 0.25, highest + top * 0.03),
                        plot::font(12).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )))?;
                }
            }
        }
        Ok(())
    })
}

/// The share of anomalous trials of each strategy in A (grey) and B (coloured), labelled
/// with the counts.
pub fn anomalous_share(pairs: &[Shares]) -> Result<String> {
    let names: Vec<String> = pairs.iter().map(|p| p.label.clone()).collect();
    plot::svg((1000, 280), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(plot::slots(pairs.len()), 0f64..118.0)?;
        plot::slot_axes(&mut chart, &names, &|y| format!("{y:.0} %"), "trials with an anomaly")?;
        for (i, Shares { strategy, a, b, .. }) in pairs.iter().enumerate() {
            let colour = palette::strategy(*strategy);
            for (side, (k, n), fill, name) in [(0.0, a, FAINT, "A"), (0.5, b, colour, "B")] {
                let x = i as f64 + side;
                let share = if *n == 0 { 0.0 } else { *k as f64 / *n as f64 * 100.0 };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.08, 0.0), (x + 0.42, share)],
                    fill.mix(0.8).filled(),
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    format!("{name} {k}/{n}"),
                    (x + 0.25, share + 2.0),
                    plot::font(12).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))?;
            }
        }
        Ok(())
    })
}

/// Each change as a dot with its 95 % interval as a line, one row per strategy, around a
/// shaded noise band of ±`noise` (a fraction): an interval that reaches into the band is
/// within noise.
pub fn changes(bars: &[Bar], measure: &str, noise: f64) -> Result<String> {
    // The first bar on top, as in the table: slot 0 is at the bottom.
    let names: Vec<String> = bars.iter().rev().map(|b| b.label.clone()).collect();
    let pct = |x: f64| x * 100.0;
    let (mut lo, mut hi) = (-pct(noise) * 2.0, pct(noise) * 2.0);
    for (_, low, high) in bars.iter().filter_map(|b| b.change) {
        // In percent, a change can overflow what a finite fraction was: such an axis has no
        // ticks to draw (plotters would never finish looking for them).
        if pct(low).is_finite() && pct(high).is_finite() {
            lo = lo.min(pct(low));
            hi = hi.max(pct(high));
        }
    }
    // plotters overflows on ranges near f64's limits: a change past a billion percent is
    // drawn at the edge (its label says how far).
    let (lo, hi) = (lo.max(-LIMIT_PCT), hi.min(LIMIT_PCT));
    let pad = (hi - lo).max(1.0) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let pct = |x: f64| pct(x).clamp(lo, hi);
    let label_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(8) as u32 * 7 + 16;
    let height = 70 + 34 * bars.len().max(1) as u32;
    plot::svg((1000, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(label_width.min(400))
            .build_cartesian_2d(lo..hi, plot::slots(bars.len()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_label_formatter(&|y| plot::slot_name(&names, *y))
            .x_label_formatter(&|x| format!("{} %", format::axis(*x)))
            .x_desc(format!("change of {measure} in B against A, with its 95 % interval"))
            .label_style(plot::font(13))
            .axis_desc_style(plot::font(13))
            .light_line_style(WHITE)
            .draw()?;
        let n = bars.len().max(1) as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(-pct(noise), 0.0), (pct(noise), n)],
            FAINT.mix(0.18).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, n)],
            INK.mix(0.6).stroke_width(1),
        )))?;
        for (i, bar) in bars.iter().enumerate() {
            let y = (bars.len() - 1 - i) as f64 + 0.5;
            let colour = palette::strategy(bar.strategy);
            match bar.change {
                Some((estimate, low, high)) if estimate.is_finite() => {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(pct(low), y), (pct(high), y)],
                        colour.stroke_width(3),
                    )))?;
                    chart.draw_series(std::iter::once(Circle::new((pct(estimate), y), 5, colour.filled())))?;
                    chart.draw_series(std::iter::once(Text::new(
                        signed_percent(estimate * 100.0),
                        (pct(estimate), y + 0.14),
                        plot::font(12).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )))?;
                }
                _ => {
                    chart.draw_series(std::iter::once(Text::new(
                        "too few trials to tell",
                        (0.0, y),
                        plot::font(12).pos(Pos::new(HPos::Center, VPos::Center)),
                    )))?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_draws_each_strategy_and_survives_empty_figures() {
        let pairs = [
            Pair {
                label: "none".into(),
                strategy: StrategyName::None,
                a: vec![1000.0, 1100.0],
                b: vec![500.0, f64::NAN],
            },
            Pair {
                label: "queue".into(),
                strategy: StrategyName::Queue,
                a: vec![],
                b: vec![],
            },
        ];
        let svg = throughput(&pairs).unwrap();
        assert!(
            svg.contains("none") && svg.contains("queue") && svg.contains("A 1,050/s"),
            "{svg}"
        );
        let svg = anomalous_share(&[Shares {
            label: "none".into(),
            strategy: StrategyName::None,
            a: (0, 6),
            b: (6, 6),
        }])
        .unwrap();
        assert!(svg.contains("B 6/6") && svg.contains("A 0/6"));
        let bars = [
            Bar {
                label: "none".into(),
                strategy: StrategyName::None,
                change: Some((-0.5, -0.6, -0.4)),
            },
            Bar {
                label: "queue".into(),
                strategy: StrategyName::Queue,
                change: None,
            },
        ];
        let svg = changes(&bars, "purchases/s", 0.02).unwrap();
        let svg_huge = throughput(&[Pair {
            label: "none".into(),
            strategy: StrategyName::None,
            a: vec![f64::MAX, 1e-300],
            b: vec![0.0],
        }])
        .unwrap();
        assert!(svg_huge.starts_with("<svg"));
        assert!(svg.contains("-50.0 %") && svg.contains("too few trials"), "{svg}");
        assert!(changes(&[], "purchases/s", 0.0).unwrap().starts_with("<svg"));
        // A change of 10³⁰⁷ is finite, but not in percent.
        let huge = Bar {
            label: "none".into(),
            strategy: StrategyName::None,
            change: Some((0.0, -1e307, 1e308)),
        };
        assert!(changes(&[huge], "p50 latency", 0.02).unwrap().starts_with("<svg"));
        let far = Bar {
            label: "none".into(),
            strategy: StrategyName::None,
            change: Some((4e302, 1e300, 1e303)),
        };
        assert!(changes(&[far], "p50 latency", 0.02).unwrap().contains("+4.00e304 %"));
    }
}
