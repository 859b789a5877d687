//! Point operations of depth-map fusion (reference-numerics §6.2-6.3): voxel down-sampling,
//! PCA normals and statistical outlier removal, as the reference does them with Open3D, but
//! deterministic (ARCHITECTURE decision 5).
//!
//! After back-projection, the fused cloud of all views goes through
//! [`voxel_downsample`] (one point per occupied voxel, sorted by voxel key), then
//! [`estimate_normals`] (radius `5·voxel`, at most 30 neighbours, oriented toward a viewpoint),
//! is saved, and finally [`remove_statistical_outliers`] drops isolated points before surface
//! reconstruction. Neighbour queries use a KD-tree (`kiddo`) and run in parallel; every result
//! is independent of the thread count.

mod columns;
pub mod consistency;
pub mod neighbourhood;
pub mod normals;
pub mod outliers;
pub mod voxel;

pub use consistency::{
    ConsistencyOptions, DepthView, FilteredDepth, backproject, filter_depth_map,
};
pub use neighbourhood::normals_and_inliers;
pub use normals::{
    NormalOptions, NormalOrientation, depth_map_normals, estimate_normals, with_normals,
};
pub use outliers::{OutlierOptions, remove_statistical_outliers, statistical_inlier_mask};
pub use voxel::voxel_downsample;

/// Errors of the fusion point operations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FusionError {
    /// A parameter outside its valid range.
    #[error("{name} = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is required.
        reason: &'static str,
    },
    /// A point with a NaN or infinite coordinate.
    #[error("point {index} has a non-finite coordinate")]
    NonFinitePoint {
        /// Its index.
        index: usize,
    },
    /// The KD-tree could not be built.
    #[error("cannot build the neighbour index: {0}")]
    Index(#[from] crate::spatial::IndexError),
    /// A voxel size so small that voxel indices overflow 32 bits.
    #[error("voxel size {voxel_size} is too small for a cloud spanning {extent} m")]
    VoxelTooSmall {
        /// The voxel size.
        voxel_size: f64,
        /// The largest side of the cloud's bounding box.
        extent: f64,
    },
}

/// Fails on the first point with a non-finite coordinate.
fn check_finite(points: &[nalgebra::Point3<f64>]) -> Result<(), FusionError> {
    match points.iter().position(|p| !p.coords.iter().all(|c| c.is_finite())) {
        Some(index) => Err(FusionError::NonFinitePoint { index }),
        None => Ok(()),
    }
}
