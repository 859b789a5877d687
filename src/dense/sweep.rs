//! The refractive plane sweep: for one reference view, warp every source image onto the
//! reference pixels at each ray-depth hypothesis, score, and keep the best depth per pixel.
//!
//! Hypothesis `k` puts reference pixel `p` at `P = O_p + d_k · dir_p` (its refracted ray); the
//! source sample is the source image at `project_s(P)`, through the water surface. Exact
//! projection of every pixel at every depth would cost ~50 ns each (a Newton solve), so the
//! projection is computed exactly on a grid of nodes every [`SweepOptions::warp_grid`] pixels
//! (warm-started from the previous hypothesis: ~2 Newton steps) and interpolated bilinearly in
//! between. The warp is smooth, so the interpolation error stays far below the 0.01 px budget
//! (tested against exact projection on the `tank` rig); a cell with an invalid node is invalid.
//!
//! Work is split into row strips (parallel with rayon). Each strip runs all hypotheses, warping
//! only the rows its cost windows read, and streams costs into its rows of the
//! [`DepthAccumulator`]: memory is O(pixels), never O(pixels × depths). Samples that fall
//! outside a source image are NaN (invalid), not black (ARCHITECTURE decision 3).

use std::ops::Range;

use nalgebra::Point2;
use rayon::prelude::*;

use super::{
    Aggregation, CostKernel, CostOptions, DenseError, DepthAccumulator, DepthMap, RowBlock,
    StripScorer, depth_hypotheses,
};
use crate::geom::refraction::{Ray, RefractiveCamera};
use crate::imgproc::sample::sample_bilinear;
use crate::imgproc::{GrayImage, ImageSize};
use crate::parallel::STRIP_ROWS;

/// Options of one sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepOptions {
    /// The matching cost (function, window, NCC variant).
    pub cost: CostOptions,
    /// How costs of several sources combine.
    pub aggregation: Aggregation,
    /// Number of depth hypotheses (uniform in ray depth, both ends included; ≥ 2).
    pub n_depths: usize,
    /// Spacing (pixels) of the exactly projected warp nodes, between which the warp is
    /// interpolated bicubically. 16 keeps the error below 1e-3 px on the `tank` rig (tested);
    /// smaller is more exact and costs more projections.
    pub warp_grid: usize,
    /// Output rows per parallel strip.
    pub strip_rows: usize,
}

impl Default for SweepOptions {
    /// The reference's sweep: 128 hypotheses, NCC window 11, mean over sources.
    fn default() -> Self {
        Self {
            cost: CostOptions::default(),
            aggregation: Aggregation::Mean,
            n_depths: 128,
            warp_grid: 16,
            strip_rows: STRIP_ROWS,
        }
    }
}

/// A view taking part in a sweep: its refractive camera (undistorted geometry) and its grey
/// image (undistorted, intensities in [0, 1]).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The camera.
    pub camera: &'a RefractiveCamera,
    /// The image; its size must be the camera's.
    pub image: &'a GrayImage,
}

/// Errors of a sweep's set-up.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// An image does not have its camera's size.
    #[error("view {view}: image is {image} but the camera is {camera}")]
    SizeMismatch {
        /// 0 for the reference, 1.. for the sources.
        view: usize,
        /// The image size.
        image: ImageSize,
        /// The camera size.
        camera: ImageSize,
    },
    /// No source view.
    #[error("a plane sweep needs at least one source view")]
    NoSources,
    /// The depth range is empty or negative.
    #[error("invalid depth range [{min}, {max}] (needs 0 ≤ min < max)")]
    BadRange {
        /// Nearest depth.
        min: f64,
        /// Farthest depth.
        max: f64,
    },
    /// A building block failed.
    #[error(transparent)]
    Dense(#[from] DenseError),
    /// A derived camera (e.g. at reduced resolution) could not be built.
    #[error(transparent)]
    Camera(#[from] crate::geom::refraction::CameraError),
}

/// Sweeps `reference` against `sources` over ray depths `[d_min, d_max]`.
pub fn plane_sweep(
    reference: View<'_>,
    sources: &[View<'_>],
    d_min: f64,
    d_max: f64,
    opts: &SweepOptions,
) -> Result<DepthMap, SweepError> {
    if sources.is_empty() {
        return Err(SweepError::NoSources);
    }
    for (i, v) in std::iter::once(&reference).chain(sources).enumerate() {
        if v.image.size() != v.camera.size() {
            return Err(SweepError::SizeMismatch {
                view: i,
                image: v.image.size(),
                camera: v.camera.size(),
            });
        }
    }
    if !(d_min >= 0.0 && d_max > d_min && d_max.is_finite()) {
        return Err(SweepError::BadRange { min: d_min, max: d_max });
    }
    let size = reference.image.size();
    let hypotheses = depth_hypotheses(d_min, d_max, opts.n_depths).map_err(DenseError::from)?;
    let kernel = CostKernel::new(opts.cost, size).map_err(DenseError::from)?;
    let grid = WarpGrid::new(size, opts.warp_grid);
    let mut accumulator =
        DepthAccumulator::new(size, hypotheses.len()).map_err(DenseError::from)?;
    let strips = accumulator.strips_mut(opts.strip_rows.max(1));
    strips.into_par_iter().try_for_each(|mut strip| -> Result<(), DenseError> {
        let rows = strip.rows();
        let need = kernel.input_rows(rows.clone());
        let mut warper = StripWarper::new(&grid, reference.camera, need.clone(), sources.len());
        let mut scorer = StripScorer::new(&kernel, rows.len(), sources.len());
        let mut warped: Vec<Vec<f32>> = vec![vec![0.0; need.len() * size.width]; sources.len()];
        let ref_span = need.start * size.width..need.end * size.width;
        let ref_rows = RowBlock::new(&reference.image.as_slice()[ref_span], size.width, need.start);
        for (k, &depth) in hypotheses.values().iter().enumerate() {
            for (s, source) in sources.iter().enumerate() {
                warper.warp(s, source, depth, &mut warped[s]);
            }
            let blocks: Vec<RowBlock<'_>> =
                warped.iter().map(|w| RowBlock::new(w, size.width, need.start)).collect();
            let costs = scorer.score(&kernel, opts.aggregation, ref_rows, &blocks, rows.clone())?;
            strip.push(k, costs)?;
        }
        Ok(())
    })?;
    Ok(accumulator.finish(&hypotheses).map_err(DenseError::from)?)
}

/// Where the exact warp nodes are: a uniform lattice every `step` pixels, with one extra node
/// before the first pixel and two past the last, so that every pixel has the 4 × 4 nodes a
/// cubic interpolation needs. Nodes outside the image are fine: their rays exist all the same.
#[derive(Clone, Debug)]
pub struct WarpGrid {
    step: usize,
    /// Node columns: x = (j − 1) · step for j in 0..n_cols.
    n_cols: usize,
    size: ImageSize,
}

impl WarpGrid {
    /// The node layout for images of `size` with nodes every `step` pixels.
    pub fn new(size: ImageSize, step: usize) -> Self {
        let step = step.max(1);
        let cells = size.width.saturating_sub(1) / step + 1;
        Self { step, n_cols: cells + 3, size }
    }

    /// The x (or y) pixel coordinate of node index `j` (which starts one step before 0).
    fn coord(&self, j: usize) -> f64 {
        (j as f64 - 1.0) * self.step as f64
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

/// Per-strip warp state: the reference rays at the strip's nodes, each source's node
/// projections at the current depth, and the warm-start radii from the previous depth.
struct StripWarper<'g> {
    grid: &'g WarpGrid,
    /// Pixel rows this warper fills.
    rows: Range<usize>,
    /// Index (in the full lattice) of the first node row held.
    first_node_row: usize,
    /// Reference rays at the nodes (node-row-major); `None` where the pixel sees no water.
    rays: Vec<Option<Ray>>,
    /// Per source: projected node pixels at the current depth (NaN = invalid).
    nodes: Vec<Vec<Point2<f64>>>,
    /// Per source: interface radius of each node's last projection (warm start).
    radii: Vec<Vec<f64>>,
    /// The warp of one row at every node column (scratch).
    column_values: Vec<Point2<f64>>,
}

impl<'g> StripWarper<'g> {
    fn new(
        grid: &'g WarpGrid,
        reference: &RefractiveCamera,
        rows: Range<usize>,
        n_sources: usize,
    ) -> Self {
        // Node row i sits at y = (i − 1)·step; pixel row y needs node rows y/step .. y/step + 3.
        let first_node_row = rows.start / grid.step;
        let last_node_row = rows.end.saturating_sub(1) / grid.step + 3;
        let mut rays = Vec::with_capacity((last_node_row + 1 - first_node_row) * grid.n_cols);
        for i in first_node_row..=last_node_row {
            for j in 0..grid.n_cols {
                rays.push(reference.cast_ray(grid.coord(j), grid.coord(i)).ok());
            }
        }
        let n = rays.len();
        Self {
            grid,
            rows,
            first_node_row,
            rays,
            nodes: vec![vec![Point2::new(f64::NAN, f64::NAN); n]; n_sources],
            radii: vec![vec![f64::NAN; n]; n_sources],
            column_values: vec![Point2::origin(); grid.n_cols],
        }
    }

    /// Projects every node of source `s` at ray depth `depth` (warm-started).
    fn project_nodes(&mut self, s: usize, source: &RefractiveCamera, depth: f64) {
        let nodes = &mut self.nodes[s];
        let radii = &mut self.radii[s];
        for ((ray, node), radius) in self.rays.iter().zip(nodes.iter_mut()).zip(radii.iter_mut()) {
            *node = Point2::new(f64::NAN, f64::NAN);
            let Some(ray) = ray else { continue };
            let p = ray.point_at(depth);
            let projected = if radius.is_finite() {
                source.project_with_guess(&p, *radius)
            } else {
                source.project_detailed(&p)
            };
            if let Ok(proj) = projected {
                *node = proj.pixel;
                *radius = proj.interface_radius;
            }
        }
    }

    /// Calls `f(x, source_pixel)` for every pixel of row `y`, with the warp of source `s`
    /// interpolated (bicubic Catmull-Rom) from the projected nodes.
    #[inline]
    fn for_each_in_row(&mut self, s: usize, y: usize, mut f: impl FnMut(usize, Point2<f64>)) {
        let grid = self.grid;
        let step = grid.step;
        let n_cols = grid.n_cols;
        let cell_row = y / step;
        let wy = catmull_rom((y - cell_row * step) as f64 / step as f64);
        let base = cell_row - self.first_node_row;
        let nodes = &self.nodes[s];
        for (j, value) in self.column_values.iter_mut().enumerate() {
            let mut acc = nalgebra::Vector2::zeros();
            for (i, w) in wy.iter().enumerate() {
                acc += nodes[(base + i) * n_cols + j].coords * *w;
            }
            *value = Point2::from(acc);
        }
        let width = grid.size.width;
        for cell in 0..n_cols - 3 {
            let x0 = cell * step;
            if x0 >= width {
                break;
            }
            let v = &self.column_values[cell..cell + 4];
            // Power-basis coefficients of the cubic in t over this cell (Horner per pixel).
            let c0 = v[1].coords;
            let c1 = (v[2].coords - v[0].coords) * 0.5;
            let c2 = v[0].coords - v[1].coords * 2.5 + v[2].coords * 2.0 - v[3].coords * 0.5;
            let c3 = (v[3].coords - v[0].coords) * 0.5 + (v[1].coords - v[2].coords) * 1.5;
            let inv = 1.0 / step as f64;
            for x in x0..(x0 + step).min(width) {
                let t = (x - x0) as f64 * inv;
                f(x, Point2::from(c0 + (c1 + (c2 + c3 * t) * t) * t));
            }
        }
    }

    /// Fills `out` (this strip's rows, row-major) with source `s` warped at ray depth `depth`.
    fn warp(&mut self, s: usize, source: &View<'_>, depth: f64, out: &mut [f32]) {
        self.project_nodes(s, source.camera, depth);
        let width = self.grid.size.width;
        for (row_out, y) in out.chunks_exact_mut(width).zip(self.rows.clone()) {
            self.for_each_in_row(s, y, |x, p| {
                row_out[x] =
                    sample_bilinear(source.image, p.x as f32, p.y as f32).unwrap_or(f32::NAN);
            });
        }
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
    let mut warper = StripWarper::new(&grid, reference, rows.clone(), 1);
    warper.project_nodes(0, source, depth);
    let mut out = vec![Point2::new(f64::NAN, f64::NAN); rows.len() * size.width];
    for (r, y) in rows.enumerate() {
        warper.for_each_in_row(0, y, |x, p| out[r * size.width + x] = p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::render::{
        RenderOptions, ground_truth_depth, render_camera, undistorted_camera,
    };
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::{SurfaceKind, SurfaceModel};
    use crate::synth::texture::Texture;

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
        let grid = SweepOptions::default().warp_grid;
        let tank = max_warp_error(RigPreset::Tank, grid);
        assert!(tank < 0.01, "tank rig, grid {grid}: {tank} px");
        let tiny = max_warp_error(RigPreset::Tiny, grid);
        assert!(tiny < 0.01, "tiny rig, grid {grid}: {tiny} px");
    }

    #[test]
    fn catmull_rom_is_exact_for_cubics() {
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
        }
    }

    /// A rendered tiny scene: the sweep recovers the true depth of most pixels.
    #[test]
    fn recovers_the_depth_of_a_rendered_plane() {
        let mut params = RigParams::preset(RigPreset::Tiny);
        params.distortion = [0.0; 5];
        params.size = ImageSize::new(160, 120);
        params.focal_px = 150.0;
        params.centre_focal_px = 150.0;
        let rig = params.build().unwrap();
        let surface = SurfaceModel::generate(
            SurfaceKind::Undulating,
            params.bottom_z(),
            params.extent(),
            1,
            0,
        );
        let texture = Texture::Sand { seed: 4 };
        let opts = RenderOptions::exact();
        let names: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
        let cams: Vec<RefractiveCamera> =
            names.iter().map(|n| undistorted_camera(&rig, n).unwrap()).collect();
        let images: Vec<GrayImage> = names
            .iter()
            .map(|n| {
                crate::imgproc::rgb_to_gray(
                    &render_camera(&rig, n, &surface, &texture, &opts).unwrap(),
                )
            })
            .collect();
        // No distortion: the rendered images are already in the undistorted geometry.
        let reference = View { camera: &cams[0], image: &images[0] };
        let sources: Vec<View> =
            (1..cams.len()).map(|i| View { camera: &cams[i], image: &images[i] }).collect();
        let truth = ground_truth_depth(&cams[0], &surface);
        let finite: Vec<f32> = truth.as_slice().iter().copied().filter(|d| d.is_finite()).collect();
        let lo = finite.iter().copied().fold(f32::INFINITY, f32::min) as f64 - 0.03;
        let hi = finite.iter().copied().fold(0.0f32, f32::max) as f64 + 0.03;
        let opts = SweepOptions {
            n_depths: 48,
            cost: CostOptions { window_size: 7, ..CostOptions::default() },
            ..SweepOptions::default()
        };
        let map = plane_sweep(reference, &sources, lo, hi, &opts).unwrap();
        let mut errors: Vec<f64> = map
            .depth()
            .as_slice()
            .iter()
            .zip(truth.as_slice())
            .filter(|(d, t)| d.is_finite() && t.is_finite())
            .map(|(d, t)| (d - t).abs() as f64)
            .collect();
        errors.sort_by(f64::total_cmp);
        let n = truth.size().area();
        let q = |f: f64| errors[(f * (errors.len() - 1) as f64) as usize];
        assert!(errors.len() as f64 > 0.7 * n as f64, "valid {} of {n}", errors.len());
        assert!(q(0.5) < 0.004 && q(0.8) < 0.01, "median {} 80% {}", q(0.5), q(0.8));
    }

    #[test]
    fn setup_errors() {
        let rig = RigParams::preset(RigPreset::Tiny).build().unwrap();
        let cam = undistorted_camera(&rig, "cam00").unwrap();
        let img = GrayImage::from_elem(cam.size(), 0.5);
        let small = GrayImage::from_elem(ImageSize::new(10, 10), 0.5);
        let v = View { camera: &cam, image: &img };
        let opts = SweepOptions::default();
        assert!(matches!(plane_sweep(v, &[], 0.1, 0.5, &opts), Err(SweepError::NoSources)));
        assert!(matches!(plane_sweep(v, &[v], 0.5, 0.1, &opts), Err(SweepError::BadRange { .. })));
        let bad = View { camera: &cam, image: &small };
        assert!(matches!(
            plane_sweep(v, &[bad], 0.1, 0.5, &opts),
            Err(SweepError::SizeMismatch { view: 1, .. })
        ));
    }
}
