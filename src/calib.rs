//! AquaCal calibration files: loading them into a validated [`Rig`], and writing a [`Rig`]
//! back in the same format.
//!
//! The [`Rig`] is what every later stage receives, so everything that would otherwise fail
//! deep inside a run is checked here, once, with an error that names the file, the camera and
//! the field (`cameras.cam03.intrinsics.K`) and says what to do:
//! - the format: `version` "1.0"; `K` 3×3 in pinhole form; 5 or 8 distortion coefficients
//!   (4 for a fisheye); `image_size` `[width, height]`; `R` 3×3 and `t` as `[x, y, z]` or
//!   `[[x], [y], [z]]`; `water_z` (or the legacy `interface_distance`) per camera;
//! - the physics: all cameras share one water surface (within [`WATER_Z_TOL_M`]); the
//!   interface normal is `(0, 0, −1)` (only a flat horizontal surface is supported); every
//!   camera centre is above the water; `R` is a rotation; focal lengths and image sizes are
//!   positive; the lens model is invertible over the image (so undistortion cannot fail later);
//! - plausibility (finite but absurd values fail here, not as "too little texture" deep in a
//!   run): image size within [`crate::io::limits::MAX_IMAGE_SIDE`]/`MAX_IMAGE_PIXELS`, focal
//!   lengths within [`FOCAL_RANGE_X_WIDTH`] × the image width, the principal point inside
//!   the image, refractive indices within [`REFRACTIVE_INDEX_RANGE`], cameras and water within
//!   [`MAX_RIG_EXTENT_M`] of the reference camera (a calibration in millimetres is named as
//!   the likely cause), and undistortion rescaling the image by at most
//!   [`MAX_UNDISTORT_SCALE`].
//!
//! The file is parsed into a `serde_json::Value` and walked by hand rather than deserialised
//! into structs, because that is what lets every error carry its exact field path.
//!
//! Camera order: ring cameras (not auxiliary) sorted by name, then auxiliary cameras sorted
//! by name. Auxiliary cameras (usually the centre fisheye) are source views only.

use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Point3, Rotation3, Vector3};
use serde_json::{Map, Value, json};

use crate::geom::refraction::{CameraError, RefractiveCamera, WaterInterface};
use crate::geom::undistort::{UndistortError, UndistortMap, new_camera_matrix};
use crate::geom::{Distortion, Intrinsics};
use crate::imgproc::ImageSize;
use crate::io::atomic::{WriteError, write_bytes_atomic};

/// The only AquaCal format version this reader understands.
pub const FORMAT_VERSION: &str = "1.0";
/// All cameras must agree on `water_z` to within this (metres). AquaCal's joint optimisation
/// makes them equal; anything larger means cameras from different calibrations were mixed.
pub const WATER_Z_TOL_M: f64 = 1e-6;
/// Largest deviation of each interface-normal component from `(0, 0, −1)`. AquaCal writes the
/// exact vector when the normal is fixed; a fitted normal tilted by more than ~1e-6 rad would
/// be silently ignored by the horizontal-surface model, so it is refused.
pub const NORMAL_TOL: f64 = 1e-6;
/// Largest entry of `RᵀR − I` and largest `|det R − 1|` accepted for a rotation. Matrices
/// from Rodrigues vectors are orthonormal to ~1e-15; 1e-6 admits values printed with ~7
/// significant digits. Anything off by more than 1e-12 is snapped to the nearest
/// rotation so that `Rᵀ` inverts `R` exactly in every later computation.
pub const ROTATION_TOL: f64 = 1e-6;
/// See [`ROTATION_TOL`].
const ROTATION_SNAP: f64 = 1e-12;
/// Plausible focal lengths, as multiples of the image width: 0.05× is a ~170° lens, 100× a
/// long telephoto. Anything outside is a unit or transcription error.
pub const FOCAL_RANGE_X_WIDTH: (f64, f64) = (0.05, 100.0);
/// Plausible refractive indices of either medium (vacuum is 1, the densest common glasses
/// about 1.9).
pub const REFRACTIVE_INDEX_RANGE: (f64, f64) = (1.0, 2.0);
/// Largest plausible distance of a camera or of the water surface from the world origin (the
/// reference camera), in metres: larger values usually mean a calibration in millimetres.
pub const MAX_RIG_EXTENT_M: f64 = 100.0;
/// Largest plausible scale between the undistorted and the calibrated focal length. Real
/// lenses stay well inside (AquaCal's rig, k1 ≈ −0.5: about 1.1); a larger factor means
/// distortion coefficients so large that the lens model is not invertible over the image.
pub const MAX_UNDISTORT_SCALE: f64 = 10.0;

/// One camera of the rig as calibrated (before undistortion).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraCalib {
    /// Camera name (the key in the calibration file).
    pub name: String,
    /// Pinhole intrinsics of the *distorted* camera.
    pub intrinsics: Intrinsics,
    /// Lens distortion model; [`Distortion::Fisheye4`] for fisheye cameras.
    pub distortion: Distortion,
    /// Image size the calibration is for.
    pub image_size: ImageSize,
    /// World → camera rotation `R`.
    pub rotation: Rotation3<f64>,
    /// World → camera translation `t` (`p_cam = R·p_world + t`).
    pub translation: Vector3<f64>,
    /// Auxiliary cameras are registered post hoc and are used as source views only.
    pub is_auxiliary: bool,
}

impl CameraCalib {
    /// True for a fisheye (Kannala-Brandt) camera.
    pub fn is_fisheye(&self) -> bool {
        self.distortion.is_fisheye()
    }

    /// Camera centre `C = −Rᵀt` in world coordinates.
    pub fn centre(&self) -> Point3<f64> {
        Point3::from(-(self.rotation.inverse() * self.translation))
    }

    /// The undistorted pinhole intrinsics `K_new` (cheap: no map is built).
    pub fn new_camera_matrix(&self) -> Result<Intrinsics, UndistortError> {
        new_camera_matrix(&self.intrinsics, &self.distortion, self.image_size)
    }

    /// The undistortion map of this camera (its `k_new()` is the camera every later stage
    /// uses).
    pub fn undistortion(&self) -> Result<UndistortMap, UndistortError> {
        UndistortMap::new(&self.intrinsics, &self.distortion, self.image_size)
    }

    /// The refractive camera in the undistorted geometry `k_new`, below `interface`.
    pub fn refractive_camera(
        &self,
        k_new: Intrinsics,
        interface: WaterInterface,
    ) -> Result<RefractiveCamera, CameraError> {
        RefractiveCamera::new(k_new, self.rotation, self.translation, interface, self.image_size)
    }
}

/// A validated camera rig: cameras plus the water interface they look through.
#[derive(Clone, Debug, PartialEq)]
pub struct Rig {
    cameras: Vec<CameraCalib>,
    interface: WaterInterface,
}

/// A rig that is not usable, or a camera that is not in it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RigError {
    /// The rig has no camera.
    #[error("field `cameras`: the rig has no camera")]
    NoCameras,
    /// Every camera is auxiliary, so none can serve as a reference view.
    #[error(
        "field `cameras`: every camera is auxiliary (`is_auxiliary: true`); at least one ring \
         camera is needed as a reference view"
    )]
    NoRingCamera,
    /// Two cameras share a name.
    #[error("field `cameras.{0}`: two cameras are named `{0}`; camera names must be unique")]
    DuplicateCamera(String),
    /// Refractive indices or water level unusable.
    #[error(
        "field `interface`: n_air = {n_air}, n_water = {n_water}, water_z = {water_z}; values \
         must be finite with 0 < n_air ≤ n_water (AquaCal's defaults are 1.0 and 1.333)"
    )]
    InvalidInterface {
        /// Index above the water.
        n_air: f64,
        /// Index below the water.
        n_water: f64,
        /// Water level.
        water_z: f64,
    },
    /// Intrinsics not finite or focal lengths not positive.
    #[error(
        "field `cameras.{camera}.intrinsics.K`: focal lengths must be positive and all entries \
         finite (fx = {fx}, fy = {fy}); check the calibration"
    )]
    InvalidIntrinsics {
        /// The camera.
        camera: String,
        /// Focal length in x.
        fx: f64,
        /// Focal length in y.
        fy: f64,
    },
    /// Image size with a zero side.
    #[error("field `cameras.{camera}.intrinsics.image_size`: {size} has no pixels")]
    EmptyImage {
        /// The camera.
        camera: String,
        /// The size.
        size: ImageSize,
    },
    /// `R` is not a rotation.
    #[error(
        "field `cameras.{camera}.extrinsics.R`: not a rotation matrix (|RᵀR − I| = \
         {orthonormality_error:.3e}, det = {determinant}); R must be orthonormal with \
         determinant +1 (tolerance {ROTATION_TOL:e})"
    )]
    NotARotation {
        /// The camera.
        camera: String,
        /// Largest entry of `RᵀR − I`.
        orthonormality_error: f64,
        /// `det R`.
        determinant: f64,
    },
    /// A non-finite number.
    #[error("field `cameras.{camera}.{field}`: contains a value that is not a finite number")]
    NonFinite {
        /// The camera.
        camera: String,
        /// Field path below the camera.
        field: &'static str,
    },
    /// Finite values outside what a real rig can have; the message gives the likely cause.
    #[error("field `{field}`: {message}")]
    Implausible {
        /// Field path (`cameras.cam01.intrinsics.K`, `interface.n_water`).
        field: String,
        /// The value, the accepted range and the likely cause.
        message: String,
    },
    /// A camera centre at or below the water.
    #[error(
        "camera `{camera}`: its centre is at Z = {centre_z} m, not above the water surface at \
         Z = {water_z} m (+Z points down into the water); check `cameras.{camera}.extrinsics.t` \
         and `water_z`"
    )]
    CameraNotAboveWater {
        /// The camera.
        camera: String,
        /// World Z of its centre.
        centre_z: f64,
        /// World Z of the water.
        water_z: f64,
    },
    /// The lens model cannot be undistorted over the image.
    #[error("field `cameras.{camera}.intrinsics.dist_coeffs`: {source}")]
    Undistortion {
        /// The camera.
        camera: String,
        /// What failed.
        #[source]
        source: UndistortError,
    },
    /// No camera of that name.
    #[error("no camera named `{name}` in the rig (cameras: {})", known.join(", "))]
    UnknownCamera {
        /// The requested name.
        name: String,
        /// The rig's cameras.
        known: Vec<String>,
    },
    /// A refractive camera could not be built (only with caller-supplied intrinsics).
    #[error("camera `{camera}`: {source}")]
    Camera {
        /// The camera.
        camera: String,
        /// What failed.
        #[source]
        source: CameraError,
    },
}

impl Rig {
    /// Validates `cameras` and `interface` (see the module doc) and orders the cameras:
    /// ring cameras by name, then auxiliary cameras by name.
    pub fn new(mut cameras: Vec<CameraCalib>, interface: WaterInterface) -> Result<Self, RigError> {
        if cameras.is_empty() {
            return Err(RigError::NoCameras);
        }
        if !interface.is_valid() {
            return Err(RigError::InvalidInterface {
                n_air: interface.n_air,
                n_water: interface.n_water,
                water_z: interface.water_z,
            });
        }
        validate_interface(&interface)?;
        cameras.sort_by(|a, b| (a.is_auxiliary, &a.name).cmp(&(b.is_auxiliary, &b.name)));
        let mut names: Vec<&str> = cameras.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(RigError::DuplicateCamera(w[0].to_string()));
        }
        if cameras.iter().all(|c| c.is_auxiliary) {
            return Err(RigError::NoRingCamera);
        }
        for cam in &cameras {
            validate_camera(cam, &interface)?;
        }
        Ok(Self { cameras, interface })
    }

    /// All cameras: ring cameras sorted by name, then auxiliary cameras sorted by name.
    pub fn cameras(&self) -> &[CameraCalib] {
        &self.cameras
    }

    /// The camera named `name`.
    pub fn camera(&self, name: &str) -> Option<&CameraCalib> {
        self.cameras.iter().find(|c| c.name == name)
    }

    /// Names of the ring (non-auxiliary) cameras, sorted.
    pub fn ring_names(&self) -> Vec<&str> {
        self.cameras.iter().filter(|c| !c.is_auxiliary).map(|c| c.name.as_str()).collect()
    }

    /// Names of the auxiliary cameras, sorted.
    pub fn auxiliary_names(&self) -> Vec<&str> {
        self.cameras.iter().filter(|c| c.is_auxiliary).map(|c| c.name.as_str()).collect()
    }

    /// Centre of the camera named `name`.
    pub fn centre(&self, name: &str) -> Option<Point3<f64>> {
        self.camera(name).map(CameraCalib::centre)
    }

    /// The water interface.
    pub fn interface(&self) -> WaterInterface {
        self.interface
    }

    /// World Z of the water surface.
    pub fn water_z(&self) -> f64 {
        self.interface.water_z
    }

    /// Refractive index of air.
    pub fn n_air(&self) -> f64 {
        self.interface.n_air
    }

    /// Refractive index of water.
    pub fn n_water(&self) -> f64 {
        self.interface.n_water
    }

    /// The refractive camera of `name` with pinhole intrinsics `k_new` (normally
    /// [`UndistortMap::k_new`] of that camera's [`CameraCalib::undistortion`]).
    pub fn refractive_camera(
        &self,
        name: &str,
        k_new: Intrinsics,
    ) -> Result<RefractiveCamera, RigError> {
        let cam = self.camera_or_error(name)?;
        cam.refractive_camera(k_new, self.interface)
            .map_err(|source| RigError::Camera { camera: name.to_string(), source })
    }

    /// The undistortion map of `name` and its refractive camera in the undistorted geometry:
    /// what the pipeline needs per camera.
    pub fn undistorted_camera(
        &self,
        name: &str,
    ) -> Result<(UndistortMap, RefractiveCamera), RigError> {
        let cam = self.camera_or_error(name)?;
        let map = cam
            .undistortion()
            .map_err(|source| RigError::Undistortion { camera: name.to_string(), source })?;
        let refractive = self.refractive_camera(name, map.k_new())?;
        Ok((map, refractive))
    }

    fn camera_or_error(&self, name: &str) -> Result<&CameraCalib, RigError> {
        self.camera(name).ok_or_else(|| RigError::UnknownCamera {
            name: name.to_string(),
            known: self.cameras.iter().map(|c| c.name.clone()).collect(),
        })
    }
}

/// Per-camera checks of [`Rig::new`].
fn validate_camera(cam: &CameraCalib, interface: &WaterInterface) -> Result<(), RigError> {
    let camera = || cam.name.clone();
    if !cam.intrinsics.is_valid() {
        return Err(RigError::InvalidIntrinsics {
            camera: camera(),
            fx: cam.intrinsics.fx,
            fy: cam.intrinsics.fy,
        });
    }
    if cam.image_size.is_empty() {
        return Err(RigError::EmptyImage { camera: camera(), size: cam.image_size });
    }
    if !cam.distortion.coeffs().iter().all(|v| v.is_finite()) {
        return Err(RigError::NonFinite { camera: camera(), field: "intrinsics.dist_coeffs" });
    }
    if !cam.translation.iter().all(|v| v.is_finite()) {
        return Err(RigError::NonFinite { camera: camera(), field: "extrinsics.t" });
    }
    let (orthonormality_error, determinant) = rotation_defect(cam.rotation.matrix());
    if !(orthonormality_error <= ROTATION_TOL && (determinant - 1.0).abs() <= ROTATION_TOL) {
        return Err(RigError::NotARotation { camera: camera(), orthonormality_error, determinant });
    }
    let centre_z = cam.centre().z;
    if centre_z.is_nan() || centre_z >= interface.water_z {
        return Err(RigError::CameraNotAboveWater {
            camera: camera(),
            centre_z,
            water_z: interface.water_z,
        });
    }
    validate_camera_plausible(cam, interface)?;
    let k_new = cam
        .new_camera_matrix()
        .map_err(|source| RigError::Undistortion { camera: camera(), source })?;
    let scale = (k_new.fx / cam.intrinsics.fx).max(k_new.fy / cam.intrinsics.fy);
    let shrink = (cam.intrinsics.fx / k_new.fx).max(cam.intrinsics.fy / k_new.fy);
    if !(scale <= MAX_UNDISTORT_SCALE && shrink <= MAX_UNDISTORT_SCALE) {
        return Err(RigError::Implausible {
            field: format!("cameras.{}.intrinsics.dist_coeffs", cam.name),
            message: format!(
                "{:?} are implausibly large: undistorting the image would rescale it by {:.3}× \
                 (at most {MAX_UNDISTORT_SCALE}× is accepted), so the lens model is not \
                 invertible over the image; check the calibration",
                cam.distortion.coeffs(),
                scale.max(shrink)
            ),
        });
    }
    Ok(())
}

/// The plausibility rules of [`validate_camera`] that need no undistortion: image size,
/// focal length, principal point and position, each refused with its likely cause.
fn validate_camera_plausible(
    cam: &CameraCalib,
    interface: &WaterInterface,
) -> Result<(), RigError> {
    let field = |f: &str| format!("cameras.{}.{f}", cam.name);
    let implausible =
        |f: &str, message: String| Err(RigError::Implausible { field: field(f), message });
    let size = cam.image_size;
    if let Some(problem) = crate::io::limits::image_size_problem(size) {
        return implausible("intrinsics.image_size", problem);
    }
    let k = &cam.intrinsics;
    let width = size.width as f64;
    let (lo, hi) = (FOCAL_RANGE_X_WIDTH.0 * width, FOCAL_RANGE_X_WIDTH.1 * width);
    for (name, f) in [("fx", k.fx), ("fy", k.fy)] {
        if !(lo..=hi).contains(&f) {
            return implausible(
                "intrinsics.K",
                format!(
                    "{name} = {f} px is implausible for an image {} px wide (expected {lo} to \
                     {hi}); is K for another image size, or in other units?",
                    size.width
                ),
            );
        }
    }
    if !(0.0..=width).contains(&k.cx) || !(0.0..=size.height as f64).contains(&k.cy) {
        return implausible(
            "intrinsics.K",
            format!(
                "the principal point ({}, {}) is outside the {size} image; is K for another \
                 image size?",
                k.cx, k.cy
            ),
        );
    }
    let centre = cam.centre();
    let far = centre.coords.amax();
    if far.is_nan() || far > MAX_RIG_EXTENT_M {
        return implausible(
            "extrinsics.t",
            format!(
                "the camera centre ({:.6}, {:.6}, {:.6}) is more than {MAX_RIG_EXTENT_M} m from \
                 the reference camera; is the calibration in millimetres? (aquamvs needs metres)",
                centre.x, centre.y, centre.z
            ),
        );
    }
    let height = interface.water_z - centre.z;
    if height > MAX_RIG_EXTENT_M {
        return implausible(
            "water_z",
            format!(
                "the camera is {height} m above the water (water_z = {}); is the calibration \
                 in millimetres? (aquamvs needs metres)",
                interface.water_z
            ),
        );
    }
    Ok(())
}

/// Plausibility of the water interface: refractive indices in [`REFRACTIVE_INDEX_RANGE`] and
/// the water within [`MAX_RIG_EXTENT_M`] of the reference camera.
fn validate_interface(interface: &WaterInterface) -> Result<(), RigError> {
    let (lo, hi) = REFRACTIVE_INDEX_RANGE;
    for (name, n) in [("n_air", interface.n_air), ("n_water", interface.n_water)] {
        if !(lo..=hi).contains(&n) {
            return Err(RigError::Implausible {
                field: format!("interface.{name}"),
                message: format!(
                    "{n} is not a physical refractive index (expected {lo} to {hi}; water is \
                     1.333, air 1.0)"
                ),
            });
        }
    }
    if interface.water_z.abs() > MAX_RIG_EXTENT_M {
        return Err(RigError::Implausible {
            field: "water_z".into(),
            message: format!(
                "{} m is more than {MAX_RIG_EXTENT_M} m from the reference camera; is the \
                 calibration in millimetres? (aquamvs needs metres)",
                interface.water_z
            ),
        });
    }
    Ok(())
}

/// `(max |RᵀR − I|, det R)`; NaN entries give NaN, which fails every comparison.
fn rotation_defect(m: &Matrix3<f64>) -> (f64, f64) {
    let err = (m.transpose() * m - Matrix3::identity())
        .iter()
        .fold(0.0f64, |acc, v| if v.is_nan() { f64::NAN } else { acc.max(v.abs()) });
    (err, m.determinant())
}

/// A validated near-rotation as a [`Rotation3`], snapped to the nearest rotation (polar
/// decomposition by SVD) when it is not already orthonormal to [`ROTATION_SNAP`].
fn to_rotation(m: Matrix3<f64>) -> Rotation3<f64> {
    if rotation_defect(&m).0 <= ROTATION_SNAP {
        return Rotation3::from_matrix_unchecked(m);
    }
    let svd = m.svd(true, true);
    match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => Rotation3::from_matrix_unchecked(u * v_t),
        // Not reachable (both factors were requested); the validated input is then kept.
        _ => Rotation3::from_matrix_unchecked(m),
    }
}

/// A calibration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    /// The file cannot be read.
    #[error("cannot read calibration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error(
        "{}:{line}:{column}: not valid JSON ({message}); expected an AquaCal calibration file",
        path.display()
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key appears twice in one JSON object (JSON parsers keep the last copy silently).
    #[error(
        "{}:{line}:{column}: key `{field}` appears more than once; every key (and every \
         camera) must appear once: remove or rename the extra copy",
        path.display()
    )]
    DuplicateKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the repeated key (`cameras.cam1`).
        field: String,
        /// Line where the second copy ends (1-based).
        line: usize,
        /// Column where the second copy ends (1-based).
        column: usize,
    },
    /// The format version is not "1.0".
    #[error(
        "{}: field `version` is {found}, but only AquaCal format \"{FORMAT_VERSION}\" is \
         supported; re-export the calibration with AquaCal",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found (as JSON).
        found: String,
    },
    /// A required field is absent.
    #[error("{}: missing field `{field}`{hint}", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The camera the field belongs to, if any.
        camera: Option<String>,
        /// Dotted field path.
        field: String,
        /// What to do (may be empty).
        hint: &'static str,
    },
    /// A field has the wrong JSON type or shape.
    #[error("{}: field `{field}` must be {expected}, found {found}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The camera the field belongs to, if any.
        camera: Option<String>,
        /// Dotted field path.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A field has the right type but an unusable value.
    #[error("{}: field `{field}`: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The camera the field belongs to, if any.
        camera: Option<String>,
        /// Dotted field path.
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Cameras disagree on the water level.
    #[error(
        "{}: field `cameras.{camera}.water_z` is {water_z} m but camera `{reference}` has \
         {reference_water_z} m; all cameras must share one water surface (within \
         {WATER_Z_TOL_M:e} m): use the output of one AquaCal calibration, or correct the value",
        path.display()
    )]
    WaterZMismatch {
        /// The file.
        path: PathBuf,
        /// The disagreeing camera.
        camera: String,
        /// Its water level.
        water_z: f64,
        /// The camera whose value is used.
        reference: String,
        /// That camera's water level.
        reference_water_z: f64,
    },
    /// The interface normal is not `(0, 0, −1)`.
    #[error(
        "{}: field `interface.normal` is [{}, {}, {}], but only a flat horizontal water \
         surface with normal [0, 0, -1] (pointing from water to air) is supported; calibrate \
         with the interface normal fixed",
        path.display(), normal[0], normal[1], normal[2]
    )]
    TiltedInterface {
        /// The file.
        path: PathBuf,
        /// The normal found.
        normal: [f64; 3],
    },
    /// The rig fails a consistency check.
    #[error("{}: {source}", path.display())]
    Rig {
        /// The file.
        path: PathBuf,
        /// The failed check (names camera and field).
        #[source]
        source: RigError,
    },
}

/// Loads and validates the AquaCal calibration file at `path`.
pub fn load_rig(path: &Path) -> Result<Rig, CalibError> {
    let text = crate::io::limits::read_text(path)
        .map_err(|e| CalibError::Read { path: path.to_path_buf(), source: e.into() })?;
    parse_rig(&text, path)
}

/// Parses and validates an AquaCal calibration; `source` names the file in errors.
///
/// Beyond strict JSON: a UTF-8 byte-order mark is skipped, and the bare tokens `NaN`,
/// `Infinity` and `-Infinity` that AquaCal (Python's `json`) writes, e.g. in `diagnostics`
/// when a calibration has no held-out frames, are accepted; a field aquamvs uses that holds
/// one is an error naming the field. A key repeated in one object is an error naming it.
pub fn parse_rig(json: &str, source: &Path) -> Result<Rig, CalibError> {
    let root = parse_json(json).map_err(|e| e.into_calib_error(source))?;
    Walker { path: source, camera: None }.rig(&root)
}

/// Why a calibration's text is not a JSON tree.
enum JsonError {
    Syntax(serde_json::Error),
    Duplicate { field: String, line: usize, column: usize },
}

impl JsonError {
    fn into_calib_error(self, source: &Path) -> CalibError {
        match self {
            JsonError::Syntax(e) => CalibError::Syntax {
                path: source.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            },
            JsonError::Duplicate { field, line, column } => {
                CalibError::DuplicateKey { path: source.to_path_buf(), field, line, column }
            }
        }
    }
}

/// Parses calibration text into a tree (see [`parse_rig`] for what is accepted beyond JSON).
fn parse_json(text: &str) -> Result<Value, JsonError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = mark_non_finite(text);
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(&text);
    let seed = json_tree::Tree { path: String::new(), duplicate: &duplicate };
    let result = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    match (result, duplicate.into_inner()) {
        (Err(e), Some(field)) => {
            Err(JsonError::Duplicate { field, line: e.line(), column: e.column() })
        }
        (Err(e), None) => Err(JsonError::Syntax(e)),
        (Ok(v), _) => Ok(v),
    }
}

/// Marks a non-finite number token inside the JSON tree: the tokens are rewritten to strings
/// starting with this private-use character, which no AquaCal file contains.
const NON_FINITE_MARK: char = '\u{E000}';

/// Rewrites the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings into marked
/// strings (`"\u{E000}NaN"`), so that a strict JSON parser reads them and [`describe`] can
/// name them. Columns after a rewritten token on the same line shift by three characters.
fn mark_non_finite(text: &str) -> std::borrow::Cow<'_, str> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    if !TOKENS.iter().any(|t| text.contains(t)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let boundary_before =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.');
        let token = TOKENS.iter().find(|t| {
            text[i..].starts_with(**t)
                && bytes.get(i + t.len()).is_none_or(|c| !c.is_ascii_alphanumeric())
        });
        match token {
            Some(t) if boundary_before => {
                out.push_str(&text[copied..i]);
                out.push('"');
                out.push(NON_FINITE_MARK);
                out.push_str(t);
                out.push('"');
                i += t.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// A serde visitor that builds a [`Value`] and refuses a key repeated within one object.
mod json_tree {
    use std::cell::RefCell;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    /// Builds the tree below `path`; the first repeated key's dotted path goes to `duplicate`.
    pub(super) struct Tree<'a> {
        pub(super) path: String,
        pub(super) duplicate: &'a RefCell<Option<String>>,
    }

    impl Tree<'_> {
        fn child(&self, part: &str) -> Self {
            let path = if self.path.is_empty() {
                part.to_owned()
            } else {
                format!("{}.{part}", self.path)
            };
            Tree { path, duplicate: self.duplicate }
        }
    }

    impl<'de> DeserializeSeed<'de> for Tree<'_> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Tree<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            loop {
                let child = Tree {
                    path: format!("{}[{}]", self.path, items.len()),
                    duplicate: self.duplicate,
                };
                let Some(item) = seq.next_element_seed(child)? else { break };
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let child = self.child(&key);
                if out.contains_key(&key) {
                    let field = child.path.clone();
                    *self.duplicate.borrow_mut() = Some(field.clone());
                    return Err(de::Error::custom(format!("duplicate key `{field}`")));
                }
                let value = map.next_value_seed(child)?;
                out.insert(key, value);
            }
            Ok(Value::Object(out))
        }
    }
}

/// Writes `rig` as an AquaCal calibration file (see [`rig_to_aquacal_json`]), atomically.
pub fn save_rig(path: &Path, rig: &Rig) -> Result<(), WriteError> {
    write_bytes_atomic(path, rig_to_aquacal_json(rig).as_bytes())
}

/// The AquaCal JSON of `rig`: the full structure AquaCal's own loader requires, with
/// placeholder `board`, `diagnostics` and `metadata` (this crate does not calibrate). Numbers
/// are written in shortest round-trip form, so [`parse_rig`] gives back the same rig.
/// `is_fisheye` and `is_auxiliary` are written only when true, as AquaCal does; a camera
/// without distortion gets five zero coefficients.
pub fn rig_to_aquacal_json(rig: &Rig) -> String {
    let mut cameras = Map::new();
    let mut per_camera_error = Map::new();
    for cam in rig.cameras() {
        let k = &cam.intrinsics;
        let coeffs: Vec<f64> = match cam.distortion {
            Distortion::None => vec![0.0; 5],
            d => d.coeffs().to_vec(),
        };
        let mut intrinsics = json!({
            "K": [[k.fx, k.skew, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]],
            "dist_coeffs": coeffs,
            "image_size": [cam.image_size.width, cam.image_size.height],
        });
        if cam.is_fisheye() {
            intrinsics["is_fisheye"] = json!(true);
        }
        let r = cam.rotation.matrix();
        let rows: Vec<[f64; 3]> = (0..3).map(|i| [r[(i, 0)], r[(i, 1)], r[(i, 2)]]).collect();
        let t = &cam.translation;
        let mut record = json!({
            "name": cam.name,
            "intrinsics": intrinsics,
            "extrinsics": { "R": rows, "t": [t.x, t.y, t.z] },
            "water_z": rig.water_z(),
        });
        if cam.is_auxiliary {
            record["is_auxiliary"] = json!(true);
        } else {
            per_camera_error.insert(cam.name.clone(), json!(0.0));
        }
        cameras.insert(cam.name.clone(), record);
    }
    let doc = json!({
        "version": FORMAT_VERSION,
        "cameras": cameras,
        "interface": { "normal": [0.0, 0.0, -1.0], "n_air": rig.n_air(), "n_water": rig.n_water() },
        "board": {
            "squares_x": 12, "squares_y": 9, "square_size": 0.06, "marker_size": 0.045,
            "dictionary": "DICT_5X5_100",
        },
        "diagnostics": {
            "reprojection_error_rms": 0.0,
            "reprojection_error_per_camera": per_camera_error,
            "validation_3d_error_mean": 0.0,
            "validation_3d_error_std": 0.0,
        },
        "metadata": {
            "calibration_date": "1970-01-01",
            "software_version": concat!("aquamvs ", env!("CARGO_PKG_VERSION"), " (written, not calibrated)"),
            "config_hash": "",
            "num_frames_used": 0,
            "num_frames_holdout": 0,
        },
    });
    // `{:#}` is serde_json's pretty printer; it cannot fail on a `Value`.
    format!("{doc:#}\n")
}

/// Walks the JSON tree, building errors that name the file, camera and field.
struct Walker<'a> {
    path: &'a Path,
    camera: Option<&'a str>,
}

/// What a camera record yields before the rig-level checks.
struct ParsedCamera {
    calib: CameraCalib,
    water_z: f64,
}

impl<'a> Walker<'a> {
    fn rig(&self, root: &Value) -> Result<Rig, CalibError> {
        let root = self.object(root, "(top level)")?;
        match root.get("version") {
            Some(Value::String(v)) if v == FORMAT_VERSION => {}
            Some(other) => {
                return Err(CalibError::Version {
                    path: self.path.to_path_buf(),
                    found: other.to_string(),
                });
            }
            None => {
                return Err(
                    self.missing("version", "; AquaCal files start with \"version\": \"1.0\"")
                );
            }
        }

        let interface = self.object(self.get(root, "interface", "interface")?, "interface")?;
        let normal =
            self.vec3(self.get(interface, "normal", "interface.normal")?, "interface.normal")?;
        let nominal = Vector3::new(0.0, 0.0, -1.0);
        if !(normal - nominal).iter().all(|v| v.abs() <= NORMAL_TOL) {
            return Err(CalibError::TiltedInterface {
                path: self.path.to_path_buf(),
                normal: [normal.x, normal.y, normal.z],
            });
        }
        let n_air =
            self.number(self.get(interface, "n_air", "interface.n_air")?, "interface.n_air")?;
        let n_water =
            self.number(self.get(interface, "n_water", "interface.n_water")?, "interface.n_water")?;

        let cameras = self.object(self.get(root, "cameras", "cameras")?, "cameras")?;
        let mut parsed = Vec::with_capacity(cameras.len());
        // serde_json's map iterates in key order, so the reference water level is that of
        // the first camera by name.
        for (key, record) in cameras {
            let walker = Walker { path: self.path, camera: Some(key) };
            parsed.push(walker.camera_record(key, record)?);
        }
        let water_z = match parsed.first() {
            Some(first) => {
                for cam in &parsed[1..] {
                    // Both are finite: `number` rejects anything else.
                    if (cam.water_z - first.water_z).abs() > WATER_Z_TOL_M {
                        return Err(CalibError::WaterZMismatch {
                            path: self.path.to_path_buf(),
                            camera: cam.calib.name.clone(),
                            water_z: cam.water_z,
                            reference: first.calib.name.clone(),
                            reference_water_z: first.water_z,
                        });
                    }
                }
                first.water_z
            }
            // Rig::new reports the empty rig.
            None => 0.0,
        };
        let interface = WaterInterface::new(water_z, n_air, n_water);
        Rig::new(parsed.into_iter().map(|p| p.calib).collect(), interface)
            .map_err(|source| CalibError::Rig { path: self.path.to_path_buf(), source })
    }

    fn camera_record(&self, key: &str, record: &Value) -> Result<ParsedCamera, CalibError> {
        // The name becomes file names (depth maps, pictures): the same rule as the config's.
        if let Err(e) = crate::layout::check_camera_name(key) {
            return Err(self.invalid("cameras", e.to_string()));
        }
        let f = |rest: &str| format!("cameras.{key}.{rest}");
        let record = self.object(record, &format!("cameras.{key}"))?;
        if let Some(name) = record.get("name") {
            match name {
                Value::String(n) if n == key => {}
                Value::String(n) => {
                    return Err(self.invalid(
                        &f("name"),
                        format!("is `{n}` but the camera's key is `{key}`; they must be equal"),
                    ));
                }
                other => return Err(self.wrong_type(&f("name"), "a string", other)),
            }
        }

        let intr =
            self.object(self.get(record, "intrinsics", &f("intrinsics"))?, &f("intrinsics"))?;
        let k_field = f("intrinsics.K");
        let k = self.matrix3(self.get(intr, "K", &k_field)?, &k_field)?;
        if k[(1, 0)] != 0.0 || k[(2, 0)] != 0.0 || k[(2, 1)] != 0.0 || k[(2, 2)] != 1.0 {
            return Err(self.invalid(
                &k_field,
                "must have the pinhole form [[fx, s, cx], [0, fy, cy], [0, 0, 1]]".to_string(),
            ));
        }
        let intrinsics = Intrinsics::from_matrix(&k);
        if !(intrinsics.fx > 0.0 && intrinsics.fy > 0.0) {
            return Err(self.invalid(
                &k_field,
                format!(
                    "focal lengths must be positive (fx = {}, fy = {}); check the calibration",
                    intrinsics.fx, intrinsics.fy
                ),
            ));
        }
        let fisheye_field = f("intrinsics.is_fisheye");
        let is_fisheye = match intr.get("is_fisheye") {
            None => false,
            Some(v) => self.boolean(v, &fisheye_field)?,
        };
        let dist_field = f("intrinsics.dist_coeffs");
        let coeffs = self.number_list(self.get(intr, "dist_coeffs", &dist_field)?, &dist_field)?;
        let distortion = Distortion::from_coeffs(&coeffs, is_fisheye)
            .map_err(|e| self.invalid(&dist_field, e.to_string()))?;
        let size_field = f("intrinsics.image_size");
        let image_size =
            self.image_size(self.get(intr, "image_size", &size_field)?, &size_field)?;

        let extr =
            self.object(self.get(record, "extrinsics", &f("extrinsics"))?, &f("extrinsics"))?;
        let r_field = f("extrinsics.R");
        let r = self.matrix3(self.get(extr, "R", &r_field)?, &r_field)?;
        let (orthonormality_error, determinant) = rotation_defect(&r);
        if !(orthonormality_error <= ROTATION_TOL && (determinant - 1.0).abs() <= ROTATION_TOL) {
            return Err(self.invalid(
                &r_field,
                format!(
                    "not a rotation matrix (|RᵀR − I| = {orthonormality_error:.3e}, det = \
                     {determinant}); R must be orthonormal with determinant +1"
                ),
            ));
        }
        let t_field = f("extrinsics.t");
        let translation = self.vec3(self.get(extr, "t", &t_field)?, &t_field)?;

        let water_z = match (record.get("water_z"), record.get("interface_distance")) {
            (Some(v), _) => self.number(v, &f("water_z"))?,
            (None, Some(v)) => self.number(v, &f("interface_distance"))?,
            (None, None) => {
                return Err(self.missing(
                    &f("water_z"),
                    " (or its legacy name `interface_distance`): the Z coordinate of the water \
                     surface, which AquaCal writes for every camera",
                ));
            }
        };
        let is_auxiliary = match record.get("is_auxiliary") {
            None => false,
            Some(v) => self.boolean(v, &f("is_auxiliary"))?,
        };
        Ok(ParsedCamera {
            calib: CameraCalib {
                name: key.to_string(),
                intrinsics,
                distortion,
                image_size,
                rotation: to_rotation(r),
                translation,
                is_auxiliary,
            },
            water_z,
        })
    }

    fn get<'v>(
        &self,
        obj: &'v Map<String, Value>,
        key: &str,
        field: &str,
    ) -> Result<&'v Value, CalibError> {
        obj.get(key).ok_or_else(|| self.missing(field, ""))
    }

    fn object<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>, CalibError> {
        v.as_object().ok_or_else(|| self.wrong_type(field, "an object", v))
    }

    fn number(&self, v: &Value, field: &str) -> Result<f64, CalibError> {
        match v.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.wrong_type(field, "a finite number", v)),
        }
    }

    fn boolean(&self, v: &Value, field: &str) -> Result<bool, CalibError> {
        v.as_bool().ok_or_else(|| self.wrong_type(field, "true or false", v))
    }

    /// A list of numbers; nested single rows or columns (`[[a, b, …]]`, `[[a], [b], …]`, as
    /// NumPy writes OpenCV's vectors) are flattened.
    fn number_list(&self, v: &Value, field: &str) -> Result<Vec<f64>, CalibError> {
        const EXPECTED: &str = "a list of numbers";
        let arr = v.as_array().ok_or_else(|| self.wrong_type(field, EXPECTED, v))?;
        let flat: Vec<&Value> = match arr.as_slice() {
            [Value::Array(row)] => row.iter().collect(),
            items if items.iter().all(|x| x.as_array().is_some_and(|a| a.len() == 1)) => {
                items.iter().filter_map(|x| x.as_array().map(|a| &a[0])).collect()
            }
            items => items.iter().collect(),
        };
        flat.into_iter()
            .map(|x| {
                x.as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| self.wrong_type(field, EXPECTED, v))
            })
            .collect()
    }

    /// A 3-vector stored as `[x, y, z]` or `[[x], [y], [z]]`.
    fn vec3(&self, v: &Value, field: &str) -> Result<Vector3<f64>, CalibError> {
        match self.number_list(v, field) {
            Ok(list) if list.len() == 3 => Ok(Vector3::new(list[0], list[1], list[2])),
            _ => {
                Err(self.wrong_type(field, "3 finite numbers, as [x, y, z] or [[x], [y], [z]]", v))
            }
        }
    }

    fn matrix3(&self, v: &Value, field: &str) -> Result<Matrix3<f64>, CalibError> {
        const EXPECTED: &str = "a 3×3 matrix of finite numbers, as three rows [[a, b, c], …]";
        let rows = v
            .as_array()
            .filter(|r| r.len() == 3)
            .ok_or_else(|| self.wrong_type(field, EXPECTED, v))?;
        let mut m = Matrix3::zeros();
        for (i, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .filter(|r| r.len() == 3)
                .ok_or_else(|| self.wrong_type(field, EXPECTED, v))?;
            for (j, x) in row.iter().enumerate() {
                m[(i, j)] = x
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| self.wrong_type(field, EXPECTED, v))?;
            }
        }
        Ok(m)
    }

    fn image_size(&self, v: &Value, field: &str) -> Result<ImageSize, CalibError> {
        const EXPECTED: &str = "[width, height] as two positive integers";
        let side = |x: &Value| -> Option<usize> {
            match (x.as_u64(), x.as_f64()) {
                (Some(n), _) => usize::try_from(n).ok(),
                // Integral floats (e.g. 1600.0) are accepted.
                (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f < 1e9 => Some(f as usize),
                _ => None,
            }
        };
        match v.as_array().map(Vec::as_slice) {
            Some([w, h]) => match (side(w), side(h)) {
                (Some(w), Some(h)) if w > 0 && h > 0 => Ok(ImageSize::new(w, h)),
                _ => Err(self.wrong_type(field, EXPECTED, v)),
            },
            _ => Err(self.wrong_type(field, EXPECTED, v)),
        }
    }

    fn missing(&self, field: &str, hint: &'static str) -> CalibError {
        CalibError::Missing {
            path: self.path.to_path_buf(),
            camera: self.camera.map(str::to_string),
            field: field.to_string(),
            hint,
        }
    }

    fn wrong_type(&self, field: &str, expected: &'static str, found: &Value) -> CalibError {
        CalibError::WrongType {
            path: self.path.to_path_buf(),
            camera: self.camera.map(str::to_string),
            field: field.to_string(),
            expected,
            found: describe(found),
        }
    }

    fn invalid(&self, field: &str, reason: String) -> CalibError {
        CalibError::Invalid {
            path: self.path.to_path_buf(),
            camera: self.camera.map(str::to_string),
            field: field.to_string(),
            reason,
        }
    }
}

/// A short description of a JSON value for error messages (non-finite tokens as written).
fn describe(v: &Value) -> String {
    let text = describe_raw(v);
    if text.contains(NON_FINITE_MARK) {
        let mut t = text;
        for token in ["-Infinity", "Infinity", "NaN"] {
            t = t.replace(&format!("\"{NON_FINITE_MARK}{token}\""), token);
        }
        t
    } else {
        text
    }
}

fn describe_raw(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(a) => {
            let text = v.to_string();
            if text.len() <= 80 { text } else { format!("an array of {} elements", a.len()) }
        }
        Value::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "rig.json";

    /// The example of reference-numerics §1.1 (a ring camera and a fisheye centre camera).
    fn example() -> Value {
        json!({
          "version": "1.0",
          "cameras": {
            "cam_ring_01": {
              "name": "cam_ring_01",
              "intrinsics": {
                "K": [[1400.0, 0.0, 800.0], [0.0, 1400.0, 600.0], [0.0, 0.0, 1.0]],
                "dist_coeffs": [-0.05, 0.01, 0.0, 0.0, 0.0],
                "image_size": [1600, 1200]
              },
              "extrinsics": { "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "t": [-0.635, 0.0, 0.0] },
              "water_z": 0.978
            },
            "cam_center": {
              "name": "cam_center",
              "intrinsics": {
                "K": [[700.0, 0.0, 800.0], [0.0, 700.0, 600.0], [0.0, 0.0, 1.0]],
                "dist_coeffs": [0.02, -0.01, 0.003, -0.001],
                "image_size": [1600, 1200],
                "is_fisheye": true
              },
              "extrinsics": { "R": [[1,0,0],[0,1,0],[0,0,1]], "t": [0.0, 0.0, 0.0] },
              "water_z": 0.978,
              "is_auxiliary": true
            }
          },
          "interface": { "normal": [0.0, 0.0, -1.0], "n_air": 1.0, "n_water": 1.333 },
          "board": { "squares_x": 12, "squares_y": 9, "square_size": 0.06, "marker_size": 0.045, "dictionary": "DICT_5X5_100" },
          "diagnostics": { "reprojection_error_rms": 0.4, "reprojection_error_per_camera": {"cam_ring_01": 0.4},
                           "validation_3d_error_mean": 0.001, "validation_3d_error_std": 0.0005 },
          "metadata": { "calibration_date": "2025-01-01", "software_version": "1.4.2", "config_hash": "x",
                        "num_frames_used": 100, "num_frames_holdout": 20 }
        })
    }

    fn parse(v: &Value) -> Result<Rig, CalibError> {
        parse_rig(&v.to_string(), Path::new(FILE))
    }

    /// Parses `v` expecting an error; returns its message after checking it names the file.
    fn parse_err(v: &Value) -> (CalibError, String) {
        let err = parse(v).expect_err("the calibration must be rejected");
        let msg = err.to_string();
        assert!(msg.starts_with(FILE), "message does not name the file: {msg}");
        (err, msg)
    }

    /// A rotation about a tilted axis (as a ring camera looking inwards would have).
    fn tilted_rotation() -> Rotation3<f64> {
        Rotation3::from_euler_angles(0.35, -0.1, 1.2)
    }

    #[test]
    fn parses_the_reference_example() {
        let rig = parse(&example()).unwrap();
        assert_eq!(rig.ring_names(), ["cam_ring_01"]);
        assert_eq!(rig.auxiliary_names(), ["cam_center"]);
        assert_eq!(rig.water_z(), 0.978);
        assert_eq!((rig.n_air(), rig.n_water()), (1.0, 1.333));
        let ring = rig.camera("cam_ring_01").unwrap();
        assert_eq!(ring.intrinsics, Intrinsics::new(1400.0, 1400.0, 800.0, 600.0));
        assert_eq!(ring.distortion, Distortion::Brown5([-0.05, 0.01, 0.0, 0.0, 0.0]));
        assert_eq!(ring.image_size, ImageSize::new(1600, 1200));
        assert_eq!(rig.centre("cam_ring_01"), Some(Point3::new(0.635, 0.0, 0.0)));
        let centre = rig.camera("cam_center").unwrap();
        assert!(centre.is_fisheye() && centre.is_auxiliary);
        // Ring cameras come first.
        assert_eq!(rig.cameras()[0].name, "cam_ring_01");
        // The undistorted refractive camera of each.
        for name in ["cam_ring_01", "cam_center"] {
            let (map, cam) = rig.undistorted_camera(name).unwrap();
            assert_eq!(cam.intrinsics(), &map.k_new());
            assert_eq!(cam.water_z(), 0.978);
        }
        let err = rig.undistorted_camera("cam_nope").unwrap_err();
        assert!(err.to_string().contains("cam_ring_01, cam_center"), "{err}");
    }

    #[test]
    fn accepts_alternative_shapes() {
        let mut v = example();
        let cam = &mut v["cameras"]["cam_ring_01"];
        cam["extrinsics"]["t"] = json!([[-0.635], [0.0], [0.0]]);
        cam["intrinsics"]["dist_coeffs"] = json!([[-0.05, 0.01, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0]]);
        cam["intrinsics"]["image_size"] = json!([1600.0, 1200.0]);
        cam.as_object_mut().unwrap().remove("water_z");
        cam["interface_distance"] = json!(0.978);
        cam.as_object_mut().unwrap().remove("name");
        v["interface"]["normal"] = json!([[0.0], [0.0], [-1.0]]);
        let rig = parse(&v).unwrap();
        let ring = rig.camera("cam_ring_01").unwrap();
        assert_eq!(ring.translation, Vector3::new(-0.635, 0.0, 0.0));
        assert!(matches!(ring.distortion, Distortion::Brown8(_)));
        // Column-vector distortion.
        v["cameras"]["cam_ring_01"]["intrinsics"]["dist_coeffs"] =
            json!([[-0.05], [0.01], [0.0], [0.0], [0.0]]);
        assert!(matches!(parse(&v).unwrap().cameras()[0].distortion, Distortion::Brown5(_)));
    }

    #[test]
    fn ring_and_auxiliary_cameras_are_each_sorted() {
        let mut v = example();
        let ring = v["cameras"]["cam_ring_01"].clone();
        let aux = v["cameras"]["cam_center"].clone();
        let cams = v["cameras"].as_object_mut().unwrap();
        for (name, template) in
            [("b_ring", &ring), ("a_ring", &ring), ("z_aux", &aux), ("c_aux", &aux)]
        {
            let mut c = template.clone();
            c["name"] = json!(name);
            cams.insert(name.to_string(), c);
        }
        let rig = parse(&v).unwrap();
        assert_eq!(rig.ring_names(), ["a_ring", "b_ring", "cam_ring_01"]);
        assert_eq!(rig.auxiliary_names(), ["c_aux", "cam_center", "z_aux"]);
        let order: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, ["a_ring", "b_ring", "cam_ring_01", "c_aux", "cam_center", "z_aux"]);
    }

    #[test]
    fn round_trips_through_json() {
        let rot = tilted_rotation();
        let centre = Vector3::new(0.4, -0.3, 0.02);
        let cams = vec![
            CameraCalib {
                name: "cam2".into(),
                intrinsics: Intrinsics { fx: 1401.25, fy: 1399.5, cx: 801.1, cy: 598.7, skew: 0.0 },
                distortion: Distortion::Brown8([-0.1, 0.02, 1e-4, -2e-4, 0.003, 0.01, 0.0, 1e-3]),
                image_size: ImageSize::new(1600, 1200),
                rotation: rot,
                translation: -(rot * centre),
                is_auxiliary: false,
            },
            CameraCalib {
                name: "cam1".into(),
                intrinsics: Intrinsics::new(1000.0, 1000.0, 640.0, 480.0),
                distortion: Distortion::None,
                image_size: ImageSize::new(1280, 960),
                rotation: Rotation3::identity(),
                translation: Vector3::new(0.1, 0.0, 0.0),
                is_auxiliary: false,
            },
            CameraCalib {
                name: "centre".into(),
                intrinsics: Intrinsics::new(700.0, 700.0, 800.0, 600.0),
                distortion: Distortion::Fisheye4([0.02, -0.01, 0.003, -0.001]),
                image_size: ImageSize::new(1600, 1200),
                rotation: Rotation3::identity(),
                translation: Vector3::zeros(),
                is_auxiliary: true,
            },
        ];
        let rig = Rig::new(cams, WaterInterface::new(0.978, 1.0, 1.333)).unwrap();
        let text = rig_to_aquacal_json(&rig);
        let back = parse_rig(&text, Path::new("w.json")).unwrap();
        // `None` is written as five zeros (AquaCal needs 5 or 8 coefficients).
        let mut want = rig.clone();
        want.cameras[0].distortion = Distortion::Brown5([0.0; 5]);
        assert_eq!(back, want);
        // The structure AquaCal's loader requires is present.
        let v: Value = serde_json::from_str(&text).unwrap();
        for key in ["board", "diagnostics", "metadata"] {
            assert!(v[key].is_object(), "{key}");
        }
        assert_eq!(v["cameras"]["cam1"]["name"], "cam1");
        assert!(v["cameras"]["cam1"].get("is_auxiliary").is_none());
        assert_eq!(v["cameras"]["centre"]["intrinsics"]["is_fisheye"], true);
        assert_eq!(v["metadata"]["num_frames_used"], 0);
        // And the file writer goes through the atomic writer.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.json");
        save_rig(&path, &rig).unwrap();
        assert_eq!(load_rig(&path).unwrap(), want);
    }

    #[test]
    fn io_and_syntax_errors_name_the_file() {
        let err = load_rig(Path::new("/nonexistent/calib.json")).unwrap_err();
        assert!(matches!(err, CalibError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/calib.json"), "{err}");
        let err = parse_rig("{\n  \"version\": \"1.0\",,\n}", Path::new(FILE)).unwrap_err();
        assert!(matches!(err, CalibError::Syntax { line: 2, .. }), "{err:?}");
        assert!(err.to_string().starts_with("rig.json:2:"), "{err}");
        let (_, msg) = parse_err(&json!([1, 2]));
        assert!(msg.contains("`(top level)` must be an object"), "{msg}");
    }

    /// `v` pretty-printed with `"@@NAME@@"` strings replaced by bare tokens, as Python's
    /// `json.dump` writes non-finite floats.
    fn with_bare_tokens(v: &Value) -> String {
        let mut text = format!("{v:#}");
        for t in ["NaN", "Infinity", "-Infinity"] {
            text = text.replace(&format!("\"@@{t}@@\""), t);
        }
        text
    }

    #[test]
    fn aquacal_non_finite_diagnostics_load() {
        // AquaCal 2.1.0 without held-out frames: NaN and Infinity in the diagnostics.
        let mut v = example();
        v["diagnostics"]["reprojection_error_rms"] = json!("@@NaN@@");
        v["diagnostics"]["validation_3d_error_mean"] = json!("@@Infinity@@");
        v["diagnostics"]["validation_3d_error_std"] = json!("@@-Infinity@@");
        v["diagnostics"]["reprojection_error_per_camera"]["cam_ring_01"] = json!(["@@NaN@@"]);
        // Tokens inside strings are text, not numbers.
        v["metadata"]["config_hash"] = json!("NaN Infinity \" NaN");
        let text = with_bare_tokens(&v);
        assert!(text.contains(": NaN,") && text.contains("-Infinity"), "{text}");
        let rig = parse_rig(&text, Path::new(FILE)).unwrap();
        assert_eq!(rig.cameras().len(), 2);
        // Equal values with or without the tokens.
        assert_eq!(rig_to_aquacal_json(&rig), rig_to_aquacal_json(&parse(&example()).unwrap()));
    }

    #[test]
    fn non_finite_in_a_used_field_names_the_field() {
        for (token, field) in [
            ("NaN", "cameras.cam_ring_01.water_z"),
            ("Infinity", "interface.n_water"),
            ("-Infinity", "cameras.cam_ring_01.extrinsics.t"),
            ("NaN", "cameras.cam_center.intrinsics.K"),
        ] {
            let mut v = example();
            let marked = json!(format!("@@{token}@@"));
            match field {
                "cameras.cam_ring_01.water_z" => v["cameras"]["cam_ring_01"]["water_z"] = marked,
                "interface.n_water" => v["interface"]["n_water"] = marked,
                "cameras.cam_ring_01.extrinsics.t" => {
                    v["cameras"]["cam_ring_01"]["extrinsics"]["t"][1] = marked
                }
                _ => v["cameras"]["cam_center"]["intrinsics"]["K"][0][0] = marked,
            }
            let err = parse_rig(&with_bare_tokens(&v), Path::new(FILE)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(FILE), "{msg}");
            assert!(msg.contains(&format!("`{field}`")), "{field}: {msg}");
            assert!(msg.contains("finite") && msg.contains(token), "{field}: {msg}");
            assert!(!msg.contains(NON_FINITE_MARK), "{msg:?}");
        }
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let text = format!("\u{feff}{:#}", example());
        assert_eq!(parse_rig(&text, Path::new(FILE)).unwrap().cameras().len(), 2);
    }

    #[test]
    fn duplicate_keys_are_refused_by_name() {
        // A second copy of a camera (serde_json alone would keep the last one silently).
        let text = format!("{:#}", example());
        let dup = text.replacen("\"cam_center\": {", "\"cam_ring_01\": {", 1);
        assert_eq!(dup.matches("\"cam_ring_01\": {").count(), 2);
        let err = parse_rig(&dup, Path::new(FILE)).unwrap_err();
        assert!(matches!(err, CalibError::DuplicateKey { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{FILE}:")), "{msg}");
        assert!(msg.contains("`cameras.cam_ring_01` appears more than once"), "{msg}");
        // Any level: a field repeated inside a camera record.
        let dup = text.replacen("\"water_z\": 0.978", "\"water_z\": 0.978, \"water_z\": 0.5", 1);
        let msg = parse_rig(&dup, Path::new(FILE)).unwrap_err().to_string();
        assert!(msg.contains(".water_z` appears more than once"), "{msg}");
        // Not valid JSON stays a syntax error.
        let err = parse_rig("{\"version\": NaNa}", Path::new(FILE)).unwrap_err();
        assert!(matches!(err, CalibError::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn version_is_checked() {
        let mut v = example();
        v["version"] = json!("2.0");
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::Version { .. }));
        assert!(msg.contains("\"2.0\"") && msg.contains("\"1.0\""), "{msg}");
        v["version"] = json!(1.0);
        assert!(matches!(parse_err(&v).0, CalibError::Version { .. }));
        v.as_object_mut().unwrap().remove("version");
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::Missing { .. }) && msg.contains("`version`"), "{msg}");
    }

    #[test]
    fn missing_fields_name_camera_and_field() {
        for (path, field) in [
            (&["cameras", "cam_ring_01", "intrinsics"][..], "cameras.cam_ring_01.intrinsics"),
            (
                &["cameras", "cam_ring_01", "intrinsics", "K"][..],
                "cameras.cam_ring_01.intrinsics.K",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "dist_coeffs"][..],
                "cameras.cam_ring_01.intrinsics.dist_coeffs",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "image_size"][..],
                "cameras.cam_ring_01.intrinsics.image_size",
            ),
            (
                &["cameras", "cam_ring_01", "extrinsics", "R"][..],
                "cameras.cam_ring_01.extrinsics.R",
            ),
            (&["cameras", "cam_center", "extrinsics", "t"][..], "cameras.cam_center.extrinsics.t"),
            (&["cameras", "cam_center", "water_z"][..], "cameras.cam_center.water_z"),
            (&["interface", "n_water"][..], "interface.n_water"),
            (&["interface"][..], "interface"),
            (&["cameras"][..], "cameras"),
        ] {
            let mut v = example();
            let (last, parents) = path.split_last().unwrap();
            let mut node = &mut v;
            for p in parents {
                node = &mut node[*p];
            }
            node.as_object_mut().unwrap().remove(*last);
            let (err, msg) = parse_err(&v);
            assert!(msg.contains(&format!("missing field `{field}`")), "{msg}");
            if let CalibError::Missing { camera, .. } = &err {
                assert_eq!(
                    camera.as_deref(),
                    path.get(1).filter(|_| path[0] == "cameras").copied()
                );
            } else {
                panic!("{err:?}");
            }
        }
        let mut v = example();
        v["cameras"]["cam_center"].as_object_mut().unwrap().remove("water_z");
        let (_, msg) = parse_err(&v);
        assert!(msg.contains("interface_distance"), "{msg}");
    }

    #[test]
    fn wrong_types_and_shapes() {
        for (path, value, field, expect) in [
            (
                &["cameras", "cam_ring_01", "intrinsics", "K"][..],
                json!([[1, 0], [0, 1]]),
                "cameras.cam_ring_01.intrinsics.K",
                "3×3",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "K"][..],
                json!("K"),
                "cameras.cam_ring_01.intrinsics.K",
                "3×3",
            ),
            (
                &["cameras", "cam_ring_01", "extrinsics", "t"][..],
                json!([1, 2]),
                "cameras.cam_ring_01.extrinsics.t",
                "[x, y, z]",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "image_size"][..],
                json!([1600]),
                "cameras.cam_ring_01.intrinsics.image_size",
                "[width, height]",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "image_size"][..],
                json!([0, 1200]),
                "cameras.cam_ring_01.intrinsics.image_size",
                "positive",
            ),
            (
                &["cameras", "cam_ring_01", "intrinsics", "image_size"][..],
                json!([-5, 1200]),
                "cameras.cam_ring_01.intrinsics.image_size",
                "positive",
            ),
            (
                &["cameras", "cam_ring_01", "water_z"][..],
                json!("0.978"),
                "cameras.cam_ring_01.water_z",
                "finite number",
            ),
            (
                &["cameras", "cam_center", "is_auxiliary"][..],
                json!(1),
                "cameras.cam_center.is_auxiliary",
                "true or false",
            ),
            (
                &["cameras", "cam_center", "intrinsics", "dist_coeffs"][..],
                json!(["a"]),
                "cameras.cam_center.intrinsics.dist_coeffs",
                "list of numbers",
            ),
            (&["interface", "n_air"][..], json!(null), "interface.n_air", "finite number"),
            (
                &["cameras", "cam_center", "name"][..],
                json!(3),
                "cameras.cam_center.name",
                "a string",
            ),
        ] {
            let mut v = example();
            let mut node = &mut v;
            for p in path {
                node = &mut node[*p];
            }
            *node = value;
            let (err, msg) = parse_err(&v);
            assert!(matches!(err, CalibError::WrongType { .. }), "{err:?}");
            assert!(msg.contains(&format!("field `{field}`")) && msg.contains(expect), "{msg}");
        }
    }

    #[test]
    fn invalid_values() {
        type Case = (fn(&mut Value), &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                |v| v["cameras"]["cam_ring_01"]["intrinsics"]["K"][0][0] = json!(-1400.0),
                "cameras.cam_ring_01.intrinsics.K",
                "focal lengths must be positive",
            ),
            (
                |v| v["cameras"]["cam_ring_01"]["intrinsics"]["K"][2][2] = json!(2.0),
                "cameras.cam_ring_01.intrinsics.K",
                "pinhole form",
            ),
            (
                |v| {
                    v["cameras"]["cam_ring_01"]["intrinsics"]["dist_coeffs"] =
                        json!([0.1, 0.0, 0.0])
                },
                "cameras.cam_ring_01.intrinsics.dist_coeffs",
                "expected 5",
            ),
            (
                |v| {
                    v["cameras"]["cam_center"]["intrinsics"]["dist_coeffs"] =
                        json!([0.1, 0.0, 0.0, 0.0, 0.0])
                },
                "cameras.cam_center.intrinsics.dist_coeffs",
                "fisheye",
            ),
            (
                |v| {
                    v["cameras"]["cam_ring_01"]["extrinsics"]["R"] =
                        json!([[1, 0, 0], [0, 1, 0], [0, 0, -1]])
                },
                "cameras.cam_ring_01.extrinsics.R",
                "determinant +1",
            ),
            (
                |v| {
                    v["cameras"]["cam_ring_01"]["extrinsics"]["R"] =
                        json!([[1.01, 0, 0], [0, 1, 0], [0, 0, 1]])
                },
                "cameras.cam_ring_01.extrinsics.R",
                "orthonormal",
            ),
            (
                |v| v["cameras"]["cam_center"]["name"] = json!("other"),
                "cameras.cam_center.name",
                "must be equal",
            ),
        ];
        for (edit, field, expect) in cases {
            let mut v = example();
            edit(&mut v);
            let (err, msg) = parse_err(&v);
            assert!(matches!(err, CalibError::Invalid { .. }), "{err:?}");
            assert!(msg.contains(&format!("field `{field}`")) && msg.contains(expect), "{msg}");
        }
    }

    #[test]
    fn water_surface_checks() {
        // Disagreeing water levels.
        let mut v = example();
        v["cameras"]["cam_ring_01"]["water_z"] = json!(0.98);
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::WaterZMismatch { .. }), "{err:?}");
        assert!(msg.contains("cameras.cam_ring_01.water_z") && msg.contains("cam_center"), "{msg}");
        // Within tolerance is accepted; the first camera by name sets the level.
        v["cameras"]["cam_ring_01"]["water_z"] = json!(0.9780005);
        assert_eq!(parse(&v).unwrap().water_z(), 0.978);
        // A tilted interface.
        let mut v = example();
        v["interface"]["normal"] = json!([0.01, 0.0, -0.99995]);
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::TiltedInterface { .. }), "{err:?}");
        assert!(msg.contains("interface.normal") && msg.contains("flat horizontal"), "{msg}");
        // A camera below the water: centre at Z = 1.2 > 0.978.
        let mut v = example();
        v["cameras"]["cam_ring_01"]["extrinsics"]["t"] = json!([-0.635, 0.0, -1.2]);
        let (err, msg) = parse_err(&v);
        assert!(
            matches!(&err, CalibError::Rig { source: RigError::CameraNotAboveWater { camera, .. }, .. } if camera == "cam_ring_01"),
            "{err:?}"
        );
        assert!(msg.contains("not above the water"), "{msg}");
        // Indices that would make light bend away from the normal.
        let mut v = example();
        v["interface"]["n_air"] = json!(1.5);
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::Rig { source: RigError::InvalidInterface { .. }, .. }));
        assert!(msg.contains("field `interface`"), "{msg}");
    }

    #[test]
    fn rig_level_errors() {
        // No camera at all.
        let mut v = example();
        v["cameras"] = json!({});
        assert!(matches!(parse_err(&v).0, CalibError::Rig { source: RigError::NoCameras, .. }));
        // Only auxiliary cameras.
        let mut v = example();
        v["cameras"].as_object_mut().unwrap().remove("cam_ring_01");
        let (err, msg) = parse_err(&v);
        assert!(matches!(err, CalibError::Rig { source: RigError::NoRingCamera, .. }));
        assert!(msg.contains("ring camera"), "{msg}");
        // A fisheye whose image spans more than 180° cannot be undistorted to a pinhole.
        let mut v = example();
        v["cameras"]["cam_center"]["intrinsics"]["K"][0][0] = json!(300.0);
        v["cameras"]["cam_center"]["intrinsics"]["K"][1][1] = json!(300.0);
        v["cameras"]["cam_center"]["intrinsics"]["dist_coeffs"] = json!([0.0, 0.0, 0.0, 0.0]);
        let (err, msg) = parse_err(&v);
        assert!(
            matches!(err, CalibError::Rig { source: RigError::Undistortion { .. }, .. }),
            "{err:?}"
        );
        assert!(msg.contains("cameras.cam_center.intrinsics.dist_coeffs"), "{msg}");
    }

    #[test]
    fn programmatic_rigs_are_validated() {
        let base = CameraCalib {
            name: "a".into(),
            intrinsics: Intrinsics::new(1000.0, 1000.0, 500.0, 400.0),
            distortion: Distortion::None,
            image_size: ImageSize::new(1000, 800),
            rotation: Rotation3::identity(),
            translation: Vector3::zeros(),
            is_auxiliary: false,
        };
        let water = WaterInterface::new(1.0, 1.0, 1.333);
        assert!(Rig::new(vec![base.clone()], water).is_ok());
        assert_eq!(
            Rig::new(vec![base.clone(), base.clone()], water),
            Err(RigError::DuplicateCamera("a".into()))
        );
        let mut bad = base.clone();
        bad.rotation = Rotation3::from_matrix_unchecked(Matrix3::identity() * 2.0);
        assert!(matches!(Rig::new(vec![bad], water), Err(RigError::NotARotation { .. })));
        let mut bad = base.clone();
        bad.intrinsics.fy = 0.0;
        let err = Rig::new(vec![bad], water).unwrap_err();
        assert!(err.to_string().contains("field `cameras.a.intrinsics.K`"), "{err}");
        let mut bad = base.clone();
        bad.image_size = ImageSize::new(0, 10);
        assert!(matches!(Rig::new(vec![bad], water), Err(RigError::EmptyImage { .. })));
        let mut bad = base.clone();
        bad.translation.x = f64::INFINITY;
        assert!(matches!(
            Rig::new(vec![bad], water),
            Err(RigError::NonFinite { field: "extrinsics.t", .. })
        ));
        // A refractive camera with invalid caller-supplied intrinsics.
        let rig = Rig::new(vec![base], water).unwrap();
        assert!(matches!(
            rig.refractive_camera("a", Intrinsics::new(-1.0, 1.0, 0.0, 0.0)),
            Err(RigError::Camera { .. })
        ));
    }

    #[test]
    fn slightly_non_orthonormal_rotations_are_snapped() {
        // R printed with 7 significant digits: accepted and snapped to a true rotation.
        let r = tilted_rotation().into_inner().map(|x| (x * 1e7).round() / 1e7);
        let mut v = example();
        let rows: Vec<Vec<f64>> = (0..3).map(|i| (0..3).map(|j| r[(i, j)]).collect()).collect();
        v["cameras"]["cam_ring_01"]["extrinsics"]["R"] = json!(rows);
        v["cameras"]["cam_ring_01"]["extrinsics"]["t"] = json!([0.0, 0.0, 0.0]);
        let rig = parse(&v).unwrap();
        let m = rig.camera("cam_ring_01").unwrap().rotation.into_inner();
        assert!((m.transpose() * m - Matrix3::identity()).abs().max() < 1e-15);
        assert!((m - r).abs().max() < 1e-7);
    }
}
