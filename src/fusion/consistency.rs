//! Geometric consistency between depth maps (reference-numerics §6.1), and back-projection of
//! the depths that survive into a coloured point cloud (§6.2).
//!
//! A pixel of a reference depth map is kept when at least `min_consistent_views` other cameras
//! agree with it: its 3-D point, projected into the other camera, lands where that camera's own
//! depth map holds (within `depth_tolerance`) the ray depth the point has in that camera; or,
//! the second and tighter rule, when at least `close_views` cameras agree within
//! `close_tolerance` (fewer witnesses held closer: the rig's outer band). The
//! comparison is in the target camera's ray depth, as the reference does. The ray depth of the
//! point in the target needs no second ray cast: the target ray through the projected pixel
//! passes through the point, so its depth is the distance from the refraction point on the
//! water surface (a by-product of the projection) to the point.
//!
//! Each candidate pixel asks the targets nearest the reference camera first (the likeliest to
//! see the same surface) and, unless every count is wanted
//! ([`ConsistencyOptions::count_all`]), stops as soon as the verdict is settled: once
//! either rule is met, or once too few targets remain to meet either. A
//! frame's consistency filter projects every candidate into every target otherwise, and most
//! candidates are settled after a few.

use nalgebra::Point3;
use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::dense::DepthMap;
use crate::geom::refraction::RefractiveCamera;
use crate::imgproc::{GrayImage, ImageSize, RgbImage};

/// A target sample whose NaN neighbours carry more than this bilinear weight is NaN (the
/// reference's threshold on the interpolated NaN indicator).
pub const NAN_WEIGHT_LIMIT: f32 = 0.01;

/// Options of the filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConsistencyOptions {
    /// Pixels with lower confidence are not candidates.
    pub min_confidence: f32,
    /// Largest difference of ray depths (m) counted as agreement.
    pub depth_tolerance: f64,
    /// Agreeing cameras needed to keep a pixel.
    pub min_consistent_views: usize,
    /// The second, tighter rule: a pixel is also kept when at least
    /// [`close_views`](Self::close_views) cameras agree within this ray-depth difference (m).
    pub close_tolerance: f64,
    /// Cameras needed by the tighter rule; 0 turns it off (only `min_consistent_views`
    /// within `depth_tolerance` keeps a pixel, the reference's rule).
    pub close_views: usize,
    /// Count every agreeing camera of every candidate ([`FilteredDepth::consistency`] exact).
    /// When false the count of a pixel stops where its verdict is settled (see the module
    /// documentation): the kept pixels are the same, and the filter is several times faster.
    pub count_all: bool,
}

impl Default for ConsistencyOptions {
    /// The reference defaults: confidence ≥ 0.1, 5 mm, 3 views, no tighter rule; every count
    /// exact.
    fn default() -> Self {
        Self {
            min_confidence: 0.1,
            depth_tolerance: 0.005,
            min_consistent_views: 3,
            close_tolerance: 0.001,
            close_views: 0,
            count_all: true,
        }
    }
}

/// A depth map and its camera.
#[derive(Clone, Copy, Debug)]
pub struct DepthView<'a> {
    /// The camera (undistorted geometry).
    pub camera: &'a RefractiveCamera,
    /// Its depth map (same size as the camera).
    pub depth: &'a DepthMap,
}

/// The filtered reference map and the per-pixel count of agreeing cameras.
#[derive(Clone, Debug, PartialEq)]
pub struct FilteredDepth {
    /// Depth and confidence, NaN and 0 where rejected.
    pub depth: DepthMap,
    /// Agreeing cameras per candidate pixel (also for rejected candidates); 0 elsewhere.
    /// Without [`ConsistencyOptions::count_all`], a kept pixel's count is
    /// `min_consistent_views` and a rejected one's a lower bound.
    pub consistency: Vec<i32>,
}

/// Filters `reference` against `targets` (the other cameras' depth maps).
pub fn filter_depth_map(
    reference: DepthView<'_>,
    targets: &[DepthView<'_>],
    options: &ConsistencyOptions,
) -> FilteredDepth {
    let size = reference.depth.size();
    let depth_in = reference.depth.depth().as_slice();
    let conf_in = reference.depth.confidence().as_slice();
    let mut depth = vec![f32::NAN; size.area()];
    let mut confidence = vec![0.0f32; size.area()];
    let mut consistency = vec![0i32; size.area()];
    let order = nearest_first(reference.camera, targets);
    let needed = options.min_consistent_views;
    let close_needed = if options.close_views == 0 { usize::MAX } else { options.close_views };
    depth
        .par_chunks_mut(size.width)
        .zip(confidence.par_chunks_mut(size.width))
        .zip(consistency.par_chunks_mut(size.width))
        .enumerate()
        .for_each(|(y, ((d_row, c_row), n_row))| {
            // Warm starts: the refraction radius of the last pixel projected into each target.
            let mut guesses = vec![f64::NAN; targets.len()];
            for x in 0..size.width {
                let i = y * size.width + x;
                let (d, c) = (depth_in[i], conf_in[i]);
                if !d.is_finite() || c < options.min_confidence {
                    continue;
                }
                let Ok(ray) = reference.camera.cast_ray(x as f64, y as f64) else { continue };
                let p = ray.point_at(d as f64);
                let (mut agree, mut close) = (0usize, 0usize);
                for (asked, &t) in order.iter().enumerate() {
                    if let Some(gap) = depth_gap(&targets[t], &p, &mut guesses[t]) {
                        agree += usize::from(gap < options.depth_tolerance);
                        close += usize::from(gap < options.close_tolerance);
                    }
                    let left = order.len() - asked - 1;
                    let kept = agree >= needed || close >= close_needed;
                    let hopeless =
                        agree + left < needed && close.saturating_add(left) < close_needed;
                    if !options.count_all && (kept || hopeless) {
                        break;
                    }
                }
                n_row[x] = agree as i32;
                if agree >= needed || close >= close_needed {
                    d_row[x] = d;
                    c_row[x] = c;
                }
            }
        });
    let image = |v: Vec<f32>| GrayImage::new(size, v).expect("sized from the map");
    FilteredDepth {
        depth: DepthMap::new(image(depth), image(confidence), reference.depth.range())
            .expect("depth and confidence share a size"),
        consistency,
    }
}

/// Indices of `targets`, nearest camera centre to `reference`'s first (ties by index).
fn nearest_first(reference: &RefractiveCamera, targets: &[DepthView<'_>]) -> Vec<usize> {
    let c = reference.centre();
    let distance = |t: usize| (targets[t].camera.centre() - c).norm();
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by(|&a, &b| distance(a).total_cmp(&distance(b)).then(a.cmp(&b)));
    order
}

/// The difference between the ray depth `p` has in `target` and the depth `target`'s map
/// holds where `p` projects; `None` where `p` does not project into the map's valid part.
fn depth_gap(target: &DepthView<'_>, p: &Point3<f64>, guess: &mut f64) -> Option<f64> {
    let cam = target.camera;
    let projected =
        if guess.is_finite() { cam.project_with_guess(p, *guess) } else { cam.project_detailed(p) };
    let proj = projected.ok()?;
    *guess = proj.interface_radius;
    let size = target.depth.size();
    if !size.contains(proj.pixel.x, proj.pixel.y) {
        return None;
    }
    let sampled = sample_depth(target.depth.depth(), proj.pixel.x, proj.pixel.y)?;
    // The refraction point on the water: at the interface radius from the camera centre,
    // toward the point.
    let c = cam.centre();
    let (dx, dy) = (p.x - c.x, p.y - c.y);
    let r = dx.hypot(dy);
    let scale = if r > 0.0 { proj.interface_radius / r } else { 0.0 };
    let origin = Point3::new(c.x + scale * dx, c.y + scale * dy, cam.water_z());
    let expected = (p - origin).norm();
    Some((sampled as f64 - expected).abs())
}

/// Bilinear depth at (u, v) (inside the image), or `None` when NaN neighbours carry more than
/// [`NAN_WEIGHT_LIMIT`] of the weight.
pub fn sample_depth(depth: &GrayImage, u: f64, v: f64) -> Option<f32> {
    let ImageSize { width: w, height: h } = depth.size();
    let x0 = (u.floor() as usize).min(w - 1);
    let y0 = (v.floor() as usize).min(h - 1);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
    let corners = [
        (x0, y0, (1.0 - fx) * (1.0 - fy)),
        (x1, y0, fx * (1.0 - fy)),
        (x0, y1, (1.0 - fx) * fy),
        (x1, y1, fx * fy),
    ];
    let (mut value, mut nan_weight) = (0.0f32, 0.0f32);
    for (x, y, weight) in corners {
        let d = depth.get(x, y)[0];
        if d.is_finite() {
            value += weight * d;
        } else {
            nan_weight += weight;
        }
    }
    (nan_weight <= NAN_WEIGHT_LIMIT).then_some(value)
}

/// The 3-D points of every valid pixel of `depth` (row-major), with the colour of the pixel in
/// `image` (the undistorted RGB image of the same camera).
///
/// Panics when the image, depth map and camera sizes differ (a programming error).
pub fn backproject(camera: &RefractiveCamera, depth: &DepthMap, image: &RgbImage) -> PointCloud {
    let size = depth.size();
    assert_eq!(size, image.size(), "depth map and image of one camera");
    assert_eq!(size, camera.size(), "depth map and camera");
    type Row = (Vec<Point3<f64>>, Vec<[u8; 3]>);
    let rows: Vec<Row> = (0..size.height)
        .into_par_iter()
        .map(|y| {
            let mut points = Vec::new();
            let mut colours = Vec::new();
            for (x, &d) in depth.depth().row(y).iter().enumerate() {
                if !d.is_finite() {
                    continue;
                }
                if let Ok(ray) = camera.cast_ray(x as f64, y as f64) {
                    points.push(ray.point_at(d as f64));
                    colours.push(image.get(x, y));
                }
            }
            (points, colours)
        })
        .collect();
    let (mut points, mut colours) = (Vec::new(), Vec::new());
    for (p, c) in rows {
        points.extend(p);
        colours.extend(c);
    }
    PointCloud::new(points).with_colors(colours).expect("one colour per point")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::camera::Intrinsics;
    use crate::geom::refraction::WaterInterface;
    use nalgebra::{Rotation3, Vector3};

    /// The §10.7 cameras: f = 400, c = (250, 250) on a 32×32 grid, water at 1.0, centres at
    /// x = `cx`.
    fn camera(cx: f64) -> RefractiveCamera {
        RefractiveCamera::new(
            Intrinsics::new(400.0, 400.0, 250.0, 250.0),
            Rotation3::identity(),
            Vector3::new(-cx, 0.0, 0.0),
            WaterInterface::new(1.0, 1.0, 1.333),
            ImageSize::new(32, 32),
        )
        .unwrap()
    }

    /// Depth map of `cam` looking at the plane Z = `z`.
    fn plane_map(cam: &RefractiveCamera, z: f64, confidence: f32) -> DepthMap {
        let size = cam.size();
        let depth = GrayImage::from_fn(size, |x, y| {
            let ray = cam.cast_ray(x as f64, y as f64).unwrap();
            [((z - ray.origin.z) / ray.dir.z) as f32]
        });
        DepthMap::new(depth, GrayImage::from_elem(size, confidence), None).unwrap()
    }

    #[test]
    fn bilinear_samples_and_nan_rule() {
        let map =
            GrayImage::new(ImageSize::new(4, 4), (0..16).map(|v| v as f32).collect()).unwrap();
        assert_eq!(sample_depth(&map, 0.0, 0.0), Some(0.0));
        assert_eq!(sample_depth(&map, 3.0, 0.0), Some(3.0));
        assert_eq!(sample_depth(&map, 1.0, 2.0), Some(9.0));
        let nine =
            GrayImage::new(ImageSize::new(3, 3), (1..=9).map(|v| v as f32).collect()).unwrap();
        assert_eq!(sample_depth(&nine, 0.5, 0.5), Some(3.0));
        let mut holed = nine.clone();
        holed.set(1, 1, [f32::NAN]);
        assert_eq!(sample_depth(&holed, 1.0, 1.0), None);
        assert_eq!(sample_depth(&holed, 1.5, 1.5), None);
        // A NaN neighbour with negligible weight does not spoil the sample.
        assert!(sample_depth(&holed, 1.999, 1.999).is_some());
    }

    #[test]
    fn consistent_plane_passes_and_inconsistent_depths_fail() {
        let (a, b) = (camera(0.0), camera(0.1));
        let (ma, mb) = (plane_map(&a, 3.0, 1.0), plane_map(&b, 3.0, 1.0));
        let opts = ConsistencyOptions {
            depth_tolerance: 0.01,
            min_consistent_views: 1,
            ..Default::default()
        };
        let out = filter_depth_map(
            DepthView { camera: &a, depth: &ma },
            &[DepthView { camera: &b, depth: &mb }],
            &opts,
        );
        let n = out.consistency.iter().filter(|&&c| c >= 1).count();
        assert!(n as f64 > 0.1 * 1024.0, "{n}");
        // Every agreeing pixel is exact: the projected plane point has the target's depth.
        let wrong = plane_map(&b, 2.0, 1.0);
        let out = filter_depth_map(
            DepthView { camera: &a, depth: &ma },
            &[DepthView { camera: &b, depth: &wrong }],
            &opts,
        );
        assert!(out.consistency.contains(&0));
        assert!(out.consistency.iter().all(|&c| c == 0));
    }

    #[test]
    fn three_cameras_and_the_view_count_rule() {
        let cams = [camera(0.0), camera(0.1), camera(0.2)];
        let maps: Vec<DepthMap> = cams.iter().map(|c| plane_map(c, 3.0, 1.0)).collect();
        let opts = ConsistencyOptions {
            depth_tolerance: 0.01,
            min_consistent_views: 2,
            ..Default::default()
        };
        let targets = [
            DepthView { camera: &cams[1], depth: &maps[1] },
            DepthView { camera: &cams[2], depth: &maps[2] },
        ];
        let out =
            filter_depth_map(DepthView { camera: &cams[0], depth: &maps[0] }, &targets, &opts);
        for (i, &count) in out.consistency.iter().enumerate() {
            let d = out.depth.depth().as_slice()[i];
            if count >= 2 {
                assert!(d.is_finite());
            } else {
                assert!(d.is_nan());
            }
        }
        // (The §10.7 geometry leaves little overlap with the third camera; the rule above is
        // what the reference checks.)
        assert!(out.consistency.iter().any(|&c| c >= 1));
    }

    /// Stopping once the verdict is settled keeps exactly the pixels the full count keeps,
    /// for every view-count rule, with targets that agree, disagree and barely overlap; the
    /// counts stop at the rule.
    #[test]
    fn settled_verdicts_keep_the_same_pixels() {
        let cams = [camera(0.0), camera(0.2), camera(0.05), camera(-0.1), camera(0.1)];
        let wrong = plane_map(&cams[3], 2.0, 1.0);
        let mut maps: Vec<DepthMap> = cams.iter().map(|c| plane_map(c, 3.0, 1.0)).collect();
        maps[3] = wrong;
        // A hole in one target: its pixels there do not agree.
        let mut holed = maps[4].depth().clone();
        for y in 8..20 {
            for x in 4..16 {
                holed.set(x, y, [f32::NAN]);
            }
        }
        maps[4] = DepthMap::new(holed, maps[4].confidence().clone(), None).unwrap();
        let targets: Vec<DepthView<'_>> =
            (1..5).map(|i| DepthView { camera: &cams[i], depth: &maps[i] }).collect();
        let reference = DepthView { camera: &cams[0], depth: &maps[0] };
        let mut kept = Vec::new();
        // With the tighter second rule too: off, on with a count of 1 and 2, and on with a
        // tolerance nothing meets.
        let close_rules = [(0, 0.001), (1, 0.001), (2, 0.001), (2, 1e-9)];
        for needed in 1..=5 {
            for (close_views, close_tolerance) in close_rules {
                let opts = |count_all| ConsistencyOptions {
                    depth_tolerance: 0.01,
                    min_consistent_views: needed,
                    close_views,
                    close_tolerance,
                    count_all,
                    ..Default::default()
                };
                let all = filter_depth_map(reference, &targets, &opts(true));
                let settled = filter_depth_map(reference, &targets, &opts(false));
                // Bit for bit (NaN where rejected, so not `==`).
                let bits = |m: &DepthMap| -> Vec<u32> {
                    let (d, c) = (m.depth().as_slice(), m.confidence().as_slice());
                    d.iter().chain(c).map(|v| v.to_bits()).collect()
                };
                let rule = format!("{needed} views, close {close_views}");
                assert_eq!(bits(&all.depth), bits(&settled.depth), "{rule}");
                for (&a, &s) in all.consistency.iter().zip(&settled.consistency) {
                    assert!(s <= a, "{rule}: {s} > {a}");
                    if a as usize >= needed && close_views == 0 {
                        assert_eq!(s as usize, needed);
                    }
                }
                if close_views == 0 {
                    kept.push(all.depth.valid_count());
                } else {
                    // The second rule only adds pixels.
                    assert!(all.depth.valid_count() >= kept[needed - 1], "{rule}");
                }
            }
        }
        // The rules matter here: the loosest keeps pixels, a stricter one keeps fewer.
        assert!(kept[0] > 0 && kept[4] < kept[0], "kept per rule: {kept:?}");
        assert_eq!(nearest_first(&cams[0], &targets), vec![1, 2, 3, 0]);
    }

    #[test]
    fn confidence_gate_and_nan_propagation() {
        let (a, b) = (camera(0.0), camera(0.1));
        let mb = plane_map(&b, 3.0, 1.0);
        let mut ma = plane_map(&a, 3.0, 1.0);
        // Left half has confidence 0.3, and one NaN pixel.
        let conf = GrayImage::from_fn(ma.size(), |x, _| [if x < 16 { 0.3 } else { 1.0 }]);
        let mut depth = ma.depth().clone();
        depth.set(20, 5, [f32::NAN]);
        ma = DepthMap::new(depth, conf, None).unwrap();
        let opts = ConsistencyOptions {
            min_confidence: 0.5,
            depth_tolerance: 0.01,
            min_consistent_views: 1,
            count_all: true,
            ..Default::default()
        };
        let out = filter_depth_map(
            DepthView { camera: &a, depth: &ma },
            &[DepthView { camera: &b, depth: &mb }],
            &opts,
        );
        for y in 0..32 {
            for x in 0..16 {
                assert_eq!(out.consistency[y * 32 + x], 0);
                assert!(out.depth.depth().get(x, y)[0].is_nan());
                assert_eq!(out.depth.confidence().get(x, y)[0], 0.0);
            }
        }
        assert!(out.depth.depth().get(20, 5)[0].is_nan());
        assert_eq!(out.consistency[5 * 32 + 20], 0);
    }

    #[test]
    fn backprojection_is_exact_and_row_major() {
        let cam = RefractiveCamera::new(
            Intrinsics::new(400.0, 400.0, 8.0, 8.0),
            Rotation3::identity(),
            Vector3::zeros(),
            WaterInterface::new(1.0, 1.0, 1.333),
            ImageSize::new(16, 16),
        )
        .unwrap();
        let mut depth = GrayImage::from_elem(cam.size(), f32::NAN);
        depth.set(10, 6, [0.8]);
        depth.set(8, 8, [0.5]);
        let map = DepthMap::new(depth, GrayImage::from_elem(cam.size(), 1.0), None).unwrap();
        let mut image = RgbImage::from_elem(cam.size(), 0);
        image.set(10, 6, [255, 0, 0]);
        image.set(8, 8, [0, 0, 255]);
        let cloud = backproject(&cam, &map, &image);
        assert_eq!(cloud.len(), 2);
        let expect = |u: f64, v: f64, d: f64| cam.cast_ray(u, v).unwrap().point_at(d);
        assert!((cloud.points()[0] - expect(10.0, 6.0, 0.8_f32 as f64)).norm() < 1e-12);
        assert!((cloud.points()[1] - expect(8.0, 8.0, 0.5)).norm() < 1e-12);
        assert_eq!(cloud.colors().unwrap(), &[[255, 0, 0], [0, 0, 255]]);
    }
}
