//! The pictures of a run, seen from the pipeline: what a finished frame hands to whoever draws
//! ([`FrameProducts`]) and the hook it is handed through ([`Pictures`]).
//!
//! Architecture invariant: the pipeline never depends on `viz`. Drawing is a front-layer
//! concern plugged in here, as progress bars are through [`super::Observer`]: the CLI passes
//! `viz::output::Painter`, the library's own [`NoPictures`] draws nothing. The frame's
//! pictures are drawn from the values the stages produced, not from their files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::calib::Rig;
use crate::cloud::PointCloud;
use crate::config::VizStage;
use crate::dense::DepthMap;
use crate::features::FrameMatches;
use crate::imgproc::RgbImage;
use crate::layout::FrameLayout;
use crate::mesh::TriangleMesh;

/// A picture that could not be drawn or written: a warning, never a failed frame.
pub type PictureError = Box<dyn std::error::Error + Send + Sync>;

/// Everything one finished frame can be drawn from.
#[derive(Clone, Copy, Debug)]
pub struct FrameProducts<'a> {
    /// Undistorted colour images by camera name.
    pub images: &'a BTreeMap<&'a str, &'a RgbImage>,
    /// The sparse matches, when the frame matched features.
    pub matches: Option<&'a FrameMatches>,
    /// Depth maps by camera name.
    pub depth_maps: &'a [(String, DepthMap)],
    /// The fused (or sparse) cloud; may be empty.
    pub cloud: &'a PointCloud,
    /// The mesh, when one was built.
    pub mesh: Option<&'a TriangleMesh>,
    /// The rig.
    pub rig: &'a Rig,
}

/// Draws a run's pictures. Implemented by the front layer (`viz::output::Painter`).
pub trait Pictures: Sync {
    /// Draws the pictures of one frame that `stages` asks for into its folder; returns the
    /// files written, in a fixed order.
    fn draw_frame(
        &self,
        frame: &FrameLayout,
        stages: &[VizStage],
        products: &FrameProducts<'_>,
    ) -> Result<Vec<PathBuf>, PictureError>;

    /// Draws the summary pictures of a multi-frame run into `output_dir`; returns the files
    /// written.
    fn draw_run(&self, output_dir: &Path) -> Result<Vec<PathBuf>, PictureError>;
}

/// Draws nothing (library use without pictures, tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPictures;

impl Pictures for NoPictures {
    fn draw_frame(
        &self,
        _frame: &FrameLayout,
        _stages: &[VizStage],
        _products: &FrameProducts<'_>,
    ) -> Result<Vec<PathBuf>, PictureError> {
        Ok(Vec::new())
    }

    fn draw_run(&self, _output_dir: &Path) -> Result<Vec<PathBuf>, PictureError> {
        Ok(Vec::new())
    }
}
