//! The sparse stage after matching: triangulation through the water surface, tracks merged
//! across pairs, the plausibility window, per-camera depth ranges for the plane sweep, and
//! best-view colours for the sparse cloud of `pipeline_mode: sparse`.
//!
//! # How the pipeline calls it
//! ```text
//! FrameMatches ──triangulate_frame──► SparseCloud (plausible points, tracks merged)
//!   ──depth_ranges──► per-camera ray-depth range (or the flagged fallback)
//!   ──(voxel, normals: fusion)──► best_view_colours ──► point_cloud/sparse.ply
//! ```
//!
//! - [`triangulate`]: one match → one point with the reference's filters (in front of both
//!   rays, ≥ 2° between them, < 3 px reprojection in both images), and the plausibility
//!   window `water_z < Z < water_z + 2 m` (reference-numerics §4.5).
//! - [`tracks`]: matches that share keypoints are joined into tracks (union-find over
//!   `(camera, keypoint)`), each solved once from all its rays. The reference triangulates
//!   every pair separately, so one sand grain seen by five cameras became up to ten slightly
//!   different points; a track gives one point, averaged over more views.
//! - [`depth_range`](mod@depth_range): per camera, the 2nd-98th percentile of the ray depths of the points it
//!   sees inside its image, widened by the margin; the reference also counted points that
//!   project outside the image.
//! - [`colour`]: best-view colours scored with the refracted viewing direction in water.
//!
//! Architecture invariant: pure functions of values (cameras, matches, points, images); no IO
//! and no logging beyond `tracing` spans. Expected outcomes (a match that fails a filter, a
//! track with conflicting keypoints, a camera that sees no point) are values and counts.

pub mod colour;
pub mod depth_range;
pub mod tracks;
pub mod triangulate;

use std::collections::BTreeMap;

use nalgebra::Point3;

use crate::cloud::PointCloud;
use crate::geom::RefractiveCamera;

pub use colour::{ColourView, DEFAULT_COLOUR, best_view_colours, best_view_mesh_colours};
pub use depth_range::{
    CameraDepthRange, DepthRangeOptions, DepthRangeSource, FALLBACK_DEPTH_RANGE, RayDepthRange,
    depth_range, depth_ranges,
};
pub use tracks::{TriangulationStats, triangulate_frame};
pub use triangulate::{
    PointReject, TriangulationOptions, filter_plausible, is_plausible, triangulate_all_pairs,
    triangulate_match, triangulate_pair,
};

/// The cameras of a frame by name (undistorted geometry).
pub type Cameras<'a> = BTreeMap<&'a str, &'a RefractiveCamera>;

/// A triangulated point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparsePoint {
    /// Position (world metres).
    pub position: Point3<f64>,
    /// Mean match score of the matches behind it.
    pub score: f32,
    /// Number of cameras whose rays were solved for it (2 for a pair).
    pub n_views: u32,
}

/// The sparse cloud of one frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseCloud {
    /// The points, in a deterministic order (by pair, then by keypoint of the track's first
    /// match).
    pub points: Vec<SparsePoint>,
    /// What happened to the matches (for logs and reports).
    pub stats: TriangulationStats,
}

impl SparseCloud {
    /// The positions alone.
    pub fn positions(&self) -> Vec<Point3<f64>> {
        self.points.iter().map(|p| p.position).collect()
    }

    /// The positions as a [`PointCloud`] (no normals or colours yet).
    pub fn to_point_cloud(&self) -> PointCloud {
        PointCloud::new(self.positions())
    }
}

/// Why the sparse stage could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    /// Matches name a camera that the camera set lacks.
    #[error("matches name camera `{0}`, which is not among the frame's cameras")]
    UnknownCamera(String),
    /// Keypoint-indexed matches refer to a camera without keypoints, or to an index beyond them.
    #[error("a match refers to keypoint {index} of camera `{camera}`, which has {available}")]
    BadKeypoint {
        /// The camera.
        camera: String,
        /// The index used.
        index: u32,
        /// Keypoints of that camera.
        available: usize,
    },
}

#[cfg(test)]
pub(crate) mod testutil;
