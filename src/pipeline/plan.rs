//! The resolved, validated plan of a run: everything that can be checked before the first
//! frame, in one place, used by both `aquamvs check` and the run's setup ([`super::Context`]),
//! so `check` says OK exactly when the run will not refuse at setup.
//!
//! [`validate`] collects every problem at once (each naming the file, field or camera and
//! what to do) and the facts `check` prints; [`Validation::into_plan`] turns a validation
//! without problems into the [`Plan`] the run builds on, or into one error. Rules, in order:
//! - paths: every path of the config is valid UTF-8 (run records store them as text);
//! - the calibration loads and passes its validation and plausibility rules (`calib`);
//! - cameras: each input names a calibration camera; at least one ring camera and two
//!   cameras in all; in `full` mode `reconstruction.min_consistent_views` is at most what the
//!   ring allows (ring cameras − 1);
//! - inputs: one kind, aligned image folders, image or video sizes (first and last image of
//!   every camera, from the headers: nothing is decoded or allocated) equal to the
//!   calibration's and within the image limits, frames left after `frame_start/stop/step`;
//! - masks: present (a missing one is a warning), the right size;
//! - the model files of the learned matcher in use;
//! - the output folder (not a file).
//!
//! Config values are bounded by the config's own validation (`config`), which runs first.

use std::path::{Path, PathBuf};

use crate::calib::{Rig, load_rig};
use crate::config::{Config, LoadedConfig, MatcherType, PipelineMode};
use crate::frames::{CameraInput, InputKind, InputSet, probe_video, select_frames};
use crate::imgproc::ImageSize;
use crate::io::images::image_dimensions;

use super::PipelineError;

/// What a run of this config would process (the facts `aquamvs check` prints).
#[derive(Clone, Debug)]
pub struct Summary {
    /// The config file.
    pub config_path: PathBuf,
    /// The calibration file.
    pub calibration_path: PathBuf,
    /// Cameras in the calibration.
    pub n_calibration_cameras: usize,
    /// Ring cameras with an input (reference views), sorted.
    pub ring: Vec<String>,
    /// Auxiliary cameras with an input (source views only), sorted.
    pub auxiliary: Vec<String>,
    /// Distinct image sizes of the used cameras.
    pub image_sizes: Vec<ImageSize>,
    /// Image folders or videos (None when the inputs could not be opened).
    pub input_kind: Option<InputKind>,
    /// Frames available in every camera (None when unknown).
    pub frames_available: Option<usize>,
    /// Frames the run would process.
    pub frames_selected: Option<usize>,
    /// World Z of the water surface (m).
    pub water_z: f64,
    /// Mean height of the used cameras above the water (m).
    pub mean_camera_height: f64,
    /// Matcher.
    pub matcher: MatcherType,
    /// Pipeline mode.
    pub mode: PipelineMode,
    /// Output folder.
    pub output_dir: PathBuf,
}

/// Everything [`validate`] found.
#[derive(Debug)]
pub struct Validation {
    /// Problems that would stop or spoil a run; each names the file, field or camera.
    pub problems: Vec<String>,
    /// Remarks that do not stop a run.
    pub warnings: Vec<String>,
    /// What the run would process.
    pub summary: Summary,
    /// The calibration, when it loaded.
    pub rig: Option<Rig>,
    /// The inputs, when they opened.
    pub inputs: Option<InputSet>,
}

/// A validated run: what the run's setup builds on.
#[derive(Debug)]
pub struct Plan {
    /// The calibration.
    pub rig: Rig,
    /// The inputs as listed.
    pub inputs: InputSet,
    /// Active ring cameras (reference views), sorted.
    pub ring: Vec<String>,
    /// Active auxiliary cameras (source views only), sorted.
    pub auxiliary: Vec<String>,
    /// Remarks that do not stop a run.
    pub warnings: Vec<String>,
}

impl Validation {
    /// The plan, or one error listing the problems (the first in full, with the number of
    /// others: `aquamvs check` prints them all).
    pub fn into_plan(self) -> Result<Plan, PipelineError> {
        if let Some(first) = self.problems.first() {
            let first = first.lines().next().unwrap_or_default();
            let more = self.problems.len() - 1;
            return Err(PipelineError::Setup(if more == 0 {
                first.to_owned()
            } else {
                format!(
                    "{first} (and {more} more problem{}; `aquamvs check {}` lists them all)",
                    if more == 1 { "" } else { "s" },
                    self.summary.config_path.display()
                )
            }));
        }
        match (self.rig, self.inputs) {
            (Some(rig), Some(inputs)) => Ok(Plan {
                rig,
                inputs,
                ring: self.summary.ring,
                auxiliary: self.summary.auxiliary,
                warnings: self.warnings,
            }),
            // Without problems both loaded; kept as an error rather than a panic.
            _ => Err(PipelineError::Setup("the calibration or the inputs did not load".into())),
        }
    }
}

/// Validates a loaded config, its calibration and its inputs: every rule of the module doc,
/// every problem at once.
pub fn validate(loaded: &LoadedConfig) -> Validation {
    let config = &loaded.config;
    let mut v = Validation {
        problems: Vec::new(),
        warnings: loaded
            .warnings
            .iter()
            .map(|w| format!("{}: {w}", loaded.locate_issue(w)))
            .collect(),
        summary: Summary {
            config_path: loaded.path.clone(),
            calibration_path: config.calibration_path.clone(),
            matcher: config.matcher_type,
            mode: config.pipeline_mode,
            output_dir: config.output_dir.clone(),
            n_calibration_cameras: 0,
            ring: Vec::new(),
            auxiliary: Vec::new(),
            image_sizes: Vec::new(),
            input_kind: None,
            frames_available: None,
            frames_selected: None,
            water_z: f64::NAN,
            mean_camera_height: f64::NAN,
        },
        rig: None,
        inputs: None,
    };
    check_paths(loaded, &mut v);
    match load_rig(&config.calibration_path) {
        Ok(rig) => v.rig = Some(rig),
        Err(err) => v
            .problems
            .push(format!("calibration_path ({}): {err}", loaded.locate("calibration_path"))),
    }
    if let Some(rig) = v.rig.take() {
        check_cameras(loaded, &rig, &mut v);
        v.rig = Some(rig);
    }
    check_inputs(loaded, &mut v);
    check_masks(loaded, &mut v);
    check_models(loaded, &mut v);
    check_output(config, &mut v);
    v
}

/// Every path of the config must be valid UTF-8: the run records them as text (`run.json`).
fn check_paths(loaded: &LoadedConfig, v: &mut Validation) {
    let c = &loaded.config;
    let mut paths: Vec<(String, &Path)> = vec![
        ("calibration_path".into(), c.calibration_path.as_path()),
        ("output_dir".into(), c.output_dir.as_path()),
    ];
    paths.extend(
        c.camera_input_map.iter().map(|(k, p)| (format!("camera_input_map.{k}"), p.as_path())),
    );
    let optional = [
        ("mask_dir", &c.mask_dir),
        ("sparse_matching.extractor_model", &c.sparse_matching.extractor_model),
        ("sparse_matching.matcher_model", &c.sparse_matching.matcher_model),
        ("dense_matching.roma_model", &c.dense_matching.roma_model),
        ("runtime.onnxruntime_library", &c.runtime.onnxruntime_library),
    ];
    paths.extend(optional.iter().filter_map(|(f, p)| p.as_deref().map(|p| ((*f).to_owned(), p))));
    if loaded.path.to_str().is_none() {
        v.problems.push(format!(
            "config file {}: its path is not valid UTF-8; rename the folder or file (run \
             records store paths as text)",
            loaded.path.display()
        ));
        // Every relative path below shares the config's folder: one message is enough.
        return;
    }
    for (field, path) in paths {
        if path.to_str().is_none() {
            v.problems.push(format!(
                "{field} ({}): the path {} is not valid UTF-8; rename the folder or file (run \
                 records store paths as text)",
                loaded.locate(&field),
                path.display()
            ));
        }
    }
}

fn check_cameras(loaded: &LoadedConfig, rig: &Rig, v: &mut Validation) {
    let config = &loaded.config;
    let summary = &mut v.summary;
    summary.n_calibration_cameras = rig.cameras().len();
    summary.water_z = rig.water_z();
    let known: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
    for name in config.camera_input_map.keys() {
        if rig.camera(name).is_none() {
            let field = format!("camera_input_map.{name}");
            v.problems.push(format!(
                "{field} ({}): camera `{name}` is not in the calibration {} (its cameras: {})",
                loaded.locate(&field),
                config.calibration_path.display(),
                known.join(", ")
            ));
        }
    }
    let with_input = |names: Vec<&str>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| config.camera_input_map.contains_key(*n))
            .map(str::to_owned)
            .collect()
    };
    summary.ring = with_input(rig.ring_names());
    summary.auxiliary = with_input(rig.auxiliary_names());
    let unused: Vec<&str> =
        known.iter().copied().filter(|n| !config.camera_input_map.contains_key(*n)).collect();
    if !unused.is_empty() {
        v.warnings
            .push(format!("calibration cameras without input are skipped: {}", unused.join(", ")));
    }
    let ring = summary.ring.len();
    if ring == 0 {
        v.problems.push(
            "camera_input_map: no ring camera has an input; at least one non-auxiliary camera is \
             needed as a reference view"
                .into(),
        );
    } else if ring + summary.auxiliary.len() < 2 {
        v.problems.push(
            "camera_input_map: only one camera has an input; stereo needs at least two".into(),
        );
    } else {
        let needed = config.reconstruction.min_consistent_views;
        if config.pipeline_mode == PipelineMode::Full && needed > ring - 1 {
            v.problems.push(format!(
                "reconstruction.min_consistent_views ({}): {needed}, but with {ring} ring \
                 camera(s) each depth map can be confirmed by at most {}; lower it to {} or \
                 fewer, or add ring cameras",
                loaded.locate("reconstruction.min_consistent_views"),
                ring - 1,
                (ring - 1).max(1)
            ));
        }
    }
    let used: Vec<_> =
        summary.ring.iter().chain(&summary.auxiliary).filter_map(|n| rig.camera(n)).collect();
    let mut sizes: Vec<ImageSize> = used.iter().map(|c| c.image_size).collect();
    sizes.sort();
    sizes.dedup();
    summary.image_sizes = sizes;
    if !used.is_empty() {
        summary.mean_camera_height =
            used.iter().map(|c| rig.water_z() - c.centre().z).sum::<f64>() / used.len() as f64;
    }
}

fn check_inputs(loaded: &LoadedConfig, v: &mut Validation) {
    let config = &loaded.config;
    if config.camera_input_map.is_empty() {
        return;
    }
    let inputs = match InputSet::open(&config.camera_input_map) {
        Ok(inputs) => inputs,
        Err(err) => {
            v.problems
                .push(format!("camera_input_map ({}): {err}", loaded.locate("camera_input_map")));
            return;
        }
    };
    v.summary.input_kind = Some(inputs.kind());
    let mut frame_counts = Vec::new();
    for name in inputs.camera_names() {
        let expected = v.rig.as_ref().and_then(|r| r.camera(name)).map(|c| c.image_size);
        let (sizes, frames): (Vec<(PathBuf, ImageSize)>, usize) = match inputs.camera(name) {
            Some(CameraInput::Images(files)) => {
                // First and last image: a change of camera settings mid-run shows at the end.
                let mut sizes = Vec::new();
                for file in [files.first(), files.last()].into_iter().flatten() {
                    match image_dimensions(file) {
                        Ok(size) => sizes.push((file.clone(), size)),
                        Err(err) => v.problems.push(format!("camera `{name}`: {err}")),
                    }
                }
                (sizes, files.len())
            }
            Some(CameraInput::Video(path)) => match probe_video(path) {
                Ok(info) => (vec![(path.clone(), info.size)], info.frames),
                Err(err) => {
                    v.problems.push(format!("camera `{name}`: {err}"));
                    continue;
                }
            },
            None => continue,
        };
        frame_counts.push(frames);
        if let Some(expected) = expected {
            for (file, size) in sizes {
                if size != expected {
                    v.problems.push(format!(
                        "camera `{name}`: {} is {size} but the calibration is for {expected}; \
                         use images from the calibrated cameras at full resolution",
                        file.display()
                    ));
                }
            }
        }
    }
    let inputs_kind = inputs.kind();
    v.inputs = Some(inputs);
    let Some(&available) = frame_counts.iter().min() else { return };
    if inputs_kind == InputKind::Video && frame_counts.iter().any(|&n| n != available) {
        v.warnings.push(format!(
            "videos differ in length ({}–{} frames); the run uses the shortest ({available})",
            available,
            frame_counts.iter().max().copied().unwrap_or(available)
        ));
    }
    let pre = &config.preprocessing;
    let selected = select_frames(available, pre.frame_start, pre.frame_stop, pre.frame_step).len();
    v.summary.frames_available = Some(available);
    v.summary.frames_selected = Some(selected);
    if selected == 0 {
        v.problems.push(format!(
            "preprocessing.frame_start ({}): frame {} is past the last frame ({available} available)",
            loaded.locate("preprocessing.frame_start"),
            pre.frame_start
        ));
    }
    // A selected frame's folder that aquamvs did not write makes the run refuse (it is never
    // cleared or mixed with): say so here too.
    let layout = crate::layout::OutputLayout::new(&config.output_dir);
    let foreign: Vec<String> =
        select_frames(available, pre.frame_start, pre.frame_stop, pre.frame_step)
            .into_iter()
            .filter_map(|f| layout.frame(f).check_owned().err())
            .map(|e| e.to_string())
            .collect();
    if let Some(first) = foreign.first() {
        let more = match foreign.len() {
            1 => String::new(),
            n => format!(" (and {} more frame folder(s) like it)", n - 1),
        };
        v.problems.push(format!("output_dir: {first}{more}"));
    }
}

fn check_masks(loaded: &LoadedConfig, v: &mut Validation) {
    let config = &loaded.config;
    let Some(dir) = &config.mask_dir else { return };
    if !dir.is_dir() {
        v.problems.push(format!(
            "mask_dir ({}): folder not found: {}",
            loaded.locate("mask_dir"),
            dir.display()
        ));
        return;
    }
    for name in config.camera_input_map.keys() {
        let file = crate::masks::mask_path(dir, name);
        if !file.is_file() {
            v.warnings.push(format!(
                "camera `{name}` has no mask ({}); all its pixels are used",
                file.display()
            ));
            continue;
        }
        let expected = v.rig.as_ref().and_then(|r| r.camera(name)).map(|c| c.image_size);
        match (image_dimensions(&file), expected) {
            (Ok(size), Some(expected)) if size != expected => v.problems.push(format!(
                "mask {} is {size} but camera `{name}` is {expected}; draw masks on the images \
                 `aquamvs export-refs` writes",
                file.display()
            )),
            (Err(err), _) => v.problems.push(format!("mask of camera `{name}`: {err}")),
            _ => {}
        }
    }
}

fn check_models(loaded: &LoadedConfig, v: &mut Validation) {
    let c = &loaded.config;
    let models = [
        (
            "sparse_matching.extractor_model",
            &c.sparse_matching.extractor_model,
            c.matcher_type == MatcherType::Lightglue,
        ),
        (
            "sparse_matching.matcher_model",
            &c.sparse_matching.matcher_model,
            c.matcher_type == MatcherType::Lightglue,
        ),
        (
            "dense_matching.roma_model",
            &c.dense_matching.roma_model,
            c.matcher_type == MatcherType::Roma,
        ),
        (
            "runtime.onnxruntime_library",
            &c.runtime.onnxruntime_library,
            c.matcher_type != MatcherType::Classical,
        ),
    ];
    for (field, path, used) in models {
        if let (Some(path), true) = (path, used)
            && !path.is_file()
        {
            let hint = match field {
                "runtime.onnxruntime_library" => {
                    format!("; {}", crate::features::onnx::runtime::INSTALL_HINT)
                }
                _ => "; see docs/learned-matchers.md for how to export or obtain it, or run the \
                      classical matcher (`--set matcher_type=classical`)"
                    .to_string(),
            };
            v.problems.push(format!(
                "{field} ({}): file not found: {}{hint}",
                loaded.locate(field),
                path.display()
            ));
        }
    }
    check_device(loaded, v);
}

/// `runtime.device: cuda` with a learned matcher: the ONNX Runtime library must have the CUDA
/// execution provider (the library is loaded to ask it).
fn check_device(loaded: &LoadedConfig, v: &mut Validation) {
    use crate::features::onnx::runtime::{OnnxError, check_device};
    let c = &loaded.config;
    if c.runtime.device != crate::config::Device::Cuda || c.matcher_type == MatcherType::Classical {
        return;
    }
    let library = c.runtime.onnxruntime_library.as_deref();
    if library.is_some_and(|p| !p.is_file()) {
        return; // already reported as a missing file
    }
    let at = loaded.locate("runtime.device");
    match check_device(library, crate::config::Device::Cuda) {
        Ok(()) => {}
        Err(OnnxError::Device { message }) => v.problems.push(format!(
            "runtime.device ({at}): {message}; {}",
            crate::features::onnx::runtime::CUDA_HINT
        )),
        Err(e) => v.problems.push(format!(
            "runtime.device ({at}): `cuda` needs the ONNX Runtime library, which could not be \
             loaded: {e}"
        )),
    }
}

/// The output folder, by the one output-folder check (`layout::check_output_dir`: not a root,
/// creatable, writable), without leaving a folder behind.
fn check_output(config: &Config, v: &mut Validation) {
    if let Err(e) = crate::layout::check_output_dir(&config.output_dir, false) {
        v.problems.push(e.to_string());
    }
}
