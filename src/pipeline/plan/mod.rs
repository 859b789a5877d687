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
//! The same validation resolves the options of every stage ([`StageOptions`], in `options`):
//! the frame's stages read them, never the config.
//!
//! Config values are bounded by the config's own validation (`config`), which runs first.

use std::path::PathBuf;

use crate::calib::{Rig, load_rig};
use crate::config::{LoadedConfig, MatcherType, PipelineMode};
use crate::frames::{InputKind, InputSet};
use crate::imgproc::ImageSize;

use super::PipelineError;

mod checks;
pub mod options;

use checks::{check_cameras, check_inputs, check_masks, check_models, check_output, check_paths};
pub use options::{DepthRangeSource, StageOptions};

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
    /// The options of every stage, resolved from the config.
    pub options: StageOptions,
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
    /// The options of every stage, resolved from the config.
    pub options: StageOptions,
}

impl Validation {
    /// The plan, or one error listing the problems (the first in full, with the number of
    /// others: `aquamvs check` prints them all).
    pub fn into_plan(self) -> Result<Plan, PipelineError> {
        if let Some(first) = self.problems.first() {
            return Err(PipelineError::Plan {
                first: first.clone(),
                more: self.problems.len() - 1,
                config: self.summary.config_path,
            });
        }
        match (self.rig, self.inputs) {
            (Some(rig), Some(inputs)) => Ok(Plan {
                rig,
                inputs,
                ring: self.summary.ring,
                auxiliary: self.summary.auxiliary,
                warnings: self.warnings,
                options: self.options,
            }),
            // Without problems both loaded; kept as an error rather than a panic.
            _ => Err(PipelineError::PlanIncomplete),
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
        options: StageOptions::resolve(config),
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
