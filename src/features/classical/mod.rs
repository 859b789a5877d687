//! The classical matcher (`matcher_type: classical`, the default): no model files, works on
//! every machine, and uses what learned matchers ignore — the rig is calibrated.
//!
//! Per camera ([`ClassicalMatcher::extract`]):
//! 1. Smooth the undistorted grey image (Gaussian, [`ClassicalOptions::smoothing_sigma_px`]).
//! 2. Detect Shi-Tomasi corners with per-cell non-maximum suppression so that faint texture
//!    gets keypoints too, refined to sub-pixel peaks (`detect`).
//! 3. Describe each keypoint by its mean- and variance-normalised patch (`patch`): invariant
//!    to the gain and offset differences between cameras.
//!
//! Per canonical pair `(a, b)` (`guided`):
//! 1. For each keypoint of `a`, trace the refractive epipolar curve in `b` (the projection of
//!    `a`'s refracted ray over the water column, `epipolar`) and take the keypoints of `b`
//!    within [`ClassicalOptions::epipolar_band_px`] of it as candidates.
//! 2. Score each candidate by NCC between `a`'s patch and `b` sampled through the local
//!    affine map the calibration predicts at that depth (horizontal surface assumed), which
//!    removes the rotation, foreshortening and refraction anisotropy between views.
//! 3. Keep mutual best matches that pass a ratio test against the best *distinct* alternative
//!    along the curve and a minimum NCC.
//! 4. Refine each match along the curve: maximise NCC over depth along `a`'s ray (coarse and
//!    fine steps, parabolic peaks). The `a` pixel stays the keypoint; the `b` pixel is the
//!    projection of the refined point, so both rays meet exactly at it.

mod detect;
mod epipolar;
mod filter;
mod guided;
mod patch;

use nalgebra::Point2;
use rayon::prelude::*;

use super::pairs::CameraPair;
use super::{FeatureError, FeatureMatcher, FrameMatches, Keypoints, Match, Matcher, View};
use crate::config::Config;
use crate::imgproc::GrayImage;
use crate::imgproc::clahe::clahe_gray;
use epipolar::KeypointGrid;

pub use epipolar::CURVE_TOLERANCE_PX;

/// Settings of the classical matcher. The defaults were tuned on rendered sand scenes of the
/// `tiny` and `tank` rigs (see the module tests and `benches/sparse.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicalOptions {
    /// Maximum keypoints per image (`sparse_matching.max_keypoints`). More keypoints give more
    /// points and cost time roughly linearly.
    pub max_keypoints: usize,
    /// CLAHE clip limit applied to the image before detection and description
    /// (`sparse_matching.clahe_enabled` / `clahe_clip_limit`); `None` leaves the image as it
    /// is. The descriptors are gain-invariant already; CLAHE helps the detector in dark or
    /// hazy water, where the texture's contrast is low everywhere.
    pub clahe_clip_limit: Option<f64>,
    /// Gaussian smoothing before detection and description (pixels). Removes sensor noise and
    /// aliasing; larger values lose fine texture.
    pub smoothing_sigma_px: f32,
    /// Integration scale of the structure tensor (pixels): the size of the corners found.
    pub integration_sigma_px: f32,
    /// Patch half-width (pixels); the patch is `(2r + 1)²` samples. Larger patches are more
    /// distinctive but suffer more from surface relief inside them.
    pub patch_radius: usize,
    /// Candidates must lie within this distance of the epipolar curve (pixels of `b`). Must
    /// exceed the calibration error plus the keypoint localisation error.
    pub epipolar_band_px: f64,
    /// The search spans the water column from the surface to this depth below it (metres;
    /// the plausibility window of the triangulation).
    pub max_depth_below_water_m: f64,
    /// Restricts the search further to these ray depths along the reference ray (metres),
    /// e.g. a configured `reconstruction.depth_range`.
    pub ray_depth_window: Option<(f64, f64)>,
    /// Minimum NCC of a match (before and after refinement), in [−1, 1].
    pub min_ncc: f32,
    /// Ratio test: `1 − best` must not exceed this fraction of `1 − second` (second = best
    /// candidate at another place along the curve). Lower is stricter.
    pub max_ratio: f32,
    /// Survey the bottom first: match the strongest [`survey_keypoints`](Self::survey_keypoints)
    /// of each camera with strict tests, take the depth (world Z) range of what they find,
    /// and search only that range (widened) in the full pass. The whole water column is
    /// 2 m deep, the bottom a few centimetres: most wrong matches lie far off it, and the
    /// shorter curves cost less. Falls back to the whole column when the survey finds too
    /// little.
    pub survey: bool,
    /// Keypoints per camera in the survey (the best-spread ones: keypoints are ordered by
    /// rank in their cell).
    pub survey_keypoints: usize,
}

impl Default for ClassicalOptions {
    fn default() -> Self {
        Self {
            max_keypoints: 2048,
            clahe_clip_limit: None,
            smoothing_sigma_px: 1.0,
            integration_sigma_px: 1.5,
            patch_radius: 5,
            epipolar_band_px: 2.5,
            max_depth_below_water_m: 2.0,
            ray_depth_window: None,
            min_ncc: 0.7,
            max_ratio: 0.8,
            survey: true,
            survey_keypoints: 512,
        }
    }
}

impl ClassicalOptions {
    /// The defaults with the configured keypoint budget and CLAHE.
    pub fn from_config(config: &Config) -> Self {
        let sm = &config.sparse_matching;
        Self {
            max_keypoints: sm.max_keypoints,
            clahe_clip_limit: sm.clahe_enabled.then_some(sm.clahe_clip_limit),
            ..Self::default()
        }
    }
}

/// What the classical matcher keeps per camera: keypoints with normalised-patch descriptors
/// at two scales, a grid over them for epipolar band queries, and the two pyramid levels for
/// warped sampling.
///
/// Two levels because cameras see the bottom at different scales (the tank's centre camera
/// at half the ring cameras' resolution): patches are compared at the pair of levels whose
/// effective scale ratio is closest to one, so both carry the same detail.
#[derive(Clone, Debug)]
pub struct ClassicalFeatures {
    /// Positions, responses and level-0 descriptors.
    keypoints: Keypoints,
    /// Level-1 descriptors (same layout); a keypoint too close to the border for a level-1
    /// patch has NaN values.
    coarse: Vec<f32>,
    grid: KeypointGrid,
    /// Level 0 (smoothed input) and level 1 (half resolution).
    levels: [GrayImage; 2],
}

impl ClassicalFeatures {
    /// The keypoints (descriptors are level-0 normalised patches, rows first).
    pub fn keypoints(&self) -> &Keypoints {
        &self.keypoints
    }

    /// The smoothed image the level-0 descriptors were sampled from.
    pub fn smoothed(&self) -> &GrayImage {
        &self.levels[0]
    }

    /// The descriptor of keypoint `i` at pyramid `level` (0 or 1), if it has one.
    fn descriptor(&self, i: usize, level: usize) -> Option<&[f32]> {
        if level == 0 {
            return Some(self.keypoints.descriptor(i));
        }
        let len = self.keypoints.descriptor_len();
        let d = &self.coarse[i * len..(i + 1) * len];
        (!d[0].is_nan()).then_some(d)
    }
}

/// The weights-free matcher with refractive epipolar guidance (module doc).
#[derive(Clone, Debug, Default)]
pub struct ClassicalMatcher {
    options: ClassicalOptions,
    /// What [`FeatureMatcher::match_pair`] does: the full pass of the options by default.
    pass: guided::Pass,
}

impl ClassicalMatcher {
    /// A matcher with `options`.
    pub fn new(options: ClassicalOptions) -> Self {
        let pass = guided::Pass::full(&options, None);
        Self { options, pass }
    }

    /// The same matcher running `pass`.
    fn with_pass(&self, pass: guided::Pass) -> Self {
        Self { options: self.options.clone(), pass }
    }

    /// The settings.
    pub fn options(&self) -> &ClassicalOptions {
        &self.options
    }

    /// Grid cell for band queries: about one keypoint per cell on average, at least 8 px.
    fn grid_cell(width: usize, height: usize, n: usize) -> f64 {
        ((width * height) as f64 / n.max(1) as f64).sqrt().max(8.0)
    }
}

impl FeatureMatcher for ClassicalMatcher {
    type Features = ClassicalFeatures;

    fn name(&self) -> &'static str {
        "classical"
    }

    fn extract(&self, view: &View<'_>) -> Result<ClassicalFeatures, FeatureError> {
        let o = &self.options;
        let smoothed = match o.clahe_clip_limit {
            Some(clip) => {
                filter::gaussian_blur(&clahe_gray(view.image, clip), o.smoothing_sigma_px)
            }
            None => filter::gaussian_blur(view.image, o.smoothing_sigma_px),
        };
        let response = detect::shi_tomasi(&smoothed, o.integration_sigma_px);
        // Keypoints keep their patch (plus a pixel for sub-pixel shifts) inside the image.
        let border = o.patch_radius + 2;
        let detections = detect::select_keypoints(&response, o.max_keypoints, border, view.mask);
        let coarse_image = filter::downsample(&smoothed, o.smoothing_sigma_px);
        let len = patch::patch_len(o.patch_radius);
        type Described = (Point2<f64>, f32, Vec<f32>, Vec<f32>);
        let described: Vec<Option<Described>> = detections
            .par_iter()
            .map(|d| {
                let mut desc = vec![0.0; len];
                if !patch::descriptor(&smoothed, &d.position, o.patch_radius, &mut desc) {
                    return None;
                }
                // Level-1 pixel (x, y) is level-0 (2x, 2y).
                let mut coarse = vec![0.0; len];
                let half = Point2::from(d.position.coords * 0.5);
                if !patch::descriptor(&coarse_image, &half, o.patch_radius, &mut coarse) {
                    coarse.fill(f32::NAN);
                }
                Some((d.position, d.response, desc, coarse))
            })
            .collect();
        let (mut positions, mut scores) = (Vec::new(), Vec::new());
        let (mut descriptors, mut coarse) = (Vec::new(), Vec::new());
        for (p, s, d, c) in described.into_iter().flatten() {
            positions.push(p);
            scores.push(s);
            descriptors.extend_from_slice(&d);
            coarse.extend_from_slice(&c);
        }
        let grid = KeypointGrid::new(
            &positions,
            smoothed.width(),
            smoothed.height(),
            Self::grid_cell(smoothed.width(), smoothed.height(), positions.len()),
        );
        let keypoints = Keypoints::new(positions, scores, len, descriptors)?;
        Ok(ClassicalFeatures { keypoints, coarse, grid, levels: [smoothed, coarse_image] })
    }

    fn keypoints<'f>(&self, features: &'f ClassicalFeatures) -> &'f Keypoints {
        &features.keypoints
    }

    fn retain(&self, features: &mut ClassicalFeatures, keep: &[bool]) {
        let len = features.keypoints.descriptor_len();
        let mut out = 0;
        for (i, &k) in keep.iter().enumerate() {
            if k {
                features.coarse.copy_within(i * len..(i + 1) * len, out * len);
                out += 1;
            }
        }
        features.coarse.truncate(out * len);
        features.keypoints.retain(keep);
        let (w, h) = (features.levels[0].width(), features.levels[0].height());
        let n = features.keypoints.len();
        features.grid =
            KeypointGrid::new(features.keypoints.positions(), w, h, Self::grid_cell(w, h, n));
    }

    fn match_pair(
        &self,
        a: (&View<'_>, &ClassicalFeatures),
        b: (&View<'_>, &ClassicalFeatures),
    ) -> Result<Vec<Match>, FeatureError> {
        Ok(guided::match_pair(&self.options, &self.pass, a, b))
    }
}

impl Matcher for ClassicalMatcher {
    fn name(&self) -> &'static str {
        "classical"
    }

    /// Extracts features once, surveys the bottom's depth range (unless
    /// [`ClassicalOptions::survey`] is off), then matches every pair within it.
    fn match_frame(
        &self,
        views: &[View<'_>],
        pairs: &[CameraPair],
    ) -> Result<FrameMatches, FeatureError> {
        let extracted = super::extract_features(self, views, pairs)?;
        let window = if self.options.survey {
            let survey = self.with_pass(guided::Pass::survey(&self.options));
            let found = super::match_extracted(&survey, &extracted, pairs)?;
            let window = guided::depth_window(views, &found);
            tracing::debug!(?window, "survey of the bottom's depth");
            window
        } else {
            None
        };
        let full = self.with_pass(guided::Pass::full(&self.options, window));
        let matched = super::match_extracted(&full, &extracted, pairs)?;
        Ok(FrameMatches { keypoints: extracted.keypoints(self), pairs: matched })
    }
}

#[cfg(test)]
mod tests;
