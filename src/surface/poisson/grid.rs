//! Sparse grids for the Poisson hierarchy: one [`Level`] per depth, storing only the cells near
//! the samples (plus, at the base level, everything).
//!
//! Storage is a "brick" grid: 8 × 8 × 8 nodes per brick, bricks allocated on demand and found
//! through a dense directory (one u32 per brick; at depth 11 that is 257³ entries, 68 MB, which
//! bounds the supported depth). Bricks keep neighbours contiguous in memory, so the solver can
//! gather a brick and its halo once and then apply the stencil with plain array indexing.
//!
//! A node (i, j, k) of level `d` sits at (i, j, k) / 2^d in the unit cube; the cell with lower
//! corner (i, j, k) shares its storage slot (its "active" flag lives in [`Level::cell`]).

/// Nodes per brick along each axis.
pub(super) const B: usize = 8;
/// Nodes per brick.
pub(super) const B3: usize = B * B * B;
/// Directory entry of an unallocated brick.
const NONE: u32 = u32::MAX;

/// Node states in [`Level::node`].
pub(super) const INACTIVE: u8 = 0;
/// A node on the border of the active region: its value is fixed to the coarser solution.
pub(super) const FIXED: u8 = 1;
/// A node whose incident cells are all active (or outside the domain): solved for.
pub(super) const UNKNOWN: u8 = 2;

/// One level of the hierarchy.
pub(super) struct Level {
    /// Cells per axis (2^depth) (nodes per axis is `n + 1`).
    pub n: usize,
    /// Bricks per axis.
    nb: usize,
    dir: Vec<u32>,
    /// Brick coordinates, in allocation order.
    pub bricks: Vec<[usize; 3]>,
    /// Per slot: 1 when the cell whose lower corner is this node is active.
    pub cell: Vec<u8>,
    /// Per slot: [`INACTIVE`], [`FIXED`] or [`UNKNOWN`].
    pub node: Vec<u8>,
    /// Per slot: the solution value (meaningful at FIXED and UNKNOWN nodes).
    pub x: Vec<f64>,
}

/// Slot of node (i, j, k) inside its brick.
#[inline]
pub(super) fn local(i: usize, j: usize, k: usize) -> usize {
    (i % B) + B * ((j % B) + B * (k % B))
}

impl Level {
    fn empty(depth: u32) -> Self {
        let n = 1usize << depth;
        let nb = n / B + 1;
        Self {
            n,
            nb,
            dir: vec![NONE; nb * nb * nb],
            bricks: Vec::new(),
            cell: Vec::new(),
            node: Vec::new(),
            x: Vec::new(),
        }
    }

    /// A level where every cell is active (the base of the hierarchy).
    pub fn dense(depth: u32) -> Self {
        let mut level = Self::empty(depth);
        let n = level.n;
        level.mark_box([0, 0, 0], [n - 1, n - 1, n - 1]);
        level.finish_nodes();
        level
    }

    /// A level whose active cells are those within `radius` cells (Chebyshev distance) of a
    /// cell in `sample_cells`. The cells must be sorted and unique, which fixes the brick
    /// allocation order and so makes the level deterministic.
    pub fn band(depth: u32, sample_cells: &[[usize; 3]], radius: usize) -> Self {
        let mut level = Self::empty(depth);
        let last = level.n - 1;
        for c in sample_cells {
            let lo = c.map(|v| v.saturating_sub(radius));
            let hi = c.map(|v| (v + radius).min(last));
            level.mark_box(lo, hi);
        }
        level.finish_nodes();
        level
    }

    /// Number of allocated bricks.
    pub fn n_bricks(&self) -> usize {
        self.bricks.len()
    }

    /// Brick index of brick coordinates, if allocated.
    #[inline]
    pub fn brick_at(&self, b: [usize; 3]) -> Option<usize> {
        if b.iter().any(|&v| v >= self.nb) {
            return None;
        }
        let id = self.dir[b[0] + self.nb * (b[1] + self.nb * b[2])];
        (id != NONE).then_some(id as usize)
    }

    /// Storage slot of node (i, j, k), if its brick is allocated.
    #[inline]
    pub fn slot(&self, i: usize, j: usize, k: usize) -> Option<usize> {
        self.brick_at([i / B, j / B, k / B]).map(|b| b * B3 + local(i, j, k))
    }

    fn alloc_brick(&mut self, b: [usize; 3]) -> usize {
        let d = b[0] + self.nb * (b[1] + self.nb * b[2]);
        if self.dir[d] == NONE {
            // Brick counts stay far below u32::MAX: the directory itself has fewer entries.
            self.dir[d] = self.bricks.len() as u32;
            self.bricks.push(b);
            self.cell.resize(self.cell.len() + B3, 0);
            self.node.resize(self.node.len() + B3, INACTIVE);
            self.x.resize(self.x.len() + B3, 0.0);
        }
        self.dir[d] as usize
    }

    /// Marks every cell in the inclusive box [lo, hi] active, brick by brick.
    fn mark_box(&mut self, lo: [usize; 3], hi: [usize; 3]) {
        for bz in lo[2] / B..=hi[2] / B {
            for by in lo[1] / B..=hi[1] / B {
                for bx in lo[0] / B..=hi[0] / B {
                    let base = self.alloc_brick([bx, by, bz]) * B3;
                    let r = |axis: usize, b: usize| {
                        (lo[axis].max(b * B) - b * B)..=(hi[axis].min(b * B + B - 1) - b * B)
                    };
                    for z in r(2, bz) {
                        for y in r(1, by) {
                            let row = base + B * (y + B * z);
                            for x in r(0, bx) {
                                self.cell[row + x] = 1;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Derives node states from the active cells: corners of active cells are FIXED, and those
    /// whose every incident cell inside the domain is active become UNKNOWN.
    fn finish_nodes(&mut self) {
        let n_cell_bricks = self.bricks.len();
        for b in 0..n_cell_bricks {
            let [bx, by, bz] = self.bricks[b];
            for l in 0..B3 {
                if self.cell[b * B3 + l] == 0 {
                    continue;
                }
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                for c in 0..8 {
                    let (ci, cj, ck) = (i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1));
                    let slot = self.alloc_brick([ci / B, cj / B, ck / B]) * B3 + local(ci, cj, ck);
                    self.node[slot] = FIXED;
                }
            }
        }
        for b in 0..self.bricks.len() {
            let [bx, by, bz] = self.bricks[b];
            for l in 0..B3 {
                if self.node[b * B3 + l] != FIXED {
                    continue;
                }
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                if self.all_incident_cells_active(i, j, k) {
                    self.node[b * B3 + l] = UNKNOWN;
                }
            }
        }
    }

    fn all_incident_cells_active(&self, i: usize, j: usize, k: usize) -> bool {
        for c in 0..8 {
            let (di, dj, dk) = (c & 1, (c >> 1) & 1, (c >> 2) & 1);
            // Cell with lower corner (i − di, j − dj, k − dk); cells outside the domain do not
            // exist (natural boundary), so they do not count.
            if (i < di || j < dj || k < dk)
                || (i - di >= self.n || j - dj >= self.n || k - dk >= self.n)
            {
                continue;
            }
            if !self.is_cell_active(i - di, j - dj, k - dk) {
                return false;
            }
        }
        true
    }

    /// True when cell (i, j, k) is active.
    #[inline]
    pub fn is_cell_active(&self, i: usize, j: usize, k: usize) -> bool {
        self.slot(i, j, k).is_some_and(|s| self.cell[s] != 0)
    }

    /// Value of node (i, j, k) (0 when not stored).
    #[inline]
    pub fn value(&self, i: usize, j: usize, k: usize) -> f64 {
        self.slot(i, j, k).map_or(0.0, |s| self.x[s])
    }

    /// The cell containing `xi` (in this level's cell units), clamped into the domain, and the
    /// position inside it in [0, 1]³.
    #[inline]
    pub fn locate(&self, xi: [f64; 3]) -> ([usize; 3], [f64; 3]) {
        let last = (self.n - 1) as f64;
        let c = xi.map(|v| v.floor().clamp(0.0, last));
        let t = [xi[0] - c[0], xi[1] - c[1], xi[2] - c[2]];
        (c.map(|v| v as usize), t)
    }

    /// Trilinear value at `xi` (cell units) when the containing cell is active.
    pub fn eval_in_active_cell(&self, xi: [f64; 3]) -> Option<f64> {
        let (c, t) = self.locate(xi);
        if !self.is_cell_active(c[0], c[1], c[2]) {
            return None;
        }
        let mut v = 0.0;
        for corner in 0..8 {
            let d = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
            let w = (0..3).map(|a| if d[a] == 1 { t[a] } else { 1.0 - t[a] }).product::<f64>();
            v += w * self.value(c[0] + d[0], c[1] + d[1], c[2] + d[2]);
        }
        Some(v)
    }

    /// Neighbour brick indices (or `usize::MAX`) of every brick, 27 per brick in
    /// (dx, dy, dz) ∈ {−1, 0, 1}³ order with dx fastest.
    pub fn neighbour_bricks(&self) -> Vec<[usize; 27]> {
        self.bricks
            .iter()
            .map(|&[bx, by, bz]| {
                let mut out = [usize::MAX; 27];
                for (m, slot) in out.iter_mut().enumerate() {
                    let d = [m % 3, (m / 3) % 3, m / 9];
                    let b = [bx + d[0], by + d[1], bz + d[2]];
                    // Coordinates are offset by +1: 0 means "one brick before".
                    if b.contains(&0) {
                        continue;
                    }
                    if let Some(id) = self.brick_at(b.map(|v| v - 1)) {
                        *slot = id;
                    }
                }
                out
            })
            .collect()
    }
}

/// Evaluates the hierarchical function at `u` (unit-cube coordinates): the value of the finest
/// level up to `levels[top]` whose cell containing `u` is active. The base level is dense, so
/// there always is one.
pub(super) fn eval_hierarchy(levels: &[Level], top: usize, u: [f64; 3]) -> f64 {
    for level in levels[..=top].iter().rev() {
        let s = level.n as f64;
        if let Some(v) = level.eval_in_active_cell(u.map(|c| c * s)) {
            return v;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_marks_cells_and_node_states() {
        let level = Level::band(5, &[[10, 10, 10]], 2);
        let n_active = level.cell.iter().filter(|&&c| c != 0).count();
        assert_eq!(n_active, 5 * 5 * 5);
        // Corners of the 5³ block of cells: 6³ nodes; the inner 4³ are unknowns.
        assert_eq!(level.node.iter().filter(|&&s| s != INACTIVE).count(), 6 * 6 * 6);
        assert_eq!(level.node.iter().filter(|&&s| s == UNKNOWN).count(), 4 * 4 * 4);
        assert!(level.is_cell_active(8, 12, 10) && !level.is_cell_active(7, 10, 10));
    }

    #[test]
    fn domain_border_nodes_are_unknown_in_a_dense_level() {
        let level = Level::dense(3);
        assert_eq!(level.node.iter().filter(|&&s| s == UNKNOWN).count(), 9 * 9 * 9);
        assert_eq!(level.node.iter().filter(|&&s| s == FIXED).count(), 0);
    }

    #[test]
    fn trilinear_eval_is_exact_for_linear_functions() {
        let mut level = Level::dense(4);
        for (b, &[bx, by, bz]) in level.bricks.clone().iter().enumerate() {
            for l in 0..B3 {
                let (i, j, k) = (bx * B + l % B, by * B + (l / B) % B, bz * B + l / (B * B));
                level.x[b * B3 + l] = 1.0 + 2.0 * i as f64 - 0.5 * j as f64 + 0.25 * k as f64;
            }
        }
        let xi = [3.3, 7.9, 15.5];
        let v = level.eval_in_active_cell(xi).unwrap();
        assert!((v - (1.0 + 6.6 - 3.95 + 3.875)).abs() < 1e-12);
        // The far corner of the domain is inside the last cell.
        assert!(level.eval_in_active_cell([16.0, 16.0, 16.0]).is_some());
        let levels = [level];
        assert!(
            (eval_hierarchy(&levels, 0, [0.5, 0.5, 0.5]) - (1.0 + 16.0 - 4.0 + 2.0)).abs() < 1e-12
        );
    }
}
