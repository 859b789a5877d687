//! Two-view triangulation of matches through the water surface, with the reference's filters
//! (reference-numerics §4.5), and the plausibility window below the water.
//!
//! Each match casts one refracted ray per camera; the point is the midpoint of their common
//! perpendicular ([`crate::geom::triangulate_two_rays`]). It is kept when it lies in front of
//! both ray origins, the rays meet at [`TriangulationOptions::min_angle_deg`] or more (in
//! water, where they actually meet), and it reprojects within
//! [`TriangulationOptions::max_reproj_px`] of both pixels. The reasons a match fails are
//! values ([`PointReject`]), counted by the caller.

use nalgebra::Point3;
use rayon::prelude::*;

use super::{Cameras, SparseError, SparsePoint};
use crate::features::{FrameMatches, Match};
use crate::geom::{RefractiveCamera, triangulate_two_rays};

/// Filters of the sparse triangulation. The defaults are the reference's hard-coded values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriangulationOptions {
    /// Smallest angle between the two rays in water (degrees). Smaller angles make depth
    /// ill-conditioned along the rays.
    pub min_angle_deg: f64,
    /// Largest reprojection error in each image (pixels).
    pub max_reproj_px: f64,
    /// Largest reprojection error of an observation of a multi-view track (pixels). Tighter
    /// than the pair bound: a pair absorbs an error along its epipolar curve into its depth,
    /// while a track's other views expose it, and a bad view pulls the joint solution.
    pub max_track_reproj_px: f64,
    /// Plausibility window: points must lie below the water and less than this far below it
    /// (metres).
    pub max_depth_below_water_m: f64,
    /// Join matches that share keypoints into multi-view tracks (see [`super::tracks`]); off
    /// gives the reference behaviour, one point per match.
    pub merge_tracks: bool,
}

impl Default for TriangulationOptions {
    /// 2°, 3 px and 2 m as in the reference; tracks merged, their observations within 1 px.
    fn default() -> Self {
        Self {
            min_angle_deg: 2.0,
            max_reproj_px: 3.0,
            max_track_reproj_px: 1.0,
            max_depth_below_water_m: 2.0,
            merge_tracks: true,
        }
    }
}

/// Why a match (or a track) gives no point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointReject {
    /// A pixel's ray does not reach the water.
    NoRay,
    /// The rays are parallel to within 0.04°: no intersection.
    Parallel,
    /// The point lies behind a ray's origin (above the water along that ray).
    BehindRay,
    /// The rays meet at less than the minimum angle.
    SmallAngle {
        /// The angle between the rays (degrees).
        angle_deg: f64,
    },
    /// The point has no pixel in a camera.
    NotProjectable,
    /// The point reprojects too far from a pixel.
    Reprojection {
        /// The largest reprojection error (pixels).
        error_px: f64,
    },
    /// The observations of a track disagree (two keypoints of one camera).
    Conflict,
}

/// The point of one match between `cam_a` (side `a`) and `cam_b`, or why there is none.
pub fn triangulate_match(
    cam_a: &RefractiveCamera,
    cam_b: &RefractiveCamera,
    m: &Match,
    options: &TriangulationOptions,
) -> Result<Point3<f64>, PointReject> {
    let ray_a = cam_a.cast_ray(m.a.x, m.a.y).map_err(|_| PointReject::NoRay)?;
    let ray_b = cam_b.cast_ray(m.b.x, m.b.y).map_err(|_| PointReject::NoRay)?;
    let p = triangulate_two_rays(&ray_a, &ray_b).ok_or(PointReject::Parallel)?;
    if ray_a.depth_of(&p) <= 0.0 || ray_b.depth_of(&p) <= 0.0 {
        return Err(PointReject::BehindRay);
    }
    let cos = ray_a.dir.dot(&ray_b.dir).abs();
    if cos >= options.min_angle_deg.to_radians().cos() {
        return Err(PointReject::SmallAngle { angle_deg: cos.min(1.0).acos().to_degrees() });
    }
    let pa = cam_a.project(&p).map_err(|_| PointReject::NotProjectable)?;
    let pb = cam_b.project(&p).map_err(|_| PointReject::NotProjectable)?;
    let error_px = (pa - m.a).norm().max((pb - m.b).norm());
    // A NaN error is rejected too.
    if error_px.is_nan() || error_px >= options.max_reproj_px {
        return Err(PointReject::Reprojection { error_px });
    }
    Ok(p)
}

/// [`triangulate_match`] for every match of a pair, in order.
pub fn triangulate_pair(
    cam_a: &RefractiveCamera,
    cam_b: &RefractiveCamera,
    matches: &[Match],
    options: &TriangulationOptions,
) -> Vec<Result<Point3<f64>, PointReject>> {
    matches.par_iter().map(|m| triangulate_match(cam_a, cam_b, m, options)).collect()
}

/// The reference's sparse cloud: every match of every pair that passes the filters, as its
/// own point (no track merging, no plausibility filter), pairs in order.
pub fn triangulate_all_pairs(
    cameras: &Cameras<'_>,
    frame: &FrameMatches,
    options: &TriangulationOptions,
) -> Result<Vec<SparsePoint>, SparseError> {
    let mut out = Vec::new();
    for pm in &frame.pairs {
        let (cam_a, cam_b) = (camera(cameras, &pm.pair.a)?, camera(cameras, &pm.pair.b)?);
        let results = triangulate_pair(cam_a, cam_b, &pm.matches, options);
        out.extend(pm.matches.iter().zip(results).filter_map(|(m, r)| {
            r.ok().map(|position| SparsePoint { position, score: m.score, n_views: 2 })
        }));
    }
    Ok(out)
}

/// True when `p` lies in the plausibility window `water_z < Z < water_z + max_below`
/// (both bounds strict, as in the reference).
pub fn is_plausible(p: &Point3<f64>, water_z: f64, max_below: f64) -> bool {
    p.z > water_z && p.z < water_z + max_below
}

/// The points of `points` inside the plausibility window, in order.
pub fn filter_plausible(points: &[SparsePoint], water_z: f64, max_below: f64) -> Vec<SparsePoint> {
    points.iter().filter(|p| is_plausible(&p.position, water_z, max_below)).copied().collect()
}

/// The camera named `name`.
pub(super) fn camera<'c>(
    cameras: &Cameras<'c>,
    name: &str,
) -> Result<&'c RefractiveCamera, SparseError> {
    cameras.get(name).copied().ok_or_else(|| SparseError::UnknownCamera(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{CameraPair, PairMatches};
    use crate::sparse::testutil::{camera_at, pixel_match};

    /// The reference cases hold to 1e-5 m; in f64 through exact projection they hold to 1e-9.
    const ROUND_TRIP_M: f64 = 1e-9;

    #[test]
    fn pair_round_trip() {
        let cam1 = camera_at(0.0);
        let cam2 = camera_at(0.635);
        let opts = TriangulationOptions::default();
        let points =
            [Point3::new(0.3, 0.2, 1.5), Point3::new(0.0, 0.0, 1.4), Point3::new(-0.2, 0.1, 1.3)];
        let matches: Vec<Match> = points.iter().map(|p| pixel_match(&cam1, &cam2, p, p)).collect();
        let results = triangulate_pair(&cam1, &cam2, &matches, &opts);
        for (p, r) in points.iter().zip(&results) {
            let q = r.expect("valid");
            assert!((q - p).norm() < ROUND_TRIP_M, "{q} vs {p}");
        }
        assert!(triangulate_pair(&cam1, &cam2, &[], &opts).is_empty());
    }

    #[test]
    fn angle_filter() {
        let cam1 = camera_at(0.0);
        let cam2 = camera_at(0.01);
        let p = Point3::new(0.005, 0.0, 3.0);
        let m = pixel_match(&cam1, &cam2, &p, &p);
        let with = |deg| TriangulationOptions { min_angle_deg: deg, ..Default::default() };
        assert!(matches!(
            triangulate_match(&cam1, &cam2, &m, &with(2.0)),
            Err(PointReject::SmallAngle { .. })
        ));
        assert!(triangulate_match(&cam1, &cam2, &m, &with(0.0)).is_ok());
        assert!(triangulate_match(&cam1, &cam2, &m, &with(10.0)).is_err());
    }

    #[test]
    fn reprojection_filter() {
        let cam1 = camera_at(0.0);
        let cam2 = camera_at(0.635);
        let with = |px| TriangulationOptions { max_reproj_px: px, ..Default::default() };
        let m =
            pixel_match(&cam1, &cam2, &Point3::new(0.3, 0.2, 1.5), &Point3::new(0.1, -0.1, 1.3));
        assert!(triangulate_match(&cam1, &cam2, &m, &with(1.0)).is_err());
        let m =
            pixel_match(&cam1, &cam2, &Point3::new(0.3, 0.2, 1.5), &Point3::new(0.15, 0.0, 1.4));
        assert!(triangulate_match(&cam1, &cam2, &m, &with(100.0)).is_ok());
        assert!(matches!(
            triangulate_match(&cam1, &cam2, &m, &with(0.5)),
            Err(PointReject::Reprojection { .. })
        ));
    }

    #[test]
    fn all_pairs_concatenate() {
        let cams = [camera_at(0.0), camera_at(0.3), camera_at(0.6)];
        let cameras: Cameras<'_> = [("c0", &cams[0]), ("c1", &cams[1]), ("c2", &cams[2])].into();
        let p =
            [Point3::new(0.1, 0.0, 1.5), Point3::new(0.2, 0.1, 1.6), Point3::new(0.3, -0.1, 1.4)];
        let pm = |a: &str, b: &str, ia: usize, ib: usize, pts: &[Point3<f64>]| PairMatches {
            pair: CameraPair::new(a, b).unwrap(),
            matches: pts.iter().map(|q| pixel_match(&cams[ia], &cams[ib], q, q)).collect(),
        };
        let frame = FrameMatches {
            keypoints: Default::default(),
            pairs: vec![pm("c0", "c1", 0, 1, &p[..2]), pm("c1", "c2", 1, 2, &p[2..])],
        };
        let out =
            triangulate_all_pairs(&cameras, &frame, &TriangulationOptions::default()).unwrap();
        assert_eq!(out.len(), 3);
        for (q, t) in out.iter().zip(&p) {
            assert!((q.position - t).norm() < ROUND_TRIP_M);
            assert_eq!(q.n_views, 2);
        }
        let unknown = FrameMatches {
            keypoints: Default::default(),
            pairs: vec![pm("c0", "zz", 0, 1, &p[..1])],
        };
        assert_eq!(
            triangulate_all_pairs(&cameras, &unknown, &TriangulationOptions::default()),
            Err(SparseError::UnknownCamera("zz".into()))
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::geom::testutil::proptest_config(64))]

        /// Any point under the water that both tank-like cameras see at a usable angle comes
        /// back from its exact pixels, and passes every filter.
        #[test]
        fn exact_matches_round_trip(x in -0.4f64..0.4, y in -0.3f64..0.3, z in 1.0f64..2.9) {
            let (cam1, cam2) = (camera_at(0.0), camera_at(0.3));
            let p = Point3::new(x, y, z);
            let (Ok(_), Ok(_)) = (cam1.project_in_image(&p), cam2.project_in_image(&p)) else {
                return Ok(());
            };
            let m = pixel_match(&cam1, &cam2, &p, &p);
            let opts = TriangulationOptions::default();
            let q = triangulate_match(&cam1, &cam2, &m, &opts);
            let ray1 = cam1.cast_ray(m.a.x, m.a.y).unwrap();
            let ray2 = cam2.cast_ray(m.b.x, m.b.y).unwrap();
            if ray1.dir.dot(&ray2.dir) < opts.min_angle_deg.to_radians().cos() {
                let q = q.unwrap();
                proptest::prop_assert!((q - p).norm() < ROUND_TRIP_M * 10.0, "{} vs {}", q, p);
            } else {
                let is_small_angle = matches!(q, Err(PointReject::SmallAngle { .. }));
                proptest::prop_assert!(is_small_angle);
            }
        }
    }

    #[test]
    fn plausibility_window() {
        let point = |z: f64, score: f32| SparsePoint {
            position: Point3::new(0.0, 0.0, z),
            score,
            n_views: 2,
        };
        let zs = |pts: &[SparsePoint]| pts.iter().map(|p| p.position.z).collect::<Vec<_>>();
        let kept = filter_plausible(
            &[point(0.5, 0.1), point(0.8, 0.2), point(1.2, 0.3), point(1.5, 0.4)],
            1.0,
            2.0,
        );
        assert_eq!(zs(&kept), [1.2, 1.5]);
        let kept = filter_plausible(&[point(1.1, 0.0), point(1.5, 0.0), point(2.5, 0.0)], 1.0, 2.0);
        assert_eq!(zs(&kept), [1.1, 1.5, 2.5]);
        assert!(filter_plausible(&[point(10.0, 0.0), point(25.0, 0.0)], 1.0, 2.0).is_empty());
        // Mixed: survivors keep their scores, in order.
        let mixed = [point(0.5, 0.9), point(1.3, 0.8), point(25.0, 0.7), point(1.9, 0.6)];
        let kept = filter_plausible(&mixed, 1.0, 2.0);
        assert_eq!(kept.iter().map(|p| p.score).collect::<Vec<_>>(), [0.8, 0.6]);
        assert!(filter_plausible(&[], 1.0, 2.0).is_empty());
        // Both bounds are strict.
        assert!(!is_plausible(&Point3::new(0.0, 0.0, 1.0), 1.0, 2.0));
        assert!(!is_plausible(&Point3::new(0.0, 0.0, 3.0), 1.0, 2.0));
    }
}
