//! Order statistics shared by the stages: the linear-interpolation quantile (numpy's and torch's
//! default), so depth ranges, the coarse auto range and the metrics agree on what "the 2nd
//! percentile" means.
//!
//! Architecture invariant: pure functions of slices; no IO, no allocation.

/// Linear-interpolation quantile of sorted values at position `q·(n − 1)` (`q` clamped into
/// [0, 1]); NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert!((quantile_sorted(&v, 0.02) - 2.0).abs() < 1e-12);
        assert!((quantile_sorted(&[1.0, 2.0], 0.98) - 1.98).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[5.0], 0.5), 5.0);
        assert_eq!(quantile_sorted(&[1.0, 3.0], 2.0), 3.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }
}
