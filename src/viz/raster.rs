//! A small software rasterizer for point clouds and triangle meshes: no GPU, no window, no
//! system library, so renders work on every headless machine (the reference's Open3D renderer
//! often does not).
//!
//! ## Cameras
//! A [`ViewCamera`] maps world points to pixels: orthographic or perspective, with a basis of
//! (right, down, forward) axes like an OpenCV camera. [`ViewCamera::fit`] places it so that a
//! bounding box fills the image. The three standard [`Viewpoint`]s share the image's x axis = world
//! +X, so the pictures of one scene line up:
//! - `Top`: orthographic, looking down +Z (the world's "down"), image y = +Y; the picture the
//!   centre camera would take without refraction.
//! - `Oblique`: perspective, 40° below the horizon from the +Y side, 30° around; screen up is
//!   as close to −Z (up) as the direction allows.
//! - `Side`: orthographic, looking along −Y, screen up = −Z (the reference's convention).
//!
//! ## Depth test without locks
//! Both rasterizers write a *visibility buffer*: one `u64` per pixel holding
//! `(depth as f32 bits) << 32 | primitive index`, lowered with an atomic `fetch_min`. For
//! positive floats the bit pattern orders like the value, so the minimum is the nearest
//! primitive, and equal depths go to the lower index. A minimum does not depend on the order
//! of the updates, so the parallel result is the same on any number of threads: same input,
//! same bytes. Colours are resolved afterwards, one pass per pixel.
//!
//! Shading is Lambertian with a light over the viewer's left shoulder, two-sided (normals of
//! fused clouds and Poisson meshes may point either way), plus ambient light so that no
//! surface goes black.

use std::sync::atomic::{AtomicU64, Ordering};

use nalgebra::{Matrix3, Point3, Vector3};
use rayon::prelude::*;

use super::colormap::{Colormap, ValueRange};
use crate::imgproc::{ImageSize, RgbImage, triangle};
use crate::mesh::TriangleMesh;
use crate::parallel::POINTS_PER_TASK;

/// Default picture size of the renders (the reference's 1280 × 960).
pub(crate) const RENDER_SIZE: ImageSize = ImageSize::new(1280, 960);

/// Fraction of the image left empty on each side by [`ViewCamera::fit`].
pub(crate) const FIT_MARGIN: f64 = 0.06;

/// Half the vertical field of view of the perspective view (20° gives a mild perspective
/// that still reads as 3-D).
const HALF_FOV_RAD: f64 = 20.0 * std::f64::consts::PI / 180.0;

/// Ambient share of the shading (the rest is Lambertian).
const AMBIENT: f32 = 0.35;

/// Colour of meshes without vertex colours: a light neutral grey that shows the shading.
pub(crate) const MESH_GREY: [u8; 3] = [200, 200, 200];

/// How world points map to the image plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Projection {
    /// Parallel rays: sizes do not shrink with distance (measurable pictures).
    Orthographic,
    /// A pinhole: far things are smaller (reads as 3-D).
    Perspective,
}

/// The three standard views of a scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewpoint {
    /// From above, looking down +Z (orthographic).
    Top,
    /// From above and to the side (perspective).
    Oblique,
    /// From the side, looking along −Y with −Z up (orthographic).
    Side,
}

impl Viewpoint {
    /// All three, in file-name order.
    pub(crate) const ALL: [Viewpoint; 3] = [Viewpoint::Top, Viewpoint::Oblique, Viewpoint::Side];

    /// The name used in file names (`fused_top.png`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Viewpoint::Top => "top",
            Viewpoint::Oblique => "oblique",
            Viewpoint::Side => "side",
        }
    }

    /// Viewing direction (world) and the world direction that should point down the screen.
    fn direction(self) -> (Vector3<f64>, Vector3<f64>) {
        match self {
            Viewpoint::Top => (Vector3::z(), Vector3::y()),
            Viewpoint::Side => (-Vector3::y(), Vector3::z()),
            Viewpoint::Oblique => {
                let (el, az) = (40f64.to_radians(), 30f64.to_radians());
                let f = Vector3::new(az.sin() * el.cos(), -az.cos() * el.cos(), el.sin());
                (f, Vector3::z())
            }
        }
    }

    /// The projection this view uses.
    pub(crate) fn projection(self) -> Projection {
        match self {
            Viewpoint::Oblique => Projection::Perspective,
            Viewpoint::Top | Viewpoint::Side => Projection::Orthographic,
        }
    }
}

/// A point on the screen: pixel coordinates (centres at integers) and depth along the viewing
/// direction (metres, > 0 in front of the camera).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScreenPoint {
    /// Column.
    pub(crate) x: f64,
    /// Row.
    pub(crate) y: f64,
    /// Distance along the viewing direction (metres).
    pub(crate) depth: f64,
}

/// A virtual camera for renders: world → pixels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ViewCamera {
    /// World → view rotation; rows are the right, down and forward axes.
    rotation: Matrix3<f64>,
    /// Eye position (perspective) or a point behind the scene on the axis (orthographic).
    eye: Point3<f64>,
    projection: Projection,
    /// Pixels per metre (orthographic) or per unit of `x/z` (perspective).
    focal: f64,
    cx: f64,
    cy: f64,
    size: ImageSize,
    /// Depth of the centre of the fitted box.
    centre_depth: f64,
}

impl ViewCamera {
    /// A camera looking along `forward` with `down_hint` pointing as much down the screen as
    /// possible, fitted so that the box `bounds = (min, max)` fills `size` less
    /// [`FIT_MARGIN`]. Returns `None` when `forward` is zero or parallel to `down_hint`.
    pub(crate) fn looking(
        forward: Vector3<f64>,
        down_hint: Vector3<f64>,
        projection: Projection,
        bounds: (Point3<f64>, Point3<f64>),
        size: ImageSize,
    ) -> Option<Self> {
        let f = forward.try_normalize(1e-12)?;
        let d = (down_hint - f * down_hint.dot(&f)).try_normalize(1e-9)?;
        let r = d.cross(&f);
        let rotation = Matrix3::from_rows(&[r.transpose(), d.transpose(), f.transpose()]);
        let (lo, hi) = bounds;
        let centre = nalgebra::center(&lo, &hi);
        let radius = ((hi - lo).norm() / 2.0).max(1e-6);
        let centre_depth = match projection {
            Projection::Orthographic => radius + 1.0,
            Projection::Perspective => radius / HALF_FOV_RAD.sin(),
        };
        let eye = centre - f * centre_depth;
        let mut cam =
            Self { rotation, eye, projection, focal: 1.0, cx: 0.0, cy: 0.0, size, centre_depth };
        // Normalised coordinates of the box corners, then scale and centre them.
        let (mut umin, mut umax, mut vmin, mut vmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for i in 0..8 {
            let p = Point3::new(
                if i & 1 == 0 { lo.x } else { hi.x },
                if i & 2 == 0 { lo.y } else { hi.y },
                if i & 4 == 0 { lo.z } else { hi.z },
            );
            let (u, v, _) = cam.normalised(&p)?;
            umin = umin.min(u);
            umax = umax.max(u);
            vmin = vmin.min(v);
            vmax = vmax.max(v);
        }
        let (w, h) = (size.width as f64, size.height as f64);
        let usable = 1.0 - 2.0 * FIT_MARGIN;
        let scale_u = w * usable / (umax - umin).max(1e-12);
        let scale_v = h * usable / (vmax - vmin).max(1e-12);
        cam.focal = scale_u.min(scale_v);
        cam.cx = (w - 1.0) / 2.0 - cam.focal * (umin + umax) / 2.0;
        cam.cy = (h - 1.0) / 2.0 - cam.focal * (vmin + vmax) / 2.0;
        Some(cam)
    }

    /// One of the standard views fitted to `bounds`.
    pub(crate) fn fit(
        view: Viewpoint,
        bounds: (Point3<f64>, Point3<f64>),
        size: ImageSize,
    ) -> Self {
        let (forward, down) = view.direction();
        // The standard directions are unit vectors that are not parallel to their hints.
        Self::looking(forward, down, view.projection(), bounds, size)
            .expect("standard views have valid directions")
    }

    /// View-frame coordinates of `p`: (right, down) in metres or `x/z`, and depth.
    fn normalised(&self, p: &Point3<f64>) -> Option<(f64, f64, f64)> {
        let q = self.rotation * (p - self.eye);
        match self.projection {
            Projection::Orthographic => Some((q.x, q.y, q.z)),
            Projection::Perspective => (q.z > 1e-9).then(|| (q.x / q.z, q.y / q.z, q.z)),
        }
    }

    /// Where `p` lands on the screen, or `None` behind a perspective camera.
    #[inline]
    pub(crate) fn project(&self, p: &Point3<f64>) -> Option<ScreenPoint> {
        let (u, v, depth) = self.normalised(p)?;
        Some(ScreenPoint { x: self.cx + self.focal * u, y: self.cy + self.focal * v, depth })
    }

    /// Pixels per metre for a small object at `depth` (constant when orthographic).
    pub(crate) fn pixels_per_metre(&self, depth: f64) -> f64 {
        match self.projection {
            Projection::Orthographic => self.focal,
            Projection::Perspective => self.focal / depth.max(1e-9),
        }
    }

    /// Depth of the centre of the fitted box (where [`Self::pixels_per_metre`] is typical).
    pub(crate) fn centre_depth(&self) -> f64 {
        self.centre_depth
    }

    /// A world direction expressed in the view frame (x right, y down, z forward).
    pub(crate) fn to_view(&self, v: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * v
    }

    /// The image size.
    pub(crate) fn size(&self) -> ImageSize {
        self.size
    }

    /// The projection.
    pub(crate) fn projection(&self) -> Projection {
        self.projection
    }
}

/// The visibility buffer: per pixel, the nearest primitive so far (see the module doc).
struct VisBuffer {
    size: ImageSize,
    keys: Vec<AtomicU64>,
}

const EMPTY: u64 = u64::MAX;

impl VisBuffer {
    fn new(size: ImageSize) -> Self {
        Self { size, keys: (0..size.area()).map(|_| AtomicU64::new(EMPTY)).collect() }
    }

    #[inline]
    fn offer(&self, x: usize, y: usize, depth: f32, index: u32) {
        debug_assert!(depth >= 0.0);
        let key = (u64::from(depth.to_bits()) << 32) | u64::from(index);
        self.keys[y * self.size.width + x].fetch_min(key, Ordering::Relaxed);
    }

    /// The keys, row-major.
    fn into_keys(self) -> Vec<u64> {
        self.keys.into_iter().map(AtomicU64::into_inner).collect()
    }

    /// Primitive index per pixel (or `None`), row-major.
    fn into_indices(self) -> Vec<Option<u32>> {
        indices_of(&self.into_keys())
    }
}

fn indices_of(keys: &[u64]) -> Vec<Option<u32>> {
    keys.iter().map(|&k| (k != EMPTY).then_some(k as u32)).collect()
}

/// Closes pinholes between splats: an empty pixel with at least [`FILL_MIN_NEIGHBOURS`] of its
/// eight neighbours covered takes the nearest of them. Pixels outside the cloud's silhouette
/// have fewer covered neighbours and stay empty, so edges stay sharp.
fn fill_pinholes(keys: &[u64], size: ImageSize) -> Vec<u64> {
    let (w, h) = (size.width, size.height);
    let mut out = keys.to_vec();
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, key) in row.iter_mut().enumerate() {
            if *key != EMPTY || x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                continue;
            }
            let mut covered = 0;
            let mut nearest = EMPTY;
            for (dx, dy) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let k = keys[(y as i64 + dy) as usize * w + (x as i64 + dx) as usize];
                if k != EMPTY {
                    covered += 1;
                    nearest = nearest.min(k);
                }
            }
            if covered >= FILL_MIN_NEIGHBOURS {
                *key = nearest;
            }
        }
    });
    out
}

/// Covered neighbours (of eight) that make an empty pixel a pinhole (see [`fill_pinholes`]).
const FILL_MIN_NEIGHBOURS: usize = 5;

/// Depth kept in the visibility buffer: positive, and finite or the point is skipped.
#[inline]
fn buffer_depth(depth: f64) -> Option<f32> {
    let d = depth as f32;
    (d.is_finite() && d >= 0.0).then_some(d)
}

/// Light direction in the view frame (towards the light: up, left and towards the viewer).
fn light_dir() -> Vector3<f32> {
    Vector3::new(-0.35, -0.55, -1.0).normalize()
}

#[inline]
fn shade(color: [u8; 3], normal_view: Option<Vector3<f32>>) -> [u8; 3] {
    let Some(n) = normal_view else { return color };
    let lambert = n.dot(&light_dir()).abs().min(1.0);
    let k = AMBIENT + (1.0 - AMBIENT) * lambert;
    color.map(|c| (c as f32 * k + 0.5).min(255.0) as u8)
}

/// Points to draw: positions with optional colours and normals (all the same length).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PointSet<'a> {
    /// Positions (world, metres).
    pub(crate) points: &'a [Point3<f64>],
    /// Per-point colours; `None` colours by height (world Z) with viridis.
    pub(crate) colors: Option<&'a [[u8; 3]]>,
    /// Per-point normals; `None` draws flat colours.
    pub(crate) normals: Option<&'a [Vector3<f64>]>,
}

/// Renders points as z-buffered discs of `radius_px` pixels (at least the nearest pixel) on a
/// white background.
pub(crate) fn render_points(set: PointSet<'_>, camera: &ViewCamera, radius_px: f64) -> RgbImage {
    let size = camera.size();
    let mut img = RgbImage::from_elem(size, 255);
    splat_points(&mut img, set, camera, radius_px);
    img
}

/// Draws points as z-buffered discs over `img` (whose size is the camera's): the background
/// stays where no point lands.
pub(crate) fn splat_points(
    img: &mut RgbImage,
    set: PointSet<'_>,
    camera: &ViewCamera,
    radius_px: f64,
) {
    let size = camera.size();
    debug_assert_eq!(img.size(), size);
    // Indices are stored in 32 bits; clouds beyond 4 billion points draw their first part.
    let n = set.points.len().min(u32::MAX as usize);
    if n == 0 || size.is_empty() {
        return;
    }
    let vis = VisBuffer::new(size);
    let r = radius_px.clamp(0.0, 64.0);
    let (w, h) = (size.width as i64, size.height as i64);
    set.points[..n].par_chunks(POINTS_PER_TASK).enumerate().for_each(|(chunk, pts)| {
        let base = chunk * POINTS_PER_TASK;
        for (k, p) in pts.iter().enumerate() {
            let Some(s) = camera.project(p) else { continue };
            let Some(depth) = buffer_depth(s.depth) else { continue };
            let index = (base + k) as u32;
            let (px, py) = (s.x.round() as i64, s.y.round() as i64);
            if r <= 0.5 {
                if (0..w).contains(&px) && (0..h).contains(&py) {
                    vis.offer(px as usize, py as usize, depth, index);
                }
                continue;
            }
            let reach = r.ceil() as i64;
            let r2 = r * r;
            for yy in (py - reach).max(0)..=(py + reach).min(h - 1) {
                let dy = yy as f64 - s.y;
                for xx in (px - reach).max(0)..=(px + reach).min(w - 1) {
                    let dx = xx as f64 - s.x;
                    if dx * dx + dy * dy <= r2 || (xx == px && yy == py) {
                        vis.offer(xx as usize, yy as usize, depth, index);
                    }
                }
            }
        }
    });
    let indices = indices_of(&fill_pinholes(&vis.into_keys(), size));
    let height_colours = match set.colors {
        Some(_) => None,
        None => {
            let z = set.points[..n].iter().map(|p| p.z);
            ValueRange::from_quantiles(z, 0.01, 0.99)
        }
    };
    let color_of = |i: usize| -> [u8; 3] {
        match (set.colors, height_colours) {
            (Some(c), _) => c[i],
            (None, Some(range)) => {
                Colormap::Viridis.map_unit(range.normalise(set.points[i].z) as f32)
            }
            (None, None) => MESH_GREY,
        }
    };
    img.as_mut_slice().par_chunks_mut(size.width * 3).zip(indices.par_chunks(size.width)).for_each(
        |(row, idx)| {
            for (px, i) in row.chunks_exact_mut(3).zip(idx) {
                if let Some(i) = *i {
                    let i = i as usize;
                    let normal =
                        set.normals.map(|nr| camera.to_view(&nr[i]).cast::<f32>().normalize());
                    let normal = normal.filter(|v| v.iter().all(|c| c.is_finite()));
                    px.copy_from_slice(&shade(color_of(i), normal));
                }
            }
        },
    );
}

/// Renders a triangle mesh, z-buffered and Lambert-shaded, on a white background. Vertex
/// colours are interpolated across faces ([`MESH_GREY`] without colours); normals are the
/// mesh's vertex normals, or area-weighted ones computed here when it has none.
pub(crate) fn render_mesh(mesh: &TriangleMesh, camera: &ViewCamera) -> RgbImage {
    let size = camera.size();
    let mut img = RgbImage::from_elem(size, 255);
    let n_faces = mesh.n_faces().min(u32::MAX as usize);
    if n_faces == 0 || size.is_empty() {
        return img;
    }
    let perspective = camera.projection() == Projection::Perspective;
    // Screen position and depth of every vertex (NaN x when it cannot be projected).
    let screen: Vec<[f64; 3]> = mesh
        .vertices()
        .par_iter()
        .map(|p| match camera.project(p) {
            Some(s) if s.depth > 0.0 => [s.x, s.y, s.depth],
            _ => [f64::NAN; 3],
        })
        .collect();
    let faces = &mesh.faces()[..n_faces];
    let vis = VisBuffer::new(size);
    faces.par_chunks(POINTS_PER_TASK).enumerate().for_each(|(chunk, tris)| {
        let base = chunk * POINTS_PER_TASK;
        for (k, tri) in tris.iter().enumerate() {
            let [a, b, c] = tri.map(|i| screen[i as usize]);
            let index = (base + k) as u32;
            let corners = [[a[0], a[1]], [b[0], b[1]], [c[0], c[1]]];
            triangle::for_each_pixel(corners, size, |x, y, wts| {
                let depth = if perspective {
                    // 1/z is affine in screen space.
                    1.0 / (wts[0] / a[2] + wts[1] / b[2] + wts[2] / c[2])
                } else {
                    wts[0] * a[2] + wts[1] * b[2] + wts[2] * c[2]
                };
                if let Some(d) = buffer_depth(depth) {
                    vis.offer(x, y, d, index);
                }
            });
        }
    });
    let indices = vis.into_indices();
    let computed;
    let normals = match mesh.normals() {
        Some(n) => n,
        None => {
            computed = mesh.compute_vertex_normals();
            &computed
        }
    };
    let colors = mesh.colors();
    let vertex_view_normals: Vec<Vector3<f32>> =
        normals.par_iter().map(|n| camera.to_view(n).cast::<f32>()).collect();
    img.as_mut_slice()
        .par_chunks_mut(size.width * 3)
        .zip(indices.par_chunks(size.width))
        .enumerate()
        .for_each(|(y, (row, idx))| {
            for (x, (px, f)) in row.chunks_exact_mut(3).zip(idx).enumerate() {
                let Some(f) = *f else { continue };
                let tri = faces[f as usize];
                let [a, b, c] = tri.map(|i| screen[i as usize]);
                let corners = [[a[0], a[1]], [b[0], b[1]], [c[0], c[1]]];
                let area = triangle::edge(corners[0], corners[1], corners[2]);
                // The pixel was covered by this face, so the weights exist; clamp for safety.
                let mut wts = triangle::barycentric(corners, area, [x as f64, y as f64]);
                if perspective {
                    // Perspective-correct interpolation: weights over depth, renormalised.
                    let q = [wts[0] / a[2], wts[1] / b[2], wts[2] / c[2]];
                    let s = q[0] + q[1] + q[2];
                    wts = [q[0] / s, q[1] / s, q[2] / s];
                }
                let wf = wts.map(|v| v.clamp(0.0, 1.0) as f32);
                let color = match colors {
                    Some(cols) => {
                        let mut acc = [0.0f32; 3];
                        for (j, &vi) in tri.iter().enumerate() {
                            let vc = cols[vi as usize];
                            for ch in 0..3 {
                                acc[ch] += wf[j] * vc[ch] as f32;
                            }
                        }
                        acc.map(|v| (v + 0.5).clamp(0.0, 255.0) as u8)
                    }
                    None => MESH_GREY,
                };
                let n: Vector3<f32> = tri
                    .iter()
                    .enumerate()
                    .map(|(j, &vi)| vertex_view_normals[vi as usize] * wf[j])
                    .sum();
                let n = n.try_normalize(1e-12).or_else(|| {
                    // Degenerate vertex normals: fall back to the face's own normal.
                    let v = mesh.vertices();
                    let (p0, p1, p2) = (v[tri[0] as usize], v[tri[1] as usize], v[tri[2] as usize]);
                    camera.to_view(&(p1 - p0).cross(&(p2 - p0))).cast::<f32>().try_normalize(1e-20)
                });
                px.copy_from_slice(&shade(color, n));
            }
        });
    img
}

/// Typical spacing (metres) between neighbouring points of a surface-like cloud: the area
/// the points occupy in the plane of their two largest extents, shared among the points.
///
/// The area is counted on a grid with about 16 points per occupied cell, which measures a
/// cloud that covers only part of its bounding box (a round tank bottom) correctly. Returns
/// `None` for fewer than two points or a cloud with no extent.
pub(crate) fn point_spacing(points: &[Point3<f64>]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (lo, hi) = crate::cloud::bounds_of(points)?;
    let ext = hi - lo;
    // The two axes with the largest extents.
    let mut axes = [0usize, 1, 2];
    axes.sort_by(|&i, &j| ext[j].total_cmp(&ext[i]));
    let (ax, ay) = (axes[0], axes[1]);
    let (ex, ey) = (ext[ax].max(1e-12), ext[ay].max(ext[ax] * 1e-3).max(1e-12));
    let cell = (ex * ey * 16.0 / points.len() as f64).sqrt();
    let nx = ((ex / cell).ceil() as usize).clamp(1, 4096);
    let ny = ((ey / cell).ceil() as usize).clamp(1, 4096);
    let (cx, cy) = (ex / nx as f64, ey / ny as f64);
    let mut occupied = vec![false; nx * ny];
    for p in points {
        let i = (((p[ax] - lo[ax]) / cx) as usize).min(nx - 1);
        let j = (((p[ay] - lo[ay]) / cy) as usize).min(ny - 1);
        occupied[j * nx + i] = true;
    }
    let area = occupied.iter().filter(|&&o| o).count() as f64 * cx * cy;
    let spacing = (area / points.len() as f64).sqrt();
    (spacing.is_finite() && spacing > 0.0).then_some(spacing)
}

/// Splat radius in pixels for points `spacing` metres apart at `pixels_per_metre`: one
/// spacing, between half a pixel and eight pixels. Discs that reach the neighbouring points
/// leave only scattered pinholes where the points of an irregular (voxel-fused) cloud are
/// farthest apart, and those are closed after the depth test.
pub(crate) fn splat_radius_px(spacing: f64, pixels_per_metre: f64) -> f64 {
    (spacing * pixels_per_metre).clamp(0.5, 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::draw::{WHITE, tests::ink};

    fn unit_box() -> (Point3<f64>, Point3<f64>) {
        (Point3::new(-1.0, -1.0, 1.0), Point3::new(1.0, 1.0, 3.0))
    }

    #[test]
    fn top_view_projects_known_points() {
        let size = ImageSize::new(101, 101);
        let cam = ViewCamera::fit(Viewpoint::Top, unit_box(), size);
        // The box is 2 m wide: it spans 101 × (1 − 2 × margin) pixels.
        let ppm = 101.0 * (1.0 - 2.0 * FIT_MARGIN) / 2.0;
        assert!((cam.pixels_per_metre(1.0) - ppm).abs() < 1e-9);
        let centre = cam.project(&Point3::new(0.0, 0.0, 2.0)).unwrap();
        assert!((centre.x - 50.0).abs() < 1e-9 && (centre.y - 50.0).abs() < 1e-9);
        // +X is right, +Y is down the screen, and deeper (+Z) is farther.
        let p = cam.project(&Point3::new(0.5, -0.25, 2.0)).unwrap();
        assert!((p.x - (50.0 + 0.5 * ppm)).abs() < 1e-9, "{p:?}");
        assert!((p.y - (50.0 - 0.25 * ppm)).abs() < 1e-9, "{p:?}");
        let deep = cam.project(&Point3::new(0.5, -0.25, 3.0)).unwrap();
        assert!((deep.depth - p.depth - 1.0).abs() < 1e-12);
        assert_eq!((deep.x, deep.y), (p.x, p.y));
    }

    #[test]
    fn side_view_has_up_at_minus_z_and_oblique_fits() {
        let size = ImageSize::new(200, 100);
        let cam = ViewCamera::fit(Viewpoint::Side, unit_box(), size);
        let shallow = cam.project(&Point3::new(0.0, 0.0, 1.0)).unwrap();
        let deep = cam.project(&Point3::new(0.0, 0.0, 3.0)).unwrap();
        assert!(shallow.y < deep.y, "−Z must be up");
        let right = cam.project(&Point3::new(1.0, 0.0, 2.0)).unwrap();
        assert!(right.x > shallow.x, "+X must be right");
        let ob = ViewCamera::fit(Viewpoint::Oblique, unit_box(), size);
        let (lo, hi) = unit_box();
        for i in 0..8 {
            let p = Point3::new(
                if i & 1 == 0 { lo.x } else { hi.x },
                if i & 2 == 0 { lo.y } else { hi.y },
                if i & 4 == 0 { lo.z } else { hi.z },
            );
            let s = ob.project(&p).unwrap();
            assert!(s.depth > 0.0);
            assert!((-0.5..199.5).contains(&s.x) && (-0.5..99.5).contains(&s.y), "{s:?}");
        }
        assert_eq!(ob.projection(), Projection::Perspective);
    }

    #[test]
    fn single_triangle_covers_the_expected_pixels() {
        // Orthographic top view with exactly 1 pixel per metre... scaled: build the camera
        // directly from a box whose projection is known, then check pixel coverage against
        // the analytic half-plane test.
        let size = ImageSize::new(64, 64);
        let cam = ViewCamera::fit(Viewpoint::Top, unit_box(), size);
        let v = vec![
            Point3::new(-0.8, -0.8, 2.0),
            Point3::new(0.8, -0.8, 2.0),
            Point3::new(-0.8, 0.8, 2.0),
        ];
        let mesh = TriangleMesh::from_parts(v.clone(), vec![[0, 1, 2]], None, None).unwrap();
        let img = render_mesh(&mesh, &cam);
        let s: Vec<ScreenPoint> = v.iter().map(|p| cam.project(p).unwrap()).collect();
        let mut expected = 0;
        for y in 0..64 {
            for x in 0..64 {
                let (px, py) = (x as f64, y as f64);
                // Inside: right of the left edge, below the top edge, above the hypotenuse
                // (with a small margin to avoid asserting on boundary pixels).
                let inside_strict = px > s[0].x + 1e-6 && py > s[0].y + 1e-6 && {
                    let t = (px - s[0].x) / (s[1].x - s[0].x) + (py - s[0].y) / (s[2].y - s[0].y);
                    t < 1.0 - 1e-6
                };
                let outside_strict = px < s[0].x - 1e-6 || py < s[0].y - 1e-6 || {
                    let t = (px - s[0].x) / (s[1].x - s[0].x) + (py - s[0].y) / (s[2].y - s[0].y);
                    t > 1.0 + 1e-6
                };
                let covered = img.get(x, y) != WHITE;
                if inside_strict {
                    assert!(covered, "({x}, {y}) should be covered");
                    expected += 1;
                }
                if outside_strict {
                    assert!(!covered, "({x}, {y}) should be empty");
                }
            }
        }
        assert!(expected > 500, "{expected}");
        // Flat face seen head-on, no colours: uniform shaded grey.
        let c = img.get(20, 20);
        assert!(c[0] == c[1] && c[1] == c[2] && c[0] < 200 && c[0] > 100, "{c:?}");
    }

    #[test]
    fn z_buffer_keeps_the_nearer_splat_whatever_the_order() {
        let size = ImageSize::new(32, 32);
        let cam = ViewCamera::fit(Viewpoint::Top, unit_box(), size);
        let near = Point3::new(0.0, 0.0, 1.5);
        let far = Point3::new(0.05, 0.0, 2.5);
        let red = [255, 0, 0];
        let blue = [0, 0, 255];
        for (pts, cols) in [([near, far], [red, blue]), ([far, near], [blue, red])] {
            let set = PointSet { points: &pts, colors: Some(&cols), normals: None };
            let img = render_points(set, &cam, 3.0);
            let c = cam.project(&near).unwrap();
            assert_eq!(img.get(c.x.round() as usize, c.y.round() as usize), red);
            assert!(ink(&img, WHITE) > 20);
        }
    }

    #[test]
    fn renders_are_deterministic_and_mesh_depth_test_works() {
        // Two overlapping squares at different depths: the nearer one (green) wins.
        let size = ImageSize::new(48, 48);
        let cam = ViewCamera::fit(Viewpoint::Top, unit_box(), size);
        let square = |z: f64, off: f64| {
            vec![
                Point3::new(-0.5 + off, -0.5, z),
                Point3::new(0.5 + off, -0.5, z),
                Point3::new(-0.5 + off, 0.5, z),
                Point3::new(0.5 + off, 0.5, z),
            ]
        };
        let mut v = square(2.5, 0.0);
        v.extend(square(1.5, 0.2));
        let faces = vec![[0, 1, 2], [2, 1, 3], [4, 5, 6], [6, 5, 7]];
        let colors = [[[0, 0, 255]; 4], [[0, 255, 0]; 4]].concat();
        let mesh = TriangleMesh::from_parts(v, faces, None, Some(colors)).unwrap();
        let img = render_mesh(&mesh, &cam);
        let c = cam.project(&Point3::new(0.1, 0.0, 1.5)).unwrap();
        let px = img.get(c.x.round() as usize, c.y.round() as usize);
        assert!(px[1] > 50 && px[0] == 0 && px[2] == 0, "{px:?}");
        let oblique = ViewCamera::fit(Viewpoint::Oblique, unit_box(), size);
        let first = render_mesh(&mesh, &oblique);
        assert!(ink(&first, WHITE) > 100);
        assert_eq!(render_mesh(&mesh, &oblique).as_slice(), first.as_slice());
    }

    #[test]
    fn spacing_of_a_grid() {
        let pts: Vec<Point3<f64>> = (0..100 * 100)
            .map(|k| Point3::new((k % 100) as f64 * 0.002, (k / 100) as f64 * 0.002, 1.0))
            .collect();
        let s = point_spacing(&pts).unwrap();
        assert!((s - 0.002).abs() < 0.0004, "{s}");
        // A disc-shaped cloud in a square box: still the grid spacing.
        let disc: Vec<Point3<f64>> = pts
            .iter()
            .copied()
            .filter(|p| (p.x - 0.1).powi(2) + (p.y - 0.1).powi(2) < 0.01)
            .collect();
        let s = point_spacing(&disc).unwrap();
        assert!((s - 0.002).abs() < 0.0005, "{s}");
        assert!(point_spacing(&pts[..1]).is_none());
        assert_eq!(splat_radius_px(0.002, 500.0), 1.0);
    }
}
