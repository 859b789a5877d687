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
    /// The run cannot start (message says why and what to do).
    #[error("{0}")]
    Setup(String),
    /// A frame failed (message says why).
    #[error("{0}")]
    Frame(String),
}
