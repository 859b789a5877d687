//! Combining the per-source costs of one depth hypothesis into one cost per pixel.
//!
//! The reference averages the costs of **all** sources, and an invalid window (too few valid
//! samples, e.g. the source sees that pixel off-image at this depth) already carries cost 1 from
//! the cost kernel: an invalid source counts as a neutral "no correlation" vote, neither
//! rewarded nor excluded. [`Aggregation::Mean`] keeps exactly that. [`Aggregation::BestK`]
//! averages only the `k` lowest costs per pixel, so a source that is occluded at the true depth
//! (and therefore disagrees) does not drag the minimum away: the usual remedy for occlusion in
//! multi-view stereo. Note that under best-k an invalid source (cost 1) still competes, and can
//! be among the `k` kept when the valid sources correlate negatively (cost > 1).

use std::num::NonZeroUsize;

/// The most sources one reference view can have (a 12-camera ring uses 5).
///
/// The best-k selection keeps one pixel's costs in a fixed stack array of this size, so the
/// inner loop never allocates.
pub const MAX_SOURCES: usize = 32;

/// How the costs of several source views are combined per pixel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Aggregation {
    /// The mean over all sources, invalid windows counting as cost 1 (the reference).
    #[default]
    Mean,
    /// The mean of the `k` lowest costs (all of them when `k` ≥ the number of sources, which
    /// then equals [`Mean`](Self::Mean) exactly).
    BestK(NonZeroUsize),
}

/// Errors of [`aggregate_costs`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// No source costs were given.
    #[error("cannot aggregate the costs of zero sources")]
    NoSources,
    /// More sources than [`MAX_SOURCES`].
    #[error("{n_sources} sources given, at most {MAX_SOURCES} are supported")]
    TooManySources {
        /// Sources given.
        n_sources: usize,
    },
    /// A source cost buffer of the wrong length.
    #[error("source {source_idx} has {actual} costs, expected {expected}")]
    LengthMismatch {
        /// Index of the offending source.
        source_idx: usize,
        /// Length of the output buffer.
        expected: usize,
        /// Its length.
        actual: usize,
    },
}

/// Combines `per_source[s][i]` over the sources `s` into `out[i]`.
///
/// Every buffer must have `out.len()` values; at most [`MAX_SOURCES`] sources.
pub fn aggregate_costs(
    aggregation: Aggregation,
    per_source: &[&[f32]],
    out: &mut [f32],
) -> Result<(), AggregateError> {
    let n_sources = per_source.len();
    if n_sources == 0 {
        return Err(AggregateError::NoSources);
    }
    if n_sources > MAX_SOURCES {
        return Err(AggregateError::TooManySources { n_sources });
    }
    for (source_idx, costs) in per_source.iter().enumerate() {
        if costs.len() != out.len() {
            return Err(AggregateError::LengthMismatch {
                source_idx,
                expected: out.len(),
                actual: costs.len(),
            });
        }
    }
    match aggregation {
        Aggregation::BestK(k) if k.get() < n_sources => best_k(k.get(), per_source, out),
        _ => mean(per_source, out),
    }
    Ok(())
}

/// Mean over all sources, summed in source order (vectorises: one pass per source).
fn mean(per_source: &[&[f32]], out: &mut [f32]) {
    out.copy_from_slice(per_source[0]);
    for costs in &per_source[1..] {
        for (o, c) in out.iter_mut().zip(*costs) {
            *o += c;
        }
    }
    let n = per_source.len() as f32;
    for o in out.iter_mut() {
        *o /= n;
    }
}

/// Mean of the `k` lowest of each pixel's costs, summed in ascending order.
fn best_k(k: usize, per_source: &[&[f32]], out: &mut [f32]) {
    let n = per_source.len();
    let mut pixel = [0.0f32; MAX_SOURCES];
    for (i, o) in out.iter_mut().enumerate() {
        // Insertion sort: n is small (≤ 32, typically 5) and this keeps everything on the stack.
        // `total_cmp` orders a NaN (never produced by the cost kernels) after every number.
        for (s, costs) in per_source.iter().enumerate() {
            let c = costs[i];
            let mut j = s;
            while j > 0 && pixel[j - 1].total_cmp(&c).is_gt() {
                pixel[j] = pixel[j - 1];
                j -= 1;
            }
            pixel[j] = c;
        }
        *o = pixel[..k].iter().sum::<f32>() / k as f32;
    }
    debug_assert!(k < n);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean of costs near 1 in `f32`: a few ulps (the reference suite's bound is 1e-6).
    const MEAN_TOL: f32 = 1e-6;

    fn k(n: usize) -> Aggregation {
        Aggregation::BestK(NonZeroUsize::new(n).unwrap())
    }

    #[test]
    fn mean_of_three_constant_maps() {
        let (a, b, c) = (vec![0.2f32; 12], vec![0.4f32; 12], vec![0.6f32; 12]);
        let mut out = vec![0.0; 12];
        aggregate_costs(Aggregation::Mean, &[&a, &b, &c], &mut out).unwrap();
        assert!(out.iter().all(|v| (v - 0.4).abs() < MEAN_TOL), "{out:?}");
    }

    #[test]
    fn a_single_map_passes_through_unchanged() {
        let a = vec![0.1f32, 0.7, 1.9, 0.0];
        let mut out = vec![0.0; 4];
        for aggregation in [Aggregation::Mean, k(1), k(3)] {
            aggregate_costs(aggregation, &[&a], &mut out).unwrap();
            assert_eq!(out, a);
        }
    }

    #[test]
    fn best_k_takes_the_k_lowest_costs() {
        let s0 = [0.9f32, 0.1, 1.0];
        let s1 = [0.2f32, 0.3, 1.0];
        let s2 = [0.4f32, 1.5, 0.0];
        let s3 = [0.3f32, 0.2, 2.0];
        let mut out = [0.0; 3];
        aggregate_costs(k(2), &[&s0, &s1, &s2, &s3], &mut out).unwrap();
        let want = [(0.2 + 0.3) / 2.0, (0.1 + 0.2) / 2.0, (0.0 + 1.0) / 2.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < MEAN_TOL, "{out:?}");
        }
        // k ≥ the number of sources is the plain mean, bit for bit.
        let mut mean = [0.0; 3];
        aggregate_costs(Aggregation::Mean, &[&s0, &s1, &s2, &s3], &mut mean).unwrap();
        aggregate_costs(k(4), &[&s0, &s1, &s2, &s3], &mut out).unwrap();
        assert_eq!(out, mean);
        aggregate_costs(k(9), &[&s0, &s1, &s2, &s3], &mut out).unwrap();
        assert_eq!(out, mean);
    }

    #[test]
    fn best_k_ignores_an_occluded_source() {
        // Three sources agree on a minimum at hypothesis 2, an occluded one disagrees strongly.
        let agree = [0.4f32, 0.5, 0.1, 0.6];
        let occluded = [0.0f32, 0.9, 2.0, 1.0];
        let argmin = |aggregation| {
            let costs: Vec<f32> = (0..4)
                .map(|d| {
                    let (a, o) = ([agree[d]], [occluded[d]]);
                    let mut out = [0.0];
                    aggregate_costs(aggregation, &[&a, &a, &a, &o], &mut out).unwrap();
                    out[0]
                })
                .collect();
            (0..4).min_by(|&i, &j| costs[i].total_cmp(&costs[j])).unwrap()
        };
        assert_eq!(argmin(k(3)), 2);
        assert_eq!(argmin(Aggregation::Mean), 0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = [0.0f32; 3];
        let short = [0.0f32; 2];
        let mut out = [0.0; 3];
        assert_eq!(
            aggregate_costs(Aggregation::Mean, &[], &mut out),
            Err(AggregateError::NoSources)
        );
        assert_eq!(
            aggregate_costs(Aggregation::Mean, &[&a, &short], &mut out),
            Err(AggregateError::LengthMismatch { source_idx: 1, expected: 3, actual: 2 })
        );
        let many = vec![&a[..]; MAX_SOURCES + 1];
        assert_eq!(
            aggregate_costs(k(2), &many, &mut out),
            Err(AggregateError::TooManySources { n_sources: MAX_SOURCES + 1 })
        );
    }
}
