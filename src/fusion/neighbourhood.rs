//! Normals and statistical outliers of one cloud from a single neighbour query per point.
//!
//! [`estimate_normals`](super::estimate_normals) asks for the `max_neighbors` nearest points
//! within a radius and [`statistical_inlier_mask`](super::statistical_inlier_mask) for the
//! `nb_neighbors` nearest: both are prefixes of the same distance-sorted list, so the fused
//! cloud's two passes over millions of points share one query, with results equal to the two
//! separate calls (tested). The query runs on a grid of vertical columns
//! (module `fusion::columns`), exact like the KD-tree and several times faster on
//! surface-like clouds.

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use super::columns::ColumnIndex;
use super::normals::{MIN_PCA_NEIGHBORS, orient, pca_normal};
use super::outliers::inliers_from_mean_distances;
use super::{FusionError, NormalOptions, OutlierOptions, check_finite};
use crate::parallel::POINTS_PER_TASK;

/// The normal of every point (as [`estimate_normals`](super::estimate_normals) with
/// `normal_options`) and its inlier flag (as
/// [`statistical_inlier_mask`](super::statistical_inlier_mask) with `outlier_options`).
pub fn normals_and_inliers(
    points: &[Point3<f64>],
    normal_options: &NormalOptions,
    outlier_options: &OutlierOptions,
) -> Result<(Vec<Vector3<f64>>, Vec<bool>), FusionError> {
    let max_neighbors = normal_options.validate()?;
    let nb_neighbors = outlier_options.validate()?;
    check_finite(points)?;
    if points.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let k = nb_neighbors.max(max_neighbors);
    let radius_sq = normal_options.radius * normal_options.radius;
    // Columns of 2/5 of the normal radius: with the radius at 5 voxels, a 5 × 5 block of
    // columns holds about 100 points of a voxelised surface, enough for 30 neighbours.
    let index = ColumnIndex::new(points, normal_options.radius * 0.4);
    let mut normals = vec![Vector3::zeros(); points.len()];
    let mut mean_distance = vec![0.0f64; points.len()];
    normals
        .par_chunks_mut(POINTS_PER_TASK)
        .zip(mean_distance.par_chunks_mut(POINTS_PER_TASK))
        .enumerate()
        .for_each(|(chunk_idx, (normals, distances))| {
            let first = chunk_idx * POINTS_PER_TASK;
            let mut neighbours = Vec::new();
            for (i, (normal, distance)) in (first..).zip(normals.iter_mut().zip(distances)) {
                let p = &points[i];
                // Sorted by distance (then index); never empty: the point itself is indexed.
                index.nearest(p, k.get(), &mut neighbours);
                let within = neighbours
                    .iter()
                    .take(max_neighbors.get())
                    .take_while(|nb| nb.distance_sq <= radius_sq);
                let n = if within.clone().count() >= MIN_PCA_NEIGHBORS {
                    pca_normal(p, within.map(|nb| &points[nb.index]))
                } else {
                    Vector3::z()
                };
                *normal = orient(n, p, &normal_options.orientation);
                let nearest = &neighbours[..nb_neighbors.get().min(neighbours.len())];
                *distance = nearest.iter().map(|nb| nb.distance_sq.sqrt()).sum::<f64>()
                    / nearest.len() as f64;
            }
        });
    Ok((normals, inliers_from_mean_distances(&mean_distance, outlier_options.std_ratio)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::{NormalOrientation, estimate_normals, statistical_inlier_mask};
    use crate::testutil::Rng;

    #[test]
    fn equals_the_two_separate_passes() {
        let mut rng = Rng::new(11);
        // A rippled patch with scattered outliers, at millimetre spacing.
        let mut points: Vec<Point3<f64>> = (0..6000)
            .map(|_| {
                let (x, y) = (rng.range(0.0, 0.08), rng.range(0.0, 0.08));
                Point3::new(x, y, 1.5 + 0.003 * (x * 200.0).sin() + 0.0002 * rng.normal())
            })
            .collect();
        points.extend(
            (0..30).map(|_| {
                Point3::new(rng.range(0.0, 0.08), rng.range(0.0, 0.08), rng.range(1.3, 1.7))
            }),
        );
        for (max_neighbors, nb_neighbors) in [(30, 20), (10, 20), (20, 20)] {
            let normal_options =
                NormalOptions { radius: 0.004, max_neighbors, orientation: NormalOrientation::Up };
            let outlier_options = OutlierOptions { nb_neighbors, std_ratio: 2.0 };
            let (normals, inliers) =
                normals_and_inliers(&points, &normal_options, &outlier_options).unwrap();
            let want_normals = estimate_normals(&points, &normal_options).unwrap();
            let want_inliers = statistical_inlier_mask(&points, &outlier_options).unwrap();
            assert_eq!(inliers, want_inliers);
            for (a, b) in normals.iter().zip(&want_normals) {
                assert!((a - b).norm() < 1e-9, "{a:?} vs {b:?}");
            }
            assert!(inliers.iter().filter(|k| !**k).count() >= 20);
        }
        let empty = normals_and_inliers(
            &[],
            &NormalOptions::for_voxel_size(0.001),
            &OutlierOptions::default(),
        )
        .unwrap();
        assert_eq!(empty, (Vec::new(), Vec::new()));
    }
}
