//! End-to-end use of the geometry layer through the public API: a rig written in AquaCal's
//! format, loaded back, undistorted, and used to cast, project and triangulate.

use aquamvs::calib::{CameraCalib, Rig, load_rig, save_rig};
use aquamvs::geom::{Distortion, Intrinsics, WaterInterface, ray_depth, triangulate_rays};
use aquamvs::imgproc::{ImageSize, RgbImage};
use aquamvs::io::images::{read_rgb, write_png_rgb};
use nalgebra::{Point3, Rotation3, Vector3};

/// Three ring cameras around a centre fisheye, 0.978 m above the water, as in the tank rig
/// (scaled down to 320×240 images).
fn tank_rig() -> Rig {
    let water = WaterInterface::new(0.978, 1.0, 1.333);
    let mut cameras: Vec<CameraCalib> = (0..3)
        .map(|i| {
            let a = f64::from(i) * 120f64.to_radians();
            let centre = Vector3::new(0.635 * a.cos(), 0.635 * a.sin(), 0.0);
            let cam_to_world = Rotation3::from_axis_angle(&Vector3::z_axis(), a)
                * Rotation3::from_axis_angle(&Vector3::y_axis(), -15f64.to_radians());
            let rotation = cam_to_world.inverse();
            CameraCalib {
                name: format!("ring{i}"),
                intrinsics: Intrinsics::new(280.0, 280.0, 160.0, 120.0),
                distortion: Distortion::Brown5([-0.12, 0.03, 0.0005, -0.0004, 0.0]),
                image_size: ImageSize::new(320, 240),
                rotation,
                translation: -(rotation * centre),
                is_auxiliary: false,
            }
        })
        .collect();
    cameras.push(CameraCalib {
        name: "centre".into(),
        intrinsics: Intrinsics::new(140.0, 140.0, 160.0, 120.0),
        distortion: Distortion::Fisheye4([0.02, -0.01, 0.003, -0.001]),
        image_size: ImageSize::new(320, 240),
        rotation: Rotation3::identity(),
        translation: Vector3::zeros(),
        is_auxiliary: true,
    });
    Rig::new(cameras, water).expect("valid rig")
}

#[test]
fn rig_file_round_trip_and_triangulation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calibration.json");
    let rig = tank_rig();
    save_rig(&path, &rig).unwrap();
    let loaded = load_rig(&path).unwrap();
    assert_eq!(loaded, rig);
    assert_eq!(loaded.ring_names(), ["ring0", "ring1", "ring2"]);
    assert_eq!(loaded.auxiliary_names(), ["centre"]);

    // A point on the sand, seen by every camera in its undistorted geometry.
    let target = Point3::new(0.1, -0.05, 1.5);
    let mut rays = Vec::new();
    for name in ["ring0", "ring1", "ring2", "centre"] {
        let (map, cam) = loaded.undistorted_camera(name).unwrap();
        assert_eq!(cam.intrinsics(), &map.k_new());
        let pixel = cam.project_in_image(&target).unwrap();
        let ray = cam.cast_ray(pixel.x, pixel.y).unwrap();
        assert!((ray.point_at(ray_depth(&ray, &target)) - target).norm() < 1e-9);
        rays.push(ray);
    }
    let p = triangulate_rays(&rays).unwrap();
    assert!((p - target).norm() < 1e-9, "{p}");
}

#[test]
fn undistorting_a_frame_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let frame_path = dir.path().join("ring0.png");
    let size = ImageSize::new(320, 240);
    let frame = RgbImage::from_fn(size, |x, y| [(x % 256) as u8, (y % 256) as u8, 128]);
    write_png_rgb(&frame_path, &frame).unwrap();

    let rig = tank_rig();
    let (map, _) = rig.undistorted_camera("ring0").unwrap();
    let frame = read_rgb(&frame_path).unwrap();
    let undistorted = map.remap_rgb(&frame).unwrap();
    assert_eq!(undistorted.size(), size);
    // The centre barely moves under mild distortion; the blue channel is constant inside.
    let [_, _, b] = undistorted.get(160, 120);
    assert_eq!(b, 128);
    // A frame of the wrong size is an error, not a panic.
    assert!(map.remap_rgb(&RgbImage::from_elem(ImageSize::new(10, 10), 0)).is_err());
}
