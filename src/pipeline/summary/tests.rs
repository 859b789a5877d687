//! Tests of merging run reports into a summary.

use super::*;
use crate::pipeline::FrameReport;
use crate::pipeline::Shard;

fn outcome(index: usize, status: FrameStatus, points: usize) -> FrameOutcome {
    let report = (status != FrameStatus::Failed).then(|| FrameReport {
        index,
        stage_seconds: vec![("fusion".into(), 1.0 + index as f64), ("surface".into(), 0.5)],
        n_cloud_points: points,
        height_mean: Some(-0.1),
        height_std: Some(0.01),
        coverage: Some(0.5),
        ..FrameReport::default()
    });
    FrameOutcome {
        index,
        status,
        reason: None,
        error: matches!(status, FrameStatus::Failed | FrameStatus::Degraded).then(|| "boom".into()),
        seconds: 2.0,
        report,
    }
}

fn report(shard: Option<Shard>, started: u64, frames: Vec<FrameOutcome>) -> RunReport {
    RunReport {
        aquamvs_version: "0".into(),
        config: "c.yaml".into(),
        config_fingerprint: "f".into(),
        output_dir: "o".into(),
        ring_cameras: vec![],
        auxiliary_cameras: vec![],
        shard,
        force: false,
        frames_selected: (0..6).collect(),
        frames_requested: frames.iter().map(|f| f.index).collect(),
        frames,
        started_unix: started,
        seconds: 10.0,
    }
}

fn write(dir: &Path, r: &RunReport) {
    let name = r.file_name();
    std::fs::write(dir.join(name), serde_json::to_string(r).unwrap()).unwrap();
}

#[test]
fn merges_shards_newest_wins_and_lists_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = |k| Some(Shard::new(k, 3).unwrap());
    // Shard 0 (frames 0, 3), shard 1 (frames 1, 4: 4 failed, then redone by a newer run);
    // shard 2 never ran: frames 2 and 5 are missing.
    write(
        dir,
        &report(
            s(0),
            100,
            vec![outcome(0, FrameStatus::Done, 10), outcome(3, FrameStatus::Degraded, 30)],
        ),
    );
    write(
        dir,
        &report(
            None,
            50,
            vec![outcome(1, FrameStatus::Failed, 0), outcome(4, FrameStatus::Failed, 0)],
        ),
    );
    write(
        dir,
        &report(
            s(1),
            200,
            vec![outcome(1, FrameStatus::Skipped, 11), outcome(4, FrameStatus::Done, 40)],
        ),
    );
    let mut other = report(s(2), 10, vec![outcome(2, FrameStatus::Done, 20)]);
    other.config_fingerprint = "old".into();
    write(dir, &other);
    std::fs::write(dir.join("run_shard_9_of_10.json"), "{ trunc").unwrap();

    let sum = summarize(dir).unwrap();
    assert_eq!(sum.reports, ["run.json", "run_shard_0_of_3.json", "run_shard_1_of_3.json"]);
    let ignored: Vec<&str> = sum.ignored_reports.iter().map(|i| i.file.as_str()).collect();
    assert_eq!(ignored, ["run_shard_9_of_10.json", "run_shard_2_of_3.json"]);
    assert_eq!((sum.frames_selected, sum.n_done, sum.n_skipped, sum.n_failed), (6, 2, 1, 0));
    assert_eq!(sum.n_degraded, 1);
    assert_eq!(sum.degraded_frames.len(), 1);
    assert_eq!(sum.degraded_frames[0].index, 3);
    assert_eq!(sum.missing_frames, [2, 5]);
    assert!(!sum.is_complete());
    assert_eq!(sum.stage_mean_seconds[0].stage, "fusion");
    // Fusion times 1, 2, 4, 5 (frames 0, 1, 3, 4).
    assert!((sum.stage_mean_seconds[0].mean_seconds - 3.0).abs() < 1e-12);
    assert_eq!(sum.stage_mean_seconds[1].frames, 4);
    assert!((sum.frame_seconds_total - 8.0).abs() < 1e-12);
    assert!((sum.run_seconds_total - 30.0).abs() < 1e-12);

    let csv = timeseries_csv(&sum);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0], "frame,status,points,coverage,height_mean,height_std,seconds");
    assert_eq!(lines[2], "1,skipped,11,0.500000,-0.100000,0.010000,2.000");
    assert_eq!(lines[3], "2,missing,,,,,");
    assert!(lines[4].starts_with("3,degraded,30,"), "{}", lines[4]);
    let text = sum.to_string();
    assert!(text.contains("| missing | 2 |"), "{text}");
    assert!(text.contains("Missing frames: 2, 5"), "{text}");
    assert!(text.contains("| degraded (a camera lost) | 1 |"), "{text}");
    assert!(text.contains("Degraded frame 3: boom"), "{text}");
    let paths = write_summary(&sum).unwrap();
    assert_eq!(std::fs::read_to_string(&paths[1]).unwrap(), csv);
}

#[test]
fn cloud_height_statistics() {
    use nalgebra::Point3;
    let mut report = FrameReport::default();
    let cloud = crate::cloud::PointCloud::new(
        [1.0, 2.0, 3.0].iter().map(|&z| Point3::new(0.5, -1.0, z)).collect(),
    );
    report.record_cloud(&cloud);
    assert_eq!(report.n_cloud_points, 3);
    assert_eq!(report.height_mean, Some(2.0));
    assert!((report.height_std.unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
    report.record_cloud(&crate::cloud::PointCloud::default());
    assert_eq!((report.n_cloud_points, report.height_mean, report.height_std), (0, None, None));
}

#[test]
fn errors_and_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let err = summarize(&tmp.path().join("nope")).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    let err = summarize(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("no run report"), "{err}");
    assert_eq!(describe_indices(&[0, 1, 2, 3, 7, 9, 10]), "0-3, 7, 9-10");
    assert_eq!(describe_indices(&[]), "none");
}
