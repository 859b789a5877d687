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

pub mod bench;
pub mod calib;
pub mod change;
pub mod cli;
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
pub mod setup;
pub mod sparse;
pub mod spatial;
pub mod stats;
pub mod surface;
pub mod synth;
pub mod viz;
