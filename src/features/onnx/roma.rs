//! RoMa v2 dense matching through ONNX Runtime (reference-numerics §4.4).
//!
//! # Supported model (`dense_matching.roma_model`)
//! Inputs `img_A`, `img_B` f32 \[B,3,H,W\], RGB in \[0, 1\] (any normalisation belongs inside the
//! exported graph), with fixed H and W (RoMa v2's "precise" setting is 1280×1280), or dynamic
//! H and W, which are then `dense_matching.roma_anchor_width/height` (AquaMVS's default
//! 512×512); aquamvs runs one pair at a time (B = 1). Outputs `warp_AB` f32 \[B,Hw,Ww,2\]: for
//! each warp cell of A, the matching position in B in normalised [−1, 1] coordinates (x, then
//! y; −1 and 1 are the outer image edges), and `overlap_AB` f32 \[B,Hw,Ww\] or \[B,Hw,Ww,1\]:
//! the certainty in \[0, 1\] (after the sigmoid).
//!
//! Images are resized to H×W (antialiased linear) and fed as RGB, not the BGR the reference
//! hands over by accident.
//!
//! # Pixel conventions (the reference's half-pixel offsets corrected)
//! Warp cell (i, j) stands for the reference pixel `u = (j + 0.5)·W_ref/Ww − 0.5`,
//! `v = (i + 0.5)·H_ref/Hw − 0.5` (its centre); a warp value `(x, y)` is the source pixel
//! `u = (x + 1)/2·W_src − 0.5`, `v = (y + 1)/2·H_src − 0.5`.
//!
//! # Sparse correspondences ([`sample_correspondences`])
//! Cells with overlap > `certainty_threshold` whose reference pixel the mask keeps
//! (truncated coordinates, [`crate::features::mask_keeps_truncated`]); when more than
//! `max_correspondences` remain, a 32×32 grid of bins over the reference image shares the
//! budget: ⌊budget/occupied⌋ each, one more for the first `budget mod occupied` occupied bins
//! in flat order, and each bin keeps its best-overlap cells.

use std::path::Path;

use nalgebra::Point2;

use super::resize::resize_planar;
use super::runtime::{Input, Model, OnnxError, describe_inputs, environment};
use crate::config::{Config, Device};
use crate::features::{
    CameraPair, FeatureError, FrameMatches, Match, PairMatches, mask_keeps_truncated,
};
use crate::geom::RefractiveCamera;
use crate::imgproc::{ImageSize, MaskImage, RgbImage};

/// Bins per side of the spatially balanced sampling.
pub const SAMPLING_BINS: usize = 32;

/// One camera of a frame as RoMa sees it.
#[derive(Clone, Copy, Debug)]
pub struct RomaView<'a> {
    /// Camera name.
    pub name: &'a str,
    /// Undistorted colour image.
    pub rgb: &'a RgbImage,
    /// The camera in the undistorted geometry.
    pub camera: &'a RefractiveCamera,
    /// Region of interest (non-zero = use).
    pub mask: Option<&'a MaskImage>,
}

/// A RoMa warp from image A to image B.
///
/// Invariant: `coords.len() == overlap.len() == width × height`.
#[derive(Clone, Debug, PartialEq)]
pub struct Warp {
    width: usize,
    height: usize,
    coords: Vec<[f32; 2]>,
    overlap: Vec<f32>,
}

impl Warp {
    /// A warp of `width × height` cells (row-major) from normalised coordinates in B and
    /// overlaps; `None` when the lengths disagree.
    pub fn new(
        width: usize,
        height: usize,
        coords: Vec<[f32; 2]>,
        overlap: Vec<f32>,
    ) -> Option<Self> {
        (coords.len() == width * height && overlap.len() == width * height).then_some(Self {
            width,
            height,
            coords,
            overlap,
        })
    }

    /// Cells per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows of cells.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Overlap (certainty) per cell, row-major.
    pub fn overlap(&self) -> &[f32] {
        &self.overlap
    }

    /// The reference (A) pixel of cell `k` (row-major) in an image of `size`.
    pub fn ref_pixel(&self, k: usize, size: ImageSize) -> Point2<f64> {
        let (i, j) = (k / self.width, k % self.width);
        Point2::new(
            (j as f64 + 0.5) * size.width as f64 / self.width as f64 - 0.5,
            (i as f64 + 0.5) * size.height as f64 / self.height as f64 - 0.5,
        )
    }

    /// The source (B) pixel of cell `k` in an image of `size`.
    pub fn src_pixel(&self, k: usize, size: ImageSize) -> Point2<f64> {
        let [x, y] = self.coords[k];
        Point2::new(
            (x as f64 + 1.0) / 2.0 * size.width as f64 - 0.5,
            (y as f64 + 1.0) / 2.0 * size.height as f64 - 0.5,
        )
    }
}

/// Settings of RoMa matching.
#[derive(Clone, Debug, PartialEq)]
pub struct RomaOptions {
    /// Cells with overlap at or below this are not correspondences.
    pub certainty_threshold: f32,
    /// At most this many correspondences per pair (sparse use).
    pub max_correspondences: usize,
    /// ONNX Runtime intra-op threads (`None`: every core).
    pub threads: Option<usize>,
    /// Where the models run (`runtime.device`).
    pub device: Device,
    /// Input size for a model whose height and width are dynamic
    /// (`dense_matching.roma_anchor_width/height`, AquaMVS's RoMa resolution).
    pub anchor: ImageSize,
}

impl Default for RomaOptions {
    fn default() -> Self {
        Self {
            certainty_threshold: 0.5,
            max_correspondences: 100_000,
            threads: None,
            device: Device::Cpu,
            anchor: ImageSize::new(512, 512),
        }
    }
}

impl RomaOptions {
    /// The options of a config (`dense_matching`, `runtime.threads`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            certainty_threshold: config.dense_matching.certainty_threshold as f32,
            max_correspondences: config.dense_matching.max_correspondences,
            threads: config.runtime.threads,
            device: config.runtime.device,
            anchor: ImageSize::new(
                config.dense_matching.roma_anchor_width,
                config.dense_matching.roma_anchor_height,
            ),
        }
    }
}

/// The RoMa v2 model (see the module docs).
#[derive(Debug)]
pub struct RomaMatcher {
    model: Model,
    /// Model input size.
    input: ImageSize,
    opts: RomaOptions,
}

const FIELD: &str = "dense_matching.roma_model";
const KIND: &str = "RoMa v2";

fn backend(what: impl Into<String>, e: OnnxError) -> FeatureError {
    FeatureError::Backend { matcher: "roma", what: what.into(), message: e.to_string() }
}

impl RomaMatcher {
    /// Loads the runtime (see [`super::runtime`]) and the model named by the config.
    pub fn from_config(config: &Config) -> Result<Self, OnnxError> {
        let path = config.dense_matching.roma_model.as_deref().ok_or_else(|| OnnxError::Model {
            field: FIELD,
            path: Default::default(),
            message: "is not set; `matcher_type: roma` needs the RoMa v2 ONNX model".into(),
        })?;
        let env = environment(config.runtime.onnxruntime_library.as_deref())?;
        Self::load(&env, path, RomaOptions::from_config(config))
    }

    /// Loads the model at `path` and checks its signature.
    pub fn load(
        env: &ort::environment::Environment,
        path: &Path,
        opts: RomaOptions,
    ) -> Result<Self, OnnxError> {
        let model = Model::load(env, path, FIELD, opts.threads, opts.device)?;
        if model.input_names() != ["img_A", "img_B"] {
            return Err(model.signature_error(
                KIND,
                format!(
                    "expected inputs `img_A`, `img_B` [B,3,H,W], found {}",
                    describe_inputs(&model.inputs)
                ),
            ));
        }
        model.require_outputs(KIND, &["warp_AB", "overlap_AB"])?;
        let shape = &model.inputs[0].2;
        let input = match shape.as_slice() {
            [_, 3, h, w] if *h > 0 && *w > 0 => {
                let fixed = ImageSize::new(*w as usize, *h as usize);
                if fixed != opts.anchor {
                    tracing::info!(
                        "the RoMa model {} was exported for {}×{} input, so it runs at that \
                         size; dense_matching.roma_anchor_width/height ({}×{}) apply only to a \
                         model with dynamic height and width",
                        path.display(),
                        fixed.width,
                        fixed.height,
                        opts.anchor.width,
                        opts.anchor.height
                    );
                }
                fixed
            }
            // Dynamic height and width: AquaMVS's anchor resolution.
            [_, 3, h, w] if *h <= 0 && *w <= 0 => opts.anchor,
            _ => {
                return Err(model.signature_error(
                    KIND,
                    format!(
                        "`img_A` has shape {shape:?}; expected [B,3,H,W] with H and W both \
                         fixed or both dynamic"
                    ),
                ));
            }
        };
        Ok(Self { model, input, opts })
    }

    /// The model's input size.
    pub fn input_size(&self) -> ImageSize {
        self.input
    }

    /// The options.
    pub fn options(&self) -> &RomaOptions {
        &self.opts
    }

    fn prepare(&self, rgb: &RgbImage) -> Vec<f32> {
        let (w, h) = (rgb.width(), rgb.height());
        let mut planar = vec![0.0f32; 3 * w * h];
        for (k, px) in rgb.as_slice().chunks_exact(3).enumerate() {
            for c in 0..3 {
                planar[c * w * h + k] = px[c] as f32 / 255.0;
            }
        }
        resize_planar(&planar, 3, (w, h), (self.input.width, self.input.height))
    }

    /// The warp from `a` to `b`.
    pub fn warp(&self, a: &RgbImage, b: &RgbImage) -> Result<Warp, OnnxError> {
        let (h, w) = (self.input.height as i64, self.input.width as i64);
        let shape = vec![1, 3, h, w];
        let out = self.model.run(
            vec![
                Input { name: "img_A", shape: shape.clone(), data: self.prepare(a) },
                Input { name: "img_B", shape, data: self.prepare(b) },
            ],
            &["warp_AB", "overlap_AB"],
        )?;
        let coords = out[0].f32s(&self.model, "warp_AB", 4)?;
        let (hw, ww) = (out[0].dim(1), out[0].dim(2));
        let overlap_ok = match out[1].shape.as_slice() {
            [1, oh, ow] | [1, oh, ow, 1] => *oh as usize == hw && *ow as usize == ww,
            _ => false,
        };
        if out[0].dim(0) != 1 || out[0].dim(3) != 2 || !overlap_ok {
            return Err(self.model.inference_error(format!(
                "warp_AB {:?} and overlap_AB {:?} do not fit [1,Hw,Ww,2] and [1,Hw,Ww]",
                out[0].shape, out[1].shape
            )));
        }
        let overlap = out[1].f32s(&self.model, "overlap_AB", out[1].shape.len())?;
        let coords = coords.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
        Warp::new(ww, hw, coords, overlap)
            .ok_or_else(|| self.model.inference_error("warp and overlap sizes disagree"))
    }

    /// Sparse correspondences of every canonical pair (side `a` is RoMa's A).
    pub fn match_pairs(
        &self,
        views: &[RomaView<'_>],
        pairs: &[CameraPair],
    ) -> Result<FrameMatches, FeatureError> {
        let mut out = FrameMatches::default();
        for pair in pairs {
            let (a, b) = crate::features::views_of_pair(views, pair, |v| v.name)?;
            let _span = tracing::debug_span!("roma_pair", a = %pair.a, b = %pair.b).entered();
            let warp = self
                .warp(a.rgb, b.rgb)
                .map_err(|e| backend(format!("pair ({}, {})", pair.a, pair.b), e))?;
            let matches =
                sample_correspondences(&warp, a.rgb.size(), b.rgb.size(), a.mask, &self.opts);
            out.pairs.push(PairMatches { pair: pair.clone(), matches });
        }
        Ok(out)
    }
}

/// Correspondences of a warp (see the module docs): certain cells, masked, spatially
/// balanced down to `max_correspondences`.
pub fn sample_correspondences(
    warp: &Warp,
    ref_size: ImageSize,
    src_size: ImageSize,
    mask: Option<&MaskImage>,
    opts: &RomaOptions,
) -> Vec<Match> {
    let mut cells: Vec<(usize, Point2<f64>)> = (0..warp.overlap.len())
        .filter(|&k| warp.overlap[k] > opts.certainty_threshold)
        .map(|k| (k, warp.ref_pixel(k, ref_size)))
        .filter(|(_, p)| mask.is_none_or(|m| mask_keeps_truncated(m, p)))
        .collect();
    if cells.len() > opts.max_correspondences {
        cells = balanced(cells, ref_size, warp.overlap(), opts.max_correspondences);
    }
    cells
        .into_iter()
        .map(|(k, a)| Match {
            a,
            b: warp.src_pixel(k, src_size),
            keypoint_a: None,
            keypoint_b: None,
            score: warp.overlap[k],
        })
        .collect()
}

/// The spatially balanced subset (§4.4): bins by reference pixel, budget shared, best overlap
/// per bin. Output in bin order, best first within a bin.
fn balanced(
    cells: Vec<(usize, Point2<f64>)>,
    size: ImageSize,
    overlap: &[f32],
    budget: usize,
) -> Vec<(usize, Point2<f64>)> {
    let n = SAMPLING_BINS;
    let bin_of = |v: f64, extent: usize| {
        ((v / extent as f64 * n as f64).floor().max(0.0) as usize).min(n - 1)
    };
    let mut bins: Vec<Vec<(usize, Point2<f64>)>> = vec![Vec::new(); n * n];
    for c in cells {
        bins[bin_of(c.1.y, size.height) * n + bin_of(c.1.x, size.width)].push(c);
    }
    let occupied = bins.iter().filter(|b| !b.is_empty()).count().max(1);
    let (base, mut extra) = (budget / occupied, budget % occupied);
    let mut out = Vec::with_capacity(budget);
    for mut bin in bins.into_iter().filter(|b| !b.is_empty()) {
        let quota = base + usize::from(extra > 0);
        extra = extra.saturating_sub(1);
        // Stable: equal overlaps keep cell order.
        bin.sort_by(|x, y| overlap[y.0].total_cmp(&overlap[x.0]));
        out.extend(bin.into_iter().take(quota));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_conventions_use_cell_centres_and_pixel_centres() {
        let warp = Warp::new(
            4,
            2,
            vec![
                [-1.0, -1.0],
                [1.0, 1.0],
                [0.0, 0.0],
                [0.5, -0.5],
                [0.0, 0.0],
                [0.0, 0.0],
                [0.0, 0.0],
                [0.0, 0.0],
            ],
            vec![1.0; 8],
        )
        .unwrap();
        let size = ImageSize::new(8, 4);
        // Cell (0, 0) covers pixels 0..2 × 0..2: its centre is pixel (0.5, 0.5).
        assert_eq!(warp.ref_pixel(0, size), Point2::new(0.5, 0.5));
        assert_eq!(warp.ref_pixel(5, size), Point2::new(2.5, 2.5));
        // −1 and 1 are the outer edges: pixels −0.5 and W − 0.5.
        assert_eq!(warp.src_pixel(0, size), Point2::new(-0.5, -0.5));
        assert_eq!(warp.src_pixel(1, size), Point2::new(7.5, 3.5));
        assert_eq!(warp.src_pixel(2, size), Point2::new(3.5, 1.5));
        assert_eq!(warp.src_pixel(3, size), Point2::new(5.5, 0.5));
        assert!(Warp::new(2, 2, vec![[0.0; 2]; 3], vec![0.0; 4]).is_none());
    }

    #[test]
    fn certainty_threshold_and_mask_select_cells() {
        // 5×5 warp, overlap 0.8 in the top-left 2×2 and 0.3 elsewhere (§10.6).
        let overlap: Vec<f32> =
            (0..25).map(|k| if k % 5 < 2 && k / 5 < 2 { 0.8 } else { 0.3 }).collect();
        let warp = Warp::new(5, 5, vec![[0.0, 0.0]; 25], overlap).unwrap();
        let size = ImageSize::new(50, 50);
        let opts = RomaOptions::default();
        let m = sample_correspondences(&warp, size, size, None, &opts);
        assert_eq!(m.len(), 4);
        assert!(m.iter().all(|m| m.score == 0.8 && m.keypoint_a.is_none()));
        assert_eq!(m[1].a, Point2::new(14.5, 4.5));
        // The mask keeps column < 10 only: cells of column 0.
        let mask = MaskImage::from_fn(size, |x, _| [u8::from(x < 10)]);
        let m = sample_correspondences(&warp, size, size, Some(&mask), &opts);
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|m| m.a.x < 10.0));
    }

    #[test]
    fn balanced_sampling_shares_the_budget_between_bins() {
        // 64×64 cells over a 64×64 image: 2×2 cells per bin, overlap rising with the index.
        let n = 64 * 64;
        let overlap: Vec<f32> = (0..n).map(|k| 0.5 + 0.5 * k as f32 / n as f32).collect();
        let warp = Warp::new(64, 64, vec![[0.0, 0.0]; n], overlap).unwrap();
        let size = ImageSize::new(64, 64);
        let opts = RomaOptions {
            certainty_threshold: 0.0,
            max_correspondences: 1024 + 10,
            ..RomaOptions::default()
        };
        let m = sample_correspondences(&warp, size, size, None, &opts);
        assert_eq!(m.len(), 1034);
        // The first 10 bins give 2 cells, the others 1: per bin the best (highest index).
        let bin = |p: &Point2<f64>| (p.y as usize / 2) * 32 + p.x as usize / 2;
        let mut per_bin = vec![0; 1024];
        m.iter().for_each(|m| per_bin[bin(&m.a)] += 1);
        assert!(per_bin[..10].iter().all(|&c| c == 2));
        assert!(per_bin[10..].iter().all(|&c| c == 1));
        // Bin 10 (columns 20, 21 of rows 0, 1) keeps its best cell first: row 1, column 21.
        let in_bin_10: Vec<_> = m.iter().filter(|m| bin(&m.a) == 10).collect();
        assert_eq!(in_bin_10[0].a, Point2::new(21.0, 1.0));
        // Under the budget nothing is dropped.
        let all = RomaOptions {
            certainty_threshold: 0.0,
            max_correspondences: n,
            ..RomaOptions::default()
        };
        assert_eq!(sample_correspondences(&warp, size, size, None, &all).len(), n);
    }
}
