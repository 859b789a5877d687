//! A comparison scored against a synthetic scene's ground truth (`aquamvs change
//! --ground-truth`): the true change at every compared cell, the exact volumes of a `bower`
//! sequence, and what was reported under the fish.

use serde::{Deserialize, Serialize};

use super::{CellStatus, ChangeMap};
use crate::synth::surface::{Fish, SurfaceModel, bower_change_volumes};

/// Tolerance of [`TruthReport::within_1mm_fraction`] (m).
pub const TOLERANCE_M: f64 = 0.001;

/// How a comparison matches the truth.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthReport {
    /// Exact volume gained over the whole scene (cm³), when the scene's change is analytic
    /// (a `bower` sequence).
    pub exact_gained_cm3: Option<f64>,
    /// Exact volume lost over the whole scene (cm³), likewise.
    pub exact_lost_cm3: Option<f64>,
    /// The true change summed over the compared cells: gained (cm³).
    pub compared_true_gained_cm3: f64,
    /// The true change summed over the compared cells: lost (cm³).
    pub compared_true_lost_cm3: f64,
    /// Fraction of the compared cells whose change is within 1 mm of the truth.
    pub within_1mm_fraction: f64,
    /// Median |measured − true change| over the compared cells (mm).
    pub median_abs_error_mm: f64,
    /// Cells under a fish (in either frame).
    pub cells_under_fish: usize,
    /// Cells under a fish reported as significant change (should be none).
    pub cells_under_fish_changed: usize,
}

/// Scores `change` (frame A → B) against the true beds `a` and `b` and the fish of each frame.
pub fn evaluate(
    change: &ChangeMap,
    a: &SurfaceModel,
    b: &SurfaceModel,
    fish: [Option<&Fish>; 2],
) -> TruthReport {
    let grid = &change.grid;
    let w = grid.size.width;
    let cm3 = grid.cell_area() * 1e6;
    let mut report = TruthReport::default();
    let mut errors = Vec::new();
    for (k, &st) in change.status.iter().enumerate() {
        let (x, y) = grid.centre(k % w, k / w);
        if fish.iter().flatten().any(|f| f.covers(x, y)) {
            report.cells_under_fish += 1;
            if st == CellStatus::Gain as i32 || st == CellStatus::Loss as i32 {
                report.cells_under_fish_changed += 1;
            }
        }
        let d = change.dz.as_slice()[k];
        if !d.is_finite() {
            continue;
        }
        // Heights are up: Δ = height_B − height_A = z_A − z_B.
        let truth = a.z(x, y) - b.z(x, y);
        if truth > 0.0 {
            report.compared_true_gained_cm3 += truth * cm3;
        } else {
            report.compared_true_lost_cm3 -= truth * cm3;
        }
        errors.push((d as f64 - truth).abs());
    }
    if !errors.is_empty() {
        let n = errors.len() as f64;
        report.within_1mm_fraction =
            errors.iter().filter(|&&e| e <= TOLERANCE_M).count() as f64 / n;
        errors.sort_by(f64::total_cmp);
        report.median_abs_error_mm = errors[errors.len() / 2] * 1e3;
    }
    if let Some((gained, lost)) = bower_change_volumes(a, b) {
        report.exact_gained_cm3 = Some(gained * 1e6);
        report.exact_lost_cm3 = Some(lost * 1e6);
    }
    report
}
