//! Statistical outlier removal, as Open3D's `remove_statistical_outlier(nb_neighbors,
//! std_ratio)` that the reference applies to the fused cloud before meshing (§6.3).
//!
//! For every point, `dᵢ` is the mean Euclidean distance to its `nb_neighbors` nearest points,
//! **the point itself included** (at distance 0). Then `μ` and `σ` (Bessel-corrected) of those
//! means give the threshold `μ + std_ratio·σ`, and a point is kept when `0 < dᵢ < μ +
//! std_ratio·σ`. Two Open3D details are kept on purpose: a point whose neighbours all coincide
//! with it (`dᵢ = 0`) is dropped, and such points are left out of the sums but still counted in
//! `n` when dividing (`μ = Σ_{dᵢ>0} dᵢ / n`, `σ² = Σ_{dᵢ>0} (dᵢ − μ)² / (n − 1)`).
//!
//! The reference pipeline only filters when the cloud has more than `nb_neighbors` points;
//! [`remove_statistical_outliers`] does the same, keeping smaller clouds whole. Sums run in
//! point order, so results do not depend on the thread count; and since the nearest distances
//! of a point do not depend on the input order, neither does the kept set.

use std::num::NonZeroUsize;

use nalgebra::Point3;
use rayon::prelude::*;

use super::{FusionError, check_finite};
use crate::cloud::PointCloud;
use crate::parallel::POINTS_PER_TASK;
use crate::spatial::PointIndex;

/// Options of statistical outlier removal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutlierOptions {
    /// Neighbours per point, the point itself included (reference: 20). More neighbours judge
    /// density over a wider area and remove small clusters as well as single points.
    pub nb_neighbors: usize,
    /// Points farther than `μ + std_ratio·σ` are removed (reference: 2.0); smaller is stricter.
    pub std_ratio: f64,
}

impl Default for OutlierOptions {
    /// The reference defaults: 20 neighbours, 2 standard deviations.
    fn default() -> Self {
        Self { nb_neighbors: 20, std_ratio: 2.0 }
    }
}

impl OutlierOptions {
    pub(super) fn validate(&self) -> Result<NonZeroUsize, FusionError> {
        if !(self.std_ratio.is_finite() && self.std_ratio > 0.0) {
            return Err(FusionError::InvalidParameter {
                name: "std_ratio",
                value: self.std_ratio,
                reason: "must be positive",
            });
        }
        NonZeroUsize::new(self.nb_neighbors).ok_or(FusionError::InvalidParameter {
            name: "nb_neighbors",
            value: 0.0,
            reason: "must be at least 1",
        })
    }
}

/// For each point, whether it survives the statistical test (Open3D's semantics, see the module
/// docs). Always applies the test, whatever the cloud size.
pub fn statistical_inlier_mask(
    points: &[Point3<f64>],
    options: &OutlierOptions,
) -> Result<Vec<bool>, FusionError> {
    let k = options.validate()?;
    check_finite(points)?;
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let index = PointIndex::try_new(points)?;
    let mut mean_distance = vec![0.0f64; points.len()];
    mean_distance.par_chunks_mut(POINTS_PER_TASK).enumerate().for_each(|(chunk_idx, out)| {
        let first = chunk_idx * POINTS_PER_TASK;
        for (i, d) in (first..).zip(out.iter_mut()) {
            let neighbours = index.nearest_sq(&points[i], k);
            // Never empty: the point itself is in the index.
            let total: f64 = neighbours.iter().map(|nb| nb.distance_sq.sqrt()).sum();
            *d = total / neighbours.len() as f64;
        }
    });
    Ok(inliers_from_mean_distances(&mean_distance, options.std_ratio))
}

/// The inlier rule of [`statistical_inlier_mask`] from each point's mean neighbour distance.
pub(super) fn inliers_from_mean_distances(mean_distance: &[f64], std_ratio: f64) -> Vec<bool> {
    let n = mean_distance.len() as f64;
    let positive = || mean_distance.iter().copied().filter(|&d| d > 0.0);
    let mean = positive().sum::<f64>() / n;
    let std_dev = (positive().map(|d| (d - mean) * (d - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let threshold = mean + std_ratio * std_dev;
    mean_distance.iter().map(|&d| d > 0.0 && d < threshold).collect()
}

/// `cloud` without its statistical outliers (all attributes kept together). Clouds of at most
/// `nb_neighbors` points are returned whole, as the reference pipeline does.
pub fn remove_statistical_outliers(
    cloud: &PointCloud,
    options: &OutlierOptions,
) -> Result<PointCloud, FusionError> {
    options.validate()?;
    if cloud.len() <= options.nb_neighbors {
        return Ok(cloud.clone());
    }
    let keep = statistical_inlier_mask(cloud.points(), options)?;
    Ok(cloud.select(&keep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn noisy_patch(rng: &mut Rng, n: usize) -> Vec<Point3<f64>> {
        (0..n)
            .map(|_| {
                Point3::new(rng.range(0.0, 0.1), rng.range(0.0, 0.1), 1.5 + 0.001 * rng.normal())
            })
            .collect()
    }

    #[test]
    fn a_far_point_is_removed_and_the_patch_kept() {
        let mut rng = Rng::new(5);
        let mut pts = noisy_patch(&mut rng, 2000);
        pts.push(Point3::new(0.05, 0.05, 1.9));
        let cloud = PointCloud::new(pts).with_colors(vec![[1, 2, 3]; 2001]).unwrap();
        let keep = statistical_inlier_mask(cloud.points(), &OutlierOptions::default()).unwrap();
        assert!(!keep[2000]);
        let kept = keep.iter().filter(|k| **k).count();
        assert!((1900..=2000).contains(&kept), "{kept}");
        let filtered = remove_statistical_outliers(&cloud, &OutlierOptions::default()).unwrap();
        assert_eq!(filtered.len(), kept);
        assert_eq!(filtered.colors().unwrap().len(), kept);
    }

    #[test]
    fn matches_a_brute_force_computation() {
        let mut rng = Rng::new(6);
        let mut pts = noisy_patch(&mut rng, 300);
        pts.extend([Point3::new(0.5, 0.5, 1.0), Point3::new(0.5, 0.5, 1.0)]); // an isolated duplicate pair
        let options = OutlierOptions { nb_neighbors: 8, std_ratio: 1.5 };
        let means: Vec<f64> = pts
            .iter()
            .map(|p| {
                let mut d: Vec<f64> = pts.iter().map(|q| (q - p).norm()).collect();
                d.sort_by(f64::total_cmp);
                d[..8].iter().sum::<f64>() / 8.0
            })
            .collect();
        let n = pts.len() as f64;
        let mu = means.iter().filter(|&&d| d > 0.0).sum::<f64>() / n;
        let sigma = (means.iter().filter(|&&d| d > 0.0).map(|d| (d - mu).powi(2)).sum::<f64>()
            / (n - 1.0))
            .sqrt();
        let expected: Vec<bool> = means.iter().map(|&d| d > 0.0 && d < mu + 1.5 * sigma).collect();
        assert_eq!(statistical_inlier_mask(&pts, &options).unwrap(), expected);
        // The duplicate pair is far from everything, so it goes.
        assert!(!expected[300] && !expected[301]);
    }

    #[test]
    fn coincident_points_are_dropped_as_in_open3d() {
        // With k = 2, each point of a duplicated pair has mean distance 0.
        let mut pts: Vec<_> = (0..30).map(|i| Point3::new(i as f64 * 0.01, 0.0, 1.0)).collect();
        pts.push(pts[10]);
        let keep =
            statistical_inlier_mask(&pts, &OutlierOptions { nb_neighbors: 2, std_ratio: 2.0 })
                .unwrap();
        assert!(!keep[10] && !keep[30]);
        assert!(keep[11]);
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let mut rng = Rng::new(7);
        let mut pts = noisy_patch(&mut rng, 1000);
        pts.extend((0..5).map(|i| Point3::new(0.2 + 0.1 * i as f64, 0.0, 1.0)));
        let options = OutlierOptions::default();
        let keep = statistical_inlier_mask(&pts, &options).unwrap();
        let mut perm: Vec<usize> = (0..pts.len()).collect();
        rng.shuffle(&mut perm);
        let shuffled: Vec<_> = perm.iter().map(|&i| pts[i]).collect();
        let keep_shuffled = statistical_inlier_mask(&shuffled, &options).unwrap();
        for (j, &i) in perm.iter().enumerate() {
            assert_eq!(keep_shuffled[j], keep[i]);
        }
    }

    #[test]
    fn small_clouds_are_kept_whole_and_bad_options_rejected() {
        let cloud = PointCloud::new((0..20).map(|i| Point3::new(i as f64, 0.0, 0.0)).collect());
        assert_eq!(remove_statistical_outliers(&cloud, &OutlierOptions::default()).unwrap(), cloud);
        let bad = OutlierOptions { nb_neighbors: 0, std_ratio: 2.0 };
        assert!(remove_statistical_outliers(&cloud, &bad).is_err());
        let bad = OutlierOptions { nb_neighbors: 5, std_ratio: -1.0 };
        assert!(statistical_inlier_mask(cloud.points(), &bad).is_err());
        assert!(statistical_inlier_mask(&[], &OutlierOptions::default()).unwrap().is_empty());
    }
}
