//! RoMa dense depth (reference-numerics §5.2): per directed pair a depth map at warp
//! resolution from two-ray triangulation of every warp cell, aggregation over the sources of
//! a reference camera, and NaN-aware upsampling to the image.
//!
//! - [`pairwise_depth`]: cell valid when the two rays are not parallel, overlap >
//!   `certainty_threshold` and the ray depth `(P − O_ref)·d_ref` > 0; no angle or reprojection
//!   filter. Cell pixels follow [`Warp::ref_pixel`] / [`Warp::src_pixel`] (pixel centres).
//! - [`aggregate_pairwise_depths`]: per cell, the lower median m₀ of the available depths,
//!   the inliers |d − m₀| < tolerance, their lower median when at least `min_views` agree;
//!   confidence n_agree / n_avail, consistency n_agree (both 0 where rejected).
//! - [`upsample`]: depth by normalised convolution (bilinear of depth-with-0 over bilinear
//!   of the valid mask, NaN where the weight ≤ 1e-6), confidence by plain bilinear,
//!   consistency by nearest neighbour; bilinear is align_corners = False with the source
//!   index clamped into the image.

use crate::features::onnx::Warp;
use crate::geom::RefractiveCamera;
use crate::geom::triangulate::triangulate_two_rays;
use crate::imgproc::{GrayImage, ImageSize, MaskImage};

use super::{DenseError, DepthMap};

/// Weight below which an upsampled depth is NaN.
const UPSAMPLE_EPS: f32 = 1e-6;

/// The depth map of `reference` from its warp to `source`, at warp resolution (NaN =
/// invalid).
pub fn pairwise_depth(
    reference: &RefractiveCamera,
    source: &RefractiveCamera,
    warp: &Warp,
    certainty_threshold: f32,
) -> GrayImage {
    let size = ImageSize::new(warp.width(), warp.height());
    let (rs, ss) = (reference.size(), source.size());
    let mut out = GrayImage::from_elem(size, f32::NAN);
    let data = out.as_mut_slice();
    for (k, d) in data.iter_mut().enumerate() {
        if warp.overlap()[k] <= certainty_threshold {
            continue;
        }
        let (a, b) = (warp.ref_pixel(k, rs), warp.src_pixel(k, ss));
        let (Ok(ra), Ok(rb)) = (reference.cast_ray(a.x, a.y), source.cast_ray(b.x, b.y)) else {
            continue;
        };
        let Some(p) = triangulate_two_rays(&ra, &rb) else { continue };
        let depth = (p - ra.origin).dot(&ra.dir);
        if depth > 0.0 {
            *d = depth as f32;
        }
    }
    out
}

/// Pairwise depths combined (see the module docs), at warp resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregatedDepth {
    /// Depth (NaN where rejected).
    pub depth: GrayImage,
    /// n_agree / n_avail where accepted, else 0.
    pub confidence: GrayImage,
    /// n_agree where accepted, else 0 (row-major).
    pub consistency: Vec<i32>,
}

/// The lower median of a non-empty slice (sorted in place).
fn lower_median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v[(v.len() - 1) / 2]
}

/// Combines the pairwise depth maps of one reference camera; `None` without maps. Fails when
/// the maps differ in size.
pub fn aggregate_pairwise_depths(
    maps: &[GrayImage],
    tolerance: f64,
    min_views: usize,
) -> Result<Option<AggregatedDepth>, DenseError> {
    let Some(first) = maps.first() else { return Ok(None) };
    let size = first.size();
    if let Some(bad) = maps.iter().find(|m| m.size() != size) {
        return Err(DenseError::SizeMismatch {
            what: "pairwise depth map",
            expected: size,
            actual: bad.size(),
        });
    }
    let n = size.area();
    let mut depth = vec![f32::NAN; n];
    let mut confidence = vec![0.0f32; n];
    let mut consistency = vec![0i32; n];
    let mut values = Vec::with_capacity(maps.len());
    for k in 0..n {
        values.clear();
        values.extend(maps.iter().map(|m| m.as_slice()[k]).filter(|d| !d.is_nan()));
        if values.is_empty() {
            continue;
        }
        let n_avail = values.len();
        let m0 = lower_median(&mut values);
        values.retain(|d| ((d - m0).abs() as f64) < tolerance);
        let n_agree = values.len();
        if n_agree >= min_views.max(1) {
            depth[k] = lower_median(&mut values);
            confidence[k] = n_agree as f32 / n_avail as f32;
            consistency[k] = n_agree as i32;
        }
    }
    let image = |v| GrayImage::new(size, v).expect("sized from the map");
    Ok(Some(AggregatedDepth { depth: image(depth), confidence: image(confidence), consistency }))
}

/// Source index and weight of the upper neighbour for output index `o` (align_corners =
/// False, clamped).
fn linear_taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    (0..n_out)
        .map(|o| {
            let src = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
            let lo = (src.floor() as usize).min(n_in - 1);
            let hi = (lo + 1).min(n_in - 1);
            (lo, hi, (src - lo as f64) as f32)
        })
        .collect()
}

fn bilinear(
    img: &[f32],
    w_in: usize,
    tx: &[(usize, usize, f32)],
    ty: &[(usize, usize, f32)],
) -> Vec<f32> {
    let mut out = Vec::with_capacity(tx.len() * ty.len());
    for &(y0, y1, fy) in ty {
        for &(x0, x1, fx) in tx {
            let at = |x: usize, y: usize| img[y * w_in + x];
            let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
            let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// An aggregated depth upsampled to `size` (see the module docs): the depth map and the
/// consistency counts (row-major, 0 where the depth is NaN).
pub fn upsample(agg: &AggregatedDepth, size: ImageSize) -> (DepthMap, Vec<i32>) {
    let src = agg.depth.size();
    let (tx, ty) = (linear_taps(src.width, size.width), linear_taps(src.height, size.height));
    let zeroed: Vec<f32> =
        agg.depth.as_slice().iter().map(|d| if d.is_nan() { 0.0 } else { *d }).collect();
    let valid: Vec<f32> =
        agg.depth.as_slice().iter().map(|d| if d.is_nan() { 0.0 } else { 1.0 }).collect();
    let num = bilinear(&zeroed, src.width, &tx, &ty);
    let den = bilinear(&valid, src.width, &tx, &ty);
    let depth: Vec<f32> = num
        .iter()
        .zip(&den)
        .map(|(n, d)| if *d > UPSAMPLE_EPS { n / d } else { f32::NAN })
        .collect();
    let confidence = bilinear(agg.confidence.as_slice(), src.width, &tx, &ty);
    // Nearest neighbour: floor(dst · in / out), as PyTorch's `nearest`.
    let near = |o: usize, n_in: usize, n_out: usize| ((o * n_in) / n_out).min(n_in - 1);
    let mut consistency = Vec::with_capacity(size.area());
    for y in 0..size.height {
        for x in 0..size.width {
            let k = near(y, src.height, size.height) * src.width + near(x, src.width, size.width);
            let i = consistency.len();
            consistency.push(if depth[i].is_nan() { 0 } else { agg.consistency[k] });
        }
    }
    let image = |v| GrayImage::new(size, v).expect("sized from the output size");
    (DepthMap::from_valid_parts(image(depth), image(confidence), None), consistency)
}

/// Masks an upsampled result: depth NaN, confidence 0 and consistency 0 where the mask is 0.
pub fn apply_mask(
    map: &mut DepthMap,
    consistency: &mut [i32],
    mask: &MaskImage,
) -> Result<(), DenseError> {
    map.apply_mask(mask)?;
    for (c, m) in consistency.iter_mut().zip(mask.as_slice()) {
        if *m == 0 {
            *c = 0;
        }
    }
    Ok(())
}

/// Options of the RoMa depth of one reference camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RomaDepthOptions {
    /// Overlap above which a warp cell is used.
    pub certainty_threshold: f32,
    /// Agreement tolerance between pairwise depths (m).
    pub tolerance: f64,
    /// Pairwise depths that must agree.
    pub min_views: usize,
}

/// The full-resolution depth map of `reference` from its warps to `sources` (the same
/// order), masked; `None` without sources.
pub fn roma_depth_map(
    reference: &RefractiveCamera,
    sources: &[(&RefractiveCamera, &Warp)],
    mask: Option<&MaskImage>,
    opts: &RomaDepthOptions,
) -> Result<Option<(DepthMap, Vec<i32>)>, DenseError> {
    let maps: Vec<GrayImage> = sources
        .iter()
        .map(|(cam, warp)| pairwise_depth(reference, cam, warp, opts.certainty_threshold))
        .collect();
    let Some(agg) = aggregate_pairwise_depths(&maps, opts.tolerance, opts.min_views)? else {
        return Ok(None);
    };
    let (mut map, mut consistency) = upsample(&agg, reference.size());
    if let Some(mask) = mask {
        apply_mask(&mut map, &mut consistency, mask)?;
    }
    Ok(Some((map, consistency)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::{Intrinsics, WaterInterface};
    use nalgebra::{Point3, Rotation3, Vector3};

    fn constant(v: f32) -> GrayImage {
        GrayImage::from_elem(ImageSize::new(3, 2), v)
    }

    #[test]
    fn aggregation_follows_the_reference_cases() {
        // Consensus: [1.0, 1.002, 0.998, 2.0, 0.5], tol 0.005, min 3 (§10.6).
        let maps: Vec<GrayImage> = [1.0, 1.002, 0.998, 2.0, 0.5].map(constant).to_vec();
        let agg = aggregate_pairwise_depths(&maps, 0.005, 3).unwrap().unwrap();
        assert!(agg.depth.as_slice().iter().all(|d| (d - 1.0).abs() < 0.005));
        assert!(agg.confidence.as_slice().iter().all(|c| (c - 0.6).abs() < 1e-6));
        assert!(agg.consistency.iter().all(|&c| c == 3));
        // Disagreement: [1, 2, 3], tol 0.01, min 3.
        let maps: Vec<GrayImage> = [1.0, 2.0, 3.0].map(constant).to_vec();
        let agg = aggregate_pairwise_depths(&maps, 0.01, 3).unwrap().unwrap();
        assert!(agg.depth.as_slice().iter().all(|d| d.is_nan()));
        assert!(agg.confidence.as_slice().iter().all(|&c| c == 0.0));
        // NaN handling: 2 of 3 valid with min 2 → confidence 1; no valid → NaN.
        let mut third = constant(f32::NAN);
        third.set(0, 0, [7.0]);
        let mut second = constant(1.001);
        second.set(0, 0, [f32::NAN]);
        let mut first = constant(1.0);
        first.set(0, 0, [f32::NAN]);
        first.set(1, 0, [f32::NAN]);
        second.set(1, 0, [f32::NAN]);
        let agg = aggregate_pairwise_depths(&[first, second, third], 0.01, 2).unwrap().unwrap();
        assert_eq!(agg.confidence.get(2, 1)[0], 1.0);
        assert_eq!(agg.depth.get(2, 1)[0], 1.0, "lower median of the two");
        assert!(agg.depth.get(1, 0)[0].is_nan(), "no valid source");
        assert!(agg.depth.get(0, 0)[0].is_nan(), "one source is below min_views");
        // Lower median for even counts.
        let maps: Vec<GrayImage> = [1.0, 1.004, 1.002, 1.006].map(constant).to_vec();
        let agg = aggregate_pairwise_depths(&maps, 0.1, 1).unwrap().unwrap();
        assert_eq!(agg.depth.get(0, 0)[0], 1.002);
        // No sources; size mismatch.
        assert!(aggregate_pairwise_depths(&[], 0.01, 1).unwrap().is_none());
        let odd = GrayImage::from_elem(ImageSize::new(2, 2), 1.0);
        assert!(aggregate_pairwise_depths(&[constant(1.0), odd], 0.01, 1).is_err());
    }

    #[test]
    fn upsampling_is_nan_aware_and_masks_apply() {
        // 20×20 to 100×100 (§10.6); a NaN-free constant stays constant.
        let agg = AggregatedDepth {
            depth: GrayImage::from_elem(ImageSize::new(20, 20), 0.7),
            confidence: GrayImage::from_elem(ImageSize::new(20, 20), 0.5),
            consistency: vec![3; 400],
        };
        let (map, cons) = upsample(&agg, ImageSize::new(100, 100));
        assert_eq!(map.size(), ImageSize::new(100, 100));
        assert!(map.depth().as_slice().iter().all(|d| (d - 0.7).abs() < 1e-6));
        assert!(cons.iter().all(|&c| c == 3));
        // Masking keeps only the top-left quadrant: NaN/0 over [60:, 60:].
        let mask =
            MaskImage::from_fn(ImageSize::new(100, 100), |x, y| [u8::from(x < 50 && y < 50)]);
        let (mut map, mut cons) = upsample(&agg, ImageSize::new(100, 100));
        apply_mask(&mut map, &mut cons, &mask).unwrap();
        for y in 60..100 {
            for x in 60..100 {
                assert!(map.depth().get(x, y)[0].is_nan());
                assert_eq!(map.confidence().get(x, y)[0], 0.0);
                assert_eq!(cons[y * 100 + x], 0);
            }
        }
        // A NaN cell: neighbours keep the valid values (normalised convolution), a 2×2
        // all-NaN input gives NaN; values interpolate linearly between cell centres.
        let mut depth = GrayImage::from_fn(ImageSize::new(2, 1), |x, _| [1.0 + x as f32]);
        let agg = AggregatedDepth {
            depth: depth.clone(),
            confidence: GrayImage::from_elem(ImageSize::new(2, 1), 1.0),
            consistency: vec![2, 2],
        };
        let (map, _) = upsample(&agg, ImageSize::new(4, 1));
        let d = map.depth().as_slice();
        assert_eq!(d, &[1.0, 1.25, 1.75, 2.0]);
        depth.set(1, 0, [f32::NAN]);
        let agg = AggregatedDepth { depth, ..agg };
        let (map, cons) = upsample(&agg, ImageSize::new(4, 1));
        let d = map.depth().as_slice();
        assert_eq!(&d[..3], &[1.0, 1.0, 1.0]);
        assert!(d[3].is_nan(), "only the NaN cell contributes");
        assert_eq!(cons, vec![2, 2, 2, 0]);
    }

    fn camera(tx: f64) -> RefractiveCamera {
        RefractiveCamera::new(
            Intrinsics::new(100.0, 100.0, 9.5, 9.5),
            Rotation3::identity(),
            Vector3::new(-tx, 0.0, 0.0),
            WaterInterface::new(0.5, 1.0, 1.333),
            ImageSize::new(20, 20),
        )
        .unwrap()
    }

    #[test]
    fn pairwise_depth_recovers_a_plane_and_rejects_bad_cells() {
        // Two cameras 0.2 m apart over a plane at Z = 1: a warp built by projection.
        let (a, b) = (camera(0.0), camera(0.2));
        let n = 10;
        let mut coords = Vec::new();
        let mut overlap = Vec::new();
        let mut truth = Vec::new();
        let probe = Warp::new(n, n, vec![[0.0; 2]; n * n], vec![1.0; n * n]).unwrap();
        for k in 0..n * n {
            let p = probe.ref_pixel(k, a.size());
            let ray = a.cast_ray(p.x, p.y).unwrap();
            let t = (1.0 - ray.origin.z) / ray.dir.z;
            let world: Point3<f64> = ray.origin + ray.dir.into_inner() * t;
            let q = b.project(&world).unwrap();
            coords.push([
                ((q.x + 0.5) / 20.0 * 2.0 - 1.0) as f32,
                ((q.y + 0.5) / 20.0 * 2.0 - 1.0) as f32,
            ]);
            overlap.push(if k == 0 { 0.4 } else { 0.9 });
            truth.push(t);
        }
        let warp = Warp::new(n, n, coords, overlap).unwrap();
        let depth = pairwise_depth(&a, &b, &warp, 0.5);
        assert!(depth.as_slice()[0].is_nan(), "below the certainty threshold");
        for (k, (d, t)) in depth.as_slice().iter().zip(&truth).enumerate().skip(1) {
            assert!((*d as f64 - t).abs() < 1e-4, "{k}");
        }
        // A source camera looking up: no ray meets the reference ray ahead, all NaN.
        let up = RefractiveCamera::new(
            Intrinsics::new(100.0, 100.0, 9.5, 9.5),
            Rotation3::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI),
            Vector3::new(-0.2, 0.0, 0.0),
            WaterInterface::new(0.5, 1.0, 1.333),
            ImageSize::new(20, 20),
        )
        .unwrap();
        let d = pairwise_depth(&a, &up, &warp, 0.5);
        assert!(d.as_slice().iter().all(|d| d.is_nan()));
    }
}
