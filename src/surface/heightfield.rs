//! Height-field surfaces: the natural mesh for a tank or lake bottom seen from above, where
//! every (x, y) has one depth.
//!
//! Same construction as the reference (scipy `griddata(method="linear")` on a regular grid):
//! a grid with spacing `resolution` from the cloud's XY minimum (`arange(min, max + r, r)` in
//! each axis); z and colour at each node by linear barycentric interpolation on the XY
//! Delaunay triangulation of the cloud; nodes outside the convex hull dropped; vertices in
//! row-major (iy, ix) order; two triangles per cell whose four corners are valid.
//!
//! Interpolation rasterises each Delaunay triangle onto the grid nodes inside its bounding box
//! instead of locating every node in the triangulation: O(triangles + nodes), no point-location
//! walks, and deterministic (the first triangle in delaunator's order wins on shared edges,
//! where linear interpolation agrees anyway).

use nalgebra::Point3;

use crate::cloud::PointCloud;
use crate::mesh::TriangleMesh;
use crate::surface::SurfaceError;

/// Largest grid this module builds (nodes); beyond it the resolution is surely a unit mistake
/// (e.g. millimetres given as metres) and the memory would run out first.
const MAX_GRID_NODES: usize = 100_000_000;

/// Builds a height-field mesh from `cloud` on a grid of spacing `resolution` (metres).
///
/// Vertex colours are interpolated like z when the cloud has colours. Normals are not set
/// (the caller computes them from the faces, as the reference does).
pub fn reconstruct_heightfield(
    cloud: &PointCloud,
    resolution: f64,
) -> Result<TriangleMesh, SurfaceError> {
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(SurfaceError::InvalidOption {
            name: "grid_resolution",
            value: resolution.to_string(),
            reason: "must be a positive number of metres",
        });
    }
    let _span = tracing::info_span!("heightfield", n_points = cloud.len()).entered();
    // Non-finite points (a NaN depth that slipped through) would poison the triangulation.
    let keep: Vec<usize> = (0..cloud.len())
        .filter(|&i| cloud.points()[i].coords.iter().all(|v| v.is_finite()))
        .collect();
    if keep.len() < 4 {
        return Err(SurfaceError::TooFewPoints { method: "heightfield", need: 4, got: keep.len() });
    }
    let pts: Vec<Point3<f64>> = keep.iter().map(|&i| cloud.points()[i]).collect();
    let colors: Option<Vec<[f64; 3]>> =
        cloud.colors().map(|c| keep.iter().map(|&i| c[i].map(|v| f64::from(v) / 255.0)).collect());

    let (x_min, x_max, y_min, y_max) = pts.iter().fold(
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY),
        |(a, b, c, d), p| (a.min(p.x), b.max(p.x), c.min(p.y), d.max(p.y)),
    );
    // numpy's arange(min, max + r, r) has ceil((max - min)/r + 1) values.
    let nx = ((x_max - x_min) / resolution + 1.0).ceil() as usize;
    let ny = ((y_max - y_min) / resolution + 1.0).ceil() as usize;
    if nx.saturating_mul(ny) > MAX_GRID_NODES {
        return Err(SurfaceError::InvalidOption {
            name: "grid_resolution",
            value: resolution.to_string(),
            reason: "too fine for the cloud's extent (more than 1e8 grid nodes)",
        });
    }

    // Triangulate relative to the centre: delaunator's predicates lose digits far from 0.
    let (cx, cy) = (0.5 * (x_min + x_max), 0.5 * (y_min + y_max));
    let d_pts: Vec<delaunator::Point> =
        pts.iter().map(|p| delaunator::Point { x: p.x - cx, y: p.y - cy }).collect();
    let tri = delaunator::triangulate(&d_pts);
    if tri.triangles.is_empty() {
        return Err(SurfaceError::Degenerate {
            method: "heightfield",
            reason: "the points are collinear in XY; no triangulation exists".into(),
        });
    }

    // Rasterise every triangle onto the grid nodes it covers.
    let n_nodes = nx * ny;
    let mut z = vec![f64::NAN; n_nodes];
    let mut rgb = colors.as_ref().map(|_| vec![[0.0f64; 3]; n_nodes]);
    for t in tri.triangles.chunks_exact(3) {
        let [a, b, c] = [t[0], t[1], t[2]];
        let (pa, pb, pc) = (&pts[a], &pts[b], &pts[c]);
        // Barycentric coordinates from signed areas; skip degenerate slivers.
        let det = (pb.y - pc.y) * (pa.x - pc.x) + (pc.x - pb.x) * (pa.y - pc.y);
        if det.abs() <= f64::MIN_POSITIVE {
            continue;
        }
        let lo_x = pa.x.min(pb.x).min(pc.x);
        let hi_x = pa.x.max(pb.x).max(pc.x);
        let lo_y = pa.y.min(pb.y).min(pc.y);
        let hi_y = pa.y.max(pb.y).max(pc.y);
        let ix0 = ((lo_x - x_min) / resolution).ceil().max(0.0) as usize;
        let ix1 = (((hi_x - x_min) / resolution).floor() as usize).min(nx - 1);
        let iy0 = ((lo_y - y_min) / resolution).ceil().max(0.0) as usize;
        let iy1 = (((hi_y - y_min) / resolution).floor() as usize).min(ny - 1);
        // Nodes on an edge belong to both triangles; accept a hair outside so that rounding
        // never drops a node on the hull.
        const EDGE_TOL: f64 = -1e-9;
        for iy in iy0..=iy1 {
            let y = y_min + iy as f64 * resolution;
            for ix in ix0..=ix1 {
                let node = iy * nx + ix;
                if !z[node].is_nan() {
                    continue;
                }
                let x = x_min + ix as f64 * resolution;
                let la = ((pb.y - pc.y) * (x - pc.x) + (pc.x - pb.x) * (y - pc.y)) / det;
                let lb = ((pc.y - pa.y) * (x - pc.x) + (pa.x - pc.x) * (y - pc.y)) / det;
                let lc = 1.0 - la - lb;
                if la < EDGE_TOL || lb < EDGE_TOL || lc < EDGE_TOL {
                    continue;
                }
                z[node] = la * pa.z + lb * pb.z + lc * pc.z;
                if let (Some(rgb), Some(col)) = (&mut rgb, &colors) {
                    for ch in 0..3 {
                        rgb[node][ch] = la * col[a][ch] + lb * col[b][ch] + lc * col[c][ch];
                    }
                }
            }
        }
    }

    // Vertices: valid nodes in row-major (iy, ix) order.
    let mut index = vec![u32::MAX; n_nodes];
    let mut vertices = Vec::new();
    let mut vcolors = rgb.as_ref().map(|_| Vec::new());
    for iy in 0..ny {
        for ix in 0..nx {
            let node = iy * nx + ix;
            if z[node].is_nan() {
                continue;
            }
            let id = u32::try_from(vertices.len()).map_err(|_| SurfaceError::InvalidOption {
                name: "grid_resolution",
                value: resolution.to_string(),
                reason: "gives more than 2^32 vertices",
            })?;
            index[node] = id;
            vertices.push(Point3::new(
                x_min + ix as f64 * resolution,
                y_min + iy as f64 * resolution,
                z[node],
            ));
            if let (Some(out), Some(rgb)) = (&mut vcolors, &rgb) {
                out.push(rgb[node].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
            }
        }
    }
    // Two triangles per cell with four valid corners; the winding makes the normal point to
    // −Z (up, towards the cameras), like the fused cloud's normals.
    let mut faces = Vec::new();
    for iy in 0..ny.saturating_sub(1) {
        for ix in 0..nx.saturating_sub(1) {
            let v00 = index[iy * nx + ix];
            let v01 = index[iy * nx + ix + 1];
            let v10 = index[(iy + 1) * nx + ix];
            let v11 = index[(iy + 1) * nx + ix + 1];
            if [v00, v01, v10, v11].contains(&u32::MAX) {
                continue;
            }
            faces.push([v00, v10, v01]);
            faces.push([v01, v10, v11]);
        }
    }
    // Indices come from `vertices` and colours are one per vertex: cannot fail.
    TriangleMesh::from_parts(vertices, faces, None, vcolors).map_err(|e| SurfaceError::Degenerate {
        method: "heightfield",
        reason: format!("internal error building the mesh: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::test_clouds::{Rng, grid_cloud};

    /// Reference §10.10: 300 points on z = 1.5 + 0.01·sin(10x), r = 0.01: vertices with
    /// |x| < 0.01 have mean z within 0.01 of 1.5.
    #[test]
    fn sine_surface_mean_height_near_axis() {
        let mut rng = Rng::new(1);
        let pts: Vec<_> = (0..300)
            .map(|_| {
                let (x, y) = (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1));
                Point3::new(x, y, 1.5 + 0.01 * (10.0 * x).sin())
            })
            .collect();
        let mesh = reconstruct_heightfield(&PointCloud::new(pts), 0.01).unwrap();
        assert!(mesh.n_faces() > 100);
        let near: Vec<f64> =
            mesh.vertices().iter().filter(|v| v.x.abs() < 0.01).map(|v| v.z).collect();
        assert!(!near.is_empty());
        let mean = near.iter().sum::<f64>() / near.len() as f64;
        assert!((mean - 1.5).abs() < 0.01, "{mean}");
    }

    /// Reference §10.10: a red-to-blue x gradient stays red on the left, blue on the right.
    #[test]
    fn colours_follow_the_gradient() {
        let mut rng = Rng::new(2);
        let mut pts = Vec::new();
        let mut cols = Vec::new();
        for _ in 0..300 {
            let (x, y) = (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1));
            pts.push(Point3::new(x, y, 1.5));
            let t = (x + 0.1) / 0.2;
            cols.push([((1.0 - t) * 255.0) as u8, 0, (t * 255.0) as u8]);
        }
        let cloud = PointCloud::new(pts).with_colors(cols).unwrap();
        let mesh = reconstruct_heightfield(&cloud, 0.01).unwrap();
        let colors = mesh.colors().unwrap();
        let mut checked = 0;
        for (v, c) in mesh.vertices().iter().zip(colors) {
            if v.x < -0.05 {
                assert!(c[0] > c[2], "{v:?} {c:?}");
                checked += 1;
            } else if v.x > 0.05 {
                assert!(c[2] > c[0], "{v:?} {c:?}");
                checked += 1;
            }
        }
        assert!(checked > 20);
    }

    /// Reference §10.10: fewer than 4 points is an error naming the requirement.
    #[test]
    fn too_few_points() {
        let cloud = PointCloud::new(vec![Point3::origin(); 3]);
        let msg = reconstruct_heightfield(&cloud, 0.01).unwrap_err().to_string();
        assert!(msg.contains("at least 4 points"), "{msg}");
        let nan = PointCloud::new(vec![Point3::new(f64::NAN, 0.0, 0.0); 10]);
        assert!(reconstruct_heightfield(&nan, 0.01).is_err());
        let line: Vec<_> = (0..10).map(|i| Point3::new(f64::from(i), 0.0, 1.0)).collect();
        let msg = reconstruct_heightfield(&PointCloud::new(line), 0.5).unwrap_err().to_string();
        assert!(msg.contains("collinear"), "{msg}");
        let msg =
            reconstruct_heightfield(&grid_cloud(4, 0.1, |_, _| 1.0), 0.0).unwrap_err().to_string();
        assert!(msg.contains("grid_resolution"), "{msg}");
    }

    /// Reference §10.10: two clusters at x < −0.05 and x > 0.05 (r = 0.005) give one mesh that
    /// spans both (the hull bridges the gap).
    #[test]
    fn two_clusters_are_bridged() {
        let mut rng = Rng::new(3);
        let mut pts = Vec::new();
        for k in 0..200 {
            let x0 = if k % 2 == 0 { -0.1 } else { 0.05 };
            pts.push(Point3::new(rng.uniform(x0, x0 + 0.05), rng.uniform(-0.05, 0.05), 1.5));
        }
        let mesh = reconstruct_heightfield(&PointCloud::new(pts), 0.005).unwrap();
        let xs: Vec<f64> = mesh.vertices().iter().map(|v| v.x).collect();
        assert!(xs.iter().any(|&x| x < -0.05) && xs.iter().any(|&x| x > 0.05));
        assert!(xs.iter().any(|&x| x.abs() < 0.01), "the gap is covered");
    }

    /// An exact plane is reproduced exactly, the grid follows numpy's arange, the winding
    /// points the normals up (−Z), and the cells are all there.
    #[test]
    fn plane_is_exact_and_grid_matches_arange() {
        // 11 × 11 samples on [0, 1]² of a tilted plane; r = 0.25 → 5 × 5 nodes.
        let plane = |x: f64, y: f64| 2.0 + 0.3 * x - 0.2 * y;
        let cloud = grid_cloud(11, 0.1, plane);
        let mesh = reconstruct_heightfield(&cloud, 0.25).unwrap();
        assert_eq!(mesh.n_vertices(), 25);
        assert_eq!(mesh.n_faces(), 2 * 16);
        for v in mesh.vertices() {
            assert!((v.z - plane(v.x, v.y)).abs() < 1e-12);
        }
        for n in mesh.compute_vertex_normals() {
            assert!(n.z < -0.9);
        }
        // 0.3 is not a multiple of the extent: arange gives ceil(1/0.3 + 1) = 5 nodes, the
        // last (x = 1.2) outside the hull and dropped.
        let mesh = reconstruct_heightfield(&cloud, 0.3).unwrap();
        assert_eq!(mesh.n_vertices(), 16);
    }

    #[test]
    fn deterministic() {
        let mut rng = Rng::new(4);
        let pts: Vec<_> = (0..500)
            .map(|_| {
                Point3::new(rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0), rng.uniform(1.0, 1.1))
            })
            .collect();
        let cloud = PointCloud::new(pts);
        assert_eq!(
            reconstruct_heightfield(&cloud, 0.02).unwrap(),
            reconstruct_heightfield(&cloud, 0.02).unwrap()
        );
    }
}
