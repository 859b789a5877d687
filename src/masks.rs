//! Region-of-interest masks: which pixels of each camera may be used.
//!
//! A mask is `{mask_dir}/{camera}.png`, drawn on the undistorted image of that camera (the
//! images `aquamvs export-refs` writes), so it has the calibration's `image_size`. Any
//! non-zero value means "use this pixel" (colour masks are read as luma). Masks filter
//! keypoints ([`keeps_keypoint`]), RoMa correspondences ([`keeps_correspondence`]) and depth
//! maps ([`crate::dense::DepthMap::apply_mask`]); reference-numerics §8.
//!
//! Differences from AquaMVS, on purpose: a mask of the wrong size is an error naming the file
//! and both sizes (AquaMVS logged a warning and silently used no mask, so a run could finish
//! unmasked); a configured `mask_dir` that does not exist is an error (AquaMVS warned); an
//! unreadable mask is an error (AquaMVS warned). A camera without a mask file is still only a
//! warning: masking some cameras and not others is legitimate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::imgproc::{ImageSize, MaskImage};
use crate::io::images::{ImageIoError, read_mask};

/// Masks that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// The configured mask folder does not exist.
    #[error("mask folder not found: {} (check `mask_dir` in the config)", path.display())]
    MissingDir {
        /// The folder.
        path: PathBuf,
    },
    /// A mask file exists but cannot be read.
    #[error("mask of camera `{camera}`: {source}")]
    Read {
        /// Camera name.
        camera: String,
        /// The reading error (it names the file).
        #[source]
        source: Box<ImageIoError>,
    },
    /// A mask does not have its camera's image size.
    #[error(
        "mask {} is {actual} but camera `{camera}` is {expected}; draw masks on the undistorted \
         images that `aquamvs export-refs` writes (they have the calibration's image size)",
        path.display()
    )]
    Size {
        /// The mask file.
        path: PathBuf,
        /// Camera name.
        camera: String,
        /// The camera's (undistorted) image size.
        expected: ImageSize,
        /// The mask's size.
        actual: ImageSize,
    },
}

/// The mask file of `camera` in `mask_dir`.
pub fn mask_path(mask_dir: &Path, camera: &str) -> PathBuf {
    mask_dir.join(format!("{camera}.png"))
}

/// Loads the masks of `cameras` (name, expected image size) from `mask_dir`.
///
/// A camera without `{camera}.png` gets no mask (a warning is logged); a mask that exists must
/// be readable and of the expected size. A mask that excludes every pixel is kept, with a
/// warning (that camera will contribute nothing).
pub fn load_masks(
    mask_dir: &Path,
    cameras: &[(&str, ImageSize)],
) -> Result<BTreeMap<String, MaskImage>, MaskError> {
    if !mask_dir.is_dir() {
        return Err(MaskError::MissingDir { path: mask_dir.to_path_buf() });
    }
    let mut masks = BTreeMap::new();
    for &(camera, expected) in cameras {
        let path = mask_path(mask_dir, camera);
        if !path.is_file() {
            tracing::warn!(
                "camera `{camera}` has no mask ({}); all its pixels are used",
                path.display()
            );
            continue;
        }
        let mask = read_mask(&path).map_err(|source| MaskError::Read {
            camera: camera.into(),
            source: Box::new(source),
        })?;
        if mask.size() != expected {
            return Err(MaskError::Size {
                path,
                camera: camera.into(),
                expected,
                actual: mask.size(),
            });
        }
        if mask.as_slice().iter().all(|&v| v == 0) {
            tracing::warn!("mask {} excludes every pixel of camera `{camera}`", path.display());
        }
        masks.insert(camera.to_owned(), mask);
    }
    tracing::info!("loaded {} mask(s) from {}", masks.len(), mask_dir.display());
    Ok(masks)
}

/// True when the keypoint at `(u, v)` (column, row; pixel centres at integers) lies in the
/// mask: the pixel at the rounded position (halves to even, as numpy), clamped into the
/// image, is non-zero. Non-finite coordinates are never kept.
pub fn keeps_keypoint(mask: &MaskImage, u: f64, v: f64) -> bool {
    sample(mask, u.round_ties_even(), v.round_ties_even())
}

/// True when the reference point `(u, v)` of a RoMa correspondence lies in the mask: as
/// [`keeps_keypoint`] but the position is truncated toward zero, not rounded (the reference
/// converts with `.long()` there). Non-finite coordinates are never kept.
pub fn keeps_correspondence(mask: &MaskImage, u: f64, v: f64) -> bool {
    sample(mask, u.trunc(), v.trunc())
}

/// The mask value at integral `(x, y)` clamped into the image, as "non-zero".
fn sample(mask: &MaskImage, x: f64, y: f64) -> bool {
    if !(x.is_finite() && y.is_finite()) || mask.size().is_empty() {
        return false;
    }
    // Clamping in f64 first keeps huge values from saturating oddly on the cast.
    let col = x.clamp(0.0, (mask.width() - 1) as f64) as usize;
    let row = y.clamp(0.0, (mask.height() - 1) as f64) as usize;
    mask.get(col, row)[0] > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::images::write_png_gray8;

    /// 4 × 3 with only column 2 valid.
    fn column_mask() -> MaskImage {
        MaskImage::from_fn(ImageSize::new(4, 3), |x, _| [if x == 2 { 255 } else { 0 }])
    }

    #[test]
    fn keypoints_round_half_to_even_and_clamp() {
        let mask = column_mask();
        assert!(keeps_keypoint(&mask, 2.0, 1.0));
        assert!(keeps_keypoint(&mask, 1.6, 0.0));
        assert!(keeps_keypoint(&mask, 2.5, 0.0)); // 2.5 → 2 (half to even)
        assert!(keeps_keypoint(&mask, 1.5, 0.0)); // 1.5 → 2 (half to even)
        assert!(!keeps_keypoint(&mask, 3.5, 0.0)); // → 4, clamped to 3
        assert!(!keeps_keypoint(&mask, 0.5, 0.0)); // → 0
        assert!(keeps_keypoint(&mask, 2.0, -7.0)); // row clamped to 0
        assert!(keeps_keypoint(&mask, 2.0, 99.0)); // row clamped to 2
        assert!(!keeps_keypoint(&mask, f64::NAN, 1.0));
        assert!(!keeps_keypoint(&mask, 2.0, f64::INFINITY));
    }

    #[test]
    fn correspondences_truncate() {
        let mask = column_mask();
        assert!(keeps_correspondence(&mask, 2.99, 1.0));
        assert!(!keeps_correspondence(&mask, 1.99, 1.0)); // rounding would keep it
        assert!(keeps_keypoint(&mask, 1.99, 1.0));
        assert!(!keeps_correspondence(&mask, -0.9, 1.0)); // → 0 (toward zero)
        assert!(!keeps_correspondence(&mask, 1e300, 1.0)); // clamped to column 3
    }

    #[test]
    fn loading_checks_sizes_and_tolerates_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let size = ImageSize::new(4, 3);
        write_png_gray8(&dir.path().join("a.png"), &column_mask()).unwrap();
        let cameras = [("a", size), ("b", size)];
        let masks = load_masks(dir.path(), &cameras).unwrap();
        assert_eq!(masks.keys().collect::<Vec<_>>(), ["a"]);
        assert!(masks["a"] == column_mask());

        write_png_gray8(&dir.path().join("b.png"), &MaskImage::from_elem(ImageSize::new(5, 3), 1))
            .unwrap();
        let err = load_masks(dir.path(), &cameras).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, MaskError::Size { .. }));
        assert!(text.contains("b.png is 5×3 but camera `b` is 4×3"), "{text}");

        std::fs::write(dir.path().join("b.png"), b"not a png").unwrap();
        let err = load_masks(dir.path(), &cameras).unwrap_err().to_string();
        assert!(err.contains("camera `b`") && err.contains("b.png"), "{err}");

        let err = load_masks(&dir.path().join("nope"), &cameras).unwrap_err().to_string();
        assert!(err.contains("mask folder not found") && err.contains("nope"), "{err}");
    }
}
