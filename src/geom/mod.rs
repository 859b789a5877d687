//! Geometry: camera models, lens distortion, undistortion, refraction at the water surface
//! and ray triangulation. The numerical ground floor every other stage projects through.
//!
//! Architecture invariant: this module does no IO and knows nothing of files or of the
//! calibration format; it works on plain values in `f64` (geometry) and hands images to
//! [`crate::imgproc`] for resampling. Expected geometric outcomes (a point above the water,
//! behind the camera, a pixel whose ray misses the water) are value enums, never errors.
//!
//! - [`camera`]: pinhole intrinsics [`Intrinsics`].
//! - [`distortion`]: the OpenCV lens models [`Distortion`] (Brown 5/8, Kannala-Brandt).
//! - [`undistort`]: the undistorted pinhole `K_new` and the [`UndistortMap`] that resamples
//!   frames into it.
//! - [`refraction`]: [`RefractiveCamera`], with `cast_ray` (pixel → ray in water) and
//!   `project` (underwater point → pixel) through Snell's law.
//! - [`triangulate`]: least-squares intersection of rays.
//!
//! ```
//! use aquamvs::geom::{Intrinsics, RefractiveCamera, WaterInterface};
//! use aquamvs::imgproc::ImageSize;
//! use nalgebra::{Rotation3, Vector3};
//!
//! // A camera at the origin looking straight down at water 1 m below it.
//! let cam = RefractiveCamera::new(
//!     Intrinsics::new(1000.0, 1000.0, 500.0, 500.0),
//!     Rotation3::identity(),
//!     Vector3::zeros(),
//!     WaterInterface::new(1.0, 1.0, 1.333),
//!     ImageSize::new(1000, 1000),
//! )?;
//! let ray = cam.cast_ray(600.0, 500.0).expect("the pixel looks down at the water");
//! let point = ray.point_at(0.8); // 0.8 m along the refracted ray
//! let pixel = cam.project(&point).expect("below the water, in front of the camera");
//! assert!((pixel.x - 600.0).abs() < 1e-9 && (pixel.y - 500.0).abs() < 1e-9);
//! # Ok::<(), aquamvs::geom::CameraError>(())
//! ```

pub mod camera;
pub mod distortion;
pub mod refraction;
pub mod triangulate;
pub mod undistort;

#[cfg(test)]
pub(crate) mod testutil;

pub use camera::Intrinsics;
pub use distortion::Distortion;
pub use refraction::{
    CameraError, CastReject, InImageReject, ProjectReject, Projection, Ray, RefractiveCamera,
    WaterInterface, ray_depth,
};
pub use triangulate::{TriangulationError, triangulate_rays, triangulate_two_rays};
pub use undistort::{UndistortError, UndistortMap, new_camera_matrix};
