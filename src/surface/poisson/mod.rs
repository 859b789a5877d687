//! Screened Poisson surface reconstruction (Kazhdan & Hoppe 2013), written for this crate.
//!
//! Why our own: the binding to Kazhdan's PoissonRecon (`poissonrecon` 0.1) does not build here
//! (its build script runs bindgen, which needs libclang, absent on this and typical CI
//! machines), and it returns neither vertex densities (needed for the reference's trimming)
//! nor anything but positions and triangles; the pure-Rust `poisson_reconstruction` crate is
//! reported ~150× slower and keeps densities private. See `docs/surface.md` for the
//! measurements and the method in more detail.
//!
//! The method, in the unit cube that holds 1.1 × the cloud's bounding box:
//! 1. Each oriented sample gets an area weight aₛ = π r²/k from the distance r to its k-th
//!    nearest neighbour (one query per occupied finest cell), so dense and sparse regions
//!    contribute per unit area, not per point.
//! 2. The indicator χ minimises ∫|∇χ − V|² + α·2^d·Σ aₛ χ(pₛ)², with V = Σ aₛ nₛ δ(· − pₛ)
//!    (the screened Poisson energy; α = 4 as in the paper).
//! 3. Discretised with trilinear elements on a hierarchy of grids: a dense base level (depth
//!    ≤ 5), then at each finer depth only the cells within a few cells of a sample (a sparse
//!    "octree" of bricks). Each level is solved by preconditioned CG with Dirichlet values on
//!    the border of its band taken from the coarser solution (cascadic multigrid), so the
//!    work grows with the surface area, not the volume.
//! 4. The iso-value is the mean of χ at the samples; the surface is extracted by marching
//!    cubes at the finest depth wherever it runs, including far from samples (holes are
//!    closed there from the coarser levels' solution).
//! 5. Each vertex gets a density (samples per kernel cell, from trilinear splats two levels
//!    above the finest, or coarser where the band ends), and the vertices below the 1 %
//!    density quantile are removed with their triangles, as the reference does with Open3D's
//!    densities.

mod grid;
mod mc;
mod solver;

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::mesh::TriangleMesh;
use crate::spatial::PointIndex;
use crate::surface::SurfaceError;
use grid::{B, B3, INACTIVE, Level, eval_hierarchy};
use solver::{CgSettings, System};

/// Options of the Poisson reconstruction. Defaults follow Open3D/PoissonRecon.
#[derive(Clone, Debug, PartialEq)]
pub struct PoissonOptions {
    /// Finest depth: 2^depth cells across the reconstruction cube. Valid: 1..=11. Default 9.
    pub depth: u32,
    /// Reconstruction cube edge / the cloud's largest bounding-box extent. Default 1.1.
    pub scale: f64,
    /// Screening weight α (0 gives plain Poisson). Default 4, as in Kazhdan & Hoppe 2013.
    pub point_weight: f64,
    /// Vertices whose density is below this quantile of all densities are removed.
    /// Default 0.01 (the reference); 0 keeps everything.
    pub density_quantile: f64,
}

impl Default for PoissonOptions {
    fn default() -> Self {
        Self { depth: 9, scale: 1.1, point_weight: 4.0, density_quantile: 0.01 }
    }
}

/// A Poisson mesh before density trimming, with one density per vertex.
#[derive(Clone, Debug, PartialEq)]
pub struct PoissonMesh {
    /// The iso-surface (positions in world metres, faces wound to face along the normals).
    pub mesh: TriangleMesh,
    /// Sample density at each vertex (samples per kernel cell; where no sample is near, minus
    /// the distance to the nearest one in kernel cells).
    pub densities: Vec<f64>,
}

/// Cells around each sample that every finer level solves on (Chebyshev radius, in that
/// level's cells). The coarser solution that sets the band's border values has blurred the
/// indicator's step over about two of its cells, i.e. four of this level's; a radius of 4
/// puts the border where that blur has settled.
const BAND_CELLS: usize = 4;
/// Depth of the dense base level (32³ cells): the whole cube, so far-field values exist.
const BASE_DEPTH: u32 = 5;
/// Neighbours used for each sample's area weight.
const AREA_NEIGHBOURS: usize = 10;
/// Indicator values this close to the iso-value count as on it (the indicator jumps by about
/// 1 across the surface, so this is far below any real variation).
const ISO_SNAP: f64 = 1e-9;
/// Largest supported depth (the brick directory of depth 11 is 68 MB).
pub const MAX_DEPTH: u32 = 11;

/// Screened Poisson reconstruction with the reference's density trimming.
pub fn reconstruct_poisson(
    cloud: &PointCloud,
    options: &PoissonOptions,
) -> Result<TriangleMesh, SurfaceError> {
    let PoissonMesh { mesh, densities } = poisson_untrimmed(cloud, options)?;
    Ok(trim_by_density(&mesh, &densities, options.density_quantile))
}

/// Screened Poisson reconstruction without trimming; returns the per-vertex densities.
pub fn poisson_untrimmed(
    cloud: &PointCloud,
    options: &PoissonOptions,
) -> Result<PoissonMesh, SurfaceError> {
    let Some(normals) = cloud.normals() else {
        return Err(SurfaceError::MissingNormals { method: "poisson" });
    };
    if !(1..=MAX_DEPTH).contains(&options.depth) {
        return Err(SurfaceError::InvalidOption {
            name: "poisson_depth",
            value: options.depth.to_string(),
            reason: "must be between 1 and 11",
        });
    }
    if !(options.scale.is_finite() && options.scale >= 1.0) {
        return Err(SurfaceError::InvalidOption {
            name: "poisson scale",
            value: options.scale.to_string(),
            reason: "must be at least 1 (the cube must hold the cloud)",
        });
    }
    let _span =
        tracing::info_span!("poisson", n_points = cloud.len(), depth = options.depth).entered();

    // Oriented samples: finite positions with usable normals.
    let (points, dirs): (Vec<Point3<f64>>, Vec<Vector3<f64>>) = cloud
        .points()
        .iter()
        .zip(normals)
        .filter(|(p, n)| p.coords.iter().all(|v| v.is_finite()) && n.iter().all(|v| v.is_finite()))
        .filter_map(|(p, n)| n.try_normalize(1e-12).map(|n| (*p, n)))
        .unzip();
    if points.len() < 4 {
        return Err(SurfaceError::TooFewPoints { method: "poisson", need: 4, got: points.len() });
    }
    let (lo, hi) = crate::cloud::bounds_of(&points).expect("at least 4 points");
    let extent = (hi - lo).max();
    if extent <= 0.0 {
        return Err(SurfaceError::Degenerate {
            method: "poisson",
            reason: "all points coincide".into(),
        });
    }
    let size = options.scale * extent;
    let origin = nalgebra::center(&lo, &hi) - Vector3::repeat(0.5 * size);
    let unit: Vec<[f64; 3]> =
        points.iter().map(|p| ((p - origin) / size).into()).collect::<Vec<_>>();

    let weights =
        tracing::debug_span!("area_weights").in_scope(|| area_weights(&unit, options.depth));
    let depth = options.depth;
    let base = BASE_DEPTH.min(depth);
    let kernel_depth = depth.saturating_sub(2).max(base);

    // Each sample's normal is spread over the trilinear basis of the finest depth whose
    // cells are at least √2 sample spacings wide (√(2aₛ)), so sparse samples give a smooth
    // field instead of a spike per sample (PoissonRecon's samples-per-node rule, ≈ 2 here).
    let splat_depth: Vec<u32> = weights
        .iter()
        .map(|&a| (-0.5 * (1.5 * a).log2()).floor().clamp(f64::from(base), f64::from(depth)) as u32)
        .collect();

    let mut levels: Vec<Level> = Vec::new();
    let mut vfield: Vec<[f64; 3]> = Vec::new();
    for d in base..=depth {
        let _lspan = tracing::debug_span!("poisson_level", depth = d).entered();
        let mut level = if d == base {
            Level::dense(d)
        } else {
            tracing::debug_span!("band")
                .in_scope(|| Level::band(d, &sample_cells(&unit, d), BAND_CELLS))
        };
        if let Some(coarse) = levels.last() {
            tracing::debug_span!("prolongate").in_scope(|| prolongate(&levels, coarse, &mut level));
        }
        // V on this level: the coarser levels' splats (exactly representable here) plus the
        // samples splatted at this depth.
        let mut v = match levels.last() {
            Some(coarse) => prolongate_field(coarse, &vfield, &level),
            None => vec![[0.0; 3]; level.x.len()],
        };
        for (s, u) in unit.iter().enumerate() {
            if splat_depth[s] == d {
                splat_normal(&level, *u, dirs[s] * weights[s], &mut v);
            }
        }
        let sys = tracing::debug_span!("system").in_scope(|| {
            let mut sys = System { rhs: solver::divergence(&level, &v), screen: Vec::new() };
            point_terms(
                &level,
                &unit,
                &dirs,
                &weights,
                &splat_depth,
                d,
                options.point_weight,
                &mut sys,
            );
            sys
        });
        let settings = if d == base {
            CgSettings { rel_tol: 1e-6, max_iter: 1000 }
        } else {
            CgSettings { rel_tol: 1e-4, max_iter: 200 }
        };
        let stats =
            tracing::debug_span!("cg").in_scope(|| solver::solve(&mut level, &sys, settings));
        tracing::debug!(
            depth = d,
            bricks = level.n_bricks(),
            unknowns = stats.n_unknowns,
            iterations = stats.iterations,
            rel_residual = stats.rel_residual,
            "poisson level solved"
        );
        vfield = v;
        levels.push(level);
    }
    let top = levels.len() - 1;

    // Iso-value: the mean indicator at the samples (all inside the finest band).
    let iso = tracing::debug_span!("iso").in_scope(|| {
        // Collected, then summed in order: a parallel float sum would depend on the split.
        let values: Vec<f64> = unit.par_iter().map(|u| eval_hierarchy(&levels, top, *u)).collect();
        values.iter().sum::<f64>() / unit.len() as f64
    });

    let cells = tracing::debug_span!("surface_cells").in_scope(|| surface_cells(&levels, iso));
    let finest = &levels[top];
    let value = |i: usize, j: usize, k: usize| match finest.slot(i, j, k) {
        Some(s) if finest.node[s] != INACTIVE => finest.x[s],
        _ => {
            let n = finest.n as f64;
            eval_hierarchy(&levels, top, [i as f64 / n, j as f64 / n, k as f64 / n])
        }
    };
    // Values within a hair of the iso-value are snapped onto it: a sample plane that lies
    // exactly on a grid plane (common in synthetic data) otherwise makes the surface flicker
    // across the node layer and produces flipped slivers.
    let snapped = |i: usize, j: usize, k: usize| {
        let f = value(i, j, k);
        if (f - iso).abs() <= ISO_SNAP { iso } else { f }
    };
    let (grid_vertices, faces) = tracing::debug_span!("marching_cubes")
        .in_scope(|| mc::extract(finest.n, &cells, snapped, iso));

    let densities = tracing::debug_span!("densities").in_scope(|| {
        vertex_densities(&levels, &unit, (kernel_depth - base) as usize, &grid_vertices)
    });
    let scale = size / finest.n as f64;
    let vertices: Vec<Point3<f64>> =
        grid_vertices.iter().map(|v| origin + v.coords * scale).collect();
    let mesh = TriangleMesh::from_parts(vertices, faces, None, None).map_err(|e| {
        SurfaceError::Degenerate { method: "poisson", reason: format!("internal error: {e}") }
    })?;
    Ok(PoissonMesh { mesh, densities })
}

/// Removes the vertices whose density is below the `quantile` of all densities (numpy's
/// linear quantile, as the reference) and the triangles that used them.
pub fn trim_by_density(mesh: &TriangleMesh, densities: &[f64], quantile: f64) -> TriangleMesh {
    if densities.is_empty() || quantile <= 0.0 {
        return mesh.clone();
    }
    let mut sorted = densities.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = quantile.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    let threshold = if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    };
    let keep: Vec<bool> = densities.iter().map(|&d| d >= threshold).collect();
    let mut remap = vec![u32::MAX; mesh.n_vertices()];
    let mut vertices = Vec::new();
    for (i, v) in mesh.vertices().iter().enumerate() {
        if keep[i] {
            // Fewer than the input's vertex count, which fit in u32.
            remap[i] = vertices.len() as u32;
            vertices.push(*v);
        }
    }
    let faces: Vec<[u32; 3]> = mesh
        .faces()
        .iter()
        .filter(|t| t.iter().all(|&v| keep[v as usize]))
        .map(|t| t.map(|v| remap[v as usize]))
        .collect();
    // Only kept vertices are referenced, all remapped into range.
    TriangleMesh::from_parts(vertices, faces, None, None).expect("trimmed mesh is consistent")
}

/// Area per sample in unit-cube units: π r²/k with r the distance to the k-th neighbour.
///
/// One query per occupied finest cell (its first sample speaks for all samples in the cell):
/// the estimate varies on the scale of r, which spans several cells anyway, and dense clouds
/// have several samples per cell, so this divides the k-d tree work accordingly.
fn area_weights(unit: &[[f64; 3]], depth: u32) -> Vec<f64> {
    let pts: Vec<Point3<f64>> = unit.iter().map(|u| Point3::from(*u)).collect();
    let tree = PointIndex::new(&pts);
    let k = AREA_NEIGHBOURS.min(pts.len() - 1);
    let n = 1u64 << depth;
    let mut keyed: Vec<(u64, u32)> = unit
        .par_iter()
        .enumerate()
        .map(|(i, u)| {
            let c = u.map(|v| ((v * n as f64).floor().max(0.0) as u64).min(n - 1));
            // Index < n_samples ≤ u32::MAX (checked by the k-d tree).
            (c[0] + n * (c[1] + n * c[2]), i as u32)
        })
        .collect();
    keyed.par_sort_unstable();
    let starts: Vec<usize> =
        (0..keyed.len()).filter(|&i| i == 0 || keyed[i].0 != keyed[i - 1].0).collect();
    // Duplicated samples would get no area; a floor keeps them from vanishing entirely.
    let floor = 1e-14;
    let per_cell: Vec<f64> = starts
        .par_iter()
        .map(|&s| {
            let r2 = tree.kth_distance(&pts[keyed[s].1 as usize], k + 1).powi(2);
            (std::f64::consts::PI * r2 / k as f64).max(floor)
        })
        .collect();
    let mut weights = vec![0.0; unit.len()];
    for (g, &s) in starts.iter().enumerate() {
        let end = starts.get(g + 1).copied().unwrap_or(keyed.len());
        for &(_, i) in &keyed[s..end] {
            weights[i as usize] = per_cell[g];
        }
    }
    weights
}

/// Sorted unique cells of level `depth` that contain samples.
fn sample_cells(unit: &[[f64; 3]], depth: u32) -> Vec<[usize; 3]> {
    let n = 1usize << depth;
    let last = (n - 1) as f64;
    let mut cells: Vec<[usize; 3]> = unit
        .par_iter()
        .map(|u| {
            let c = u.map(|v| (v * n as f64).floor().clamp(0.0, last) as usize);
            [c[2], c[1], c[0]]
        })
        .collect();
    cells.par_sort_unstable();
    cells.dedup();
    cells.into_iter().map(|[k, j, i]| [i, j, k]).collect()
}

/// Initial values (and the Dirichlet data on the band border) of a new level: the coarser
/// solution, interpolated (exact: the coarse trilinear space is contained in the fine one).
fn prolongate(levels: &[Level], coarse: &Level, level: &mut Level) {
    let n = level.n as f64;
    let bricks = level.bricks.clone();
    let node = &level.node;
    level.x.par_chunks_mut(B3).zip(bricks.par_iter()).enumerate().for_each(|(b, (x, brick))| {
        for (l, x) in x.iter_mut().enumerate() {
            if node[b * B3 + l] == INACTIVE {
                continue;
            }
            let (i, j, k) =
                (brick[0] * B + l % B, brick[1] * B + (l / B) % B, brick[2] * B + l / (B * B));
            let xi = [i as f64 * 0.5, j as f64 * 0.5, k as f64 * 0.5];
            *x = coarse.eval_in_active_cell(xi).unwrap_or_else(|| {
                eval_hierarchy(levels, levels.len() - 1, [i as f64 / n, j as f64 / n, k as f64 / n])
            });
        }
    });
}

/// Adds a sample's weighted normal `an` to the node coefficients of V on `level`: the
/// sample's trilinear weights divided by the basis function's integral h³, so V integrates
/// to aₛnₛ.
fn splat_normal(level: &Level, u: [f64; 3], an: Vector3<f64>, v: &mut [[f64; 3]]) {
    let n = level.n as f64;
    let (c, t) = level.locate(u.map(|x| x * n));
    let inv_vol = n * n * n;
    for corner in 0..8 {
        let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
        let w: f64 = (0..3).map(|a| if d[a] == 1 { t[a] } else { 1.0 - t[a] }).product();
        if let Some(slot) = level.slot(c[0] + d[0], c[1] + d[1], c[2] + d[2]) {
            for a in 0..3 {
                v[slot][a] += w * inv_vol * an[a];
            }
        }
    }
}

/// V of the coarser level at this level's active nodes (trilinear interpolation, exact).
fn prolongate_field(coarse: &Level, field: &[[f64; 3]], level: &Level) -> Vec<[f64; 3]> {
    let mut out = vec![[0.0; 3]; level.x.len()];
    out.par_chunks_mut(B3).enumerate().for_each(|(b, out)| {
        let brick = level.bricks[b];
        for (l, o) in out.iter_mut().enumerate() {
            if level.node[b * B3 + l] == INACTIVE {
                continue;
            }
            let (i, j, k) =
                (brick[0] * B + l % B, brick[1] * B + (l / B) % B, brick[2] * B + l / (B * B));
            let (c, t) = coarse.locate([i as f64 * 0.5, j as f64 * 0.5, k as f64 * 0.5]);
            for corner in 0..8 {
                let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
                let w: f64 = (0..3).map(|a| if d[a] == 1 { t[a] } else { 1.0 - t[a] }).product();
                if w == 0.0 {
                    continue;
                }
                if let Some(s) = coarse.slot(c[0] + d[0], c[1] + d[1], c[2] + d[2]) {
                    for a in 0..3 {
                        o[a] += w * field[s][a];
                    }
                }
            }
        }
    });
    out
}

/// Point terms of level `d`: for samples splatted at a finer depth, their V is narrower than
/// this level's cells and enters as a point source, Σₛ aₛ nₛ·∇φᵢ(pₛ); and the lumped
/// screening α·2^d·Σₛ aₛ φᵢ(pₛ) for every sample.
#[allow(clippy::too_many_arguments)]
fn point_terms(
    level: &Level,
    unit: &[[f64; 3]],
    dirs: &[Vector3<f64>],
    weights: &[f64],
    splat_depth: &[u32],
    d: u32,
    alpha: f64,
    sys: &mut System,
) {
    let n = level.n as f64;
    sys.screen = vec![0.0; level.x.len()];
    // Sequential scatter: deterministic, and cheap next to the solve.
    for (s, u) in unit.iter().enumerate() {
        let (c, t) = level.locate(u.map(|v| v * n));
        let a = weights[s];
        let point_source = splat_depth[s] > d;
        for corner in 0..8 {
            let dd = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
            let w = |ax: usize| if dd[ax] == 1 { t[ax] } else { 1.0 - t[ax] };
            let sg = |ax: usize| if dd[ax] == 1 { 1.0 } else { -1.0 };
            let (wx, wy, wz) = (w(0), w(1), w(2));
            let Some(slot) = level.slot(c[0] + dd[0], c[1] + dd[1], c[2] + dd[2]) else {
                continue;
            };
            if point_source {
                // ∇ in unit-cube coordinates = n · ∇ in cell units.
                let grad = Vector3::new(sg(0) * wy * wz, wx * sg(1) * wz, wx * wy * sg(2)) * n;
                sys.rhs[slot] += a * dirs[s].dot(&grad);
            }
            sys.screen[slot] += alpha * n * a * wx * wy * wz;
        }
    }
}

/// Finest-level cells to polygonise: every active cell of the finest level, plus cells of
/// the far field (where only coarser levels exist) whose corners straddle `iso`, found by
/// descending from the base level.
fn surface_cells(levels: &[Level], iso: f64) -> Vec<[usize; 3]> {
    let base = &levels[0];
    let n0 = base.n;
    let mut cand: Vec<[usize; 3]> =
        (0..n0 * n0 * n0).map(|m| [m % n0, (m / n0) % n0, m / (n0 * n0)]).collect();
    let straddles = |li: usize, cell: [usize; 3]| {
        let n = levels[li].n as f64;
        let (mut below, mut above) = (false, false);
        for q in 0..8 {
            let p = [cell[0] + (q & 1), cell[1] + ((q >> 1) & 1), cell[2] + ((q >> 2) & 1)];
            if eval_hierarchy(levels, li, p.map(|v| v as f64 / n)) < iso {
                below = true;
            } else {
                above = true;
            }
        }
        below && above
    };
    for li in 0..levels.len() - 1 {
        let fine = &levels[li + 1];
        cand = cand
            .par_iter()
            .flat_map_iter(|&[i, j, k]| {
                // Children that are inactive at the finer level (and so at every finer one)
                // carry this cell's trilinear function, whose values are convex combinations
                // of the corner values: if the corners do not straddle, neither do they.
                let parent_straddles = straddles(li, [i, j, k]);
                (0..8).filter_map(move |c| {
                    let ch = [2 * i + (c & 1), 2 * j + ((c >> 1) & 1), 2 * k + ((c >> 2) & 1)];
                    if fine.is_cell_active(ch[0], ch[1], ch[2])
                        || (parent_straddles && straddles(li + 1, ch))
                    {
                        Some(ch)
                    } else {
                        None
                    }
                })
            })
            .collect();
    }
    cand.par_sort_unstable_by_key(|c| [c[2], c[1], c[0]]);
    cand
}

/// Density at each vertex (grid units of the finest level): trilinear interpolation of the
/// sample counts splatted on level `kernel` (an index into `levels`), or on the finest coarser
/// level whose band contains the vertex, rescaled to the kernel level's cell volume. Where no
/// splat reaches, the density is minus the distance to the nearest sample (in kernel cells),
/// so that unsupported vertices are still ranked, farthest lowest, as the trimming needs.
fn vertex_densities(
    levels: &[Level],
    unit: &[[f64; 3]],
    kernel: usize,
    grid_vertices: &[Point3<f64>],
) -> Vec<f64> {
    let splats: Vec<Vec<f64>> = levels[..=kernel]
        .par_iter()
        .map(|level| {
            let n = level.n as f64;
            let mut counts = vec![0.0; level.x.len()];
            for u in unit {
                let (c, t) = level.locate(u.map(|v| v * n));
                for corner in 0..8 {
                    let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
                    let w: f64 =
                        (0..3).map(|a| if d[a] == 1 { t[a] } else { 1.0 - t[a] }).product();
                    if let Some(s) = level.slot(c[0] + d[0], c[1] + d[1], c[2] + d[2]) {
                        counts[s] += w;
                    }
                }
            }
            counts
        })
        .collect();
    let finest_n = levels[levels.len() - 1].n as f64;
    let splat_density = |u: [f64; 3]| -> f64 {
        for li in (0..=kernel).rev() {
            let level = &levels[li];
            let n = level.n as f64;
            let (c, t) = level.locate(u.map(|x| x * n));
            if !level.is_cell_active(c[0], c[1], c[2]) {
                continue;
            }
            let mut acc = 0.0;
            for corner in 0..8 {
                let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
                let w: f64 = (0..3).map(|a| if d[a] == 1 { t[a] } else { 1.0 - t[a] }).product();
                if let Some(s) = level.slot(c[0] + d[0], c[1] + d[1], c[2] + d[2]) {
                    acc += w * splats[li][s];
                }
            }
            // A coarser cell holds 8× the volume per level: rescale to kernel cells.
            return acc / 8f64.powi((kernel - li) as i32);
        }
        0.0
    };
    let mut densities: Vec<f64> = grid_vertices
        .par_iter()
        .map(|v| splat_density([v.x / finest_n, v.y / finest_n, v.z / finest_n]))
        .collect();
    if densities.iter().any(|&d| d <= 0.0) {
        let pts: Vec<Point3<f64>> = unit.iter().map(|u| Point3::from(*u)).collect();
        let tree = PointIndex::new(&pts);
        let kernel_cells = levels[kernel].n as f64;
        densities.par_iter_mut().zip(grid_vertices).for_each(|(d, v)| {
            if *d <= 0.0 {
                let u = Point3::from(v.coords / finest_n);
                let nearest = pts[tree.nearest(&u).unwrap().index];
                *d = -(u - nearest).norm() * kernel_cells;
            }
        });
    }
    densities
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::test_clouds::{
        Rng, faces_outward, heightfield_cloud, plane_cloud, sphere_cloud,
    };

    fn opts(depth: u32) -> PoissonOptions {
        PoissonOptions { depth, ..Default::default() }
    }

    /// Reference §10.10: 100 points on z = 1.5 over [−0.1, 0.1]², normals (0, 0, −1), depth 6:
    /// non-empty, mean z within 0.1 of 1.5.
    #[test]
    fn plane_reference_case() {
        let cloud = plane_cloud(100, 1.5, &mut Rng::new(7));
        let mesh = reconstruct_poisson(&cloud, &opts(6)).unwrap();
        assert!(!mesh.is_empty());
        let mean = mesh.vertices().iter().map(|v| v.z).sum::<f64>() / mesh.n_vertices() as f64;
        assert!((mean - 1.5).abs() < 0.1, "{mean}");
        // In fact the plane is reproduced within 0.1 mm (3 % of a 3.4 mm cell) where sampled.
        for v in mesh.vertices().iter().filter(|v| v.x.abs() < 0.08 && v.y.abs() < 0.08) {
            assert!((v.z - 1.5).abs() < 1e-4, "{v:?}");
        }
        // Faces face along the sample normals (up, −Z).
        let up = mesh.face_normals().iter().filter(|n| n.z < 0.0).count();
        assert!(up as f64 > 0.95 * mesh.n_faces() as f64);
    }

    /// Reference §10.10: density trimming with two far outliers keeps fewer than 10 000
    /// vertices (and removes some).
    #[test]
    fn trimming_with_far_outliers() {
        let cloud = plane_cloud(100, 1.5, &mut Rng::new(8));
        let (mut p, mut n, mut c) = cloud.into_parts();
        let (n, c) = (n.as_mut().unwrap(), c.as_mut().unwrap());
        for (x, z) in [(2.0, 3.0), (-2.0, 0.0)] {
            p.push(Point3::new(x, 0.0, z));
            n.push(-Vector3::z());
            c.push([0, 0, 0]);
        }
        let cloud = PointCloud::from_parts(p, Some(n.clone()), Some(c.clone())).unwrap();
        let raw = poisson_untrimmed(&cloud, &opts(6)).unwrap();
        let trimmed = trim_by_density(&raw.mesh, &raw.densities, 0.01);
        assert!(trimmed.n_vertices() < 10_000, "{}", trimmed.n_vertices());
        assert!(trimmed.n_vertices() < raw.mesh.n_vertices());
        assert!(!trimmed.is_empty());
    }

    /// A sphere of radius 0.3 m at depth 7 (cells of 5.2 mm) sampled every ≈ 17 mm: trilinear
    /// elements and linear edge interpolation alone would err by h²/(8R) ≈ 0.01 mm, so what
    /// remains is the sparse sampling (three cells between samples). Bounds: median below a
    /// tenth of a cell, maximum below half a cell, no bias; and the surface is closed.
    #[test]
    fn sphere_accuracy_and_closure() {
        let centre = Point3::new(0.1, -0.2, 1.0);
        let cloud = sphere_cloud(4000, centre, 0.3);
        let raw = poisson_untrimmed(&cloud, &opts(7)).unwrap();
        let mesh = &raw.mesh;
        let cell = 1.1 * 0.6 / 128.0;
        let signed: Vec<f64> = mesh.vertices().iter().map(|v| (v - centre).norm() - 0.3).collect();
        let mean = signed.iter().sum::<f64>() / signed.len() as f64;
        let mut errs: Vec<f64> = signed.iter().map(|e| e.abs()).collect();
        errs.sort_by(f64::total_cmp);
        let (median, max) = (errs[errs.len() / 2], errs[errs.len() - 1]);
        assert!(median < 0.1 * cell, "median {median}");
        assert!(max < 0.5 * cell, "max {max}");
        assert!(mean.abs() < 0.02 * cell, "bias {mean}");
        let mut directed = std::collections::HashSet::new();
        for t in mesh.faces() {
            for k in 0..3 {
                directed.insert((t[k], t[(k + 1) % 3]));
            }
        }
        assert!(directed.iter().all(|&(a, b)| directed.contains(&(b, a))), "closed surface");
        // Outward faces.
        assert_eq!(faces_outward(mesh, centre), mesh.n_faces());
    }

    /// A noisy sine height field (σ = 0.3 mm) at depth 8 over a 0.4 m square (cells 1.7 mm):
    /// median vertex error to the true surface below 0.3 mm over the sampled area.
    #[test]
    fn noisy_heightfield_accuracy() {
        let h = |x: f64, y: f64| 1.0 + 0.01 * (15.0 * x).sin() * (10.0 * y).cos();
        let g = |x: f64, y: f64| {
            (0.15 * (15.0 * x).cos() * (10.0 * y).cos(), -0.1 * (15.0 * x).sin() * (10.0 * y).sin())
        };
        let cloud = heightfield_cloud(20_000, (-0.2, 0.2), h, g, 3e-4, &mut Rng::new(9));
        let mesh = reconstruct_poisson(&cloud, &opts(8)).unwrap();
        let mut errs: Vec<f64> = mesh
            .vertices()
            .iter()
            .filter(|v| v.x.abs() < 0.19 && v.y.abs() < 0.19)
            .map(|v| (v.z - h(v.x, v.y)).abs())
            .collect();
        assert!(errs.len() > 1000);
        errs.sort_by(f64::total_cmp);
        let median = errs[errs.len() / 2];
        assert!(median < 3e-4, "median {median}");
    }

    #[test]
    fn option_and_input_errors() {
        let cloud = plane_cloud(50, 1.0, &mut Rng::new(10));
        let e = |o: PoissonOptions| reconstruct_poisson(&cloud, &o).unwrap_err().to_string();
        assert!(e(opts(0)).contains("poisson_depth"));
        assert!(e(opts(12)).contains("poisson_depth"));
        assert!(e(PoissonOptions { scale: 0.5, ..opts(5) }).contains("scale"));
        let same =
            PointCloud::from_parts(vec![Point3::origin(); 5], Some(vec![Vector3::z(); 5]), None)
                .unwrap();
        assert!(reconstruct_poisson(&same, &opts(5)).unwrap_err().to_string().contains("coincide"));
        let few =
            PointCloud::from_parts(vec![Point3::origin(); 3], Some(vec![Vector3::z(); 3]), None)
                .unwrap();
        assert!(
            reconstruct_poisson(&few, &opts(5)).unwrap_err().to_string().contains("at least 4")
        );
    }

    #[test]
    fn quantile_trimming_matches_numpy_linear() {
        let v: Vec<_> = (0..5).map(|i| Point3::new(f64::from(i), 0.0, 0.0)).collect();
        let mesh =
            TriangleMesh::from_parts(v, vec![[0, 1, 2], [1, 3, 4], [2, 3, 4]], None, None).unwrap();
        // Quantile 0.3 of [1, 2, 3, 4, 5] is 2.2 (numpy linear): vertices 0 and 1 go.
        let out = trim_by_density(&mesh, &[1.0, 2.0, 3.0, 4.0, 5.0], 0.3);
        assert_eq!(out.n_vertices(), 3);
        assert_eq!(out.faces(), &[[0, 1, 2]]);
        assert_eq!(trim_by_density(&mesh, &[1.0; 5], 0.01), mesh);
    }
}
