//! Change between frames: the DEM of difference of two height maps, thresholded by a minimum
//! level of detection, and the volumes of sediment gained and lost with their uncertainties.
//!
//! For each cell supported in both frames (and inside the region of interest) the change is
//! `Δz = height_B − height_A` (metres, up positive: a gain is sand added). Its uncertainty is
//! `σ_Δ = √(σ_A² + σ_B²)` from the two cells' spreads, and the change is *significant* when
//! `|Δz| > t·σ_Δ`, the minimum level of detection of geomorphic change detection (Wheaton et al.
//! 2010, "Accounting for uncertainty in DEMs from repeat topographic surveys", ESPL 35). The
//! default `t = 1.96` is the two-sided 95 % confidence of a normal error. Volumes are summed
//! both over the significant cells (thresholded) and over every compared cell (raw); each
//! volume's uncertainty is `cell area · √(Σ σ_Δ²)` over the cells it sums (errors of different
//! cells taken as independent).
//!
//! Occluders: where the points summed over a square of [`ChangeOptions::occluder_window_m`]
//! around a cell fell below [`ChangeOptions::support_drop`] of the other frame's, something
//! (a fish) hid the bed from cameras in one frame: those cells, and a margin of
//! [`ChangeOptions::occluder_margin_m`] around them (where the sweep's window mixed the
//! occluder's depth with the bed's), are reported as occluded and not compared. The sum over
//! a window, not a single cell's count, decides: a 2 mm cell holds a handful of points, and its
//! count alone halves by chance between frames without anything in the way.

pub mod output;
pub mod roi;
pub mod series;
pub mod truth;

use serde::{Deserialize, Serialize};

use crate::heightmap::{Grid, HeightMap};
use crate::imgproc::{GrayImage, ImageSize};

/// Default `t` of the level of detection (two-sided 95 %).
pub const DEFAULT_T: f64 = 1.96;

/// Default fraction of the other frame's support below which a cell counts as occluded.
pub const DEFAULT_SUPPORT_DROP: f64 = 0.5;

/// Default side of the square over which support is summed to find an occluder (m).
pub const DEFAULT_OCCLUDER_WINDOW_M: f64 = 0.01;

/// Default margin around an occluder's footprint that is not compared either (m): the
/// footprint of the plane sweep's window on the bed, where depths mix the occluder's and the
/// bed's.
pub const DEFAULT_OCCLUDER_MARGIN_M: f64 = 0.01;

/// How to compare two height maps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeOptions {
    /// Multiplier of `σ_Δ` in the level of detection.
    pub t: f64,
    /// A cell is occluded in a frame when its support is below this fraction of its support
    /// in the other frame, alone or summed over the occluder window.
    pub support_drop: f64,
    /// Side of the square over which support is summed to find occluders (m).
    pub occluder_window_m: f64,
    /// Margin around an occluder's footprint that is not compared either (m).
    pub occluder_margin_m: f64,
}

impl Default for ChangeOptions {
    fn default() -> Self {
        Self {
            t: DEFAULT_T,
            support_drop: DEFAULT_SUPPORT_DROP,
            occluder_window_m: DEFAULT_OCCLUDER_WINDOW_M,
            occluder_margin_m: DEFAULT_OCCLUDER_MARGIN_M,
        }
    }
}

/// Sums of `values` (a `size` grid, row-major) over the `(2r + 1)²` cells around each cell,
/// clipped at the borders, through a summed-area table.
fn box_sums(values: &[i64], size: ImageSize, r: usize) -> Vec<i64> {
    let (w, h) = (size.width, size.height);
    // table[(j)(w + 1) + i] = sum over rows < j, columns < i.
    let mut table = vec![0i64; (w + 1) * (h + 1)];
    for j in 0..h {
        let mut row = 0;
        for i in 0..w {
            row += values[j * w + i];
            table[(j + 1) * (w + 1) + i + 1] = table[j * (w + 1) + i + 1] + row;
        }
    }
    let mut out = vec![0i64; w * h];
    for j in 0..h {
        let (j0, j1) = (j.saturating_sub(r), (j + r + 1).min(h));
        for i in 0..w {
            let (i0, i1) = (i.saturating_sub(r), (i + r + 1).min(w));
            out[j * w + i] =
                table[j1 * (w + 1) + i1] - table[j0 * (w + 1) + i1] - table[j1 * (w + 1) + i0]
                    + table[j0 * (w + 1) + i0];
        }
    }
    out
}

/// Cells not compared because an occluder hid the bed in one frame: where the points summed
/// over the occluder window fell below `support_drop` of the other frame's (the denser frame
/// holding at least half a point per cell of the window, so that sparse data alone is no
/// occluder), grown by the margin.
fn occluder_region(a: &HeightMap, b: &HeightMap, opts: &ChangeOptions) -> Vec<bool> {
    let grid = &a.grid;
    // A square of 2r + 1 cells as near the window's side as the cells allow.
    let r = ((opts.occluder_window_m / grid.spacing - 1.0) / 2.0).round().max(0.0) as usize;
    let margin = (opts.occluder_margin_m / grid.spacing).round().max(0.0) as usize;
    let counts = |m: &HeightMap| m.count.iter().map(|&c| i64::from(c.max(0))).collect::<Vec<_>>();
    let (sa, sb) = (box_sums(&counts(a), grid.size, r), box_sums(&counts(b), grid.size, r));
    let least = ((2 * r + 1) * (2 * r + 1)) as f64 / 2.0;
    let dropped: Vec<i64> = sa
        .iter()
        .zip(&sb)
        .map(|(&x, &y)| {
            let (lo, hi) = (x.min(y) as f64, x.max(y) as f64);
            i64::from(hi >= least && lo < opts.support_drop * hi)
        })
        .collect();
    box_sums(&dropped, grid.size, margin).into_iter().map(|n| n > 0).collect()
}

/// What happened to a cell, as stored in `status` of `change/A_B.npz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum CellStatus {
    /// Outside the region of interest.
    Outside = 0,
    /// No height in one frame or both.
    Unsupported = 1,
    /// Support dropped in one frame (an occluder): not compared.
    Occluded = 2,
    /// Compared; the change is within the level of detection.
    NoChange = 3,
    /// Compared; significant gain.
    Gain = 4,
    /// Compared; significant loss.
    Loss = 5,
}

/// Volumes of one kind of sum (cm³), with their uncertainties (1 σ, cm³).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Volumes {
    /// Sand added (Δz > 0), cm³.
    pub gained_cm3: f64,
    /// Uncertainty of `gained_cm3`.
    pub gained_sigma_cm3: f64,
    /// Sand removed (Δz < 0), cm³ (positive).
    pub lost_cm3: f64,
    /// Uncertainty of `lost_cm3`.
    pub lost_sigma_cm3: f64,
    /// `gained − lost`, cm³.
    pub net_cm3: f64,
    /// Uncertainty of `net_cm3`.
    pub net_sigma_cm3: f64,
    /// Area of the cells summed (m²).
    pub area_m2: f64,
}

impl Volumes {
    /// Volume moved: gained plus lost (cm³).
    pub fn moved_cm3(&self) -> f64 {
        self.gained_cm3 + self.lost_cm3
    }
}

/// Figures of one comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeStats {
    /// `t` of the level of detection.
    pub t: f64,
    /// Support fraction below which a cell counts as occluded.
    pub support_drop: f64,
    /// Side of the square over which support is summed to find occluders (m).
    #[serde(default)]
    pub occluder_window_m: f64,
    /// Margin around an occluder's footprint that is not compared (m).
    #[serde(default)]
    pub occluder_margin_m: f64,
    /// Cell side (m).
    pub cell_m: f64,
    /// Cells in the region of interest.
    pub cells_in_roi: usize,
    /// Cells compared (supported in both frames, not occluded).
    pub cells_compared: usize,
    /// Area compared (m²).
    pub area_compared_m2: f64,
    /// Cells without a height in one frame or both.
    pub cells_unsupported: usize,
    /// Cells not compared because an occluder hid the bed in one frame (with data or not).
    pub cells_occluded: usize,
    /// Compared cells whose change exceeds the level of detection.
    pub cells_significant: usize,
    /// Median level of detection over the compared cells (m).
    pub median_lod_m: Option<f64>,
    /// Volumes over the significant cells only.
    pub thresholded: Volumes,
    /// Volumes over every compared cell.
    pub raw: Volumes,
}

/// The difference of two height maps.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeMap {
    /// The grid of both maps.
    pub grid: Grid,
    /// `height_B − height_A` (m, up positive) where compared; NaN elsewhere.
    pub dz: GrayImage,
    /// Level of detection `t·σ_Δ` (m) where compared; NaN elsewhere.
    pub lod: GrayImage,
    /// [`CellStatus`] of every cell.
    pub status: Vec<i32>,
    /// The figures.
    pub stats: ChangeStats,
}

/// Errors of a comparison.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The two maps are not on the same grid.
    #[error(
        "frames {from} and {to} were gridded differently ({a} vs {b}); rerun `aquamvs reconstruct` \
         with the same calibration and reconstruction.grid_resolution for both"
    )]
    GridMismatch {
        /// Frame A.
        from: usize,
        /// Frame B.
        to: usize,
        /// Grid of A, described.
        a: String,
        /// Grid of B, described.
        b: String,
    },
    /// The region of interest cannot be used.
    #[error("region of interest: {0}")]
    Roi(#[from] roi::RoiError),
    /// A change file could not be written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A frame has no height map; lists the frames that have one.
    #[error("{}: frame {frame} has no height map; {}", path.display(), frames_with_one(have))]
    NoHeightMap {
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// The frame.
        frame: usize,
        /// The frames of the run that have one.
        have: Vec<usize>,
    },
    /// A height map that cannot be read (the error names the file).
    #[error(transparent)]
    HeightMap(#[from] crate::heightmap::HeightMapError),
    /// A series over fewer than two height maps.
    #[error(
        "{}: a series needs height maps of at least two frames, found {found}; reconstruct \
         more frames with `runtime.heightmap` on",
        output.display()
    )]
    TooFewFrames {
        /// The run's output folder.
        output: std::path::PathBuf,
        /// Frames with a height map.
        found: usize,
    },
    /// The synthetic ground truth has no such frame.
    #[error(transparent)]
    Truth(#[from] crate::synth::scene::SceneError),
}

/// "frames with one: 0, 1, 2", or what to do when no frame has one.
fn frames_with_one(frames: &[usize]) -> String {
    if frames.is_empty() {
        return "no frame has one: reconstruct with `runtime.heightmap: true` (or more than one \
                frame)"
            .to_owned();
    }
    let shown: Vec<String> = frames.iter().take(12).map(usize::to_string).collect();
    let more =
        if frames.len() > 12 { format!(" … ({} in all)", frames.len()) } else { String::new() };
    format!("frames with one: {}{more}", shown.join(", "))
}

fn describe(g: &Grid) -> String {
    format!(
        "{} cells of {:.2} mm from ({:.4}, {:.4}), datum Z {:.4}",
        g.size,
        g.spacing * 1e3,
        g.origin[0],
        g.origin[1],
        g.datum_z
    )
}

/// Frames `a` and `b` placed on one grid: the union of their windows of the run's grid
/// (each map covers only the cells its cloud reached). Fails when they were gridded on
/// different grids (another cell size, datum or alignment).
pub fn on_common_grid(
    (from, a): (usize, &HeightMap),
    (to, b): (usize, &HeightMap),
) -> Result<(HeightMap, HeightMap), ChangeError> {
    let grid = a.grid.union(&b.grid).ok_or_else(|| ChangeError::GridMismatch {
        from,
        to,
        a: describe(&a.grid),
        b: describe(&b.grid),
    })?;
    Ok((a.placed(grid), b.placed(grid)))
}

/// Compares frame `a` to frame `b` (indices only name them in errors) within `roi` (one flag
/// per cell, row-major; `None` is the whole grid). Both maps must be on the same grid
/// ([`on_common_grid`] puts them there).
pub fn compare(
    (from, a): (usize, &HeightMap),
    (to, b): (usize, &HeightMap),
    roi: Option<&[bool]>,
    opts: &ChangeOptions,
) -> Result<ChangeMap, ChangeError> {
    if !a.grid.same_as(&b.grid) {
        return Err(ChangeError::GridMismatch {
            from,
            to,
            a: describe(&a.grid),
            b: describe(&b.grid),
        });
    }
    let grid = a.grid;
    let n = grid.size.area();
    if let Some(r) = roi
        && r.len() != n
    {
        return Err(roi::RoiError::FlagCount { flags: r.len(), cells: n }.into());
    }
    let mut dz = GrayImage::from_elem(grid.size, f32::NAN);
    let mut lod = GrayImage::from_elem(grid.size, f32::NAN);
    let mut status = vec![CellStatus::Outside as i32; n];
    let area = grid.cell_area();
    let mut stats = ChangeStats {
        t: opts.t,
        support_drop: opts.support_drop,
        occluder_window_m: opts.occluder_window_m,
        occluder_margin_m: opts.occluder_margin_m,
        cell_m: grid.spacing,
        ..ChangeStats::default()
    };
    // Sums in m³ and m⁶ (variances), converted at the end.
    #[derive(Default)]
    struct Acc {
        gain: f64,
        gain_var: f64,
        loss: f64,
        loss_var: f64,
        var: f64,
        cells: usize,
    }
    let (mut raw, mut thr) = (Acc::default(), Acc::default());
    let mut lods = Vec::new();
    let occluded = occluder_region(a, b, opts);
    let (ha, hb) = (a.height.as_slice(), b.height.as_slice());
    let (sa, sb) = (a.sigma.as_slice(), b.sigma.as_slice());
    for k in 0..n {
        if roi.is_some_and(|r| !r[k]) {
            continue;
        }
        stats.cells_in_roi += 1;
        // An occluder explains missing data too: its cells are occluded, with data or not.
        if occluded[k] {
            status[k] = CellStatus::Occluded as i32;
            stats.cells_occluded += 1;
            continue;
        }
        if !(a.supported(k) && b.supported(k)) {
            status[k] = CellStatus::Unsupported as i32;
            stats.cells_unsupported += 1;
            continue;
        }
        let d = (hb[k] - ha[k]) as f64;
        let var = (sa[k] as f64).powi(2) + (sb[k] as f64).powi(2);
        let l = opts.t * var.sqrt();
        dz.as_mut_slice()[k] = d as f32;
        lod.as_mut_slice()[k] = l as f32;
        lods.push(l);
        stats.cells_compared += 1;
        let add = |acc: &mut Acc| {
            acc.cells += 1;
            acc.var += var;
            if d > 0.0 {
                acc.gain += d;
                acc.gain_var += var;
            } else if d < 0.0 {
                acc.loss -= d;
                acc.loss_var += var;
            }
        };
        add(&mut raw);
        if d.abs() > l {
            add(&mut thr);
            stats.cells_significant += 1;
            status[k] = if d > 0.0 { CellStatus::Gain } else { CellStatus::Loss } as i32;
        } else {
            status[k] = CellStatus::NoChange as i32;
        }
    }
    let volumes = |acc: &Acc| {
        let cm3 = 1e6 * area;
        Volumes {
            gained_cm3: acc.gain * cm3,
            gained_sigma_cm3: acc.gain_var.sqrt() * cm3,
            lost_cm3: acc.loss * cm3,
            lost_sigma_cm3: acc.loss_var.sqrt() * cm3,
            net_cm3: (acc.gain - acc.loss) * cm3,
            net_sigma_cm3: acc.var.sqrt() * cm3,
            area_m2: acc.cells as f64 * area,
        }
    };
    stats.raw = volumes(&raw);
    stats.thresholded = volumes(&thr);
    stats.area_compared_m2 = stats.cells_compared as f64 * area;
    if !lods.is_empty() {
        lods.sort_by(f64::total_cmp);
        stats.median_lod_m = Some(lods[lods.len() / 2]);
    }
    Ok(ChangeMap { grid, dz, lod, status, stats })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Point3;

    /// A grid of 2 mm cells over ±0.1 m, datum at Z = 1.5.
    fn grid() -> Grid {
        Grid { origin: [-0.1, -0.1], spacing: 0.002, size: ImageSize::new(101, 101), datum_z: 1.5 }
    }

    /// A height map of `elevation(x, y)` (m up from a bed at Z = 1.4): four points per cell at
    /// ±`noise` in a fixed pattern (mean exact, spread `noise`), `count` points where `count`
    /// says.
    fn map(
        elevation: impl Fn(f64, f64) -> f64,
        noise: f64,
        per_cell: impl Fn(f64, f64) -> usize,
    ) -> HeightMap {
        let g = grid();
        let mut pts = Vec::new();
        for j in 0..g.size.height {
            for i in 0..g.size.width {
                let (x, y) = g.centre(i, j);
                let z = 1.4 - elevation(x, y);
                let n = per_cell(x, y);
                for p in 0..n {
                    let sign = if p % 2 == 0 { 1.0 } else { -1.0 };
                    let off = 0.0004 * (p as f64 - 1.5);
                    pts.push(Point3::new(x + off, y - off, z + sign * noise));
                }
            }
        }
        HeightMap::from_points(g, &pts)
    }

    fn cone(x: f64, y: f64) -> f64 {
        // Radius 5 cm, height 2 cm: volume π r² h / 3 = 52.36 cm³.
        (0.02 * (1.0 - x.hypot(y) / 0.05)).max(0.0)
    }

    #[test]
    fn a_cone_is_gained_and_nothing_is_lost() {
        let a = map(|_, _| 0.0, 0.0002, |_, _| 4);
        let b = map(cone, 0.0002, |_, _| 4);
        let c = compare((0, &a), (1, &b), None, &ChangeOptions::default()).unwrap();
        let truth = std::f64::consts::PI * 25.0 * 2.0 / 3.0;
        let s = &c.stats;
        // The grid sampling of the cone's apex and rim costs a fraction of a percent.
        assert!((s.raw.gained_cm3 - truth).abs() < 0.01 * truth, "{s:?}");
        assert!((s.thresholded.gained_cm3 - truth).abs() < 0.02 * truth, "{s:?}");
        assert_eq!(s.thresholded.lost_cm3, 0.0);
        assert_eq!(s.cells_compared, 101 * 101);
        assert!((s.area_compared_m2 - 0.202 * 0.202).abs() < 1e-9);
        // σ_Δ = √2 · spread per cell; the gained volume's σ sums over the gained cells.
        let cells = s.raw.area_m2 / 4e-6;
        assert!(
            s.raw.net_sigma_cm3 > 0.0
                && s.raw.net_sigma_cm3 < 4e-6 * 1e6 * cells.sqrt() * 0.0003 * 2.0
        );
        // Four points at ±0.2 mm: a spread of 0.2 mm · √(4/3) per frame.
        let lod = 1.96 * (2.0f64 * 4.0 / 3.0).sqrt() * 0.0002;
        assert!((s.median_lod_m.unwrap() - lod).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn a_pit_is_lost_and_noise_is_not_change() {
        // A paraboloid pit of radius 4 cm and depth 1 cm: volume π r² d / 2 = 25.13 cm³.
        let pit = |x: f64, y: f64| -0.01 * (1.0 - (x * x + y * y) / 0.0016).max(0.0);
        let a = map(|_, _| 0.0, 0.0005, |_, _| 4);
        let b = map(pit, 0.0005, |_, _| 4);
        let c = compare((3, &a), (7, &b), None, &ChangeOptions::default()).unwrap();
        let truth = std::f64::consts::PI * 16.0 * 1.0 / 2.0;
        let s = &c.stats;
        assert!((s.raw.lost_cm3 - truth).abs() < 0.01 * truth, "{s:?}");
        // Below the level of detection (√2 · 0.5 · 1.96 ≈ 1.4 mm) the rim of the pit is not
        // counted: the thresholded loss is smaller, but never a gain.
        assert!(s.thresholded.lost_cm3 < s.raw.lost_cm3 && s.thresholded.lost_cm3 > 0.9 * truth);
        assert_eq!(s.thresholded.gained_cm3, 0.0);
        assert!((s.thresholded.net_cm3 + s.thresholded.lost_cm3).abs() < 1e-9);
        // Outside the pit nothing is significant.
        let outside = c.grid.cell(0.08, 0.08).map(|(i, j)| j * 101 + i).unwrap();
        assert_eq!(c.status[outside], CellStatus::NoChange as i32);
        let centre = c.grid.cell(0.0, 0.0).map(|(i, j)| j * 101 + i).unwrap();
        assert_eq!(c.status[centre], CellStatus::Loss as i32);
    }

    #[test]
    fn noisy_unchanged_beds_gain_and_lose_nothing_once_thresholded() {
        // Two noisy surveys of the same bed: each cell's mean is off by up to ±0.3 mm.
        let wobble = |x: f64, y: f64| 0.0003 * ((x * 913.0).sin() * (y * 577.0).cos());
        let a = map(wobble, 0.0005, |_, _| 4);
        let b = map(|x, y| -wobble(x, y), 0.0005, |_, _| 4);
        let c = compare((0, &a), (1, &b), None, &ChangeOptions::default()).unwrap();
        let s = &c.stats;
        assert!(s.raw.gained_cm3 > 0.5 && s.raw.lost_cm3 > 0.5, "{s:?}");
        assert_eq!(s.cells_significant, 0);
        assert_eq!(s.thresholded.moved_cm3(), 0.0);
    }

    #[test]
    fn cells_whose_support_dropped_are_occluded_not_change() {
        // Frame B: a "fish" 3 cm above the bed over a 2 cm square, where only one camera of
        // four still sees the bed: one point per cell instead of four, and it is the fish's.
        // Around it, a 6 mm band where the sweep mixed the fish's depth with the bed's: full
        // support, heights 4 mm too high.
        let fish = |x: f64, y: f64| x.abs() < 0.01 && y.abs() < 0.01;
        let band = |x: f64, y: f64| x.abs() < 0.016 && y.abs() < 0.016;
        let a = map(|_, _| 0.0, 0.0003, |_, _| 4);
        let b = map(
            |x, y| {
                if fish(x, y) {
                    0.03
                } else if band(x, y) {
                    0.004
                } else {
                    0.0
                }
            },
            0.0003,
            |x, y| if fish(x, y) { 1 } else { 4 },
        );
        let c = compare((0, &a), (1, &b), None, &ChangeOptions::default()).unwrap();
        let s = &c.stats;
        assert_eq!(s.cells_significant, 0, "{s:?}");
        // The fish (10 × 10 cells) and the band around it (16 × 16) are occluded, and the
        // margin of 1 cm beyond the fish too: at most 20 × 20 cells plus the window's reach.
        assert!(s.cells_occluded >= 16 * 16 && s.cells_occluded <= 26 * 26, "{s:?}");
        let at = |x: f64, y: f64| c.grid.cell(x, y).map(|(i, j)| j * 101 + i).unwrap();
        assert_eq!(c.status[at(0.0, 0.0)], CellStatus::Occluded as i32);
        assert!(c.dz.as_slice()[at(0.0, 0.0)].is_nan());
        assert_eq!(c.status[at(0.014, 0.0)], CellStatus::Occluded as i32);
        // Away from it the bed is compared.
        assert_eq!(c.status[at(0.04, 0.0)], CellStatus::NoChange as i32);
        assert_eq!(c.status[at(-0.05, 0.05)], CellStatus::NoChange as i32);
        // Without a margin the band shows up as a mound: the margin is what removes it.
        let no_margin = ChangeOptions { occluder_margin_m: 0.0, ..ChangeOptions::default() };
        let c = compare((0, &a), (1, &b), None, &no_margin).unwrap();
        assert!(c.stats.cells_significant > 0, "{:?}", c.stats);
    }

    #[test]
    fn counts_that_vary_by_chance_are_not_occluders() {
        // Two to four points per cell, drawn independently in each frame: a cell's count
        // often halves between frames with nothing in the way. The cone is measured whole.
        let draw = |salt: u64| {
            move |x: f64, y: f64| {
                let key = ((x * 1e4).round() as i64 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ ((y * 1e4).round() as i64 as u64)
                        .wrapping_add(salt)
                        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
                2 + (key >> 61) as usize % 3
            }
        };
        let a = map(|_, _| 0.0, 0.0002, draw(1));
        let b = map(cone, 0.0002, draw(2));
        let halved = (0..a.count.len()).filter(|&k| 2 * a.count[k] <= b.count[k]).count();
        assert!(halved > 500, "{halved}");
        let c = compare((0, &a), (1, &b), None, &ChangeOptions::default()).unwrap();
        let s = &c.stats;
        assert_eq!(s.cells_occluded, 0, "{s:?}");
        let truth = std::f64::consts::PI * 25.0 * 2.0 / 3.0;
        assert!((s.thresholded.gained_cm3 - truth).abs() < 0.02 * truth, "{s:?}");
    }

    #[test]
    fn the_region_of_interest_limits_the_sums_and_grids_must_match() {
        let a = map(|_, _| 0.0, 0.0002, |_, _| 4);
        let b = map(cone, 0.0002, |_, _| 4);
        let g = grid();
        // Only the half x > 0: half the cone.
        let roi: Vec<bool> =
            (0..g.size.area()).map(|k| g.centre(k % 101, k / 101).0 > 0.001).collect();
        let c = compare((0, &a), (1, &b), Some(&roi), &ChangeOptions::default()).unwrap();
        // Half the cone less the slab 0 < x < 1 mm (its cross-section is 10 cm² at x = 0).
        let half = std::f64::consts::PI * 25.0 * 2.0 / 6.0 - 0.1 * 10.0;
        assert!((c.stats.raw.gained_cm3 - half).abs() < 0.02 * half, "{:?}", c.stats);
        assert_eq!(c.stats.cells_in_roi, 50 * 101);
        let mut other = b.clone();
        other.grid.spacing = 0.004;
        let e = compare((0, &a), (1, &other), None, &ChangeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("gridded differently"), "{e}");
        assert!(compare((0, &a), (1, &b), Some(&roi[1..]), &ChangeOptions::default()).is_err());
    }
}
