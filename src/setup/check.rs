//! `aquamvs check`: everything that can be validated before a long run, reported at once.
//!
//! The rules are those of the run's own setup ([`crate::pipeline::plan`], shared with
//! [`crate::pipeline::Context::build`]), so `check` says OK exactly when the run will not
//! refuse at setup: the config (every problem with its line, every value within its
//! documented bounds), the calibration (loaded, validated and plausible), the cameras, the
//! inputs (image or video sizes from the headers, equal to the calibration's), the frames
//! left after `frame_start/stop/step`, masks, the learned matcher's model files and the output
//! folder. Problems make the check fail; warnings (a calibration camera without input, a
//! missing mask) do not.

use std::path::Path;

pub(crate) use crate::pipeline::plan::Summary;
use crate::pipeline::plan::validate;

/// The outcome of a check.
#[derive(Clone, Debug, Default)]
pub(crate) struct CheckReport {
    /// Problems that would stop or spoil a run; each names the file, field or camera.
    pub(crate) problems: Vec<String>,
    /// Remarks that do not stop a run.
    pub(crate) warnings: Vec<String>,
    /// Information: compatibility keys that aquamvs accepts but cannot honour, and what
    /// happens instead.
    pub(crate) notes: Vec<String>,
    /// What the run would process, when the config and calibration load.
    pub(crate) summary: Option<Summary>,
}

impl CheckReport {
    /// True when there is no problem.
    pub(crate) fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Validates the config at `path`, its calibration and its inputs.
#[cfg(test)]
pub(crate) fn check_project(path: &Path) -> CheckReport {
    check_project_with(path, &[])
}

/// [`check_project`] with `--set` overrides applied to the config.
pub(crate) fn check_project_with(
    path: &Path,
    overrides: &[crate::config::Override],
) -> CheckReport {
    let mut report = CheckReport::default();
    let loaded = match crate::config::load_with(path, overrides) {
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
    let validation = validate(&loaded);
    report.problems = validation.problems;
    report.warnings = validation.warnings;
    for n in &loaded.notes {
        report.notes.push(format!("{}: {n}", loaded.locate_issue(n)));
    }
    if validation.rig.is_some() {
        report.summary = Some(validation.summary);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use crate::calib::save_rig;
    use crate::frames::InputKind;
    use crate::imgproc::ImageSize;
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
                "calibration_path: calibration.json\noutput_dir: output\nreconstruction:\n  \
                 min_consistent_views: 2\ncamera_input_map:\n{map}"
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
