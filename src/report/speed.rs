//! The speed charts: purchases per second by strategy, and how long a purchase took.

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::evidence::Evidence;
use super::palette::{self, FAINT};
use super::{format, plot};
use crate::history::speed::LatencyHistogram;
use crate::history::stats::mean;

/// Purchases per second of each trial (dots) and their mean (bar), per strategy.
pub fn throughput(evidence: &[Evidence]) -> Result<String> {
    let names: Vec<String> = evidence.iter().map(|e| e.strategy.name().to_string()).collect();
    let rate = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    let top = evidence
        .iter()
        .flat_map(|e| &e.trials)
        .map(|t| rate(t.speed.purchases_per_s))
        .fold(0f64, f64::max);
    plot::svg((1000, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(plot::slots(evidence.len()), 0f64..plot::headroom(top))?;
        plot::slot_axes(&mut chart, &names, &|y| format::axis(*y), "purchases per second")?;
        for (i, e) in evidence.iter().enumerate() {
            let trials = &e.trials;
            if trials.is_empty() {
                continue;
            }
            let colour = palette::strategy(e.strategy);
            let rates: Vec<f64> = trials.iter().map(|t| rate(t.speed.purchases_per_s)).collect();
            let mean = mean(&rates);
            let x = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.2, 0.0), (x + 0.8, mean)],
                colour.mix(0.35).filled(),
            )))?;
            // One dot per trial, or none when there are too many to tell apart.
            if trials.len() <= 500 {
                chart.draw_series(trials.iter().enumerate().map(|(t, trial)| {
                    Circle::new(
                        (x + 0.5 + plot::jitter(t) * 0.4, rate(trial.speed.purchases_per_s)),
                        3,
                        colour.filled(),
                    )
                }))?;
            }
            let highest = trials
                .iter()
                .map(|t| rate(t.speed.purchases_per_s))
                .fold(mean, f64::max);
            chart.draw_series(std::iter::once(Text::new(
                format!("mean {}/s", format::amount(mean)),
                (x + 0.5, highest + top * 0.03),
                plot::font(12).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))?;
        }
        Ok(())
    })
}

/// The latency range to plot, in µs: from the fastest to the slowest purchase of any
/// strategy, widened to at least a decade and kept above zero for the log scale.
pub fn latency_range(histograms: &[&LatencyHistogram]) -> (f64, f64) {
    let points: Vec<(f64, f64)> = histograms.iter().flat_map(|h| h.cdf()).collect();
    let lo = points.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let hi = points.iter().map(|p| p.0).fold(0f64, f64::max);
    if points.is_empty() || !(lo > 0.0 && hi.is_finite()) {
        return (1.0, 1000.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// The share of purchases completed within each latency, one line per strategy, on a log
/// scale.
pub fn latency(evidence: &[Evidence]) -> Result<String> {
    let histograms: Vec<&LatencyHistogram> = evidence.iter().map(|e| &e.latency).collect();
    let (lo, hi) = latency_range(&histograms);
    plot::svg((1000, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc("purchase latency, invocation to completion (log scale)")
            .y_desc("purchases done within it")
            .x_label_formatter(&|x| format::duration_axis(*x))
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .label_style(plot::font(12))
            .axis_desc_style(plot::font(13))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()?;
        for q in [0.5, 0.99] {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(lo, q), (hi, q)],
                FAINT.mix(0.6).stroke_width(1),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("p{:.0}", q * 100.0),
                (lo * 1.04, q - 0.005),
                plot::font(11).pos(Pos::new(HPos::Left, VPos::Bottom)),
            )))?;
        }
        for e in evidence {
            let cdf = e.latency.cdf();
            if cdf.is_empty() {
                continue;
            }
            let colour = palette::strategy(e.strategy);
            chart
                .draw_series(LineSeries::new(cdf, colour.stroke_width(2)))?
                .label(e.strategy.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        plot::legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_range_spans_whole_decades() {
        assert_eq!(latency_range(&[]), (1.0, 1000.0));
        let mut h = LatencyHistogram::default();
        h.record(3_000); // 3 µs
        h.record(450_000); // 450 µs
        let (lo, hi) = latency_range(&[&h]);
        assert_eq!((lo, hi), (1.0, 1000.0));
        let mut one = LatencyHistogram::default();
        one.record(5_000);
        let (lo, hi) = latency_range(&[&one]);
        assert!(lo < 5.0 && hi > 5.0 && hi >= lo * 10.0, "{lo} {hi}");
    }
}
