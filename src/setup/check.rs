//! `aquamvs check`: everything that can be validated before a long run, reported at once.
//!
//! Checks, in order: the config (every problem with its line), the calibration (loaded and
//! validated), the cameras (each input names a calibration camera; at least one ring camera
//! and two cameras in all), the inputs (one kind, aligned image folders, image or video sizes
//! equal to the calibration's, frames left after `frame_start/stop/step`), masks (present,
//! right size), model files of the learned matchers, and the output folder. Problems make the
//! check fail; warnings (a calibration camera without input, a missing mask) do not.

use std::path::{Path, PathBuf};

use crate::calib::{Rig, load_rig};
use crate::config::{Config, LoadedConfig, MatcherType, PipelineMode};
use crate::frames::{CameraInput, InputKind, InputSet, probe_video, select_frames};
use crate::imgproc::ImageSize;
use crate::io::images::image_dimensions;

/// The outcome of a check.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Problems that would stop or spoil a run; each names the file, field or camera.
    pub problems: Vec<String>,
    /// Remarks that do not stop a run.
    pub warnings: Vec<String>,
    /// What the run would process, when the config and calibration load.
    pub summary: Option<Summary>,
}

impl CheckReport {
    /// True when there is no problem.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a run of this config would process.
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

/// Validates the config at `path`, its calibration and its inputs.
pub fn check_project(path: &Path) -> CheckReport {
    let mut report = CheckReport::default();
    let loaded = match crate::config::load(path) {
        Ok(loaded) => loaded,
        Err(crate::config::ConfigError::Invalid { path, issues, source_text }) => {
            report
                .problems
                .extend(issues.iter().map(|i| crate::config::render_issue(&path, i, &source_text)));
            return report;
        }
        Err(err) => {
            report.problems.push(err.to_string());
            return report;
        }
    };
    for w in &loaded.warnings {
        report.warnings.push(format!("{}: {w}", loaded.locate(&w.path)));
    }
    let config = &loaded.config;
    let rig = match load_rig(&config.calibration_path) {
        Ok(rig) => Some(rig),
        Err(err) => {
            report
                .problems
                .push(format!("calibration_path ({}): {err}", loaded.locate("calibration_path")));
            None
        }
    };
    let mut summary = Summary {
        config_path: path.to_path_buf(),
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
    };
    if let Some(rig) = &rig {
        check_cameras(&loaded, rig, &mut report, &mut summary);
    }
    check_inputs(&loaded, rig.as_ref(), &mut report, &mut summary);
    check_masks(&loaded, rig.as_ref(), &mut report);
    check_models(&loaded, &mut report);
    check_output(config, &mut report);
    if rig.is_some() {
        report.summary = Some(summary);
    }
    report
}

fn check_cameras(
    loaded: &LoadedConfig,
    rig: &Rig,
    report: &mut CheckReport,
    summary: &mut Summary,
) {
    let config = &loaded.config;
    summary.n_calibration_cameras = rig.cameras().len();
    summary.water_z = rig.water_z();
    let known: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
    for name in config.camera_input_map.keys() {
        if rig.camera(name).is_none() {
            let field = format!("camera_input_map.{name}");
            report.problems.push(format!(
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
        report
            .warnings
            .push(format!("calibration cameras without input are skipped: {}", unused.join(", ")));
    }
    if summary.ring.is_empty() {
        report.problems.push(
            "camera_input_map: no ring camera has an input; at least one non-auxiliary camera is \
             needed as a reference view"
                .into(),
        );
    } else if summary.ring.len() + summary.auxiliary.len() < 2 {
        report.problems.push(
            "camera_input_map: only one camera has an input; stereo needs at least two".into(),
        );
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

fn check_inputs(
    loaded: &LoadedConfig,
    rig: Option<&Rig>,
    report: &mut CheckReport,
    summary: &mut Summary,
) {
    let config = &loaded.config;
    if config.camera_input_map.is_empty() {
        return;
    }
    let inputs = match InputSet::open(&config.camera_input_map) {
        Ok(inputs) => inputs,
        Err(err) => {
            report
                .problems
                .push(format!("camera_input_map ({}): {err}", loaded.locate("camera_input_map")));
            return;
        }
    };
    summary.input_kind = Some(inputs.kind());
    let mut frame_counts = Vec::new();
    for name in inputs.camera_names() {
        let expected = rig.and_then(|r| r.camera(name)).map(|c| c.image_size);
        let (sizes, frames): (Vec<(PathBuf, ImageSize)>, usize) = match inputs.camera(name) {
            Some(CameraInput::Images(files)) => {
                // First and last image: a change of camera settings mid-run shows at the end.
                let mut sizes = Vec::new();
                for file in [files.first(), files.last()].into_iter().flatten() {
                    match image_dimensions(file) {
                        Ok(size) => sizes.push((file.clone(), size)),
                        Err(err) => report.problems.push(format!("camera `{name}`: {err}")),
                    }
                }
                (sizes, files.len())
            }
            Some(CameraInput::Video(path)) => match probe_video(path) {
                Ok(info) => (vec![(path.clone(), info.size)], info.frames),
                Err(err) => {
                    report.problems.push(format!("camera `{name}`: {err}"));
                    continue;
                }
            },
            None => continue,
        };
        frame_counts.push(frames);
        if let Some(expected) = expected {
            for (file, size) in sizes {
                if size != expected {
                    report.problems.push(format!(
                        "camera `{name}`: {} is {size} but the calibration is for {expected}; \
                         use images from the calibrated cameras at full resolution",
                        file.display()
                    ));
                }
            }
        }
    }
    let Some(&available) = frame_counts.iter().min() else { return };
    if inputs.kind() == InputKind::Video && frame_counts.iter().any(|&n| n != available) {
        report.warnings.push(format!(
            "videos differ in length ({}–{} frames); the run uses the shortest ({available})",
            available,
            frame_counts.iter().max().copied().unwrap_or(available)
        ));
    }
    let pre = &config.preprocessing;
    let selected = select_frames(available, pre.frame_start, pre.frame_stop, pre.frame_step).len();
    summary.frames_available = Some(available);
    summary.frames_selected = Some(selected);
    if selected == 0 {
        report.problems.push(format!(
            "preprocessing.frame_start ({}): frame {} is past the last frame ({available} available)",
            loaded.locate("preprocessing.frame_start"),
            pre.frame_start
        ));
    }
}

fn check_masks(loaded: &LoadedConfig, rig: Option<&Rig>, report: &mut CheckReport) {
    let config = &loaded.config;
    let Some(dir) = &config.mask_dir else { return };
    if !dir.is_dir() {
        report.problems.push(format!(
            "mask_dir ({}): folder not found: {}",
            loaded.locate("mask_dir"),
            dir.display()
        ));
        return;
    }
    for name in config.camera_input_map.keys() {
        let file = dir.join(format!("{name}.png"));
        if !file.is_file() {
            report.warnings.push(format!(
                "camera `{name}` has no mask ({}); all its pixels are used",
                file.display()
            ));
            continue;
        }
        let expected = rig.and_then(|r| r.camera(name)).map(|c| c.image_size);
        match (image_dimensions(&file), expected) {
            (Ok(size), Some(expected)) if size != expected => report.problems.push(format!(
                "mask {} is {size} but camera `{name}` is {expected}; draw masks on the images \
                 `aquamvs export-refs` writes",
                file.display()
            )),
            (Err(err), _) => report.problems.push(format!("mask of camera `{name}`: {err}")),
            _ => {}
        }
    }
}

fn check_models(loaded: &LoadedConfig, report: &mut CheckReport) {
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
            report.problems.push(format!(
                "{field} ({}): file not found: {}",
                loaded.locate(field),
                path.display()
            ));
        }
    }
}

fn check_output(config: &Config, report: &mut CheckReport) {
    if config.output_dir.is_file() {
        report
            .problems
            .push(format!("output_dir: {} is a file, not a folder", config.output_dir.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::save_rig;
    use crate::imgproc::RgbImage;
    use crate::io::images::write_png_rgb;
    use crate::synth::rig::{RigParams, RigPreset};

    /// A tiny rig, a folder of blank images per camera, and a config.
    fn project(frames: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let rig = RigParams::preset(RigPreset::Tiny).build().unwrap();
        save_rig(&dir.path().join("calibration.json"), &rig).unwrap();
        let mut map = String::new();
        for cam in rig.cameras() {
            for f in 0..frames {
                let img = RgbImage::from_elem(cam.image_size, 128);
                write_png_rgb(
                    &dir.path().join("images").join(&cam.name).join(format!("frame_{f:06}.png")),
                    &img,
                )
                .unwrap();
            }
            map.push_str(&format!("  {}: images/{}\n", cam.name, cam.name));
        }
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "calibration_path: calibration.json\noutput_dir: output\ncamera_input_map:\n{map}"
            ),
        )
        .unwrap();
        (dir, config)
    }

    #[test]
    fn a_good_project_passes_with_a_summary() {
        let (_dir, config) = project(3);
        let report = check_project(&config);
        assert!(report.is_ok(), "{:?}", report.problems);
        let s = report.summary.unwrap();
        assert_eq!(s.ring, ["cam00", "cam01", "cam02"]);
        assert_eq!(s.auxiliary, ["center"]);
        assert_eq!(s.image_sizes, [ImageSize::new(320, 240)]);
        assert_eq!((s.frames_available, s.frames_selected), (Some(3), Some(3)));
        assert_eq!(s.input_kind, Some(InputKind::ImageFolder));
        assert!((s.water_z - 0.5).abs() < 1e-12 && s.mean_camera_height > 0.45);
    }

    #[test]
    fn every_problem_is_reported() {
        let (dir, config) = project(2);
        let root = dir.path();
        // A camera that is not calibrated, an image of the wrong size, a frame range past the
        // end, a missing mask folder.
        let mut text = std::fs::read_to_string(&config).unwrap();
        // The uncalibrated camera has its own folder (a copy): one folder for two cameras is
        // refused.
        std::fs::create_dir_all(root.join("images/ghost")).unwrap();
        for e in std::fs::read_dir(root.join("images/cam00")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, root.join("images/ghost").join(p.file_name().unwrap())).unwrap();
        }
        text.push_str("  ghost: images/ghost\nmask_dir: masks\npreprocessing:\n  frame_start: 5\n");
        std::fs::write(&config, text).unwrap();
        write_png_rgb(
            &root.join("images/cam01/frame_000001.png"),
            &RgbImage::from_elem(ImageSize::new(10, 10), 0),
        )
        .unwrap();
        let report = check_project(&config);
        let all = report.problems.join("\n");
        assert!(
            all.contains("camera_input_map.ghost") && all.contains("not in the calibration"),
            "{all}"
        );
        assert!(all.contains("is 10×10 but the calibration is for 320×240"), "{all}");
        assert!(all.contains("frame 5 is past the last frame (2 available)"), "{all}");
        assert!(all.contains("mask_dir") && all.contains("folder not found"), "{all}");
        assert_eq!(report.problems.len(), 4, "{all}");
    }

    #[test]
    fn config_and_calibration_errors_stop_early() {
        let (dir, config) = project(1);
        std::fs::write(
            &config,
            "calibration_path: calibration.json\nreconstruction:\n  num_depths: 1\n",
        )
        .unwrap();
        let report = check_project(&config);
        assert!(
            report.problems[0].contains("config.yaml:3:15: reconstruction.num_depths"),
            "{:?}",
            report.problems
        );
        assert!(report.summary.is_none());

        std::fs::write(dir.path().join("calibration.json"), "{\"version\": \"2.0\"}").unwrap();
        let (_d2, config2) = project(1);
        std::fs::copy(
            dir.path().join("calibration.json"),
            config2.parent().unwrap().join("calibration.json"),
        )
        .unwrap();
        let report = check_project(&config2);
        assert!(report.problems[0].starts_with("calibration_path ("), "{:?}", report.problems);
        assert!(report.problems[0].contains("version"), "{:?}", report.problems);
    }
}
