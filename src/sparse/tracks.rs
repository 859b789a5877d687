//! Multi-view tracks: matches of different pairs that share a keypoint are one physical
//! point, solved once from all the rays that see it.
//!
//! 1. Every match is triangulated on its own and filtered ([`triangulate_match`]); only
//!    matches that pass join tracks, so a wrong match rarely glues two points together.
//! 2. Keypoints are nodes `(camera, keypoint)`; each surviving match joins its two nodes
//!    (union-find). Matches without keypoint indices (dense matchers) stay two-view points.
//! 3. A track must not hold two keypoints of one camera: that is a contradiction, some match
//!    in it is wrong. Matches join in descending score, and a match that would create such
//!    a track is left out (counted in [`TriangulationStats::n_conflicting`]), so the weaker
//!    side of a contradiction goes and the consistent tracks on either side of it stay. (The
//!    simpler rule, rejecting the whole contradictory track, lost 16 % of the tank's points.)
//! 4. Each other track is solved by least squares over one ray per camera
//!    ([`crate::geom::triangulate_rays`]). The rays must describe *one* surface point, which
//!    matters for matchers that refine positions: the classical matcher keeps side `a` at its
//!    keypoint and moves side `b` onto the surface point seen at that keypoint, so camera
//!    `b`'s pixel differs from match to match by the detector's localisation error (a few
//!    tenths of a pixel, which oblique rays turn into a millimetre of depth). Such a track is
//!    solved around an *anchor*, the camera that is side `a` of most of its matches: the
//!    anchor's keypoint and the pixels its partners were refined to. Matchers that do not
//!    move keypoints observe one pixel per keypoint, and every camera of the track is used.
//! 5. Every observation must reproject within [`TriangulationOptions::max_track_reproj_px`]
//!    and see the point in front of it; the worst offender (never the anchor) is dropped and
//!    the track re-solved while two cameras remain.
//! 6. The plausibility window applies to the result.

use std::collections::BTreeMap;

use nalgebra::{Point2, Point3};
use rayon::prelude::*;

use super::triangulate::{camera, is_plausible, triangulate_match};
use super::{Cameras, PointReject, SparseCloud, SparseError, SparsePoint, TriangulationOptions};
use crate::features::{FrameMatches, Match};
use crate::geom::{Ray, RefractiveCamera, triangulate_rays};

/// What happened to the matches of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TriangulationStats {
    /// Matches over all pairs.
    pub n_matches: usize,
    /// Matches that passed the pair filters.
    pub n_pair_valid: usize,
    /// Matches rejected because their rays are parallel, a ray misses the water, or a
    /// point is behind a ray or not projectable.
    pub n_rejected_geometry: usize,
    /// Matches rejected by the angle filter.
    pub n_rejected_angle: usize,
    /// Matches rejected by the reprojection filter.
    pub n_rejected_reprojection: usize,
    /// Tracks solved (a lone match is a track of two views).
    pub n_tracks: usize,
    /// Tracks with three or more views in the result.
    pub n_multi_view: usize,
    /// Matches left out of tracks because they would have joined two keypoints of one camera
    /// (the weaker match of each contradiction).
    pub n_conflicting: usize,
    /// Tracks whose joint solution failed the checks with every subset tried.
    pub n_track_failed: usize,
    /// Points outside the plausibility window.
    pub n_implausible: usize,
}

/// The sparse cloud of a frame: triangulates every match, merges tracks (unless
/// [`TriangulationOptions::merge_tracks`] is off), solves them and keeps the plausible points.
/// `water_z` comes from the cameras.
pub fn triangulate_frame(
    cameras: &Cameras<'_>,
    frame: &FrameMatches,
    options: &TriangulationOptions,
) -> Result<SparseCloud, SparseError> {
    let _span = tracing::debug_span!("triangulate_frame").entered();
    let names: Vec<&str> = cameras.keys().copied().collect();
    let cam_index = |name: &str| names.binary_search(&name).ok();
    // Resolve cameras and check keypoint indices before any work.
    let mut pair_cams = Vec::with_capacity(frame.pairs.len());
    for pm in &frame.pairs {
        let (ca, cb) = (camera(cameras, &pm.pair.a)?, camera(cameras, &pm.pair.b)?);
        let (ia, ib) = (
            cam_index(&pm.pair.a).expect("resolved above") as u32,
            cam_index(&pm.pair.b).expect("resolved above") as u32,
        );
        for m in &pm.matches {
            check_keypoint(frame, &pm.pair.a, m.keypoint_a)?;
            check_keypoint(frame, &pm.pair.b, m.keypoint_b)?;
        }
        pair_cams.push((ca, cb, ia, ib));
    }

    // 1. Pair filters.
    let mut stats = TriangulationStats::default();
    let per_pair: Vec<Vec<Result<Point3<f64>, PointReject>>> = frame
        .pairs
        .par_iter()
        .zip(&pair_cams)
        .map(|(pm, &(ca, cb, _, _))| {
            pm.matches.iter().map(|m| triangulate_match(ca, cb, m, options)).collect()
        })
        .collect();
    let mut survivors: Vec<Survivor<'_>> = Vec::new();
    for ((pm, results), &(_, _, ia, ib)) in frame.pairs.iter().zip(&per_pair).zip(&pair_cams) {
        stats.n_matches += results.len();
        for (m, r) in pm.matches.iter().zip(results) {
            match r {
                Ok(point) => survivors.push(Survivor { m, cam_a: ia, cam_b: ib, point: *point }),
                Err(PointReject::SmallAngle { .. }) => stats.n_rejected_angle += 1,
                Err(PointReject::Reprojection { .. }) => stats.n_rejected_reprojection += 1,
                Err(_) => stats.n_rejected_geometry += 1,
            }
        }
    }
    stats.n_pair_valid = survivors.len();

    // 2-3. Tracks, in order of their first match.
    let tracks: Vec<Vec<usize>> = if options.merge_tracks {
        let (tracks, refused) = group_tracks(&survivors);
        stats.n_conflicting = refused;
        tracks
    } else {
        (0..survivors.len()).map(|i| vec![i]).collect()
    };
    stats.n_tracks = tracks.len();

    // 4-5. Solve.
    let cams: Vec<&RefractiveCamera> = names.iter().map(|n| cameras[n]).collect();
    let solved: Vec<Result<SparsePoint, PointReject>> =
        tracks.par_iter().map(|t| solve_track(t, &survivors, &cams, options)).collect();

    // 6. Plausibility.
    let water_z = cams.first().map_or(0.0, |c| c.water_z());
    let mut points = Vec::with_capacity(solved.len());
    for r in solved {
        match r {
            Ok(p) if is_plausible(&p.position, water_z, options.max_depth_below_water_m) => {
                if p.n_views >= 3 {
                    stats.n_multi_view += 1;
                }
                points.push(p);
            }
            Ok(_) => stats.n_implausible += 1,
            Err(_) => stats.n_track_failed += 1,
        }
    }
    Ok(SparseCloud { points, stats })
}

/// A match that passed the pair filters.
struct Survivor<'m> {
    m: &'m Match,
    cam_a: u32,
    cam_b: u32,
    point: Point3<f64>,
}

/// Checks that a keypoint index refers to an existing keypoint.
fn check_keypoint(
    frame: &FrameMatches,
    camera: &str,
    index: Option<u32>,
) -> Result<(), SparseError> {
    let Some(index) = index else { return Ok(()) };
    let available = frame.keypoints.get(camera).map_or(0, |k| k.len());
    if (index as usize) < available {
        Ok(())
    } else {
        Err(SparseError::BadKeypoint { camera: camera.to_string(), index, available })
    }
}

/// Union-find over `(camera, keypoint)` nodes; returns the survivors of each track (tracks
/// in order of their first survivor) and the number of survivors left out because they would
/// put two keypoints of one camera into a track. Survivors without keypoint indices are
/// tracks of their own.
///
/// Matches join in descending score (ties in input order), and a join that would bring a
/// camera into a track twice is refused: the weaker match of a contradiction is the one
/// dropped, and the consistent parts of the two tracks stay (module doc, step 3).
fn group_tracks(survivors: &[Survivor<'_>]) -> (Vec<Vec<usize>>, usize) {
    let mut ids: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let mut parent: Vec<usize> = Vec::new();
    // Cameras of each component, sorted, kept at its root.
    let mut cams_of: Vec<Vec<u32>> = Vec::new();
    let mut node = |key: (u32, u32), parent: &mut Vec<usize>, cams_of: &mut Vec<Vec<u32>>| {
        *ids.entry(key).or_insert_with(|| {
            parent.push(parent.len());
            cams_of.push(vec![key.0]);
            parent.len() - 1
        })
    };
    // Node pair of each keyed survivor.
    let mut edges: Vec<Option<(usize, usize)>> = Vec::with_capacity(survivors.len());
    for s in survivors {
        edges.push(match (s.m.keypoint_a, s.m.keypoint_b) {
            (Some(ka), Some(kb)) => {
                let a = node((s.cam_a, ka), &mut parent, &mut cams_of);
                let b = node((s.cam_b, kb), &mut parent, &mut cams_of);
                Some((a, b))
            }
            _ => None,
        });
    }
    let mut order: Vec<usize> = (0..edges.len()).filter(|&i| edges[i].is_some()).collect();
    order.sort_by(|&x, &y| survivors[y].m.score.total_cmp(&survivors[x].m.score).then(x.cmp(&y)));
    let mut refused = vec![false; edges.len()];
    for i in order {
        let Some((a, b)) = edges[i] else { continue };
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra == rb {
            continue;
        }
        let (ca, cb) = (&cams_of[ra], &cams_of[rb]);
        if ca.iter().any(|c| cb.binary_search(c).is_ok()) {
            refused[i] = true;
            continue;
        }
        // Smaller root wins, so the structure depends only on the input.
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        let mut merged = std::mem::take(&mut cams_of[hi]);
        merged.extend_from_slice(&cams_of[lo]);
        merged.sort_unstable();
        cams_of[lo] = merged;
        parent[hi] = lo;
    }
    let mut track_of_root: BTreeMap<usize, usize> = BTreeMap::new();
    let mut tracks: Vec<Vec<usize>> = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        if refused[i] {
            continue;
        }
        match e {
            Some((a, _)) => {
                let root = find(&mut parent, *a);
                let t = *track_of_root.entry(root).or_insert_with(|| {
                    tracks.push(Vec::new());
                    tracks.len() - 1
                });
                tracks[t].push(i);
            }
            None => tracks.push(vec![i]),
        }
    }
    (tracks, refused.iter().filter(|r| **r).count())
}

/// Root of `x`, halving paths on the way.
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// One camera's observation in a track.
struct Observation {
    cam: u32,
    keypoint: u32,
    /// Pixels observed in the track's matches: (pixel, camera at the other end, whether this
    /// camera was side `a`).
    pixels: Vec<(Point2<f64>, u32, bool)>,
}

/// Solves one track (indices into `survivors`).
fn solve_track(
    track: &[usize],
    survivors: &[Survivor<'_>],
    cams: &[&RefractiveCamera],
    options: &TriangulationOptions,
) -> Result<SparsePoint, PointReject> {
    let mean_score =
        track.iter().map(|&i| survivors[i].m.score).sum::<f32>() / track.len().max(1) as f32;
    if let [single] = track {
        return Ok(SparsePoint {
            position: survivors[*single].point,
            score: mean_score,
            n_views: 2,
        });
    }
    // Observations per camera (keyed by camera index: sorted, deterministic).
    let mut obs: BTreeMap<u32, Observation> = BTreeMap::new();
    for &i in track {
        let s = &survivors[i];
        // Tracks only hold keyed matches.
        let (Some(ka), Some(kb)) = (s.m.keypoint_a, s.m.keypoint_b) else {
            return Err(PointReject::Conflict);
        };
        let sides = [(s.cam_a, ka, s.m.a, s.cam_b, true), (s.cam_b, kb, s.m.b, s.cam_a, false)];
        for (cam, kp, pixel, other, is_a) in sides {
            let o = obs.entry(cam).or_insert(Observation { cam, keypoint: kp, pixels: Vec::new() });
            if o.keypoint != kp {
                return Err(PointReject::Conflict);
            }
            o.pixels.push((pixel, other, is_a));
        }
    }
    let obs: Vec<Observation> = obs.into_values().collect();
    let (mut rays_of, anchor) = consistent_pixels(&obs);
    loop {
        let rays: Vec<Ray> = rays_of
            .iter()
            .map(|(cam, p)| cams[*cam as usize].cast_ray(p.x, p.y).map_err(|_| PointReject::NoRay))
            .collect::<Result<_, _>>()?;
        let point = triangulate_rays(&rays).map_err(|_| PointReject::Parallel)?;
        // Error per observation; infinite when the point is behind the ray or unprojectable.
        let errors: Vec<f64> = rays_of
            .iter()
            .zip(&rays)
            .map(|((cam, p), ray)| {
                if ray.depth_of(&point) <= 0.0 {
                    return f64::INFINITY;
                }
                cams[*cam as usize].project(&point).map_or(f64::INFINITY, |q| (q - p).norm())
            })
            .collect();
        let worst_err = errors.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if worst_err < options.max_track_reproj_px {
            if !wide_enough(&rays, options.min_angle_deg) {
                return Err(PointReject::SmallAngle { angle_deg: 0.0 });
            }
            let n_views = rays_of.len() as u32;
            return Ok(SparsePoint { position: point, score: mean_score, n_views });
        }
        if rays_of.len() <= 2 {
            return Err(PointReject::Reprojection { error_px: worst_err });
        }
        // Drop the worst observation, never the anchor the others were refined against.
        let worst = errors
            .iter()
            .enumerate()
            .filter(|(k, _)| Some(rays_of[*k].0) != anchor)
            .fold((0, f64::NEG_INFINITY), |acc, (k, &e)| if e > acc.1 { (k, e) } else { acc })
            .0;
        rays_of.remove(worst);
    }
}

/// The pixels of a track that describe one surface point, one per camera, and the anchor
/// camera when there is one (module doc, step 4).
///
/// When every camera observed a single pixel (a matcher that does not move keypoints), all
/// cameras take part and there is no anchor. Otherwise the anchor is the camera that is side
/// `a` of the most matches (the smaller index on ties): its pixel and the pixels its partners
/// were refined to describe the same point; the other cameras saw other points of the same
/// feature and are left out.
fn consistent_pixels(obs: &[Observation]) -> (Vec<(u32, Point2<f64>)>, Option<u32>) {
    let uniform = obs.iter().all(|o| o.pixels.iter().all(|(p, _, _)| *p == o.pixels[0].0));
    if uniform {
        return (obs.iter().map(|o| (o.cam, o.pixels[0].0)).collect(), None);
    }
    let side_a = |o: &Observation| o.pixels.iter().filter(|(_, _, is_a)| *is_a).count();
    // `max_by_key` keeps the last maximum; iterate in reverse so the smaller index wins.
    let anchor = obs.iter().rev().max_by_key(|o| side_a(o)).expect("a track has observations");
    let mut out: Vec<(u32, Point2<f64>)> = Vec::new();
    let own = anchor.pixels.iter().find(|(_, _, is_a)| *is_a).map_or(anchor.pixels[0].0, |x| x.0);
    out.push((anchor.cam, own));
    for o in obs {
        if let Some((p, _, _)) =
            o.pixels.iter().find(|(_, other, is_a)| *other == anchor.cam && !is_a)
        {
            out.push((o.cam, *p));
        }
    }
    out.sort_by_key(|(cam, _)| *cam);
    (out, Some(anchor.cam))
}

/// True when some two rays meet at `min_angle_deg` or more.
fn wide_enough(rays: &[Ray], min_angle_deg: f64) -> bool {
    let cos_max = min_angle_deg.to_radians().cos();
    rays.iter()
        .enumerate()
        .any(|(i, r)| rays[i + 1..].iter().any(|s| r.dir.dot(&s.dir).abs() < cos_max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{CameraPair, Keypoints, PairMatches};
    use crate::sparse::testutil::camera_at;

    /// Exact matches triangulate to rounding through refraction.
    const EXACT_M: f64 = 1e-9;

    fn keypoints(n: usize) -> Keypoints {
        Keypoints::new(vec![Point2::origin(); n], vec![1.0; n], 0, Vec::new()).unwrap()
    }

    /// A keyed match of `p` between cameras `a` and `b` (keypoint indices `ka`, `kb`).
    fn keyed(
        a: &RefractiveCamera,
        b: &RefractiveCamera,
        p: &Point3<f64>,
        ka: u32,
        kb: u32,
    ) -> Match {
        Match {
            a: a.project(p).unwrap(),
            b: b.project(p).unwrap(),
            keypoint_a: Some(ka),
            keypoint_b: Some(kb),
            score: 0.9,
        }
    }

    struct Rig3 {
        cams: [RefractiveCamera; 3],
    }

    impl Rig3 {
        fn new() -> Self {
            Self { cams: [camera_at(0.0), camera_at(0.3), camera_at(-0.3)] }
        }
        fn cameras(&self) -> Cameras<'_> {
            [("c0", &self.cams[0]), ("c1", &self.cams[1]), ("c2", &self.cams[2])].into()
        }
        fn frame(&self, pairs: Vec<(&str, &str, Vec<Match>)>) -> FrameMatches {
            FrameMatches {
                keypoints: ["c0", "c1", "c2"]
                    .iter()
                    .map(|n| (n.to_string(), keypoints(10)))
                    .collect(),
                pairs: pairs
                    .into_iter()
                    .map(|(a, b, matches)| PairMatches {
                        pair: CameraPair::new(a, b).unwrap(),
                        matches,
                    })
                    .collect(),
            }
        }
    }

    #[test]
    fn shared_keypoints_merge_into_one_point() {
        let rig = Rig3::new();
        let [c0, c1, c2] = &rig.cams;
        let p = Point3::new(0.05, -0.1, 1.45);
        let q = Point3::new(-0.1, 0.1, 1.5);
        let frame = rig.frame(vec![
            ("c0", "c1", vec![keyed(c0, c1, &p, 3, 5), keyed(c0, c1, &q, 4, 6)]),
            ("c0", "c2", vec![keyed(c0, c2, &p, 3, 1)]),
            ("c1", "c2", vec![keyed(c1, c2, &p, 5, 1)]),
        ]);
        let cloud =
            triangulate_frame(&rig.cameras(), &frame, &TriangulationOptions::default()).unwrap();
        assert_eq!(cloud.points.len(), 2);
        assert_eq!(cloud.points[0].n_views, 3);
        assert!((cloud.points[0].position - p).norm() < EXACT_M);
        assert_eq!(cloud.points[1].n_views, 2);
        assert!((cloud.points[1].position - q).norm() < EXACT_M);
        assert_eq!(cloud.stats.n_matches, 4);
        assert_eq!(cloud.stats.n_tracks, 2);
        assert_eq!(cloud.stats.n_multi_view, 1);

        // Without merging: one point per match (the reference behaviour).
        let opts = TriangulationOptions { merge_tracks: false, ..Default::default() };
        let cloud = triangulate_frame(&rig.cameras(), &frame, &opts).unwrap();
        assert_eq!(cloud.points.len(), 4);
    }

    #[test]
    fn the_weaker_match_of_a_contradiction_is_left_out() {
        let rig = Rig3::new();
        let [c0, c1, c2] = &rig.cams;
        let p = Point3::new(0.05, -0.1, 1.45);
        let q = Point3::new(-0.05, 0.1, 1.5);
        // c0:3 ↔ c1:5 and c0:3 ↔ c2:1 describe p; c2:1 ↔ c1:7 would put keypoints 5 and 7 of
        // c1 in one track. It is the weakest, so it goes; c1:7 keeps its own match to c0:4.
        let mut weak = keyed(c1, c2, &p, 7, 1);
        weak.score = 0.5;
        let frame = rig.frame(vec![
            ("c0", "c1", vec![keyed(c0, c1, &p, 3, 5), keyed(c0, c1, &q, 4, 7)]),
            ("c0", "c2", vec![keyed(c0, c2, &p, 3, 1)]),
            ("c1", "c2", vec![weak]),
        ]);
        let cloud =
            triangulate_frame(&rig.cameras(), &frame, &TriangulationOptions::default()).unwrap();
        assert_eq!(cloud.stats.n_conflicting, 1);
        assert_eq!(cloud.points.len(), 2);
        assert_eq!(cloud.points[0].n_views, 3);
        assert!((cloud.points[0].position - p).norm() < EXACT_M);
        assert!((cloud.points[1].position - q).norm() < EXACT_M);
    }

    #[test]
    fn a_bad_observation_is_dropped_from_the_track() {
        let rig = Rig3::new();
        let [c0, c1, c2] = &rig.cams;
        let p = Point3::new(0.0, 0.05, 1.5);
        // c2's keypoint is 2.5 px off across the epipolar lines (the baselines run along x).
        // A pair with c2 splits that error between its two images (~1.25 px each); the joint
        // solve, where c0 and c1 agree exactly, leaves most of it in c2 (~1.7 px).
        let mut bad = keyed(c0, c2, &p, 1, 2);
        bad.b.y += 2.5;
        let mut bad2 = keyed(c1, c2, &p, 4, 2);
        bad2.b.y += 2.5;
        let frame = rig.frame(vec![
            ("c0", "c1", vec![keyed(c0, c1, &p, 1, 4)]),
            ("c0", "c2", vec![bad]),
            ("c1", "c2", vec![bad2]),
        ]);
        let solve = |px| {
            let opts = TriangulationOptions {
                max_reproj_px: px,
                max_track_reproj_px: px,
                ..Default::default()
            };
            triangulate_frame(&rig.cameras(), &frame, &opts).unwrap()
        };
        // Strict: the pairs with c2 fail on their own; the c0-c1 match alone remains.
        let cloud = solve(0.5);
        assert_eq!(cloud.stats.n_rejected_reprojection, 2);
        assert_eq!((cloud.points.len(), cloud.points[0].n_views), (1, 2));
        assert!((cloud.points[0].position - p).norm() < EXACT_M);
        // Looser: the track forms, c2 fails the joint check and is dropped.
        let cloud = solve(1.5);
        assert_eq!(cloud.stats.n_pair_valid, 3);
        assert_eq!((cloud.points.len(), cloud.points[0].n_views), (1, 2));
        assert!((cloud.points[0].position - p).norm() < EXACT_M);
        // Loose: all three views stay; the point moves by about a millimetre.
        let cloud = solve(3.0);
        assert_eq!(cloud.points[0].n_views, 3);
        assert!((cloud.points[0].position - p).norm() < 2e-3);
    }

    #[test]
    fn implausible_points_and_bad_indices() {
        let rig = Rig3::new();
        let [c0, c1, _] = &rig.cams;
        let deep = Point3::new(0.0, 0.0, 3.5);
        let frame = rig.frame(vec![("c0", "c1", vec![keyed(c0, c1, &deep, 0, 0)])]);
        let cloud =
            triangulate_frame(&rig.cameras(), &frame, &TriangulationOptions::default()).unwrap();
        assert!(cloud.points.is_empty());
        assert_eq!(cloud.stats.n_implausible, 1);
        let p = Point3::new(0.0, 0.0, 1.5);
        let frame = rig.frame(vec![("c0", "c1", vec![keyed(c0, c1, &p, 0, 10)])]);
        assert!(matches!(
            triangulate_frame(&rig.cameras(), &frame, &TriangulationOptions::default()),
            Err(SparseError::BadKeypoint { index: 10, available: 10, .. })
        ));
    }
}
