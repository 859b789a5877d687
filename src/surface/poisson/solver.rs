//! The screened Poisson system of one level and its conjugate-gradient solve.
//!
//! Discretisation: trilinear (Q1) finite elements on the level's grid, in unit-cube
//! coordinates with cell size h = 2^-depth. The operator is the assembled stiffness matrix
//! (∫∇φᵢ·∇φⱼ, which for Q1 on a cube is h times a 27-point stencil: 8/3 at the centre, 0 for
//! the 6 face neighbours, −1/6 for the 12 edge neighbours, −1/12 for the 8 corner neighbours)
//! plus the screening term as a lumped (row-sum) diagonal. Cells outside the domain do not
//! exist, which is the natural (Neumann) boundary condition, as in PoissonRecon's default.
//!
//! The solve is Jacobi-preconditioned CG over the UNKNOWN nodes with FIXED nodes as Dirichlet
//! data. Work is parallel over bricks; every reduction is summed per brick and then in brick
//! order, so results do not depend on the thread count or scheduling.

use rayon::prelude::*;

use super::grid::{B, B3, Level, UNKNOWN};

/// Q1 element stiffness on the unit cube, by the number of coordinates in which two corners
/// differ (0: same corner, 1: edge, 2: face diagonal, 3: body diagonal).
const K_BY_HAMMING: [f64; 4] = [1.0 / 3.0, 0.0, -1.0 / 12.0, -1.0 / 12.0];

/// Padded brick side: one halo node on each side.
const P: usize = B + 2;

/// The per-level system: right-hand side and screening diagonal per storage slot.
pub(super) struct System {
    /// ∫ V·∇φᵢ per slot.
    pub rhs: Vec<f64>,
    /// Lumped screening weight per slot.
    pub screen: Vec<f64>,
}

/// Convergence settings of [`solve`].
#[derive(Clone, Copy, Debug)]
pub(super) struct CgSettings {
    /// Stop when ‖r‖ ≤ `rel_tol` · ‖r₀‖.
    pub rel_tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
}

/// Statistics of one solve (for tracing and tests).
#[derive(Clone, Copy, Debug)]
pub(super) struct CgStats {
    /// Iterations run.
    pub iterations: usize,
    /// Final ‖r‖ / ‖r₀‖ (0 when r₀ = 0).
    pub rel_residual: f64,
    /// Number of unknowns.
    pub n_unknowns: usize,
}

/// Solves the level's system in place (`level.x` holds the initial guess and the Dirichlet
/// values on entry, the solution on return).
pub(super) fn solve(level: &mut Level, sys: &System, settings: CgSettings) -> CgStats {
    let nbr = level.neighbour_bricks();
    let h = 1.0 / level.n as f64;
    let n_slots = level.x.len();
    let unknown: Vec<bool> = level.node.iter().map(|&s| s == UNKNOWN).collect();
    let n_unknowns = unknown.iter().filter(|&&u| u).count();

    let diag = diagonal(level, sys, h);
    // r = b − A·x on the unknowns (x includes the Dirichlet values).
    let mut ax = vec![0.0; n_slots];
    apply(level, &nbr, &level.x, &sys.screen, h, &mut ax);
    let mut r: Vec<f64> = (0..n_slots)
        .into_par_iter()
        .map(|s| if unknown[s] { sys.rhs[s] - ax[s] } else { 0.0 })
        .collect();
    let mut p: Vec<f64> =
        r.par_iter().zip(&diag).map(|(r, d)| if *d > 0.0 { r / d } else { 0.0 }).collect();
    let mut rz = dot(&r, &p);
    let r0 = dot(&r, &r).sqrt();
    let mut stats = CgStats { iterations: 0, rel_residual: 0.0, n_unknowns };
    if r0 == 0.0 {
        return stats;
    }
    let mut q = ax;
    for it in 1..=settings.max_iter {
        apply(level, &nbr, &p, &sys.screen, h, &mut q);
        // Rows of FIXED/INACTIVE nodes are not part of the system.
        q.par_iter_mut().zip(&unknown).for_each(|(q, &u)| {
            if !u {
                *q = 0.0;
            }
        });
        let pq = dot(&p, &q);
        if pq <= 0.0 {
            break;
        }
        let alpha = rz / pq;
        level.x.par_iter_mut().zip(&p).zip(&unknown).for_each(|((x, p), &u)| {
            if u {
                *x += alpha * p;
            }
        });
        r.par_iter_mut().zip(&q).for_each(|(r, q)| *r -= alpha * q);
        let rr = dot(&r, &r).sqrt();
        stats.iterations = it;
        stats.rel_residual = rr / r0;
        if rr <= settings.rel_tol * r0 {
            break;
        }
        // z = M⁻¹r is fused into the p update: p = z + β p.
        let rz_new: f64 = dot_with(&r, &diag);
        let beta = rz_new / rz;
        rz = rz_new;
        p.par_iter_mut().zip(&r).zip(&diag).for_each(|((p, r), d)| {
            *p = if *d > 0.0 { r / d + beta * *p } else { 0.0 };
        });
    }
    stats
}

/// Σ aᵢbᵢ, summed per brick then in order (deterministic).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.par_chunks(B3)
        .zip(b.par_chunks(B3))
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// Σ rᵢ²/dᵢ over slots with dᵢ > 0 (the preconditioned r·z), deterministic.
fn dot_with(r: &[f64], d: &[f64]) -> f64 {
    r.par_chunks(B3)
        .zip(d.par_chunks(B3))
        .map(|(r, d)| r.iter().zip(d).map(|(r, d)| if *d > 0.0 { r * r / d } else { 0.0 }).sum())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// Incident cells of node (i, j, k) that exist (inside the domain): bit c set when the cell
/// with lower corner (i − (c&1), j − (c>>1&1), k − (c>>2&1)) is inside.
#[inline]
fn incident_mask(n: usize, i: usize, j: usize, k: usize) -> u8 {
    let mut m = 0;
    for c in 0..8 {
        let d = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
        let p = [i, j, k];
        if (0..3).all(|a| p[a] >= d[a] && p[a] - d[a] < n) {
            m |= 1 << c;
        }
    }
    m
}

/// Jacobi diagonal (0 at non-unknown slots).
fn diagonal(level: &Level, sys: &System, h: f64) -> Vec<f64> {
    let n = level.n;
    let mut diag = vec![0.0; level.x.len()];
    diag.par_chunks_mut(B3).enumerate().for_each(|(b, out)| {
        let [bx, by, bz] = level.bricks[b];
        for (l, d) in out.iter_mut().enumerate() {
            let s = b * B3 + l;
            if level.node[s] != UNKNOWN {
                continue;
            }
            let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
            let cells = incident_mask(n, i, j, k).count_ones();
            *d = h * K_BY_HAMMING[0] * f64::from(cells) + sys.screen[s];
        }
    });
    diag
}

/// out = A·v at UNKNOWN slots (other slots untouched). `v` must be zero or meaningful at
/// every active node the stencil reaches.
fn apply(level: &Level, nbr: &[[usize; 27]], v: &[f64], screen: &[f64], h: f64, out: &mut [f64]) {
    let n = level.n;
    // Face-diagonal and corner weights of the interior stencil (face neighbours weigh 0).
    let w_edge = -h / 6.0;
    let w_corner = -h / 12.0;
    let w_centre = 8.0 * h / 3.0;
    out.par_chunks_mut(B3).enumerate().for_each_init(
        || vec![0.0f64; P * P * P],
        |pad, (b, out)| {
            gather(level, nbr, v, b, pad);
            let [bx, by, bz] = level.bricks[b];
            let at = |x: usize, y: usize, z: usize| x + P * (y + P * z);
            for lz in 0..B {
                for ly in 0..B {
                    for lx in 0..B {
                        let l = lx + B * (ly + B * lz);
                        let s = b * B3 + l;
                        if level.node[s] != UNKNOWN {
                            continue;
                        }
                        let (i, j, k) = (bx * B + lx, by * B + ly, bz * B + lz);
                        let (px, py, pz) = (lx + 1, ly + 1, lz + 1);
                        let interior = i > 0 && j > 0 && k > 0 && i < n && j < n && k < n;
                        let lap = if interior {
                            let mut edges = 0.0;
                            let mut corners = 0.0;
                            for dz in [-1isize, 0, 1] {
                                for dy in [-1isize, 0, 1] {
                                    for dx in [-1isize, 0, 1] {
                                        let nz =
                                            (dx != 0) as u8 + (dy != 0) as u8 + (dz != 0) as u8;
                                        let val = pad[at(
                                            px.wrapping_add_signed(dx),
                                            py.wrapping_add_signed(dy),
                                            pz.wrapping_add_signed(dz),
                                        )];
                                        match nz {
                                            2 => edges += val,
                                            3 => corners += val,
                                            _ => {}
                                        }
                                    }
                                }
                            }
                            w_centre * pad[at(px, py, pz)] + w_edge * edges + w_corner * corners
                        } else {
                            boundary_stencil(n, (i, j, k), (px, py, pz), pad, h)
                        };
                        out[l] = lap + screen[s] * pad[at(px, py, pz)];
                    }
                }
            }
        },
    );
}

/// The stiffness row of a node on the domain boundary, summed over its existing cells.
fn boundary_stencil(
    n: usize,
    (i, j, k): (usize, usize, usize),
    (px, py, pz): (usize, usize, usize),
    pad: &[f64],
    h: f64,
) -> f64 {
    let mask = incident_mask(n, i, j, k);
    let mut acc = 0.0;
    for c in 0..8 {
        if mask & (1 << c) == 0 {
            continue;
        }
        // In cell c the node is the corner with bits `d`; the cell's lower corner is node − d.
        let d = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
        for e in 0..8usize {
            let q = [e & 1, (e >> 1) & 1, (e >> 2) & 1];
            let hamming = (0..3).filter(|&a| q[a] != d[a]).count();
            let w = K_BY_HAMMING[hamming];
            if w == 0.0 {
                continue;
            }
            // Neighbour = node − d + q, in padded coordinates (within ±1 of the node).
            let x = px + q[0] - d[0];
            let y = py + q[1] - d[1];
            let z = pz + q[2] - d[2];
            acc += w * pad[x + P * (y + P * z)];
        }
    }
    h * acc
}

/// ∫φⱼ ∂ₐφᵢ over the unit cell for corners i, j and axis a (multiply by h² for a cell of
/// size h): (±½ along a, from the sign of φᵢ's slope) × the 1-D masses (1/3 same corner
/// bit, 1/6 different) along the other two axes.
fn divergence_element() -> [[[f64; 3]; 8]; 8] {
    let mut e = [[[0.0; 3]; 8]; 8];
    for (i, row) in e.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            for (a, out) in cell.iter_mut().enumerate() {
                let sign = if (i >> a) & 1 == 1 { 0.5 } else { -0.5 };
                let mass: f64 = (0..3)
                    .filter(|&b| b != a)
                    .map(|b| if (i >> b) & 1 == (j >> b) & 1 { 1.0 / 3.0 } else { 1.0 / 6.0 })
                    .product();
                *out = sign * mass;
            }
        }
    }
    e
}

/// bᵢ = ∫ V·∇φᵢ at UNKNOWN slots for a vector field V = Σⱼ vⱼ φⱼ given by its node
/// coefficients `v` (zero where V vanishes); other slots get 0.
pub(super) fn divergence(level: &Level, v: &[[f64; 3]]) -> Vec<f64> {
    let nbr = level.neighbour_bricks();
    let n = level.n;
    let h2 = 1.0 / (n as f64 * n as f64);
    let elem = divergence_element();
    // Bricks whose neighbourhood carries any V: elsewhere the result is 0.
    let has_v: Vec<bool> =
        v.par_chunks(B3).map(|c| c.iter().any(|x| x.iter().any(|&y| y != 0.0))).collect();
    let mut out = vec![0.0; level.x.len()];
    out.par_chunks_mut(B3).enumerate().for_each_init(
        || [vec![0.0f64; P * P * P], vec![0.0f64; P * P * P], vec![0.0f64; P * P * P]],
        |pads, (b, out)| {
            if !nbr[b].iter().any(|&m| m != usize::MAX && has_v[m]) {
                return;
            }
            for (a, pad) in pads.iter_mut().enumerate() {
                gather_with(&nbr, b, pad, |slot| v[slot][a]);
            }
            let [bx, by, bz] = level.bricks[b];
            for (l, o) in out.iter_mut().enumerate() {
                if level.node[b * B3 + l] != UNKNOWN {
                    continue;
                }
                let (lx, ly, lz) = (l % B, (l / B) % B, l / (B * B));
                let (i, j, k) = (bx * B + lx, by * B + ly, bz * B + lz);
                let mask = incident_mask(n, i, j, k);
                let mut acc = 0.0;
                // In incident cell c the node is corner c (its cell is the node minus c's bits).
                for (c, row) in elem.iter().enumerate() {
                    if mask & (1 << c) == 0 {
                        continue;
                    }
                    let d = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
                    for (e, w) in row.iter().enumerate() {
                        let q = [e & 1, (e >> 1) & 1, (e >> 2) & 1];
                        let x = lx + 1 + q[0] - d[0];
                        let y = ly + 1 + q[1] - d[1];
                        let z = lz + 1 + q[2] - d[2];
                        let at = x + P * (y + P * z);
                        acc += w[0] * pads[0][at] + w[1] * pads[1][at] + w[2] * pads[2][at];
                    }
                }
                *o = h2 * acc;
            }
        },
    );
    out
}

/// Copies brick `b` and its one-node halo from `v` into `pad` (zeros where no brick exists).
fn gather(level: &Level, nbr: &[[usize; 27]], v: &[f64], b: usize, pad: &mut [f64]) {
    let _ = level;
    gather_with(nbr, b, pad, |slot| v[slot]);
}

/// [`gather`] for any per-slot value.
fn gather_with(nbr: &[[usize; 27]], b: usize, pad: &mut [f64], value: impl Fn(usize) -> f64) {
    pad.fill(0.0);
    for (m, &nb) in nbr[b].iter().enumerate() {
        if nb == usize::MAX {
            continue;
        }
        let d = [m % 3, (m / 3) % 3, m / 9];
        // Range of this neighbour's local coordinates that falls in the padded window, per
        // axis: d = 0 → last layer (B−1) to pad 0; d = 1 → all B to pad 1..=B; d = 2 → first
        // layer (0) to pad B+1.
        let range = |d: usize| match d {
            0 => (B - 1, B - 1, 0usize),
            1 => (0, B - 1, 1),
            _ => (0, 0, B + 1),
        };
        let (x0, x1, px0) = range(d[0]);
        let (y0, y1, py0) = range(d[1]);
        let (z0, z1, pz0) = range(d[2]);
        let base = nb * B3;
        for z in z0..=z1 {
            for y in y0..=y1 {
                let prow = px0 + P * ((py0 + y - y0) + P * (pz0 + z - z0));
                let srow = base + B * (y + B * z);
                for x in x0..=x1 {
                    pad[prow + x - x0] = value(srow + x);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Hamming-distance table is the Q1 stiffness on the unit cube: check it against
    /// ∫∇φa·∇φb computed by Gauss quadrature (2 points per axis integrate the products of
    /// these polynomials exactly).
    #[test]
    fn q1_stiffness_matches_quadrature() {
        let g = [0.5 - 0.5 / 3f64.sqrt(), 0.5 + 0.5 / 3f64.sqrt()];
        let phi = |c: usize, x: [f64; 3]| -> [f64; 3] {
            let b = |a: usize| if (c >> a) & 1 == 1 { x[a] } else { 1.0 - x[a] };
            let db = |a: usize| if (c >> a) & 1 == 1 { 1.0 } else { -1.0 };
            [db(0) * b(1) * b(2), b(0) * db(1) * b(2), b(0) * b(1) * db(2)]
        };
        for a in 0..8usize {
            for bb in 0..8usize {
                let mut s = 0.0;
                for &x in &g {
                    for &y in &g {
                        for &z in &g {
                            let (ga, gb) = (phi(a, [x, y, z]), phi(bb, [x, y, z]));
                            s += 0.125 * (ga[0] * gb[0] + ga[1] * gb[1] + ga[2] * gb[2]);
                        }
                    }
                }
                let hamming = (a ^ bb).count_ones() as usize;
                assert!((s - K_BY_HAMMING[hamming]).abs() < 1e-12, "{a} {bb}: {s}");
            }
        }
    }

    /// For V = (x, 0, 0) (exactly trilinear), ∫V·∇φᵢ = −∫φᵢ = −h³ at interior nodes
    /// (integration by parts; at the domain boundary a surface term adds, so only interior
    /// nodes are checked).
    #[test]
    fn divergence_of_a_linear_field() {
        let level = Level::dense(3);
        let n = level.n;
        let mut v = vec![[0.0; 3]; level.x.len()];
        for (b, &[bx, _, _]) in level.bricks.iter().enumerate() {
            for l in 0..B3 {
                v[b * B3 + l] = [(bx * B + l % B) as f64 / n as f64, 0.0, 0.0];
            }
        }
        let out = divergence(&level, &v);
        let h = 1.0 / n as f64;
        for (b, &[bx, by, bz]) in level.bricks.iter().enumerate() {
            for l in 0..B3 {
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                let inside = |c: usize| c > 0 && c < n;
                if inside(i) && inside(j) && inside(k) {
                    assert!((out[b * B3 + l] + h * h * h).abs() < 1e-15, "{i} {j} {k}");
                }
            }
        }
    }

    /// With Dirichlet data from a linear function and no screening, the discrete harmonic
    /// solution is that linear function (Q1 reproduces linears exactly), wherever the band is.
    #[test]
    fn solve_reproduces_linear_dirichlet_data() {
        let mut level = Level::band(5, &[[5, 6, 7], [20, 20, 20], [0, 31, 12]], 3);
        let f = |i: usize, j: usize, k: usize| 0.3 * i as f64 - 0.2 * j as f64 + 0.1 * k as f64;
        let n_slots = level.x.len();
        for (b, &[bx, by, bz]) in level.bricks.clone().iter().enumerate() {
            for l in 0..B3 {
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                if level.node[b * B3 + l] != UNKNOWN {
                    level.x[b * B3 + l] = f(i, j, k);
                }
            }
        }
        let sys = System { rhs: vec![0.0; n_slots], screen: vec![0.0; n_slots] };
        // The band around [0, 31, 12] touches the domain boundary, where the natural (Neumann)
        // condition differs from the linear data; the other two components (j ≤ 24) do not.
        let stats = solve(&mut level, &sys, CgSettings { rel_tol: 1e-12, max_iter: 500 });
        assert!(stats.n_unknowns > 100);
        for (b, &[bx, by, bz]) in level.bricks.iter().enumerate() {
            for l in 0..B3 {
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                if level.node[b * B3 + l] == UNKNOWN && j <= 25 {
                    assert!((level.x[b * B3 + l] - f(i, j, k)).abs() < 1e-8, "{i} {j} {k}");
                }
            }
        }
    }
}
