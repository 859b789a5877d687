//! Correspondences between cameras: the first step of the sparse stage, whose triangulated
//! points give every camera its depth range (and, in `pipeline_mode: sparse`, the whole cloud).
//!
//! # Model
//! A frame is a set of [`View`]s: per camera, the undistorted grey image, its
//! [`RefractiveCamera`] in the undistorted geometry and an optional mask. Matchers turn views
//! and the canonical pair list ([`pairs::canonical_pairs`]) into [`FrameMatches`]: per pair,
//! pixel correspondences in the two images (optionally tied to keypoint indices, so that the
//! triangulation can merge the same feature seen in several cameras into one track).
//!
//! Two shapes exist:
//! - Keypoint matchers (the classical matcher here; LightGlue in [`onnx`]) implement
//!   [`Matcher`], which is what the pipeline calls. Those that extract features once per
//!   camera and match pairs of feature sets implement [`FeatureMatcher`] and get
//!   [`Matcher::match_frame`] from [`match_with_features`], which runs the extraction in
//!   parallel, applies the masks (reference-numerics §8) and matches every pair in parallel.
//! - Dense matchers (RoMa, [`onnx::RomaMatcher`]) compute a warp per pair from the colour
//!   images and sample correspondences from it
//!   ([`match_pairs`](onnx::RomaMatcher::match_pairs) over [`onnx::RomaView`]s); they report
//!   no keypoints and leave the keypoint indices of their matches empty (the triangulation
//!   then treats each match as a two-view point).
//!
//! # Masks
//! A keypoint survives when `mask[round(v), round(u)] > 0`, coordinates clipped into the image
//! and rounded half to even as numpy does ([`mask_keeps`]). Dense matchers test the canonical
//! `a` pixel by truncation instead ([`mask_keeps_truncated`]), as the reference does.
//!
//! # Determinism
//! Outputs are ordered: keypoints as each extractor defines (the classical one sorts them),
//! pairs in canonical order, matches by keypoint index of `a`. Parallel work is collected in
//! input order.

pub mod classical;
pub mod onnx;
pub mod pairs;
pub mod save;

use std::collections::BTreeMap;

use nalgebra::Point2;
use rayon::prelude::*;

use crate::geom::RefractiveCamera;
use crate::imgproc::{GrayImage, ImageSize, MaskImage};

pub use classical::{ClassicalMatcher, ClassicalOptions};
pub use pairs::{CameraPair, PairMap, PairOptions, canonical_pairs, select_pairs};

/// One camera of a frame, as the matchers see it.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Camera name (as in the calibration).
    pub name: &'a str,
    /// Undistorted grey image, intensities in [0, 1].
    pub image: &'a GrayImage,
    /// The refractive camera in the undistorted geometry (its size is the image size).
    pub camera: &'a RefractiveCamera,
    /// Region of interest at undistorted resolution (non-zero = use the pixel).
    pub mask: Option<&'a MaskImage>,
}

/// Keypoints of one image: positions, detector scores and descriptors of a fixed length.
///
/// Invariant: one score and one descriptor per position (checked by [`Keypoints::new`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keypoints {
    positions: Vec<Point2<f64>>,
    scores: Vec<f32>,
    descriptor_len: usize,
    descriptors: Vec<f32>,
}

impl Keypoints {
    /// Keypoints from positions `(u, v)`, scores and row-major descriptors
    /// (`positions.len() × descriptor_len` values).
    pub fn new(
        positions: Vec<Point2<f64>>,
        scores: Vec<f32>,
        descriptor_len: usize,
        descriptors: Vec<f32>,
    ) -> Result<Self, FeatureError> {
        let n = positions.len();
        if scores.len() != n || descriptors.len() != n * descriptor_len {
            return Err(FeatureError::KeypointLengths {
                positions: n,
                scores: scores.len(),
                descriptor_values: descriptors.len(),
                descriptor_len,
            });
        }
        Ok(Self { positions, scores, descriptor_len, descriptors })
    }

    /// No keypoints, with descriptors of `descriptor_len` values.
    pub fn empty(descriptor_len: usize) -> Self {
        Self { descriptor_len, ..Self::default() }
    }

    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when there are no keypoints.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Positions `(u, v)` in undistorted pixels.
    pub fn positions(&self) -> &[Point2<f64>] {
        &self.positions
    }

    /// Detector scores (larger is stronger; the scale is the detector's).
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Values per descriptor.
    pub fn descriptor_len(&self) -> usize {
        self.descriptor_len
    }

    /// All descriptors, row-major.
    pub fn descriptors(&self) -> &[f32] {
        &self.descriptors
    }

    /// The descriptor of keypoint `i`.
    ///
    /// # Panics
    /// When `i` is out of range (a programming error).
    pub fn descriptor(&self, i: usize) -> &[f32] {
        &self.descriptors[i * self.descriptor_len..(i + 1) * self.descriptor_len]
    }

    /// Keeps the keypoints with `keep[i]`, in order.
    ///
    /// # Panics
    /// When `keep.len() != self.len()` (a programming error).
    pub fn retain(&mut self, keep: &[bool]) {
        assert_eq!(keep.len(), self.len(), "Keypoints::retain: mask length");
        let mut out = 0;
        for (i, &k) in keep.iter().enumerate() {
            if k {
                self.positions[out] = self.positions[i];
                self.scores[out] = self.scores[i];
                let d = self.descriptor_len;
                self.descriptors.copy_within(i * d..(i + 1) * d, out * d);
                out += 1;
            }
        }
        self.positions.truncate(out);
        self.scores.truncate(out);
        self.descriptors.truncate(out * self.descriptor_len);
    }
}

/// One correspondence between the two cameras of a pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// Pixel in camera `a` (undistorted).
    pub a: Point2<f64>,
    /// Pixel in camera `b` (undistorted).
    pub b: Point2<f64>,
    /// Index of the keypoint of `a` this pixel belongs to, when the matcher has keypoints.
    pub keypoint_a: Option<u32>,
    /// Index of the keypoint of `b` matched, when the matcher has keypoints. The pixel `b`
    /// may differ from that keypoint's position (the classical matcher refines it).
    pub keypoint_b: Option<u32>,
    /// Match confidence in [0, 1] (matcher-specific: NCC for the classical matcher, the
    /// matching score for LightGlue, the certainty for RoMa).
    pub score: f32,
}

/// The matches of one canonical pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairMatches {
    /// The two cameras; `pair.a` is side `a` of every match.
    pub pair: CameraPair,
    /// The correspondences (possibly none).
    pub matches: Vec<Match>,
}

/// Everything matching produced for one frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameMatches {
    /// Keypoints per camera (after masking), for matchers that have keypoints; the indices in
    /// [`Match::keypoint_a`] / [`Match::keypoint_b`] refer to these.
    pub keypoints: BTreeMap<String, Keypoints>,
    /// Matches per canonical pair, in the order of the pair list given to the matcher.
    pub pairs: Vec<PairMatches>,
}

impl FrameMatches {
    /// Total number of matches over all pairs.
    pub fn n_matches(&self) -> usize {
        self.pairs.iter().map(|p| p.matches.len()).sum()
    }
}

/// Why matching could not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FeatureError {
    /// Keypoint arrays of different lengths.
    #[error(
        "keypoint arrays disagree: {positions} positions, {scores} scores, {descriptor_values} \
         descriptor values of length {descriptor_len}"
    )]
    KeypointLengths {
        /// Number of positions.
        positions: usize,
        /// Number of scores.
        scores: usize,
        /// Number of descriptor values.
        descriptor_values: usize,
        /// Values per descriptor.
        descriptor_len: usize,
    },
    /// A pair names a camera that is not among the views.
    #[error("pair ({a}, {b}) names camera `{missing}`, which has no view in this frame")]
    UnknownCamera {
        /// First camera of the pair.
        a: String,
        /// Second camera of the pair.
        b: String,
        /// The camera without a view.
        missing: String,
    },
    /// Two views share a name.
    #[error("two views are named `{0}`")]
    DuplicateView(String),
    /// An image does not have the camera's size.
    #[error("camera `{camera}`: image is {image}, but the camera model is {camera_size}")]
    ImageSize {
        /// The camera.
        camera: String,
        /// Size of the image.
        image: ImageSize,
        /// Size of the camera model.
        camera_size: ImageSize,
    },
    /// A mask does not have the image's size.
    #[error("camera `{camera}`: mask is {mask}, but the image is {image}")]
    MaskSize {
        /// The camera.
        camera: String,
        /// Size of the mask.
        mask: ImageSize,
        /// Size of the image.
        image: ImageSize,
    },
    /// A matcher backend failed (model inference, for example).
    #[error("{matcher} matcher failed on {what}: {message}")]
    Backend {
        /// Which matcher.
        matcher: &'static str,
        /// Camera or pair being processed.
        what: String,
        /// What went wrong.
        message: String,
    },
}

impl FeatureError {
    /// `pair` names camera `missing`, which has no view.
    fn unknown_camera(pair: &CameraPair, missing: &str) -> Self {
        Self::UnknownCamera { a: pair.a.clone(), b: pair.b.clone(), missing: missing.to_owned() }
    }
}

/// The views of `pair`'s two cameras among `views` (each named by `name`), or the error naming
/// the camera that has none.
pub(crate) fn views_of_pair<'v, V>(
    views: &'v [V],
    pair: &CameraPair,
    name: impl Fn(&V) -> &str,
) -> Result<(&'v V, &'v V), FeatureError> {
    let find = |camera: &str| {
        views
            .iter()
            .find(|v| name(v) == camera)
            .ok_or_else(|| FeatureError::unknown_camera(pair, camera))
    };
    Ok((find(&pair.a)?, find(&pair.b)?))
}

/// A matcher: views of one frame and canonical pairs in, correspondences out.
///
/// The pipeline holds a `Box<dyn Matcher>` chosen by `matcher_type` and calls
/// [`match_frame`](Self::match_frame) once per frame.
pub trait Matcher: Send + Sync {
    /// Short name for logs and errors (`"classical"`, `"lightglue"`, `"roma"`).
    fn name(&self) -> &'static str;

    /// Matches every pair of `pairs` (canonical, see [`pairs::canonical_pairs`]) between the
    /// `views` of one frame. Every camera a pair names must have a view.
    fn match_frame(
        &self,
        views: &[View<'_>],
        pairs: &[CameraPair],
    ) -> Result<FrameMatches, FeatureError>;
}

/// A matcher that extracts features per camera, then matches pairs of feature sets (the
/// classical matcher, LightGlue). [`match_with_features`] turns one into a [`Matcher`].
pub trait FeatureMatcher: Send + Sync {
    /// What extraction keeps per camera (keypoints, and whatever matching needs besides).
    type Features: Send + Sync;

    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Features of one camera. The view's mask may be used to avoid spending the keypoint
    /// budget where it does not apply; [`match_with_features`] enforces it afterwards.
    fn extract(&self, view: &View<'_>) -> Result<Self::Features, FeatureError>;

    /// The keypoints inside `features`.
    fn keypoints<'f>(&self, features: &'f Self::Features) -> &'f Keypoints;

    /// Keeps the keypoints with `keep[i]` (and their per-keypoint data), in order.
    fn retain(&self, features: &mut Self::Features, keep: &[bool]);

    /// Matches between two cameras; `a` is the canonical side `a`. Keypoint indices refer to
    /// the two feature sets.
    fn match_pair(
        &self,
        a: (&View<'_>, &Self::Features),
        b: (&View<'_>, &Self::Features),
    ) -> Result<Vec<Match>, FeatureError>;
}

/// [`Matcher::match_frame`] for a [`FeatureMatcher`]: checks the inputs, extracts features of
/// every camera some pair names (in parallel), applies masks, matches every pair (in
/// parallel) and collects the results in input order.
pub fn match_with_features<M: FeatureMatcher>(
    matcher: &M,
    views: &[View<'_>],
    pairs: &[CameraPair],
) -> Result<FrameMatches, FeatureError> {
    let extracted = extract_features(matcher, views, pairs)?;
    let matched = match_extracted(matcher, &extracted, pairs)?;
    Ok(FrameMatches { keypoints: extracted.keypoints(matcher), pairs: matched })
}

/// Features of the cameras of one frame, extracted and masked, ready for pair matching.
pub(crate) struct Extracted<'v, 'a, F> {
    views: &'v [View<'a>],
    /// Per view; `None` for views no pair names.
    features: Vec<Option<F>>,
    /// Per pair: the indices of its two views.
    pair_views: Vec<(usize, usize)>,
}

impl<'v, 'a, F> Extracted<'v, 'a, F> {
    /// The views and features of pair `k` (in the order of the pair list).
    pub(crate) fn pair(&self, k: usize) -> ((&View<'a>, &F), (&View<'a>, &F)) {
        let (ia, ib) = self.pair_views[k];
        // Every camera of a pair is extracted by `extract_features`.
        let (Some(fa), Some(fb)) = (&self.features[ia], &self.features[ib]) else {
            unreachable!("features of paired cameras are extracted")
        };
        ((&self.views[ia], fa), (&self.views[ib], fb))
    }

    /// The keypoints of every extracted camera, by name.
    pub(crate) fn keypoints<M: FeatureMatcher<Features = F>>(
        &self,
        matcher: &M,
    ) -> BTreeMap<String, Keypoints> {
        self.views
            .iter()
            .zip(&self.features)
            .filter_map(|(v, f)| {
                f.as_ref().map(|f| (v.name.to_string(), matcher.keypoints(f).clone()))
            })
            .collect()
    }
}

/// Checks the inputs and extracts (and masks) the features of every camera `pairs` names.
pub(crate) fn extract_features<'v, 'a, M: FeatureMatcher>(
    matcher: &M,
    views: &'v [View<'a>],
    pairs: &[CameraPair],
) -> Result<Extracted<'v, 'a, M::Features>, FeatureError> {
    let index = check_views(views)?;
    let lookup = |pair: &CameraPair, name: &str| {
        index.get(name).copied().ok_or_else(|| FeatureError::unknown_camera(pair, name))
    };
    let mut used = vec![false; views.len()];
    let mut pair_views = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (ia, ib) = (lookup(pair, &pair.a)?, lookup(pair, &pair.b)?);
        used[ia] = true;
        used[ib] = true;
        pair_views.push((ia, ib));
    }
    let features: Vec<Option<M::Features>> = views
        .par_iter()
        .zip(used.par_iter())
        .map(|(view, &used)| {
            if !used {
                return Ok(None);
            }
            let _span = tracing::debug_span!("extract", camera = view.name).entered();
            let mut f = matcher.extract(view)?;
            if let Some(mask) = view.mask {
                let keep: Vec<bool> =
                    matcher.keypoints(&f).positions().iter().map(|p| mask_keeps(mask, p)).collect();
                if keep.iter().any(|k| !k) {
                    matcher.retain(&mut f, &keep);
                }
            }
            Ok(Some(f))
        })
        .collect::<Result<_, FeatureError>>()?;
    Ok(Extracted { views, features, pair_views })
}

/// Matches every pair of `pairs` (the list `extracted` was made for), in parallel, in order.
pub(crate) fn match_extracted<M: FeatureMatcher>(
    matcher: &M,
    extracted: &Extracted<'_, '_, M::Features>,
    pairs: &[CameraPair],
) -> Result<Vec<PairMatches>, FeatureError> {
    pairs
        .par_iter()
        .enumerate()
        .map(|(k, pair)| {
            let _span = tracing::debug_span!("match_pair", a = %pair.a, b = %pair.b).entered();
            let (a, b) = extracted.pair(k);
            let matches = matcher.match_pair(a, b)?;
            Ok(PairMatches { pair: pair.clone(), matches })
        })
        .collect()
}

/// Checks view names and sizes; returns name → index.
fn check_views<'v>(views: &'v [View<'_>]) -> Result<BTreeMap<&'v str, usize>, FeatureError> {
    let mut index = BTreeMap::new();
    for (i, view) in views.iter().enumerate() {
        if index.insert(view.name, i).is_some() {
            return Err(FeatureError::DuplicateView(view.name.to_string()));
        }
        let (image, camera_size) = (view.image.size(), view.camera.size());
        if image != camera_size {
            return Err(FeatureError::ImageSize {
                camera: view.name.to_string(),
                image,
                camera_size,
            });
        }
        if let Some(mask) = view.mask
            && mask.size() != image
        {
            return Err(FeatureError::MaskSize {
                camera: view.name.to_string(),
                mask: mask.size(),
                image,
            });
        }
    }
    Ok(index)
}

/// The keypoint mask rule: `mask[round(v), round(u)] > 0`, with the rounded coordinates
/// clipped into the image and halves rounded to even (numpy's `round`). Non-finite positions
/// are rejected. The rule itself is [`crate::masks::keeps_keypoint`].
pub fn mask_keeps(mask: &MaskImage, p: &Point2<f64>) -> bool {
    crate::masks::keeps_keypoint(mask, p.x, p.y)
}

/// The dense-matcher mask rule: like [`mask_keeps`] but truncating the coordinates toward
/// zero (the reference's `.long()`): [`crate::masks::keeps_correspondence`].
pub fn mask_keeps_truncated(mask: &MaskImage, p: &Point2<f64>) -> bool {
    crate::masks::keeps_correspondence(mask, p.x, p.y)
}

#[cfg(test)]
pub(crate) mod testscene;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::{Intrinsics, WaterInterface};
    use nalgebra::{Rotation3, Vector3};

    #[test]
    fn keypoints_check_lengths_and_retain_in_order() {
        let pos = vec![Point2::new(1.0, 2.0), Point2::new(3.0, 4.0), Point2::new(5.0, 6.0)];
        assert!(Keypoints::new(pos.clone(), vec![1.0; 2], 2, vec![0.0; 6]).is_err());
        assert!(Keypoints::new(pos.clone(), vec![1.0; 3], 2, vec![0.0; 5]).is_err());
        let mut kp =
            Keypoints::new(pos, vec![0.1, 0.2, 0.3], 2, vec![1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
                .unwrap();
        kp.retain(&[true, false, true]);
        assert_eq!(kp.len(), 2);
        assert_eq!(kp.positions()[1], Point2::new(5.0, 6.0));
        assert_eq!(kp.scores(), &[0.1, 0.3]);
        assert_eq!(kp.descriptor(1), &[3.0, 3.5]);
    }

    #[test]
    fn mask_rule_rounds_half_to_even_and_clips() {
        // Valid only at column 2 of row 0 and column 0 of row 1.
        let mut mask = MaskImage::from_elem(ImageSize::new(4, 2), 0);
        mask.set(2, 0, [255]);
        mask.set(0, 1, [1]);
        assert!(mask_keeps(&mask, &Point2::new(2.4, 0.2)));
        // 2.5 rounds to 2 (even), 3.5 rounds to 4 and is clipped to 3.
        assert!(mask_keeps(&mask, &Point2::new(2.5, 0.0)));
        assert!(!mask_keeps(&mask, &Point2::new(3.5, 0.0)));
        // 1.5 also rounds to 2.
        assert!(mask_keeps(&mask, &Point2::new(1.5, 0.0)));
        assert!(!mask_keeps(&mask, &Point2::new(1.4, 0.0)));
        // Clipped from outside the image.
        assert!(mask_keeps(&mask, &Point2::new(-3.0, 7.0)));
        assert!(!mask_keeps(&mask, &Point2::new(f64::NAN, 0.0)));
        // Truncation differs from rounding.
        assert!(!mask_keeps_truncated(&mask, &Point2::new(1.9, 0.0)));
        assert!(mask_keeps_truncated(&mask, &Point2::new(2.9, 0.9)));
    }

    /// A matcher that returns one keypoint per pixel of a 2×2 grid and matches equal indices.
    struct GridMatcher;

    impl FeatureMatcher for GridMatcher {
        type Features = Keypoints;
        fn name(&self) -> &'static str {
            "grid"
        }
        fn extract(&self, _view: &View<'_>) -> Result<Keypoints, FeatureError> {
            let pos = vec![
                Point2::new(0.0, 0.0),
                Point2::new(1.0, 0.0),
                Point2::new(0.0, 1.0),
                Point2::new(1.0, 1.0),
            ];
            Keypoints::new(pos, vec![1.0; 4], 0, Vec::new())
        }
        fn keypoints<'f>(&self, f: &'f Keypoints) -> &'f Keypoints {
            f
        }
        fn retain(&self, f: &mut Keypoints, keep: &[bool]) {
            f.retain(keep);
        }
        fn match_pair(
            &self,
            a: (&View<'_>, &Keypoints),
            b: (&View<'_>, &Keypoints),
        ) -> Result<Vec<Match>, FeatureError> {
            Ok((0..a.1.len().min(b.1.len()))
                .map(|i| Match {
                    a: a.1.positions()[i],
                    b: b.1.positions()[i],
                    keypoint_a: Some(i as u32),
                    keypoint_b: Some(i as u32),
                    score: 1.0,
                })
                .collect())
        }
    }

    fn camera(size: ImageSize) -> RefractiveCamera {
        RefractiveCamera::new(
            Intrinsics::new(100.0, 100.0, 1.0, 1.0),
            Rotation3::identity(),
            Vector3::zeros(),
            WaterInterface::new(1.0, 1.0, 1.333),
            size,
        )
        .unwrap()
    }

    #[test]
    fn matchers_are_chosen_at_run_time() {
        // The pipeline holds a `Box<dyn Matcher>` picked by `matcher_type`.
        let matchers: Vec<Box<dyn Matcher>> = vec![Box::new(ClassicalMatcher::default())];
        assert_eq!(matchers[0].name(), "classical");
        assert_eq!(matchers[0].match_frame(&[], &[]).unwrap(), FrameMatches::default());
    }

    #[test]
    fn feature_runner_applies_masks_and_checks_inputs() {
        let size = ImageSize::new(2, 2);
        let cam = camera(size);
        let img = GrayImage::from_elem(size, 0.5);
        let mut mask = MaskImage::from_elem(size, 1);
        mask.set(1, 0, [0]);
        let views = [
            View { name: "a", image: &img, camera: &cam, mask: Some(&mask) },
            View { name: "b", image: &img, camera: &cam, mask: None },
            View { name: "unused", image: &img, camera: &cam, mask: None },
        ];
        let pairs = [CameraPair::new("a", "b").unwrap()];
        let out = match_with_features(&GridMatcher, &views, &pairs).unwrap();
        assert_eq!(out.keypoints.len(), 2, "only paired cameras are extracted");
        assert_eq!(out.keypoints["a"].len(), 3);
        assert_eq!(out.keypoints["b"].len(), 4);
        assert_eq!(out.n_matches(), 3);

        let missing = [CameraPair::new("a", "zz").unwrap()];
        assert!(matches!(
            match_with_features(&GridMatcher, &views, &missing),
            Err(FeatureError::UnknownCamera { .. })
        ));
        let small = GrayImage::from_elem(ImageSize::new(1, 2), 0.5);
        let bad = [View { name: "a", image: &small, camera: &cam, mask: None }];
        assert!(matches!(
            match_with_features(&GridMatcher, &bad, &[]),
            Err(FeatureError::ImageSize { .. })
        ));
        let dup = [views[1], views[1]];
        assert!(matches!(
            match_with_features(&GridMatcher, &dup, &[]),
            Err(FeatureError::DuplicateView(_))
        ));
    }
}
