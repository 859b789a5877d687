//! Summaries of an output folder: every run report in it (`run.json`, and the
//! `run_shard_K_of_N.json` of sharded runs) merged into one account of the frames, written
//! as `summary/summary.json` and `summary/timeseries.csv` (one row per frame).
//!
//! Merging rules: the newest report (by start time) sets the config fingerprint; reports of a
//! different config are ignored and listed. For a frame present in several reports the newest
//! report's outcome counts. A frame is *missing* when some report selected it and no report
//! processed it (a shard that never ran, or a run stopped before reaching it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

mod text;

pub use text::{describe_indices, timeseries_csv};

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
        return Err(PipelineError::NoOutputFolder(output_dir.to_owned()));
    }
    let entries = std::fs::read_dir(output_dir)
        .map_err(|source| PipelineError::ListFolder { path: output_dir.to_owned(), source })?;
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
        return Err(PipelineError::NoRunReport {
            dir: output_dir.to_owned(),
            unreadable: ignored.into_iter().map(|i| (i.file, i.reason)).collect(),
        });
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

/// Writes `summary/summary.json` and `summary/timeseries.csv` into the summary's output
/// folder; returns their paths.
pub fn write_summary(summary: &Summary) -> Result<Vec<PathBuf>, PipelineError> {
    let layout = crate::layout::OutputLayout::new(&summary.output_dir);
    let json = serde_json::to_string_pretty(summary)?;
    let json_path = layout.summary_file("summary.json");
    write_bytes_atomic(&json_path, json.as_bytes())?;
    let csv_path = layout.summary_file("timeseries.csv");
    write_bytes_atomic(&csv_path, timeseries_csv(summary).as_bytes())?;
    Ok(vec![json_path, csv_path])
}

#[cfg(test)]
mod tests;
