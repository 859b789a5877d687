//! Trimming a mesh to the support of its cloud, so that no surface is invented where the
//! fused cloud has no points (`reconstruction.mesh_trim_distance`).
//!
//! A face is kept only when its three vertices **and** its centroid lie within the trim
//! distance `d` of a cloud point (exact nearest-neighbour distances through
//! [`PointIndex`]). Vertices no kept face uses are dropped; the kept vertices and faces keep
//! their order, so the result is as deterministic as the input. A mesh in which every face is
//! supported is returned unchanged (byte for byte): a very large `d` gives the untrimmed mesh.
//!
//! Consequences, used by the methods and documented in docs/theory.md: every point of a
//! triangle with longest edge ℓ lies within ℓ/√3 of one of its vertices (the circumradius of
//! an acute triangle is ℓ/(2 sin C) with C ≥ 60° the angle facing ℓ; an obtuse triangle's
//! farthest point is on ℓ, within ℓ/2), so every point of a kept face lies within `d + ℓ/√3`
//! of the cloud, and a hole of the cloud (an empty disc) of diameter greater than
//! `2(d + ℓ/√3)` is never covered at its centre. For the height field (cells of side `r`,
//! faces with ℓ = √2·r) the limit is [`heightfield_hole_limit`].

use nalgebra::Point3;
use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::mesh::TriangleMesh;
use crate::spatial::PointIndex;

/// The default trim distance is this many voxels of the fused cloud's down-sampling
/// (`reconstruction.voxel_size`): the cloud has about one point per voxel, so a supported
/// surface point is within about one voxel of a cloud point and two leave room for noise.
pub const DEFAULT_TRIM_VOXELS: f64 = 2.0;

/// The trim distance used when `reconstruction.mesh_trim_distance` is null:
/// [`DEFAULT_TRIM_VOXELS`] × `voxel_size`.
pub fn default_trim_distance(voxel_size: f64) -> f64 {
    DEFAULT_TRIM_VOXELS * voxel_size
}

/// The widest hole of the cloud the height field may still bridge, for trim distance `d` and
/// grid spacing `r`: `2(d + r·√(2/3))` (faces with longest edge √2·r; see the module
/// documentation). A hole (an empty disc) wider than this is never covered at its centre.
pub fn heightfield_hole_limit(d: f64, r: f64) -> f64 {
    2.0 * (d + r * (2.0f64 / 3.0).sqrt())
}

/// An index over the finite points of `cloud` (a NaN would poison the tree's splits).
pub fn support_index(cloud: &PointCloud) -> PointIndex {
    let finite: Vec<Point3<f64>> =
        cloud.points().iter().filter(|p| p.coords.iter().all(|v| v.is_finite())).copied().collect();
    PointIndex::new(&finite)
}

/// Keeps the faces of `mesh` whose vertices and centroid all lie within `distance` of a
/// point of `support`; see the module documentation. An empty support keeps nothing.
pub fn trim_to_support(mesh: TriangleMesh, support: &PointIndex, distance: f64) -> TriangleMesh {
    let near = |p: &Point3<f64>| {
        p.coords.iter().all(|v| v.is_finite())
            && support.nearest(p).is_some_and(|n| n.distance <= distance)
    };
    let vertex_ok: Vec<bool> = mesh.vertices().par_iter().map(near).collect();
    let face_ok: Vec<bool> = mesh
        .faces()
        .par_iter()
        .map(|f| {
            if !f.iter().all(|&i| vertex_ok[i as usize]) {
                return false;
            }
            let [a, b, c] = f.map(|i| mesh.vertices()[i as usize].coords);
            near(&Point3::from((a + b + c) / 3.0))
        })
        .collect();
    if face_ok.iter().all(|&k| k) {
        return mesh;
    }
    let (vertices, faces, normals, colors) = mesh.into_parts();
    let mut used = vec![false; vertices.len()];
    for (f, _) in faces.iter().zip(&face_ok).filter(|(_, k)| **k) {
        for &i in f {
            used[i as usize] = true;
        }
    }
    let mut remap = vec![u32::MAX; vertices.len()];
    // The mesh's indices are u32, so the kept vertices count fits.
    for (next, (r, _)) in remap.iter_mut().zip(&used).filter(|(_, u)| **u).enumerate() {
        *r = next as u32;
    }
    let vertices = keep_used(vertices, &used);
    let normals = normals.map(|n| keep_used(n, &used));
    let colors = colors.map(|c| keep_used(c, &used));
    let faces = faces
        .into_iter()
        .zip(&face_ok)
        .filter(|(_, k)| **k)
        .map(|(f, _)| f.map(|i| remap[i as usize]))
        .collect();
    // Kept faces use only kept vertices, and the attributes were filtered alike.
    TriangleMesh::from_parts(vertices, faces, normals, colors).expect("trimmed mesh is consistent")
}

/// The items of `v` whose flag in `used` is set, in order.
fn keep_used<T>(v: Vec<T>, used: &[bool]) -> Vec<T> {
    v.into_iter().zip(used).filter(|(_, u)| **u).map(|(x, _)| x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two triangles: one on the support (points at its corners and centre), one far off.
    #[test]
    fn drops_unsupported_faces_and_their_vertices() {
        let v = vec![
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
            Point3::new(5.0, 5.0, 0.0),
            Point3::new(6.0, 5.0, 0.0),
        ];
        let colors = vec![[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 5, 5]];
        let mesh =
            TriangleMesh::from_parts(v, vec![[3, 4, 1], [0, 1, 2]], None, Some(colors)).unwrap();
        let support = PointIndex::new(&[
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
            Point3::new(0.3, 0.3, 0.0),
        ]);
        let out = trim_to_support(mesh.clone(), &support, 0.1);
        assert_eq!(out.n_vertices(), 3);
        assert_eq!(out.faces(), &[[0, 1, 2]]);
        assert_eq!(out.colors().unwrap(), &[[1, 1, 1], [2, 2, 2], [3, 3, 3]]);
        // Vertices supported but the centroid not: dropped too.
        let corners = PointIndex::new(&mesh.vertices()[..3]);
        assert!(trim_to_support(mesh.clone(), &corners, 0.1).is_empty());
        // Everything supported: the mesh comes back unchanged, unused vertex and all.
        assert_eq!(trim_to_support(mesh.clone(), &support, 100.0), mesh);
        assert!(trim_to_support(mesh, &PointIndex::new(&[]), 1.0).is_empty());
    }

    use crate::surface::test_clouds::{Rng, jittered_plane};
    use crate::surface::{SurfaceMethod, SurfaceOptions, reconstruct_surface};

    /// Farthest distance from the cloud of any vertex or face centroid of `mesh`.
    fn farthest_from(mesh: &TriangleMesh, cloud: &PointCloud) -> f64 {
        let index = support_index(cloud);
        let d = |p: &Point3<f64>| index.nearest(p).unwrap().distance;
        let v = mesh.vertices();
        mesh.faces()
            .iter()
            .map(|f| {
                let [a, b, c] = f.map(|i| v[i as usize]);
                d(&a)
                    .max(d(&b))
                    .max(d(&c))
                    .max(d(&Point3::from((a.coords + b.coords + c.coords) / 3.0)))
            })
            .fold(0.0, f64::max)
    }

    fn options(method: SurfaceMethod, trim: Option<f64>) -> SurfaceOptions {
        SurfaceOptions { method, poisson_depth: 7, trim_distance: trim, ..Default::default() }
    }

    /// A disc of points 1 mm apart (as 1 mm voxels leave them), trim distance 2 mm: every
    /// face of every method has its vertices and centroid within 2 mm of the cloud. Untrimmed,
    /// Poisson reaches well beyond the disc (the apron the trimming removes).
    #[test]
    fn every_method_stays_on_a_disc_cloud() {
        let cloud = jittered_plane(0.04, 0.001, 1.5, |x, y| x.hypot(y) < 0.035, &mut Rng::new(21));
        let d = 0.002;
        for method in [SurfaceMethod::Poisson, SurfaceMethod::Heightfield, SurfaceMethod::Bpa] {
            let mesh = reconstruct_surface(&cloud, &options(method, Some(d))).unwrap();
            assert!(mesh.n_faces() > 1000, "{method:?}: {}", mesh.n_faces());
            let far = farthest_from(&mesh, &cloud);
            assert!(far <= d, "{method:?}: a face reaches {far} m from the cloud");
            // Nothing is lost where the cloud is: the mesh spans the disc.
            let reach = mesh.vertices().iter().map(|v| v.x.hypot(v.y)).fold(0.0, f64::max);
            assert!(reach > 0.033, "{method:?}: {reach}");
        }
        let untrimmed =
            reconstruct_surface(&cloud, &options(SurfaceMethod::Poisson, None)).unwrap();
        assert!(farthest_from(&untrimmed, &cloud) > 0.005);
    }

    /// A hole just wider than the documented limit is never bridged by the height field, at
    /// the default grid (2 mm) and trim distance (2 mm); untrimmed it is.
    #[test]
    fn heightfield_leaves_holes_wider_than_the_limit_open() {
        let (d, r) = (0.002, 0.002);
        let radius = 0.51 * heightfield_hole_limit(d, r);
        let cloud = jittered_plane(0.03, 0.001, 1.5, |x, y| x.hypot(y) > radius, &mut Rng::new(22));
        let covers_centre = |mesh: &TriangleMesh| {
            let v = mesh.vertices();
            mesh.faces().iter().any(|f| {
                let [a, b, c] = f.map(|i| v[i as usize]);
                let side = |p: Point3<f64>, q: Point3<f64>| p.x * q.y - p.y * q.x;
                let (s1, s2, s3) = (side(a, b), side(b, c), side(c, a));
                (s1 >= 0.0 && s2 >= 0.0 && s3 >= 0.0) || (s1 <= 0.0 && s2 <= 0.0 && s3 <= 0.0)
            })
        };
        let hf = SurfaceMethod::Heightfield;
        let open = reconstruct_surface(&cloud, &options(hf, Some(d))).unwrap();
        assert!(open.n_faces() > 1000);
        assert!(!covers_centre(&open), "the {radius} m hole is bridged");
        let bridged = reconstruct_surface(&cloud, &options(hf, None)).unwrap();
        assert!(covers_centre(&bridged));
    }

    /// With a very large trim distance the Poisson mesh is today's, value for value (so its
    /// PLY bytes are too): the untrimmed behaviour stays reachable.
    #[test]
    fn a_huge_trim_distance_gives_the_untrimmed_mesh() {
        let cloud = jittered_plane(0.03, 0.001, 1.5, |x, y| x.hypot(y) < 0.025, &mut Rng::new(23));
        let p = SurfaceMethod::Poisson;
        let untrimmed = reconstruct_surface(&cloud, &options(p, None)).unwrap();
        assert_eq!(reconstruct_surface(&cloud, &options(p, Some(1e9))).unwrap(), untrimmed);
        assert_ne!(reconstruct_surface(&cloud, &options(p, Some(0.002))).unwrap(), untrimmed);
        let msg = reconstruct_surface(&cloud, &options(p, Some(-1.0))).unwrap_err().to_string();
        assert!(msg.contains("mesh_trim_distance"), "{msg}");
    }

    #[test]
    fn hole_limit_formula() {
        let limit = heightfield_hole_limit(0.002, 0.002);
        assert!((limit - 2.0 * (0.002 + 0.002 * 2f64.sqrt() / 3f64.sqrt())).abs() < 1e-15);
        assert_eq!(default_trim_distance(0.001), 0.002);
    }
}
