//! The tests `sim compare` rests on: for the change in a measure, a bootstrap over trials
//! for its interval and a t-test for whether it is more than luck (both as criterion does);
//! for the change in the share of anomalous trials, Fisher's exact test.
//!
//! The interval alone is not enough with few trials: with three a side, a percentile
//! bootstrap's interval is too narrow, and two runs of one scenario with 10 % noise per
//! trial were judged different 12 % of the time (5 % is what a 95 % interval promises);
//! requiring the t-test too brought that to 6 %, and to 5.5 % with five trials (400 pairs of
//! simulated runs each, normal noise).
//!
//! Trials are the unit of both: purchases within one trial share its scheduling luck, so
//! they are not independent samples, but trials are.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::history::stats::mean;

/// Resamples of the bootstrap: enough that the 2.5th and 97.5th percentiles move by well
/// under a tenth of a percent from one seed to another, and few enough that a comparison of
/// a sweep with dozens of points takes milliseconds.
pub const RESAMPLES: usize = 10_000;

/// The bootstrap's seed: the same two folders always give the same interval.
const SEED: u64 = 0x51_c0_4e_9a_7e;

/// A relative change, B against A, as a fraction (`-0.25` is 25 % lower in B), with its
/// 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The change of the statistic over all of A's and B's trials.
    pub estimate: f64,
    /// The 2.5th percentile of the resampled changes.
    pub low: f64,
    /// The 97.5th percentile of the resampled changes.
    pub high: f64,
}

/// The relative change of `statistic` from `a` to `b`, with a percentile-bootstrap 95 %
/// interval: each side resampled with replacement, `RESAMPLES` times. Values that are not
/// finite are left out. `None` when either side has fewer than two values, or the
/// statistic of A is zero, so that no change can be told.
pub fn bootstrap(a: &[f64], b: &[f64], statistic: fn(&[f64]) -> f64) -> Option<Interval> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let change = |sa: f64, sb: f64| sb / sa - 1.0;
    let estimate = change(statistic(&a), statistic(&b));
    if !estimate.is_finite() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let mut changes = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        let c = change(statistic(&ra), statistic(&rb));
        if c.is_finite() {
            changes.push(c);
        }
    }
    // A resample of A that is all zeros has no ratio; if that is common, there is no interval.
    if changes.len() < RESAMPLES / 2 {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let at = |q: f64| changes[((changes.len() - 1) as f64 * q).round() as usize];
    Some(Interval {
        estimate,
        low: at(0.025),
        high: at(0.975),
    })
}

/// Welch's t statistic of the difference of the means of `a` and `b`; ±∞ when neither side
/// varies but the means differ, 0 when the means are equal.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let var = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    let (ma, mb) = (mean(a), mean(b));
    let spread = (var(a, ma) / a.len() as f64 + var(b, mb) / b.len() as f64).sqrt();
    if ma == mb {
        0.0
    } else if spread == 0.0 {
        f64::INFINITY.copysign(ma - mb)
    } else {
        (ma - mb) / spread
    }
}

/// The two-sided p-value of a difference of means, as criterion tests it: Welch's t of the
/// two samples against the t of samples drawn, with replacement, from both together (where
/// there is no difference by construction). `None` when a side has fewer than two values.
pub fn t_test(a: &[f64], b: &[f64]) -> Option<f64> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let t = welch_t(&a, &b).abs();
    let both: Vec<f64> = a.iter().chain(&b).copied().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED ^ 1);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let mut as_far = 0usize;
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut().chain(rb.iter_mut()) {
            *x = both[rng.random_range(0..both.len())];
        }
        if welch_t(&ra, &rb).abs() >= t {
            as_far += 1;
        }
    }
    Some(as_far as f64 / RESAMPLES as f64)
}

/// Fisher's exact test of a 2×2 table: `a` of `n_a` trials anomalous in A against `b` of
/// `n_b` in B. Returns the two-sided p-value: the probability, were the share the same in
/// both, of a split of the anomalous trials between A and B at most as likely as this one.
pub fn fisher_exact(a: u64, n_a: u64, b: u64, n_b: u64) -> f64 {
    let (a, b) = (a.min(n_a), b.min(n_b));
    let n = n_a + n_b;
    let k = a + b;
    if n == 0 || k == 0 || k == n {
        return 1.0;
    }
    let ln_fact = log_factorials(n);
    let ln_choose = |n: u64, r: u64| ln_fact[n as usize] - ln_fact[r as usize] - ln_fact[(n - r) as usize];
    let base = ln_choose(n, n_b);
    // X, the anomalous trials in B, is hypergeometric given the margins.
    let p = |x: u64| (ln_choose(k, x) + ln_choose(n - k, n_b - x) - base).exp();
    let observed = p(b);
    let lo = n_b.saturating_sub(n - k);
    let hi = k.min(n_b);
    // Equal probabilities up to rounding count as "as likely", as R's fisher.test does.
    let tolerance = 1.0 + 1e-7;
    let total: f64 = (lo..=hi).map(p).filter(|&q| q <= observed * tolerance).sum();
    total.min(1.0)
}

/// ln(i!) for i in 0..=n, summed: exact enough for any count of trials sim allows.
fn log_factorials(n: u64) -> Vec<f64> {
    let mut v = Vec::with_capacity(n as usize + 1);
    let mut sum = 0.0;
    v.push(0.0);
    for i in 1..=n {
        sum += (i as f64).ln();
        v.push(sum);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::stats::median;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-6 * y.abs().max(1e-12)
    }

    #[test]
    fn fisher_matches_known_p_values() {
        // R: fisher.test(matrix(c(0, 6, 6, 0), 2))$p.value = 2 / choose(12, 6).
        assert!(close(fisher_exact(0, 6, 6, 6), 2.0 / 924.0));
        assert!(close(fisher_exact(6, 6, 0, 6), 2.0 / 924.0));
        // R: fisher.test(matrix(c(1, 9, 11, 3), 2))$p.value = 0.002759456.
        assert!((fisher_exact(1, 10, 11, 14) - 0.002_759_456).abs() < 1e-8);
        // The lady tasting tea: 3 of 4 right, p = 0.4857143.
        assert!((fisher_exact(3, 4, 1, 4) - 0.485_714_3).abs() < 1e-6);
        // No anomaly anywhere, or the same share: no evidence of a change.
        assert_eq!(fisher_exact(0, 10, 0, 10), 1.0);
        assert_eq!(fisher_exact(10, 10, 10, 10), 1.0);
        assert!(close(fisher_exact(3, 10, 3, 10), 1.0));
        assert_eq!(fisher_exact(0, 0, 0, 0), 1.0);
        // Many trials do not overflow.
        let p = fisher_exact(500, 100_000, 700, 100_000);
        assert!(p > 0.0 && p < 1e-6, "{p}");
    }

    #[test]
    fn the_interval_holds_a_clear_change_and_excludes_none() {
        let a = [1000.0, 1010.0, 990.0, 1005.0, 995.0];
        let b = [500.0, 505.0, 495.0, 502.0, 498.0];
        let i = bootstrap(&a, &b, mean).unwrap();
        assert!(close(i.estimate, -0.5), "{i:?}");
        assert!(i.low <= i.estimate && i.estimate <= i.high, "{i:?}");
        assert!(i.high < -0.45 && i.low > -0.55, "{i:?}");
        // Every resample of B is below every resample of A: certain by construction.
        let i = bootstrap(&b, &a, median).unwrap();
        assert!(i.low > 0.8, "{i:?}");
    }

    #[test]
    fn the_same_trials_on_both_sides_are_no_change() {
        let a = [1000.0, 1200.0, 800.0, 1100.0];
        let i = bootstrap(&a, &a, mean).unwrap();
        assert_eq!(i.estimate, 0.0);
        assert!(i.low < 0.0 && i.high > 0.0, "{i:?}");
        let flat = [5.0, 5.0, 5.0];
        assert_eq!(
            bootstrap(&flat, &flat, mean),
            Some(Interval {
                estimate: 0.0,
                low: 0.0,
                high: 0.0
            })
        );
    }

    #[test]
    fn too_few_or_empty_trials_give_no_interval() {
        assert_eq!(bootstrap(&[1.0], &[1.0, 2.0], mean), None);
        assert_eq!(bootstrap(&[0.0, 0.0], &[1.0, 2.0], mean), None);
        assert_eq!(bootstrap(&[f64::NAN, 1.0], &[1.0, 2.0], mean), None);
        assert!(bootstrap(&[0.0, 1.0], &[1.0, 2.0], mean).is_some());
    }

    #[test]
    fn the_t_test_tells_a_difference_from_luck() {
        let a = [1000.0, 1010.0, 990.0, 1005.0, 995.0];
        let b = [500.0, 505.0, 495.0, 502.0, 498.0];
        let p = t_test(&a, &b).unwrap();
        assert!(p < 0.01, "{p}");
        assert_eq!(t_test(&a, &a), Some(1.0));
        let c = [1002.0, 998.0, 1011.0, 989.0, 1000.0];
        let p = t_test(&a, &c).unwrap();
        assert!(p > 0.5, "{p}");
        assert_eq!(t_test(&a[..1], &b), None);
        // Two trials a side are never enough: the test has no room to be sure.
        assert!(t_test(&a[..2], &b[..2]).unwrap() >= 0.05);
    }

    #[test]
    fn the_same_folders_give_the_same_interval() {
        let a = [3.0, 9.0, 4.0, 7.0];
        let b = [5.0, 6.0, 8.0, 2.0];
        assert_eq!(bootstrap(&a, &b, mean), bootstrap(&a, &b, mean));
    }
}
