//! The outcomes charts: how many trials went wrong, by how much, and how the overselling
//! spreads across trials.

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::evidence::Evidence;
use super::palette::{self, INK};
use super::{format, plot};
use crate::checker::Check;
use crate::history::stats::{mean, median};

/// A count of the checker's that the outcomes chart can show.
pub struct Count {
    pub name: &'static str,
    pub colour: RGBColor,
    pub of: fn(&Check) -> u64,
}

pub const COUNTS: [Count; 7] = [
    Count {
        name: "oversold",
        colour: palette::OVERSOLD,
        of: |c| c.oversold,
    },
    Count {
        name: "duplicate tickets",
        colour: palette::DUPLICATE,
        of: |c| c.duplicate_tickets,
    },
    Count {
        name: "lost updates",
        colour: palette::LOST,
        of: |c| c.lost_updates,
    },
    Count {
        name: "torn reads",
        colour: palette::TORN,
        of: |c| c.torn_reads,
    },
    Count {
        name: "phantom stock",
        colour: palette::PHANTOM,
        of: |c| c.phantom_stock,
    },
    Count {
        name: "order violations",
        colour: palette::ORDER,
        of: |c| c.order_violations,
    },
    Count {
        name: "lost acknowledged",
        colour: palette::LOST_ACKNOWLEDGED,
        of: |c| c.lost_acknowledged,
    },
];

/// The counts that some trial of some strategy has: a series that is zero everywhere is
/// left out rather than drawn flat.
pub fn shown_counts(runs: &[Evidence]) -> Vec<&'static Count> {
    COUNTS
        .iter()
        .filter(|c| runs.iter().flat_map(|r| &r.trials).any(|t| (c.of)(&t.check) > 0))
        .collect()
}

/// Mean and max of a count over a strategy's trials.
pub fn mean_max(run: &Evidence, count: &Count) -> (f64, u64) {
    if run.trials.is_empty() {
        return (0.0, 0);
    }
    let values: Vec<u64> = run.trials.iter().map(|t| (count.of)(&t.check)).collect();
    let as_f64: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    (mean(&as_f64), values.into_iter().max().unwrap_or(0))
}

fn names(runs: &[Evidence]) -> Vec<String> {
    runs.iter().map(|r| r.strategy.name().to_string()).collect()
}

/// The share of each strategy's trials whose verdict is not safe.
pub fn anomalous_share(runs: &[Evidence]) -> Result<String> {
    let names = names(runs);
    plot::svg((1000, 240), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(plot::slots(runs.len()), 0f64..118.0)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| plot::slot_name(&names, *x))
            .y_labels(6)
            .y_label_formatter(&|y| format!("{y:.0} %"))
            .y_desc("trials with an anomaly")
            .label_style(plot::font(13))
            .axis_desc_style(plot::font(13))
            .light_line_style(WHITE)
            .draw()?;
        chart.draw_series(runs.iter().enumerate().map(|(i, run)| {
            let share = share(run.anomalous(), run.trials.len());
            let colour = palette::strategy(run.strategy);
            Rectangle::new([(i as f64 + 0.25, 0.0), (i as f64 + 0.75, share)], colour.filled())
        }))?;
        chart.draw_series(runs.iter().enumerate().map(|(i, run)| {
            let share = share(run.anomalous(), run.trials.len());
            Text::new(
                format!("{} of {}", run.anomalous(), run.trials.len()),
                (i as f64 + 0.5, share + 3.0),
                plot::font(13).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        Ok(())
    })
}

fn share(part: usize, all: usize) -> f64 {
    if all == 0 {
        0.0
    } else {
        (part as f64 / all as f64 * 100.0).clamp(0.0, 100.0)
    }
}

/// Mean (bar) and max (tick) of each count that is not zero everywhere, grouped by
/// strategy; `None` when every count is zero in every trial.
pub fn counts(runs: &[Evidence]) -> Result<Option<String>> {
    let shown = shown_counts(runs);
    if shown.is_empty() {
        return Ok(None);
    }
    let names = names(runs);
    let top = runs
        .iter()
        .flat_map(|r| shown.iter().map(move |c| mean_max(r, c).1))
        .max()
        .unwrap_or(0);
    let k = shown.len() as f64;
    let width = 0.8 / k;
    plot::svg((1000, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(plot::slots(runs.len()), 0f64..plot::headroom(top as f64))?;
        plot::slot_axes(
            &mut chart,
            &names,
            &|y| format::axis(*y),
            "per trial: mean (bar), max (tick)",
        )?;
        for (j, count) in shown.iter().enumerate() {
            let left = |i: usize| i as f64 + 0.1 + j as f64 * width;
            let colour = count.colour;
            chart
                .draw_series(runs.iter().enumerate().map(|(i, run)| {
                    let (mean, _) = mean_max(run, count);
                    Rectangle::new([(left(i), 0.0), (left(i) + width * 0.9, mean)], colour.filled())
                }))?
                .label(count.name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
            chart.draw_series(runs.iter().enumerate().filter_map(|(i, run)| {
                let (_, max) = mean_max(run, count);
                (max > 0).then(|| {
                    PathElement::new(
                        vec![(left(i), max as f64), (left(i) + width * 0.9, max as f64)],
                        INK.stroke_width(2),
                    )
                })
            }))?;
            chart.draw_series(runs.iter().enumerate().filter_map(|(i, run)| {
                let (_, max) = mean_max(run, count);
                (max > 0).then(|| {
                    Text::new(
                        max.to_string(),
                        (left(i) + width * 0.45, max as f64),
                        plot::font(11).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
                })
            }))?;
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

/// Above this many trials of one strategy, the spread is a histogram rather than a dot per
/// trial.
const MAX_DOTS: usize = 200;
const BINS: usize = 40;

/// Tickets oversold in each trial, one dot per trial (a histogram on its side for many
/// trials), with the median marked; `None` when no trial oversold.
pub fn oversold_spread(runs: &[Evidence]) -> Result<Option<String>> {
    let top = runs
        .iter()
        .flat_map(|r| &r.trials)
        .map(|t| t.check.oversold)
        .max()
        .unwrap_or(0);
    if top == 0 {
        return Ok(None);
    }
    let names = names(runs);
    plot::svg((1000, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(plot::slots(runs.len()), -0.5f64..plot::headroom(top as f64))?;
        plot::slot_axes(&mut chart, &names, &|y| format::axis(*y), "tickets oversold in a trial")?;
        for (i, run) in runs.iter().enumerate() {
            let colour = palette::strategy(run.strategy);
            let values: Vec<u64> = run.trials.iter().map(|t| t.check.oversold).collect();
            if values.is_empty() {
                continue;
            }
            let centre = i as f64 + 0.5;
            if values.len() <= MAX_DOTS {
                chart.draw_series(values.iter().enumerate().map(|(t, &v)| {
                    Circle::new((centre + plot::jitter(t) * 0.5, v as f64), 4, colour.mix(0.75).filled())
                }))?;
            } else {
                let bins = histogram(&values, top, BINS);
                let most = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
                let bin_h = top as f64 / BINS as f64;
                chart.draw_series(bins.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, &n)| {
                    let half = 0.4 * n as f64 / most;
                    let y = b as f64 * bin_h;
                    Rectangle::new(
                        [(centre - half, y), (centre + half, y + bin_h * 0.9)],
                        colour.mix(0.75).filled(),
                    )
                }))?;
            }
            let median = median(&values.iter().map(|&v| v as f64).collect::<Vec<f64>>());
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(centre - 0.3, median), (centre + 0.3, median)],
                INK.stroke_width(2),
            )))?;
        }
        Ok(())
    })
    .map(Some)
}

/// Counts of `values` in `bins` equal bins over 0..=top.
pub fn histogram(values: &[u64], top: u64, bins: usize) -> Vec<u64> {
    let bins = bins.max(1);
    let mut counts = vec![0u64; bins];
    for &v in values {
        let at = if top == 0 {
            0
        } else {
            ((v.min(top) as u128 * bins as u128) / (top as u128 + 1)) as usize
        };
        counts[at.min(bins - 1)] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;
    use crate::history::speed::LatencyHistogram;
    use crate::report::testing::trial;
    use crate::results::TrialResult;
    use crate::scenario::StrategyName;

    fn trials(oversold: &[u64]) -> Vec<TrialResult> {
        oversold
            .iter()
            .enumerate()
            .map(|(i, &o)| trial(i as u32, if o > 0 { Verdict::Oversold } else { Verdict::Safe }, o, o))
            .collect()
    }

    fn evidence(strategy: StrategyName, trials: &[TrialResult]) -> Evidence<'_> {
        Evidence {
            strategy,
            runs: Vec::new(),
            trials: trials.iter().collect(),
            featured: None,
            latency: LatencyHistogram::default(),
        }
    }

    #[test]
    fn counts_that_are_zero_everywhere_are_left_out() {
        let (racy, safe) = (trials(&[3, 5]), trials(&[0, 0]));
        let runs = [
            evidence(StrategyName::None, &racy),
            evidence(StrategyName::FileLock, &safe),
        ];
        let names: Vec<&str> = shown_counts(&runs).iter().map(|c| c.name).collect();
        assert_eq!(names, ["oversold", "duplicate tickets"]);
        assert_eq!(mean_max(&runs[0], &COUNTS[0]), (4.0, 5));
        assert_eq!(mean_max(&evidence(StrategyName::Queue, &[]), &COUNTS[0]), (0.0, 0));

        let svg = counts(&runs).unwrap().unwrap();
        assert!(svg.contains("duplicate tickets") && !svg.contains("torn reads"));
        assert!(oversold_spread(&runs).unwrap().is_some());

        let safe = [evidence(StrategyName::Queue, &safe)];
        assert!(shown_counts(&safe).is_empty());
        assert!(counts(&safe).unwrap().is_none());
        assert!(oversold_spread(&safe).unwrap().is_none());
        assert!(anomalous_share(&safe).unwrap().contains("0 of 2"));
        // No strategy at all still draws.
        assert!(anomalous_share(&[]).is_ok());
    }

    #[test]
    fn many_trials_make_a_histogram_not_a_dot_each() {
        let many = trials(&(0..1000).map(|i| i % 7).collect::<Vec<u64>>());
        let svg = oversold_spread(&[evidence(StrategyName::None, &many)])
            .unwrap()
            .unwrap();
        assert!(
            svg.matches("<circle").count() < 10,
            "{} circles",
            svg.matches("<circle").count()
        );
        assert_eq!(histogram(&[0, 1, 2, 3], 3, 4), [1, 1, 1, 1]);
        assert_eq!(histogram(&[0, 10, 99, 1000], 99, 2), [2, 2]);
        assert_eq!(histogram(&[5], 0, 3), [1, 0, 0]);
    }
}
