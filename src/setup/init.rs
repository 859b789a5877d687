//! `aquamvs init`: find the camera inputs in a folder, pair them with the calibration's
//! cameras by a regular expression, and write a config with every field explicit.
//!
//! Behaviour follows AquaMVS (reference-product §1.2): every sub-folder of the input folder is
//! an image folder and every video file a video input; the pattern is matched at the start of
//! each name (like Python's `re.match`) and capture group 1 names the camera. Differences:
//! an existing config is never overwritten without `force`; two inputs that name the same
//! camera, or a mix of videos and image folders, are errors; paths in the written config are
//! relative to the config file's folder (where aquamvs resolves them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::config::{Config, QualityPreset};
use crate::frames::{VIDEO_EXTENSIONS, has_extension};
use crate::io::atomic::{WriteError, write_bytes_atomic};

/// What `init` needs.
#[derive(Clone, Debug)]
pub(crate) struct InitOptions {
    /// Folder holding one sub-folder of images or one video per camera.
    pub(crate) input_dir: PathBuf,
    /// Regular expression matched at the start of each input name; group 1 is the camera.
    pub(crate) pattern: String,
    /// AquaCal calibration JSON.
    pub(crate) calibration: PathBuf,
    /// Output folder written into the config.
    pub(crate) output_dir: PathBuf,
    /// Where to write the config.
    pub(crate) config_path: PathBuf,
    /// Preset whose values are written into the config.
    pub(crate) preset: Option<QualityPreset>,
    /// Replace an existing config file.
    pub(crate) force: bool,
}

/// What `init` found and wrote.
#[derive(Clone, Debug, Default)]
pub(crate) struct InitReport {
    /// Camera → input, for cameras in both the inputs and the calibration.
    pub(crate) matched: BTreeMap<String, PathBuf>,
    /// Input names the pattern did not match.
    pub(crate) unmatched_inputs: Vec<String>,
    /// Cameras found in the inputs that the calibration does not have.
    pub(crate) inputs_without_calibration: Vec<String>,
    /// Calibration cameras without an input.
    pub(crate) calibration_without_input: Vec<String>,
    /// The config file written (None when nothing matched).
    pub(crate) config_path: Option<PathBuf>,
    /// The preset applied.
    pub(crate) preset: Option<QualityPreset>,
}

/// Why `init` could not write a config.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    /// The input folder is missing.
    #[error("input folder not found: {}", .0.display())]
    InputDirMissing(PathBuf),
    /// The input folder cannot be read.
    #[error("cannot list input folder {}: {source}", path.display())]
    InputDirRead {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Neither videos nor sub-folders.
    #[error(
        "no camera inputs in {}: expected one sub-folder of images or one video ({}) per camera",
        .0.display(), VIDEO_EXTENSIONS.join(", ")
    )]
    NoInputs(PathBuf),
    /// The regex does not compile.
    #[error("invalid --pattern `{pattern}`: {message}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// The regex has no capture group.
    #[error(
        "--pattern `{0}` has no capture group: wrap the camera-name part in parentheses, e.g. `^(cam\\d+)`"
    )]
    NoCaptureGroup(String),
    /// Two inputs map to the same camera.
    #[error(
        "inputs `{first}` and `{second}` both match camera `{camera}`; make --pattern more specific"
    )]
    DuplicateCamera {
        /// Camera name.
        camera: String,
        /// First input name.
        first: String,
        /// Second input name.
        second: String,
    },
    /// Matched inputs mix videos and folders.
    #[error(
        "matched inputs mix videos ({videos}) and image folders ({folders}); use one kind for all cameras"
    )]
    MixedInputs {
        /// Cameras with videos.
        videos: String,
        /// Cameras with folders.
        folders: String,
    },
    /// The calibration file is missing.
    #[error("calibration file not found: {}", .0.display())]
    CalibrationMissing(PathBuf),
    /// The calibration file is unusable.
    #[error("calibration file {}: {message}", path.display())]
    CalibrationInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The config file exists already.
    #[error("{} already exists; pass --force to replace it, or choose another --config", .0.display())]
    ConfigExists(PathBuf),
    /// Writing the config failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Nothing matched (the report says why).
    #[error("no cameras matched between the inputs and the calibration")]
    NoMatches(Box<InitReport>),
}

/// Runs `init`: scans inputs, matches them with the calibration, writes the config.
pub(crate) fn run_init(opts: &InitOptions) -> Result<InitReport, InitError> {
    if !opts.input_dir.is_dir() {
        return Err(InitError::InputDirMissing(opts.input_dir.clone()));
    }
    let inputs = scan_inputs(&opts.input_dir)?;
    let regex = Regex::new(&format!("^(?:{})", opts.pattern)).map_err(|e| {
        InitError::BadPattern { pattern: opts.pattern.clone(), message: e.to_string() }
    })?;
    if regex.captures_len() < 2 {
        return Err(InitError::NoCaptureGroup(opts.pattern.clone()));
    }
    let calib_names = calibration_camera_names(&opts.calibration)?;

    let mut report = InitReport { preset: opts.preset, ..Default::default() };
    let mut found: BTreeMap<String, (String, PathBuf, bool)> = BTreeMap::new();
    for (name, path, is_video) in inputs {
        let camera = regex.captures(&name).and_then(|c| c.get(1)).map(|m| m.as_str().to_owned());
        match camera {
            Some(camera) if !camera.is_empty() => {
                if let Some((first, ..)) = found.get(&camera) {
                    return Err(InitError::DuplicateCamera {
                        camera,
                        first: first.clone(),
                        second: name,
                    });
                }
                found.insert(camera, (name, path, is_video));
            }
            _ => report.unmatched_inputs.push(name),
        }
    }
    let mut kinds = (Vec::new(), Vec::new());
    for (camera, (_, path, is_video)) in &found {
        if calib_names.contains(camera) {
            report.matched.insert(camera.clone(), path.clone());
            if *is_video { &mut kinds.0 } else { &mut kinds.1 }.push(camera.as_str());
        } else {
            report.inputs_without_calibration.push(camera.clone());
        }
    }
    report.calibration_without_input =
        calib_names.iter().filter(|n| !report.matched.contains_key(*n)).cloned().collect();
    if report.matched.is_empty() {
        return Err(InitError::NoMatches(Box::new(report)));
    }
    if !kinds.0.is_empty() && !kinds.1.is_empty() {
        return Err(InitError::MixedInputs {
            videos: kinds.0.join(", "),
            folders: kinds.1.join(", "),
        });
    }
    if opts.config_path.exists() && !opts.force {
        return Err(InitError::ConfigExists(opts.config_path.clone()));
    }

    let mut config = Config {
        calibration_path: opts.calibration.clone(),
        output_dir: opts.output_dir.clone(),
        camera_input_map: report.matched.clone(),
        ..Config::default()
    };
    if let Some(preset) = opts.preset {
        preset.apply(&mut config);
    }
    config.quality_preset = None;
    // A depth map can be confirmed by the other ring cameras only: keep the default within
    // what this rig allows, or `check` (and the run) would refuse the config just written.
    let auxiliary = calibration_auxiliary_names(&opts.calibration);
    let ring = report.matched.keys().filter(|n| !auxiliary.contains(*n)).count();
    let most = ring.saturating_sub(1).max(1);
    let views = &mut config.reconstruction.min_consistent_views;
    *views = (*views).min(most);
    let config_dir = match opts.config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let written = config.relative_paths_from_cwd(&config_dir);
    write_bytes_atomic(&opts.config_path, written.to_yaml().as_bytes())?;
    report.config_path = Some(opts.config_path.clone());
    Ok(report)
}

impl Config {
    /// Paths given relative to the working directory, rewritten relative to `config_dir`
    /// (itself relative to the working directory or absolute). Absolute paths stay absolute
    /// unless they lie under the config folder.
    fn relative_paths_from_cwd(mut self, config_dir: &Path) -> Config {
        let base = absolute(config_dir);
        let fix = |p: &mut PathBuf| {
            if p.as_os_str().is_empty() {
                return;
            }
            let abs = absolute(p);
            if let Some(rel) = crate::config::schema::relative_to(&abs, &base)
                && (p.is_relative() || !rel.starts_with(".."))
            {
                *p = rel;
            }
        };
        fix(&mut self.calibration_path);
        fix(&mut self.output_dir);
        self.camera_input_map.values_mut().for_each(fix);
        self
    }
}

/// `path` made absolute against the working directory, without touching the file system.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// (name, path, is_video) of every sub-folder and video file, sorted by name.
fn scan_inputs(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, InitError> {
    let read_err = |source| InitError::InputDirRead { path: dir.into(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if path.is_dir() {
            out.push((name, path, false));
        } else if path.is_file() && has_extension(&path, VIDEO_EXTENSIONS) {
            out.push((name, path, true));
        }
    }
    if out.is_empty() {
        return Err(InitError::NoInputs(dir.into()));
    }
    out.sort();
    Ok(out)
}

/// The cameras an AquaCal file marks `is_auxiliary: true` (none when it cannot be read: the
/// names were read from it already, and `check` validates it in full).
fn calibration_auxiliary_names(path: &Path) -> Vec<String> {
    let Ok(text) = crate::io::limits::read_text(path) else { return Vec::new() };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return Vec::new() };
    let Some(cameras) = json.get("cameras").and_then(|c| c.as_object()) else {
        return Vec::new();
    };
    cameras
        .iter()
        .filter(|(_, c)| c.get("is_auxiliary").and_then(serde_json::Value::as_bool) == Some(true))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The camera names of an AquaCal file (the keys of its top-level `cameras` object). The full
/// validation of the file is `aquamvs check`'s job.
fn calibration_camera_names(path: &Path) -> Result<Vec<String>, InitError> {
    if !path.is_file() {
        return Err(InitError::CalibrationMissing(path.into()));
    }
    let invalid = |message: String| InitError::CalibrationInvalid { path: path.into(), message };
    let text = crate::io::limits::read_text(path).map_err(|e| invalid(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let cameras = json.get("cameras").and_then(|c| c.as_object()).ok_or_else(|| {
        invalid("has no top-level `cameras` object (is it an AquaCal file?)".into())
    })?;
    let mut names: Vec<String> = cameras.keys().cloned().collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, InitOptions) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for cam in ["cam01", "cam02", "cam03", "notes"] {
            std::fs::create_dir_all(root.join("data").join(cam)).unwrap();
        }
        std::fs::write(
            root.join("calib.json"),
            r#"{"version": "1.0", "cameras": {"cam01": {}, "cam02": {}, "cam09": {}}}"#,
        )
        .unwrap();
        let opts = InitOptions {
            input_dir: root.join("data"),
            pattern: r"(cam\d+)".into(),
            calibration: root.join("calib.json"),
            output_dir: root.join("out"),
            config_path: root.join("config.yaml"),
            preset: None,
            force: false,
        };
        (dir, opts)
    }

    #[test]
    fn matches_writes_and_reports() {
        let (dir, opts) = setup();
        let report = run_init(&opts).unwrap();
        assert_eq!(report.matched.keys().collect::<Vec<_>>(), ["cam01", "cam02"]);
        assert_eq!(report.unmatched_inputs, ["notes"]);
        assert_eq!(report.inputs_without_calibration, ["cam03"]);
        assert_eq!(report.calibration_without_input, ["cam09"]);
        let text = std::fs::read_to_string(&opts.config_path).unwrap();
        // Paths under the config's folder are written relative to it.
        assert!(text.contains("calibration_path: \"calib.json\""), "{text}");
        assert!(text.contains("cam01: \"data/cam01\""), "{text}");
        // The written config loads, and its paths point at the real files.
        let loaded = crate::config::load(&opts.config_path).unwrap();
        assert_eq!(
            std::fs::canonicalize(&loaded.config.calibration_path).unwrap(),
            std::fs::canonicalize(dir.path().join("calib.json")).unwrap()
        );
    }

    #[test]
    fn absolute_paths_outside_the_config_folder_stay_absolute() {
        let (dir, mut opts) = setup();
        opts.config_path = dir.path().join("cfg").join("config.yaml");
        run_init(&opts).unwrap();
        let text = std::fs::read_to_string(&opts.config_path).unwrap();
        let calib = dir.path().join("calib.json");
        assert!(text.contains(&format!("calibration_path: \"{}\"", calib.display())), "{text}");
    }

    #[test]
    fn relative_paths_are_rewritten_for_the_config_folder() {
        let c = Config {
            calibration_path: "data/calib.json".into(),
            output_dir: "out".into(),
            camera_input_map: BTreeMap::from([("a".into(), "data/a".into())]),
            ..Config::default()
        };
        let c = c.relative_paths_from_cwd(Path::new("configs"));
        assert_eq!(c.calibration_path, PathBuf::from("../data/calib.json"));
        assert_eq!(c.output_dir, PathBuf::from("../out"));
        assert_eq!(c.camera_input_map["a"], PathBuf::from("../data/a"));
    }

    #[test]
    fn preset_values_are_baked_in() {
        let (_dir, mut opts) = setup();
        opts.preset = Some(QualityPreset::Fast);
        run_init(&opts).unwrap();
        let c = crate::config::load(&opts.config_path).unwrap().config;
        assert_eq!(c.reconstruction.num_depths, 64);
        assert_eq!(c.quality_preset, None);
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let (_dir, mut opts) = setup();
        run_init(&opts).unwrap();
        assert!(matches!(run_init(&opts), Err(InitError::ConfigExists(_))));
        opts.force = true;
        assert!(run_init(&opts).is_ok());
    }

    #[test]
    fn pattern_errors() {
        let (_dir, mut opts) = setup();
        opts.pattern = "cam\\d+".into();
        assert!(matches!(run_init(&opts), Err(InitError::NoCaptureGroup(_))));
        opts.pattern = "(cam".into();
        assert!(matches!(run_init(&opts), Err(InitError::BadPattern { .. })));
        // Anchored at the start, like Python's re.match.
        opts.pattern = r"(\d+)".into();
        match run_init(&opts) {
            Err(InitError::NoMatches(report)) => assert_eq!(report.unmatched_inputs.len(), 4),
            other => panic!("{other:?}"),
        }
        opts.pattern = r"(cam0)".into();
        assert!(matches!(run_init(&opts), Err(InitError::DuplicateCamera { .. })));
    }

    #[test]
    fn calibration_errors() {
        let (dir, mut opts) = setup();
        std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
        opts.calibration = dir.path().join("bad.json");
        let err = run_init(&opts).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("not valid JSON"), "{err}");
        opts.calibration = dir.path().join("missing.json");
        assert!(matches!(run_init(&opts), Err(InitError::CalibrationMissing(_))));
    }
}
