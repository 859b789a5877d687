//! Ball pivoting (Bernardini et al. 1999): a mesh that interpolates the cloud's points, for
//! when the surface should pass exactly through the measurements.
//!
//! A ball of radius ρ rests on three points with no other point inside (a seed triangle) and
//! pivots around each front edge until it touches a new point, which forms the next triangle.
//! Edges whose pivot finds nothing, or whose new point would break the mesh's manifold
//! structure, stay on the boundary; with several radii, each larger ball pivots again from the
//! remaining boundary and seeds anew. Triangles are oriented to agree with the point normals.
//!
//! Deterministic: seeds are tried in point order, neighbour lists are sorted by (distance,
//! index), and pivot ties go to the lower index.

use std::collections::{HashSet, VecDeque};

use nalgebra::{Point3, Vector3};

use crate::cloud::PointCloud;
use crate::mesh::TriangleMesh;
use crate::spatial::PointIndex;
use crate::surface::SurfaceError;

/// Most neighbours examined around a seed vertex (pairs grow quadratically).
const SEED_NEIGHBOURS: usize = 24;

/// Ball-pivoting reconstruction. `radii` in metres (sorted ascending before use); `None`
/// uses [1, 2, 4] × the mean nearest-neighbour distance, as the reference. An empty cloud
/// gives an empty mesh. Vertices are the cloud points that ended up in a triangle, in cloud
/// order; no colours or normals are set.
pub fn reconstruct_bpa(
    cloud: &PointCloud,
    radii: Option<&[f64]>,
) -> Result<TriangleMesh, SurfaceError> {
    let Some(normals) = cloud.normals() else {
        return Err(SurfaceError::MissingNormals { method: "bpa" });
    };
    if cloud.is_empty() {
        return Ok(TriangleMesh::default());
    }
    let _span = tracing::info_span!("bpa", n_points = cloud.len()).entered();
    let pts = cloud.points();
    let usable: Vec<bool> = pts
        .iter()
        .zip(normals)
        .map(|(p, n)| p.coords.iter().all(|v| v.is_finite()) && n.norm() > 1e-12)
        .collect();
    let normals: Vec<Vector3<f64>> =
        normals.iter().map(|n| n.try_normalize(1e-12).unwrap_or_else(Vector3::zeros)).collect();
    // The tree holds the usable points only; `ids` maps its indices back to the cloud.
    let ids: Vec<u32> = (0..pts.len() as u32).filter(|&i| usable[i as usize]).collect();
    if ids.len() < 3 {
        return Ok(TriangleMesh::default());
    }
    let tree_pts: Vec<Point3<f64>> = ids.iter().map(|&i| pts[i as usize]).collect();
    let tree = PointIndex::new(&tree_pts);

    let mut radii: Vec<f64> = match radii {
        Some(r) => {
            if let Some(bad) = r.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(SurfaceError::InvalidOption {
                    name: "bpa_radii",
                    value: bad.to_string(),
                    reason: "radii must be positive numbers of metres",
                });
            }
            if r.is_empty() {
                return Err(SurfaceError::InvalidOption {
                    name: "bpa_radii",
                    value: "[]".into(),
                    reason: "give at least one radius, or leave it unset",
                });
            }
            r.to_vec()
        }
        None => {
            let mean = mean_nn_distance(&tree_pts, &tree);
            if mean <= 0.0 {
                return Err(SurfaceError::Degenerate {
                    method: "bpa",
                    reason: "all points coincide; no automatic radius".into(),
                });
            }
            vec![mean, 2.0 * mean, 4.0 * mean]
        }
    };
    radii.sort_by(f64::total_cmp);
    radii.dedup();

    let mut state = Pivoter {
        pts,
        normals: &normals,
        tree: &tree,
        ids: &ids,
        usable: &usable,
        used_edges: HashSet::new(),
        n_tris: vec![0; pts.len()],
        n_boundary: vec![0; pts.len()],
        faces: Vec::new(),
        front: VecDeque::new(),
        boundary: Vec::new(),
    };
    for &rho in &radii {
        state.run_radius(rho);
    }
    tracing::debug!(faces = state.faces.len(), "ball pivoting done");
    Ok(compact(pts, state.faces))
}

/// A directed edge a→b of triangle (a, b, opp) whose ball sits at `centre`.
#[derive(Clone, Copy, Debug)]
struct FrontEdge {
    a: u32,
    b: u32,
    opp: u32,
    centre: Point3<f64>,
}

struct Pivoter<'a> {
    pts: &'a [Point3<f64>],
    normals: &'a [Vector3<f64>],
    tree: &'a PointIndex,
    ids: &'a [u32],
    usable: &'a [bool],
    /// Directed edges used by a triangle.
    used_edges: HashSet<(u32, u32)>,
    n_tris: Vec<u32>,
    /// Boundary (single-triangle) edges at each vertex.
    n_boundary: Vec<i32>,
    faces: Vec<[u32; 3]>,
    front: VecDeque<FrontEdge>,
    /// Edges whose pivot failed at the current radius.
    boundary: Vec<FrontEdge>,
}

impl Pivoter<'_> {
    fn run_radius(&mut self, rho: f64) {
        // Larger balls first pivot from where smaller ones stopped.
        let old = std::mem::take(&mut self.boundary);
        for e in old {
            if self.is_front(e.a, e.b)
                && let Some(centre) = self.ball_centre([e.a, e.b, e.opp], rho)
            {
                self.front.push_back(FrontEdge { centre, ..e });
            }
        }
        self.expand(rho);
        for v in 0..self.pts.len() as u32 {
            if self.usable[v as usize] && self.n_tris[v as usize] == 0 && self.seed(v, rho) {
                self.expand(rho);
            }
        }
    }

    fn is_front(&self, a: u32, b: u32) -> bool {
        self.used_edges.contains(&(a, b)) && !self.used_edges.contains(&(b, a))
    }

    fn neighbours(&self, q: &Point3<f64>, radius: f64) -> Vec<(u32, f64)> {
        self.tree.within(q, radius).into_iter().map(|n| (self.ids[n.index], n.distance)).collect()
    }

    /// Centre of the ball of radius `rho` through the triangle's vertices on the side its
    /// winding faces, if the ball fits and the winding agrees with the point normals.
    fn ball_centre(&self, [a, b, c]: [u32; 3], rho: f64) -> Option<Point3<f64>> {
        let (pa, pb, pc) = (self.pts[a as usize], self.pts[b as usize], self.pts[c as usize]);
        let (ab, ac) = (pb - pa, pc - pa);
        let cross = ab.cross(&ac);
        let c2 = cross.norm_squared();
        if c2 <= 1e-30 * ab.norm_squared() * ac.norm_squared() || c2 == 0.0 {
            return None;
        }
        let normal = cross / c2.sqrt();
        for v in [a, b, c] {
            if normal.dot(&self.normals[v as usize]) <= 0.0 {
                return None;
            }
        }
        let circ = pa
            + (ac.norm_squared() * cross.cross(&ab) + ab.norm_squared() * ac.cross(&cross))
                / (2.0 * c2);
        let r2 = (circ - pa).norm_squared();
        let h2 = rho * rho - r2;
        if h2 < 0.0 {
            return None;
        }
        Some(circ + h2.sqrt() * normal)
    }

    /// True when no point other than the triangle's is strictly inside the ball.
    fn ball_is_empty(&self, centre: &Point3<f64>, rho: f64, tri: [u32; 3]) -> bool {
        let tol = rho * (1.0 - 1e-9);
        self.neighbours(centre, rho).iter().all(|&(i, d)| tri.contains(&i) || d >= tol)
    }

    fn can_take(&self, v: u32) -> bool {
        self.n_tris[v as usize] == 0 || self.n_boundary[v as usize] > 0
    }

    fn edges_free(&self, [a, b, c]: [u32; 3]) -> bool {
        [(a, b), (b, c), (c, a)].iter().all(|e| !self.used_edges.contains(e))
    }

    fn add_triangle(&mut self, tri: [u32; 3], centre: Point3<f64>) {
        let [a, b, c] = tri;
        self.faces.push(tri);
        for (u, v, opp) in [(a, b, c), (b, c, a), (c, a, b)] {
            self.used_edges.insert((u, v));
            self.n_tris[u as usize] += 1;
            if self.used_edges.contains(&(v, u)) {
                self.n_boundary[u as usize] -= 1;
                self.n_boundary[v as usize] -= 1;
            } else {
                self.n_boundary[u as usize] += 1;
                self.n_boundary[v as usize] += 1;
                self.front.push_back(FrontEdge { a: u, b: v, opp, centre });
            }
        }
    }

    fn seed(&mut self, v: u32, rho: f64) -> bool {
        let pv = self.pts[v as usize];
        let near: Vec<u32> = self
            .neighbours(&pv, 2.0 * rho)
            .into_iter()
            .map(|(i, _)| i)
            .filter(|&i| i != v && self.n_tris[i as usize] == 0)
            .take(SEED_NEIGHBOURS)
            .collect();
        for (x, &j) in near.iter().enumerate() {
            for &k in &near[x + 1..] {
                for tri in [[v, j, k], [v, k, j]] {
                    let Some(centre) = self.ball_centre(tri, rho) else {
                        continue;
                    };
                    if self.edges_free(tri) && self.ball_is_empty(&centre, rho, tri) {
                        self.add_triangle(tri, centre);
                        return true;
                    }
                }
            }
        }
        false
    }

    fn expand(&mut self, rho: f64) {
        while let Some(e) = self.front.pop_front() {
            if !self.is_front(e.a, e.b) {
                continue;
            }
            match self.pivot(&e, rho) {
                Some((k, centre)) => {
                    let tri = [e.b, e.a, k];
                    if self.can_take(k) && self.edges_free(tri) {
                        self.add_triangle(tri, centre);
                    } else {
                        self.boundary.push(e);
                    }
                }
                None => self.boundary.push(e),
            }
        }
    }

    /// The first point the ball touches when it rolls over edge a→b away from `opp`.
    fn pivot(&self, e: &FrontEdge, rho: f64) -> Option<(u32, Point3<f64>)> {
        let (pa, pb) = (self.pts[e.a as usize], self.pts[e.b as usize]);
        let mid = nalgebra::center(&pa, &pb);
        let axis = (pb - pa).try_normalize(1e-15)?;
        let v0 = e.centre - mid;
        let mut best: Option<(f64, u32, Point3<f64>)> = None;
        for (k, _) in self.neighbours(&mid, 2.0 * rho) {
            if k == e.a || k == e.b || k == e.opp {
                continue;
            }
            let Some(ck) = self.ball_centre([e.b, e.a, k], rho) else {
                continue;
            };
            let v1 = ck - mid;
            let mut theta = axis.dot(&v0.cross(&v1)).atan2(v0.dot(&v1));
            // A point on the same sphere (θ ≈ 0) is hit first; a hair below 0 is rounding.
            if theta < -1e-9 {
                theta += std::f64::consts::TAU;
            }
            let theta = theta.max(0.0);
            if best.is_none_or(|(t, i, _)| theta < t || (theta == t && k < i)) {
                best = Some((theta, k, ck));
            }
        }
        let (_, k, ck) = best?;
        self.ball_is_empty(&ck, rho, [e.a, e.b, k]).then_some((k, ck))
    }
}

fn mean_nn_distance(pts: &[Point3<f64>], tree: &PointIndex) -> f64 {
    use rayon::prelude::*;
    // The second nearest neighbour: the first is the point itself.
    let sum: f64 =
        pts.par_iter().map(|p| tree.kth_distance(p, 2)).collect::<Vec<f64>>().iter().sum();
    sum / pts.len() as f64
}

/// The mesh over the points that some triangle uses (cloud order kept).
fn compact(pts: &[Point3<f64>], faces: Vec<[u32; 3]>) -> TriangleMesh {
    let mut remap = vec![u32::MAX; pts.len()];
    for t in &faces {
        for &v in t {
            remap[v as usize] = 0;
        }
    }
    let mut vertices = Vec::new();
    for (i, r) in remap.iter_mut().enumerate() {
        if *r != u32::MAX {
            // The cloud fits the k-d tree's u32 indices, so this does too.
            *r = vertices.len() as u32;
            vertices.push(pts[i]);
        }
    }
    let faces = faces.into_iter().map(|t| t.map(|v| remap[v as usize])).collect();
    // Every face index was remapped into `vertices`.
    TriangleMesh::from_parts(vertices, faces, None, None).expect("compacted BPA mesh")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::test_clouds::{Rng, faces_outward, grid_cloud, plane_cloud, sphere_cloud};

    fn manifold_edges(mesh: &TriangleMesh) -> bool {
        let mut seen = HashSet::new();
        mesh.faces().iter().all(|t| (0..3).all(|k| seen.insert((t[k], t[(k + 1) % 3]))))
    }

    /// Reference §10.10: radii [0.01, 0.02, 0.04] or automatic on a plane: non-empty, mean z
    /// within 0.1 of 1.5.
    #[test]
    fn plane_with_given_and_automatic_radii() {
        let cloud = plane_cloud(100, 1.5, &mut Rng::new(11));
        for radii in [Some(&[0.01, 0.02, 0.04][..]), None] {
            let mesh = reconstruct_bpa(&cloud, radii).unwrap();
            assert!(!mesh.is_empty(), "{radii:?}");
            let mean = mesh.vertices().iter().map(|v| v.z).sum::<f64>() / mesh.n_vertices() as f64;
            assert!((mean - 1.5).abs() < 0.1);
            assert!(manifold_edges(&mesh));
            // Oriented with the normals (up, −Z).
            assert!(mesh.face_normals().iter().all(|n| n.z < -0.99));
        }
    }

    /// A regular grid with the right radius is triangulated completely: every cell gives two
    /// triangles, every vertex is used.
    #[test]
    fn regular_grid_is_fully_covered() {
        let cloud = grid_cloud(8, 0.01, |_, _| 1.0);
        let n = cloud.len();
        let cloud = cloud.with_normals(vec![-Vector3::z(); n]).unwrap();
        let mesh = reconstruct_bpa(&cloud, Some(&[0.008])).unwrap();
        assert_eq!(mesh.n_vertices(), 64);
        assert_eq!(mesh.n_faces(), 2 * 7 * 7);
        assert!(manifold_edges(&mesh));
        let area: f64 = mesh
            .faces()
            .iter()
            .map(|t| {
                let v = |i: u32| mesh.vertices()[i as usize];
                0.5 * (v(t[1]) - v(t[0])).cross(&(v(t[2]) - v(t[0]))).norm()
            })
            .sum();
        assert!((area - 0.07 * 0.07).abs() < 1e-12);
    }

    /// A well-sampled sphere closes, faces outwards, and every vertex lies on it (BPA
    /// interpolates the samples).
    #[test]
    fn sphere_closes_and_faces_out() {
        let centre = Point3::new(0.0, 0.0, 1.0);
        let cloud = sphere_cloud(1500, centre, 0.1);
        let mesh = reconstruct_bpa(&cloud, None).unwrap();
        assert!(manifold_edges(&mesh));
        assert!(mesh.n_vertices() > 1450, "{}", mesh.n_vertices());
        assert_eq!(faces_outward(&mesh, centre), mesh.n_faces());
        // Euler characteristic of a closed sphere is 2; allow a few small holes.
        let mut edges = HashSet::new();
        for t in mesh.faces() {
            for k in 0..3 {
                let (a, b) = (t[k], t[(k + 1) % 3]);
                edges.insert((a.min(b), a.max(b)));
            }
        }
        let chi = mesh.n_vertices() as i64 - edges.len() as i64 + mesh.n_faces() as i64;
        assert!((-4..=2).contains(&chi), "{chi}");
    }

    #[test]
    fn errors_and_empty_input() {
        let cloud = plane_cloud(20, 1.0, &mut Rng::new(12));
        let bare = PointCloud::new(cloud.points().to_vec());
        assert!(reconstruct_bpa(&bare, None).unwrap_err().to_string().contains("normals"));
        let e = reconstruct_bpa(&cloud, Some(&[0.01, -1.0])).unwrap_err().to_string();
        assert!(e.contains("bpa_radii"), "{e}");
        assert!(reconstruct_bpa(&cloud, Some(&[])).is_err());
        let empty = PointCloud::from_parts(vec![], Some(vec![]), None).unwrap();
        assert!(reconstruct_bpa(&empty, None).unwrap().is_empty());
    }
}
