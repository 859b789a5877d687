//! Synthetic camera rigs shaped like the real ones: a ring of cameras in air, each looking down
//! and tilted toward the centre, plus one auxiliary camera in the centre looking straight down.
//!
//! The world frame is AquaCal's: the centre camera sits at the origin with `R = I`, +Z points
//! down, and the water surface is the plane `Z = water_z`.

use nalgebra::{Matrix3, Rotation3, Vector3};

use crate::calib::{CameraCalib, Rig, RigError};
use crate::geom::camera::{Distortion, Intrinsics};
use crate::geom::refraction::WaterInterface;
use crate::imgproc::ImageSize;

use super::rng::SplitMix;

/// The built-in rig shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RigPreset {
    /// The reference dataset's rig: 12 ring cameras on a 0.635 m radius plus a fisheye centre
    /// camera, 1600×1200, water 0.978 m below the cameras.
    Tank,
    /// A small rig for tests: 3 ring cameras plus a centre camera at 320×240.
    Tiny,
}

/// A rig name that is not one of [`RigPreset`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown rig `{0}`; expected tank or tiny")]
pub struct UnknownRig(pub String);

impl std::str::FromStr for RigPreset {
    type Err = UnknownRig;
    fn from_str(s: &str) -> Result<Self, UnknownRig> {
        match s {
            "tank" => Ok(Self::Tank),
            "tiny" => Ok(Self::Tiny),
            _ => Err(UnknownRig(s.to_owned())),
        }
    }
}

impl RigPreset {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tank => "tank",
            Self::Tiny => "tiny",
        }
    }
}

/// Every parameter of a synthetic rig; start from [`RigParams::preset`] and override.
#[derive(Clone, Debug, PartialEq)]
pub struct RigParams {
    /// Number of ring cameras.
    pub n_ring: usize,
    /// Ring radius (m).
    pub radius: f64,
    /// Tilt of the ring cameras toward the centre (degrees from straight down).
    pub tilt_deg: f64,
    /// World Z of the cameras (m; 0 puts them level with the centre camera).
    pub camera_z: f64,
    /// Image size of every camera.
    pub size: ImageSize,
    /// Focal length of the ring cameras (pixels).
    pub focal_px: f64,
    /// Brown-Conrady `[k1, k2, p1, p2, k3]` of the ring cameras.
    pub distortion: [f64; 5],
    /// Add a centre camera (auxiliary, looking straight down).
    pub centre_camera: bool,
    /// Make the centre camera a Kannala-Brandt fisheye.
    pub fisheye_centre: bool,
    /// Focal length of the centre camera (pixels).
    pub centre_focal_px: f64,
    /// World Z of the water surface (m).
    pub water_z: f64,
    /// Refractive index of the water.
    pub n_water: f64,
    /// Random perturbation of camera placement (m and degrees), as a real rig's build has.
    pub jitter: f64,
    /// Seed of the perturbation.
    pub seed: u64,
}

impl RigParams {
    /// The parameters of a preset.
    pub fn preset(preset: RigPreset) -> Self {
        match preset {
            RigPreset::Tank => Self {
                n_ring: 12,
                radius: 0.635,
                // Aims the optical axes at the centre of a bottom about 0.53 m under the water.
                tilt_deg: 25.0,
                camera_z: 0.0,
                size: ImageSize::new(1600, 1200),
                focal_px: 1400.0,
                distortion: [-0.05, 0.01, 0.0005, -0.0003, 0.0],
                centre_camera: true,
                fisheye_centre: true,
                centre_focal_px: 760.0,
                water_z: 0.978,
                n_water: 1.333,
                jitter: 1.0,
                seed: 1,
            },
            RigPreset::Tiny => Self {
                n_ring: 3,
                radius: 0.2,
                tilt_deg: 14.0,
                camera_z: 0.0,
                size: ImageSize::new(320, 240),
                focal_px: 300.0,
                distortion: [-0.02, 0.0, 0.0, 0.0, 0.0],
                centre_camera: true,
                fisheye_centre: false,
                centre_focal_px: 300.0,
                water_z: 0.5,
                n_water: 1.333,
                jitter: 0.5,
                seed: 1,
            },
        }
    }

    /// The depth (world Z) of the bottom this rig is built to look at.
    pub fn bottom_z(&self) -> f64 {
        self.water_z + 0.53 * (self.water_z / 0.978).clamp(0.75, 1.0)
    }

    /// Half-width (m) of the area of the bottom the rig sees well; features are placed there.
    pub fn extent(&self) -> f64 {
        (self.radius * 0.8).max(0.25)
    }

    /// Builds the rig (cameras named `cam00`, `cam01`, … and `center`).
    pub fn build(&self) -> Result<Rig, RigError> {
        let mut rng = SplitMix::new(self.seed ^ 0xCA3E_5A11);
        let mut jitter = |scale: f64| scale * self.jitter * rng.range(-1.0, 1.0);
        let (w, h) = (self.size.width as f64, self.size.height as f64);
        let principal = |f: f64, jx: f64, jy: f64| {
            Intrinsics::new(f, f, (w - 1.0) / 2.0 + jx, (h - 1.0) / 2.0 + jy)
        };
        let mut cameras = Vec::new();
        for i in 0..self.n_ring {
            let phi = std::f64::consts::TAU * i as f64 / self.n_ring as f64 + jitter(0.01);
            let r = self.radius + jitter(0.005);
            let centre = Vector3::new(r * phi.cos(), r * phi.sin(), self.camera_z + jitter(0.01));
            let tilt = (self.tilt_deg + jitter(1.0)).to_radians();
            let roll = jitter(1.0).to_radians();
            let rotation = looking_toward_centre(phi, tilt, roll);
            cameras.push(CameraCalib {
                name: format!("cam{i:02}"),
                intrinsics: principal(
                    self.focal_px * (1.0 + jitter(0.005)),
                    jitter(3.0),
                    jitter(3.0),
                ),
                distortion: Distortion::Brown5(self.distortion),
                image_size: self.size,
                rotation,
                translation: -(rotation * centre),
                is_auxiliary: false,
            });
        }
        if self.centre_camera {
            let distortion = if self.fisheye_centre {
                Distortion::Fisheye4([0.02, -0.01, 0.003, -0.001])
            } else {
                Distortion::Brown5(self.distortion)
            };
            cameras.push(CameraCalib {
                name: "center".into(),
                intrinsics: principal(self.centre_focal_px, 0.0, 0.0),
                distortion,
                image_size: self.size,
                rotation: Rotation3::identity(),
                translation: Vector3::zeros(),
                is_auxiliary: true,
            });
        }
        Rig::new(cameras, WaterInterface::new(self.water_z, 1.0, self.n_water))
    }
}

/// World → camera rotation of a camera at azimuth `phi` on the ring, tilted by `tilt` toward
/// the centre and rolled by `roll` about its optical axis.
fn looking_toward_centre(phi: f64, tilt: f64, roll: f64) -> Rotation3<f64> {
    let (sp, cp) = phi.sin_cos();
    let (st, ct) = tilt.sin_cos();
    // Optical axis: straight down (+Z) leaned toward the centre.
    let z = Vector3::new(-cp * st, -sp * st, ct);
    // Image x runs along the ring (horizontal and orthogonal to the axis), y completes the frame.
    let x0 = Vector3::new(-sp, cp, 0.0);
    let y0 = z.cross(&x0);
    let (sr, cr) = roll.sin_cos();
    let x = x0 * cr + y0 * sr;
    let y = z.cross(&x);
    // Rows of R are the camera axes in world coordinates; orthonormal by construction.
    Rotation3::from_matrix_unchecked(Matrix3::from_rows(&[
        x.transpose(),
        y.transpose(),
        z.transpose(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tank_rig_matches_the_reference_dataset() {
        let rig = RigParams::preset(RigPreset::Tank).build().unwrap();
        assert_eq!(rig.ring_names().len(), 12);
        assert_eq!(rig.auxiliary_names(), ["center"]);
        assert_eq!(rig.water_z(), 0.978);
        for name in rig.ring_names() {
            let c = rig.centre(name).unwrap();
            let r = c.x.hypot(c.y);
            assert!((r - 0.635).abs() < 0.01, "{name}: {r}");
            assert!(c.z.abs() < 0.02);
        }
        let centre = rig.camera("center").unwrap();
        assert!(centre.is_fisheye() && centre.is_auxiliary);
    }

    #[test]
    fn ring_cameras_look_at_the_middle_of_the_bottom() {
        let params = RigParams::preset(RigPreset::Tank);
        let rig = params.build().unwrap();
        for name in rig.ring_names() {
            let cam = rig.camera(name).unwrap();
            let refr = cam.refractive_camera(cam.intrinsics, rig.interface()).unwrap();
            let k = cam.intrinsics;
            let ray = refr.cast_ray(k.cx, k.cy).unwrap();
            let t = (params.bottom_z() - ray.origin.z) / ray.dir.z;
            let hit = ray.point_at(t);
            assert!(hit.x.hypot(hit.y) < 0.12, "{name} looks at {hit}");
        }
    }

    #[test]
    fn rotations_are_proper() {
        for (phi, tilt, roll) in [(0.3, 0.4, 0.01), (2.0, 0.1, -0.02)] {
            let r = looking_toward_centre(phi, tilt, roll);
            let m = r.matrix();
            assert!((m * m.transpose() - Matrix3::identity()).norm() < 1e-12);
            assert!((m.determinant() - 1.0).abs() < 1e-12);
        }
    }
}
