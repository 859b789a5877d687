//! Dense depth: the parts of the refractive plane sweep that do not depend on the camera model,
//! and the [`DepthMap`] it produces.
//!
//! For one reference view the sweep loops over depth hypotheses `k` (see
//! [`depth_hypotheses`]). At each it warps every source image onto the reference pixels through
//! the refractive model (NaN where the sample is invalid), scores each warped source against
//! the reference with a [`CostKernel`], combines the per-source costs with
//! [`aggregate_costs`] ([`StripScorer`] does both in reusable buffers) and streams the result
//! into a [`DepthAccumulator`]; after the last hypothesis [`DepthAccumulator::finish`] yields
//! the depth map. No (H × W × D) cost volume is ever held (ARCHITECTURE decision 2).
//!
//! The cache-friendly order is strip-major: split the accumulator into row strips
//! ([`DepthAccumulator::strips_mut`]), give each worker a strip, and let it run all hypotheses
//! on that strip, warping only the rows [`CostKernel::input_rows`] asks for.
//!
//! ```
//! use aquamvs::dense::{
//!     Aggregation, CostKernel, CostOptions, DepthAccumulator, RowBlock, StripScorer,
//!     depth_hypotheses,
//! };
//! use aquamvs::imgproc::{GrayImage, ImageSize};
//!
//! let size = ImageSize::new(48, 32);
//! let reference = GrayImage::from_fn(size, |x, y| [((x * 7 + y * 13) % 17) as f32 / 17.0]);
//! let hypotheses = depth_hypotheses(0.3, 0.9, 8)?;
//! let kernel = CostKernel::new(CostOptions::default(), size)?;
//! let mut accumulator = DepthAccumulator::new(size, hypotheses.len())?;
//! // One worker's loop; a real sweep runs the strips in parallel (rayon `par_iter_mut`).
//! for mut strip in accumulator.strips_mut(16) {
//!     let rows = strip.rows();
//!     let need = kernel.input_rows(rows.clone());
//!     let span = need.start * size.width..need.end * size.width;
//!     let reference_rows = RowBlock::new(&reference.as_slice()[span.clone()], size.width, need.start);
//!     let mut scorer = StripScorer::new(&kernel, rows.len(), 1);
//!     for (k, _depth) in hypotheses.values().iter().enumerate() {
//!         // The sweep would warp each source at this depth (rows `need` only). Here the one
//!         // source is the reference shifted by one column, except at hypothesis 3.
//!         let shift = usize::from(k != 3);
//!         let warped: Vec<f32> = need
//!             .clone()
//!             .flat_map(|y| (0..size.width).map(move |x| (x + shift, y)))
//!             .map(|(x, y)| if x < size.width { reference.get(x, y)[0] } else { f32::NAN })
//!             .collect();
//!         let sources = [RowBlock::new(&warped, size.width, need.start)];
//!         let costs = scorer.score(&kernel, Aggregation::Mean, reference_rows, &sources, rows.clone())?;
//!         strip.push(k, costs)?;
//!     }
//! }
//! let depth_map = accumulator.finish(&hypotheses)?;
//! // Interior pixels pick hypothesis 3, where the warp matches.
//! let d = depth_map.depth().get(24, 16)[0] as f64;
//! assert!((d - hypotheses.values()[3]).abs() <= 0.5 * hypotheses.step());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aggregate;
pub mod auto_range;
pub mod cost;
pub mod extract;
mod fused;
pub mod refine;
pub mod roma;
pub mod score;
pub mod slanted;
pub mod sweep;
pub mod warm;
pub mod warp;

use std::path::Path;

pub use aggregate::{AggregateError, Aggregation, MAX_SOURCES, aggregate_costs};
pub use cost::{
    CostError, CostFunction, CostKernel, CostOptions, CostScratch, CostWorkspace, NccVariant,
    RowBlock,
};
pub use extract::{
    AccumulatorRows, DepthAccumulator, DepthHypotheses, ExtractError, depth_hypotheses,
    extract_depth,
};
pub use score::StripScorer;

use crate::imgproc::{GrayImage, Image, ImageSize, MaskImage};
use crate::io::npz::{ArrayBuf, ArrayData, ArrayRef, NpzError, read_npz, write_npz};

/// A range of ray depths (metres along the refracted ray from the water surface): the one
/// interval type of the depth-range stage, whatever found it (the sparse cloud, the coarse
/// automatic sweep, the configuration).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RayDepthRange {
    /// Nearest depth.
    pub min: f64,
    /// Farthest depth.
    pub max: f64,
}

/// The depth hypotheses a depth map was swept over (ray depth, metres): a [`RayDepthRange`]
/// and the number of hypotheses, as stored with the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthRange {
    /// Nearest hypothesis.
    pub min: f64,
    /// Farthest hypothesis.
    pub max: f64,
    /// Number of hypotheses.
    pub n_depths: usize,
}

/// Per-pixel unit normals (world frame, x y z), NaN where unknown.
pub type NormalImage = Image<f32, 3>;

/// A per-view depth map: ray depth in metres (NaN = invalid) and a confidence in [0, 1]
/// (0 = invalid), with the depth range it was swept over when known and, after refinement
/// ([`refine`]), the surface normal of every pixel.
///
/// Invariant: depth, confidence and normal have the same size.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    depth: GrayImage,
    confidence: GrayImage,
    range: Option<DepthRange>,
    normal: Option<NormalImage>,
}

/// Errors of the dense pathway: depth maps and the sweep's building blocks.
#[derive(Debug, thiserror::Error)]
pub enum DenseError {
    /// Depth, confidence or mask sizes disagree.
    #[error("{what} is {actual}, expected {expected}")]
    SizeMismatch {
        /// Which image.
        what: &'static str,
        /// The depth map's size.
        expected: ImageSize,
        /// The other size.
        actual: ImageSize,
    },
    /// Reading or writing the `.npz` file failed, or it lacks an array.
    #[error(transparent)]
    Npz(#[from] NpzError),
    /// A matching-cost error.
    #[error(transparent)]
    Cost(#[from] CostError),
    /// An aggregation error.
    #[error(transparent)]
    Aggregate(#[from] AggregateError),
    /// A depth-extraction error.
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

/// Names of the arrays in a depth-map `.npz` (the first two are the reference's).
const DEPTH_KEY: &str = "depth";
const CONFIDENCE_KEY: &str = "confidence";
/// Our addition: `[min, max, n_depths]` as float64; readers that do not know it ignore it.
const RANGE_KEY: &str = "depth_range";
/// Our addition: unit normals, world frame, H × W × 3 float32 (NaN where unknown).
const NORMAL_KEY: &str = "normal";

impl DepthMap {
    /// A depth map from its parts; fails unless depth and confidence have the same size.
    pub fn new(
        depth: GrayImage,
        confidence: GrayImage,
        range: Option<DepthRange>,
    ) -> Result<Self, DenseError> {
        if depth.size() != confidence.size() {
            return Err(DenseError::SizeMismatch {
                what: "confidence",
                expected: depth.size(),
                actual: confidence.size(),
            });
        }
        Ok(Self { depth, confidence, range, normal: None })
    }

    /// The map with per-pixel normals; fails unless `normal` has the map's size.
    pub fn with_normal(mut self, normal: NormalImage) -> Result<Self, DenseError> {
        if normal.size() != self.size() {
            return Err(DenseError::SizeMismatch {
                what: "normal",
                expected: self.size(),
                actual: normal.size(),
            });
        }
        self.normal = Some(normal);
        Ok(self)
    }

    /// Unit surface normal per pixel (world frame; NaN where unknown), when the map has them
    /// (refined maps do; swept and reference maps do not).
    pub fn normal(&self) -> Option<&NormalImage> {
        self.normal.as_ref()
    }

    /// For callers that built both images with one size.
    pub(crate) fn from_valid_parts(
        depth: GrayImage,
        confidence: GrayImage,
        range: Option<DepthRange>,
    ) -> Self {
        debug_assert_eq!(depth.size(), confidence.size());
        Self { depth, confidence, range, normal: None }
    }

    /// The image size.
    pub fn size(&self) -> ImageSize {
        self.depth.size()
    }

    /// Ray depth per pixel, metres; NaN where invalid.
    pub fn depth(&self) -> &GrayImage {
        &self.depth
    }

    /// Confidence per pixel in [0, 1]; 0 where invalid.
    pub fn confidence(&self) -> &GrayImage {
        &self.confidence
    }

    /// The swept depth range, when known (maps read from reference files do not carry it).
    pub fn range(&self) -> Option<DepthRange> {
        self.range
    }

    /// Depth, confidence and range (the normals, if any, are dropped).
    pub fn into_parts(self) -> (GrayImage, GrayImage, Option<DepthRange>) {
        (self.depth, self.confidence, self.range)
    }

    /// Number of pixels with a finite depth.
    pub fn valid_count(&self) -> usize {
        self.depth.as_slice().iter().filter(|d| d.is_finite()).count()
    }

    /// Applies a region-of-interest mask: where `mask` is 0 the depth becomes NaN and the
    /// confidence 0 (any non-zero value keeps the pixel).
    pub fn apply_mask(&mut self, mask: &MaskImage) -> Result<(), DenseError> {
        if mask.size() != self.size() {
            return Err(DenseError::SizeMismatch {
                what: "mask",
                expected: self.size(),
                actual: mask.size(),
            });
        }
        let (depth, confidence) = (self.depth.as_mut_slice(), self.confidence.as_mut_slice());
        for ((d, c), &m) in depth.iter_mut().zip(confidence.iter_mut()).zip(mask.as_slice()) {
            if m == 0 {
                *d = f32::NAN;
                *c = 0.0;
            }
        }
        if let Some(normal) = &mut self.normal {
            for (n, &m) in normal.as_mut_slice().chunks_exact_mut(3).zip(mask.as_slice()) {
                if m == 0 {
                    n.fill(f32::NAN);
                }
            }
        }
        Ok(())
    }

    /// Writes the map as `.npz` (float32 `depth` and `confidence`, H × W, as the reference
    /// does; plus float64 `depth_range` when known and float32 `normal`, H × W × 3, when the
    /// map has normals), atomically.
    pub fn write_npz(&self, path: &Path) -> Result<(), DenseError> {
        let range = self.range.map(|r| [r.min, r.max, r.n_depths as f64]);
        let mut arrays = vec![
            (DEPTH_KEY, ArrayRef::image(&self.depth)),
            (CONFIDENCE_KEY, ArrayRef::image(&self.confidence)),
        ];
        if let Some(range) = &range {
            arrays.push((RANGE_KEY, ArrayRef::new(&[3], ArrayData::F64(range))?));
        }
        if let Some(normal) = &self.normal {
            let size = normal.size();
            let shape = [size.height, size.width, 3];
            arrays.push((NORMAL_KEY, ArrayRef::new(&shape, ArrayData::F32(normal.as_slice()))?));
        }
        write_npz(path, &arrays)?;
        Ok(())
    }

    /// Reads a map written by [`write_npz`](Self::write_npz) or by the reference system.
    pub fn read_npz(path: &Path) -> Result<Self, DenseError> {
        let mut arrays = read_npz(path)?;
        let mut take = |key: &str| {
            arrays.remove(key).ok_or_else(|| NpzError::InFile {
                path: path.to_path_buf(),
                source: Box::new(NpzError::MissingArray(key.to_owned())),
            })
        };
        let depth = take(DEPTH_KEY)?.into_f32_image()?;
        let confidence = take(CONFIDENCE_KEY)?.into_f32_image()?;
        let range = match take(RANGE_KEY).ok().map(|a| a.into_parts()) {
            Some((shape, ArrayBuf::F64(v))) if shape == [3] => {
                Some(DepthRange { min: v[0], max: v[1], n_depths: v[2] as usize })
            }
            _ => None,
        };
        let normal = arrays.remove(NORMAL_KEY);
        let map = Self::new(depth, confidence, range).map_err(|e| in_file(path, e))?;
        let Some(normal) = normal else { return Ok(map) };
        let size = map.size();
        match normal.into_parts() {
            (shape, ArrayBuf::F32(values)) if shape == [size.height, size.width, 3] => {
                let image = Image::new(size, values).map_err(|e| in_file(path, e))?;
                map.with_normal(image)
            }
            (shape, _) => Err(in_file(
                path,
                format!(
                    "array 'normal' must be float32 of shape [{}, {}, 3] (the depth map's \
                     height × width × 3), found shape {shape:?}; delete the file to recompute it",
                    size.height, size.width
                ),
            )),
        }
    }
}

/// An error about the depth-map file `path`.
fn in_file(path: &Path, e: impl std::fmt::Display) -> DenseError {
    DenseError::Npz(NpzError::Malformed {
        context: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::Image;

    fn sample() -> DepthMap {
        let size = ImageSize::new(4, 3);
        let depth = GrayImage::from_fn(size, |x, y| {
            [if x == 1 && y == 1 { f32::NAN } else { 0.5 + 0.01 * (x + 4 * y) as f32 }]
        });
        let confidence = GrayImage::from_fn(size, |x, y| [0.1 * (x + y) as f32]);
        DepthMap::new(depth, confidence, Some(DepthRange { min: 0.3, max: 0.9, n_depths: 64 }))
            .unwrap()
    }

    #[test]
    fn mask_invalidates_pixels() {
        let mut map = sample();
        let mask = Image::from_fn(map.size(), |x, _| [u8::from(x < 2) * 255]);
        map.apply_mask(&mask).unwrap();
        for y in 0..3 {
            for x in 2..4 {
                assert!(map.depth().get(x, y)[0].is_nan());
                assert_eq!(map.confidence().get(x, y)[0], 0.0);
            }
            assert!(map.depth().get(0, y)[0].is_finite());
        }
        assert_eq!(map.valid_count(), 5);
        let wrong = MaskImage::from_elem(ImageSize::new(3, 3), 1);
        assert!(matches!(map.apply_mask(&wrong), Err(DenseError::SizeMismatch { .. })));
    }

    #[test]
    fn npz_round_trip_is_bit_exact() {
        let map = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("depth_maps").join("cam0.npz");
        map.write_npz(&path).unwrap();
        let back = DepthMap::read_npz(&path).unwrap();
        let bits = |img: &GrayImage| img.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(back.depth()), bits(map.depth()));
        assert_eq!(bits(back.confidence()), bits(map.confidence()));
        assert_eq!(back.range(), map.range());
    }

    #[test]
    fn reference_files_without_range_read_and_missing_arrays_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.npz");
        let map = sample();
        write_npz(
            &path,
            &[
                ("depth", ArrayRef::image(map.depth())),
                ("confidence", ArrayRef::image(map.confidence())),
            ],
        )
        .unwrap();
        assert_eq!(DepthMap::read_npz(&path).unwrap().range(), None);
        write_npz(&path, &[("depth", ArrayRef::image(map.depth()))]).unwrap();
        let err = DepthMap::read_npz(&path).unwrap_err();
        assert!(err.to_string().contains("missing array 'confidence'"), "{err}");
        assert!(err.to_string().contains("ref.npz"), "{err}");
    }

    #[test]
    fn normals_round_trip_and_bad_normals_fail() {
        let size = ImageSize::new(4, 3);
        let normal = NormalImage::from_fn(size, |x, y| {
            if x == 1 && y == 1 { [f32::NAN; 3] } else { [0.6, 0.0, -0.8 + 0.01 * x as f32] }
        });
        let map = sample().with_normal(normal).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam0.npz");
        map.write_npz(&path).unwrap();
        let back = DepthMap::read_npz(&path).unwrap();
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(back.normal().unwrap().as_slice()), bits(map.normal().unwrap().as_slice()));
        // Masking invalidates normals too.
        let mut masked = back.clone();
        masked.apply_mask(&Image::from_fn(size, |x, _| [u8::from(x != 0)])).unwrap();
        assert!(masked.normal().unwrap().get(0, 2).iter().all(|v| v.is_nan()));
        // Maps without normals write no `normal` array and read back without one.
        sample().write_npz(&path).unwrap();
        assert!(!read_npz(&path).unwrap().contains_key("normal"));
        assert!(DepthMap::read_npz(&path).unwrap().normal().is_none());
        // A normal of the wrong shape is refused, naming the file and the array.
        let flat = vec![0.0f32; 12];
        write_npz(
            &path,
            &[
                ("depth", ArrayRef::image(map.depth())),
                ("confidence", ArrayRef::image(map.confidence())),
                ("normal", ArrayRef::f32_2d(3, 4, &flat).unwrap()),
            ],
        )
        .unwrap();
        let err = DepthMap::read_npz(&path).unwrap_err().to_string();
        assert!(err.contains("cam0.npz") && err.contains("'normal'"), "{err}");
        assert!(sample().with_normal(NormalImage::from_elem(ImageSize::new(2, 2), 0.0)).is_err());
    }

    #[test]
    fn sizes_must_agree() {
        let a = GrayImage::from_elem(ImageSize::new(2, 2), 0.0);
        let b = GrayImage::from_elem(ImageSize::new(2, 3), 0.0);
        assert!(DepthMap::new(a, b, None).is_err());
    }
}
