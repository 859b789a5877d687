//! Marching cubes with a case table derived at start-up from a face rule, not typed in.
//!
//! For each of the 256 inside/outside patterns, every cube face contributes segments between
//! its crossed edges: walking the face's corners counter-clockwise as seen from outside, each
//! edge where the walk enters the inside is joined to the next edge where it leaves. That rule
//! separates inside corners on ambiguous faces and depends only on the face's own corners, so
//! two cells sharing a face always agree and the surface has no cracks. The segments chain
//! into closed loops (each crossed edge starts one segment and ends one), which are fanned
//! into triangles. The loop direction makes every triangle face the outside (f ≥ iso).

use std::collections::HashMap;
use std::sync::OnceLock;

use nalgebra::Point3;

/// Edge `e` of the unit cube: axis `e / 4`; the other two axes' bits are `e % 4`
/// (first the next axis cyclically, then the one after).
fn edge_corners(e: usize) -> (usize, usize) {
    let a = e / 4;
    let (u, v) = ((a + 1) % 3, (a + 2) % 3);
    let m = e % 4;
    let lo = ((m & 1) << u) | (((m >> 1) & 1) << v);
    (lo, lo | (1 << a))
}

fn edge_between(p: usize, q: usize) -> usize {
    let diff = p ^ q;
    debug_assert_eq!(diff.count_ones(), 1);
    let a = diff.trailing_zeros() as usize;
    let (u, v) = ((a + 1) % 3, (a + 2) % 3);
    let lo = p & !diff;
    a * 4 + ((lo >> u) & 1) + 2 * ((lo >> v) & 1)
}

/// The six faces as corner lists, counter-clockwise seen from outside the cube.
fn faces() -> [[usize; 4]; 6] {
    let mut out = [[0; 4]; 6];
    for a in 0..3 {
        let (u, v) = ((a + 1) % 3, (a + 2) % 3);
        for side in 0..2 {
            let base = side << a;
            // (u, v) = (0,0), (1,0), (1,1), (0,1) is counter-clockwise seen from +a because
            // u × v = a for cyclic axes; the −a face is seen from the other side.
            let mut ring = [base, base | (1 << u), base | (1 << u) | (1 << v), base | (1 << v)];
            if side == 0 {
                ring.reverse();
            }
            out[2 * a + side] = ring;
        }
    }
    out
}

/// Triangles (as edge triples) for every case; bit c of the case is set when corner c
/// (x = c & 1, y = c >> 1 & 1, z = c >> 2 & 1) is inside (f < iso).
pub(super) fn case_table() -> &'static [Vec<[u8; 3]>; 256] {
    static TABLE: OnceLock<[Vec<[u8; 3]>; 256]> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

fn build_table() -> [Vec<[u8; 3]>; 256] {
    let faces = faces();
    let mut table: [Vec<[u8; 3]>; 256] = std::array::from_fn(|_| Vec::new());
    for (case, tris) in table.iter_mut().enumerate() {
        let inside = |c: usize| (case >> c) & 1 == 1;
        let mut next = [usize::MAX; 12];
        for ring in &faces {
            // Crossed edges in ring order with their direction (true = entering the inside).
            let crossings: Vec<(usize, bool)> = (0..4)
                .filter_map(|k| {
                    let (p, q) = (ring[k], ring[(k + 1) % 4]);
                    (inside(p) != inside(q)).then(|| (edge_between(p, q), inside(q)))
                })
                .collect();
            for (idx, &(e, entering)) in crossings.iter().enumerate() {
                if !entering {
                    continue;
                }
                // The next crossing in ring order leaves the inside (they alternate).
                let (exit, _) = crossings[(idx + 1) % crossings.len()];
                next[e] = exit;
            }
        }
        let mut seen = [false; 12];
        for start in 0..12 {
            if next[start] == usize::MAX || seen[start] {
                continue;
            }
            let mut ring = Vec::new();
            let mut e = start;
            while !seen[e] {
                seen[e] = true;
                ring.push(e as u8);
                e = next[e];
            }
            for k in 1..ring.len() - 1 {
                tris.push([ring[0], ring[k], ring[k + 1]]);
            }
        }
    }
    // Fix the orientation once: in case 1 (only corner 0 inside) the triangle must face away
    // from corner 0. The rule above orients all cases alike, so one check decides for all.
    let mid = |e: u8| {
        let (p, q) = edge_corners(e as usize);
        let c = |k: usize| {
            nalgebra::Vector3::new((k & 1) as f64, ((k >> 1) & 1) as f64, ((k >> 2) & 1) as f64)
        };
        (c(p) + c(q)) * 0.5
    };
    let [a, b, c] = table[1][0];
    let normal = (mid(b) - mid(a)).cross(&(mid(c) - mid(a)));
    if normal.dot(&nalgebra::Vector3::new(1.0, 1.0, 1.0)) < 0.0 {
        for tris in table.iter_mut() {
            for t in tris.iter_mut() {
                t.swap(1, 2);
            }
        }
    }
    table
}

/// Polygonises the cells `cells` (lower-corner node coordinates on a grid of `n` cells per
/// axis) of the function whose node values `value(i, j, k)` returns, at `iso`. Vertices are
/// shared between cells through their edge; positions are in grid units. Deterministic for a
/// given cell order.
pub(super) fn extract(
    n: usize,
    cells: &[[usize; 3]],
    value: impl Fn(usize, usize, usize) -> f64,
    iso: f64,
) -> (Vec<Point3<f64>>, Vec<[u32; 3]>) {
    let table = case_table();
    let stride = (n + 1) as u64;
    let mut edge_vertex: HashMap<u64, u32> = HashMap::new();
    let mut vertices = Vec::new();
    let mut faces = Vec::new();
    for &[i, j, k] in cells {
        let mut f = [0.0; 8];
        let mut case = 0usize;
        for (c, fc) in f.iter_mut().enumerate() {
            *fc = value(i + (c & 1), j + ((c >> 1) & 1), k + ((c >> 2) & 1));
            if *fc < iso {
                case |= 1 << c;
            }
        }
        if case == 0 || case == 255 {
            continue;
        }
        for tri in &table[case] {
            let mut ids = [0u32; 3];
            for (slot, &e) in ids.iter_mut().zip(tri) {
                let (p, q) = edge_corners(e as usize);
                let lo = [i + (p & 1), j + ((p >> 1) & 1), k + ((p >> 2) & 1)];
                let axis = (e / 4) as u64;
                let key =
                    ((lo[0] as u64) + stride * ((lo[1] as u64) + stride * lo[2] as u64)) * 3 + axis;
                *slot = *edge_vertex.entry(key).or_insert_with(|| {
                    let t = ((iso - f[p]) / (f[q] - f[p])).clamp(0.0, 1.0);
                    let mut pos = Point3::new(lo[0] as f64, lo[1] as f64, lo[2] as f64);
                    pos[axis as usize] += t;
                    vertices.push(pos);
                    // Vertex counts stay below u32::MAX: the mesh type indexes with u32.
                    (vertices.len() - 1) as u32
                });
            }
            faces.push(ids);
        }
    }
    (vertices, faces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_gives_closed_consistent_loops() {
        let table = case_table();
        assert!(table[0].is_empty() && table[255].is_empty());
        for (case, tris) in table.iter().enumerate() {
            // Each crossed edge of the case is used, and only crossed edges are.
            let inside = |c: usize| (case >> c) & 1 == 1;
            for t in tris {
                for &e in t {
                    let (p, q) = edge_corners(e as usize);
                    assert_ne!(inside(p), inside(q), "case {case}");
                }
            }
            // Complement cases have the same edges.
            let n_edges = |c: usize| {
                let mut es: Vec<u8> = table[c].iter().flatten().copied().collect();
                es.sort();
                es.dedup();
                es
            };
            assert_eq!(n_edges(case), n_edges(255 - case));
        }
        // Classic counts: one triangle for a single corner, two for a full face.
        assert_eq!(table[1].len(), 1);
        assert_eq!(table[0b0000_1111].len(), 2);
    }

    /// A sphere's signed distance sampled on a grid: the extracted surface is closed (every
    /// edge shared by exactly two triangles in opposite directions), lies near the sphere, and
    /// faces outwards.
    #[test]
    fn sphere_is_watertight_and_faces_out() {
        let n = 16;
        let c = 7.3;
        let value = |i: usize, j: usize, k: usize| {
            ((i as f64 - c).powi(2) + (j as f64 - c).powi(2) + (k as f64 - c).powi(2)).sqrt() - 5.0
        };
        let cells: Vec<[usize; 3]> =
            (0..n * n * n).map(|m| [m % n, (m / n) % n, m / (n * n)]).collect();
        let (v, f) = extract(n, &cells, value, 0.0);
        assert!(f.len() > 200);
        let mut directed = std::collections::HashSet::new();
        for t in &f {
            for k in 0..3 {
                assert!(
                    directed.insert((t[k], t[(k + 1) % 3])),
                    "edge used twice in one direction"
                );
            }
        }
        for &(a, b) in &directed {
            assert!(directed.contains(&(b, a)), "open edge");
        }
        for t in &f {
            let (a, b, cc) = (v[t[0] as usize], v[t[1] as usize], v[t[2] as usize]);
            let n = (b - a).cross(&(cc - a));
            let centroid = (a.coords + b.coords + cc.coords) / 3.0;
            let out = centroid - nalgebra::Vector3::new(c, c, c);
            assert!(n.dot(&out) >= 0.0);
            assert!((out.norm() - 5.0).abs() < 0.2);
        }
    }
}
