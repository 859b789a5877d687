//! `aquamvs viz` end to end: redraws pictures from an output folder, says what it skipped,
//! and fails cleanly on a folder that is not an output.

use aquamvs::calib::save_rig;
use aquamvs::config::Config;
use aquamvs::io::atomic::write_bytes_atomic;
use aquamvs::io::ply::write_point_cloud;
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use aquamvs::viz::demo::surface_cloud;

use crate::cli::{aquamvs, texts};

#[test]
fn viz_redraws_from_saved_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output");
    let spec = SceneSpec::new(SurfaceKind::Undulating, RigPreset::Tiny, 2);
    save_rig(&dir.path().join("calibration.json"), &spec.rig.build().unwrap()).unwrap();
    let config = Config {
        calibration_path: dir.path().join("calibration.json"),
        output_dir: out.clone(),
        camera_input_map: [("cam00".to_string(), dir.path().join("images/cam00"))].into(),
        ..Config::default()
    };
    write_bytes_atomic(&out.join("config.yaml"), config.to_yaml().as_bytes()).unwrap();
    let cloud = surface_cloud(&spec.surface_at(0), &spec.texture(), 0.15, 0.005, 3);
    write_point_cloud(&out.join("frame_000000/point_cloud/fused.ply"), &cloud).unwrap();

    let run = aquamvs(dir.path(), &["viz", "output", "--stages", "scene,rig"]);
    let (stdout, stderr) = texts(&run);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    for name in ["fused_top", "fused_oblique", "fused_side", "rig"] {
        assert!(out.join(format!("frame_000000/viz/{name}.png")).is_file(), "{name}\n{stdout}");
    }
    assert!(stdout.contains("4 pictures drawn for 1 frame"), "{stdout}");
    assert!(stderr.contains("skipped: frame 0, scene: no mesh/surface.ply"), "{stderr}");

    let missing = aquamvs(dir.path(), &["viz", "nowhere"]);
    let (_, stderr) = texts(&missing);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr.contains("output folder nowhere does not exist"), "{stderr}");

    let bogus = aquamvs(dir.path(), &["viz", "output", "--stages", "scnee"]);
    let (_, stderr) = texts(&bogus);
    assert_eq!(bogus.status.code(), Some(2));
    assert!(stderr.contains("did you mean `scene`"), "{stderr}");
}
