//! The plumbing the plotters charts share: an SVG drawn into a string, the fonts, and an
//! axis with one labelled slot per strategy.

use std::ops::Range;

use anyhow::Result;
use maud::Markup;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

pub type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

pub const FONT: &str = "sans-serif";

/// Draws a chart of `size` pixels and returns its SVG text.
pub fn svg(size: (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(text)
}

/// Lays `markup` over a chart plotters drew: what plotters cannot draw, such as hover text.
pub fn overlay(mut svg: String, markup: Markup) -> String {
    let end = svg.rfind("</svg>").unwrap_or(svg.len());
    svg.insert_str(end, &markup.into_string());
    svg
}

pub fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&super::palette::INK)
}

/// An x axis of `n` slots, one per strategy: slot i spans i..i+1 with its tick at i + 0.5.
/// Its labels come from the chart's `x_label_formatter` (see [`slot_name`]).
pub struct Slots {
    n: usize,
    linear: RangedCoordf64,
}

pub fn slots(n: usize) -> Slots {
    let n = n.max(1);
    Slots {
        n,
        linear: (0f64..n as f64).into(),
    }
}

impl Ranged for Slots {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.n).map(|i| i as f64 + 0.5).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        0.0..self.n as f64
    }
}

impl ValueFormatter<f64> for Slots {
    fn format(value: &f64) -> String {
        format!("{value}")
    }
}

/// Draws the axes of a chart with a slot per strategy along x: the slots' `names` below,
/// the values along y labelled by `y_label` and described by `y_desc`, as every such chart
/// of the report has them.
pub fn slot_axes(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<Slots, RangedCoordf64>>,
    names: &[String],
    y_label: &dyn Fn(&f64) -> String,
    y_desc: &str,
) -> Result<()> {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| slot_name(names, *x))
        .y_label_formatter(y_label)
        .y_desc(y_desc)
        .label_style(font(13))
        .axis_desc_style(font(13))
        .light_line_style(WHITE)
        .draw()?;
    Ok(())
}

/// The label of the slot at `x` among `names`.
pub fn slot_name(names: &[String], x: f64) -> String {
    if x < 0.0 {
        return String::new();
    }
    names.get(x as usize).cloned().unwrap_or_default()
}

/// A spread of `i` among `n`, in -0.5..0.5, the same every time: where to put the i-th dot
/// of a strip so that equal values do not hide each other.
pub fn jitter(i: usize) -> f64 {
    // The golden ratio spreads consecutive indices evenly.
    ((i as f64 * 0.618_033_988_75).fract()) - 0.5
}

/// An upper bound for a y axis that shows `max` with some room above it.
pub fn headroom(max: f64) -> f64 {
    match max * 1.15 {
        h if h.is_finite() && max > 0.0 => h,
        _ if max.is_finite() && max > 0.0 => max,
        _ => 1.0,
    }
}

/// Draws a chart's legend, in the report's style, at `position`.
pub fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .border_style(super::palette::FAINT)
        .background_style(WHITE.mix(0.9))
        .label_font(font(12))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_named_and_jitter_stays_inside() {
        let names = vec!["none".to_string(), "queue".to_string()];
        assert_eq!(slot_name(&names, 0.5), "none");
        assert_eq!(slot_name(&names, 1.5), "queue");
        assert_eq!(slot_name(&names, 2.5), "");
        assert_eq!(slot_name(&names, -0.5), "");
        for i in 0..100 {
            assert!((-0.5..0.5).contains(&jitter(i)));
        }
        assert_eq!(headroom(0.0), 1.0);
        assert_eq!(headroom(f64::INFINITY), 1.0);
        assert_eq!(headroom(f64::MAX), f64::MAX);
        assert!((headroom(10.0) - 11.5).abs() < 1e-9);
    }

    #[test]
    fn a_chart_is_an_svg_string() {
        let s = svg((100, 50), |_| Ok(())).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"), "{s}");
    }
}
