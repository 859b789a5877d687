//! What a run reports: per frame ([`FrameReport`], written into `frame.json`), per frame of
//! the loop ([`FrameOutcome`], [`FrameStatus`]) and per run ([`RunReport`], `run.json`), and
//! the shard a run processes ([`Shard`]).
//!
//! Architecture invariant: plain serialisable values with no behaviour beyond bookkeeping; the
//! stages, the frame loop, resume and the summary all depend on this module and it on none of
//! them, so the pipeline's modules form no cycle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cloud::PointCloud;

/// What happened to one frame.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FrameReport {
    /// Frame index.
    pub index: usize,
    /// Wall time of each stage (seconds), in run order.
    pub stage_seconds: Vec<(String, f64)>,
    /// Cameras whose image could not be read (skipped): the frame is *degraded*.
    pub skipped_cameras: Vec<String>,
    /// Why each camera of `skipped_cameras` was skipped, in the same order.
    pub camera_errors: Vec<String>,
    /// Sparse points after triangulation (0 when the sparse stage did not run).
    pub n_sparse_points: usize,
    /// Ray-depth range used per ring camera (metres) and where it came from.
    pub depth_ranges: BTreeMap<String, (f64, f64, String)>,
    /// Fraction of pixels with a depth after the consistency filter, per ring camera.
    pub depth_valid_fraction: BTreeMap<String, f64>,
    /// Points of the fused (or sparse) cloud as written.
    pub n_cloud_points: usize,
    /// Mean height (world Z, m) of the cloud as written; `None` when it is empty.
    pub height_mean: Option<f64>,
    /// Standard deviation (population) of the height of the cloud as written.
    pub height_std: Option<f64>,
    /// Fraction of all ring cameras' pixels with a depth after the consistency filter
    /// (cameras without a depth map in this frame count as empty); `None` in sparse mode.
    pub coverage: Option<f64>,
    /// Points after outlier removal.
    pub n_points_after_outliers: usize,
    /// Triangles of the mesh (0 when none was written).
    pub n_mesh_faces: usize,
    /// Outputs written, relative to the frame folder.
    pub outputs: Vec<String>,
}

impl FrameReport {
    /// Total of the stage times (seconds).
    pub fn total_seconds(&self) -> f64 {
        self.stage_seconds.iter().map(|(_, s)| s).sum()
    }

    /// Records the size and height statistics of the cloud written as the frame's result.
    pub fn record_cloud(&mut self, cloud: &PointCloud) {
        self.n_cloud_points = cloud.len();
        let n = cloud.len() as f64;
        (self.height_mean, self.height_std) = if cloud.is_empty() {
            (None, None)
        } else {
            let mean = cloud.points().iter().map(|p| p.z).sum::<f64>() / n;
            let var = cloud.points().iter().map(|p| (p.z - mean).powi(2)).sum::<f64>() / n;
            (Some(mean), Some(var.sqrt()))
        };
    }
}

/// One of `count` disjoint parts of a run's frame list: the frames at positions `index`,
/// `index + count`, `index + 2·count`, … of the selected frames. Shards of one config can run
/// at the same time (a Slurm array, a Kubernetes indexed Job) into one output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based (`index < count`).
    pub index: usize,
    /// Number of shards (at least 1).
    pub count: usize,
}

/// A shard that cannot be (`--shard K/N`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// N = 0.
    #[error("the number of shards N must be at least 1")]
    NoShards,
    /// K ≥ N.
    #[error(
        "shard {index} of {count} does not exist: K counts from 0 to N-1 = {} \
         (with Slurm use `--array=0-{}`)",
        count - 1,
        count - 1
    )]
    NoSuchShard {
        /// K.
        index: usize,
        /// N.
        count: usize,
    },
    /// Not of the form `K/N`.
    #[error("`{0}` is not K/N (e.g. `0/4`: the first of 4 shards)")]
    NotKOfN(String),
    /// K or N is not a number.
    #[error("`{text}`: {part} `{value}` is not a whole number ≥ 0")]
    NotANumber {
        /// The whole argument.
        text: String,
        /// `K` or `N`.
        part: &'static str,
        /// The part as given.
        value: String,
    },
}

impl Shard {
    /// Shard `index` of `count`, checked.
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::NoSuchShard { index, count });
        }
        Ok(Self { index, count })
    }

    /// Parses `K/N` (e.g. `0/4`).
    pub fn parse(s: &str) -> Result<Self, ShardError> {
        let Some((k, n)) = s.split_once('/') else {
            return Err(ShardError::NotKOfN(s.to_owned()));
        };
        let num = |p: &str, part| {
            p.trim().parse::<usize>().map_err(|_| ShardError::NotANumber {
                text: s.to_owned(),
                part,
                value: p.to_owned(),
            })
        };
        Self::new(num(k, "K")?, num(n, "N")?)
    }

    /// The frames of `selected` that belong to this shard.
    pub fn select(&self, selected: &[usize]) -> Vec<usize> {
        selected.iter().skip(self.index).step_by(self.count).copied().collect()
    }

    /// `run_shard_K_of_N.json`: the report file of this shard.
    pub fn report_name(&self) -> String {
        crate::layout::run_report_name(Some((self.index, self.count)))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// How one frame ended in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameStatus {
    /// Computed by this run.
    Done,
    /// Computed by this run without one or more cameras whose image could not be read: the
    /// other cameras' results are kept, but the frame is not complete and the next run
    /// computes it again.
    Degraded,
    /// Complete and up to date from an earlier run: not recomputed.
    Skipped,
    /// Failed in this run (its folder has no `frame.json`), or its cloud is empty.
    Failed,
}

impl FrameStatus {
    /// `done`, `degraded`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Degraded => "degraded",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// How one frame ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameOutcome {
    /// Frame index.
    pub index: usize,
    /// Done, degraded (cameras lost), skipped (up to date) or failed.
    pub status: FrameStatus,
    /// Why the frame was skipped (`up to date`) or recomputed (`outputs from a different
    /// config`, `incomplete outputs (…)`, `--force`); absent for a frame never started before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed, or which cameras a degraded frame lost and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the frame's computation (seconds): in this run, or for a skipped frame in
    /// the run that computed it.
    pub seconds: f64,
    /// The frame's report (stages, counts, outputs) when it was computed (done or degraded)
    /// or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<FrameReport>,
}

/// What a run did (also written as `run.json`, or `run_shard_K_of_N.json` for a shard).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// aquamvs version.
    pub aquamvs_version: String,
    /// The config file.
    pub config: PathBuf,
    /// Hash of the config as used (frame selection and thread count aside), the calibration
    /// file and the masks: runs with equal fingerprints compute identical frames from
    /// identical inputs.
    pub config_fingerprint: String,
    /// Output folder.
    pub output_dir: PathBuf,
    /// Ring cameras used.
    pub ring_cameras: Vec<String>,
    /// Auxiliary cameras used.
    pub auxiliary_cameras: Vec<String>,
    /// The shard this run processed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Whether up-to-date frames were recomputed (`--force`).
    #[serde(default)]
    pub force: bool,
    /// Frame indices selected by the config (all shards together).
    #[serde(default)]
    pub frames_selected: Vec<usize>,
    /// Frame indices this run was asked to process (its shard of the selection).
    pub frames_requested: Vec<usize>,
    /// One entry per processed frame, in order.
    pub frames: Vec<FrameOutcome>,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Wall time so far (seconds).
    pub seconds: f64,
}

impl RunReport {
    /// Frames with status `status`.
    pub fn count(&self, status: FrameStatus) -> usize {
        self.frames.iter().filter(|f| f.status == status).count()
    }

    /// Frames that failed.
    pub fn n_failed(&self) -> usize {
        self.count(FrameStatus::Failed)
    }

    /// Frames computed without every camera.
    pub fn n_degraded(&self) -> usize {
        self.count(FrameStatus::Degraded)
    }

    /// The report's file name in the output folder.
    pub fn file_name(&self) -> String {
        crate::layout::run_report_name(self.shard.map(|s| (s.index, s.count)))
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
