//! The mean and the median of a set of figures: one definition for every summary of trials
//! (results.json's, the report's charts, `sim compare`'s tests), so that they agree on every
//! figure they share.

/// The arithmetic mean; NaN for no figures.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The median: the upper middle of an even count, so that it is always one of the figures
/// (a trial's latency, not a blend of two). Panics on no figures.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_and_the_upper_median() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert!(mean(&[]).is_nan());
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0, "the upper middle");
        assert_eq!(median(&[7.0]), 7.0);
    }
}
