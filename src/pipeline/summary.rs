//! Summaries of an output folder: every run report in it (`run.json`, and the
//! `run_shard_K_of_N.json` of sharded runs) merged into one account of the frames, written
//! as `summary/summary.json` and `summary/timeseries.csv` (one row per frame).
//!
//! Merging rules: the newest report (by start time) sets the config fingerprint; reports of a
//! different config are ignored and listed. For a frame present in several reports the newest
//! report's outcome counts. A frame is *missing* when some report selected it and no report
//! processed it (a shard that never ran, or a run stopped before reaching it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::io::atomic::write_bytes_atomic;

use super::PipelineError;
use super::report::{FrameOutcome, FrameStatus, RunReport};

/// A run report that was not merged, and why.
#[derive(Clone, Debug, Serialize)]
pub struct IgnoredReport {
    /// File name in the output folder.
    pub file: String,
    /// Why it was left out.
    pub reason: String,
}

/// Mean wall time of one stage.
#[derive(Clone, Debug, Serialize)]
pub struct StageTiming {
    /// Stage name.
    pub stage: String,
    /// Mean over the frames that ran it (seconds).
    pub mean_seconds: f64,
    /// Frames that ran it.
    pub frames: usize,
}

/// A failed or degraded frame.
#[derive(Clone, Debug, Serialize)]
pub struct FailedFrame {
    /// Frame index.
    pub index: usize,
    /// Why it failed, or which cameras it lost.
    pub error: String,
}

/// One row of the time series (one frame).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeseriesRow {
    /// Frame index.
    pub frame: usize,
    /// `done`, `degraded` (computed without a camera whose image could not be read),
    /// `skipped` (up to date from an earlier run), `failed` or `missing`.
    pub status: String,
    /// Points of the fused (or sparse) cloud as written.
    pub points: Option<usize>,
    /// Fraction of all ring cameras' pixels with a depth after the consistency filter.
    pub coverage: Option<f64>,
    /// Mean height (world Z, m) of the cloud.
    pub height_mean: Option<f64>,
    /// Standard deviation of the height (m).
    pub height_std: Option<f64>,
    /// Wall time of the frame's computation (seconds).
    pub seconds: Option<f64>,
}

/// Everything the run reports of an output folder say together.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The output folder.
    pub output_dir: PathBuf,
    /// Run reports merged, oldest first.
    pub reports: Vec<String>,
    /// Run reports left out.
    pub ignored_reports: Vec<IgnoredReport>,
    /// Config fingerprint of the merged reports.
    pub config_fingerprint: String,
    /// Frames selected by the merged reports.
    pub frames_selected: usize,
    /// Frames computed by their latest run.
    pub n_done: usize,
    /// Frames computed by their latest run without every camera (degraded).
    pub n_degraded: usize,
    /// Frames found up to date by their latest run.
    pub n_skipped: usize,
    /// Frames whose latest run failed.
    pub n_failed: usize,
    /// Selected frames that no run processed.
    pub missing_frames: Vec<usize>,
    /// Failed frames and why.
    pub failed_frames: Vec<FailedFrame>,
    /// Degraded frames and the cameras they lost.
    pub degraded_frames: Vec<FailedFrame>,
    /// Mean time of each stage over the frames with a report (done or skipped), in run order.
    pub stage_mean_seconds: Vec<StageTiming>,
    /// Sum of the frames' computation times (seconds).
    pub frame_seconds_total: f64,
    /// Sum of the merged runs' wall times (seconds).
    pub run_seconds_total: f64,
    /// One row per frame, by index.
    pub timeseries: Vec<TimeseriesRow>,
}

impl Summary {
    /// Whether every selected frame is done or up to date (none failed, degraded or
    /// missing).
    pub fn is_complete(&self) -> bool {
        self.n_failed == 0 && self.n_degraded == 0 && self.missing_frames.is_empty()
    }
}

/// Whether `name` is a run report's file name.
fn is_report_name(name: &str) -> bool {
    crate::layout::OutputLayout::is_run_report(name)
}

/// Reads and merges the run reports of `output_dir`.
pub fn summarize(output_dir: &Path) -> Result<Summary, PipelineError> {
    if !output_dir.is_dir() {
        return Err(PipelineError::Setup(format!(
            "output folder {} does not exist",
            output_dir.display()
        )));
    }
    let entries = std::fs::read_dir(output_dir)
        .map_err(|e| PipelineError::Setup(format!("cannot list {}: {e}", output_dir.display())))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| is_report_name(n))
        .collect();
    names.sort();
    let mut ignored = Vec::new();
    let mut reports: Vec<(String, RunReport)> = Vec::new();
    for name in names {
        let path = output_dir.join(&name);
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<RunReport>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => reports.push((name, r)),
            Err(e) => {
                ignored.push(IgnoredReport { file: name, reason: format!("unreadable: {e}") })
            }
        }
    }
    // Oldest first; the file name breaks ties so the order is stable.
    reports.sort_by(|(na, a), (nb, b)| a.started_unix.cmp(&b.started_unix).then(na.cmp(nb)));
    let Some((_, newest)) = reports.last() else {
        return Err(PipelineError::Setup(format!(
            "no run report (run.json or run_shard_K_of_N.json) in {}: is it the output_dir of \
             a reconstruct run?{}",
            output_dir.display(),
            ignored.iter().map(|i| format!("\n  {}: {}", i.file, i.reason)).collect::<String>()
        )));
    };
    let fingerprint = newest.config_fingerprint.clone();
    let (kept, other): (Vec<_>, Vec<_>) =
        reports.into_iter().partition(|(_, r)| r.config_fingerprint == fingerprint);
    for (name, r) in other {
        ignored.push(IgnoredReport {
            file: name,
            reason: format!(
                "from a different config (fingerprint {}, newest {fingerprint}); delete it if \
                 it is stale",
                r.config_fingerprint
            ),
        });
    }

    let mut selected = BTreeSet::new();
    let mut latest: BTreeMap<usize, &FrameOutcome> = BTreeMap::new();
    let mut run_seconds_total = 0.0;
    for (_, r) in &kept {
        let sel =
            if r.frames_selected.is_empty() { &r.frames_requested } else { &r.frames_selected };
        selected.extend(sel.iter().copied());
        for f in &r.frames {
            latest.insert(f.index, f);
        }
        run_seconds_total += r.seconds;
    }
    let count = |s: FrameStatus| latest.values().filter(|f| f.status == s).count();
    let with_status = |s: FrameStatus| -> Vec<FailedFrame> {
        latest
            .values()
            .filter(|f| f.status == s)
            .map(|f| FailedFrame { index: f.index, error: f.error.clone().unwrap_or_default() })
            .collect()
    };
    let all: BTreeSet<usize> = selected.iter().chain(latest.keys()).copied().collect();

    let mut stages: Vec<(String, f64, usize)> = Vec::new();
    for f in latest.values() {
        let Some(report) = &f.report else { continue };
        let mut per_frame: Vec<(&str, f64)> = Vec::new();
        for (name, s) in &report.stage_seconds {
            match per_frame.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 += s,
                None => per_frame.push((name, *s)),
            }
        }
        for (name, s) in per_frame {
            match stages.iter_mut().find(|(n, ..)| n == name) {
                Some(entry) => {
                    entry.1 += s;
                    entry.2 += 1;
                }
                None => stages.push((name.to_owned(), s, 1)),
            }
        }
    }

    let timeseries = all
        .iter()
        .map(|&frame| match latest.get(&frame) {
            Some(f) => {
                let r = f.report.as_ref();
                TimeseriesRow {
                    frame,
                    status: f.status.as_str().into(),
                    points: r.map(|r| r.n_cloud_points),
                    coverage: r.and_then(|r| r.coverage),
                    height_mean: r.and_then(|r| r.height_mean),
                    height_std: r.and_then(|r| r.height_std),
                    seconds: Some(f.seconds),
                }
            }
            None => TimeseriesRow {
                frame,
                status: "missing".into(),
                points: None,
                coverage: None,
                height_mean: None,
                height_std: None,
                seconds: None,
            },
        })
        .collect();

    Ok(Summary {
        output_dir: output_dir.to_path_buf(),
        reports: kept.iter().map(|(n, _)| n.clone()).collect(),
        ignored_reports: ignored,
        config_fingerprint: fingerprint,
        frames_selected: selected.len(),
        n_done: count(FrameStatus::Done),
        n_degraded: count(FrameStatus::Degraded),
        n_skipped: count(FrameStatus::Skipped),
        n_failed: count(FrameStatus::Failed),
        missing_frames: selected.iter().filter(|i| !latest.contains_key(i)).copied().collect(),
        failed_frames: with_status(FrameStatus::Failed),
        degraded_frames: with_status(FrameStatus::Degraded),
        stage_mean_seconds: stages
            .into_iter()
            .map(|(stage, sum, frames)| StageTiming {
                stage,
                mean_seconds: sum / frames as f64,
                frames,
            })
            .collect(),
        frame_seconds_total: latest.values().map(|f| f.seconds).sum(),
        run_seconds_total,
        timeseries,
    })
}

/// The time series as CSV: `frame,status,points,coverage,height_mean,height_std,seconds`,
/// empty cells where a value does not exist.
pub fn timeseries_csv(summary: &Summary) -> String {
    fn cell<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_default()
    }
    let mut out = String::from("frame,status,points,coverage,height_mean,height_std,seconds\n");
    for r in &summary.timeseries {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.frame,
            r.status,
            cell(r.points),
            cell(r.coverage.map(|v| format!("{v:.6}"))),
            cell(r.height_mean.map(|v| format!("{v:.6}"))),
            cell(r.height_std.map(|v| format!("{v:.6}"))),
            cell(r.seconds.map(|v| format!("{v:.3}"))),
        );
    }
    out
}

/// Writes `summary/summary.json` and `summary/timeseries.csv` into the summary's output
/// folder; returns their paths.
pub fn write_summary(summary: &Summary) -> Result<Vec<PathBuf>, PipelineError> {
    let layout = crate::layout::OutputLayout::new(&summary.output_dir);
    let json =
        serde_json::to_string_pretty(summary).map_err(|e| PipelineError::Frame(e.to_string()))?;
    let json_path = layout.summary_file("summary.json");
    write_bytes_atomic(&json_path, json.as_bytes())?;
    let csv_path = layout.summary_file("timeseries.csv");
    write_bytes_atomic(&csv_path, timeseries_csv(summary).as_bytes())?;
    Ok(vec![json_path, csv_path])
}

/// `0-3, 7, 9-10`: sorted indices as ranges.
pub fn describe_indices(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Output:  {}", self.output_dir.display())?;
        writeln!(f, "Reports: {}", self.reports.join(", "))?;
        for i in &self.ignored_reports {
            writeln!(f, "  ignored {}: {}", i.file, i.reason)?;
        }
        writeln!(f)?;
        writeln!(f, "| frames | count |")?;
        writeln!(f, "|---|---:|")?;
        writeln!(f, "| selected | {} |", self.frames_selected)?;
        writeln!(f, "| done | {} |", self.n_done)?;
        writeln!(f, "| degraded (a camera lost) | {} |", self.n_degraded)?;
        writeln!(f, "| skipped (up to date) | {} |", self.n_skipped)?;
        writeln!(f, "| failed | {} |", self.n_failed)?;
        writeln!(f, "| missing | {} |", self.missing_frames.len())?;
        writeln!(f)?;
        if !self.stage_mean_seconds.is_empty() {
            writeln!(f, "| stage | mean (s) | frames |")?;
            writeln!(f, "|---|---:|---:|")?;
            for s in &self.stage_mean_seconds {
                writeln!(f, "| {} | {:.3} | {} |", s.stage, s.mean_seconds, s.frames)?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "Time: {:.1} s of frame computation; the merged runs took {:.1} s (wall, summed)",
            self.frame_seconds_total, self.run_seconds_total
        )?;
        writeln!(f, "Missing frames: {}", describe_indices(&self.missing_frames))?;
        for failed in &self.failed_frames {
            writeln!(f, "Failed frame {}: {}", failed.index, failed.error)?;
        }
        for degraded in &self.degraded_frames {
            writeln!(f, "Degraded frame {}: {}", degraded.index, degraded.error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
            error: matches!(status, FrameStatus::Failed | FrameStatus::Degraded)
                .then(|| "boom".into()),
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
}
