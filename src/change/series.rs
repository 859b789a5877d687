//! Comparisons of a run's frames, as `aquamvs change` and `summarize` run them: read the
//! height maps, build the region of interest, compare, score against a synthetic truth when
//! asked, and write the outputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::output::{
    ChangeFile, ChangePictures, PairReport, SeriesRow, file_error, frames_with_height_maps, path,
    write_pair,
};
use super::roi::RoiError;
use super::{ChangeError, ChangeOptions, compare, roi, truth};
use crate::heightmap::HeightMap;
use crate::synth::scene::GroundTruth;

/// Where the comparison looks.
#[derive(Clone, Debug, PartialEq)]
pub enum Region {
    /// Every cell of the grid.
    Whole,
    /// Cells whose centre is inside a polygon (world x, y in metres).
    Polygon(Vec<[f64; 2]>),
    /// Cells whose bed point projects onto a non-zero pixel of a mask drawn on a camera's
    /// undistorted image.
    Mask {
        /// The camera.
        camera: String,
        /// The mask image.
        mask: PathBuf,
    },
}

/// A comparison job on a run's output folder.
pub struct Request<'a> {
    /// The run's output folder.
    pub output: PathBuf,
    /// Threshold and occlusion rule.
    pub options: ChangeOptions,
    /// Region of interest.
    pub region: Region,
    /// Ground truth of a synthetic scene to score against.
    pub truth: Option<GroundTruth>,
    /// Draws the pictures among the change files (the front layer's painter).
    pub pictures: &'a dyn ChangePictures,
}

/// Reads frame `frame`'s height map of `output`.
pub fn read_height_map(output: &Path, frame: usize) -> Result<HeightMap, ChangeError> {
    let p = path(output, ChangeFile::HeightMap(frame));
    if !p.is_file() {
        let have = frames_with_height_maps(output);
        return Err(ChangeError::NoHeightMap { path: p, frame, have });
    }
    Ok(HeightMap::read(&p)?)
}

impl Request<'_> {
    /// One flag per cell of `a`'s grid, or `None` for the whole grid.
    fn region_flags(&self, a: &HeightMap, b: &HeightMap) -> Result<Option<Vec<bool>>, ChangeError> {
        match &self.region {
            Region::Whole => Ok(None),
            Region::Polygon(p) => Ok(Some(roi::polygon_flags(&a.grid, p))),
            Region::Mask { camera, mask } => {
                let config_path = self.output.join("config.yaml");
                let loaded = crate::config::load(&config_path)
                    .map_err(|source| RoiError::RunConfig { path: config_path, source })?;
                let rig = crate::calib::load_rig(&loaded.config.calibration_path)
                    .map_err(RoiError::from)?;
                let (_, cam) = rig.undistorted_camera(camera).map_err(RoiError::Camera)?;
                let mask_file = |source: Box<dyn std::error::Error + Send + Sync>| {
                    RoiError::MaskFile { path: mask.clone(), source }
                };
                let image =
                    crate::io::images::read_mask(mask).map_err(|e| mask_file(Box::new(e)))?;
                // Frame A's bed where it has one, else frame B's.
                let mut z = a.z.clone();
                for (za, zb) in z.as_mut_slice().iter_mut().zip(b.z.as_slice()) {
                    if !za.is_finite() {
                        *za = *zb;
                    }
                }
                let flags = roi::mask_flags(&a.grid, &z, &cam, &image)
                    .map_err(|e| mask_file(Box::new(e)))?;
                Ok(Some(flags))
            }
        }
    }

    fn describe_region(&self) -> String {
        match &self.region {
            Region::Whole => "whole grid".into(),
            Region::Polygon(p) => {
                let v: Vec<String> = p.iter().map(|[x, y]| format!("{x},{y}")).collect();
                format!("polygon {}", v.join(";"))
            }
            Region::Mask { camera, mask } => format!("mask {} on {camera}", mask.display()),
        }
    }

    /// Compares frame `from` with frame `to` and writes `change/A_B.*`.
    pub fn pair(&self, from: usize, to: usize) -> Result<(PairReport, Vec<PathBuf>), ChangeError> {
        let start = Instant::now();
        let a = read_height_map(&self.output, from)?;
        let b = read_height_map(&self.output, to)?;
        let (a, b) = super::on_common_grid((from, &a), (to, &b))?;
        let flags = self.region_flags(&a, &b)?;
        let change = compare((from, &a), (to, &b), flags.as_deref(), &self.options)?;
        let ground_truth = match &self.truth {
            Some(gt) => {
                let (sa, sb) = (gt.surface(from)?, gt.surface(to)?);
                Some(truth::evaluate(&change, sa, sb, [gt.fish(from), gt.fish(to)]))
            }
            None => None,
        };
        let mut report = PairReport {
            format: "aquamvs-change".into(),
            from,
            to,
            region: self.describe_region(),
            stats: change.stats.clone(),
            ground_truth,
            seconds: 0.0,
        };
        // The time of reading and comparing; writing is a few more milliseconds.
        report.seconds = start.elapsed().as_secs_f64();
        let written = write_pair(&self.output, &change, &a, &report, self.pictures)?;
        Ok((report, written))
    }

    /// Compares every frame with a height map against the first (or, `consecutive`, the
    /// previous), writes each pair and `summary/change.csv` and `summary/change.png`.
    pub fn series(&self, consecutive: bool) -> Result<Vec<SeriesRow>, ChangeError> {
        let frames = frames_with_height_maps(&self.output);
        if frames.len() < 2 {
            return Err(ChangeError::TooFewFrames {
                output: self.output.clone(),
                found: frames.len(),
            });
        }
        let mut rows = Vec::new();
        for w in 1..frames.len() {
            let reference = if consecutive { frames[w - 1] } else { frames[0] };
            let (report, _) = self.pair(reference, frames[w])?;
            rows.push(SeriesRow { frame: frames[w], reference, stats: report.stats });
        }
        write_series(&self.output, &rows, consecutive, self.pictures)?;
        Ok(rows)
    }
}

/// Writes `summary/change.csv` and `summary/change.png` (drawn by `pictures`).
pub fn write_series(
    output: &Path,
    rows: &[SeriesRow],
    consecutive: bool,
    pictures: &dyn ChangePictures,
) -> Result<Vec<PathBuf>, ChangeError> {
    let csv = path(output, ChangeFile::SeriesCsv);
    let png = path(output, ChangeFile::SeriesPlot);
    crate::io::atomic::write_bytes_atomic(&csv, super::output::series_csv(rows).as_bytes())
        .map_err(file_error(&csv))?;
    crate::io::images::write_png_rgb(&png, &pictures.series(rows, consecutive))
        .map_err(file_error(&png))?;
    Ok(vec![csv, png])
}
