//! The sweep charts, for a scenario that runs every strategy at several buyer counts, race
//! windows or replication lags: throughput against buyers, the share of anomalous trials
//! against buyers and against the race window, and acknowledged sales lost per failover
//! against the lag, one line per strategy.

use anyhow::Result;
use plotters::prelude::*;

use super::evidence::Evidence;
use super::palette;
use super::{format, plot};
use crate::checker::Verdict;
use crate::history::stats::mean;
use crate::results::TrialResult;
use crate::results::summary::lost_per_failover;
use crate::scenario::Point;

/// Which side of a sweep's points a chart runs along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Buyers,
    Hold,
    /// `faults.lag_ms`, for a sweep over it alone: points without a lag are not on it.
    Lag,
}

impl Axis {
    fn of(self, p: Point) -> Option<u64> {
        match self {
            Axis::Buyers => Some(p.buyers as u64),
            Axis::Hold => Some(p.hold_us),
            Axis::Lag => p.lag_ms,
        }
    }

    fn label(self, v: u64) -> String {
        match self {
            Axis::Buyers => v.to_string(),
            Axis::Hold => format::duration_axis(v as f64),
            Axis::Lag => format!("{v} ms"),
        }
    }

    fn desc(self) -> &'static str {
        match self {
            Axis::Buyers => "buyers (all race windows together)",
            Axis::Hold => "race window: hold between read and write (all buyer counts together)",
            Axis::Lag => "replication lag: how long the replicas were cut off before the primary was killed",
        }
    }
}

/// What a chart measures of the trials at one value of its axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    PurchasesPerSecond,
    AnomalousShare,
    /// Acknowledged sales lost, over the trials that had a failover.
    LostPerFailover,
}

impl Measure {
    fn of(self, trials: &[&TrialResult]) -> f64 {
        if trials.is_empty() {
            return 0.0;
        }
        let n = trials.len() as f64;
        match self {
            // A trial without a rate (none finite, or none at all) counts as 0.
            Measure::PurchasesPerSecond => mean(
                &trials
                    .iter()
                    .map(|t| t.speed.purchases_per_s)
                    .map(|r| if r.is_finite() && r > 0.0 { r } else { 0.0 })
                    .collect::<Vec<f64>>(),
            ),
            Measure::AnomalousShare => {
                trials.iter().filter(|t| t.check.verdict != Verdict::Safe).count() as f64 / n * 100.0
            }
            Measure::LostPerFailover => lost_per_failover(trials.iter().copied()),
        }
    }

    fn desc(self) -> &'static str {
        match self {
            Measure::PurchasesPerSecond => "purchases per second (mean of trials)",
            Measure::AnomalousShare => "trials with an anomaly",
            Measure::LostPerFailover => "acknowledged sales lost per failover (mean)",
        }
    }
}

/// The distinct values of the axis among every run's point, ascending.
pub fn values(evidence: &[Evidence], axis: Axis) -> Vec<u64> {
    let mut v: Vec<u64> = evidence
        .iter()
        .flat_map(|e| &e.runs)
        .filter_map(|r| r.point.and_then(|p| axis.of(p)))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A strategy's trials at one value of the axis, pooled over the other.
pub fn trials_at<'a>(e: &Evidence<'a>, axis: Axis, value: u64) -> Vec<&'a TrialResult> {
    e.runs
        .iter()
        .filter(|r| r.point.is_some_and(|p| axis.of(p) == Some(value)))
        .flat_map(|r| &r.trials)
        .collect()
}

/// One line per strategy along the axis; `None` when the scenario does not sweep it.
pub fn chart(evidence: &[Evidence], axis: Axis, measure: Measure) -> Result<Option<String>> {
    let values = values(evidence, axis);
    if values.len() < 2 {
        return Ok(None);
    }
    let names: Vec<String> = values.iter().map(|&v| axis.label(v)).collect();
    let lines: Vec<(usize, Vec<(f64, f64)>)> = evidence
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let points = values
                .iter()
                .enumerate()
                .filter_map(|(i, &v)| {
                    let trials = trials_at(e, axis, v);
                    (!trials.is_empty()).then(|| (i as f64 + 0.5, measure.of(&trials)))
                })
                .collect();
            (k, points)
        })
        .collect();
    let top = match measure {
        Measure::AnomalousShare => 118.0,
        Measure::PurchasesPerSecond | Measure::LostPerFailover => {
            plot::headroom(lines.iter().flat_map(|l| &l.1).map(|p| p.1).fold(0.0, f64::max))
        }
    };
    plot::svg((1000, 320), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(plot::slots(values.len()), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| plot::slot_name(&names, *x))
            .y_label_formatter(&|y| match measure {
                Measure::AnomalousShare => format!("{y:.0} %"),
                Measure::PurchasesPerSecond | Measure::LostPerFailover => format::axis(*y),
            })
            .x_desc(axis.desc())
            .y_desc(measure.desc())
            .label_style(plot::font(13))
            .axis_desc_style(plot::font(13))
            .light_line_style(WHITE)
            .draw()?;
        for (k, points) in &lines {
            let strategy = evidence[*k].strategy;
            let colour = palette::strategy(strategy);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
                .label(strategy.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::speed::LatencyHistogram;
    use crate::report::testing::trial;
    use crate::results::{StrategyRun, Summary};
    use crate::scenario::StrategyName;

    fn run(strategy: StrategyName, buyers: u32, hold_us: u64, verdicts: &[Verdict]) -> StrategyRun {
        let trials: Vec<TrialResult> = verdicts
            .iter()
            .enumerate()
            .map(|(i, &v)| trial(i as u32, v, 0, 0))
            .collect();
        StrategyRun {
            strategy,
            point: Some(Point {
                buyers,
                hold_us,
                lag_ms: None,
            }),
            summary: Summary::of(&trials),
            trials,
        }
    }

    #[test]
    fn trials_are_pooled_along_one_axis() {
        use Verdict::{Oversold, Safe};
        let runs = [
            run(StrategyName::None, 1, 0, &[Safe, Safe]),
            run(StrategyName::None, 1, 200, &[Safe, Oversold]),
            run(StrategyName::None, 8, 0, &[Oversold, Safe]),
            run(StrategyName::None, 8, 200, &[Oversold, Oversold]),
        ];
        let e = Evidence {
            strategy: StrategyName::None,
            runs: runs.iter().collect(),
            trials: runs.iter().flat_map(|r| &r.trials).collect(),
            featured: None,
            latency: LatencyHistogram::default(),
        };
        let evidence = [e];
        assert_eq!(values(&evidence, Axis::Buyers), [1, 8]);
        assert_eq!(values(&evidence, Axis::Hold), [0, 200]);
        let share = |axis, v| Measure::AnomalousShare.of(&trials_at(&evidence[0], axis, v));
        assert_eq!(share(Axis::Buyers, 1), 25.0);
        assert_eq!(share(Axis::Buyers, 8), 75.0);
        assert_eq!(share(Axis::Hold, 0), 25.0);
        assert_eq!(share(Axis::Hold, 200), 75.0);
        assert_eq!(
            Measure::PurchasesPerSecond.of(&trials_at(&evidence[0], Axis::Hold, 0)),
            1000.0
        );
        assert_eq!(Measure::AnomalousShare.of(&[]), 0.0);

        let svg = chart(&evidence, Axis::Buyers, Measure::AnomalousShare)
            .unwrap()
            .unwrap();
        assert!(svg.contains("none"));
        // A single value is no sweep along that axis.
        let one = [run(StrategyName::None, 4, 0, &[Safe])];
        let e = Evidence {
            strategy: StrategyName::None,
            runs: one.iter().collect(),
            trials: one.iter().flat_map(|r| &r.trials).collect(),
            featured: None,
            latency: LatencyHistogram::default(),
        };
        assert!(chart(&[e], Axis::Hold, Measure::AnomalousShare).unwrap().is_none());
    }

    #[test]
    fn lost_sales_are_counted_per_failover_along_the_lag() {
        use crate::plan::notice::FaultKind;
        use crate::runner::FaultEvent;
        // At each lag, two trials failed over, losing (lag / 100) and (lag / 100 + 2) sales,
        // and one trial whose primary was never killed, which counts for nothing.
        let runs: Vec<StrategyRun> = [0u64, 300, 1000]
            .into_iter()
            .map(|lag| {
                let mut r = run(StrategyName::Atomic, 8, 0, &[Verdict::Safe; 3]);
                r.point = Some(Point {
                    buyers: 8,
                    hold_us: 0,
                    lag_ms: Some(lag),
                });
                for (i, t) in r.trials.iter_mut().enumerate().take(2) {
                    t.check.lost_acknowledged = lag / 100 + 2 * i as u64;
                    t.faults.push(FaultEvent {
                        kind: FaultKind::KillPrimary,
                        process: "primary".into(),
                        at_ns: 1,
                        until_ns: None,
                    });
                }
                r.trials[2].check.lost_acknowledged = 1_000;
                r
            })
            .collect();
        let e = Evidence {
            strategy: StrategyName::Atomic,
            runs: runs.iter().collect(),
            trials: runs.iter().flat_map(|r| &r.trials).collect(),
            featured: None,
            latency: LatencyHistogram::default(),
        };
        let evidence = [e];
        assert_eq!(values(&evidence, Axis::Lag), [0, 300, 1000]);
        assert!(
            values(&evidence, Axis::Buyers).len() == 1,
            "one count: no chart along buyers"
        );
        let lost = |v| Measure::LostPerFailover.of(&trials_at(&evidence[0], Axis::Lag, v));
        assert_eq!((lost(0), lost(300), lost(1000)), (1.0, 4.0, 11.0));
        let svg = chart(&evidence, Axis::Lag, Measure::LostPerFailover).unwrap().unwrap();
        assert!(svg.contains("replication lag") && svg.contains("1000 ms"), "{svg}");
        assert!(
            chart(&evidence, Axis::Buyers, Measure::LostPerFailover)
                .unwrap()
                .is_none()
        );
    }
}
