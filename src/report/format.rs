//! Numbers and times as the page writes them.

/// Nanoseconds after the start gate, as milliseconds: `1.203 ms`.
pub fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// A count with thousands separated: `1,000,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate or a duration with as many digits as it deserves: `12,345`, `12.3`, `0.123`.
pub fn amount(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        let sign = if x < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(a.round() as u64))
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{x:.3}")
    }
}

/// A duration in µs, in the unit that reads best: `850 µs`, `12.5 ms`, `1.20 s`.
pub fn micros(us: f64) -> String {
    if !us.is_finite() {
        "–".into()
    } else if us >= 1e6 {
        format!("{} s", amount(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", amount(us / 1e3))
    } else {
        format!("{} µs", amount(us))
    }
}

/// An axis label: the shortest form of the number, grouped by thousands when large.
pub fn axis(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let r = (v * 1e6).round() / 1e6;
    if r == 0.0 {
        "0".into()
    } else if r.abs() >= 10_000.0 && r.fract() == 0.0 {
        let sign = if r < 0.0 { "-" } else { "" };
        format!("{sign}{}", count(r.abs() as u64))
    } else {
        format!("{r}")
    }
}

/// A round duration given in µs, as an axis label: `10 µs`, `1 ms`, `2.5 s`.
pub fn duration_axis(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", axis(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", axis(us / 1e3))
    } else {
        format!("{} µs", axis(us))
    }
}

/// "1 trial", "3 trials".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// Tick positions for an axis from `lo` to `hi`: round numbers, about `want` of them.
pub fn ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || want == 0 {
        return vec![if lo.is_finite() { lo } else { 0.0 }];
    }
    let raw = (hi - lo) / want as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick's label, with the decimals that the spacing of the ticks needs.
pub fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(0.0, 9.0) as usize
    } else {
        0
    };
    let s = format!("{value:.decimals$}");
    // "-0" where a tick lands on zero from below.
    if s.trim_start_matches(['-', '0', '.']).is_empty() {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// A number as an SVG coordinate, to a tenth of a pixel.
pub fn px(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    let s = format!("{x:.1}");
    match s.strip_suffix(".0") {
        Some(whole) if whole != "-0" => whole.to_string(),
        Some(_) => "0".to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_and_coordinates_are_short() {
        assert_eq!(tick_label(2.0, 1.0), "2");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.05, 0.05), "0.05");
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.34), "12.3");
        assert_eq!(px(-0.01), "0");
        assert_eq!(px(f64::NAN), "0");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(12_345_678), "12,345,678");
    }

    #[test]
    fn amounts_and_durations_read_well() {
        assert_eq!(amount(4274.3), "4,274");
        assert_eq!(amount(445.2), "445");
        assert_eq!(amount(12.34), "12.3");
        assert_eq!(amount(0.1234), "0.123");
        assert_eq!(amount(f64::NAN), "–");
        assert_eq!(micros(850.0), "850 µs");
        assert_eq!(micros(12_500.0), "12.5 ms");
        assert_eq!(micros(1_200_000.0), "1.20 s");
        assert_eq!(ms(1_203_000), "1.203 ms");
        assert_eq!(plural(1, "trial", "trials"), "1 trial");
        assert_eq!(plural(2, "trial", "trials"), "2 trials");
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(axis(2000.0), "2000");
        assert_eq!(axis(600_000.0), "600,000");
        assert_eq!(axis(-20_000.0), "-20,000");
        assert_eq!(axis(0.5), "0.5");
        assert_eq!(axis(-0.0), "0");
        assert_eq!(axis(2.0000000001), "2");
        assert_eq!(duration_axis(1000.0), "1 ms");
        assert_eq!(duration_axis(10.0), "10 µs");
        assert_eq!(duration_axis(2_500_000.0), "2.5 s");
    }

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 7.0, 7), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(ticks(0.0, 100.0, 5), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = ticks(0.13, 0.91, 4);
        assert_eq!(t.len(), 4, "{t:?}");
        assert!(t.iter().all(|x| (0.13..=0.91).contains(x)));
        assert_eq!(ticks(5.0, 5.0, 4), [5.0]);
        assert_eq!(ticks(f64::NAN, 1.0, 4), [0.0]);
    }
}
