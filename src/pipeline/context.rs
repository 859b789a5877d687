//! What a run needs before its first frame: the validated config, the rig, the active cameras
//! with their undistortion and refractive models, the source lists, the masks and the frames
//! to process. Built once, checked once, then shared read-only by every frame.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::calib::Rig;
use crate::config::{Config, LoadedConfig};
use crate::features::pairs::{CameraCentre, PairMap, PairOptions, select_pairs};
use crate::frames::{FrameReader, InputSet, select_frames};
use crate::geom::refraction::RefractiveCamera;
use crate::geom::undistort::UndistortMap;
use crate::imgproc::MaskImage;

use super::PipelineError;

/// One active camera: its undistortion and its refractive model in the undistorted geometry.
pub struct CameraSetup {
    /// Distorted → undistorted image map.
    pub undistort: UndistortMap,
    /// The camera every stage projects through.
    pub camera: RefractiveCamera,
}

impl std::fmt::Debug for CameraSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraSetup").field("size", &self.camera.size()).finish()
    }
}

/// Everything a frame needs that does not change between frames.
#[derive(Debug)]
pub struct Context {
    /// The config (paths resolved).
    pub config: Config,
    /// Where the config came from.
    pub config_path: PathBuf,
    /// The calibration.
    pub rig: Rig,
    /// Active cameras (calibrated and with an input), by name.
    pub cameras: BTreeMap<String, CameraSetup>,
    /// Active ring cameras (reference views), sorted.
    pub ring: Vec<String>,
    /// Active auxiliary cameras (source views only), sorted.
    pub auxiliary: Vec<String>,
    /// Sources of each ring camera, nearest first.
    pub pairs: PairMap,
    /// Region-of-interest masks by camera (undistorted resolution).
    pub masks: BTreeMap<String, MaskImage>,
    /// The camera inputs, open (video decoders persist across frames).
    pub reader: Mutex<FrameReader>,
    /// The camera inputs as listed (image files per frame, or video paths): the identity of
    /// a frame's inputs for resuming.
    pub inputs: InputSet,
    /// Frame indices to process.
    pub frames: Vec<usize>,
    /// Frames available in every camera.
    pub n_frames_available: usize,
    /// The learned matcher of `matcher_type` (`None` for the classical matcher).
    pub learned: Option<super::learned::Learned>,
    /// The options of every stage, resolved from the config by the plan.
    pub options: super::plan::StageOptions,
    /// Each ring camera's sweep of the frame computed last (the next frame's warm start);
    /// the frame loop empties it whenever a frame is skipped or fails.
    pub(crate) warm: Mutex<super::stage::depth::WarmPriors>,
    /// Whether a frame follows the one being computed in this run: only then are its sweeps
    /// kept for a warm start (they are about 32 bytes a pixel of every ring camera, held
    /// through fusion and the surface). Set by the frame loop; a lone frame keeps nothing.
    pub(crate) warm_next: std::sync::atomic::AtomicBool,
}

impl Context {
    /// Builds the context of a loaded config: loads the calibration, keeps the calibrated
    /// cameras that have inputs, builds their models, pairs and masks, and selects frames.
    pub fn build(loaded: &LoadedConfig) -> Result<Self, PipelineError> {
        let config = loaded.config.clone();
        // Every rule `aquamvs check` applies, before anything is allocated.
        let plan = super::plan::validate(loaded).into_plan()?;
        let super::plan::Plan { rig, inputs, ring, auxiliary, options, .. } = plan;
        let skipped: Vec<&str> = rig
            .cameras()
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !config.camera_input_map.contains_key(*n))
            .collect();
        if !skipped.is_empty() {
            tracing::warn!("calibration cameras without input are skipped: {}", skipped.join(", "));
        }
        let mut cameras = BTreeMap::new();
        for name in ring.iter().chain(&auxiliary) {
            let (undistort, camera) = rig.undistorted_camera(name)?;
            cameras.insert(name.clone(), CameraSetup { undistort, camera });
        }
        tracing::info!(
            "found {} ring and {} auxiliary cameras ({} and {} in the calibration)",
            ring.len(),
            auxiliary.len(),
            rig.ring_names().len(),
            rig.auxiliary_names().len()
        );
        let centres: Vec<CameraCentre<'_>> = ring
            .iter()
            .map(|n| CameraCentre { name: n, centre: cameras[n].camera.centre() })
            .collect();
        let aux_refs: Vec<&str> = auxiliary.iter().map(String::as_str).collect();
        let pair_options = PairOptions {
            num_neighbors: config.sparse_matching.num_neighbors,
            include_center: config.sparse_matching.include_center,
        };
        let pairs = select_pairs(&centres, &aux_refs, &pair_options);
        let reader = FrameReader::open(&inputs)?;
        let masks = match &config.mask_dir {
            Some(dir) => {
                let sizes: Vec<(&str, crate::imgproc::ImageSize)> =
                    cameras.iter().map(|(n, c)| (n.as_str(), c.camera.size())).collect();
                crate::masks::load_masks(dir, &sizes)?
            }
            None => BTreeMap::new(),
        };
        let learned = super::learned::load(&config)?;
        let n_frames_available = reader.frame_count();
        let pre = &config.preprocessing;
        let frames =
            select_frames(n_frames_available, pre.frame_start, pre.frame_stop, pre.frame_step);
        Ok(Self {
            config,
            config_path: loaded.path.clone(),
            rig,
            cameras,
            ring,
            auxiliary,
            pairs,
            masks,
            reader: Mutex::new(reader),
            inputs,
            frames,
            n_frames_available,
            learned,
            options,
            warm: Mutex::default(),
            warm_next: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The camera of `name` (it must be active).
    pub fn camera(&self, name: &str) -> &RefractiveCamera {
        &self.cameras[name].camera
    }
}
