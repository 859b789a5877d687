//! Stage `surface_reconstruction`: the mesh of the fused cloud with best-view vertex colours
//! (`mesh/surface.ply`); and the sparse pathway's cloud (`point_cloud/sparse.ply`: the sparse
//! points voxelised, with normals and best-view colours) followed by the same surface.

use rayon::prelude::*;

use crate::cloud::PointCloud;
use crate::fusion::{NormalOptions, voxel_downsample};
use crate::layout::FrameLayout;
use crate::mesh::TriangleMesh;
use crate::sparse::{ColourView, best_view_colours, best_view_mesh_colours};
use crate::surface::{SurfaceOptions, reconstruct_surface};

use super::super::PipelineError;
use super::super::context::Context;
use super::super::report::FrameReport;
use super::FrameViews;
use super::fusion::{apply_inliers, facing_cameras, normals_and_outliers};

/// Sparse pathway: the sparse cloud voxelised, with normals and best-view colours, written as
/// `point_cloud/sparse.ply`, then outlier removal and the surface.
pub(crate) fn sparse_outputs(
    ctx: &Context,
    views: &FrameViews,
    ring: &[String],
    sparse: PointCloud,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<(PointCloud, Option<TriangleMesh>), PipelineError> {
    let opts = &ctx.options;
    let cloud = voxel_downsample(&sparse, opts.voxel_size)?;
    // Sparse points are centimetres apart: normals need a wider neighbourhood than 5 voxels.
    let spacing = mean_spacing(&cloud).max(opts.voxel_size);
    let normals = NormalOptions { radius: 5.0 * spacing, ..facing_cameras(ctx, &opts.normals) };
    let (cloud, inliers) = normals_and_outliers(cloud, &normals, opts.outliers.as_ref())?;
    let colour_views = colour_views(ctx, views, ring);
    let cloud = tracing::debug_span!("colour").in_scope(|| colour_cloud(&colour_views, cloud));
    let file = dir.sparse_cloud();
    tracing::debug_span!("export", file = file.rel.as_str())
        .in_scope(|| crate::io::ply::write_point_cloud(&file.path, &cloud))?;
    report.outputs.push(file.rel);
    report.record_cloud(&cloud);
    let cloud = apply_inliers(cloud, inliers.as_deref(), report);
    let mesh = surface_outputs(ctx, views, ring, &cloud, dir, report)?;
    Ok((cloud, mesh))
}

/// Mean nearest-neighbour distance of a cloud (0 for fewer than 2 points).
pub(crate) fn mean_spacing(cloud: &PointCloud) -> f64 {
    if cloud.len() < 2 {
        return 0.0;
    }
    let index = crate::spatial::PointIndex::new(cloud.points());
    let sum: f64 = cloud.points().par_iter().map(|p| index.kth_distance(p, 2)).sum();
    sum / cloud.len() as f64
}

/// The ring cameras' colour views.
fn colour_views<'a>(
    ctx: &'a Context,
    views: &'a FrameViews,
    ring: &[String],
) -> Vec<ColourView<'a>> {
    ring.iter().map(|n| ColourView { camera: ctx.camera(n), image: &views[n].rgb }).collect()
}

/// Best-view colours (refracted viewing direction) of a cloud with normals; a cloud without
/// normals is returned as it is.
pub(crate) fn colour_cloud(views: &[ColourView<'_>], cloud: PointCloud) -> PointCloud {
    let Some(normals) = cloud.normals().map(<[_]>::to_vec) else { return cloud };
    let colours = best_view_colours(cloud.points(), &normals, views);
    cloud.with_colors(colours).expect("one colour per point")
}

/// Surface of the cloud, best-view vertex colours, `mesh/surface.ply`.
pub(crate) fn surface_outputs(
    ctx: &Context,
    views: &FrameViews,
    ring: &[String],
    cloud: &PointCloud,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<Option<TriangleMesh>, PipelineError> {
    let colour_views = colour_views(ctx, views, ring);
    let Some(mesh) = coloured_surface(
        cloud,
        &ctx.options.surface,
        &colour_views,
        ctx.options.occlusion_tolerance,
    )?
    else {
        return Ok(None);
    };
    let file = dir.mesh();
    tracing::debug_span!("export", file = file.rel.as_str())
        .in_scope(|| crate::io::ply::write_mesh(&file.path, &mesh))?;
    report.outputs.push(file.rel);
    report.n_mesh_faces = mesh.n_faces();
    Ok(Some(mesh))
}

/// The coloured mesh of `cloud`, or `None` (with a warning) when the cloud has fewer than 4
/// points or the surface no triangle.
pub(crate) fn coloured_surface(
    cloud: &PointCloud,
    opts: &SurfaceOptions,
    views: &[ColourView<'_>],
    occlusion_tolerance: f64,
) -> Result<Option<TriangleMesh>, PipelineError> {
    if cloud.len() < 4 {
        tracing::warn!("the cloud has {} points: no surface", cloud.len());
        return Ok(None);
    }
    let mesh = reconstruct_surface(cloud, opts)?;
    if mesh.is_empty() {
        tracing::warn!("surface reconstruction produced no triangles");
        return Ok(None);
    }
    Ok(Some(
        tracing::debug_span!("colour").in_scope(|| colour_mesh(views, mesh, occlusion_tolerance)),
    ))
}

/// Vertex normals and best-view colours of a mesh, skipping views in which a vertex is
/// occluded by the mesh itself (by more than `occlusion_tolerance` of ray depth).
fn colour_mesh(
    views: &[ColourView<'_>],
    mesh: TriangleMesh,
    occlusion_tolerance: f64,
) -> TriangleMesh {
    let normals = mesh.compute_vertex_normals();
    let colours =
        best_view_mesh_colours(mesh.vertices(), &normals, mesh.faces(), views, occlusion_tolerance);
    let mesh = mesh.with_normals(normals).expect("one normal per vertex");
    mesh.with_colors(colours).expect("one colour per vertex")
}

#[cfg(test)]
mod tests {
    use nalgebra::{Point3, Vector3};

    use super::*;
    use crate::features::testscene::{Photometry, Scene};
    use crate::imgproc::RgbImage;
    use crate::surface::SurfaceMethod;
    use crate::synth::surface::SurfaceKind;

    #[test]
    fn mean_spacing_of_a_grid_is_its_pitch() {
        let grid: Vec<Point3<f64>> = (0..100)
            .map(|i| Point3::new((i % 10) as f64 * 0.02, (i / 10) as f64 * 0.02, 0.5))
            .collect();
        assert!((mean_spacing(&PointCloud::new(grid)) - 0.02).abs() < 1e-12);
        assert_eq!(mean_spacing(&PointCloud::new(vec![Point3::origin()])), 0.0);
    }

    #[test]
    fn a_flat_cloud_gets_a_coloured_surface_and_a_tiny_one_none() {
        let scene =
            Scene::tiny(SurfaceKind::Flat, &[Photometry { gain: 1.0, offset: 0.0, noise: 0.0 }]);
        // Mid-grey everywhere: every visible vertex gets (128, 128, 128).
        let grey: Vec<RgbImage> = scene
            .views
            .iter()
            .map(|(_, c, _)| RgbImage::from_fn(c.size(), |_, _| [128; 3]))
            .collect();
        let views: Vec<ColourView<'_>> = scene
            .views
            .iter()
            .zip(&grey)
            .map(|((_, camera, _), image)| ColourView { camera, image })
            .collect();
        let z = scene.surface.base_z();
        let points: Vec<Point3<f64>> = (0..400)
            .map(|i| {
                Point3::new(-0.05 + (i % 20) as f64 * 0.005, -0.05 + (i / 20) as f64 * 0.005, z)
            })
            .collect();
        let normals = vec![Vector3::new(0.0, 0.0, -1.0); points.len()];
        let cloud = PointCloud::new(points).with_normals(normals).expect("one per point");
        let opts = SurfaceOptions {
            method: SurfaceMethod::Heightfield,
            grid_resolution: 0.005,
            ..SurfaceOptions::default()
        };
        let mesh = coloured_surface(&cloud, &opts, &views, 0.01).expect("runs").expect("a mesh");
        assert!(mesh.n_faces() > 100, "{} faces", mesh.n_faces());
        assert!(mesh.vertices().iter().all(|v| (v.z - z).abs() < 1e-6));
        assert!(mesh.colors().expect("coloured").iter().all(|c| *c == [128; 3]));
        let tiny = PointCloud::new(vec![Point3::new(0.0, 0.0, z); 3]);
        assert!(coloured_surface(&tiny, &opts, &views, 0.01).expect("runs").is_none());
        // Cloud colours from the same views.
        let coloured = colour_cloud(&views, cloud);
        assert!(coloured.colors().expect("coloured").iter().all(|c| *c == [128; 3]));
    }
}
