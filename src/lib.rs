//! # aquamvs: refractive multi-view stereo
//!
//! `aquamvs` reconstructs the 3D shape of an underwater surface (a tank or lake bottom, sand,
//! rocks) from a synchronised rig of calibrated cameras that sit in air and look down through a
//! flat water surface. Light bends at the air-water interface, so every projection in this crate
//! goes through a refractive camera model (Snell's law) instead of a plain pinhole.
//!
//! ## Data flow
//!
//! ```text
//! config.yaml ──► Config ─┐
//! calibration.json ──► Rig ─┤
//! frames ──► FrameReader ───┤
//!                           ▼
//!   undistort ─► match ─► triangulate ─► depth ranges ─► plane sweep ─► DepthMap
//!     ─► consistency filter ─► fuse ─► PointCloud ─► surface ─► Mesh ─► export
//! ```
//!
//! Every arrow is a plain value handed to the next stage; no stage reads another stage's files
//! back and there is no global state. See `docs/architecture.md` for the code map and the
//! invariants each layer keeps.
//!
//! ## Conventions
//!
//! - World frame: origin at the reference camera, +Z points **down** into the water, metres.
//!   The water surface is the plane Z = `water_z`; underwater points have Z > `water_z`.
//! - Extrinsics map world → camera: `p_cam = R·p_world + t`; the camera centre is `C = −Rᵀt`.
//! - Pixels are `(u, v) = (column, row)`; integer coordinates are pixel centres.
//! - Depth maps store **ray depth**: the distance along the refracted ray from its point on the
//!   water surface.
//! - Geometry is `f64`; image intensities are `f32` in [0, 1]; colours are RGB `u8`.
//!
//! ## The public surface
//!
//! What stays public is what the benches (`benches/`), the integration tests (`tests/it`) and
//! a program embedding the library use; the command line (`cli`), the benchmark runner
//! (`bench`) and the project commands (`setup`: `check`, `init`, `export-refs`) are
//! crate-private, reached only through [`run_cli`]. Test fixtures live behind
//! `#[cfg(test)]` (`testutil`, `geom::testutil`, `features::testscene`,
//! `surface::test_clouds`). One line per public module, with its entry points:
//!
//! - [`pipeline`]: a whole run ([`pipeline::reconstruct`]), one frame
//!   ([`pipeline::process_frame`] on a [`pipeline::Context`]), the validated plan
//!   ([`pipeline::plan::validate`]) and summaries ([`pipeline::summary::summarize`]).
//! - [`config`]: [`config::load`] and the typed [`config::Config`].
//! - [`calib`]: [`calib::load_rig`], [`calib::save_rig`], the [`calib::Rig`].
//! - [`frames`]: camera inputs ([`frames::InputSet`], [`frames::FrameReader`]).
//! - [`masks`]: region-of-interest masks ([`masks::load_masks`]).
//! - [`features`]: the [`features::Matcher`] trait, the classical matcher, ONNX matchers, pairs.
//! - [`sparse`]: triangulation ([`sparse::triangulate_frame`]), depth ranges, colours.
//! - [`dense`]: the plane sweep ([`dense::sweep::plane_sweep`]) and [`dense::DepthMap`].
//! - [`fusion`]: consistency filter, voxels, normals, outliers.
//! - [`surface`]: meshes from clouds ([`surface::reconstruct_surface`]).
//! - [`heightmap`], [`change`]: height maps of a run's grid and their differences.
//! - [`preprocess`]: temporal median filtering of videos.
//! - [`synth`], [`eval`]: synthetic scenes with ground truth, and accuracy against it.
//! - [`viz`]: pictures, only what the `viz` bench and example draw: a frame's pictures
//!   ([`viz::write_frame_viz`]), the time-series gallery ([`viz::write_timeseries_gallery`]),
//!   single maps and renders ([`viz::depth_image`], [`viz::cloud_views`], …), [`viz::demo`].
//!   The rest of `viz` (the run's `Painter`, the change pictures, `redraw`) is crate-private.
//! - [`io`], [`layout`]: file formats and every output path.
//! - [`geom`], [`imgproc`], [`cloud`], [`mesh`], [`spatial`], [`stats`], [`parallel`]: the
//!   foundations (cameras and refraction, images, point clouds, meshes, neighbour queries).
//!
//! ## Example
//!
//! ```
//! use aquamvs::imgproc::{Image, ImageSize};
//!
//! let size = ImageSize::new(4, 3);
//! let grey = Image::<f32, 1>::from_elem(size, 0.5);
//! assert_eq!(grey.size(), size);
//! assert_eq!(grey.get(3, 2), [0.5]);
//! ```

#[cfg(test)]
pub(crate) mod testutil;

mod bench;
pub mod calib;
pub mod change;
mod cli;
pub mod cloud;
pub mod config;
pub mod dense;
pub mod eval;
pub mod features;
pub mod frames;
pub mod fusion;
pub mod geom;
pub mod heightmap;
pub mod imgproc;
pub mod io;
pub mod layout;
pub mod masks;
pub mod mesh;
pub mod parallel;
pub mod pipeline;
pub mod preprocess;
mod setup;
pub mod sparse;
pub mod spatial;
pub mod stats;
pub mod surface;
pub mod synth;
pub mod viz;

/// The `aquamvs` command line: parses the process arguments, runs the command, renders an
/// error once and returns the exit code (the binary's whole `main`).
pub fn run_cli() -> std::process::ExitCode {
    cli::main()
}
