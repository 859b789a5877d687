//! Voxel down-sampling: one point per occupied cube of side `s`, at the mean of the points in
//! it, exactly as Open3D's `VoxelDownSample` bins them, but in a deterministic order.
//!
//! The grid is anchored half a voxel below the cloud's minimum bound: the voxel of `p` is
//! `⌊(p − (min_bound − s/2))/s⌋` per axis (reference-numerics §6.2). Each occupied voxel outputs
//! the mean position, the mean colour and, when the input has normals, the mean normal.
//!
//! Differences from Open3D, all about determinism or types:
//! - Output is **sorted by voxel key** `(i, j, k)` (Open3D's order follows a hash map).
//! - Within a voxel, points are summed in a canonical order (by coordinates, then colour, then
//!   normal), so a shuffled input gives bit-identical output.
//! - Colours are `u8`: the mean is rounded to nearest (Open3D averages floats in [0, 1]).
//! - Mean normals are re-normalised to unit length (Open3D leaves them shorter); NaN normals
//!   are skipped in the sum as Open3D does. A voxel whose normals cancel gets (0, 0, 1).

use std::cmp::Ordering;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use super::{FusionError, check_finite};
use crate::cloud::PointCloud;

/// Down-samples `cloud` to one point per occupied voxel of side `voxel_size` (metres), sorted
/// by voxel key. An empty cloud gives an empty cloud.
pub fn voxel_downsample(cloud: &PointCloud, voxel_size: f64) -> Result<PointCloud, FusionError> {
    if !(voxel_size.is_finite() && voxel_size > 0.0) {
        return Err(FusionError::InvalidParameter {
            name: "voxel_size",
            value: voxel_size,
            reason: "must be a positive number of metres",
        });
    }
    let points = cloud.points();
    check_finite(points)?;
    let Some((lo, hi)) = cloud.bounds() else {
        return Ok(cloud.clone());
    };
    let origin = lo - Vector3::repeat(voxel_size / 2.0);
    let extent = (hi - lo).max() + voxel_size;
    if voxel_size * f64::from(i32::MAX) < extent {
        return Err(FusionError::VoxelTooSmall { voxel_size, extent });
    }
    let key_of = |p: &Point3<f64>| -> [i32; 3] {
        let r = (p - origin) / voxel_size;
        // In range by the extent check above.
        [r.x.floor() as i32, r.y.floor() as i32, r.z.floor() as i32]
    };
    let (normals, colors) = (cloud.normals(), cloud.colors());
    let mut order: Vec<([i32; 3], u32)> =
        points.par_iter().enumerate().map(|(i, p)| (key_of(p), i as u32)).collect();
    let canonical = |a: &([i32; 3], u32), b: &([i32; 3], u32)| -> Ordering {
        let (ia, ib) = (a.1 as usize, b.1 as usize);
        a.0.cmp(&b.0)
            .then_with(|| cmp_coords(&points[ia].coords, &points[ib].coords))
            .then_with(|| colors.map_or(Ordering::Equal, |c| c[ia].cmp(&c[ib])))
            .then_with(|| normals.map_or(Ordering::Equal, |n| cmp_coords(&n[ia], &n[ib])))
    };
    // The comparator is a total order on everything that reaches the output, so an unstable
    // sort gives the same result as a stable one, whatever the input order.
    order.par_sort_unstable_by(canonical);

    let mut out_points = Vec::new();
    let mut out_normals = normals.map(|_| Vec::new());
    let mut out_colors = colors.map(|_| Vec::new());
    for run in order.chunk_by(|a, b| a.0 == b.0) {
        let n = run.len() as f64;
        let mut sum = Vector3::zeros();
        for &(_, i) in run {
            sum += points[i as usize].coords;
        }
        out_points.push(Point3::from(sum / n));
        if let (Some(out), Some(normals)) = (out_normals.as_mut(), normals) {
            let mut total = Vector3::zeros();
            for &(_, i) in run {
                let normal = normals[i as usize];
                if !normal.iter().any(|c| c.is_nan()) {
                    total += normal;
                }
            }
            out.push(total.try_normalize(0.0).unwrap_or_else(Vector3::z));
        }
        if let (Some(out), Some(colors)) = (out_colors.as_mut(), colors) {
            let mut total = [0u64; 3];
            for &(_, i) in run {
                for (t, c) in total.iter_mut().zip(colors[i as usize]) {
                    *t += u64::from(c);
                }
            }
            let count = run.len() as u64;
            // Round half up: (sum + n/2)/n; the mean of u8 values fits in u8.
            out.push(total.map(|t| ((t + count / 2) / count) as u8));
        }
    }
    // The attribute vectors are built alongside the points, so the lengths agree.
    PointCloud::from_parts(out_points, out_normals, out_colors)
        .map_err(|e| unreachable!("attribute lengths match by construction: {e}"))
}

fn cmp_coords(a: &Vector3<f64>, b: &Vector3<f64>) -> Ordering {
    a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)).then(a.z.total_cmp(&b.z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn bits(cloud: &PointCloud) -> Vec<u64> {
        let mut v: Vec<u64> =
            cloud.points().iter().flat_map(|p| p.iter().map(|c| c.to_bits())).collect();
        if let Some(n) = cloud.normals() {
            v.extend(n.iter().flat_map(|n| n.iter().map(|c| c.to_bits())));
        }
        if let Some(c) = cloud.colors() {
            v.extend(c.iter().flat_map(|c| c.map(u64::from)));
        }
        v
    }

    #[test]
    fn five_points_give_one_to_five_coloured_points() {
        let pts = vec![
            Point3::new(0.0, 0.0, 1.0),
            Point3::new(0.0003, 0.0, 1.0),
            Point3::new(0.1, 0.0, 1.0),
            Point3::new(0.0, 0.1, 1.0),
            Point3::new(0.1, 0.1, 1.1),
        ];
        let cloud = PointCloud::new(pts).with_colors(vec![[10, 20, 30]; 5]).unwrap();
        let down = voxel_downsample(&cloud, 0.001).unwrap();
        assert!((1..=5).contains(&down.len()));
        assert_eq!(down.len(), 4);
        assert_eq!(down.colors().unwrap().len(), 4);
    }

    #[test]
    fn two_rows_of_sixteen_points_merge() {
        let pts: Vec<_> = (0..32)
            .map(|i| Point3::new((i % 16) as f64 * 0.004, (i / 16) as f64 * 0.004, 1.5))
            .collect();
        let down = voxel_downsample(&PointCloud::new(pts), 0.01).unwrap();
        assert!(down.len() < 32 && !down.is_empty(), "{}", down.len());
    }

    #[test]
    fn bins_and_means_follow_the_half_voxel_anchored_grid() {
        // min_bound = 0 so the grid starts at −0.5: voxel i covers [i − 0.5, i + 0.5).
        let pts = vec![
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(0.4, 0.2, 0.0),
            Point3::new(0.75, 0.0, 0.0),
            Point3::new(1.25, 0.0, 0.0),
            Point3::new(3.0, 2.0, 1.0),
        ];
        let colors = vec![[0, 0, 0], [255, 1, 2], [100, 0, 0], [200, 0, 0], [7, 7, 7]];
        let normals = vec![Vector3::z(), Vector3::z(), Vector3::x(), -Vector3::x(), Vector3::y()];
        let cloud = PointCloud::from_parts(pts, Some(normals), Some(colors)).unwrap();
        let down = voxel_downsample(&cloud, 1.0).unwrap();
        // Voxels (0,0,0) ← points 0,1; (1,0,0) ← points 2,3; (3,2,1) ← point 4; sorted by key.
        assert_eq!(down.len(), 3);
        assert_eq!(down.points()[0], Point3::new(0.2, 0.1, 0.0));
        assert_eq!(down.points()[1], Point3::new(1.0, 0.0, 0.0));
        assert_eq!(down.points()[2], Point3::new(3.0, 2.0, 1.0));
        assert_eq!(down.colors().unwrap(), &[[128, 1, 1], [150, 0, 0], [7, 7, 7]]);
        let n = down.normals().unwrap();
        assert_eq!(n[0], Vector3::z());
        assert_eq!(n[1], Vector3::z(), "cancelling normals fall back to +z");
        assert_eq!(n[2], Vector3::y());
    }

    #[test]
    fn shuffled_input_gives_identical_output() {
        let mut rng = Rng::new(42);
        let n = 3000;
        let pts: Vec<_> = (0..n)
            .map(|_| Point3::new(rng.uniform(), rng.uniform(), 1.0 + 0.1 * rng.uniform()))
            .collect();
        let colors: Vec<[u8; 3]> = (0..n).map(|_| [rng.below(256) as u8, 3, 4]).collect();
        let cloud = PointCloud::new(pts.clone()).with_colors(colors.clone()).unwrap();
        let reference = voxel_downsample(&cloud, 0.05).unwrap();
        let mut perm: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut perm);
        let shuffled = PointCloud::new(perm.iter().map(|&i| pts[i]).collect())
            .with_colors(perm.iter().map(|&i| colors[i]).collect())
            .unwrap();
        assert_eq!(bits(&voxel_downsample(&shuffled, 0.05).unwrap()), bits(&reference));
        // Sorted by voxel key, hence non-decreasing x voxel index first.
        assert!(reference.len() > 100);
    }

    #[test]
    fn bad_inputs_are_errors_and_empty_is_empty() {
        let cloud = PointCloud::new(vec![Point3::origin()]);
        assert!(voxel_downsample(&cloud, 0.0).is_err());
        assert!(voxel_downsample(&cloud, f64::NAN).is_err());
        let bad = PointCloud::new(vec![Point3::origin(), Point3::new(f64::NAN, 0.0, 0.0)]);
        assert_eq!(voxel_downsample(&bad, 1.0), Err(FusionError::NonFinitePoint { index: 1 }));
        let wide = PointCloud::new(vec![Point3::origin(), Point3::new(1e9, 0.0, 0.0)]);
        assert!(matches!(voxel_downsample(&wide, 1e-6), Err(FusionError::VoxelTooSmall { .. })));
        assert!(voxel_downsample(&PointCloud::default(), 0.01).unwrap().is_empty());
    }
}
