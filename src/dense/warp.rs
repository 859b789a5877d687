//! The refractive warp of the plane sweep: where reference pixel `p` lands in a source image
//! when it lies at ray depth `d`, for whole rows of pixels at a time.
//!
//! Hypothesis `d` puts reference pixel `p` at `P = O_p + d · dir_p` (its refracted ray); the
//! source sample is the source image at `project_s(P)`, through the water surface. Exact
//! projection of every pixel at every depth would cost ~50 ns each (a Newton solve), so it is
//! computed exactly only on a lattice of nodes every `step` pixels ([`WarpGrid`]), warm-started
//! from the node's previous projection (~2 Newton steps), and interpolated bicubically
//! (Catmull-Rom) in between. The warp is smooth, so the interpolation error stays far below the
//! 0.01 px budget of ARCHITECTURE decision 2 (tested against exact projection on the `tank`
//! rig); a pixel with an invalid node among its 4 × 4 is invalid (NaN).
//!
//! The per-pixel evaluation runs in `f32`: each lattice cell's cubic is converted to power
//! form in `f64` and evaluated by Horner's rule in `f32`. Coordinates below 2048 px carry an
//! `f32` rounding of at most 1.2e-4 px per operation, so the three multiply-adds add under
//! 5e-4 px: still 20 times inside the budget, and the loop vectorises (8 pixels per AVX2
//! instruction) where the `f64` one did not.

use std::ops::Range;

use nalgebra::Point2;

use crate::geom::refraction::{Ray, RefractiveCamera};
use crate::imgproc::ImageSize;

/// Where the exact warp nodes are: a uniform lattice every `step` pixels, with one extra node
/// before the first pixel and two past the last, so that every pixel has the 4 × 4 nodes a
/// cubic interpolation needs. Nodes outside the image are fine: their rays exist all the same.
#[derive(Clone, Debug)]
pub struct WarpGrid {
    step: usize,
    /// Node columns: x = (j − 1) · step for j in 0..n_cols.
    n_cols: usize,
    size: ImageSize,
    /// `t = i / step` for i in 0..step, the offsets of a cell's pixels (f32, for Horner).
    fractions: Vec<f32>,
}

impl WarpGrid {
    /// The node layout for images of `size` with nodes every `step` pixels.
    pub fn new(size: ImageSize, step: usize) -> Self {
        let step = step.max(1);
        let cells = size.width.saturating_sub(1) / step + 1;
        let fractions = (0..step).map(|i| (i as f64 / step as f64) as f32).collect();
        Self { step, n_cols: cells + 3, size, fractions }
    }

    /// The image size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// The x (or y) pixel coordinate of node index `j` (which starts one step before 0).
    fn coord(&self, j: usize) -> f64 {
        (j as f64 - 1.0) * self.step as f64
    }

    /// The node columns that pixel columns `cols` need (4 per cell).
    fn node_cols(&self, cols: &Range<usize>) -> Range<usize> {
        if cols.is_empty() {
            return 0..0;
        }
        cols.start / self.step..((cols.end - 1) / self.step + 4).min(self.n_cols)
    }
}

/// Catmull-Rom weights of the four nodes around a point at fraction `t` of the middle cell.
#[inline]
fn catmull_rom(t: f64) -> [f64; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// The reference rays at the lattice nodes that a band of pixel rows needs.
#[derive(Clone, Debug)]
pub struct NodeRays<'g> {
    grid: &'g WarpGrid,
    /// Pixel rows covered.
    rows: Range<usize>,
    /// Index (in the full lattice) of the first node row held.
    first_node_row: usize,
    /// Node rows held.
    n_node_rows: usize,
    /// Rays at the nodes (node-row-major); `None` where the pixel sees no water.
    rays: Vec<Option<Ray>>,
}

impl<'g> NodeRays<'g> {
    /// The rays of `reference` at the nodes that pixel `rows` need.
    pub fn new(grid: &'g WarpGrid, reference: &RefractiveCamera, rows: Range<usize>) -> Self {
        // Node row i sits at y = (i − 1)·step; pixel row y needs node rows y/step .. y/step + 3.
        let first_node_row = rows.start / grid.step;
        let last_node_row = rows.end.saturating_sub(1) / grid.step + 3;
        let n_node_rows = last_node_row + 1 - first_node_row;
        let mut rays = Vec::with_capacity(n_node_rows * grid.n_cols);
        for i in first_node_row..=last_node_row {
            for j in 0..grid.n_cols {
                rays.push(reference.cast_ray(grid.coord(j), grid.coord(i)).ok());
            }
        }
        Self { grid, rows, first_node_row, n_node_rows, rays }
    }

    /// The pixel rows covered.
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }

    /// The grid.
    pub fn grid(&self) -> &'g WarpGrid {
        self.grid
    }
}

/// One source's projected nodes at the current depth, with the warm-start state.
#[derive(Clone, Debug)]
pub struct NodeProjections {
    /// Projected node pixels (x, y), NaN where invalid.
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Interface radius of each node's last projection (warm start), NaN before the first.
    radii: Vec<f64>,
    /// The hypothesis stamp each node was last projected for (`u64::MAX`: never).
    stamps: Vec<u64>,
    /// Scratch: one row's warp at every node column.
    column_x: Vec<f64>,
    column_y: Vec<f64>,
}

impl NodeProjections {
    /// State for the nodes of `rays`.
    pub fn new(rays: &NodeRays<'_>) -> Self {
        let n = rays.rays.len();
        Self {
            xs: vec![f64::NAN; n],
            ys: vec![f64::NAN; n],
            radii: vec![f64::NAN; n],
            stamps: vec![u64::MAX; n],
            column_x: vec![0.0; rays.grid.n_cols],
            column_y: vec![0.0; rays.grid.n_cols],
        }
    }

    /// Projects into `source` the nodes that pixel columns `cols` need, at ray depth `depth`,
    /// unless they were already projected for the same `stamp` (a number unique to the depth,
    /// e.g. its hypothesis index).
    pub fn project(
        &mut self,
        rays: &NodeRays<'_>,
        source: &RefractiveCamera,
        depth: f64,
        stamp: u64,
        cols: &Range<usize>,
    ) {
        let grid = rays.grid;
        let node_cols = grid.node_cols(cols);
        for row in 0..rays.n_node_rows {
            let span = row * grid.n_cols + node_cols.start..row * grid.n_cols + node_cols.end;
            for i in span {
                if self.stamps[i] == stamp {
                    continue;
                }
                self.stamps[i] = stamp;
                self.xs[i] = f64::NAN;
                self.ys[i] = f64::NAN;
                let Some(ray) = &rays.rays[i] else { continue };
                let p = ray.point_at(depth);
                let radius = self.radii[i];
                let projected = if radius.is_finite() {
                    source.project_with_guess(&p, radius)
                } else {
                    source.project_detailed(&p)
                };
                if let Ok(proj) = projected {
                    self.xs[i] = proj.pixel.x;
                    self.ys[i] = proj.pixel.y;
                    self.radii[i] = proj.interface_radius;
                }
            }
        }
    }

    /// The warp of pixel row `y`, columns `cols`, into `xs_out` and `ys_out` (`cols.len()`
    /// values each; NaN where invalid), interpolated from the nodes last projected.
    pub fn row(
        &mut self,
        rays: &NodeRays<'_>,
        y: usize,
        cols: Range<usize>,
        xs_out: &mut [f32],
        ys_out: &mut [f32],
    ) {
        debug_assert!(rays.rows.contains(&y));
        debug_assert!(xs_out.len() == cols.len() && ys_out.len() == cols.len());
        let grid = rays.grid;
        let (step, n_cols) = (grid.step, grid.n_cols);
        let cell_row = y / step;
        let wy = catmull_rom((y - cell_row * step) as f64 / step as f64);
        let base = (cell_row - rays.first_node_row) * n_cols;
        let node_cols = grid.node_cols(&cols);
        for j in node_cols.clone() {
            let (mut x, mut yy) = (0.0, 0.0);
            for (i, w) in wy.iter().enumerate() {
                x += self.xs[base + i * n_cols + j] * w;
                yy += self.ys[base + i * n_cols + j] * w;
            }
            self.column_x[j] = x;
            self.column_y[j] = yy;
        }
        if cols.is_empty() {
            return;
        }
        let (first_cell, last_cell) = (cols.start / step, (cols.end - 1) / step);
        for cell in first_cell..=last_cell {
            let x0 = cell * step;
            let from = cols.start.max(x0);
            let to = cols.end.min(x0 + step);
            let out = from - cols.start..to - cols.start;
            let fractions = &grid.fractions[from - x0..to - x0];
            let cx = cubic_coefficients(&self.column_x[cell..cell + 4]);
            let cy = cubic_coefficients(&self.column_y[cell..cell + 4]);
            horner(cx, fractions, &mut xs_out[out.clone()]);
            horner(cy, fractions, &mut ys_out[out]);
        }
    }
}

/// Power-basis coefficients `[c0, c1, c2, c3]` of the Catmull-Rom cubic through the middle
/// cell of four node values, as `f32` (the value is `c0 + c1·t + c2·t² + c3·t³`).
#[inline]
fn cubic_coefficients(v: &[f64]) -> [f32; 4] {
    let c0 = v[1];
    let c1 = (v[2] - v[0]) * 0.5;
    let c2 = v[0] - v[1] * 2.5 + v[2] * 2.0 - v[3] * 0.5;
    let c3 = (v[3] - v[0]) * 0.5 + (v[1] - v[2]) * 1.5;
    [c0 as f32, c1 as f32, c2 as f32, c3 as f32]
}

/// `out[i] = c0 + t(c1 + t(c2 + t·c3))` at `t = fractions[i]` (vectorises).
#[inline]
fn horner(c: [f32; 4], fractions: &[f32], out: &mut [f32]) {
    let [c0, c1, c2, c3] = c;
    for (o, &t) in out.iter_mut().zip(fractions) {
        *o = c0 + t * (c1 + t * (c2 + t * c3));
    }
}

/// The warp of reference pixels `rows` into `source` at ray depth `depth`, as the sweep
/// computes it (interpolated from the node lattice): one source pixel per reference pixel,
/// NaN where invalid. For tests and diagnostics.
pub fn warp_coordinates(
    reference: &RefractiveCamera,
    source: &RefractiveCamera,
    depth: f64,
    rows: Range<usize>,
    warp_grid: usize,
) -> Vec<Point2<f64>> {
    let size = reference.size();
    let grid = WarpGrid::new(size, warp_grid);
    let rays = NodeRays::new(&grid, reference, rows.clone());
    let mut nodes = NodeProjections::new(&rays);
    let all = 0..size.width;
    nodes.project(&rays, source, depth, 0, &all);
    let (mut xs, mut ys) = (vec![0.0f32; size.width], vec![0.0f32; size.width]);
    let mut out = Vec::with_capacity(rows.len() * size.width);
    for y in rows {
        nodes.row(&rays, y, all.clone(), &mut xs, &mut ys);
        out.extend(xs.iter().zip(&ys).map(|(&x, &y)| Point2::new(f64::from(x), f64::from(y))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::render::undistorted_camera;
    use crate::synth::rig::{RigParams, RigPreset};

    /// Largest distance between the grid-interpolated warp and the exact projection.
    fn max_warp_error(preset: RigPreset, grid: usize) -> f64 {
        let rig = RigParams::preset(preset).build().unwrap();
        let ring = rig.ring_names();
        let reference = undistorted_camera(&rig, ring[0]).unwrap();
        let source = undistorted_camera(&rig, ring[1]).unwrap();
        let h = reference.size().height;
        let mut worst: f64 = 0.0;
        for depth in [0.3, 0.6, 1.0] {
            for rows in [0..24, h / 2..h / 2 + 9, h - 17..h] {
                let warp = warp_coordinates(&reference, &source, depth, rows.clone(), grid);
                let w = reference.size().width;
                for (i, p) in warp.iter().enumerate() {
                    let (x, y) = (i % w, rows.start + i / w);
                    let exact = source
                        .project(&reference.cast_ray(x as f64, y as f64).unwrap().point_at(depth))
                        .unwrap();
                    worst = worst.max((p - exact).norm());
                }
            }
        }
        worst
    }

    #[test]
    fn warp_interpolation_stays_within_a_hundredth_of_a_pixel() {
        let grid = super::super::sweep::SweepOptions::default().warp_grid;
        let tank = max_warp_error(RigPreset::Tank, grid);
        assert!(tank < 0.01, "tank rig, grid {grid}: {tank} px");
        let tiny = max_warp_error(RigPreset::Tiny, grid);
        assert!(tiny < 0.01, "tiny rig, grid {grid}: {tiny} px");
    }

    #[test]
    fn catmull_rom_is_exact_for_quadratics() {
        let f = |x: f64| 0.3 * x * x * x - x * x + 2.0 * x + 1.0;
        let g = WarpGrid::new(ImageSize::new(37, 20), 8);
        assert_eq!(g.n_cols, 8);
        assert_eq!(g.coord(0), -8.0);
        // Catmull-Rom reproduces quadratics exactly; for a cubic it stays close.
        for t in [0.0, 0.25, 0.5, 0.9] {
            let w = catmull_rom(t);
            let q = |x: f64| x * x - 3.0 * x;
            let v: f64 = (0..4).map(|i| w[i] * q(i as f64 - 1.0)).sum();
            assert!((v - q(t)).abs() < 1e-12);
            let c: f64 = (0..4).map(|i| w[i] * f(i as f64 - 1.0)).sum();
            assert!((c - f(t)).abs() < 0.2);
            // The power form evaluates the same cubic.
            let values: Vec<f64> = (0..4).map(|i| q(i as f64 - 1.0)).collect();
            let mut out = [0.0f32];
            horner(cubic_coefficients(&values), &[t as f32], &mut out);
            assert!((f64::from(out[0]) - q(t)).abs() < 1e-5);
        }
    }

    /// Column ranges give the same warp as whole rows, bit for bit, and nodes are projected
    /// once per stamp.
    #[test]
    fn partial_rows_match_whole_rows() {
        let rig = RigParams::preset(RigPreset::Tiny).build().unwrap();
        let reference = undistorted_camera(&rig, "cam00").unwrap();
        let source = undistorted_camera(&rig, "cam01").unwrap();
        let size = reference.size();
        let grid = WarpGrid::new(size, 16);
        let rays = NodeRays::new(&grid, &reference, 40..60);
        let mut nodes = NodeProjections::new(&rays);
        let all = 0..size.width;
        nodes.project(&rays, &source, 0.4, 3, &all);
        let (mut xs, mut ys) = (vec![0.0f32; size.width], vec![0.0f32; size.width]);
        nodes.row(&rays, 47, all, &mut xs, &mut ys);
        for cols in [0..1, 5..37, 31..33, 100..size.width] {
            let mut partial = NodeProjections::new(&rays);
            partial.project(&rays, &source, 0.4, 3, &cols);
            let (mut px, mut py) = (vec![0.0f32; cols.len()], vec![0.0f32; cols.len()]);
            partial.row(&rays, 47, cols.clone(), &mut px, &mut py);
            assert_eq!(px, xs[cols.clone()], "{cols:?}");
            assert_eq!(py, ys[cols.clone()], "{cols:?}");
        }
    }
}
