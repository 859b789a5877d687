//! The reconstruction pipeline: the frame loop, the stages of one frame, and the output layout.
//!
//! ```text
//! OUTPUT/config.yaml                 the config actually used (paths resolved)
//! OUTPUT/run.json                    version, fingerprint, per-frame status and stage timings
//! OUTPUT/run_shard_K_of_N.json       the same, for shard K of N (`--shard K/N`)
//! OUTPUT/summary/summary.json        all run reports merged (`aquamvs summarize`)
//! OUTPUT/summary/timeseries.csv      one row per frame: points, coverage, height, seconds
//! OUTPUT/frame_NNNNNN/frame.json                   written last: fingerprint, outputs, report
//! OUTPUT/frame_NNNNNN/sparse/sparse.ply            triangulated sparse points
//! OUTPUT/frame_NNNNNN/depth_maps/CAM.npz           ray depth + confidence (float32)
//! OUTPUT/frame_NNNNNN/consistency_maps/CAM.npz     agreeing cameras (int32; optional)
//! OUTPUT/frame_NNNNNN/point_cloud/fused.ply        fused cloud (before outlier removal)
//! OUTPUT/frame_NNNNNN/point_cloud/sparse.ply       sparse mode: the sparse cloud
//! OUTPUT/frame_NNNNNN/mesh/surface.ply             coloured surface mesh
//! OUTPUT/frame_NNNNNN/heightmap/height.{npz,tif}   height map on the run's grid (`runtime.heightmap`)
//! ```
//!
//! Architecture invariants: stages hand values to each other, never files (outputs are a side
//! effect); every file is written atomically; a failing frame is reported and the run goes on;
//! a frame folder is trusted only with a matching `frame.json` (see [`resume`]).

pub mod context;
pub mod frame;
pub mod heightmap;
pub mod learned;
pub mod pictures;
pub mod plan;
mod read_ahead;
pub mod report;
pub mod resume;
pub mod roma;
pub mod run;
pub(crate) mod stage;
pub mod summary;

pub use context::Context;
pub use frame::process_frame;
pub use pictures::{FrameProducts, NoPictures, PictureError, Pictures};
pub use report::{FrameOutcome, FrameReport, FrameStatus, RunReport, Shard};
pub use run::{RunOptions, reconstruct};

use std::path::PathBuf;

/// Receives progress from a run (the CLI draws progress bars with it). Every method has an
/// empty default.
pub trait Observer: Sync {
    /// The run will process `n` frames.
    fn frames_started(&self, _n: usize) {}
    /// Frame `index` begins.
    fn frame_started(&self, _index: usize) {}
    /// The plane sweep of a frame will run over `n` cameras.
    fn cameras_started(&self, _n: usize) {}
    /// One camera's plane sweep is done.
    fn camera_done(&self, _name: &str) {}
    /// Frame `index` ended (successfully or not).
    fn frame_finished(&self, _index: usize, _ok: bool) {}
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Why a run, or one frame of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The calibration is invalid.
    #[error(transparent)]
    Calibration(#[from] crate::calib::CalibError),
    /// A camera of the rig is unusable.
    #[error(transparent)]
    Rig(#[from] crate::calib::RigError),
    /// Masks could not be used.
    #[error(transparent)]
    Masks(#[from] crate::masks::MaskError),
    /// Inputs could not be opened or read.
    #[error(transparent)]
    Frames(#[from] crate::frames::FramesError),
    /// An image could not be read.
    #[error(transparent)]
    Image(#[from] crate::io::images::ImageIoError),
    /// A PLY file could not be written.
    #[error(transparent)]
    Ply(#[from] crate::io::ply::PlyError),
    /// An npz file could not be written.
    #[error(transparent)]
    Npz(#[from] crate::io::npz::NpzError),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] crate::io::atomic::WriteError),
    /// An output path or the output folder is unusable (camera name, foreign folder, lock).
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// Dense depth failed.
    #[error(transparent)]
    Dense(#[from] crate::dense::DenseError),
    /// The plane sweep failed.
    #[error(transparent)]
    Sweep(#[from] crate::dense::sweep::SweepError),
    /// The refinement of a camera's depth map failed.
    #[error("camera `{camera}`: {source}")]
    Refine {
        /// The ring camera.
        camera: String,
        /// Why.
        source: crate::dense::refine::RefineError,
    },
    /// Feature matching failed.
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    /// The features files could not be written.
    #[error(transparent)]
    SaveFeatures(#[from] crate::features::save::SaveFeaturesError),
    /// Triangulation failed.
    #[error(transparent)]
    Sparse(#[from] crate::sparse::SparseError),
    /// Fusion failed.
    #[error(transparent)]
    Fusion(#[from] crate::fusion::FusionError),
    /// Surface reconstruction failed.
    #[error(transparent)]
    Surface(#[from] crate::surface::SurfaceError),
    /// The learned matcher of `matcher_type` could not be set up.
    #[error("matcher_type `{matcher}`: {source}")]
    Learned {
        /// The matcher.
        matcher: crate::config::MatcherType,
        /// Why.
        #[source]
        source: Box<crate::features::onnx::OnnxError>,
    },
    /// The plan found problems (`aquamvs check` lists them all): the first, in full.
    #[error("{}", plan_message(first, *more, config))]
    Plan {
        /// The first problem (names the file, field or camera and what to do).
        first: String,
        /// How many more problems there are.
        more: usize,
        /// The config file.
        config: PathBuf,
    },
    /// The plan has no problem but its calibration or inputs are missing (not expected).
    #[error("the calibration or the inputs did not load")]
    PlanIncomplete,
    /// The frame selection is empty.
    #[error(
        "no frame selected: {available} frame(s) available, frame_start {start}, frame_stop \
         {stop:?}, step {step}"
    )]
    NoFrameSelected {
        /// Frames available in every camera.
        available: usize,
        /// `preprocessing.frame_start`.
        start: usize,
        /// `preprocessing.frame_stop`.
        stop: Option<usize>,
        /// `preprocessing.frame_step`.
        step: usize,
    },
    /// The working directory cannot be read (relative paths of the used config).
    #[error("cannot read the working directory: {0}")]
    WorkingDir(#[source] std::io::Error),
    /// `summarize`: the output folder does not exist.
    #[error("output folder {} does not exist", .0.display())]
    NoOutputFolder(PathBuf),
    /// A folder cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    ListFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `summarize`: no run report in the output folder.
    #[error(
        "no run report (run.json or run_shard_K_of_N.json) in {}: is it the output_dir of a \
         reconstruct run?{}",
        dir.display(),
        unreadable.iter().map(|(f, why)| format!("\n  {f}: {why}")).collect::<String>()
    )]
    NoRunReport {
        /// The output folder.
        dir: PathBuf,
        /// Report files that could not be read, and why.
        unreadable: Vec<(String, String)>,
    },
    /// A record could not be encoded as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An output a frame report lists was not written.
    #[error("output {} was not written: {source}", path.display())]
    OutputMissing {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An output a frame report lists cannot be read.
    #[error("cannot read output {}: {source}", path.display())]
    OutputUnreadable {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A frame folder's old outputs cannot be cleared.
    #[error("cannot clear old outputs in {}: {}: {source}", dir.display(), path.display())]
    ClearFrame {
        /// The frame folder.
        dir: PathBuf,
        /// The file or folder that resisted.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The intermediate files of a frame (`runtime.keep_intermediates: false`) cannot be
    /// removed.
    #[error("{}: {source}", path.display())]
    RemoveIntermediates {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// RoMa failed on a pair of cameras.
    #[error("RoMa on pair ({a}, {b}): {source}")]
    RomaPair {
        /// The reference camera.
        a: String,
        /// The source camera.
        b: String,
        /// Why.
        #[source]
        source: Box<crate::features::onnx::OnnxError>,
    },
    /// The frame's height map could not be made or written.
    #[error(transparent)]
    HeightMap(#[from] crate::heightmap::HeightMapError),
    /// Per-point attributes of a cloud do not match its points.
    #[error(transparent)]
    Attributes(#[from] crate::cloud::LengthMismatch),
    /// A camera's image does not fit its calibration.
    #[error("camera `{camera}`: {source} (does the image match the calibration?)")]
    CameraImage {
        /// The camera.
        camera: String,
        /// Why.
        #[source]
        source: crate::imgproc::ImageError,
    },
    /// No ring camera's image of a frame could be read.
    #[error("frame {frame}: no ring camera image could be read")]
    NoRingCamera {
        /// The frame.
        frame: usize,
    },
    /// The coarse sweep found no depth range for a camera.
    #[error(
        "camera `{camera}`: could not estimate a depth range (too little texture?); set \
         `reconstruction.depth_range: [min, max]`"
    )]
    NoDepthRange {
        /// The camera.
        camera: String,
    },
}

/// The one-line form of a plan with problems: the first problem's first line, and how many
/// more `aquamvs check` would list.
fn plan_message(first: &str, more: usize, config: &std::path::Path) -> String {
    let first = first.lines().next().unwrap_or_default();
    if more == 0 {
        first.to_owned()
    } else {
        format!(
            "{first} (and {more} more problem{}; `aquamvs check {}` lists them all)",
            if more == 1 { "" } else { "s" },
            config.display()
        )
    }
}
