//! Measuring the pipeline: `aquamvs profile` (one frame, every stage and sub-stage as a
//! `tracing` span, a table and a Chrome trace) and `aquamvs benchmark` (every pathway on one
//! frame, timings, point counts and ground-truth accuracy, Markdown/JSON reports, charts and
//! comparison with a baseline).
//!
//! - [`trace`]: a `tracing_subscriber` layer that records spans (wall intervals, threads, peak
//!   memory) and writes Chrome Trace Event JSON;
//! - [`profile`]: recorded spans summarised as a stage table with the top bottlenecks;
//! - [`runner`]: the pathways and running them on one frame read once;
//! - [`report`]: the results model, tables, Markdown and the baseline comparison;
//! - [`charts`]: PNG charts drawn with [`crate::viz`].
//!
//! Both commands work without a config on a built-in synthetic scene ([`BuiltinScene`]),
//! whose ground truth gives the benchmark accuracy figures.

pub(crate) mod charts;
pub(crate) mod profile;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod trace;

use std::path::{Path, PathBuf};

use crate::imgproc::ImageSize;
use crate::synth::rig::RigPreset;
use crate::synth::scene::{SceneError, SceneSpec, write_scene};
use crate::synth::surface::SurfaceKind;

/// A built-in synthetic scene: a sand bed seen by a synthetic rig through flat water, with
/// exact ground truth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BuiltinScene {
    /// The rig (`tank`: 12 ring cameras and a fisheye centre camera; `tiny`: 3 + 1).
    pub(crate) preset: RigPreset,
    /// Image size of every camera (the focal lengths scale with the width).
    pub(crate) size: ImageSize,
    /// Seed of the surface layout and texture.
    pub(crate) seed: u64,
}

impl BuiltinScene {
    /// One line that says what the scene is.
    pub(crate) fn describe(&self) -> String {
        let rig = match self.preset {
            RigPreset::Tank => "tank rig (12 ring cameras + fisheye centre camera)",
            RigPreset::Tiny => "tiny rig (3 ring cameras + centre camera)",
        };
        format!("built-in synthetic scene: sand bed, {rig}, {}, seed {}", self.size, self.seed)
    }

    /// The scene's specification.
    pub(crate) fn spec(&self) -> SceneSpec {
        let mut spec = SceneSpec::new(SurfaceKind::Sandbed, self.preset, self.seed);
        let scale = self.size.width as f64 / spec.rig.size.width as f64;
        spec.rig.focal_px *= scale;
        spec.rig.centre_focal_px *= scale;
        spec.rig.size = self.size;
        spec
    }

    /// Writes the scene into `dir` (images, calibration, `config.yaml`, `ground_truth/`)
    /// unless the same scene is already there, and returns the config's path. A finished
    /// scene is marked by `dir/scene.txt` holding [`Self::describe`].
    pub(crate) fn prepare(&self, dir: &Path) -> Result<PathBuf, SceneError> {
        let marker = dir.join("scene.txt");
        let config = dir.join("config.yaml");
        let key = self.describe();
        if config.is_file() && std::fs::read_to_string(&marker).is_ok_and(|k| k.trim() == key) {
            tracing::info!("reusing the scene in {}", dir.display());
            return Ok(config);
        }
        tracing::info!("rendering the {key} into {}", dir.display());
        let summary = write_scene(&self.spec(), dir, &|_, _, _| {})?;
        crate::io::atomic::write_bytes_atomic(&marker, format!("{key}\n").as_bytes())
            .map_err(|e| SceneError::Io(e.to_string()))?;
        Ok(summary.config_path)
    }
}
