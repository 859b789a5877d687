//! A complete synthetic dataset on disk: what `aquamvs synth` writes and `aquamvs evaluate`
//! and the demo read back.
//!
//! ```text
//! DIR/calibration.json                        AquaCal calibration of the rig
//! DIR/images/CAM/frame_NNNNNN.png             distorted renders, one folder per camera
//!                                             (`.jpg` with `--jpeg-quality`)
//! DIR/config.yaml                             ready for `aquamvs reconstruct` (output_dir: output)
//! DIR/ground_truth/scene.json                 surface models per frame (evaluate anywhere)
//! DIR/ground_truth/calibration.json           the true calibration, only when the written one
//!                                             is perturbed (`--calibration-error`)
//! DIR/ground_truth/frame_NNNNNN/surface.ply   the true surface as a mesh
//! DIR/ground_truth/frame_NNNNNN/depth_maps/CAM.npz   true ray depths (undistorted geometry)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::Point3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calib::{Rig, RigError, load_rig, save_rig};
use crate::config::Config;
use crate::geom::refraction::RefractiveCamera;
use crate::io::atomic::write_bytes_atomic;
use crate::io::images::write_png_rgb;
use crate::io::npz::{ArrayRef, write_npz};
use crate::io::ply::write_mesh;
use crate::mesh::TriangleMesh;

use super::degrade::{Degradations, encode_jpeg, particles_at, perturb_rig};
use super::render::{
    RenderOptions, ground_truth_depth, render_frame, undistorted_camera, visible_samples,
};
use super::rig::{RigParams, RigPreset};
use super::surface::{Fish, SurfaceKind, SurfaceModel, SurfaceSamples};
use super::texture::Texture;

/// File name, in the `ground_truth` folder, of the true calibration when the one written for
/// the pipeline is perturbed.
pub const TRUE_CALIBRATION: &str = "calibration.json";

/// Format tag of `scene.json`.
pub const SCENE_FORMAT: &str = "aquamvs-synthetic-scene";

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneSpec {
    /// The bottom.
    pub surface: SurfaceKind,
    /// The rig (start from a preset and override).
    pub rig: RigParams,
    /// Which rig preset `rig` started from (recorded in `scene.json`).
    pub rig_preset: RigPreset,
    /// Chooses the surface layout and the texture.
    pub seed: u64,
    /// Number of frames (the surface drifts slightly from frame to frame).
    pub frames: usize,
    /// Rendering options.
    pub render: RenderOptions,
}

impl SceneSpec {
    /// A scene of `surface` seen by the `preset` rig, one frame, default rendering.
    pub fn new(surface: SurfaceKind, preset: RigPreset, seed: u64) -> Self {
        Self {
            surface,
            rig: RigParams::preset(preset),
            rig_preset: preset,
            seed,
            frames: 1,
            render: RenderOptions { seed, ..RenderOptions::default() },
        }
    }

    /// The texture painted on the bottom.
    pub fn texture(&self) -> Texture {
        Texture::Sand { seed: self.seed }
    }

    /// The surface of frame `frame`.
    pub fn surface_at(&self, frame: usize) -> SurfaceModel {
        if self.surface == SurfaceKind::Bower {
            // The crater grows from nothing in the first frame to full depth in the last.
            let progress =
                if self.frames > 1 { frame as f64 / (self.frames - 1) as f64 } else { 1.0 };
            return SurfaceModel::bower(
                self.rig.bottom_z(),
                self.rig.extent(),
                self.seed,
                progress,
            );
        }
        SurfaceModel::generate(
            self.surface,
            self.rig.bottom_z(),
            self.rig.extent(),
            self.seed,
            frame,
        )
    }
}

impl SceneSpec {
    /// The fish of frame `frame`: `bower` scenes have one in the odd frames, 4-6 cm above the
    /// bed and crossing the view (over the crater in frame 1); other scenes have none.
    pub fn fish_at(&self, frame: usize) -> Option<Fish> {
        if self.surface != SurfaceKind::Bower || frame.is_multiple_of(2) {
            return None;
        }
        let extent = self.rig.extent();
        let (center, radius, _) = self.surface_at(frame).bower_crater()?;
        // Along a line across the view, a little off the crater's centre.
        let t = (0.5 + 0.29 * ((frame - 1) / 2) as f64).fract();
        let x = -0.6 * extent + 1.2 * extent * t;
        let y = center[1] + 0.3 * radius;
        Some(Fish {
            center: [x + center[0], y, self.rig.bottom_z() - 0.06],
            semi_axes: [0.06, 0.018, 0.02],
            heading_deg: 15.0,
        })
    }
}

/// The ground-truth description (`scene.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneFile {
    /// Always [`SCENE_FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Surface kind (`flat`, `undulating`, `sandbed`).
    pub surface_kind: String,
    /// Rig preset the rig started from.
    pub rig_preset: String,
    /// Seed of the layout and texture.
    pub seed: u64,
    /// Calibration file, relative to the `ground_truth` folder.
    pub calibration: PathBuf,
    /// Half-width (m) of the area where surface features were placed.
    pub extent: f64,
    /// Half-width (m) of the square that contains everything the cameras see.
    pub view_half_width: f64,
    /// The surface of every frame, in frame order.
    pub frames: Vec<SurfaceModel>,
    /// The fish of every frame, in frame order (`null` where there is none; empty for scenes
    /// without fish). It occludes the bed in the images; it is not part of the surface.
    #[serde(default)]
    pub fish: Vec<Option<Fish>>,
    /// The degradations the images were rendered with (absent for clean renders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degradations: Option<Degradations>,
}

/// Errors while writing or reading a synthetic scene.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The rig parameters do not make a valid rig.
    #[error("invalid synthetic rig: {0}")]
    Rig(#[from] RigError),
    /// A degradation is out of range (names the flag).
    #[error(transparent)]
    Degradation(#[from] super::degrade::DegradationError),
    /// A file could not be written or read.
    #[error("{0}")]
    Io(String),
    /// `scene.json` is not a scene description.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The requested frame is not in the scene.
    #[error("frame {frame} is not in the ground truth ({n_frames} frame(s))")]
    NoSuchFrame {
        /// Requested frame.
        frame: usize,
        /// Frames available.
        n_frames: usize,
    },
}

fn io_err(e: impl std::fmt::Display) -> SceneError {
    SceneError::Io(e.to_string())
}

/// What `write_scene` produced.
#[derive(Clone, Debug)]
pub struct SceneSummary {
    /// The rig.
    pub rig: Rig,
    /// Images written.
    pub n_images: usize,
    /// The config file.
    pub config_path: PathBuf,
    /// RMS reprojection error (px) of the written calibration per camera, in rig order, when
    /// it was perturbed (`--calibration-error`); empty otherwise.
    pub calibration_error_px: Vec<f64>,
}

/// Progress callback: (what is being done, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, usize, usize) + Sync);

/// Writes the dataset of `spec` into `dir` (created if needed; existing files are replaced
/// atomically, other files are left alone).
pub fn write_scene(
    spec: &SceneSpec,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<SceneSummary, SceneError> {
    let rig = spec.rig.build()?;
    let degrade = &spec.render.degrade;
    degrade.validate()?;
    let gt_dir = dir.join("ground_truth");
    // A perturbed calibration is what the pipeline gets; the truth goes with the ground truth.
    let (written, calibration_error_px) = if degrade.calibration_error_px > 0.0 {
        let (perturbed, reached) =
            perturb_rig(&rig, &spec.surface_at(0), degrade.calibration_error_px, spec.seed)?;
        save_rig(&gt_dir.join(TRUE_CALIBRATION), &rig).map_err(io_err)?;
        (perturbed, reached)
    } else {
        (rig.clone(), Vec::new())
    };
    save_rig(&dir.join("calibration.json"), &written).map_err(io_err)?;
    let names: Vec<String> = rig.cameras().iter().map(|c| c.name.clone()).collect();
    let texture = spec.texture();
    let extension = if degrade.jpeg_quality.is_some() { "jpg" } else { "png" };
    let undistorted: Vec<RefractiveCamera> =
        names.iter().map(|n| undistorted_camera(&rig, n)).collect::<Result<_, _>>()?;
    let mut surfaces = Vec::new();
    let total = spec.frames * names.len();
    let mut done = 0;
    let mut fishes = Vec::new();
    // The ground truth is laid out as an output folder is (`frame_NNNNNN/depth_maps/CAM.npz`).
    let truth = crate::layout::OutputLayout::new(&gt_dir);
    for frame in 0..spec.frames {
        let surface = spec.surface_at(frame);
        let fish = spec.fish_at(frame);
        let half = view_half_width(&undistorted, &surface);
        let particles =
            particles_at(degrade.particles, &undistorted, &surface, half, spec.seed, frame);
        for (name, cam) in names.iter().zip(&undistorted) {
            progress("rendering", done, total);
            let img = render_frame(
                &rig,
                name,
                &surface,
                &texture,
                &spec.render,
                fish.as_ref(),
                frame,
                &particles,
            )?;
            let folder = dir.join("images").join(name);
            let path = folder.join(format!("frame_{frame:06}.{extension}"));
            let other = path.with_extension(if extension == "png" { "jpg" } else { "png" });
            if other.exists() {
                return Err(SceneError::Io(format!(
                    "{} is left from an earlier scene and would be read as a second frame; \
                     remove it or choose a new --out folder",
                    other.display()
                )));
            }
            match degrade.jpeg_quality {
                Some(q) => {
                    let bytes = encode_jpeg(&img, q)
                        .map_err(|e| SceneError::Io(format!("{}: {e}", path.display())))?;
                    write_bytes_atomic(&path, &bytes).map_err(io_err)?;
                }
                None => write_png_rgb(&path, &img).map_err(io_err)?,
            }
            let depth = ground_truth_depth(cam, &surface);
            let path = truth.frame(frame).depth_map(name).map_err(io_err)?.path;
            write_npz(&path, &[("depth", ArrayRef::image(&depth))]).map_err(io_err)?;
            done += 1;
        }
        let mesh = surface_mesh(&surface, half, mesh_step(half));
        write_mesh(&truth.frame(frame).truth_surface().path, &mesh).map_err(io_err)?;
        surfaces.push(surface);
        fishes.push(fish);
    }
    progress("rendering", total, total);
    let scene = SceneFile {
        format: SCENE_FORMAT.into(),
        version: 1,
        surface_kind: spec.surface.as_str().into(),
        rig_preset: spec.rig_preset.as_str().into(),
        seed: spec.seed,
        calibration: if calibration_error_px.is_empty() {
            PathBuf::from("../calibration.json")
        } else {
            PathBuf::from(TRUE_CALIBRATION)
        },
        extent: spec.rig.extent(),
        view_half_width: view_half_width(&undistorted, &surfaces[0]),
        frames: surfaces,
        fish: if fishes.iter().any(Option::is_some) { fishes } else { Vec::new() },
        degradations: (!degrade.is_off()).then(|| degrade.clone()),
    };
    let json = serde_json::to_string_pretty(&scene).map_err(io_err)?;
    write_bytes_atomic(&gt_dir.join("scene.json"), json.as_bytes()).map_err(io_err)?;

    let mut config = Config {
        calibration_path: "calibration.json".into(),
        output_dir: "output".into(),
        camera_input_map: names
            .iter()
            .map(|n| (n.clone(), PathBuf::from("images").join(n)))
            .collect(),
        ..Config::default()
    };
    // The bottom is a heightfield: mesh it as one (Poisson closes the surface underneath).
    config.reconstruction.surface_method = crate::config::SurfaceMethodKind::Heightfield;
    // Small rigs cannot have three other ring cameras confirm a depth.
    let n_ring = rig.ring_names().len();
    config.reconstruction.min_consistent_views =
        config.reconstruction.min_consistent_views.min(n_ring.saturating_sub(1)).max(1);
    let config_path = dir.join("config.yaml");
    write_bytes_atomic(&config_path, config.to_yaml().as_bytes()).map_err(io_err)?;
    Ok(SceneSummary { rig, n_images: total, config_path, calibration_error_px })
}

/// Half-width of the square around (0, 0) that holds every camera's view of the bottom.
fn view_half_width(cameras: &[RefractiveCamera], surface: &SurfaceModel) -> f64 {
    let mut half: f64 = 0.0;
    for cam in cameras {
        for (u, v) in cam.size().border_samples() {
            if let Ok(ray) = cam.cast_ray(u, v) {
                let t = (surface.base_z() - ray.origin.z) / ray.dir.z;
                let p = ray.point_at(t);
                half = half.max(p.x.abs()).max(p.y.abs());
            }
        }
    }
    half
}

/// Grid spacing of the ground-truth mesh: fine enough to be exact at millimetre scale, coarse
/// enough to stay a few megabytes.
fn mesh_step(half: f64) -> f64 {
    (2.0 * half / 600.0).max(0.001)
}

/// The surface as a regular grid mesh over `|x|, |y| ≤ half`.
pub fn surface_mesh(surface: &SurfaceModel, half: f64, step: f64) -> TriangleMesh {
    let n = (2.0 * half / step).ceil() as usize + 1;
    let coord = |i: usize| -half + i as f64 * step;
    let vertices: Vec<Point3<f64>> =
        (0..n * n).into_par_iter().map(|k| surface.point(coord(k % n), coord(k / n))).collect();
    let normals = (0..n * n).map(|k| surface.normal_up(coord(k % n), coord(k / n))).collect();
    let mut faces = Vec::with_capacity(2 * (n - 1) * (n - 1));
    for j in 0..n - 1 {
        for i in 0..n - 1 {
            let v = |i: usize, j: usize| (j * n + i) as u32;
            // Wound so that the face normals point up (−Z), toward the cameras.
            faces.push([v(i, j), v(i, j + 1), v(i + 1, j)]);
            faces.push([v(i + 1, j), v(i, j + 1), v(i + 1, j + 1)]);
        }
    }
    // Indices come from the grid, so they are in range.
    TriangleMesh::from_parts(vertices, faces, Some(normals), None).expect("grid mesh is consistent")
}

/// A synthetic scene's ground truth, read back from `DIR/ground_truth`.
#[derive(Clone, Debug)]
pub struct GroundTruth {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The description.
    pub scene: SceneFile,
    /// The rig.
    pub rig: Rig,
}

impl GroundTruth {
    /// Reads `dir/scene.json` and the calibration it names.
    pub fn load(dir: &Path) -> Result<Self, SceneError> {
        let path = dir.join("scene.json");
        let text = crate::io::limits::read_text(&path).map_err(|e| SceneError::Format {
            path: path.clone(),
            message: format!(
                "cannot read ({e}); pass the `ground_truth` folder written by `aquamvs synth`"
            ),
        })?;
        let scene: SceneFile = serde_json::from_str(&text)
            .map_err(|e| SceneError::Format { path: path.clone(), message: e.to_string() })?;
        if scene.format != SCENE_FORMAT {
            return Err(SceneError::Format {
                path,
                message: format!("format is `{}`, expected `{SCENE_FORMAT}`", scene.format),
            });
        }
        let rig = load_rig(&dir.join(&scene.calibration)).map_err(io_err)?;
        Ok(Self { dir: dir.to_path_buf(), scene, rig })
    }

    /// The fish of `frame`, if one swims there.
    pub fn fish(&self, frame: usize) -> Option<&Fish> {
        self.scene.fish.get(frame).and_then(Option::as_ref)
    }

    /// The surface of `frame`.
    pub fn surface(&self, frame: usize) -> Result<&SurfaceModel, SceneError> {
        self.scene
            .frames
            .get(frame)
            .ok_or(SceneError::NoSuchFrame { frame, n_frames: self.scene.frames.len() })
    }

    /// Surface samples (2 mm grid) seen by at least `min_views` cameras of the rig, for
    /// completeness.
    pub fn visible_samples(
        &self,
        frame: usize,
        min_views: usize,
    ) -> Result<SurfaceSamples, SceneError> {
        let surface = self.surface(frame)?;
        let cameras: Vec<RefractiveCamera> = self
            .rig
            .cameras()
            .iter()
            .map(|c| undistorted_camera(&self.rig, &c.name))
            .collect::<Result<_, _>>()?;
        let step = (self.scene.view_half_width / 300.0).max(0.002);
        Ok(visible_samples(&cameras, surface, self.scene.view_half_width, step, min_views))
    }

    /// The ground-truth depth map files of `frame`, by camera.
    pub fn depth_map_paths(&self, frame: usize) -> BTreeMap<String, PathBuf> {
        self.rig
            .cameras()
            .iter()
            .filter_map(|c| {
                let layout = crate::layout::OutputLayout::new(&self.dir);
                let p = layout.frame(frame).depth_map(&c.name).ok()?.path;
                Some((c.name.clone(), p))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::ImageSize;

    #[test]
    fn writes_a_complete_dataset_that_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 7);
        spec.rig.size = ImageSize::new(96, 72);
        spec.rig.focal_px = 90.0;
        spec.rig.centre_focal_px = 90.0;
        spec.frames = 2;
        let summary = write_scene(&spec, dir.path(), &|_, _, _| {}).unwrap();
        assert_eq!(summary.n_images, 8);
        for cam in ["cam00", "cam01", "cam02", "center"] {
            for f in 0..2 {
                assert!(dir.path().join(format!("images/{cam}/frame_{f:06}.png")).is_file());
                assert!(
                    dir.path()
                        .join(format!("ground_truth/frame_{f:06}/depth_maps/{cam}.npz"))
                        .is_file()
                );
            }
        }
        let config = crate::config::load(&summary.config_path).unwrap().config;
        assert_eq!(config.output_dir, dir.path().join("output"));
        assert_eq!(config.camera_input_map.len(), 4);
        let gt = GroundTruth::load(&dir.path().join("ground_truth")).unwrap();
        assert_eq!(gt.scene.frames.len(), 2);
        assert_eq!(gt.scene.frames[0], spec.surface_at(0));
        assert_eq!(gt.rig, summary.rig);
        let mesh =
            crate::io::ply::read_mesh(&dir.path().join("ground_truth/frame_000000/surface.ply"))
                .unwrap();
        assert!(mesh.n_faces() > 1000);
        let samples = gt.visible_samples(0, 2).unwrap();
        assert!(samples.total_area() > 0.01, "{}", samples.total_area());
        assert!(matches!(gt.surface(5), Err(SceneError::NoSuchFrame { .. })));
    }

    /// FNV-1a of the files a tiny two-frame `bower` scene writes.
    fn scene_hash(dir: &Path, files: &[&str]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for rel in files {
            for b in std::fs::read(dir.join(rel)).unwrap() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
        h
    }

    fn tiny_bower() -> SceneSpec {
        let mut spec = SceneSpec::new(SurfaceKind::Bower, RigPreset::Tiny, 7);
        spec.rig.size = ImageSize::new(96, 72);
        spec.rig.focal_px = 90.0;
        spec.rig.centre_focal_px = 90.0;
        spec.frames = 2;
        spec
    }

    #[test]
    fn without_degradations_the_files_are_those_written_before_they_existed() {
        let dir = tempfile::tempdir().unwrap();
        write_scene(&tiny_bower(), dir.path(), &|_, _, _| {}).unwrap();
        let files = [
            "calibration.json",
            "ground_truth/scene.json",
            "images/cam00/frame_000000.png",
            "images/cam01/frame_000001.png",
            "images/center/frame_000001.png",
        ];
        // The hash of these files as written by the renderer before degradations were added
        // (`config.yaml` is left out: it lists every config key, and keys come and go).
        assert_eq!(scene_hash(dir.path(), &files), 0x4b09_c084_aad8_7605);
        assert!(!dir.path().join("ground_truth").join(TRUE_CALIBRATION).exists());
    }

    #[test]
    fn degraded_scenes_write_jpeg_a_perturbed_calibration_and_the_true_ground_truth() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = tiny_bower();
        spec.render.degrade = Degradations { particles: 20, ..Degradations::realistic() };
        let summary = write_scene(&spec, dir.path(), &|_, _, _| {}).unwrap();
        let jpg = dir.path().join("images/cam00/frame_000001.jpg");
        assert!(jpg.is_file() && !jpg.with_extension("png").exists());
        // The written config reads the JPEG frames.
        let config = crate::config::load(&summary.config_path).unwrap().config;
        let img =
            crate::io::images::read_rgb(&config.camera_input_map["cam00"].join("frame_000000.jpg"))
                .unwrap();
        assert_eq!(img.size(), ImageSize::new(96, 72));
        // The pipeline's calibration is off by the asked RMS; the ground truth keeps the truth.
        let written = load_rig(&dir.path().join("calibration.json")).unwrap();
        assert_ne!(written, summary.rig);
        assert!(summary.calibration_error_px.iter().all(|e| (e / 0.33 - 1.0).abs() < 0.02));
        let gt = GroundTruth::load(&dir.path().join("ground_truth")).unwrap();
        assert_eq!(gt.rig, summary.rig);
        assert_eq!(gt.scene.degradations.as_ref(), Some(&spec.render.degrade));
        // Same seed, same bytes.
        let again = tempfile::tempdir().unwrap();
        write_scene(&spec, again.path(), &|_, _, _| {}).unwrap();
        let files =
            ["calibration.json", "images/cam01/frame_000001.jpg", "images/center/frame_000000.jpg"];
        assert_eq!(scene_hash(dir.path(), &files), scene_hash(again.path(), &files));
        // A PNG frame of an earlier scene in the folder would be read as a second frame.
        spec.render.degrade.jpeg_quality = None;
        let err = write_scene(&spec, dir.path(), &|_, _, _| {}).unwrap_err().to_string();
        assert!(err.contains("frame_000000.jpg") && err.contains("--out"), "{err}");
    }

    #[test]
    fn mesh_vertices_lie_on_the_surface_with_upward_faces() {
        let s = SurfaceModel::generate(SurfaceKind::Undulating, 1.2, 0.2, 0, 0);
        let m = surface_mesh(&s, 0.05, 0.005);
        assert!(m.vertices().iter().all(|p| (s.z(p.x, p.y) - p.z).abs() < 1e-15));
        assert!(m.face_normals().iter().all(|n| n.z < 0.0));
    }
}
