//! The pipeline configuration: schema, defaults, presets, loading with complete validation, and
//! writing with every field explicit.
//!
//! The schema is that of AquaMVS (reference-product §2) so existing configs keep working, with
//! the differences ARCHITECTURE.md decides:
//! - unknown keys are **errors** with a "did you mean" suggestion (AquaMVS only warned, and
//!   users followed docs that named keys that never existed);
//! - every problem is reported at once, each with its dotted path, line and column;
//! - ranges are checked (AquaMVS accepted `num_depths: -5` and `frame_step: 0`);
//! - relative paths resolve against the config file's folder, not the working directory;
//! - new fields: `matcher_type: classical` (the default), model paths for the learned
//!   matchers, `reconstruction.depth_range`, `runtime.threads`, `runtime.onnxruntime_library`.
//!
//! Keys AquaMVS wrote but never used, and keys it removed, are accepted with a note saying what
//! happens instead, so that configs written by AquaMVS 1.7's `init` load unchanged (its
//! `dense_matching.roma_anchor_width/height` are RoMa's input size here too). Command-line
//! overrides (`--set KEY=VALUE`, [`overrides`]) are applied to the document before validation.

pub mod overrides;
pub mod schema;
pub mod suggest;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::{config_enum, config_section};
pub use overrides::Override;
use schema::{
    ConfigIssue, ConfigValue, Ctx, FieldInfo, MapReader, Refusal, at_least, non_negative, positive,
    unit_interval,
};
use yaml::{Node, Pos, Value, Writer};

config_enum! {
    /// Which outputs a run produces.
    PipelineMode {
        /// Sparse matching, triangulation and a surface from the sparse cloud only.
        Sparse = "sparse",
        /// Dense depth maps, fusion and a surface (the default).
        Full = "full",
    }
}

config_enum! {
    /// Which matcher finds correspondences between cameras.
    MatcherType {
        /// The weights-free classical matcher with refractive epipolar guidance (the default;
        /// needs no model files).
        Classical = "classical",
        /// SuperPoint + LightGlue through ONNX Runtime (needs model files).
        Lightglue = "lightglue",
        /// RoMa v2 dense matching through ONNX Runtime (needs a model file).
        Roma = "roma",
    }
}

config_enum! {
    /// A bundle of speed/quality settings applied by `aquamvs init --preset`.
    QualityPreset {
        /// 64 depths, window 7, 2 mm voxels.
        Fast = "fast",
        /// The defaults.
        Balanced = "balanced",
        /// 256 depths, window 15, 0.5 mm voxels.
        Quality = "quality",
    }
}

config_enum! {
    /// How camera colours are equalised before matching.
    ColorNormMethod {
        /// Per-channel gain to the mean over cameras.
        Gain = "gain",
        /// Histogram matching to the mean histogram.
        Histogram = "histogram",
    }
}

config_enum! {
    /// The LightGlue feature extractor.
    ExtractorType {
        /// SuperPoint (the default).
        Superpoint = "superpoint",
        /// ALIKED.
        Aliked = "aliked",
        /// DISK.
        Disk = "disk",
    }
}

config_enum! {
    /// The photometric cost of the plane sweep.
    CostFunctionKind {
        /// Normalised cross-correlation (1 − NCC; the default).
        Ncc = "ncc",
        /// Structural similarity (1 − SSIM).
        Ssim = "ssim",
    }
}

config_enum! {
    /// How the plane sweep combines the costs of several source cameras.
    AggregationKind {
        /// The mean over all sources (AquaMVS's behaviour).
        Mean = "mean",
        /// The mean of the `aggregation_k` lowest costs: robust to a source that is occluded.
        BestK = "best_k",
    }
}

config_enum! {
    /// How the fused cloud becomes a mesh.
    SurfaceMethodKind {
        /// Screened Poisson reconstruction (the default).
        Poisson = "poisson",
        /// A height map over the XY plane (natural for a tank or lake bottom).
        Heightfield = "heightfield",
        /// Ball pivoting.
        Bpa = "bpa",
    }
}

config_enum! {
    /// Where the learned matchers' models run (ONNX Runtime); everything else runs on the CPU.
    Device {
        /// The CPU.
        Cpu = "cpu",
        /// ONNX Runtime's CUDA execution provider (needs the `onnxruntime-gpu` build of the
        /// library and an NVIDIA GPU; see docs/learned-matchers.md).
        Cuda = "cuda",
    }
}

config_enum! {
    /// A group of pictures drawn when `runtime.viz_enabled` is on.
    VizStage {
        /// Depth and confidence maps.
        Depth = "depth",
        /// Keypoints and matches.
        Features = "features",
        /// Renders of the fused cloud and the mesh.
        Scene = "scene",
        /// The camera rig.
        Rig = "rig",
        /// The time-series gallery.
        Summary = "summary",
    }
}

impl VizStage {
    /// True when this stage is among `stages`; an empty list means every stage (the config's
    /// `runtime.viz_stages` convention).
    pub fn enabled_in(self, stages: &[VizStage]) -> bool {
        stages.is_empty() || stages.contains(&self)
    }
}

/// An explicit ray-depth search range for the plane sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DepthRange {
    /// Estimate it with a coarse sweep over the water column (weights-free).
    Auto,
    /// Fixed `[min, max]` ray depth in metres, for every camera.
    Fixed {
        /// Nearest ray depth (m).
        min: f64,
        /// Farthest ray depth (m).
        max: f64,
    },
}

impl ConfigValue for DepthRange {
    fn expected() -> String {
        "`auto` or `[min, max]` in metres with 0 ≤ min < max".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str(s) if s == "auto" => Some(DepthRange::Auto),
            Value::Seq(items) if items.len() == 2 => {
                let min = f64::parse(&items[0], &format!("{path}[0]"), ctx)?;
                let max = f64::parse(&items[1], &format!("{path}[1]"), ctx)?;
                if min < 0.0 || min >= max {
                    ctx.error(
                        path,
                        Some(node.pos),
                        format!("needs 0 ≤ min < max, got [{min}, {max}]"),
                    );
                    return None;
                }
                Some(DepthRange::Fixed { min, max })
            }
            other => {
                ctx.error(
                    path,
                    Some(node.pos),
                    format!("expected {}, got {}", Self::expected(), other.kind()),
                );
                None
            }
        }
    }
    fn text(&self) -> String {
        match self {
            DepthRange::Auto => "auto".into(),
            DepthRange::Fixed { min, max } => {
                format!("[{}, {}]", yaml::float_text(*min), yaml::float_text(*max))
            }
        }
    }
}

/// Most depth hypotheses per camera (`reconstruction.num_depths`); AquaMVS's quality preset
/// uses 256.
pub const MAX_NUM_DEPTHS: usize = 4096;
/// Widest matching window (`reconstruction.window_size`), in pixels.
pub const MAX_WINDOW_SIZE: usize = 99;
/// Most worker threads (`runtime.threads`).
pub const MAX_THREADS: usize = 1024;
/// Deepest Poisson octree (`reconstruction.poisson_depth`): the solver's own limit
/// (`surface::poisson::MAX_DEPTH`; its brick directory at depth 11 is 68 MB).
pub const MAX_POISSON_DEPTH: usize = 11;
/// Most keypoints per image (`sparse_matching.max_keypoints`).
pub const MAX_KEYPOINTS: usize = 1_000_000;
/// Most RoMa correspondences per pair (`dense_matching.max_correspondences`).
pub const MAX_CORRESPONDENCES: usize = 10_000_000;
/// Most neighbours of the statistical outlier removal (`reconstruction.outlier_nb_neighbors`).
pub const MAX_OUTLIER_NEIGHBORS: usize = 1000;
/// Longest side given to the learned extractor (`sparse_matching.extractor_resize`).
pub const MAX_EXTRACTOR_RESIZE: usize = crate::io::limits::MAX_IMAGE_SIDE;

/// Range check `min ≤ value ≤ max` for counts.
fn between(min: usize, max: usize) -> impl Fn(&usize) -> Result<(), Refusal> {
    move |v| {
        if *v < min {
            Err(Refusal::Below { min: min.to_string(), got: v.to_string() })
        } else if *v > max {
            Err(Refusal::AboveLimit { max, got: *v })
        } else {
            Ok(())
        }
    }
}

fn odd_window(v: &usize) -> Result<(), Refusal> {
    if *v >= 3 && *v <= MAX_WINDOW_SIZE && v % 2 == 1 {
        Ok(())
    } else {
        Err(Refusal::Window { max: MAX_WINDOW_SIZE, got: *v })
    }
}

fn multiple_of_16(v: &usize) -> Result<(), Refusal> {
    let max = crate::io::limits::MAX_IMAGE_SIDE;
    if *v > 0 && v.is_multiple_of(16) && *v <= max {
        Ok(())
    } else {
        Err(Refusal::NotMultipleOf16 { max, got: *v })
    }
}

fn optional_at_least_1(v: &Option<usize>) -> Result<(), Refusal> {
    match v {
        Some(0) => Err(Refusal::ZeroCount),
        _ => Ok(()),
    }
}

fn thread_count(v: &Option<usize>) -> Result<(), Refusal> {
    match v {
        Some(0) => Err(Refusal::ZeroThreads),
        Some(n) if *n > MAX_THREADS => Err(Refusal::TooManyThreads { max: MAX_THREADS, got: *n }),
        _ => Ok(()),
    }
}

fn trim_distance(v: &Option<f64>) -> Result<(), Refusal> {
    match v {
        Some(d) if !(d.is_finite() && *d > 0.0) => Err(Refusal::TrimDistance(*d)),
        _ => Ok(()),
    }
}

fn radii(v: &Option<Vec<f64>>) -> Result<(), Refusal> {
    match v {
        Some(r) if r.is_empty() => Err(Refusal::NoRadius),
        Some(r) if r.iter().any(|x| *x <= 0.0) => Err(Refusal::Radii(r.clone())),
        _ => Ok(()),
    }
}

config_section! {
    /// `preprocessing`: colour normalisation and frame selection.
    Preprocessing {
        /// Equalise colours across cameras before matching.
        color_norm_enabled: bool = false,
        /// Colour normalisation method.
        color_norm_method: ColorNormMethod = ColorNormMethod::Gain,
        /// First frame index to process.
        frame_start: usize = 0,
        /// Frame index to stop before (exclusive); null processes to the end.
        frame_stop: Option<usize> = None,
        /// Process every n-th frame.
        frame_step: usize = 1; check at_least(1usize),
    }
}

config_section! {
    /// `sparse_matching`: features, pairs and the learned sparse matcher.
    SparseMatching {
        /// LightGlue feature extractor (learned matcher only).
        extractor_type: ExtractorType = ExtractorType::Superpoint,
        /// Maximum keypoints per image (1 to 1000000).
        max_keypoints: usize = 2048; check between(1, MAX_KEYPOINTS),
        /// Keypoint detection threshold (learned extractor score).
        detection_threshold: f64 = 0.005; check non_negative,
        /// Contrast-limited histogram equalisation before feature extraction.
        clahe_enabled: bool = false,
        /// CLAHE clip limit (8×8 tiles).
        clahe_clip_limit: f64 = 2.0; check positive,
        /// Number of nearest ring cameras (by centre distance) used as sources of each ring camera.
        num_neighbors: usize = 4,
        /// Also use every auxiliary (centre) camera as a source.
        include_center: bool = true,
        /// LightGlue match score cut-off in [0, 1].
        filter_threshold: f64 = 0.1; check unit_interval,
        /// SuperPoint ONNX model (for `matcher_type: lightglue` with separate models).
        extractor_model: Option<PathBuf> = None,
        /// LightGlue ONNX model: the matcher alone, or an end-to-end extractor+matcher model.
        matcher_model: Option<PathBuf> = None,
        /// Long side (pixels) of the image the learned extractor sees (LightGlue: 1024; 8
        /// to 20000).
        extractor_resize: usize = 1024; check between(8, MAX_EXTRACTOR_RESIZE),
    }
}

config_section! {
    /// `dense_matching`: RoMa v2 settings.
    DenseMatching {
        /// Minimum RoMa certainty (overlap) of a correspondence, in [0, 1].
        certainty_threshold: f64 = 0.5; check unit_interval,
        /// Maximum correspondences per pair kept by RoMa sparse matching (1 to 10000000).
        max_correspondences: usize = 100_000; check between(1, MAX_CORRESPONDENCES),
        /// RoMa's input width (pixels, a positive multiple of 16): images are resized to
        /// this before matching. Used when the model accepts any size; a model exported at a
        /// fixed size runs at that size (with a note when it differs).
        roma_anchor_width: usize = 512; check multiple_of_16,
        /// RoMa's input height (pixels, a positive multiple of 16); see `roma_anchor_width`.
        roma_anchor_height: usize = 512; check multiple_of_16,
        /// RoMa v2 ONNX model (for `matcher_type: roma`).
        roma_model: Option<PathBuf> = None,
        /// Run the geometric consistency filter on RoMa depth maps before fusion (the
        /// reference skips it).
        roma_consistency_filter: bool = false,
    }
}

config_section! {
    /// `reconstruction`: plane sweep, fusion, outlier removal and surface.
    Reconstruction {
        /// Depth hypotheses per camera (uniform in ray depth; 2 to 4096).
        num_depths: usize = 128; check between(2, MAX_NUM_DEPTHS),
        /// Photometric cost of the plane sweep.
        cost_function: CostFunctionKind = CostFunctionKind::Ncc,
        /// Matching window side in pixels (odd, 3 to 99).
        window_size: usize = 11; check odd_window,
        /// Margin added on both sides of the estimated depth range (m).
        depth_margin: f64 = 0.05; check non_negative,
        /// Accepted for AquaMVS compatibility; the streaming sweep needs no depth batches.
        depth_batch_size: usize = 4; check at_least(1usize),
        /// Ray-depth search range: null (from the sparse stage, else automatic), `auto`, or
        /// `[min, max]` in metres.
        depth_range: Option<DepthRange> = None,
        /// How the costs of the source cameras combine.
        aggregation: AggregationKind = AggregationKind::Mean,
        /// Sources averaged by `aggregation: best_k`.
        aggregation_k: usize = 3; check at_least(1usize),
        /// Search the depth hypotheses coarse to fine: every hypothesis at ¼ resolution, then
        /// only the band around those minima at ½ and full resolution (same hypotheses, same
        /// depths where the band holds the minimum; ≈2.4× less CPU at 1600×1200). `false`
        /// tests every hypothesis at every pixel, as AquaMVS does.
        coarse_to_fine: bool = true,
        /// Refine each swept depth map with a slanted plane (depth and normal) per pixel for
        /// multi-view photometric consistency (removes the fronto-parallel window's bias on
        /// tilted and rippled beds) and use its normals in fusion instead of PCA. `false`
        /// keeps the sweep's depths, as AquaMVS does.
        refine: bool = true,
        /// In a sequence, sweep each ring camera's depths near the previous frame's (a band
        /// around them), and search cold only where they no longer explain the images (a
        /// fish, a dug pit). A run's, a shard's and a resumed run's first frame is cold; needs
        /// `coarse_to_fine`. `false` sweeps every frame cold.
        warm_start: bool = true,
        /// Cameras that must agree for a depth to survive the consistency filter.
        min_consistent_views: usize = 3; check at_least(1usize),
        /// Agreement tolerance of the consistency filter, in the target camera's ray depth (m).
        depth_tolerance: f64 = 0.005; check positive,
        /// A second, tighter rule of the consistency filter: a depth also survives when this
        /// many cameras agree within `consistency_close_tolerance` (completes the rig's outer
        /// band, which fewer cameras see; see docs/theory/fusion.md). 0 keeps only the
        /// `min_consistent_views` rule, as AquaMVS does.
        consistency_close_views: usize = 1,
        /// Agreement tolerance of the tighter rule, in the target camera's ray depth (m).
        consistency_close_tolerance: f64 = 0.001; check positive,
        /// Agreement tolerance between RoMa pairwise depths (m).
        roma_depth_tolerance: f64 = 0.02; check positive,
        /// Voxel side of the fused-cloud down-sampling (m).
        voxel_size: f64 = 0.001; check positive,
        /// Depths with lower confidence are not fused.
        min_confidence: f64 = 0.1; check unit_interval,
        /// Surface reconstruction method.
        surface_method: SurfaceMethodKind = SurfaceMethodKind::Poisson,
        /// Octree depth of the Poisson reconstruction (1 to 11, the solver's limit).
        poisson_depth: usize = 9; check between(1, MAX_POISSON_DEPTH),
        /// Grid spacing of the heightfield surface and of the per-frame height maps (m).
        grid_resolution: f64 = 0.002; check positive,
        /// Ball-pivoting radii (m); null picks 1×, 2× and 4× the mean point spacing.
        bpa_radii: Option<Vec<f64>> = None; check radii,
        /// Decimate the mesh to about this many triangles; null keeps all.
        target_faces: Option<usize> = None; check optional_at_least_1,
        /// Poisson and heightfield faces are kept only where their vertices and centroid lie
        /// within this distance (m) of a fused-cloud point, so the mesh invents no surface
        /// beyond the cloud or across its holes; null uses 2 × `voxel_size`. A very large
        /// value keeps the untrimmed mesh (ball pivoting is never trimmed).
        mesh_trim_distance: Option<f64> = None; check trim_distance,
        /// Remove statistical outliers from the fused cloud before meshing.
        outlier_removal_enabled: bool = true,
        /// Neighbours considered by the outlier removal (1 to 1000).
        outlier_nb_neighbors: usize = 20; check between(1, MAX_OUTLIER_NEIGHBORS),
        /// Points farther than mean + ratio·std of the neighbour distances are removed.
        outlier_std_ratio: f64 = 2.0; check positive,
    }
}

config_section! {
    /// `runtime`: outputs, pictures and resources.
    Runtime {
        /// Where the learned matchers' models run: `cuda` uses ONNX Runtime's CUDA execution
        /// provider (the `onnxruntime-gpu` library, docs/learned-matchers.md); everything else
        /// runs on the CPU.
        device: Device = Device::Cpu,
        /// Worker threads (1 to 1024); null uses every core.
        threads: Option<usize> = None; check thread_count,
        /// Save keypoints and matches as `features/CAM.npz` and `features/A_B.npz` (numpy).
        save_features: bool = false,
        /// Keep depth maps and consistency maps after fusion (false deletes them once the
        /// fused cloud is written).
        keep_intermediates: bool = true,
        /// Save the per-pixel count of agreeing cameras.
        save_consistency_maps: bool = false,
        /// Draw pictures of each stage.
        viz_enabled: bool = false,
        /// Which pictures to draw; an empty list draws all.
        viz_stages: Vec<VizStage> = Vec::new(),
        /// Maximum distance for ICP alignment in evaluations (m).
        icp_max_distance: f64 = 0.01; check positive,
        /// No progress bars, only warnings and errors.
        quiet: bool = false,
        /// The ONNX Runtime shared library for the learned matchers; null looks at
        /// `ORT_DYLIB_PATH`, then next to the executable.
        onnxruntime_library: Option<PathBuf> = None,
        /// Write each frame's height map (`heightmap/height.npz` and `height.tif`) on a grid of
        /// `reconstruction.grid_resolution` cells shared by every frame, for `aquamvs change`;
        /// null (auto) writes them when the run has more than one frame.
        heightmap: Option<bool> = None,
    }
}

config_section! {
    /// The whole pipeline configuration (`config.yaml`).
    Config {
        /// AquaCal calibration JSON.
        calibration_path: PathBuf = PathBuf::new(),
        /// Folder for all outputs.
        output_dir: PathBuf = PathBuf::new(),
        /// Camera name → image folder or video file.
        camera_input_map: BTreeMap<String, PathBuf> = BTreeMap::new(),
        /// Folder of `CAMERA.png` masks (non-zero = use the pixel); null uses every pixel.
        mask_dir: Option<PathBuf> = None,
        /// `full` (dense) or `sparse`.
        pipeline_mode: PipelineMode = PipelineMode::Full,
        /// Which matcher finds correspondences.
        matcher_type: MatcherType = MatcherType::Classical,
        /// Only used by `aquamvs init --preset`; has no effect at run time.
        quality_preset: Option<QualityPreset> = None,
        /// Colour normalisation and frame selection.
        preprocessing: Preprocessing = Preprocessing::default(),
        /// Features, pairs and the learned sparse matcher.
        sparse_matching: SparseMatching = SparseMatching::default(),
        /// RoMa v2 settings.
        dense_matching: DenseMatching = DenseMatching::default(),
        /// Plane sweep, fusion and surface.
        reconstruction: Reconstruction = Reconstruction::default(),
        /// Outputs, pictures and resources.
        runtime: Runtime = Runtime::default(),
    }
}

/// Keys AquaMVS accepted that aquamvs ignores with a warning: removed keys and keys written by
/// AquaMVS's `init` that nothing ever read.
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("save_depth_maps", "removed in AquaMVS; depth maps are always written"),
    ("save_point_cloud", "removed in AquaMVS; the fused cloud is always written"),
    ("save_mesh", "removed in AquaMVS; the mesh is always written"),
    ("runtime.save_depth_maps", "removed in AquaMVS; depth maps are always written"),
    ("runtime.save_point_cloud", "removed in AquaMVS; the fused cloud is always written"),
    ("runtime.save_mesh", "removed in AquaMVS; the mesh is always written"),
    ("runtime.benchmark_extractors", "never read by AquaMVS; `aquamvs benchmark` takes flags"),
    ("runtime.benchmark_clahe", "never read by AquaMVS; `aquamvs benchmark` takes flags"),
];

/// Unknown keys that users are known to write (from old AquaMVS docs or legacy layouts), with
/// what to write instead.
const KNOWN_MISTAKES: &[(&str, &str)] = &[
    ("reconstruction.depth_min", "use `depth_range: [min, max]` (metres of ray depth)"),
    ("reconstruction.depth_max", "use `depth_range: [min, max]` (metres of ray depth)"),
    ("reconstruction.num_depth_hypotheses", "the key is `num_depths`"),
    ("reconstruction.consistency_threshold", "the key is `depth_tolerance` (metres)"),
    ("reconstruction.pipeline_mode", "`pipeline_mode` is a top-level key"),
    ("reconstruction.matcher_type", "`matcher_type` is a top-level key"),
    ("sparse_matching.matcher_type", "`matcher_type` is a top-level key"),
    ("sparse_matching.pipeline_mode", "`pipeline_mode` is a top-level key"),
    (
        "camera_video_map",
        "renamed to `camera_input_map` (camera name → video file or image folder)",
    ),
    ("color_norm", "legacy AquaMVS section: its keys now live under `preprocessing`"),
    (
        "frame_sampling",
        "legacy AquaMVS section: use `preprocessing.frame_start/frame_stop/frame_step`",
    ),
    ("feature_extraction", "legacy AquaMVS section: its keys now live under `sparse_matching`"),
    ("pair_selection", "legacy AquaMVS section: its keys now live under `sparse_matching`"),
    ("matching", "legacy AquaMVS section: its keys now live under `sparse_matching`"),
    ("dense_stereo", "legacy AquaMVS section: its keys now live under `reconstruction`"),
    ("fusion", "legacy AquaMVS section: its keys now live under `reconstruction`"),
    ("surface", "legacy AquaMVS section: use `reconstruction.surface_method` and friends"),
    ("outlier_removal", "legacy AquaMVS section: use `reconstruction.outlier_*`"),
    ("device", "legacy AquaMVS key: use `runtime.device`"),
    ("output", "legacy AquaMVS section: its keys now live under `runtime`"),
    ("visualization", "legacy AquaMVS section: use `runtime.viz_enabled` and `runtime.viz_stages`"),
    ("benchmark", "legacy AquaMVS section: `aquamvs benchmark` takes command-line flags"),
    ("evaluation", "legacy AquaMVS section: use `runtime.icp_max_distance`"),
];

/// The hint for a known mistaken key path, if any.
pub(crate) fn known_mistake(path: &str) -> Option<&'static str> {
    KNOWN_MISTAKES.iter().find(|(p, _)| *p == path).map(|(_, hint)| *hint)
}

/// Errors from loading a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{} is not valid YAML:\n{message}", path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// Where parsing stopped.
        pos: Option<Pos>,
        /// The parser's message with a snippet.
        message: String,
    },
    /// The YAML is valid but its content is not.
    #[error("{}", render_issues(path, issues, source_text))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Every problem found.
        issues: Vec<ConfigIssue>,
        /// The file's text, for snippets.
        source_text: String,
    },
}

impl ConfigError {
    /// The individual problems (one for read and syntax errors).
    pub fn issues(&self) -> Vec<ConfigIssue> {
        match self {
            ConfigError::Invalid { issues, .. } => issues.clone(),
            ConfigError::Syntax { pos, message, .. } => {
                vec![ConfigIssue { path: String::new(), pos: *pos, message: message.clone() }]
            }
            ConfigError::Read { source, .. } => {
                vec![ConfigIssue { path: String::new(), pos: None, message: source.to_string() }]
            }
        }
    }
}

/// Renders problems as `file:line:col: path: message` followed by the offending line.
pub fn render_issues(path: &Path, issues: &[ConfigIssue], source_text: &str) -> String {
    let mut out = format!(
        "invalid configuration {} ({} problem{}):",
        path.display(),
        issues.len(),
        if issues.len() == 1 { "" } else { "s" }
    );
    for issue in issues {
        for line in render_issue(path, issue, source_text).lines() {
            out.push_str("\n  ");
            out.push_str(line);
        }
    }
    out
}

/// One problem as `file:line:col: path: message`, plus the offending line and a caret when
/// the position is known.
pub fn render_issue(path: &Path, issue: &ConfigIssue, source_text: &str) -> String {
    match issue.pos {
        Some(pos) if pos.line > 0 => {
            let mut out = format!("{}:{}: {issue}", path.display(), pos);
            if let Some(line) = source_text.lines().nth(pos.line as usize - 1) {
                let caret_pad = " ".repeat(pos.column.saturating_sub(1) as usize);
                out.push_str(&format!("\n  {:>4} | {line}\n       | {caret_pad}^", pos.line));
            }
            out
        }
        _ => format!("{}: {issue}", path.display()),
    }
}

/// A config read from a file, with what the reader noticed.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The validated config; relative paths are already resolved against the file's folder.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// Non-fatal remarks (settings without effect, risky combinations).
    pub warnings: Vec<ConfigIssue>,
    /// Information: keys accepted for AquaMVS compatibility that aquamvs cannot honour, each
    /// with what happens instead.
    pub notes: Vec<ConfigIssue>,
    /// Where each field was set in the file (dotted path → position).
    pub locations: BTreeMap<String, Pos>,
    /// Fields set by `--set` (dotted path → the flag as given).
    pub set_by_flag: BTreeMap<String, String>,
}

impl LoadedConfig {
    /// `file:line:col` of a field, the `--set` flag that gave it, or just the file when the
    /// field was not set in it.
    pub fn locate(&self, field: &str) -> String {
        if let Some(flag) = self.set_by_flag.get(field) {
            return format!("`{flag}`");
        }
        match self.locations.get(field) {
            Some(pos) => format!("{}:{pos}", self.path.display()),
            None => format!("{} (default)", self.path.display()),
        }
    }

    /// Where a remark points: the `--set` flag, the remark's own line (keys that are not
    /// fields have no recorded location), or the field's location.
    pub fn locate_issue(&self, issue: &ConfigIssue) -> String {
        match issue.pos {
            Some(pos) if pos.line > 0 && !self.set_by_flag.contains_key(&issue.path) => {
                format!("{}:{pos}", self.path.display())
            }
            _ => self.locate(&issue.path),
        }
    }

    /// Logs the warnings (as warnings) and the notes (as information), each with where the
    /// field was set.
    pub fn log_remarks(&self) {
        for w in &self.warnings {
            tracing::warn!("{}: {w}", self.locate_issue(w));
        }
        for n in &self.notes {
            tracing::info!("{}: {n}", self.locate_issue(n));
        }
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    load_with(path, &[])
}

/// Reads and validates a config file with command-line overrides (`--set KEY=VALUE`) applied
/// before validation.
pub fn load_with(path: &Path, overrides: &[Override]) -> Result<LoadedConfig, ConfigError> {
    let text = crate::io::limits::read_text(path)
        .map_err(|e| ConfigError::Read { path: path.to_path_buf(), source: e.into() })?;
    // An empty base keeps relative paths relative to the working directory, which is then
    // the config's folder.
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_str_with(&text, path, &base, overrides)
}

/// Validates config text; `path` is only used in messages, relative paths resolve against
/// `base_dir`.
pub fn parse_str(text: &str, path: &Path, base_dir: &Path) -> Result<LoadedConfig, ConfigError> {
    parse_str_with(text, path, base_dir, &[])
}

/// [`parse_str`] with command-line overrides applied to the document before validation.
pub fn parse_str_with(
    text: &str,
    path: &Path,
    base_dir: &Path,
    overrides: &[Override],
) -> Result<LoadedConfig, ConfigError> {
    // A UTF-8 byte-order mark (Windows editors) is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doc = yaml::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        pos: e.pos,
        message: e.message,
    })?;
    let mut ctx = Ctx::default();
    if !overrides.is_empty() {
        let extra: Vec<&str> = IGNORED_KEYS.iter().map(|(k, _)| *k).collect();
        if matches!(doc.value, Value::Null) {
            doc.value = Value::Map(Vec::new());
        }
        if matches!(doc.value, Value::Map(_)) {
            let paths = overrides::field_paths();
            ctx.issues.extend(overrides::apply(&mut doc, overrides, &paths, &extra));
        }
    }
    let entries = match doc.value {
        Value::Map(entries) => entries,
        Value::Null => Vec::new(),
        other => {
            ctx.error(
                "",
                Some(doc.pos),
                format!("expected a mapping of settings, got {}", other.kind()),
            );
            Vec::new()
        }
    };
    let entries = strip_ignored_keys(entries, &mut ctx);
    let mut reader = MapReader::new(&entries, "", &mut ctx);
    let mut config = Config::read(&mut reader);
    reader.finish(Config::KEYS);
    check_cross_fields(&config, &mut ctx);
    check_distinct_inputs(&config, base_dir, &mut ctx);
    overrides::name_flags(&mut ctx.issues, overrides);
    let mut set_by_flag = BTreeMap::new();
    ctx.locations.retain(|field, pos| match overrides::flag_of(Some(*pos), overrides) {
        Some(flag) => {
            set_by_flag.insert(field.clone(), flag.to_string());
            false
        }
        None => true,
    });
    if !ctx.issues.is_empty() {
        // In file order; problems without a position (missing fields, flags) last.
        ctx.issues.sort_by_key(|i| i.pos.map_or((1, Pos::default()), |p| (0, p)));
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            issues: ctx.issues,
            source_text: text.to_owned(),
        });
    }
    config.resolve_paths(base_dir);
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        warnings: ctx.warnings,
        notes: ctx.notes,
        locations: ctx.locations,
        set_by_flag,
    })
}

/// Removes the keys of [`IGNORED_KEYS`] (top level and inside `runtime`) with a warning each.
fn strip_ignored_keys(
    mut entries: Vec<(yaml::Key, Node)>,
    ctx: &mut Ctx,
) -> Vec<(yaml::Key, Node)> {
    fn strip(entries: &mut Vec<(yaml::Key, Node)>, prefix: &str, ctx: &mut Ctx) {
        entries.retain(|(k, _)| {
            let path = schema::join_path(prefix, &k.name);
            match IGNORED_KEYS.iter().find(|(p, _)| *p == path) {
                Some((_, why)) => {
                    ctx.note(&path, Some(k.pos), format!("ignored: {why}; you can delete it"));
                    false
                }
                None => true,
            }
        });
    }
    strip(&mut entries, "", ctx);
    for (key, node) in &mut entries {
        if key.name == "runtime"
            && let Value::Map(inner) = &mut node.value
        {
            strip(inner, "runtime", ctx);
        }
    }
    entries
}

/// Two cameras mapped to one image folder or video would reconstruct the same views twice
/// under two poses: refused, naming both cameras. Paths are compared after resolving them
/// against `base_dir`, following symbolic links where the path exists (`a/`, `./a` and a link
/// to `a` are the same folder).
fn check_distinct_inputs(c: &Config, base_dir: &Path, ctx: &mut Ctx) {
    let mut seen: Vec<(PathBuf, &str)> = Vec::new();
    for (name, input) in &c.camera_input_map {
        if input.as_os_str().is_empty() {
            continue;
        }
        let resolved = same_file_key(&base_dir.join(input));
        match seen.iter().find(|(p, _)| *p == resolved) {
            Some((_, first)) => {
                let p = format!("camera_input_map.{name}");
                let at = ctx.locations.get(&p).copied();
                ctx.error(
                    &p,
                    at,
                    format!(
                        "is the same input as camera `{first}` ({}): two cameras cannot share \
                         an image folder or video; give each camera its own",
                        input.display()
                    ),
                );
            }
            None => seen.push((resolved, name.as_str())),
        }
    }
}

/// `path` made absolute and canonical where it exists, otherwise normalised by its
/// components (`.` and `x/..` removed), for comparing two paths.
fn same_file_key(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Rules that involve more than one field.
fn check_cross_fields(c: &Config, ctx: &mut Ctx) {
    let pos = |ctx: &Ctx, p: &str| ctx.locations.get(p).copied();
    let already_wrong = |ctx: &Ctx, p: &str| ctx.issues.iter().any(|i| i.path == p);
    if c.calibration_path.as_os_str().is_empty() && !already_wrong(ctx, "calibration_path") {
        let at = pos(ctx, "calibration_path");
        ctx.error("calibration_path", at, "is required: the AquaCal calibration JSON file");
    }
    if c.output_dir.as_os_str().is_empty() && !already_wrong(ctx, "output_dir") {
        let at = pos(ctx, "output_dir");
        ctx.error("output_dir", at, "is required: the folder for all outputs (e.g. `output`)");
    }
    if c.camera_input_map.is_empty() && !already_wrong(ctx, "camera_input_map") {
        let at = pos(ctx, "camera_input_map");
        ctx.error(
            "camera_input_map",
            at,
            "needs at least one `camera_name: image folder or video` entry \
             (`aquamvs init` writes it for you)",
        );
    }
    for (name, input) in &c.camera_input_map {
        let p = format!("camera_input_map.{name}");
        // The name becomes file names: the same rule as for the calibration's cameras.
        if let Err(e) = crate::layout::check_camera_name(name) {
            let at = pos(ctx, &p).or_else(|| pos(ctx, "camera_input_map"));
            ctx.error("camera_input_map", at, e.to_string());
        } else if input.as_os_str().is_empty() {
            let at = pos(ctx, &p);
            ctx.error(&p, at, "is empty: give the camera's image folder or video file");
        }
    }
    let pre = &c.preprocessing;
    if let Some(stop) = pre.frame_stop
        && stop <= pre.frame_start
    {
        let at = pos(ctx, "preprocessing.frame_stop");
        ctx.error(
            "preprocessing.frame_stop",
            at,
            format!("must be greater than frame_start ({}), got {stop}", pre.frame_start),
        );
    }
    match c.matcher_type {
        MatcherType::Lightglue if c.sparse_matching.matcher_model.is_none() => {
            let at = pos(ctx, "matcher_type");
            ctx.error(
                "sparse_matching.matcher_model",
                at,
                "is required with `matcher_type: lightglue`: the LightGlue ONNX model \
                 (see docs/learned-matchers.md); or use the weights-free matcher: \
                 `matcher_type: classical` in the file, or `--set matcher_type=classical`",
            );
        }
        MatcherType::Roma if c.dense_matching.roma_model.is_none() => {
            let at = pos(ctx, "matcher_type");
            ctx.error(
                "dense_matching.roma_model",
                at,
                "is required with `matcher_type: roma`: the RoMa v2 ONNX model \
                 (see docs/learned-matchers.md); or use the weights-free matcher: \
                 `matcher_type: classical` in the file, or `--set matcher_type=classical`",
            );
        }
        _ => {}
    }
    if c.matcher_type == MatcherType::Roma {
        if c.dense_matching.certainty_threshold < 0.1 {
            let at = pos(ctx, "dense_matching.certainty_threshold");
            ctx.warn(
                "dense_matching.certainty_threshold",
                at,
                "below 0.1 lets many unreliable RoMa matches through",
            );
        }
        if c.pipeline_mode == PipelineMode::Sparse {
            let at = pos(ctx, "pipeline_mode");
            ctx.warn(
                "pipeline_mode",
                at,
                "RoMa computes dense warps; sparse mode discards most of them",
            );
        }
    }
    if let Some(preset) = c.quality_preset {
        let at = pos(ctx, "quality_preset");
        ctx.warn(
            "quality_preset",
            at,
            format!(
                "`{preset}` has no effect at run time; apply presets with \
                 `aquamvs init --preset {preset}`, which writes their values into the config"
            ),
        );
    }
    if c.runtime.device == Device::Cuda && c.matcher_type == MatcherType::Classical {
        let at = pos(ctx, "runtime.device");
        ctx.note(
            "runtime.device",
            at,
            "`cuda` applies to the learned matchers' models (ONNX Runtime's CUDA execution \
             provider); with the classical matcher aquamvs runs on the CPU (all cores unless \
             `runtime.threads` says otherwise)",
        );
    }
}

impl QualityPreset {
    /// Sets the preset's values on every field that still has its default value (so explicit
    /// edits survive), as AquaMVS's `apply_preset` does.
    pub fn apply(self, c: &mut Config) {
        let (num_depths, window, batch, keypoints, voxel, poisson) = match self {
            QualityPreset::Fast => (64, 7, 8, 1024, 0.002, 8),
            QualityPreset::Balanced => (128, 11, 4, 2048, 0.001, 9),
            QualityPreset::Quality => (256, 15, 1, 4096, 0.0005, 10),
        };
        let d = Config::default();
        let (r, dr) = (&mut c.reconstruction, &d.reconstruction);
        if r.num_depths == dr.num_depths {
            r.num_depths = num_depths;
        }
        if r.window_size == dr.window_size {
            r.window_size = window;
        }
        if r.depth_batch_size == dr.depth_batch_size {
            r.depth_batch_size = batch;
        }
        if r.voxel_size == dr.voxel_size {
            r.voxel_size = voxel;
        }
        if r.poisson_depth == dr.poisson_depth {
            r.poisson_depth = poisson;
        }
        if c.sparse_matching.max_keypoints == d.sparse_matching.max_keypoints {
            c.sparse_matching.max_keypoints = keypoints;
        }
    }
}

impl Config {
    /// The config as YAML with every field explicit, in AquaMVS's key order.
    pub fn to_yaml(&self) -> String {
        let mut w = Writer::new();
        w.comment("aquamvs pipeline configuration (every field explicit).");
        w.comment("Relative paths are relative to this file's folder.");
        w.comment("Reference: docs/configuration.md");
        self.write_fields(&mut w);
        w.finish()
    }

    /// Documentation of every field (path, accepted values, default, meaning), in file order.
    pub fn field_infos_all() -> Vec<FieldInfo> {
        let mut out = Config::field_infos("");
        out.retain(|f| {
            !matches!(
                f.path.as_str(),
                "preprocessing"
                    | "sparse_matching"
                    | "dense_matching"
                    | "reconstruction"
                    | "runtime"
            )
        });
        out.extend(Preprocessing::field_infos("preprocessing"));
        out.extend(SparseMatching::field_infos("sparse_matching"));
        out.extend(DenseMatching::field_infos("dense_matching"));
        out.extend(Reconstruction::field_infos("reconstruction"));
        out.extend(Runtime::field_infos("runtime"));
        out
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_yaml())
    }
}

#[cfg(test)]
mod tests;
