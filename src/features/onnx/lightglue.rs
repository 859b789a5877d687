//! SuperPoint + LightGlue through ONNX Runtime, with the exports of the LightGlue-ONNX
//! project (reference-numerics §4.1, §4.3).
//!
//! # Supported models (detected from the inputs of `sparse_matching.matcher_model`)
//! - **Separate models.** `sparse_matching.extractor_model`: `image` f32 \[1,1,H,W\] (grey in
//!   \[0, 1\]; H and W fixed, or both dynamic) → `keypoints` i64 or f32 \[1,N,2\] (x, y in the
//!   resized image, pixel centres), `scores` f32 \[1,N\],
//!   `descriptors` f32 \[1,N,D\]. `sparse_matching.matcher_model`: `kpts0`, `kpts1` f32
//!   \[1,N,2\], `desc0`, `desc1` f32 \[1,N,D\] → `matches0` i64 \[M,2\] (index in 0, index in 1),
//!   `mscores0` f32 \[M\]. Features are extracted once per camera per frame; keypoints are
//!   given to the matcher normalised as upstream LightGlue does: `(k − size/2) / (long
//!   edge/2)`, in full-resolution pixels.
//! - **End-to-end model** (`sparse_matching.matcher_model` only): `images` f32 \[2,1,H,W\] →
//!   `keypoints` i64 \[2,N,2\], `matches` i64 \[M,3\] (batch, index in image 0, index in image
//!   1), `mscores` f32 \[M\]. Run once per pair (extraction happens inside); the two images are
//!   zero-padded to a common size. Its matches carry no keypoint indices (two-view points).
//!
//! # Preprocessing
//! Grey in \[0, 1\], resized so that the long side is `sparse_matching.extractor_resize`
//! (LightGlue's 1024 by default), each side rounded to the nearest multiple of 8 (antialiased when
//! shrinking); an extractor exported for a fixed H×W gets exactly that size instead (each axis
//! scaled on its own; `scripts/export_lightglue_onnx.py` exports fixed sizes, because traced
//! extractors bake the trace's image size into their keypoint scaling). Keypoints map back with `u = (k + 0.5) / s − 0.5` per axis, `s` = resized /
//! original size. Then: keypoints scoring below `detection_threshold` are dropped, the
//! `max_keypoints` best are kept, masks are applied (§8), and matches scoring below
//! `filter_threshold` are dropped.

use std::path::Path;

use nalgebra::Point2;

use super::resize::resize_planar;
use super::runtime::{Input, Model, OnnxError, describe_inputs, environment};
use crate::config::{Config, Device};
use crate::features::{
    CameraPair, FeatureError, FeatureMatcher, FrameMatches, Keypoints, Match, Matcher, PairMatches,
    View, mask_keeps, match_with_features,
};
use crate::imgproc::{GrayImage, ImageSize};

/// Settings of the LightGlue matcher.
#[derive(Clone, Debug, PartialEq)]
pub struct LightGlueOptions {
    /// Long side of the image the extractor sees (pixels).
    pub resize: usize,
    /// Keypoints scoring below this are dropped.
    pub detection_threshold: f32,
    /// At most this many keypoints per image (the best-scoring).
    pub max_keypoints: usize,
    /// Matches scoring below this are dropped.
    pub filter_threshold: f32,
    /// ONNX Runtime intra-op threads (`None`: every core).
    pub threads: Option<usize>,
    /// Where the models run (`runtime.device`).
    pub device: Device,
}

impl Default for LightGlueOptions {
    fn default() -> Self {
        Self {
            resize: 1024,
            detection_threshold: 0.005,
            max_keypoints: 2048,
            filter_threshold: 0.1,
            threads: None,
            device: Device::Cpu,
        }
    }
}

impl LightGlueOptions {
    /// The options of a config (`sparse_matching`, `runtime.threads`).
    pub fn from_config(config: &Config) -> Self {
        let s = &config.sparse_matching;
        Self {
            resize: s.extractor_resize,
            detection_threshold: s.detection_threshold as f32,
            max_keypoints: s.max_keypoints,
            filter_threshold: s.filter_threshold as f32,
            threads: config.runtime.threads,
            device: config.runtime.device,
        }
    }
}

/// Which form of model was loaded.
#[derive(Debug)]
enum Form {
    /// `input`: the extractor's fixed input size, `None` when dynamic.
    Separate {
        extractor: Model,
        matcher: Model,
        input: Option<ImageSize>,
    },
    EndToEnd {
        model: Model,
    },
}

/// The LightGlue matcher (see the module docs).
#[derive(Debug)]
pub struct LightGlueMatcher {
    form: Form,
    opts: LightGlueOptions,
}

const EXTRACTOR_FIELD: &str = "sparse_matching.extractor_model";
const MATCHER_FIELD: &str = "sparse_matching.matcher_model";

impl LightGlueMatcher {
    /// Loads the runtime (see [`super::runtime`]) and the models named by the config.
    pub fn from_config(config: &Config) -> Result<Self, OnnxError> {
        let matcher =
            config.sparse_matching.matcher_model.as_deref().ok_or_else(|| OnnxError::Model {
                field: MATCHER_FIELD,
                path: Default::default(),
                message: "is not set; `matcher_type: lightglue` needs the LightGlue ONNX model"
                    .into(),
            })?;
        let env = environment(config.runtime.onnxruntime_library.as_deref())?;
        Self::load(
            &env,
            config.sparse_matching.extractor_model.as_deref(),
            matcher,
            LightGlueOptions::from_config(config),
        )
    }

    /// Loads `matcher` (the matcher alone, with `extractor`, or an end-to-end model).
    pub fn load(
        env: &ort::environment::Environment,
        extractor: Option<&Path>,
        matcher: &Path,
        opts: LightGlueOptions,
    ) -> Result<Self, OnnxError> {
        let model = Model::load(env, matcher, MATCHER_FIELD, opts.threads, opts.device)?;
        let names = model.input_names();
        let form = if names == ["images"] {
            model.require_outputs("end-to-end LightGlue", &["keypoints", "matches", "mscores"])?;
            if extractor.is_some() {
                tracing::warn!(
                    "{MATCHER_FIELD} is an end-to-end model: {EXTRACTOR_FIELD} is not used"
                );
            }
            Form::EndToEnd { model }
        } else if ["kpts0", "kpts1", "desc0", "desc1"].iter().all(|n| names.contains(n)) {
            model.require_outputs("LightGlue matcher", &["matches0", "mscores0"])?;
            let path = extractor.ok_or_else(|| OnnxError::Model {
                field: EXTRACTOR_FIELD,
                path: Default::default(),
                message: format!(
                    "is not set, but {} is a matcher-only LightGlue model that needs the \
                     SuperPoint extractor model",
                    matcher.display()
                ),
            })?;
            let ex = Model::load(env, path, EXTRACTOR_FIELD, opts.threads, opts.device)?;
            if ex.input_names() != ["image"] {
                return Err(ex.signature_error(
                    "SuperPoint extractor",
                    format!(
                        "expected one input `image` [1,1,H,W], found {}",
                        describe_inputs(&ex.inputs)
                    ),
                ));
            }
            ex.require_outputs("SuperPoint extractor", &["keypoints", "scores", "descriptors"])?;
            let input = match ex.inputs[0].2.as_slice() {
                [_, 1, h, w] if *h > 0 && *w > 0 => Some(ImageSize::new(*w as usize, *h as usize)),
                [_, 1, h, w] if *h <= 0 && *w <= 0 => None,
                shape => {
                    return Err(ex.signature_error(
                        "SuperPoint extractor",
                        format!(
                            "`image` has shape {shape:?}; expected [1,1,H,W] (one grey channel) \
                             with H and W both fixed or both dynamic"
                        ),
                    ));
                }
            };
            if let Some(size) = input {
                tracing::info!(
                    "the extractor {} takes {}×{} images: sparse_matching.extractor_resize does \
                     not apply",
                    path.display(),
                    size.width,
                    size.height
                );
            }
            Form::Separate { extractor: ex, matcher: model, input }
        } else {
            return Err(model.signature_error(
                "LightGlue",
                format!(
                    "expected inputs `kpts0, kpts1, desc0, desc1` (matcher) or `images` \
                     (end-to-end), found {}",
                    describe_inputs(&model.inputs)
                ),
            ));
        };
        if opts.resize < 8 {
            return Err(OnnxError::Model {
                field: "sparse_matching.extractor_resize",
                path: matcher.to_path_buf(),
                message: format!("must be at least 8, got {}", opts.resize),
            });
        }
        Ok(Self { form, opts })
    }

    /// True for an end-to-end model.
    pub fn is_end_to_end(&self) -> bool {
        matches!(self.form, Form::EndToEnd { .. })
    }
}

/// The model-input size of an image: scaled so that the long side is `resize`, then each
/// side rounded to the nearest multiple of 8 (at least 8).
pub fn resized_size(size: ImageSize, resize: usize) -> ImageSize {
    let long = size.width.max(size.height).max(1) as f64;
    let s = resize as f64 / long;
    let side = |n: usize| (((n as f64 * s) / 8.0).round() as usize).max(1) * 8;
    ImageSize::new(side(size.width), side(size.height))
}

/// A grey image prepared for the extractor: planar values and the per-axis scales.
struct Prepared {
    data: Vec<f32>,
    size: ImageSize,
    scale: (f64, f64),
}

/// `fixed`: the extractor's own input size, else [`resized_size`].
fn prepare(image: &GrayImage, resize: usize, fixed: Option<ImageSize>) -> Prepared {
    let (w, h) = (image.width(), image.height());
    let size = fixed.unwrap_or_else(|| resized_size(image.size(), resize));
    let data = resize_planar(image.as_slice(), 1, (w, h), (size.width, size.height));
    Prepared { data, size, scale: (size.width as f64 / w as f64, size.height as f64 / h as f64) }
}

/// A keypoint of the resized image at full resolution (pixel-centre convention).
fn map_back(k: (f32, f32), scale: (f64, f64)) -> Point2<f64> {
    Point2::new((k.0 as f64 + 0.5) / scale.0 - 0.5, (k.1 as f64 + 0.5) / scale.1 - 0.5)
}

fn backend(what: impl Into<String>, e: OnnxError) -> FeatureError {
    FeatureError::Backend { matcher: "lightglue", what: what.into(), message: e.to_string() }
}

impl LightGlueMatcher {
    /// Keypoints (full resolution) of one image with the separate extractor.
    fn extract_separate(
        &self,
        extractor: &Model,
        input: Option<ImageSize>,
        view: &View<'_>,
    ) -> Result<Keypoints, OnnxError> {
        let p = prepare(view.image, self.opts.resize, input);
        let (h, w) = (p.size.height as i64, p.size.width as i64);
        let out = extractor.run(
            vec![Input { name: "image", shape: vec![1, 1, h, w], data: p.data }],
            &["keypoints", "scores", "descriptors"],
        )?;
        // Integer (SuperPoint) or sub-pixel (ALIKED) positions.
        let kp = out[0].f32s(extractor, "keypoints", 3)?;
        let scores = out[1].f32s(extractor, "scores", 2)?;
        let desc = out[2].f32s(extractor, "descriptors", 3)?;
        let n = out[0].dim(1);
        let d = out[2].dim(2);
        if out[0].dim(2) != 2 || scores.len() != n || out[2].dim(1) != n {
            return Err(extractor.inference_error(format!(
                "inconsistent outputs: keypoints {:?}, scores {:?}, descriptors {:?}",
                out[0].shape, out[1].shape, out[2].shape
            )));
        }
        // Best scores first (stable), then the thresholds.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        order.retain(|&i| scores[i] >= self.opts.detection_threshold);
        order.truncate(self.opts.max_keypoints);
        order.sort_unstable();
        let positions = order.iter().map(|&i| map_back((kp[2 * i], kp[2 * i + 1]), p.scale));
        let descriptors = order.iter().flat_map(|&i| desc[i * d..(i + 1) * d].iter().copied());
        Keypoints::new(
            positions.collect(),
            order.iter().map(|&i| scores[i]).collect(),
            d,
            descriptors.collect(),
        )
        .map_err(|e| extractor.inference_error(e.to_string()))
    }

    /// Matches of two keypoint sets with the separate matcher.
    fn match_separate(
        &self,
        matcher: &Model,
        a: (&View<'_>, &Keypoints),
        b: (&View<'_>, &Keypoints),
    ) -> Result<Vec<Match>, OnnxError> {
        let (ka, kb) = (a.1, b.1);
        if ka.is_empty() || kb.is_empty() {
            return Ok(Vec::new());
        }
        if ka.descriptor_len() != kb.descriptor_len() {
            return Err(matcher.inference_error("descriptor lengths of the two images differ"));
        }
        let d = ka.descriptor_len() as i64;
        let norm = |view: &View<'_>, k: &Keypoints| -> Vec<f32> {
            let (w, h) = (view.image.width() as f64, view.image.height() as f64);
            let scale = w.max(h) / 2.0;
            k.positions()
                .iter()
                .flat_map(|p| [((p.x - w / 2.0) / scale) as f32, ((p.y - h / 2.0) / scale) as f32])
                .collect()
        };
        let (na, nb) = (ka.len() as i64, kb.len() as i64);
        let out = matcher.run(
            vec![
                Input { name: "kpts0", shape: vec![1, na, 2], data: norm(a.0, ka) },
                Input { name: "kpts1", shape: vec![1, nb, 2], data: norm(b.0, kb) },
                Input { name: "desc0", shape: vec![1, na, d], data: ka.descriptors().to_vec() },
                Input { name: "desc1", shape: vec![1, nb, d], data: kb.descriptors().to_vec() },
            ],
            &["matches0", "mscores0"],
        )?;
        let m = out[0].i64s(matcher, "matches0", 2)?;
        let s = out[1].f32s(matcher, "mscores0", 1)?;
        if out[0].dim(1) != 2 || s.len() != out[0].dim(0) {
            return Err(matcher.inference_error(format!(
                "matches0 {:?} and mscores0 {:?} do not fit [M,2] and [M]",
                out[0].shape, out[1].shape
            )));
        }
        let mut matches = Vec::new();
        for (pair, &score) in m.chunks_exact(2).zip(&s) {
            let (i, j) = (pair[0], pair[1]);
            if i < 0 || j < 0 {
                continue;
            }
            let (iu, ju) = (i as usize, j as usize);
            if iu >= ka.len() || ju >= kb.len() {
                return Err(matcher.inference_error(format!(
                    "match ({i}, {j}) is out of range ({} and {} keypoints)",
                    ka.len(),
                    kb.len()
                )));
            }
            if score >= self.opts.filter_threshold {
                matches.push(Match {
                    a: ka.positions()[iu],
                    b: kb.positions()[ju],
                    keypoint_a: Some(i as u32),
                    keypoint_b: Some(j as u32),
                    score,
                });
            }
        }
        matches.sort_by_key(|m| m.keypoint_a);
        Ok(matches)
    }

    /// Matches of one pair with the end-to-end model.
    fn match_end_to_end(
        &self,
        model: &Model,
        a: &View<'_>,
        b: &View<'_>,
    ) -> Result<Vec<Match>, OnnxError> {
        let (pa, pb) =
            (prepare(a.image, self.opts.resize, None), prepare(b.image, self.opts.resize, None));
        let w = pa.size.width.max(pb.size.width);
        let h = pa.size.height.max(pb.size.height);
        let mut data = vec![0.0f32; 2 * w * h];
        for (k, p) in [&pa, &pb].into_iter().enumerate() {
            for y in 0..p.size.height {
                let src = &p.data[y * p.size.width..(y + 1) * p.size.width];
                data[k * w * h + y * w..k * w * h + y * w + p.size.width].copy_from_slice(src);
            }
        }
        let out = model.run(
            vec![Input { name: "images", shape: vec![2, 1, h as i64, w as i64], data }],
            &["keypoints", "matches", "mscores"],
        )?;
        let kp = out[0].f32s(model, "keypoints", 3)?;
        let m = out[1].i64s(model, "matches", 2)?;
        let s = out[2].f32s(model, "mscores", 1)?;
        let n = out[0].dim(1);
        if out[0].dim(0) != 2
            || out[0].dim(2) != 2
            || out[1].dim(1) != 3
            || s.len() != out[1].dim(0)
        {
            return Err(model.inference_error(format!(
                "outputs keypoints {:?}, matches {:?}, mscores {:?} do not fit [2,N,2], [M,3], [M]",
                out[0].shape, out[1].shape, out[2].shape
            )));
        }
        let point = |img: usize, i: usize, scale| {
            map_back((kp[(img * n + i) * 2], kp[(img * n + i) * 2 + 1]), scale)
        };
        let mut matches = Vec::new();
        for (row, &score) in m.chunks_exact(3).zip(&s) {
            let (batch, i, j) = (row[0], row[1], row[2]);
            if batch != 0 || i < 0 || j < 0 {
                continue;
            }
            let (i, j) = (i as usize, j as usize);
            if i >= n || j >= n {
                return Err(model
                    .inference_error(format!("match ({i}, {j}) is out of range ({n} keypoints)")));
            }
            if score < self.opts.filter_threshold {
                continue;
            }
            let (pa_, pb_) = (point(0, i, pa.scale), point(1, j, pb.scale));
            let kept =
                |view: &View<'_>, p: &Point2<f64>| view.mask.is_none_or(|m| mask_keeps(m, p));
            if kept(a, &pa_) && kept(b, &pb_) {
                matches.push(Match { a: pa_, b: pb_, keypoint_a: None, keypoint_b: None, score });
            }
        }
        Ok(matches)
    }
}

/// The separate form as a [`FeatureMatcher`].
struct Separate<'m> {
    owner: &'m LightGlueMatcher,
    extractor: &'m Model,
    input: Option<ImageSize>,
    matcher: &'m Model,
}

impl FeatureMatcher for Separate<'_> {
    type Features = Keypoints;

    fn name(&self) -> &'static str {
        "lightglue"
    }

    fn extract(&self, view: &View<'_>) -> Result<Keypoints, FeatureError> {
        self.owner
            .extract_separate(self.extractor, self.input, view)
            .map_err(|e| backend(format!("camera `{}`", view.name), e))
    }

    fn keypoints<'f>(&self, features: &'f Keypoints) -> &'f Keypoints {
        features
    }

    fn retain(&self, features: &mut Keypoints, keep: &[bool]) {
        features.retain(keep);
    }

    fn match_pair(
        &self,
        a: (&View<'_>, &Keypoints),
        b: (&View<'_>, &Keypoints),
    ) -> Result<Vec<Match>, FeatureError> {
        self.owner
            .match_separate(self.matcher, a, b)
            .map_err(|e| backend(format!("pair ({}, {})", a.0.name, b.0.name), e))
    }
}

impl Matcher for LightGlueMatcher {
    fn name(&self) -> &'static str {
        "lightglue"
    }

    fn match_frame(
        &self,
        views: &[View<'_>],
        pairs: &[CameraPair],
    ) -> Result<FrameMatches, FeatureError> {
        match &self.form {
            Form::Separate { extractor, matcher, input } => match_with_features(
                &Separate { owner: self, extractor, input: *input, matcher },
                views,
                pairs,
            ),
            Form::EndToEnd { model } => {
                let mut out = FrameMatches::default();
                for pair in pairs {
                    let (a, b) = crate::features::views_of_pair(views, pair, |v| v.name)?;
                    let _span =
                        tracing::debug_span!("match_pair", a = %pair.a, b = %pair.b).entered();
                    let matches = self
                        .match_end_to_end(model, a, b)
                        .map_err(|e| backend(format!("pair ({}, {})", pair.a, pair.b), e))?;
                    out.pairs.push(PairMatches { pair: pair.clone(), matches });
                }
                Ok(out)
            }
        }
    }
}
