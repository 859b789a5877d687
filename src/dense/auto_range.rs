//! Depth ranges without matches: a coarse plane sweep at reduced resolution over the whole
//! water column, whose confident depths give the range (`reconstruction.depth_range: auto`, and
//! the fallback when the sparse stage finds nothing for a camera).
//!
//! The images are box-averaged by [`AutoRangeOptions::downscale`] and the cameras scaled to
//! match (pixel centres stay pixel centres: `u' = (u + ½)/s − ½`). The sweep spans ray depths
//! from just below the surface to where the most oblique pixel's ray is
//! [`AutoRangeOptions::max_depth_below_water_m`] deep. The 2nd-98th percentiles of the depths
//! with confidence ≥ [`AutoRangeOptions::min_confidence`], widened by one coarse step and the
//! margin, are the range.

use super::CostOptions;
use super::sweep::{SweepError, SweepOptions, View, plane_sweep};
use crate::eval::quantile_sorted;
use crate::geom::camera::Intrinsics;
use crate::geom::refraction::RefractiveCamera;
use crate::imgproc::{GrayImage, ImageSize};

/// Options of the coarse sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoRangeOptions {
    /// Images are reduced by this factor in each direction.
    pub downscale: usize,
    /// Hypotheses over the water column.
    pub n_depths: usize,
    /// Window of the coarse NCC (pixels of the reduced image).
    pub window_size: usize,
    /// Deepest point searched, below the water surface (m).
    pub max_depth_below_water_m: f64,
    /// Depths with lower confidence do not count.
    pub min_confidence: f32,
    /// Added on both sides of the range (m).
    pub margin_m: f64,
}

impl Default for AutoRangeOptions {
    /// Quarter resolution, 96 hypotheses over 2 m of water (2 cm steps), window 7.
    fn default() -> Self {
        Self {
            downscale: 4,
            n_depths: 96,
            window_size: 7,
            max_depth_below_water_m: 2.0,
            min_confidence: 0.3,
            margin_m: 0.05,
        }
    }
}

/// The estimated ray-depth range of `reference`, or `None` when too few pixels are confident.
pub fn auto_depth_range(
    reference: View<'_>,
    sources: &[View<'_>],
    opts: &AutoRangeOptions,
) -> Result<Option<(f64, f64)>, SweepError> {
    let s = opts.downscale.max(1);
    let scaled = |v: &View<'_>| downscaled(v, s);
    let (ref_cam, ref_img) = scaled(&reference)?;
    let small: Vec<(RefractiveCamera, GrayImage)> =
        sources.iter().map(scaled).collect::<Result<_, _>>()?;
    let source_views: Vec<View<'_>> =
        small.iter().map(|(c, i)| View { camera: c, image: i }).collect();
    let d_max = opts.max_depth_below_water_m / min_vertical(&ref_cam);
    let d_min = 0.005;
    let sweep = SweepOptions {
        cost: CostOptions { window_size: opts.window_size, ..CostOptions::default() },
        n_depths: opts.n_depths,
        warp_grid: 8,
        ..SweepOptions::default()
    };
    let map = plane_sweep(
        View { camera: &ref_cam, image: &ref_img },
        &source_views,
        d_min,
        d_max,
        &sweep,
    )?;
    let mut depths: Vec<f64> = map
        .depth()
        .as_slice()
        .iter()
        .zip(map.confidence().as_slice())
        .filter(|(d, c)| d.is_finite() && **c >= opts.min_confidence)
        .map(|(d, _)| *d as f64)
        .collect();
    // Fewer than 1 % of the pixels is not a measurement of the bottom.
    if depths.len() < (ref_img.size().area() / 100).max(10) {
        return Ok(None);
    }
    depths.sort_by(f64::total_cmp);
    let step = (d_max - d_min) / (opts.n_depths - 1) as f64;
    let lo = quantile_sorted(&depths, 0.02) - step - opts.margin_m;
    let hi = quantile_sorted(&depths, 0.98) + step + opts.margin_m;
    Ok(Some((lo.max(0.0), hi)))
}

/// The smallest vertical component of the camera's rays in water (over the image border,
/// where rays are most oblique).
fn min_vertical(camera: &RefractiveCamera) -> f64 {
    camera
        .size()
        .border_samples()
        .iter()
        .filter_map(|&(u, v)| camera.cast_ray(u, v).ok())
        .map(|r| r.dir.z)
        .fold(1.0, f64::min)
        .max(0.05)
}

/// A view at `1/s` of the resolution: the image box-averaged ([`box_downscale`]) and the
/// camera scaled to match (pixel centres stay pixel centres: `u' = (u + ½)/s − ½`).
pub(crate) fn downscaled(
    v: &View<'_>,
    s: usize,
) -> Result<(RefractiveCamera, GrayImage), SweepError> {
    let image = box_downscale(v.image, s);
    let k = v.camera.intrinsics();
    let f = s as f64;
    let k_small = Intrinsics {
        fx: k.fx / f,
        fy: k.fy / f,
        cx: (k.cx + 0.5) / f - 0.5,
        cy: (k.cy + 0.5) / f - 0.5,
        skew: k.skew / f,
    };
    let camera = RefractiveCamera::new(
        k_small,
        *v.camera.rotation(),
        *v.camera.translation(),
        *v.camera.interface(),
        image.size(),
    )?;
    Ok((camera, image))
}

/// Mean of each `s × s` block (the last partial blocks are dropped).
pub fn box_downscale(image: &GrayImage, s: usize) -> GrayImage {
    let size = ImageSize::new((image.width() / s).max(1), (image.height() / s).max(1));
    let inv = 1.0 / (s * s) as f32;
    GrayImage::from_fn(size, |x, y| {
        let mut sum = 0.0f32;
        for dy in 0..s {
            for dx in 0..s {
                let (sx, sy) =
                    ((x * s + dx).min(image.width() - 1), (y * s + dy).min(image.height() - 1));
                sum += image.get(sx, sy)[0];
            }
        }
        [sum * inv]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::rgb_to_gray;
    use crate::synth::render::{
        RenderOptions, ground_truth_depth, render_camera, undistorted_camera,
    };
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::{SurfaceKind, SurfaceModel};
    use crate::synth::texture::Texture;

    #[test]
    fn box_downscale_averages_blocks() {
        let img = GrayImage::from_fn(ImageSize::new(4, 2), |x, _| [x as f32]);
        let small = box_downscale(&img, 2);
        assert_eq!(small.size(), ImageSize::new(2, 1));
        assert_eq!(small.as_slice(), &[0.5, 2.5]);
    }

    #[test]
    fn coarse_range_contains_the_true_depths() {
        let mut params = RigParams::preset(RigPreset::Tiny);
        params.distortion = [0.0; 5];
        let rig = params.build().unwrap();
        let surface =
            SurfaceModel::generate(SurfaceKind::Sandbed, params.bottom_z(), params.extent(), 3, 0);
        let texture = Texture::Sand { seed: 3 };
        let names: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
        let cams: Vec<RefractiveCamera> =
            names.iter().map(|n| undistorted_camera(&rig, n).unwrap()).collect();
        let images: Vec<GrayImage> = names
            .iter()
            .map(|n| {
                rgb_to_gray(
                    &render_camera(&rig, n, &surface, &texture, &RenderOptions::default()).unwrap(),
                )
            })
            .collect();
        let reference = View { camera: &cams[0], image: &images[0] };
        let sources: Vec<View> =
            (1..cams.len()).map(|i| View { camera: &cams[i], image: &images[i] }).collect();
        let opts = AutoRangeOptions { downscale: 2, ..AutoRangeOptions::default() };
        let (lo, hi) = auto_depth_range(reference, &sources, &opts).unwrap().expect("a range");
        let truth = ground_truth_depth(&cams[0], &surface);
        let mut t: Vec<f64> =
            truth.as_slice().iter().filter(|d| d.is_finite()).map(|&d| d as f64).collect();
        t.sort_by(f64::total_cmp);
        let (t_lo, t_hi) = (quantile_sorted(&t, 0.01), quantile_sorted(&t, 0.99));
        assert!(lo <= t_lo && hi >= t_hi, "range [{lo}, {hi}] vs truth [{t_lo}, {t_hi}]");
        assert!(hi - lo < (t_hi - t_lo) + 0.25, "range [{lo}, {hi}] too wide for [{t_lo}, {t_hi}]");
    }
}
