//! Depth ranges without matches: a coarse plane sweep at reduced resolution over the whole
//! water column, whose confident depths give the range (`reconstruction.depth_range: auto`, and
//! the fallback when the sparse stage finds nothing for a camera).
//!
//! The images are box-averaged by [`AutoRangeOptions::downscale`] and the cameras scaled to
//! match ([`downscaled`]) (pixel centres stay pixel centres: `u' = (u + ½)/s − ½`). The sweep spans ray depths
//! from just below the surface to where the most oblique pixel's ray is
//! [`AutoRangeOptions::max_depth_below_water_m`] deep. The 2nd-98th percentiles of the depths
//! with confidence ≥ [`AutoRangeOptions::min_confidence`], widened by one coarse step and the
//! margin, are the range.

use super::sweep::{SweepError, SweepOptions, SweepView, downscaled, plane_sweep};
use super::{CostOptions, RayDepthRange};
use crate::geom::refraction::RefractiveCamera;
use crate::imgproc::GrayImage;
use crate::stats::quantile_sorted;

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
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    opts: &AutoRangeOptions,
) -> Result<Option<RayDepthRange>, SweepError> {
    let s = opts.downscale.max(1);
    let scaled = |v: &SweepView<'_>| downscaled(v, s);
    let (ref_cam, ref_img) = scaled(&reference)?;
    let small: Vec<(RefractiveCamera, GrayImage)> =
        sources.iter().map(scaled).collect::<Result<_, _>>()?;
    let source_views: Vec<SweepView<'_>> =
        small.iter().map(|(c, i)| SweepView { camera: c, image: i }).collect();
    let d_max = opts.max_depth_below_water_m / min_vertical(&ref_cam);
    let d_min = 0.005;
    let sweep = SweepOptions {
        cost: CostOptions { window_size: opts.window_size, ..CostOptions::default() },
        n_depths: opts.n_depths,
        warp_grid: 8,
        ..SweepOptions::default()
    };
    let map = plane_sweep(
        SweepView { camera: &ref_cam, image: &ref_img },
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
    Ok(Some(RayDepthRange { min: lo.max(0.0), max: hi }))
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
        let (reference, sources) = SweepView::first_and_sources(&cams, &images);
        let opts = AutoRangeOptions { downscale: 2, ..AutoRangeOptions::default() };
        let RayDepthRange { min: lo, max: hi } =
            auto_depth_range(reference, &sources, &opts).unwrap().expect("a range");
        let truth = ground_truth_depth(&cams[0], &surface);
        let mut t: Vec<f64> =
            truth.as_slice().iter().filter(|d| d.is_finite()).map(|&d| d as f64).collect();
        t.sort_by(f64::total_cmp);
        let (t_lo, t_hi) = (quantile_sorted(&t, 0.01), quantile_sorted(&t, 0.99));
        assert!(lo <= t_lo && hi >= t_hi, "range [{lo}, {hi}] vs truth [{t_lo}, {t_hi}]");
        assert!(hi - lo < (t_hi - t_lo) + 0.25, "range [{lo}, {hi}] too wide for [{t_lo}, {t_hi}]");
    }
}
