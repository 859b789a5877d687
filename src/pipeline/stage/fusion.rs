//! Stage `fusion`: each ring camera's depth map filtered against the others (consistency),
//! back-projected with its colours, voxelised, given normals and outlier flags from one
//! neighbour query, and written as `point_cloud/fused.ply` (before outlier removal, as
//! AquaMVS does); the stage returns the cloud after outlier removal.

use std::collections::BTreeMap;
use std::thread::ScopedJoinHandle;

use nalgebra::Point3;

use crate::cloud::PointCloud;
use crate::dense::DepthMap;
use crate::fusion::{
    DepthView, FilteredDepth, NormalOptions, NormalOrientation, OutlierOptions, backproject,
    filter_depth_map, normals_and_inliers, voxel_downsample, with_normals,
};
use crate::geom::RefractiveCamera;
use crate::imgproc::RgbImage;
use crate::io::npz::{ArrayRef, Compression, write_npz_with};
use crate::layout::{FrameLayout, sub};

use super::super::PipelineError;
use super::super::context::Context;
use super::super::plan::StageOptions;
use super::super::report::FrameReport;
use super::{FrameViews, camera_centres, spawn_export};

/// What fusion reads of a frame besides the depth maps: every active camera (normals face
/// the nearest) and the ring cameras' undistorted colour images.
pub(crate) struct FusionViews<'a> {
    /// Cameras by name.
    pub cameras: BTreeMap<&'a str, &'a RefractiveCamera>,
    /// Colour images by name.
    pub images: BTreeMap<&'a str, &'a RgbImage>,
}

/// The fused cloud before outlier removal (with normals) and, when outlier removal ran, the
/// inlier flags.
pub(crate) struct Fused {
    /// Voxelised cloud with normals and colours.
    pub cloud: PointCloud,
    /// One flag per point of `cloud`.
    pub inliers: Option<Vec<bool>>,
}

/// Consistency filter, back-projection and the fused cloud, with the outlier flags; the cloud
/// is written by [`export_fused`].
pub(crate) fn fuse(
    ctx: &Context,
    views: &FrameViews,
    ring: &[String],
    maps: &BTreeMap<String, DepthMap>,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<Fused, PipelineError> {
    let opts = &ctx.options;
    let fusion_views = FusionViews {
        cameras: ctx.cameras.iter().map(|(n, c)| (n.as_str(), &c.camera)).collect(),
        images: views.iter().map(|(n, v)| (n.as_str(), &v.rgb)).collect(),
    };
    let mut written = Vec::new();
    let mut save = |name: &str, filtered: &FilteredDepth| -> Result<(), PipelineError> {
        if opts.save_consistency_maps {
            let size = filtered.depth.size();
            let array = ArrayRef::i32_2d(size.height, size.width, &filtered.consistency)?;
            let file = dir.consistency_map(name)?;
            write_npz_with(&file.path, &[("consistency", array)], Compression::Deflated)?;
            written.push(file.rel);
        }
        Ok(())
    };
    let fused = fuse_maps(&fusion_views, ring, maps, opts, report, &mut save)?;
    report.outputs.extend(written);
    report.record_cloud(&fused.cloud);
    if !opts.keep_intermediates {
        for sub in [sub::DEPTH_MAPS, sub::CONSISTENCY_MAPS] {
            let sub_dir = dir.sub_dir(sub);
            if sub_dir.is_dir() {
                std::fs::remove_dir_all(&sub_dir).map_err(|source| {
                    PipelineError::RemoveIntermediates { path: sub_dir.clone(), source }
                })?;
                report.outputs.retain(|o| !o.starts_with(&format!("{sub}/")));
            }
        }
    }
    Ok(fused)
}

/// Starts writing the fused cloud as `point_cloud/fused.ply` (before outlier removal, as
/// AquaMVS does) on a thread of `scope`, and returns the write with the cloud after outlier
/// removal: the write overlaps the surface. The written cloud is freed when its write ends.
pub(crate) fn export_fused<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    fused: Fused,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> (ScopedJoinHandle<'scope, Result<(), PipelineError>>, PointCloud) {
    let Fused { cloud, inliers } = fused;
    let kept = match inliers.as_deref() {
        Some(keep) => select_inliers(&cloud, keep),
        None => cloud.clone(),
    };
    report.n_points_after_outliers = kept.len();
    let file = dir.fused_cloud();
    report.outputs.push(file.rel.clone());
    let writing = spawn_export(scope, &file.rel, move || {
        Ok(crate::io::ply::write_point_cloud(&file.path, &cloud)?)
    });
    (writing, kept)
}

/// The fused cloud of the ring cameras' depth maps: each filtered against the others (unless
/// `opts.consistency_filter` is off; `save` sees every filtered map), back-projected with its
/// colours, voxelised, with normals and outlier flags. Records each camera's valid fraction.
pub(crate) fn fuse_maps(
    views: &FusionViews<'_>,
    ring: &[String],
    maps: &BTreeMap<String, DepthMap>,
    opts: &StageOptions,
    report: &mut FrameReport,
    save: &mut dyn FnMut(&str, &FilteredDepth) -> Result<(), PipelineError>,
) -> Result<Fused, PipelineError> {
    let mut points = Vec::new();
    let mut colours = Vec::new();
    for name in ring {
        let Some(map) = maps.get(name) else { continue };
        let _span = tracing::debug_span!("consistency", camera = name.as_str()).entered();
        let targets: Vec<DepthView<'_>> = maps
            .iter()
            .filter(|(other, _)| *other != name)
            .map(|(other, m)| DepthView { camera: views.cameras[other.as_str()], depth: m })
            .collect();
        let camera = views.cameras[name.as_str()];
        let filtered = opts.consistency_filter.then(|| {
            filter_depth_map(DepthView { camera, depth: map }, &targets, &opts.consistency)
        });
        let depth = filtered.as_ref().map_or(map, |f| &f.depth);
        let valid = depth.valid_count() as f64 / depth.size().area() as f64;
        report.depth_valid_fraction.insert(name.clone(), valid);
        if let Some(filtered) = &filtered {
            save(name, filtered)?;
        }
        let part = tracing::debug_span!("backproject")
            .in_scope(|| backproject(camera, depth, views.images[name.as_str()]));
        let (p, _, c) = part.into_parts();
        points.extend(p);
        colours.extend(c.unwrap_or_default());
    }
    let cloud = PointCloud::new(points).with_colors(colours)?;
    tracing::info!("{} points from {} depth maps", cloud.len(), maps.len());
    let cloud = tracing::debug_span!("voxel_downsample")
        .in_scope(|| voxel_downsample(&cloud, opts.voxel_size))?;
    let centres: Vec<Point3<f64>> = views.cameras.values().map(|c| c.centre()).collect();
    let normal_options = NormalOptions {
        orientation: NormalOrientation::TowardNearestCamera(centres),
        ..opts.normals.clone()
    };
    let (cloud, inliers) = tracing::debug_span!("normals_and_outliers")
        .in_scope(|| normals_and_outliers(cloud, &normal_options, opts.outliers.as_ref()))?;
    Ok(Fused { cloud, inliers })
}

/// PCA normals of `cloud` and, when outlier removal is on and the cloud is larger than its
/// neighbourhood, the inlier flags: both from one neighbour query per point. The one normal
/// and outlier path of the dense and the sparse pathways.
pub(crate) fn normals_and_outliers(
    cloud: PointCloud,
    normals: &NormalOptions,
    outliers: Option<&OutlierOptions>,
) -> Result<(PointCloud, Option<Vec<bool>>), PipelineError> {
    match outliers {
        Some(outliers) if cloud.len() > outliers.nb_neighbors => {
            let (n, inliers) = normals_and_inliers(cloud.points(), normals, outliers)?;
            let cloud = cloud.with_normals(n)?;
            Ok((cloud, Some(inliers)))
        }
        _ if cloud.is_empty() => Ok((cloud, None)),
        _ => Ok((with_normals(cloud, normals)?, None)),
    }
}

/// The cloud after outlier removal (`inliers` from [`normals_and_outliers`]), its size
/// recorded in the report.
pub(crate) fn apply_inliers(
    cloud: PointCloud,
    inliers: Option<&[bool]>,
    report: &mut FrameReport,
) -> PointCloud {
    let cloud = match inliers {
        Some(keep) => select_inliers(&cloud, keep),
        None => cloud,
    };
    report.n_points_after_outliers = cloud.len();
    cloud
}

/// The points of `cloud` flagged in `keep`.
fn select_inliers(cloud: &PointCloud, keep: &[bool]) -> PointCloud {
    let kept = cloud.select(keep);
    tracing::info!("outlier removal kept {} of {} points", kept.len(), cloud.len());
    kept
}

/// The normal options of the run's cameras: `opts.normals` facing the nearest active camera.
pub(crate) fn facing_cameras(ctx: &Context, normals: &NormalOptions) -> NormalOptions {
    NormalOptions {
        orientation: NormalOrientation::TowardNearestCamera(camera_centres(ctx)),
        ..normals.clone()
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::Vector3;

    use super::*;
    use crate::dense::DepthMap;
    use crate::features::testscene::{Photometry, Scene};
    use crate::imgproc::{GrayImage, Image};
    use crate::synth::render::intersect;
    use crate::synth::surface::SurfaceKind;

    /// The exact depth map of `camera` over the scene (confidence 1).
    fn exact_map(scene: &Scene, camera: &RefractiveCamera) -> DepthMap {
        let depth: GrayImage = Image::from_fn(camera.size(), |x, y| {
            let d = camera
                .cast_ray(x as f64, y as f64)
                .ok()
                .and_then(|ray| intersect(&scene.surface, &ray));
            [d.map_or(f32::NAN, |d| d as f32)]
        });
        let confidence = Image::from_fn(camera.size(), |_, _| [1.0f32]);
        DepthMap::new(depth, confidence, None).expect("same sizes")
    }

    #[test]
    fn exact_maps_fuse_onto_the_surface_and_a_wrong_patch_is_filtered_out() {
        let scene =
            Scene::tiny(SurfaceKind::Sandbed, &[Photometry { gain: 1.0, offset: 0.0, noise: 0.0 }]);
        let ring: Vec<String> =
            scene.rig.ring_names().into_iter().map(str::to_owned).collect::<Vec<_>>();
        let rgb: BTreeMap<String, RgbImage> = scene
            .views
            .iter()
            .map(|(n, _, g)| (n.clone(), g.map(|[v]| [(v * 255.0) as u8; 3])))
            .collect();
        let views = FusionViews {
            cameras: scene.views.iter().map(|(n, c, _)| (n.as_str(), c)).collect(),
            images: rgb.iter().map(|(n, i)| (n.as_str(), i)).collect(),
        };
        let mut maps: BTreeMap<String, DepthMap> = ring
            .iter()
            .map(|n| (n.clone(), exact_map(&scene, views.cameras[n.as_str()])))
            .collect();
        // A 40 × 40 patch of the first camera 5 cm too deep: no other camera confirms it.
        let (depth, confidence, range) = maps.remove(&ring[0]).expect("map").into_parts();
        let mut depth = depth;
        for y in 100..140 {
            for x in 140..180 {
                let d = depth.get(x, y)[0];
                depth.set(x, y, [d + 0.05]);
            }
        }
        maps.insert(ring[0].clone(), DepthMap::new(depth, confidence, range).expect("sizes"));
        let mut opts = StageOptions::resolve(&crate::config::Config::default());
        opts.consistency.min_consistent_views = 1;
        opts.voxel_size = 0.002;
        opts.normals = NormalOptions::for_voxel_size(0.002);
        let mut report = FrameReport::default();
        let mut saved = Vec::new();
        let mut save = |name: &str, f: &FilteredDepth| {
            saved.push((name.to_owned(), f.depth.valid_count()));
            Ok(())
        };
        let fused = fuse_maps(&views, &ring, &maps, &opts, &mut report, &mut save).expect("fused");
        assert_eq!(saved.iter().map(|s| &s.0).collect::<Vec<_>>(), ring.iter().collect::<Vec<_>>());
        assert!(fused.cloud.len() > 1000, "{} points", fused.cloud.len());
        let far = fused.cloud.points().iter().filter(|p| scene.surface.distance(p) > 0.004).count();
        assert_eq!(far, 0, "every fused point lies on the surface (voxel 2 mm)");
        // Normals face the cameras above (−Z is up).
        let normals = fused.cloud.normals().expect("normals");
        assert!(normals.iter().all(|n: &Vector3<f64>| n.z < 0.0));
        assert_eq!(fused.inliers.as_ref().map(Vec::len), Some(fused.cloud.len()));
        for name in &ring {
            let f = report.depth_valid_fraction[name];
            assert!(f > 0.3 && f <= 1.0, "{name}: {f}");
        }
        // Unfiltered (RoMa's default), the wrong patch comes through.
        opts.consistency_filter = false;
        let mut none = |_: &str, _: &FilteredDepth| -> Result<(), PipelineError> {
            panic!("no filtered map without the filter")
        };
        let raw = fuse_maps(&views, &ring, &maps, &opts, &mut FrameReport::default(), &mut none)
            .expect("fused");
        let far = raw.cloud.points().iter().filter(|p| scene.surface.distance(p) > 0.004).count();
        assert!(far > 100, "{far} points of the wrong patch");
    }

    /// The tighter second rule (`consistency_close_views`) completes the band that fewer
    /// cameras see without letting a wrong depth through; off, the filter is the reference's.
    #[test]
    fn the_close_rule_completes_the_band_and_keeps_accuracy() {
        let scene =
            Scene::tiny(SurfaceKind::Sandbed, &[Photometry { gain: 1.0, offset: 0.0, noise: 0.0 }]);
        let ring: Vec<String> =
            scene.rig.ring_names().into_iter().map(str::to_owned).collect::<Vec<_>>();
        let grey: BTreeMap<String, RgbImage> = scene
            .views
            .iter()
            .map(|(n, c, _)| (n.clone(), RgbImage::from_elem(c.size(), 128)))
            .collect();
        let views = FusionViews {
            cameras: scene.views.iter().map(|(n, c, _)| (n.as_str(), c)).collect(),
            images: grey.iter().map(|(n, i)| (n.as_str(), i)).collect(),
        };
        // Exact depths with ±0.3 mm of deterministic noise, and in the first camera a patch
        // 3 cm too deep.
        let mut maps = BTreeMap::new();
        for (k, name) in ring.iter().enumerate() {
            let (depth, confidence, range) =
                exact_map(&scene, views.cameras[name.as_str()]).into_parts();
            let mut depth = depth;
            let size = depth.size();
            for y in 0..size.height {
                for x in 0..size.width {
                    let hash = (x * 7919 + y * 104_729 + k * 31) % 1000;
                    let mut d = depth.get(x, y)[0] + (hash as f32 / 1000.0 - 0.5) * 6e-4;
                    if k == 0 && (100..140).contains(&y) && (140..180).contains(&x) {
                        d += 0.03;
                    }
                    depth.set(x, y, [d]);
                }
            }
            maps.insert(name.clone(), DepthMap::new(depth, confidence, range).expect("sizes"));
        }
        let fuse = |close_views: usize, close_tolerance: f64| {
            let mut opts = StageOptions::resolve(&crate::config::Config::default());
            opts.consistency.min_consistent_views = 2;
            opts.consistency.count_all = false;
            opts.consistency.close_views = close_views;
            opts.consistency.close_tolerance = close_tolerance;
            opts.voxel_size = 0.002;
            opts.normals = NormalOptions::for_voxel_size(0.002);
            opts.outliers = None;
            let mut none = |_: &str, _: &FilteredDepth| Ok(());
            fuse_maps(&views, &ring, &maps, &opts, &mut FrameReport::default(), &mut none)
                .expect("fused")
                .cloud
        };
        let far = |cloud: &PointCloud| {
            cloud.points().iter().filter(|p| scene.surface.distance(p) > 0.002).count()
        };
        let old = fuse(0, 0.001);
        let new = fuse(1, 0.001);
        let (n_old, n_new) = (old.len(), new.len());
        assert!(n_new as f64 > 1.3 * n_old as f64, "{n_old} → {n_new} points");
        assert_eq!((far(&old), far(&new)), (0, 0), "every point within 2 mm of the surface");
        // Off, the tighter rule changes nothing: whatever its tolerance, the same bytes.
        let same = fuse(0, 0.5);
        assert_eq!(old.points(), same.points());
        assert_eq!(old.normals(), same.normals());
    }

    #[test]
    fn one_normal_and_outlier_path_flags_a_far_point() {
        let mut points: Vec<Point3<f64>> = (0..400)
            .map(|i| Point3::new((i % 20) as f64 * 0.01, (i / 20) as f64 * 0.01, 0.5))
            .collect();
        points.push(Point3::new(0.1, 0.1, 0.2));
        let normals = NormalOptions {
            radius: 0.05,
            max_neighbors: 30,
            orientation: NormalOrientation::TowardNearestCamera(vec![Point3::new(0.1, 0.1, 0.0)]),
        };
        let outliers = OutlierOptions { nb_neighbors: 20, std_ratio: 2.0 };
        let cloud = PointCloud::new(points.clone());
        let (with, inliers) =
            normals_and_outliers(cloud.clone(), &normals, Some(&outliers)).expect("runs");
        let inliers = inliers.expect("outlier removal ran");
        assert_eq!(inliers.iter().filter(|k| !**k).count(), 1);
        assert!(!inliers[400]);
        assert!(with.normals().expect("normals")[..400].iter().all(|n| n.z < -0.999));
        let mut report = FrameReport::default();
        let kept = apply_inliers(with.clone(), Some(&inliers), &mut report);
        assert_eq!((kept.len(), report.n_points_after_outliers), (400, 400));
        // Off, or too few points for the neighbourhood: normals only, the same normals.
        let (only, none) = normals_and_outliers(cloud, &normals, None).expect("runs");
        assert!(none.is_none());
        assert_eq!(only.normals(), with.normals());
        let small = PointCloud::new(points[..10].to_vec());
        assert!(normals_and_outliers(small, &normals, Some(&outliers)).expect("runs").1.is_none());
        let empty = normals_and_outliers(PointCloud::default(), &normals, Some(&outliers));
        assert!(empty.expect("runs").0.is_empty());
    }
}
