//! Writing the pictures where the reference puts them, and redrawing them from saved outputs
//! (`aquamvs viz OUTPUT`) without recomputing anything.
//!
//! ```text
//! OUTPUT/frame_NNNNNN/viz/depth_CAM.png, confidence_CAM.png     stage `depth`
//! OUTPUT/frame_NNNNNN/viz/sparse_CAM.png, matches_REF_SRC.png   stage `features`
//! OUTPUT/frame_NNNNNN/viz/fused_{top,oblique,side}.png          stage `scene`
//! OUTPUT/frame_NNNNNN/viz/mesh_{top,oblique,side}.png           stage `scene`
//! OUTPUT/frame_NNNNNN/viz/rig.png                               stage `rig`
//! OUTPUT/summary/timeseries_gallery.png                         stage `summary`
//! ```
//!
//! Every file goes through [`write_png_rgb`] (atomic: a reader never sees half a picture).
//! Pictures of one call are drawn and encoded in parallel; the files do not depend on the
//! thread count.

use std::fmt;
use std::path::{Path, PathBuf};

use nalgebra::Point2;
use rayon::prelude::*;

use super::colormap::ValueRange;
use super::features::{keypoints_image, matches_image};
use super::gallery::{HeightGrid, timeseries_gallery};
use super::maps::depth_map_images;
use super::rig::rig_image;
use super::scene::{cloud_views, mesh_views};
use crate::calib::{Rig, load_rig};
use crate::cloud::PointCloud;
use crate::config::VizStage;
use crate::dense::DepthMap;
use crate::imgproc::RgbImage;
use crate::io::images::{ImageIoError, write_png_rgb};
use crate::io::ply::{read_mesh, read_point_cloud};
use crate::layout::{FrameLayout, OutputLayout, sub};
use crate::mesh::TriangleMesh;
use crate::pipeline::{FrameProducts, PictureError, Pictures};

/// Errors that stop the pictures from being written at all. (A single unreadable input in
/// `redraw` is not one of them: it is reported as skipped and the rest is drawn.)
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// A picture could not be encoded or written (the error names the file).
    #[error(transparent)]
    Write(#[from] ImageIoError),
    /// A picture's path cannot be built (a camera name that cannot be a file name).
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    /// The output folder does not exist.
    #[error("output folder {} does not exist or is not a folder", path.display())]
    NoOutput {
        /// The folder given.
        path: PathBuf,
    },
    /// The output folder could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The requested frame has no folder.
    #[error("frame {frame} has no outputs: {} does not exist", path.display())]
    NoFrame {
        /// The frame asked for.
        frame: usize,
        /// The folder looked for.
        path: PathBuf,
    },
}

/// True when `stage` is among `stages`; an empty list means every stage (the config's
/// `runtime.viz_stages` convention).
pub(crate) fn stage_enabled(stages: &[VizStage], stage: VizStage) -> bool {
    stage.enabled_in(stages)
}

/// The pictures of a run ([`Pictures`]): what `reconstruct` draws when the CLI runs it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Painter;

impl Pictures for Painter {
    fn draw_frame(
        &self,
        frame: &FrameLayout,
        stages: &[VizStage],
        products: &FrameProducts<'_>,
    ) -> Result<Vec<PathBuf>, PictureError> {
        let images = products.images;
        let keypoints: Vec<KeypointsViz<'_>> = products
            .matches
            .map(|m| {
                m.keypoints
                    .iter()
                    .filter_map(|(name, kp)| {
                        let image = images.get(name.as_str())?;
                        Some(KeypointsViz { camera: name, image, keypoints: kp.positions() })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let pixels: Vec<(&crate::features::PairMatches, Vec<_>)> = products
            .matches
            .map(|m| {
                m.pairs
                    .iter()
                    .map(|p| (p, p.matches.iter().map(|x| (x.a, x.b)).collect()))
                    .collect()
            })
            .unwrap_or_default();
        let pairs: Vec<PairViz<'_>> = pixels
            .iter()
            .filter_map(|(p, px)| {
                let a = images.get(p.pair.a.as_str())?;
                let b = images.get(p.pair.b.as_str())?;
                Some(PairViz { names: (&p.pair.a, &p.pair.b), images: (a, b), matches: px })
            })
            .collect();
        let inputs = FrameViz {
            depth_maps: products.depth_maps,
            // Each map on its own scale: ray depths of oblique cameras are longer.
            depth_range: None,
            keypoints: &keypoints,
            pairs: &pairs,
            cloud: (!products.cloud.is_empty()).then_some(products.cloud),
            mesh: products.mesh,
            rig: Some(products.rig),
        };
        Ok(write_frame_viz(frame, stages, &inputs)?)
    }

    fn draw_run(&self, output_dir: &Path) -> Result<Vec<PathBuf>, PictureError> {
        Ok(redraw(output_dir, None, &[VizStage::Summary])?.written)
    }
}

/// Writes `viz/depth_CAM.png` and `viz/confidence_CAM.png` of one depth map. `range`
/// fixes the depth colours (pass one range to all cameras of a frame to compare them);
/// `None` uses each map's own 1st-99th percentile.
pub(crate) fn write_depth_viz(
    frame: &FrameLayout,
    camera: &str,
    map: &DepthMap,
    range: Option<ValueRange>,
) -> Result<Vec<PathBuf>, VizError> {
    let (depth, confidence) = depth_map_images(map, camera, range);
    write_all(vec![
        (frame.viz_camera("depth", camera)?, depth),
        (frame.viz_camera("confidence", camera)?, confidence),
    ])
}

/// Writes `sparse_CAM.png`: the keypoints over the undistorted image.
pub(crate) fn write_keypoints_viz(
    frame: &FrameLayout,
    camera: &str,
    image: &RgbImage,
    keypoints: &[Point2<f64>],
) -> Result<PathBuf, VizError> {
    let path = frame.viz_camera("sparse", camera)?;
    write_png_rgb(&path, &keypoints_image(image, keypoints, camera))?;
    Ok(path)
}

/// Writes `matches_REF_SRC.png`: the two undistorted images side by side with the matches.
pub(crate) fn write_matches_viz(
    frame: &FrameLayout,
    names: (&str, &str),
    images: (&RgbImage, &RgbImage),
    matches: &[(Point2<f64>, Point2<f64>)],
) -> Result<PathBuf, VizError> {
    let path = frame.viz_pair("matches", names.0, names.1)?;
    write_png_rgb(&path, &matches_image(images.0, images.1, matches, names))?;
    Ok(path)
}

/// Writes `fused_{top,oblique,side}.png` for the cloud and `mesh_{top,oblique,side}.png` for
/// the mesh (whichever is given).
pub(crate) fn write_scene_viz(
    frame: &FrameLayout,
    cloud: Option<&PointCloud>,
    mesh: Option<&TriangleMesh>,
) -> Result<Vec<PathBuf>, VizError> {
    let mut pictures = Vec::new();
    if let Some(cloud) = cloud {
        let _span = tracing::debug_span!("viz_cloud", points = cloud.len()).entered();
        for (name, img) in cloud_views(cloud) {
            pictures.push((frame.viz_file(&format!("fused_{name}.png")), img));
        }
    }
    if let Some(mesh) = mesh {
        let _span = tracing::debug_span!("viz_mesh", faces = mesh.n_faces()).entered();
        for (name, img) in mesh_views(mesh) {
            pictures.push((frame.viz_file(&format!("mesh_{name}.png")), img));
        }
    }
    write_all(pictures)
}

/// Writes `rig.png`.
pub(crate) fn write_rig_viz(
    frame: &FrameLayout,
    rig: &Rig,
    cloud: Option<&PointCloud>,
) -> Result<PathBuf, VizError> {
    let path = frame.viz_file("rig.png");
    write_png_rgb(&path, &rig_image(rig, cloud))?;
    Ok(path)
}

/// Writes `OUTPUT/summary/timeseries_gallery.png` from per-frame height grids.
pub fn write_timeseries_gallery(
    output: &OutputLayout,
    frames: &[(usize, HeightGrid)],
) -> Result<PathBuf, VizError> {
    let path = output.summary_file("timeseries_gallery.png");
    write_png_rgb(&path, &timeseries_gallery(frames))?;
    Ok(path)
}

/// Matches of one camera pair, for [`FrameViz`].
#[derive(Clone, Copy, Debug)]
pub struct PairViz<'a> {
    /// Reference and source camera names.
    pub names: (&'a str, &'a str),
    /// Their undistorted images.
    pub images: (&'a RgbImage, &'a RgbImage),
    /// Matched pixels (reference, source), undistorted.
    pub matches: &'a [(Point2<f64>, Point2<f64>)],
}

/// Keypoints of one camera, for [`FrameViz`].
#[derive(Clone, Copy, Debug)]
pub struct KeypointsViz<'a> {
    /// Camera name.
    pub camera: &'a str,
    /// The undistorted image.
    pub image: &'a RgbImage,
    /// Keypoint pixels, undistorted.
    pub keypoints: &'a [Point2<f64>],
}

/// Everything one frame can be drawn from; absent parts are simply not drawn.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameViz<'a> {
    /// Depth maps by camera name.
    pub depth_maps: &'a [(String, DepthMap)],
    /// One colour range for every depth map (`None`: each map's own).
    pub depth_range: Option<ValueRange>,
    /// Keypoints per camera.
    pub keypoints: &'a [KeypointsViz<'a>],
    /// Matches per pair.
    pub pairs: &'a [PairViz<'a>],
    /// The fused (or sparse) cloud.
    pub cloud: Option<&'a PointCloud>,
    /// The mesh.
    pub mesh: Option<&'a TriangleMesh>,
    /// The rig.
    pub rig: Option<&'a Rig>,
}

/// Draws every picture of one frame that `stages` asks for and `inputs` allows into
/// `frame_dir/viz/`, in parallel; returns the files written, in a fixed order.
pub fn write_frame_viz(
    frame: &FrameLayout,
    stages: &[VizStage],
    inputs: &FrameViz<'_>,
) -> Result<Vec<PathBuf>, VizError> {
    let dir = frame;
    let mut written = Vec::new();
    if stage_enabled(stages, VizStage::Depth) && !inputs.depth_maps.is_empty() {
        let _span = tracing::info_span!("viz_depth", maps = inputs.depth_maps.len()).entered();
        let per_camera: Vec<Result<Vec<PathBuf>, VizError>> = inputs
            .depth_maps
            .par_iter()
            .map(|(cam, map)| write_depth_viz(dir, cam, map, inputs.depth_range))
            .collect();
        for paths in per_camera {
            written.extend(paths?);
        }
    }
    if stage_enabled(stages, VizStage::Features) {
        let _span = tracing::info_span!("viz_features").entered();
        let kp: Vec<Result<PathBuf, VizError>> = inputs
            .keypoints
            .par_iter()
            .map(|k| write_keypoints_viz(dir, k.camera, k.image, k.keypoints))
            .collect();
        let pairs: Vec<Result<PathBuf, VizError>> = inputs
            .pairs
            .par_iter()
            .map(|p| write_matches_viz(dir, p.names, p.images, p.matches))
            .collect();
        for path in kp.into_iter().chain(pairs) {
            written.push(path?);
        }
    }
    if stage_enabled(stages, VizStage::Scene) && (inputs.cloud.is_some() || inputs.mesh.is_some()) {
        let _span = tracing::info_span!("viz_scene").entered();
        written.extend(write_scene_viz(dir, inputs.cloud, inputs.mesh)?);
    }
    if stage_enabled(stages, VizStage::Rig)
        && let Some(rig) = inputs.rig
    {
        let _span = tracing::info_span!("viz_rig").entered();
        written.push(write_rig_viz(dir, rig, inputs.cloud)?);
    }
    Ok(written)
}

/// Encodes and writes pictures in parallel, returning the paths in the given order.
fn write_all(pictures: Vec<(PathBuf, RgbImage)>) -> Result<Vec<PathBuf>, VizError> {
    let results: Vec<Result<PathBuf, ImageIoError>> = pictures
        .into_par_iter()
        .map(|(path, img)| write_png_rgb(&path, &img).map(|()| path))
        .collect();
    results.into_iter().map(|r| r.map_err(VizError::from)).collect()
}

/// Something [`redraw`] could not draw, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// The frame, or `None` for pictures of the whole run (the gallery).
    pub(crate) frame: Option<usize>,
    /// The picture group.
    pub(crate) stage: VizStage,
    /// Why (a missing input, or the error that reading it gave).
    pub(crate) reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frame {
            Some(frame) => write!(f, "frame {frame}, {}: {}", self.stage, self.reason),
            None => write!(f, "{}: {}", self.stage, self.reason),
        }
    }
}

/// What [`redraw`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RedrawReport {
    /// Frames looked at.
    pub(crate) frames: Vec<usize>,
    /// Pictures written.
    pub(crate) written: Vec<PathBuf>,
    /// Pictures not drawn, with the reason.
    pub(crate) skipped: Vec<Skipped>,
}

/// Redraws the pictures of a finished (or partial) run from its saved outputs: depth maps
/// (`depth_maps/CAM.npz`), the cloud (`point_cloud/fused.ply`, else `sparse.ply`), the mesh
/// (`mesh/surface.ply`) and the rig (the calibration named by `OUTPUT/config.yaml`).
///
/// `frame` limits the work to one frame; `stages` selects picture groups (empty = all). What
/// cannot be drawn (an input that is missing or unreadable) is listed in
/// [`RedrawReport::skipped`] and the rest is still drawn. Fails only when the output folder or
/// the requested frame does not exist, or a picture cannot be written.
pub(crate) fn redraw(
    output_dir: &Path,
    frame: Option<usize>,
    stages: &[VizStage],
) -> Result<RedrawReport, VizError> {
    if !output_dir.is_dir() {
        return Err(VizError::NoOutput { path: output_dir.to_path_buf() });
    }
    let layout = OutputLayout::new(output_dir);
    let frames = match frame {
        Some(f) => {
            let dir = layout.frame(f);
            if !dir.dir().is_dir() {
                return Err(VizError::NoFrame { frame: f, path: dir.dir().to_path_buf() });
            }
            vec![f]
        }
        None => list_frames(output_dir)?,
    };
    let mut report = RedrawReport { frames: frames.clone(), ..RedrawReport::default() };
    let want = |s| stage_enabled(stages, s);
    let rig = if want(VizStage::Rig) {
        match load_run_rig(output_dir) {
            Ok(rig) => Some(rig),
            Err(e) => {
                let reason = e.to_string();
                report.skipped.push(Skipped { frame: None, stage: VizStage::Rig, reason });
                None
            }
        }
    } else {
        None
    };
    for &f in &frames {
        let dir = layout.frame(f);
        let skip = |report: &mut RedrawReport, stage, reason: String| {
            report.skipped.push(Skipped { frame: Some(f), stage, reason });
        };
        let mut depth_maps = Vec::new();
        if want(VizStage::Depth) {
            match read_depth_maps(&dir.sub_dir(sub::DEPTH_MAPS)) {
                Ok((maps, failures)) => {
                    if maps.is_empty() && failures.is_empty() {
                        skip(&mut report, VizStage::Depth, "no depth_maps/*.npz".into());
                    }
                    for e in failures {
                        skip(&mut report, VizStage::Depth, e.to_string());
                    }
                    depth_maps = maps;
                }
                Err(e) => skip(&mut report, VizStage::Depth, e.to_string()),
            }
        }
        if want(VizStage::Features) {
            skip(
                &mut report,
                VizStage::Features,
                "keypoints and matches are drawn during the run only (they are not saved in a \
                 form this command reads)"
                    .into(),
            );
        }
        let need_cloud = want(VizStage::Scene) || (want(VizStage::Rig) && rig.is_some());
        let cloud = if need_cloud {
            match read_cloud(&dir) {
                Ok(cloud) => cloud,
                Err(e) => {
                    skip(&mut report, VizStage::Scene, e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let mesh = if want(VizStage::Scene) {
            let path = dir.mesh().path;
            if path.is_file() {
                match read_mesh(&path) {
                    Ok(mesh) => Some(mesh),
                    Err(e) => {
                        skip(&mut report, VizStage::Scene, e.to_string());
                        None
                    }
                }
            } else {
                skip(&mut report, VizStage::Scene, "no mesh/surface.ply".into());
                None
            }
        } else {
            None
        };
        if want(VizStage::Scene) && cloud.is_none() {
            skip(&mut report, VizStage::Scene, "no point_cloud/fused.ply or sparse.ply".into());
        }
        let inputs = FrameViz {
            depth_maps: &depth_maps,
            cloud: cloud.as_ref(),
            mesh: mesh.as_ref(),
            rig: rig.as_ref(),
            ..FrameViz::default()
        };
        let stages_here: Vec<VizStage> =
            VizStage::ALL.iter().copied().filter(|&s| want(s) && s != VizStage::Summary).collect();
        report.written.extend(write_frame_viz(&dir, &stages_here, &inputs)?);
    }
    if want(VizStage::Summary) {
        if frame.is_some() {
            report.skipped.push(Skipped {
                frame: None,
                stage: VizStage::Summary,
                reason: "the gallery covers every frame; run without --frame to draw it".into(),
            });
        } else {
            let mut grids = Vec::new();
            let mut cell = None;
            for &f in &frames {
                // One cloud in memory at a time: grid it and let it go.
                if let Ok(Some(cloud)) = read_cloud(&layout.frame(f)) {
                    cell = cell.or_else(|| HeightGrid::suggested_cell(cloud.points()));
                    if let Some(grid) =
                        cell.and_then(|c| HeightGrid::from_points(cloud.points(), c))
                    {
                        grids.push((f, grid));
                    }
                }
            }
            if grids.is_empty() {
                report.skipped.push(Skipped {
                    frame: None,
                    stage: VizStage::Summary,
                    reason: "no frame has a readable point cloud".into(),
                });
            } else {
                let _span = tracing::info_span!("viz_summary", frames = grids.len()).entered();
                report.written.push(write_timeseries_gallery(&layout, &grids)?);
            }
        }
    }
    Ok(report)
}

/// Frame numbers of the `frame_NNNNNN` folders, sorted.
fn list_frames(output_dir: &Path) -> Result<Vec<usize>, VizError> {
    let list_err = |source| VizError::List { path: output_dir.to_path_buf(), source };
    let mut frames = Vec::new();
    for entry in std::fs::read_dir(output_dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        if let Some(f) = name.to_str().and_then(OutputLayout::parse_frame_dir)
            && entry.path().is_dir()
        {
            frames.push(f);
        }
    }
    frames.sort_unstable();
    Ok(frames)
}

/// Depth maps by camera name.
type NamedDepthMaps = Vec<(String, DepthMap)>;

/// An input of `redraw` that cannot be read: the picture that needs it is skipped, and the
/// report says why.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// The frame has no `depth_maps` folder.
    #[error("no depth_maps folder")]
    NoDepthMaps,
    /// A folder could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A depth map that cannot be read (the error names the file).
    #[error(transparent)]
    DepthMap(#[from] crate::dense::DenseError),
    /// A cloud that cannot be read (the error names the file).
    #[error(transparent)]
    Cloud(#[from] crate::io::ply::PlyError),
    /// The run's config copy is missing.
    #[error("no {} to find the calibration in", path.display())]
    NoConfig {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The run's config copy cannot be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The run's config copy cannot be read as text.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The calibration cannot be read.
    #[error(transparent)]
    Calibration(#[from] crate::calib::CalibError),
    /// The calibration the config names is nowhere it was looked for.
    #[error(
        "the calibration named in {} is not at {}",
        config.display(),
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    )]
    NoCalibration {
        /// The run's config copy.
        config: PathBuf,
        /// The places tried.
        tried: Vec<PathBuf>,
    },
}

/// The depth maps of a `depth_maps` folder by camera (file stem), sorted by name, and the
/// reasons for the files that could not be read.
fn read_depth_maps(dir: &Path) -> Result<(NamedDepthMaps, Vec<InputError>), InputError> {
    if !dir.is_dir() {
        return Err(InputError::NoDepthMaps);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|source| InputError::List { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npz"))
        .collect();
    paths.sort();
    let read: Vec<Result<(String, DepthMap), InputError>> = paths
        .par_iter()
        .map(|p| {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Ok((name, DepthMap::read_npz(p)?))
        })
        .collect();
    let mut maps = Vec::new();
    let mut failures = Vec::new();
    for r in read {
        match r {
            Ok(m) => maps.push(m),
            Err(e) => failures.push(e),
        }
    }
    Ok((maps, failures))
}

/// The frame's cloud: `point_cloud/fused.ply`, else `point_cloud/sparse.ply`, else `None`.
fn read_cloud(frame: &FrameLayout) -> Result<Option<PointCloud>, InputError> {
    for file in [frame.fused_cloud(), frame.sparse_cloud()] {
        let path = file.path;
        if path.is_file() {
            return Ok(Some(read_point_cloud(&path)?));
        }
    }
    Ok(None)
}

/// The rig of a run: the calibration that `OUTPUT/config.yaml` names.
///
/// The run writes the config it used, whose relative paths were relative to wherever the
/// original config was; so the calibration path is tried relative to the output folder (what
/// [`crate::config::load`] resolves), as written (relative to the working directory) and
/// relative to the output folder's parent (the usual place of the original config).
fn load_run_rig(output_dir: &Path) -> Result<Rig, InputError> {
    let config_path = OutputLayout::new(output_dir).used_config();
    if !config_path.is_file() {
        return Err(InputError::NoConfig { path: config_path });
    }
    let loaded = crate::config::load(&config_path)?;
    let mut candidates = vec![loaded.config.calibration_path.clone()];
    let text = std::fs::read_to_string(&config_path)
        .map_err(|source| InputError::Read { path: config_path.clone(), source })?;
    if let Ok(raw) = crate::config::parse_str(&text, &config_path, Path::new("")) {
        let written = raw.config.calibration_path;
        if written.is_relative()
            && let Some(parent) = output_dir.parent()
        {
            candidates.push(parent.join(&written));
        }
        candidates.push(written);
    }
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(load_rig(path)?),
        None => Err(InputError::NoCalibration { config: config_path, tried: candidates }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::save_rig;
    use crate::config::Config;
    use crate::imgproc::ImageSize;
    use crate::io::atomic::write_bytes_atomic;
    use crate::io::images::read_rgb;
    use crate::io::ply::{write_mesh, write_point_cloud};
    use crate::viz::demo::true_depth_map;
    use crate::viz::draw::tests::ink_fraction;
    use crate::viz::scene::tests::{tiny_cloud, tiny_mesh, tiny_spec};

    /// An output folder as a run leaves it: config, frame 0 with depth maps, cloud and mesh,
    /// frame 1 with a cloud only, frame 2 with an unreadable depth map.
    fn output_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let mut spec = tiny_spec();
        spec.rig.size = ImageSize::new(96, 72);
        spec.rig.focal_px = 90.0;
        spec.rig.centre_focal_px = 90.0;
        let rig = spec.rig.build().unwrap();
        save_rig(&out.join("calibration.json"), &rig).unwrap();
        let config = Config {
            calibration_path: out.join("calibration.json"),
            output_dir: out.to_path_buf(),
            camera_input_map: [("cam00".to_string(), out.join("images/cam00"))].into(),
            ..Config::default()
        };
        write_bytes_atomic(&out.join("config.yaml"), config.to_yaml().as_bytes()).unwrap();
        let layout = OutputLayout::new(out);
        let f0 = layout.frame(0);
        for cam in ["cam00", "cam01"] {
            let map = true_depth_map(&spec, 0, cam).unwrap();
            map.write_npz(&f0.depth_map(cam).unwrap().path).unwrap();
        }
        write_point_cloud(&f0.fused_cloud().path, &tiny_cloud(0)).unwrap();
        write_mesh(&f0.mesh().path, &tiny_mesh()).unwrap();
        write_point_cloud(&layout.frame(1).fused_cloud().path, &tiny_cloud(1)).unwrap();
        let bad = layout.frame(2).depth_map("cam00").unwrap().path;
        write_bytes_atomic(&bad, b"not an npz").unwrap();
        std::fs::create_dir_all(out.join("frame_junk")).unwrap();
        dir
    }

    fn names(paths: &[PathBuf], root: &Path) -> Vec<String> {
        paths.iter().map(|p| p.strip_prefix(root).unwrap().display().to_string()).collect()
    }

    #[test]
    fn redraw_draws_what_the_outputs_allow_and_says_what_it_skipped() {
        let dir = output_folder();
        let out = dir.path();
        let report = redraw(out, None, &[]).unwrap();
        assert_eq!(report.frames, [0, 1, 2]);
        let written = names(&report.written, out);
        for expected in [
            "frame_000000/viz/depth_cam00.png",
            "frame_000000/viz/confidence_cam00.png",
            "frame_000000/viz/depth_cam01.png",
            "frame_000000/viz/confidence_cam01.png",
            "frame_000000/viz/fused_top.png",
            "frame_000000/viz/fused_oblique.png",
            "frame_000000/viz/fused_side.png",
            "frame_000000/viz/mesh_top.png",
            "frame_000000/viz/mesh_oblique.png",
            "frame_000000/viz/mesh_side.png",
            "frame_000000/viz/rig.png",
            "frame_000001/viz/fused_top.png",
            "frame_000001/viz/rig.png",
            "frame_000002/viz/rig.png",
            "summary/timeseries_gallery.png",
        ] {
            assert!(written.iter().any(|w| w == expected), "{expected} not in {written:?}");
        }
        assert_eq!(written.len(), 17, "{written:?}");
        for path in &report.written {
            let img = read_rgb(path).unwrap();
            assert!(ink_fraction(&img) > 0.01, "{} is blank", path.display());
        }
        let depth = read_rgb(&out.join("frame_000000/viz/depth_cam00.png")).unwrap();
        assert!(depth.width() > 96 && depth.height() > 72);
        let render = read_rgb(&out.join("frame_000000/viz/mesh_oblique.png")).unwrap();
        assert_eq!(render.size(), crate::viz::raster::RENDER_SIZE);
        // What could not be drawn is named: features everywhere, frame 1's depth maps and
        // mesh, frame 2's unreadable depth map.
        let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
        let has = |frame: usize, stage: VizStage, what: &str| {
            report
                .skipped
                .iter()
                .any(|s| s.frame == Some(frame) && s.stage == stage && s.reason.contains(what))
        };
        assert!(has(0, VizStage::Features, "not saved"), "{skipped:?}");
        assert!(has(1, VizStage::Depth, "no depth_maps"), "{skipped:?}");
        assert!(has(1, VizStage::Scene, "surface.ply"), "{skipped:?}");
        assert!(has(2, VizStage::Depth, "cam00.npz"), "{skipped:?}");
        // Same outputs, same bytes.
        let before = std::fs::read(out.join("frame_000000/viz/fused_oblique.png")).unwrap();
        redraw(out, Some(0), &[VizStage::Scene]).unwrap();
        let after = std::fs::read(out.join("frame_000000/viz/fused_oblique.png")).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn redraw_filters_frames_and_stages() {
        let dir = output_folder();
        let out = dir.path();
        let report = redraw(out, Some(0), &[VizStage::Depth, VizStage::Summary]).unwrap();
        assert_eq!(names(&report.written, out).len(), 4);
        assert!(report.written.iter().all(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("depth_cam") || name.starts_with("confidence_cam")
        }));
        assert!(report.skipped.iter().any(|s| s.stage == VizStage::Summary));
        assert!(!out.join("summary").exists());
        assert!(matches!(redraw(out, Some(9), &[]), Err(VizError::NoFrame { frame: 9, .. })));
        let missing = out.join("nope");
        assert!(matches!(redraw(&missing, None, &[]), Err(VizError::NoOutput { .. })));
        // Without a config there is no rig, and the reason says so.
        std::fs::remove_file(out.join("config.yaml")).unwrap();
        let report = redraw(out, Some(1), &[VizStage::Rig]).unwrap();
        assert!(report.written.is_empty());
        assert!(
            report
                .skipped
                .iter()
                .any(|s| s.stage == VizStage::Rig && s.reason.contains("config.yaml"))
        );
    }

    #[test]
    fn calibration_is_found_next_to_the_output_folder() {
        // The run's config.yaml repeats the original config's relative path, which was
        // relative to the original config's folder: the output folder's parent.
        let dir = tempfile::tempdir().unwrap();
        let rig = tiny_spec().rig.build().unwrap();
        save_rig(&dir.path().join("calibration.json"), &rig).unwrap();
        let out = dir.path().join("output");
        let yaml = "calibration_path: calibration.json\noutput_dir: output\n\
                    camera_input_map:\n  cam00: images/cam00\n";
        write_bytes_atomic(&out.join("config.yaml"), yaml.as_bytes()).unwrap();
        assert_eq!(load_run_rig(&out).unwrap(), rig);
        std::fs::remove_file(dir.path().join("calibration.json")).unwrap();
        let err = load_run_rig(&out).unwrap_err().to_string();
        assert!(err.contains("is not at") && err.contains("calibration.json"), "{err}");
    }

    #[test]
    fn stage_filter() {
        assert!(stage_enabled(&[], VizStage::Rig));
        assert!(stage_enabled(&[VizStage::Rig], VizStage::Rig));
        assert!(!stage_enabled(&[VizStage::Depth], VizStage::Rig));
    }
}
