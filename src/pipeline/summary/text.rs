//! The summary as text: `summary/timeseries.csv` and the table `aquamvs summarize` prints.

use std::fmt::Write as _;

use super::Summary;

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
