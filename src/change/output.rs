//! Files of the change analysis: where they go, and writing them.
//!
//! ```text
//! OUTPUT/frame_NNNNNN/heightmap/height.npz, height.tif   per frame (reconstruct)
//! OUTPUT/change/AAAAAA_BBBBBB.{npz,json,png}            one comparison (change)
//! OUTPUT/summary/change.csv, change.png                 a series (change --series, summarize)
//! ```
//!
//! Every path is built by [`path`], so the layout lives in one place. The pictures among these
//! files are drawn by the front layer through [`ChangePictures`] (as a run's pictures are
//! through [`crate::pipeline::Pictures`]): this module writes them, it does not draw them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::truth::TruthReport;
use super::{ChangeError, ChangeMap, ChangeStats};
use crate::heightmap::HeightMap;
use crate::heightmap::vector;
use crate::imgproc::RgbImage;
use crate::io::atomic::write_bytes_atomic;
use crate::io::images::write_png_rgb;
use crate::io::npz::{ArrayRef, Compression, write_npz_with};
use crate::layout::{OutputLayout, sub};

/// Draws the pictures of the change analysis. Implemented by the front layer
/// (`viz::change::ChangePainter`); the change files call it where they write each picture.
pub trait ChangePictures: Sync {
    /// The difference map of frame `from` → `to` over frame A (`a`), for `change/A_B.png`.
    fn pair(&self, change: &ChangeMap, a: &HeightMap, from: usize, to: usize) -> RgbImage;

    /// The moved volume of a series over time, for `summary/change.png`.
    fn series(&self, rows: &[SeriesRow], consecutive: bool) -> RgbImage;
}

/// The files of the change analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeFile {
    /// The folder of a frame's height map.
    HeightMapDir(usize),
    /// A frame's `height.npz`.
    HeightMap(usize),
    /// A comparison's file with extension `ext` (`npz`, `json`, `png`).
    Pair {
        /// Frame A.
        from: usize,
        /// Frame B.
        to: usize,
        /// Extension.
        ext: &'static str,
    },
    /// `summary/change.csv`.
    SeriesCsv,
    /// `summary/change.png`.
    SeriesPlot,
}

/// Where `file` lives under the output folder `output` (built by the output layout).
pub fn path(output: &Path, file: ChangeFile) -> PathBuf {
    let layout = OutputLayout::new(output);
    match file {
        ChangeFile::HeightMapDir(f) => layout.frame(f).sub_dir(sub::HEIGHTMAP),
        ChangeFile::HeightMap(f) => layout.frame(f).heightmap("height.npz").path,
        ChangeFile::Pair { from, to, ext } => layout.change_file(from, to, ext),
        ChangeFile::SeriesCsv => layout.summary_file("change.csv"),
        ChangeFile::SeriesPlot => layout.summary_file("change.png"),
    }
}

/// Frames of `output` that have a height map, in order.
pub fn frames_with_height_maps(output: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(output) else { return Vec::new() };
    let mut frames: Vec<usize> = entries
        .flatten()
        .filter_map(|e| OutputLayout::parse_frame_dir(e.file_name().to_str()?))
        .filter(|&f| path(output, ChangeFile::HeightMap(f)).is_file())
        .collect();
    frames.sort_unstable();
    frames
}

/// `change/A_B.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    /// Always `aquamvs-change`.
    pub format: String,
    /// Frame A (the reference).
    pub from: usize,
    /// Frame B.
    pub to: usize,
    /// How the region of interest was given (`whole grid`, `polygon …`, `mask …`).
    pub region: String,
    /// The figures.
    #[serde(flatten)]
    pub stats: ChangeStats,
    /// The comparison scored against a synthetic scene's truth (`--ground-truth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<TruthReport>,
    /// Seconds the comparison took (reading, comparing, writing).
    pub seconds: f64,
}

/// Writes `change/A_B.npz`, `.json` and `.png` (drawn by `pictures`); returns the paths.
pub fn write_pair(
    output: &Path,
    change: &ChangeMap,
    a: &HeightMap,
    report: &PairReport,
    pictures: &dyn ChangePictures,
) -> Result<Vec<PathBuf>, ChangeError> {
    let (from, to) = (report.from, report.to);
    let file = |ext| path(output, ChangeFile::Pair { from, to, ext });
    let (npz, json, png) = (file("npz"), file("json"), file("png"));
    let g = &change.grid;
    let (w, h) = (g.size.width, g.size.height);
    let origin = g.origin;
    let spacing = [g.spacing];
    let arrays = [
        ("dz", ArrayRef::image(&change.dz)),
        ("lod", ArrayRef::image(&change.lod)),
        ("status", ArrayRef::i32_2d(h, w, &change.status).map_err(file_error(&npz))?),
        ("origin", vector(&origin).map_err(file_error(&npz))?),
        ("spacing", vector(&spacing).map_err(file_error(&npz))?),
    ];
    write_npz_with(&npz, &arrays, Compression::Deflated).map_err(file_error(&npz))?;
    let text = serde_json::to_string_pretty(report).map_err(file_error(&json))?;
    write_bytes_atomic(&json, text.as_bytes()).map_err(file_error(&json))?;
    write_png_rgb(&png, &pictures.pair(change, a, from, to)).map_err(file_error(&png))?;
    Ok(vec![npz, json, png])
}

/// The error of a change file that could not be written at `path`.
pub(super) fn file_error<E: std::error::Error + Send + Sync + 'static>(
    path: &Path,
) -> impl FnOnce(E) -> ChangeError + '_ {
    move |e| ChangeError::File { path: path.to_owned(), source: Box::new(e) }
}

/// One row of `summary/change.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    /// The frame.
    pub frame: usize,
    /// The frame it was compared with.
    pub reference: usize,
    /// The comparison's figures.
    pub stats: ChangeStats,
}

/// The header of `summary/change.csv`.
pub const SERIES_HEADER: &str = "frame,reference,gained_cm3,gained_sigma_cm3,lost_cm3,\
lost_sigma_cm3,net_cm3,net_sigma_cm3,moved_cm3,cumulative_moved_cm3,raw_gained_cm3,\
raw_lost_cm3,raw_net_cm3,area_compared_m2,cells_occluded";

/// `summary/change.csv`: one row per comparison; `cumulative_moved_cm3` sums the moved
/// (gained + lost, thresholded) volumes of the rows so far, which is the sediment moved over
/// time when each frame is compared with the previous one.
pub fn series_csv(rows: &[SeriesRow]) -> String {
    let mut out = format!("{SERIES_HEADER}\n");
    let mut cumulative = 0.0;
    for r in rows {
        let (t, raw) = (&r.stats.thresholded, &r.stats.raw);
        cumulative += t.moved_cm3();
        out.push_str(&format!(
            "{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.6},{}\n",
            r.frame,
            r.reference,
            t.gained_cm3,
            t.gained_sigma_cm3,
            t.lost_cm3,
            t.lost_sigma_cm3,
            t.net_cm3,
            t.net_sigma_cm3,
            t.moved_cm3(),
            cumulative,
            raw.gained_cm3,
            raw.lost_cm3,
            raw.net_cm3,
            r.stats.area_compared_m2,
            r.stats.cells_occluded
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_in_one_place() {
        let o = Path::new("out");
        assert_eq!(
            path(o, ChangeFile::HeightMap(3)),
            Path::new("out/frame_000003/heightmap/height.npz")
        );
        assert_eq!(
            path(o, ChangeFile::Pair { from: 0, to: 12, ext: "json" }),
            Path::new("out/change/000000_000012.json")
        );
        assert_eq!(path(o, ChangeFile::SeriesCsv), Path::new("out/summary/change.csv"));
    }

    #[test]
    fn the_csv_accumulates_moved_volume() {
        let row = |frame, gained, lost| {
            let mut stats = ChangeStats::default();
            stats.thresholded.gained_cm3 = gained;
            stats.thresholded.lost_cm3 = lost;
            stats.thresholded.net_cm3 = gained - lost;
            SeriesRow { frame, reference: frame - 1, stats }
        };
        let rows = [row(1, 10.0, 2.0), row(2, 5.0, 5.0)];
        let csv = series_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let cols: Vec<&str> = lines[2].split(',').collect();
        assert_eq!(cols.len(), SERIES_HEADER.split(',').count());
        assert_eq!(cols[8], "10.000");
        assert_eq!(cols[9], "22.000");
    }
}
