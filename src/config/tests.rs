//! Tests of the config schema: defaults and presets against the reference tables, every kind
//! of error with its position, path resolution, and the writer/reader round trip.

use super::*;

const MINIMAL: &str = "calibration_path: calib.json
output_dir: out
camera_input_map:
  cam1: images/cam1
";

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse_str(text, Path::new("/proj/config.yaml"), Path::new("/proj"))
}

fn issues(text: &str) -> Vec<ConfigIssue> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.issues(),
    }
}

fn one_issue(text: &str, path: &str) -> ConfigIssue {
    let all = issues(text);
    let found: Vec<_> = all.iter().filter(|i| i.path == path).collect();
    assert_eq!(found.len(), 1, "issues for {path}: {all:#?}");
    found[0].clone()
}

#[test]
fn defaults_match_the_reference() {
    let c = Config::default();
    assert_eq!(c.pipeline_mode, PipelineMode::Full);
    assert_eq!(c.matcher_type, MatcherType::Classical);
    assert_eq!(c.mask_dir, None);
    let p = &c.preprocessing;
    assert!(!p.color_norm_enabled);
    assert_eq!(p.color_norm_method, ColorNormMethod::Gain);
    assert_eq!((p.frame_start, p.frame_stop, p.frame_step), (0, None, 1));
    let s = &c.sparse_matching;
    assert_eq!(s.extractor_type, ExtractorType::Superpoint);
    assert_eq!(s.max_keypoints, 2048);
    assert_eq!(s.detection_threshold, 0.005);
    assert!(!s.clahe_enabled);
    assert_eq!(s.clahe_clip_limit, 2.0);
    assert_eq!(s.num_neighbors, 4);
    assert!(s.include_center);
    assert_eq!(s.filter_threshold, 0.1);
    let d = &c.dense_matching;
    assert_eq!((d.certainty_threshold, d.max_correspondences), (0.5, 100_000));
    assert_eq!((d.roma_anchor_width, d.roma_anchor_height), (512, 512));
    let r = &c.reconstruction;
    assert_eq!(r.num_depths, 128);
    assert_eq!(r.cost_function, CostFunctionKind::Ncc);
    assert_eq!(r.window_size, 11);
    assert_eq!(r.depth_margin, 0.05);
    assert_eq!(r.depth_batch_size, 4);
    assert_eq!(r.depth_range, None);
    assert_eq!(r.min_consistent_views, 3);
    assert_eq!(r.depth_tolerance, 0.005);
    assert_eq!(r.roma_depth_tolerance, 0.02);
    assert_eq!(r.voxel_size, 0.001);
    assert_eq!(r.min_confidence, 0.1);
    assert_eq!(r.surface_method, SurfaceMethodKind::Poisson);
    assert_eq!(r.poisson_depth, 9);
    assert_eq!(r.grid_resolution, 0.002);
    assert_eq!(r.bpa_radii, None);
    assert_eq!(r.target_faces, None);
    assert!(r.outlier_removal_enabled);
    assert_eq!(r.outlier_nb_neighbors, 20);
    assert_eq!(r.outlier_std_ratio, 2.0);
    let rt = &c.runtime;
    assert_eq!(rt.device, Device::Cpu);
    assert_eq!(rt.threads, None);
    assert!(!rt.save_features && rt.keep_intermediates && !rt.save_consistency_maps);
    assert!(!rt.viz_enabled && rt.viz_stages.is_empty());
    assert_eq!(rt.icp_max_distance, 0.01);
    assert!(!rt.quiet);
}

#[test]
fn every_preset_value() {
    // (num_depths, window_size, depth_batch_size, max_keypoints, voxel_size, poisson_depth)
    let table = [
        (QualityPreset::Fast, (64, 7, 8, 1024, 0.002, 8)),
        (QualityPreset::Balanced, (128, 11, 4, 2048, 0.001, 9)),
        (QualityPreset::Quality, (256, 15, 1, 4096, 0.0005, 10)),
    ];
    for (preset, expected) in table {
        let mut c = Config::default();
        preset.apply(&mut c);
        let r = &c.reconstruction;
        let got = (
            r.num_depths,
            r.window_size,
            r.depth_batch_size,
            c.sparse_matching.max_keypoints,
            r.voxel_size,
            r.poisson_depth,
        );
        assert_eq!(got, expected, "{preset}");
    }
    assert_eq!(
        {
            let mut c = Config::default();
            QualityPreset::Balanced.apply(&mut c);
            c
        },
        Config::default(),
        "balanced is the defaults"
    );
}

#[test]
fn presets_keep_explicit_edits() {
    let mut c = Config::default();
    c.reconstruction.num_depths = 96;
    QualityPreset::Quality.apply(&mut c);
    assert_eq!(c.reconstruction.num_depths, 96);
    assert_eq!(c.reconstruction.window_size, 15);
}

#[test]
fn minimal_config_loads_with_defaults_and_resolves_paths() {
    let loaded = parse(MINIMAL).unwrap();
    let c = &loaded.config;
    assert_eq!(c.calibration_path, PathBuf::from("/proj/calib.json"));
    assert_eq!(c.output_dir, PathBuf::from("/proj/out"));
    assert_eq!(c.camera_input_map["cam1"], PathBuf::from("/proj/images/cam1"));
    assert_eq!(c.reconstruction, Reconstruction::default());
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.locate("output_dir"), "/proj/config.yaml:2:13");
}

#[test]
fn absolute_paths_are_kept() {
    let text = MINIMAL.replace("calib.json", "/data/calib.json");
    let c = parse(&text).unwrap().config;
    assert_eq!(c.calibration_path, PathBuf::from("/data/calib.json"));
}

#[test]
fn paths_resolve_against_the_config_folder_not_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("configs");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("run.yaml");
    std::fs::write(&file, MINIMAL.replace("calib.json", "../calib.json")).unwrap();
    let c = load(&file).unwrap().config;
    assert_eq!(c.calibration_path, sub.join("../calib.json"));
    assert_eq!(c.camera_input_map["cam1"], sub.join("images/cam1"));
}

#[test]
fn wrong_type_names_field_line_and_column() {
    let text = format!("{MINIMAL}reconstruction:\n  num_depths: many\n");
    let issue = one_issue(&text, "reconstruction.num_depths");
    assert_eq!(issue.pos, Some(Pos { line: 6, column: 15 }));
    assert!(issue.message.contains("expected a whole number"), "{}", issue.message);
    assert!(issue.message.contains("\"many\""), "{}", issue.message);
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let text = format!("{MINIMAL}reconstruction:\n  num_depth: 64\n");
    let issue = one_issue(&text, "reconstruction.num_depth");
    assert_eq!(issue.pos, Some(Pos { line: 6, column: 3 }));
    assert!(issue.message.contains("did you mean `num_depths`?"), "{}", issue.message);
}

#[test]
fn unknown_top_level_key_and_section() {
    let text = format!("{MINIMAL}reconstuction:\n  num_depths: 64\n");
    let issue = one_issue(&text, "reconstuction");
    assert!(issue.message.contains("did you mean `reconstruction`?"), "{}", issue.message);
}

#[test]
fn keys_from_old_docs_get_a_specific_hint() {
    let text = format!(
        "{MINIMAL}reconstruction:\n  depth_min: 0.3\nsparse_matching:\n  matcher_type: roma\n"
    );
    let all = issues(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].message.contains("depth_range: [min, max]"), "{}", all[0].message);
    assert!(all[1].message.contains("top-level key"), "{}", all[1].message);
}

#[test]
fn out_of_range_values() {
    let cases = [
        ("reconstruction:\n  num_depths: 1\n", "reconstruction.num_depths", "at least 2"),
        ("reconstruction:\n  window_size: 4\n", "reconstruction.window_size", "odd"),
        ("reconstruction:\n  window_size: 1\n", "reconstruction.window_size", "≥ 3"),
        ("reconstruction:\n  window_size: 101\n", "reconstruction.window_size", "≤ 99"),
        (
            "reconstruction:\n  num_depths: 1000000000\n",
            "reconstruction.num_depths",
            "at most 4096",
        ),
        ("reconstruction:\n  poisson_depth: 12\n", "reconstruction.poisson_depth", "at most 11"),
        (
            "reconstruction:\n  outlier_nb_neighbors: 100000\n",
            "reconstruction.outlier_nb_neighbors",
            "at most 1000",
        ),
        ("runtime:\n  threads: 100000\n", "runtime.threads", "at most 1024"),
        (
            "sparse_matching:\n  max_keypoints: 1000000000\n",
            "sparse_matching.max_keypoints",
            "at most",
        ),
        (
            "sparse_matching:\n  extractor_resize: 1000000\n",
            "sparse_matching.extractor_resize",
            "at most 20000",
        ),
        (
            "dense_matching:\n  max_correspondences: 1000000000\n",
            "dense_matching.max_correspondences",
            "at most",
        ),
        ("preprocessing:\n  frame_step: 0\n", "preprocessing.frame_step", "at least 1"),
        ("reconstruction:\n  voxel_size: 0\n", "reconstruction.voxel_size", "greater than 0"),
        (
            "reconstruction:\n  mesh_trim_distance: 0\n",
            "reconstruction.mesh_trim_distance",
            "greater than 0",
        ),
        (
            "reconstruction:\n  mesh_trim_distance: -0.5\n",
            "reconstruction.mesh_trim_distance",
            "greater than 0",
        ),
        (
            "reconstruction:\n  depth_tolerance: -0.1\n",
            "reconstruction.depth_tolerance",
            "greater than 0",
        ),
        (
            "reconstruction:\n  min_confidence: 1.5\n",
            "reconstruction.min_confidence",
            "between 0 and 1",
        ),
        ("reconstruction:\n  depth_range: [0.9, 0.3]\n", "reconstruction.depth_range", "min < max"),
        ("reconstruction:\n  bpa_radii: []\n", "reconstruction.bpa_radii", "at least one"),
        ("reconstruction:\n  num_depths: -5\n", "reconstruction.num_depths", "≥ 0"),
        ("runtime:\n  threads: 0\n", "runtime.threads", "at least 1"),
        (
            "preprocessing:\n  frame_start: 5\n  frame_stop: 5\n",
            "preprocessing.frame_stop",
            "greater than frame_start",
        ),
    ];
    for (snippet, path, needle) in cases {
        let text = format!("{MINIMAL}{snippet}");
        let issue = one_issue(&text, path);
        assert!(issue.message.contains(needle), "{path}: {}", issue.message);
        assert!(issue.pos.is_some_and(|p| p.line >= 5), "{path}: {:?}", issue.pos);
    }
}

#[test]
fn enum_values_are_checked_with_suggestions() {
    let text = format!("{MINIMAL}reconstruction:\n  cost_function: nnc\n");
    let issue = one_issue(&text, "reconstruction.cost_function");
    assert!(issue.message.contains("`ncc`, `ssim`"), "{}", issue.message);
    assert!(issue.message.contains("did you mean `ncc`?"), "{}", issue.message);
    let text = format!("{MINIMAL}runtime:\n  viz_stages: [depth, bogus]\n");
    let issue = one_issue(&text, "runtime.viz_stages[1]");
    assert!(issue.message.contains("`bogus` is not allowed"), "{}", issue.message);
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "calibration_path: 3
camera_input_map: {}
matcher_type: lightglu
preprocessing:
  frame_step: 1.5
reconstruction:
  num_depths: \"128\"
  window_size: 4
runtime:
  device: tpu
";
    let err = parse(text).unwrap_err();
    let paths: Vec<String> = err.issues().into_iter().map(|i| i.path).collect();
    for expected in [
        "calibration_path",
        "matcher_type",
        "preprocessing.frame_step",
        "reconstruction.num_depths",
        "reconstruction.window_size",
        "runtime.device",
        "output_dir",
        "camera_input_map",
    ] {
        assert!(paths.iter().any(|p| p == expected), "missing {expected} in {paths:?}");
    }
    let rendered = err.to_string();
    assert!(rendered.starts_with("invalid configuration /proj/config.yaml ("), "{rendered}");
    assert!(rendered.contains("/proj/config.yaml:8:16: reconstruction.window_size"), "{rendered}");
    assert!(rendered.contains("   8 |   window_size: 4"), "{rendered}");
}

#[test]
fn learned_matchers_need_model_paths() {
    let text = format!("{MINIMAL}matcher_type: roma\n");
    let issue = one_issue(&text, "dense_matching.roma_model");
    assert!(issue.message.contains("classical"), "{}", issue.message);
    let ok = format!("{MINIMAL}matcher_type: roma\ndense_matching:\n  roma_model: m/roma.onnx\n");
    let c = parse(&ok).unwrap().config;
    assert_eq!(c.dense_matching.roma_model, Some(PathBuf::from("/proj/m/roma.onnx")));
}

#[test]
fn compatibility_keys_warn_but_load() {
    let text = format!(
        "{MINIMAL}quality_preset: fast\nsave_mesh: true\nruntime:\n  device: cuda\n  benchmark_clahe: [true, false]\n"
    );
    let loaded = parse(&text).unwrap();
    let paths =
        |list: &[ConfigIssue]| -> Vec<String> { list.iter().map(|w| w.path.clone()).collect() };
    // AquaMVS warns about a preset in the file too.
    assert_eq!(paths(&loaded.warnings), ["quality_preset"]);
    // Accepted but not honoured: one note each, saying what happens instead.
    let notes = paths(&loaded.notes);
    assert_eq!(notes.len(), 3, "{notes:?}");
    for p in ["save_mesh", "runtime.benchmark_clahe", "runtime.device"] {
        assert!(notes.iter().any(|n| n == p), "{p} not in {notes:?}");
    }
    let cuda = loaded.notes.iter().find(|n| n.path == "runtime.device").unwrap();
    assert!(cuda.message.contains("runs on the CPU"), "{}", cuda.message);
    // A preset named in the file is not applied at run time.
    assert_eq!(loaded.config.reconstruction.num_depths, 128);
}

#[test]
fn aquamvs_1_7_keys_are_accepted_and_checked() {
    let text =
        format!("{MINIMAL}dense_matching:\n  roma_anchor_width: 640\n  roma_anchor_height: 480\n");
    let d = parse(&text).unwrap().config.dense_matching;
    assert_eq!((d.roma_anchor_width, d.roma_anchor_height), (640, 480));
    let text = format!("{MINIMAL}dense_matching:\n  roma_anchor_width: 500\n");
    let issue = one_issue(&text, "dense_matching.roma_anchor_width");
    assert!(issue.message.contains("multiple of 16"), "{}", issue.message);
    assert_eq!(issue.pos.map(|p| p.line), Some(6));
}

fn parse_with(text: &str, flags: &[&str]) -> Result<LoadedConfig, ConfigError> {
    let overrides: Vec<Override> = flags.iter().map(|f| f.parse().unwrap()).collect();
    parse_str_with(text, Path::new("/proj/config.yaml"), Path::new("/proj"), &overrides)
}

#[test]
fn overrides_replace_values_before_validation() {
    let text = format!("{MINIMAL}matcher_type: roma\nreconstruction:\n  num_depths: 0\n");
    assert!(parse(&text).is_err());
    let loaded = parse_with(
        &text,
        &[
            "matcher_type=classical",
            "num_depths=64",
            "runtime.viz_stages=[depth, rig]",
            "mask_dir=masks",
            "camera_input_map.cam2=images/cam2",
        ],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.matcher_type, MatcherType::Classical);
    assert_eq!(c.reconstruction.num_depths, 64);
    assert_eq!(c.runtime.viz_stages, [VizStage::Depth, VizStage::Rig]);
    // Paths resolve against the config's folder, as in the file.
    assert_eq!(c.mask_dir, Some(PathBuf::from("/proj/masks")));
    assert_eq!(c.camera_input_map.len(), 2);
    // `locate` names the flag.
    assert_eq!(loaded.locate("reconstruction.num_depths"), "`--set num_depths=64`");
    assert_eq!(loaded.locate("output_dir"), "/proj/config.yaml:2:13");
    // On an empty file the overrides are the whole config.
    let loaded =
        parse_with("", &["calibration_path=c.json", "output_dir=o", "camera_input_map={a: x}"])
            .unwrap();
    assert_eq!(loaded.config.calibration_path, PathBuf::from("/proj/c.json"));
}

#[test]
fn override_problems_name_the_flag() {
    let err =
        parse_with(MINIMAL, &["window_size=4", "reconstruction.nope=1", "quiet=[1"]).unwrap_err();
    let issues = err.issues();
    assert_eq!(issues.len(), 3, "{issues:#?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "reconstruction.window_size: must be odd, ≥ 3 and ≤ 99, got 4 (given by `--set window_size=4`)"
        ),
        "{text}"
    );
    assert!(text.contains("--set reconstruction.nope=1: unknown key"), "{text}");
    assert!(text.contains("--set quiet=[1: the value is not a YAML value"), "{text}");
    // No line of the file is blamed for a flag.
    assert!(issues.iter().all(|i| i.pos.is_none()), "{issues:#?}");
    // Ambiguous short names list the candidates, if any field names repeat.
    let paths = overrides::field_paths();
    let leaves: Vec<&str> = paths.iter().filter_map(|p| p.rsplit('.').next()).collect();
    if let Some(dup) = leaves.iter().find(|l| leaves.iter().filter(|m| m == l).count() > 1) {
        let msg = overrides::resolve_key(dup, &paths, &[]).unwrap_err().to_string();
        assert!(msg.contains("ambiguous"), "{msg}");
    }
}

#[test]
fn byte_order_mark_and_crlf_are_not_content() {
    let plain = parse(MINIMAL).unwrap().config;
    let windows = format!("\u{feff}{}", MINIMAL.replace('\n', "\r\n"));
    assert_eq!(parse(&windows).unwrap().config, plain);
}

#[test]
fn syntax_error_has_a_line() {
    let err = parse("calibration_path: [a\noutput_dir: b\n").unwrap_err();
    match err {
        ConfigError::Syntax { pos, .. } => assert_eq!(pos.map(|p| p.line), Some(2)),
        other => panic!("{other}"),
    }
}

#[test]
fn missing_config_file_names_it() {
    let err = load(Path::new("/definitely/not/here.yaml")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/definitely/not/here.yaml"), "{msg}");
    assert!(matches!(err, ConfigError::Read { .. }));
}

#[test]
fn written_yaml_reads_back_identically_with_every_field() {
    let mut c = Config {
        calibration_path: "calib.json".into(),
        output_dir: "out dir".into(),
        ..Config::default()
    };
    c.camera_input_map.insert("cam 1".into(), "images/cam 1".into());
    c.camera_input_map.insert("e3v8250".into(), "videos/e3v8250.mp4".into());
    c.reconstruction.depth_range = Some(DepthRange::Fixed { min: 0.3, max: 0.9 });
    c.reconstruction.bpa_radii = Some(vec![0.001, 0.002]);
    c.runtime.viz_stages = vec![VizStage::Depth, VizStage::Rig];
    c.preprocessing.frame_stop = Some(10);
    let text = c.to_yaml();
    for info in Config::field_infos_all() {
        let key = info.path.rsplit('.').next().unwrap();
        assert!(text.contains(&format!("{key}:")), "{key} missing from\n{text}");
    }
    let back = parse_str(&text, Path::new("x.yaml"), Path::new("")).unwrap().config;
    assert_eq!(back, c);

    c.reconstruction.depth_range = Some(DepthRange::Auto);
    let back = parse_str(&c.to_yaml(), Path::new("x.yaml"), Path::new("")).unwrap().config;
    assert_eq!(back.reconstruction.depth_range, Some(DepthRange::Auto));
}

#[test]
fn key_order_follows_the_reference() {
    let text = Config::default().to_yaml();
    let order = [
        "calibration_path:",
        "output_dir:",
        "camera_input_map:",
        "mask_dir:",
        "pipeline_mode:",
        "matcher_type:",
        "quality_preset:",
        "preprocessing:",
        "sparse_matching:",
        "dense_matching:",
        "reconstruction:",
        "runtime:",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn field_docs_cover_every_field() {
    let infos = Config::field_infos_all();
    assert!(infos.iter().all(|f| !f.doc.is_empty()), "undocumented field");
    assert!(infos.iter().any(|f| f.path == "reconstruction.num_depths" && f.default == "128"));
    let n_sections = Preprocessing::KEYS.len()
        + SparseMatching::KEYS.len()
        + DenseMatching::KEYS.len()
        + Reconstruction::KEYS.len()
        + Runtime::KEYS.len();
    assert_eq!(infos.len(), Config::KEYS.len() - 5 + n_sections);
}

#[test]
fn empty_file_reports_required_fields() {
    let paths: Vec<String> = issues("").into_iter().map(|i| i.path).collect();
    assert_eq!(paths, ["calibration_path", "output_dir", "camera_input_map"]);
}

#[test]
fn poisson_limit_is_the_solvers() {
    assert_eq!(MAX_POISSON_DEPTH, crate::surface::poisson::MAX_DEPTH as usize);
}
