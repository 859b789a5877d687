//! `aquamvs export-refs`: undistorted reference images to draw region-of-interest masks on.
//!
//! Masks are defined in the undistorted geometry that every later stage works in, so the
//! images to draw them on are frame N of every camera, undistorted exactly as a run will
//! undistort it, written as `{output_dir}/reference_images/{camera}.png` (reference-product
//! §1.4). Cameras of `camera_input_map` that the calibration lacks are skipped with a warning;
//! a camera whose frame cannot be read is skipped with a warning, and the export fails only
//! when no camera could be read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::calib::{CalibError, RigError, load_rig};
use crate::config::ConfigError;
use crate::frames::{FrameReader, FramesError, InputSet};
use crate::imgproc::ImageSize;
use crate::io::images::{ImageIoError, write_png_rgb};
use crate::layout::OutputLayout;

/// Folder of the reference images inside the output folder.
pub(crate) const REFERENCE_DIR: &str = crate::layout::REFERENCE_DIR;

/// What [`export_reference_images`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExportedRefs {
    /// `{output_dir}/reference_images`.
    pub(crate) dir: PathBuf,
    /// The frame exported.
    pub(crate) frame: usize,
    /// Camera → written image, sorted by camera.
    pub(crate) images: BTreeMap<String, PathBuf>,
    /// Cameras left out and why (not calibrated, frame unreadable).
    pub(crate) skipped: Vec<(String, String)>,
}

/// Why reference images could not be exported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportRefsError {
    /// The config cannot be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The calibration cannot be loaded.
    #[error(transparent)]
    Calibration(#[from] CalibError),
    /// No camera of the config is in the calibration.
    #[error(
        "no camera of camera_input_map ({inputs}) is in the calibration {} (its cameras: {known})",
        calibration.display()
    )]
    NoCameras {
        /// The calibration file.
        calibration: PathBuf,
        /// Cameras of the config.
        inputs: String,
        /// Cameras of the calibration.
        known: String,
    },
    /// The inputs cannot be opened.
    #[error(transparent)]
    Frames(#[from] FramesError),
    /// The frame is past the end of the inputs.
    #[error("frame {frame} not found: the inputs have {count} frame(s) (0 to {last}); choose --frame below {count}", last = count.saturating_sub(1))]
    FrameNotFound {
        /// The requested frame.
        frame: usize,
        /// Frames available in every camera.
        count: usize,
    },
    /// No camera's frame could be read.
    #[error("frame {frame} has no readable image:\n{reasons}")]
    NoImages {
        /// The frame.
        frame: usize,
        /// One line per camera.
        reasons: String,
    },
    /// A camera's undistortion could not be set up.
    #[error("camera `{camera}`: {source}")]
    Rig {
        /// Camera name.
        camera: String,
        /// The rig's error.
        #[source]
        source: RigError,
    },
    /// A frame does not have the calibrated size.
    #[error(
        "camera `{camera}`: frame {frame} is {actual} but the calibration is for {expected}; \
         use the calibrated cameras' recordings at full resolution"
    )]
    FrameSize {
        /// Camera name.
        camera: String,
        /// The frame.
        frame: usize,
        /// The frame's size.
        actual: ImageSize,
        /// The calibrated size.
        expected: ImageSize,
    },
    /// An image could not be written.
    #[error(transparent)]
    Write(#[from] ImageIoError),
    /// The output folder is unusable, or the reference images would replace an input.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
}

/// Writes frame `frame` of every camera of the config at `config_path`, undistorted, to
/// `{output_dir}/reference_images/{camera}.png`.
pub(crate) fn export_reference_images(
    config_path: &Path,
    frame: usize,
) -> Result<ExportedRefs, ExportRefsError> {
    let loaded = crate::config::load(config_path)?;
    loaded.log_remarks();
    let config = &loaded.config;
    let layout = OutputLayout::new(&config.output_dir);
    refuse_inputs(&layout.reference_dir(), &loaded)?;
    let rig = load_rig(&config.calibration_path)?;
    let mut skipped = Vec::new();
    let mut inputs = BTreeMap::new();
    for (camera, path) in &config.camera_input_map {
        if rig.camera(camera).is_some() {
            inputs.insert(camera.clone(), path.clone());
        } else {
            tracing::warn!(
                "camera `{camera}` is in the config but not in the calibration; skipped"
            );
            skipped.push((camera.clone(), "not in the calibration".to_string()));
        }
    }
    if inputs.is_empty() {
        return Err(ExportRefsError::NoCameras {
            calibration: config.calibration_path.clone(),
            inputs: config.camera_input_map.keys().cloned().collect::<Vec<_>>().join(", "),
            known: rig.cameras().iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
        });
    }
    let mut reader = FrameReader::open(&InputSet::open(&inputs)?)?;
    if frame >= reader.frame_count() {
        return Err(ExportRefsError::FrameNotFound { frame, count: reader.frame_count() });
    }
    let mut images = BTreeMap::new();
    let mut failures = Vec::new();
    for (camera, result) in reader.read(frame)? {
        match result {
            Ok(img) => {
                images.insert(camera, img);
            }
            Err(err) => {
                tracing::warn!("frame {frame}: camera `{camera}` skipped: {err}");
                failures.push((camera, err.to_string()));
            }
        }
    }
    if images.is_empty() {
        let reasons = failures
            .iter()
            .map(|(camera, why)| format!("  {camera}: {why}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(ExportRefsError::NoImages { frame, reasons });
    }
    skipped.extend(failures);
    crate::layout::check_output_dir(layout.root(), true)?;
    let dir = layout.reference_dir();
    let written = images
        .into_par_iter()
        .map(|(camera, img)| {
            let (map, _) = rig
                .undistorted_camera(&camera)
                .map_err(|source| ExportRefsError::Rig { camera: camera.clone(), source })?;
            if img.size() != map.size() {
                return Err(ExportRefsError::FrameSize {
                    camera,
                    frame,
                    actual: img.size(),
                    expected: map.size(),
                });
            }
            let undistorted = map.remap_rgb(&img).map_err(|_| ExportRefsError::FrameSize {
                camera: camera.clone(),
                frame,
                actual: img.size(),
                expected: map.size(),
            })?;
            let path = layout.reference_image(&camera)?;
            write_png_rgb(&path, &undistorted)?;
            Ok((camera, path))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    skipped.sort();
    Ok(ExportedRefs { dir, frame, images: written, skipped })
}

/// Refuses when `refs` (the folder the images go to) is, is inside, or contains the masks'
/// folder (masks are drawn by hand on these very images), or is or contains another input (a
/// camera's images or video, the calibration, the config).
fn refuse_inputs(refs: &Path, loaded: &crate::config::LoadedConfig) -> Result<(), ExportRefsError> {
    let config = &loaded.config;
    let mut inputs: Vec<(&Path, String)> = Vec::new();
    if let Some(masks) = &config.mask_dir {
        inputs.push((masks.as_path(), "mask_dir".into()));
    }
    for (camera, input) in &config.camera_input_map {
        inputs.push((input.as_path(), format!("camera_input_map.{camera}")));
    }
    inputs.push((config.calibration_path.as_path(), "calibration_path".into()));
    inputs.push((loaded.path.as_path(), "the config".into()));
    for (i, (input, what)) in inputs.into_iter().enumerate() {
        let is_masks = i == 0 && config.mask_dir.is_some();
        let clash = if is_masks {
            crate::layout::overlaps(refs, input)
        } else {
            crate::layout::contains(refs, input)
        };
        if clash {
            return Err(crate::layout::LayoutError::Input {
                path: refs.to_path_buf(),
                what: format!("{what} is {}", input.display()),
                hint: format!(
                    "export-refs writes {REFERENCE_DIR}/ into output_dir; point {what} or \
                     output_dir elsewhere"
                ),
            }
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::images::read_rgb;
    use crate::synth::render::RenderOptions;
    use crate::synth::rig::RigPreset;
    use crate::synth::scene::{SceneSpec, write_scene};
    use crate::synth::surface::SurfaceKind;

    /// A tiny synthetic scene at 96 × 72 (fast to render), two frames.
    pub(crate) fn tiny_scene(dir: &Path) -> PathBuf {
        let mut spec = SceneSpec::new(SurfaceKind::Undulating, RigPreset::Tiny, 3);
        spec.rig.size = ImageSize::new(96, 72);
        spec.rig.focal_px *= 96.0 / 320.0;
        spec.rig.centre_focal_px *= 96.0 / 320.0;
        spec.frames = 2;
        spec.render = RenderOptions { supersample: 1, ..RenderOptions::exact() };
        write_scene(&spec, dir, &|_, _, _| {}).unwrap().config_path
    }

    #[test]
    fn exports_undistorted_frames_of_every_camera() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny_scene(dir.path());
        let refs = export_reference_images(&config, 1).unwrap();
        assert_eq!(refs.dir, dir.path().join("output").join(REFERENCE_DIR));
        assert_eq!(refs.images.keys().collect::<Vec<_>>(), ["cam00", "cam01", "cam02", "center"]);
        assert!(refs.skipped.is_empty());
        let rig = load_rig(&dir.path().join("calibration.json")).unwrap();
        for (camera, path) in &refs.images {
            let (map, _) = rig.undistorted_camera(camera).unwrap();
            let raw =
                read_rgb(&dir.path().join("images").join(camera).join("frame_000001.png")).unwrap();
            let want = map.remap_rgb(&raw).unwrap();
            assert!(read_rgb(path).unwrap() == want, "{camera}");
        }
        let err = export_reference_images(&config, 2).unwrap_err().to_string();
        assert!(err.contains("frame 2 not found: the inputs have 2 frame(s)"), "{err}");
    }

    #[test]
    fn unreadable_and_uncalibrated_cameras_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny_scene(dir.path());
        let mut text = std::fs::read_to_string(&config).unwrap();
        text =
            text.replace("camera_input_map:\n", "camera_input_map:\n  ghost: \"images/ghost\"\n");
        // Its own folder (a copy of cam00's): one folder for two cameras is refused.
        std::fs::create_dir_all(dir.path().join("images/ghost")).unwrap();
        for e in std::fs::read_dir(dir.path().join("images/cam00")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join("images/ghost").join(p.file_name().unwrap()))
                .unwrap();
        }
        std::fs::write(&config, &text).unwrap();
        std::fs::write(dir.path().join("images/cam01/frame_000000.png"), b"broken").unwrap();
        let refs = export_reference_images(&config, 0).unwrap();
        assert_eq!(refs.images.keys().collect::<Vec<_>>(), ["cam00", "cam02", "center"]);
        let skipped: Vec<&str> = refs.skipped.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(skipped, ["cam01", "ghost"]);

        // Every camera unreadable: an error that lists each.
        for cam in ["cam00", "cam02", "center"] {
            std::fs::write(dir.path().join(format!("images/{cam}/frame_000000.png")), b"x")
                .unwrap();
        }
        let err = export_reference_images(&config, 0).unwrap_err().to_string();
        assert!(err.contains("frame 0 has no readable image:\n  cam00:"), "{err}");
    }
}
