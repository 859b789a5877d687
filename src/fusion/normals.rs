//! Surface normals of a point cloud by local PCA, oriented toward the viewer, as the reference
//! does with Open3D (`estimate_normals` with a hybrid search, then
//! `orient_normals_towards_camera_location`).
//!
//! For each point: take at most `max_neighbors` nearest points within `radius` (the point
//! itself included, Open3D's hybrid search), form their covariance about their mean, and use
//! the eigenvector of the smallest eigenvalue. With fewer than 3 neighbours the plane is
//! undefined and the normal falls back to (0, 0, 1) before orientation (what Open3D does; the
//! reference leaves it so). Orientation then flips each normal so it faces the viewer; by
//! default the reference camera at the world origin, i.e. `n·(c − p) ≥ 0`. Because +Z points
//! down into the water and the cameras sit near Z = 0, oriented normals point up (n_z < 0).

use std::num::NonZeroUsize;

use nalgebra::{Matrix3, Point3, SymmetricEigen, Vector3};
use rayon::prelude::*;

use super::{FusionError, check_finite};
use crate::cloud::PointCloud;
use crate::parallel::POINTS_PER_TASK;
use crate::spatial::PointIndex;

/// Minimum neighbours (the point included) for a PCA plane; below it the normal is the fallback.
pub const MIN_PCA_NEIGHBORS: usize = 3;

/// Which way normals are flipped.
#[derive(Clone, Debug, PartialEq)]
pub enum NormalOrientation {
    /// Toward a fixed viewpoint `c`: `n·(c − p) ≥ 0`. The reference uses the world origin (the
    /// reference camera's centre).
    TowardPoint(Point3<f64>),
    /// Toward the nearest of several camera centres (e.g. the whole rig): each point faces the
    /// camera closest to it, which stays right for wide rigs and tilted surfaces.
    TowardNearestCamera(Vec<Point3<f64>>),
    /// Up, toward the air: `n_z ≤ 0` (world +Z points down into the water).
    Up,
}

impl Default for NormalOrientation {
    /// Toward the origin, as the reference.
    fn default() -> Self {
        Self::TowardPoint(Point3::origin())
    }
}

/// Options of normal estimation.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalOptions {
    /// Neighbourhood radius in metres. The reference uses 5 voxel sizes: wide enough for a
    /// stable plane fit on a voxelised cloud, narrow enough to keep edges.
    pub radius: f64,
    /// At most this many nearest neighbours inside the radius (reference: 30).
    pub max_neighbors: usize,
    /// How normals are flipped.
    pub orientation: NormalOrientation,
}

impl NormalOptions {
    /// The reference settings for a cloud voxelised at `voxel_size`: radius `5·voxel_size`,
    /// 30 neighbours, oriented toward the origin.
    pub fn for_voxel_size(voxel_size: f64) -> Self {
        Self {
            radius: 5.0 * voxel_size,
            max_neighbors: 30,
            orientation: NormalOrientation::default(),
        }
    }

    pub(super) fn validate(&self) -> Result<NonZeroUsize, FusionError> {
        if !(self.radius.is_finite() && self.radius > 0.0) {
            return Err(FusionError::InvalidParameter {
                name: "radius",
                value: self.radius,
                reason: "must be a positive number of metres",
            });
        }
        if let NormalOrientation::TowardNearestCamera(cameras) = &self.orientation {
            if cameras.is_empty() {
                return Err(FusionError::InvalidParameter {
                    name: "cameras",
                    value: 0.0,
                    reason: "orienting toward the nearest camera needs at least one camera",
                });
            }
            check_finite(cameras)?;
        }
        NonZeroUsize::new(self.max_neighbors).ok_or(FusionError::InvalidParameter {
            name: "max_neighbors",
            value: 0.0,
            reason: "must be at least 1",
        })
    }
}

/// Unit normals of `points` (one per point, same order), by PCA over hybrid-search
/// neighbourhoods, oriented per `options.orientation`.
pub fn estimate_normals(
    points: &[Point3<f64>],
    options: &NormalOptions,
) -> Result<Vec<Vector3<f64>>, FusionError> {
    let max_neighbors = options.validate()?;
    check_finite(points)?;
    let index = PointIndex::try_new(points)?;
    let mut normals = vec![Vector3::zeros(); points.len()];
    normals.par_chunks_mut(POINTS_PER_TASK).enumerate().for_each(|(chunk_idx, out)| {
        let first = chunk_idx * POINTS_PER_TASK;
        for (i, n) in (first..).zip(out.iter_mut()) {
            let p = &points[i];
            let neighbours = index.nearest_within_sq(p, max_neighbors, options.radius);
            let normal = if neighbours.len() >= MIN_PCA_NEIGHBORS {
                pca_normal(p, neighbours.iter().map(|nb| &points[nb.index]))
            } else {
                Vector3::z()
            };
            *n = orient(normal, p, &options.orientation);
        }
    });
    Ok(normals)
}

/// The normals of the points [`backproject`](super::backproject) makes from `depth` (one per
/// valid pixel whose ray exists, row-major), taken from a refined depth map's per-pixel
/// `normal` image (world frame, facing the camera) instead of PCA: normals from stereo, sharp
/// at edges and free of any neighbour search. A pixel whose normal is unknown (NaN) gets
/// `−ray direction` (facing the camera). Panics when the sizes differ (a programming error).
pub fn depth_map_normals(
    camera: &crate::geom::refraction::RefractiveCamera,
    depth: &crate::dense::DepthMap,
    normal: &crate::dense::NormalImage,
) -> Vec<Vector3<f64>> {
    let size = depth.size();
    assert_eq!(size, normal.size(), "depth map and normal image of one camera");
    assert_eq!(size, camera.size(), "depth map and camera");
    let rows: Vec<Vec<Vector3<f64>>> = (0..size.height)
        .into_par_iter()
        .map(|y| {
            let mut out = Vec::new();
            for (x, d) in depth.depth().row(y).iter().enumerate() {
                if !d.is_finite() {
                    continue;
                }
                if let Ok(ray) = camera.cast_ray(x as f64, y as f64) {
                    let [nx, ny, nz] = normal.get(x, y);
                    let n = Vector3::new(f64::from(nx), f64::from(ny), f64::from(nz));
                    out.push(if n.iter().all(|c| c.is_finite()) && n.norm() > 0.5 {
                        n.normalize()
                    } else {
                        -ray.dir.into_inner()
                    });
                }
            }
            out
        })
        .collect();
    rows.into_iter().flatten().collect()
}

/// `cloud` with its normals replaced by [`estimate_normals`].
pub fn with_normals(cloud: PointCloud, options: &NormalOptions) -> Result<PointCloud, FusionError> {
    let normals = estimate_normals(cloud.points(), options)?;
    // One normal per point by construction.
    cloud.with_normals(normals).map_err(|e| unreachable!("{e}"))
}

/// The eigenvector of the smallest eigenvalue of the neighbourhood covariance. Coordinates are
/// taken relative to `centre` first: neighbourhoods are millimetres wide at metres from the
/// origin, and centring keeps the one-pass covariance `E[ddᵀ] − E[d]E[d]ᵀ` free of
/// cancellation (offsets of millimetres, squares of 1e-6 m², far above f64's rounding). One
/// pass, no allocation: this runs for every point of the cloud.
pub(super) fn pca_normal<'a>(
    centre: &Point3<f64>,
    neighbours: impl Iterator<Item = &'a Point3<f64>>,
) -> Vector3<f64> {
    let mut n = 0.0f64;
    let mut sum = Vector3::zeros();
    let mut outer = Matrix3::zeros();
    for q in neighbours {
        let d = q - centre;
        n += 1.0;
        sum += d;
        outer += d * d.transpose();
    }
    let mean = sum / n;
    let covariance = outer / n - mean * mean.transpose();
    let eigen = SymmetricEigen::new(covariance);
    let smallest = eigen.eigenvalues.imin();
    let normal = eigen.eigenvectors.column(smallest).into_owned();
    // A degenerate neighbourhood (all points equal) still yields a unit eigenvector; only a
    // non-finite result (never seen in practice) takes the fallback.
    normal.try_normalize(0.0).filter(|v| v.iter().all(|c| c.is_finite())).unwrap_or_else(Vector3::z)
}

/// Flips `normal` to face the viewer of `p`.
pub(super) fn orient(
    normal: Vector3<f64>,
    p: &Point3<f64>,
    orientation: &NormalOrientation,
) -> Vector3<f64> {
    let toward = match orientation {
        NormalOrientation::TowardPoint(c) => c - p,
        NormalOrientation::TowardNearestCamera(cameras) => {
            // Validated non-empty; ties go to the first camera.
            let nearest = cameras
                .iter()
                .min_by(|a, b| (*a - p).norm_squared().total_cmp(&(*b - p).norm_squared()))
                .unwrap_or(p);
            nearest - p
        }
        NormalOrientation::Up => -Vector3::z(),
    };
    if normal.dot(&toward) < 0.0 { -normal } else { normal }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// Normals are normalised in f64; 1e-9 is far above the rounding (1e-16) and far below any
    /// real error.
    const EXACT_TOL: f64 = 1e-9;
    /// The reference suite's bound for unit length.
    const UNIT_TOL: f64 = 1e-5;

    fn grid(n: usize, step: f64, f: impl Fn(f64, f64) -> Point3<f64>) -> Vec<Point3<f64>> {
        (0..n * n).map(|i| f((i % n) as f64 * step, (i / n) as f64 * step)).collect()
    }

    #[test]
    fn plane_normals_are_exact_and_face_the_origin() {
        // A tilted plane below the cameras: z = 1.2 + 0.3x − 0.1y.
        let pts = grid(20, 0.002, |x, y| Point3::new(x, y, 1.2 + 0.3 * x - 0.1 * y));
        let normals = estimate_normals(&pts, &NormalOptions::for_voxel_size(0.002)).unwrap();
        let expected = Vector3::new(0.3, -0.1, -1.0).normalize(); // n_z < 0: faces up
        for n in &normals {
            assert!((n - expected).norm() < EXACT_TOL, "{n:?}");
        }
    }

    #[test]
    fn normals_are_unit_length_and_patch_below_the_origin_faces_up() {
        let mut rng = Rng::new(3);
        let pts: Vec<_> = (0..2000)
            .map(|_| {
                let (x, y) = (rng.range(-0.05, 0.05), rng.range(-0.05, 0.05));
                Point3::new(x, y, 0.5 + 0.02 * (40.0 * x).sin() + 0.0005 * rng.normal())
            })
            .collect();
        let normals = estimate_normals(&pts, &NormalOptions::for_voxel_size(0.002)).unwrap();
        assert!(normals.iter().all(|n| (n.norm() - 1.0).abs() < UNIT_TOL));
        let mean_nz = normals.iter().map(|n| n.z).sum::<f64>() / normals.len() as f64;
        assert!(mean_nz < 0.0, "{mean_nz}");
    }

    #[test]
    fn orientation_choices() {
        let pts = grid(10, 0.001, |x, y| Point3::new(x, y, 1.0));
        let normal_of = |orientation| {
            let options = NormalOptions { orientation, ..NormalOptions::for_voxel_size(0.001) };
            estimate_normals(&pts, &options).unwrap()[0]
        };
        assert_eq!(normal_of(NormalOrientation::Up).z, -1.0);
        assert_eq!(normal_of(NormalOrientation::TowardPoint(Point3::new(0.0, 0.0, 3.0))).z, 1.0);
        let cameras = vec![Point3::new(0.0, 0.0, 2.5), Point3::new(5.0, 5.0, -1.0)];
        assert_eq!(normal_of(NormalOrientation::TowardNearestCamera(cameras)).z, 1.0);
        let bad = NormalOptions {
            orientation: NormalOrientation::TowardNearestCamera(vec![]),
            ..NormalOptions::for_voxel_size(0.001)
        };
        assert!(estimate_normals(&pts, &bad).is_err());
    }

    #[test]
    fn isolated_points_fall_back_to_z_then_orient() {
        let pts = vec![
            Point3::new(0.0, 0.0, 1.0),
            Point3::new(1.0, 0.0, 1.0),
            Point3::new(1.001, 0.0, 1.0),
        ];
        let normals = estimate_normals(&pts, &NormalOptions::for_voxel_size(0.001)).unwrap();
        // Fewer than 3 neighbours: (0, 0, 1), flipped toward the origin above.
        assert!(normals.iter().all(|n| *n == -Vector3::z()), "{normals:?}");
    }

    #[test]
    fn bad_options_are_errors() {
        let pts = vec![Point3::origin()];
        let mut options = NormalOptions::for_voxel_size(0.0);
        assert!(estimate_normals(&pts, &options).is_err());
        options.radius = 0.01;
        options.max_neighbors = 0;
        assert!(estimate_normals(&pts, &options).is_err());
        assert!(estimate_normals(&[], &NormalOptions::for_voxel_size(0.01)).unwrap().is_empty());
    }
}
