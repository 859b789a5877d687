//! Mesh simplification to a target triangle count (`target_faces`, `export-mesh --simplify`).
//!
//! Quadric-error edge collapse via meshoptimizer's simplifier (`meshopt` crate): it is the
//! same family of algorithm as Open3D's `simplify_quadric_decimation` that the reference uses,
//! runs in well under a second per million triangles, and collapses edges onto existing
//! vertices, so vertex colours survive untouched (no attribute interpolation to get wrong).
//! Vertices no longer referenced are dropped, keeping the survivors in their original order
//! so the output is deterministic.

use nalgebra::Point3;

use crate::mesh::TriangleMesh;

/// The outcome of [`simplify_mesh`].
#[derive(Clone, Debug, PartialEq)]
pub struct Simplified {
    /// The simplified mesh (the input unchanged when it already had few enough faces).
    pub mesh: TriangleMesh,
    /// True when the simplifier stopped above 1.1 × the target (it would have had to break
    /// the mesh's topology to go further); also logged as a warning, as the reference does.
    pub above_target: bool,
}

/// Simplifies `mesh` to about `target_faces` triangles with quadric-error edge collapses.
///
/// Colours are kept per surviving vertex. Normals, when the input had them, are recomputed
/// from the simplified faces (the old ones no longer describe the coarser surface).
pub fn simplify_mesh(mesh: &TriangleMesh, target_faces: usize) -> Simplified {
    if mesh.n_faces() <= target_faces {
        return Simplified { mesh: mesh.clone(), above_target: false };
    }
    let _span = tracing::info_span!("simplify", from = mesh.n_faces(), to = target_faces).entered();
    // f32 positions relative to the centroid keep full precision for metre-scale scenes far
    // from the origin.
    let n = mesh.n_vertices().max(1) as f64;
    let centre = mesh.vertices().iter().fold(nalgebra::Vector3::zeros(), |a, p| a + p.coords) / n;
    let positions: Vec<[f32; 3]> = mesh
        .vertices()
        .iter()
        .map(|p| {
            let d = p.coords - centre;
            [d.x as f32, d.y as f32, d.z as f32]
        })
        .collect();
    let indices: Vec<u32> = mesh.faces().iter().flatten().copied().collect();
    // An error bound of 1 (relative to the mesh extent) means "no bound": the face count alone
    // decides, like Open3D's target_number_of_triangles.
    let out = meshopt::simplify_decoder(
        &indices,
        &positions,
        target_faces * 3,
        1.0,
        meshopt::SimplifyOptions::None,
        None,
    );
    // Collapses on a flat region can leave a triangle whose corners are collinear; its normal
    // is noise, so it goes (the surface is unchanged: it has no area).
    let faces: Vec<[u32; 3]> = out
        .chunks_exact(3)
        .map(|t| [t[0], t[1], t[2]])
        .filter(|t| !is_degenerate(mesh, *t))
        .collect();
    let above_target = faces.len() as f64 > 1.1 * target_faces as f64;
    if above_target {
        tracing::warn!(
            "simplification stopped at {} triangles, more than 1.1 × the target {}",
            faces.len(),
            target_faces
        );
    }
    Simplified { mesh: compact(mesh, faces), above_target }
}

/// True when the triangle's area is negligible next to its longest edge (collinear corners).
fn is_degenerate(mesh: &TriangleMesh, [a, b, c]: [u32; 3]) -> bool {
    let v = |i: u32| mesh.vertices()[i as usize];
    let (e1, e2, e3) = (v(b) - v(a), v(c) - v(a), v(c) - v(b));
    let longest = e1.norm_squared().max(e2.norm_squared()).max(e3.norm_squared());
    e1.cross(&e2).norm() <= 1e-12 * longest
}

/// Keeps only the vertices that `faces` reference (in their original order) and renumbers.
fn compact(mesh: &TriangleMesh, faces: Vec<[u32; 3]>) -> TriangleMesh {
    let mut remap = vec![u32::MAX; mesh.n_vertices()];
    for tri in &faces {
        for &v in tri {
            remap[v as usize] = 0;
        }
    }
    let mut vertices: Vec<Point3<f64>> = Vec::new();
    let mut colors = mesh.colors().map(|_| Vec::new());
    for (i, slot) in remap.iter_mut().enumerate() {
        if *slot == u32::MAX {
            continue;
        }
        // Fewer vertices than the input, which had u32 face indices: fits.
        *slot = vertices.len() as u32;
        vertices.push(mesh.vertices()[i]);
        if let (Some(out), Some(c)) = (&mut colors, mesh.colors()) {
            out.push(c[i]);
        }
    }
    let faces: Vec<[u32; 3]> = faces.into_iter().map(|t| t.map(|v| remap[v as usize])).collect();
    let had_normals = mesh.normals().is_some();
    // Every index was remapped into `vertices` just above, so the parts are consistent.
    let out = TriangleMesh::from_parts(vertices, faces, None, colors)
        .expect("compacted mesh indices are in range");
    if had_normals {
        let normals = out.compute_vertex_normals();
        out.with_normals(normals).expect("one normal per vertex")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::heightfield::reconstruct_heightfield;
    use crate::surface::test_clouds::grid_cloud;

    #[test]
    fn reaches_target_and_keeps_a_plane_flat() {
        let cloud = grid_cloud(41, 0.025, |x, y| 1.0 + 0.1 * x + 0.05 * y);
        let mesh = reconstruct_heightfield(&cloud, 0.025).unwrap();
        assert_eq!(mesh.n_faces(), 2 * 40 * 40);
        let out = simplify_mesh(&mesh, 200);
        assert!(!out.above_target);
        assert!(out.mesh.n_faces() <= 200 && out.mesh.n_faces() > 100, "{}", out.mesh.n_faces());
        // Collapses onto existing vertices of a plane stay on the plane.
        for v in out.mesh.vertices() {
            assert!((v.z - (1.0 + 0.1 * v.x + 0.05 * v.y)).abs() < 1e-9);
        }
        // Corners of the domain survive (they carry the most quadric error).
        let has = |x: f64, y: f64| {
            out.mesh.vertices().iter().any(|v| (v.x - x).abs() < 1e-9 && (v.y - y).abs() < 1e-9)
        };
        assert!(has(0.0, 0.0) && has(1.0, 1.0));
        // Orientation is preserved (normals still up).
        assert!(out.mesh.face_normals().iter().all(|n| n.z < 0.0));
    }

    #[test]
    fn keeps_colours_of_surviving_vertices_and_recomputes_normals() {
        let cloud = grid_cloud(21, 0.05, |x, _| 1.0 + 0.2 * (3.0 * x).sin());
        let n = cloud.len();
        let colors: Vec<[u8; 3]> = (0..n).map(|i| [(i % 256) as u8, 0, 0]).collect();
        let cloud = cloud.with_colors(colors).unwrap();
        let mesh = reconstruct_heightfield(&cloud, 0.05).unwrap();
        let normals = mesh.compute_vertex_normals();
        let mesh = mesh.with_normals(normals).unwrap();
        let out = simplify_mesh(&mesh, 100).mesh;
        assert!(out.normals().is_some());
        for (v, c) in out.vertices().iter().zip(out.colors().unwrap()) {
            let orig = mesh.vertices().iter().position(|w| w == v).unwrap();
            assert_eq!(*c, mesh.colors().unwrap()[orig]);
        }
        // Already small enough: unchanged.
        let same = simplify_mesh(&out, 1_000_000);
        assert_eq!(same.mesh, out);
    }
}
