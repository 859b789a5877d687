//! The features files of a frame (`runtime.save_features`), as AquaMVS writes them:
//! `features/CAM.npz` per camera with keypoints (`keypoints` (N, 2) float64 undistorted
//! pixels, `scores` (N,) float32, `descriptors` (N, D) float32) and `features/A_B.npz` per
//! canonical pair (`pixels_a`, `pixels_b` (M, 2) float64, `scores` (M,) float32,
//! `keypoint_a`, `keypoint_b` (M,) int32 with −1 where the matcher has no keypoint).

use crate::io::npz::{ArrayData, ArrayRef, NpzError, write_npz};
use crate::layout::{FrameLayout, LayoutError};

use super::FrameMatches;

/// Why a features file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveFeaturesError {
    /// A camera name cannot be a file name.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The file could not be encoded or written.
    #[error(transparent)]
    Npz(#[from] NpzError),
}

/// Writes the features files of `matches` into the frame folder `dir`; returns their paths
/// relative to it, cameras first (sorted), then pairs in matching order.
pub fn write_features(
    matches: &FrameMatches,
    dir: &FrameLayout,
) -> Result<Vec<String>, SaveFeaturesError> {
    let mut written = Vec::new();
    for (name, kp) in &matches.keypoints {
        let xy: Vec<f64> = kp.positions().iter().flat_map(|p| [p.x, p.y]).collect();
        let n = kp.len();
        let file = dir.features(name)?;
        write_npz(
            &file.path,
            &[
                ("keypoints", ArrayRef::new(&[n, 2], ArrayData::F64(&xy))?),
                ("scores", ArrayRef::new(&[n], ArrayData::F32(kp.scores()))?),
                (
                    "descriptors",
                    ArrayRef::new(&[n, kp.descriptor_len()], ArrayData::F32(kp.descriptors()))?,
                ),
            ],
        )?;
        written.push(file.rel);
    }
    for pair in &matches.pairs {
        let m = pair.matches.len();
        let a: Vec<f64> = pair.matches.iter().flat_map(|x| [x.a.x, x.a.y]).collect();
        let b: Vec<f64> = pair.matches.iter().flat_map(|x| [x.b.x, x.b.y]).collect();
        let scores: Vec<f32> = pair.matches.iter().map(|x| x.score).collect();
        let index = |k: Option<u32>| k.map_or(-1, |k| i32::try_from(k).unwrap_or(-1));
        let ka: Vec<i32> = pair.matches.iter().map(|x| index(x.keypoint_a)).collect();
        let kb: Vec<i32> = pair.matches.iter().map(|x| index(x.keypoint_b)).collect();
        let file = dir.feature_pair(&pair.pair.a, &pair.pair.b)?;
        write_npz(
            &file.path,
            &[
                ("pixels_a", ArrayRef::new(&[m, 2], ArrayData::F64(&a))?),
                ("pixels_b", ArrayRef::new(&[m, 2], ArrayData::F64(&b))?),
                ("scores", ArrayRef::new(&[m], ArrayData::F32(&scores))?),
                ("keypoint_a", ArrayRef::new(&[m], ArrayData::I32(&ka))?),
                ("keypoint_b", ArrayRef::new(&[m], ArrayData::I32(&kb))?),
            ],
        )?;
        written.push(file.rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nalgebra::Point2;

    use super::*;
    use crate::features::pairs::CameraPair;
    use crate::features::{Keypoints, Match, PairMatches};
    use crate::io::npz::{ArrayBuf, read_npz};
    use crate::layout::OutputLayout;

    #[test]
    fn writes_the_reference_arrays() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OutputLayout::new(tmp.path()).frame(2);
        let kp = Keypoints::new(
            vec![Point2::new(1.5, 2.0), Point2::new(3.0, 4.25)],
            vec![0.5, 0.25],
            2,
            vec![1.0, 2.0, 3.0, 4.0],
        )
        .expect("consistent keypoints");
        let matches = FrameMatches {
            keypoints: BTreeMap::from([("cam0".to_owned(), kp)]),
            pairs: vec![PairMatches {
                pair: CameraPair { a: "cam0".into(), b: "cam1".into() },
                matches: vec![Match {
                    a: Point2::new(1.5, 2.0),
                    b: Point2::new(7.0, 8.0),
                    keypoint_a: Some(0),
                    keypoint_b: None,
                    score: 0.75,
                }],
            }],
        };
        std::fs::create_dir_all(dir.dir()).expect("frame folder");
        let written = write_features(&matches, &dir).expect("written");
        assert_eq!(written, vec!["features/cam0.npz", "features/cam0_cam1.npz"]);
        let cam = read_npz(&dir.dir().join("features/cam0.npz")).expect("readable");
        assert_eq!(cam["keypoints"].shape(), &[2, 2]);
        assert_eq!(cam["keypoints"].data(), &ArrayBuf::F64(vec![1.5, 2.0, 3.0, 4.25]));
        assert_eq!(cam["descriptors"].shape(), &[2, 2]);
        assert_eq!(cam["scores"].data(), &ArrayBuf::F32(vec![0.5, 0.25]));
        let pair = read_npz(&dir.dir().join("features/cam0_cam1.npz")).expect("readable");
        assert_eq!(pair["pixels_b"].data(), &ArrayBuf::F64(vec![7.0, 8.0]));
        assert_eq!(pair["keypoint_a"].data(), &ArrayBuf::I32(vec![0]));
        assert_eq!(pair["keypoint_b"].data(), &ArrayBuf::I32(vec![-1]));
    }

    #[test]
    fn refuses_a_camera_name_that_is_not_a_file_name() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = OutputLayout::new(tmp.path()).frame(0);
        let kp = Keypoints::new(vec![], vec![], 1, vec![]).expect("empty keypoints");
        let matches = FrameMatches {
            keypoints: BTreeMap::from([("../evil".to_owned(), kp)]),
            pairs: Vec::new(),
        };
        let err = write_features(&matches, &dir).expect_err("refused");
        assert!(matches!(err, SaveFeaturesError::Layout(_)), "{err}");
        assert!(!tmp.path().join("evil.npz").exists());
    }
}
