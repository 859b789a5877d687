//! Renders of the fused cloud and the mesh from three viewpoints fitted to the scene
//! (`fused_{top,oblique,side}.png`, `mesh_{top,oblique,side}.png`), with a title, the
//! orientation of the axes and, in the orthographic views, a scale bar.

use nalgebra::Point3;
use rayon::prelude::*;

use super::colorbar::nice_ticks;
use super::colormap::ValueRange;
use super::draw::{self, Anchor, BLACK};
use super::maps::text_scale;
use super::raster::{
    PointSet, Projection, RENDER_SIZE, ViewCamera, Viewpoint, point_spacing, render_mesh,
    render_points, splat_radius_px,
};
use crate::cloud::PointCloud;
use crate::imgproc::{ImageSize, RgbImage};
use crate::mesh::TriangleMesh;

/// Share of points left out at each end of every axis when fitting a view: a few stray points
/// (fusion leftovers a metre away) must not shrink the surface to a dot.
pub(crate) const FIT_QUANTILE: f64 = 0.001;

/// Points sampled to estimate the fitted bounds (a strided subset; enough for 0.1 %
/// quantiles).
const BOUNDS_SAMPLES: usize = 200_000;

/// Bounds of `points` with [`FIT_QUANTILE`] cut off each end of each axis; `None` when empty.
pub(crate) fn robust_bounds(points: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
    if points.is_empty() {
        return None;
    }
    let stride = points.len().div_ceil(BOUNDS_SAMPLES).max(1);
    let sample: Vec<&Point3<f64>> = points.iter().step_by(stride).collect();
    let mut lo = Point3::origin();
    let mut hi = Point3::origin();
    for axis in 0..3 {
        let r = ValueRange::from_quantiles(
            sample.iter().map(|p| p[axis]),
            FIT_QUANTILE,
            1.0 - FIT_QUANTILE,
        )?;
        lo[axis] = r.min;
        hi[axis] = r.max;
    }
    Some((lo, hi))
}

/// One view of a cloud at `size`: coloured splats sized from the point spacing, shaded by the
/// normals when the cloud has them, coloured by height when it has no colours.
pub fn cloud_view(cloud: &PointCloud, view: Viewpoint, size: ImageSize) -> RgbImage {
    let fit = CloudFit::of(cloud);
    cloud_view_fitted(cloud, view, size, fit)
}

/// What fitting a view to a cloud needs; computed once for the three views.
#[derive(Clone, Copy)]
struct CloudFit {
    bounds: Option<(Point3<f64>, Point3<f64>)>,
    spacing: f64,
}

impl CloudFit {
    fn of(cloud: &PointCloud) -> Self {
        let (bounds, spacing) = rayon::join(
            || robust_bounds(cloud.points()),
            || point_spacing(cloud.points()).unwrap_or(0.0),
        );
        Self { bounds, spacing }
    }
}

fn cloud_view_fitted(
    cloud: &PointCloud,
    view: Viewpoint,
    size: ImageSize,
    fit: CloudFit,
) -> RgbImage {
    let Some(bounds) = fit.bounds else {
        return empty_picture(size, "fused cloud: no points");
    };
    let camera = ViewCamera::fit(view, bounds, size);
    let spacing = fit.spacing;
    let radius = splat_radius_px(spacing, camera.pixels_per_metre(camera.centre_depth()));
    let set = PointSet { points: cloud.points(), colors: cloud.colors(), normals: cloud.normals() };
    let mut img = render_points(set, &camera, radius);
    let title = format!("fused cloud, {} view   {} points", view.name(), thousands(cloud.len()));
    annotate(&mut img, &camera, view, &title);
    img
}

/// The three standard views of a cloud at `RENDER_SIZE` (1280 × 960), named `top`, `oblique`, `side`.
pub fn cloud_views(cloud: &PointCloud) -> [(&'static str, RgbImage); 3] {
    let fit = CloudFit::of(cloud);
    let mut views = Viewpoint::ALL.map(|v| (v.name(), None));
    views.par_iter_mut().zip(Viewpoint::ALL).for_each(|((_, img), view)| {
        *img = Some(cloud_view_fitted(cloud, view, RENDER_SIZE, fit));
    });
    views.map(|(name, img)| (name, img.unwrap_or_else(|| RgbImage::from_elem(RENDER_SIZE, 255))))
}

/// One view of a mesh at `size`: z-buffered triangles with Lambert shading and interpolated
/// vertex colours (grey without colours).
pub(crate) fn mesh_view(mesh: &TriangleMesh, view: Viewpoint, size: ImageSize) -> RgbImage {
    let Some(bounds) = robust_bounds(mesh.vertices()).filter(|_| !mesh.is_empty()) else {
        return empty_picture(size, "mesh: no triangles");
    };
    let camera = ViewCamera::fit(view, bounds, size);
    let mut img = render_mesh(mesh, &camera);
    let title = format!(
        "mesh, {} view   {} triangles, {} vertices",
        view.name(),
        thousands(mesh.n_faces()),
        thousands(mesh.n_vertices())
    );
    annotate(&mut img, &camera, view, &title);
    img
}

/// The three standard views of a mesh at `RENDER_SIZE`.
pub fn mesh_views(mesh: &TriangleMesh) -> [(&'static str, RgbImage); 3] {
    let mut views = Viewpoint::ALL.map(|v| (v.name(), None));
    views.par_iter_mut().zip(Viewpoint::ALL).for_each(|((_, img), view)| {
        *img = Some(mesh_view(mesh, view, RENDER_SIZE));
    });
    views.map(|(name, img)| (name, img.unwrap_or_else(|| RgbImage::from_elem(RENDER_SIZE, 255))))
}

/// A white picture saying why it is empty.
pub(crate) fn empty_picture(size: ImageSize, message: &str) -> RgbImage {
    let mut img = RgbImage::from_elem(size, 255);
    let s = text_scale(size.height);
    let (cx, cy) = ((size.width / 2) as i64, (size.height / 2) as i64);
    draw::text(&mut img, cx, cy, message, s, BLACK, Anchor::Centre);
    img
}

/// Title, axis directions and (orthographic views) a scale bar.
fn annotate(img: &mut RgbImage, camera: &ViewCamera, view: Viewpoint, title: &str) {
    let s = text_scale(img.height());
    let pad = (8 * s) as i64;
    let (w, h) = (img.width() as i64, img.height() as i64);
    draw::text(img, pad, pad, title, s, BLACK, Anchor::TopLeft);
    let axes = match view {
        Viewpoint::Top => "looking down +Z:  +X right, +Y down",
        Viewpoint::Side => "looking along -Y:  +X right, -Z up",
        Viewpoint::Oblique => "from above, 40 deg below the horizon",
    };
    draw::text(img, w - pad, h - pad, axes, s, BLACK, Anchor::BottomRight);
    if camera.projection() == Projection::Orthographic {
        scale_bar(img, camera.pixels_per_metre(1.0), s);
    }
}

/// A bar of a round length (about a sixth of the width) in the bottom-left corner.
fn scale_bar(img: &mut RgbImage, pixels_per_metre: f64, s: usize) {
    if !(pixels_per_metre.is_finite() && pixels_per_metre > 0.0) {
        return;
    }
    let target = img.width() as f64 / 6.0 / pixels_per_metre;
    let ticks = nice_ticks(ValueRange::new(0.0, target), 1);
    let Some(&length) = ticks.iter().rev().find(|&&t| t > 0.0) else { return };
    let px = (length * pixels_per_metre).round() as i64;
    let pad = (8 * s) as i64;
    let y = img.height() as i64 - pad - (draw::text_size("0", s).1 as i64) - 3 * s as i64;
    let thick = (2 * s) as i64;
    draw::fill_rect(img, pad, y, px, thick, BLACK);
    draw::fill_rect(img, pad, y - 3 * s as i64, s as i64, 3 * s as i64 + thick, BLACK);
    draw::fill_rect(
        img,
        pad + px - s as i64,
        y - 3 * s as i64,
        s as i64,
        3 * s as i64 + thick,
        BLACK,
    );
    let label = format_length(length);
    draw::text(img, pad, y + thick + 2 * s as i64, &label, s, BLACK, Anchor::TopLeft);
}

/// A length in the unit that reads best, to three significant digits: `5 mm`, `2.5 cm`,
/// `50 cm`, `1.2 m`.
pub(crate) fn format_length(metres: f64) -> String {
    let (value, unit) = if metres.abs() >= 1.0 {
        (metres, "m")
    } else if metres.abs() >= 0.01 {
        (metres * 100.0, "cm")
    } else {
        (metres * 1000.0, "mm")
    };
    if !(value.is_finite() && value != 0.0) {
        return format!("{value} {unit}");
    }
    let magnitude = 10f64.powf(value.abs().log10().floor() - 2.0);
    let rounded = (value / magnitude).round() * magnitude;
    // Rounding to a power of ten leaves binary noise (2.0000000000000004); twelve decimals
    // remove it and `{}` prints the shortest form.
    let rounded = (rounded * 1e12).round() / 1e12;
    format!("{rounded} {unit}")
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::synth::rig::RigPreset;
    use crate::synth::scene::SceneSpec;
    use crate::synth::surface::SurfaceKind;
    use crate::viz::demo::{surface_cloud, surface_mesh_coloured};
    use crate::viz::draw::tests::{ink_fraction, ink_variance};

    pub(crate) fn tiny_spec() -> SceneSpec {
        SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 5)
    }

    /// About 10 000 points of the tiny scene's sand bed, 4 mm apart.
    pub(crate) fn tiny_cloud(frame: usize) -> PointCloud {
        let spec = tiny_spec();
        surface_cloud(&spec.surface_at(frame), &spec.texture(), 0.2, 0.004, 11)
    }

    pub(crate) fn tiny_mesh() -> TriangleMesh {
        let spec = tiny_spec();
        surface_mesh_coloured(&spec.surface_at(0), &spec.texture(), 0.2, 0.01)
    }

    #[test]
    fn cloud_views_fill_the_picture_with_shaded_colour() {
        let cloud = tiny_cloud(0);
        let views = cloud_views(&cloud);
        assert_eq!(views.each_ref().map(|v| v.0), ["top", "oblique", "side"]);
        for (name, img) in &views {
            assert_eq!(img.size(), RENDER_SIZE, "{name}");
            assert!(ink_variance(img) > 50.0, "{name}: {}", ink_variance(img));
        }
        // From above the 0.4 m square fills most of the height: over 40 % of the pixels.
        assert!(ink_fraction(&views[0].1) > 0.4, "{}", ink_fraction(&views[0].1));
        assert!(ink_fraction(&views[1].1) > 0.2, "{}", ink_fraction(&views[1].1));
        // From the side the bed is a band a few centimetres high.
        assert!(ink_fraction(&views[2].1) > 0.01, "{}", ink_fraction(&views[2].1));
        // Deterministic.
        assert_eq!(
            cloud_view(&cloud, Viewpoint::Oblique, RENDER_SIZE).as_slice(),
            views[1].1.as_slice()
        );
    }

    #[test]
    fn top_view_has_no_holes_between_splats() {
        // Sample the middle of the picture: every pixel is covered (the splat radius closes
        // the gaps of a 4 mm grid with jitter).
        let cloud = tiny_cloud(0);
        let img = cloud_view(&cloud, Viewpoint::Top, ImageSize::new(400, 300));
        let white = (100..200)
            .flat_map(|y| (150..250).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == draw::WHITE)
            .count();
        assert!(white < 10, "{white} holes");
    }

    #[test]
    fn mesh_views_and_empty_inputs() {
        let mesh = tiny_mesh();
        let views = mesh_views(&mesh);
        for (name, img) in &views {
            assert_eq!(img.size(), RENDER_SIZE);
            assert!(ink_variance(img) > 50.0, "{name}");
        }
        assert!(ink_fraction(&views[0].1) > 0.4);
        // A grey mesh still shows its relief through the shading.
        let grey =
            TriangleMesh::from_parts(mesh.vertices().to_vec(), mesh.faces().to_vec(), None, None)
                .unwrap();
        let img = mesh_view(&grey, Viewpoint::Oblique, ImageSize::new(320, 240));
        assert!(ink_variance(&img) > 5.0, "{}", ink_variance(&img));
        let empty = cloud_view(&PointCloud::default(), Viewpoint::Top, ImageSize::new(320, 240));
        assert!(ink_fraction(&empty) > 0.001 && ink_fraction(&empty) < 0.05);
        let no_faces =
            mesh_view(&TriangleMesh::default(), Viewpoint::Top, ImageSize::new(320, 240));
        assert!(ink_fraction(&no_faces) > 0.001);
    }

    #[test]
    fn renders_do_not_depend_on_the_thread_count() {
        let cloud = tiny_cloud(0);
        let mesh = tiny_mesh();
        let size = ImageSize::new(320, 240);
        let draw = || {
            (cloud_view(&cloud, Viewpoint::Oblique, size), mesh_view(&mesh, Viewpoint::Top, size))
        };
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(draw);
        let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(draw);
        assert_eq!(one.0.as_slice(), four.0.as_slice());
        assert_eq!(one.1.as_slice(), four.1.as_slice());
    }

    #[test]
    fn labels() {
        assert_eq!(format_length(0.05), "5 cm");
        assert_eq!(format_length(0.002), "2 mm");
        assert_eq!(format_length(0.5), "50 cm");
        assert_eq!(format_length(2.0), "2 m");
        assert_eq!(format_length(0.001999986), "2 mm");
        assert_eq!(format_length(0.0123456), "1.23 cm");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
