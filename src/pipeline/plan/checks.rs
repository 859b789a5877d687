//! The rules of [`super::validate`], one function per part of a project: paths, cameras,
//! inputs, masks, the learned matcher's files and the output folder. Each appends what it
//! finds to the [`Validation`] (problems name the file, field or camera and what to do).

use std::path::{Path, PathBuf};

use crate::calib::Rig;
use crate::config::{Config, LoadedConfig, MatcherType, PipelineMode};
use crate::frames::{CameraInput, InputKind, InputSet, probe_video, select_frames};
use crate::imgproc::ImageSize;
use crate::io::images::image_dimensions;

use super::Validation;

/// Every path of the config must be valid UTF-8: the run records them as text (`run.json`).
pub(super) fn check_paths(loaded: &LoadedConfig, v: &mut Validation) {
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

pub(super) fn check_cameras(loaded: &LoadedConfig, rig: &Rig, v: &mut Validation) {
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

pub(super) fn check_inputs(loaded: &LoadedConfig, v: &mut Validation) {
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

pub(super) fn check_masks(loaded: &LoadedConfig, v: &mut Validation) {
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

pub(super) fn check_models(loaded: &LoadedConfig, v: &mut Validation) {
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
pub(super) fn check_output(config: &Config, v: &mut Validation) {
    if let Err(e) = crate::layout::check_output_dir(&config.output_dir, false) {
        v.problems.push(e.to_string());
    }
}
