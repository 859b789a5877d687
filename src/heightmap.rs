//! Height maps: a frame's fused cloud gridded on a regular world X/Y grid that every frame of a
//! run shares, so that two frames' maps subtract cell by cell.
//!
//! The grid comes from the calibration and the config, never from a frame's cloud: it is the
//! smallest square, aligned to multiples of `reconstruction.grid_resolution` from the world
//! origin, that holds every ring camera's view of the *datum plane*. The datum plane is the
//! deepest plane the run searches: `water_z` plus the upper end of an explicit
//! `reconstruction.depth_range`, otherwise as far below the water as the ring cameras are above
//! it (at least 0.5 m). Heights are metres **up** from that plane (`height = datum_z − z`, so a
//! mound is positive even though world +Z points down); world Z is stored too. A frame's map
//! holds only the window of that grid its cloud reaches ([`HeightMap::from_points`]); windows
//! of one grid align cell for cell ([`Grid::union`], [`HeightMap::placed`]).
//!
//! Per cell: the mean world Z of the supporting points, their number, and an uncertainty: the
//! spread (standard deviation) of the points about their cell's mean, pooled over the 3 × 3
//! cells around it so that a cell of two or three points still has a stable estimate. A cell
//! with no point, or whose neighbourhood has fewer than [`MIN_POOLED_DOF`] degrees of freedom,
//! is NaN.

use std::path::{Path, PathBuf};

use nalgebra::Point3;

use crate::geom::refraction::RefractiveCamera;
use crate::imgproc::{GrayImage, ImageSize};
use crate::io::atomic::write_atomic;
use crate::io::npz::{ArrayData, ArrayRef, Compression, NpyArray, read_npz, write_npz_with};

/// Fewest degrees of freedom (points minus one per cell, summed over the 3 × 3 cells) of a
/// cell's pooled spread: below it the cell is unsupported.
pub const MIN_POOLED_DOF: usize = 2;

/// Largest grid accepted (cells): 8192² float maps would be a quarter of a gigabyte each.
pub const MAX_CELLS: usize = 4096 * 4096;

/// Errors of height maps.
#[derive(Debug, thiserror::Error)]
pub enum HeightMapError {
    /// The grid cannot be built from the rig and config.
    #[error("height-map grid: {0}")]
    Grid(String),
    /// A height-map file is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The grid shared by every frame of a run: cell `(i, j)` (column `i`, row `j`) is centred on
/// world `(origin[0] + i·spacing, origin[1] + j·spacing)`; rows grow with world +Y (as seen
/// from the cameras, looking down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// World (x, y) of the centre of cell (0, 0), metres.
    pub origin: [f64; 2],
    /// Cell side (m).
    pub spacing: f64,
    /// Columns (along +X) and rows (along +Y).
    pub size: ImageSize,
    /// World Z of the datum plane heights are measured up from (m).
    pub datum_z: f64,
}

impl Grid {
    /// The square grid of `spacing` holding every camera's view of the plane `datum_z`
    /// (image borders cast through the water), aligned to multiples of `spacing`.
    pub fn covering(
        cameras: &[&RefractiveCamera],
        datum_z: f64,
        spacing: f64,
    ) -> Result<Self, HeightMapError> {
        if !(spacing.is_finite() && spacing > 0.0) {
            return Err(HeightMapError::Grid(format!(
                "reconstruction.grid_resolution must be positive, got {spacing}"
            )));
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for cam in cameras {
            let samples = cam.size().border_samples();
            let (w, h) = (cam.size().width as f64, cam.size().height as f64);
            let centre = [(0.5 * (w - 1.0), 0.5 * (h - 1.0))];
            for (u, v) in samples.into_iter().chain(centre) {
                let Ok(ray) = cam.cast_ray(u, v) else { continue };
                let dz = ray.dir.z;
                if dz <= 1e-9 || datum_z < ray.origin.z {
                    continue;
                }
                let p = ray.point_at((datum_z - ray.origin.z) / dz);
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
        }
        if !(lo[0].is_finite() && hi[0].is_finite()) {
            return Err(HeightMapError::Grid(format!(
                "no ring camera sees the plane Z = {datum_z:.3} m; check the calibration's water_z"
            )));
        }
        let first = |v: f64| (v / spacing).floor() as i64;
        let last = |v: f64| (v / spacing).ceil() as i64;
        let (i0, j0) = (first(lo[0]), first(lo[1]));
        let (nx, ny) = ((last(hi[0]) - i0 + 1) as usize, (last(hi[1]) - j0 + 1) as usize);
        if nx.saturating_mul(ny) > MAX_CELLS {
            return Err(HeightMapError::Grid(format!(
                "{nx} × {ny} cells of {:.1} mm is too many (at most {MAX_CELLS}); raise \
                 reconstruction.grid_resolution",
                spacing * 1e3
            )));
        }
        Ok(Self {
            origin: [i0 as f64 * spacing, j0 as f64 * spacing],
            spacing,
            size: ImageSize::new(nx, ny),
            datum_z,
        })
    }

    /// World (x, y) of the centre of cell (i, j).
    pub fn centre(&self, i: usize, j: usize) -> (f64, f64) {
        (self.origin[0] + i as f64 * self.spacing, self.origin[1] + j as f64 * self.spacing)
    }

    /// The cell holding world (x, y), if it is on the grid.
    pub fn cell(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        let i = ((x - self.origin[0]) / self.spacing).round();
        let j = ((y - self.origin[1]) / self.spacing).round();
        let inside = i >= 0.0
            && j >= 0.0
            && (i as usize) < self.size.width
            && (j as usize) < self.size.height;
        inside.then_some((i as usize, j as usize))
    }

    /// Area of one cell (m²).
    pub fn cell_area(&self) -> f64 {
        self.spacing * self.spacing
    }

    /// Whether `other`'s cells are this grid's cells: the same spacing and datum, origins a
    /// whole number of cells apart (to a millionth of a cell). Windows of one run's grid are.
    pub fn aligned_with(&self, other: &Grid) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let whole = |d: f64| (d / self.spacing - (d / self.spacing).round()).abs() < 1e-6;
        close(self.spacing, other.spacing)
            && close(self.datum_z, other.datum_z)
            && whole(other.origin[0] - self.origin[0])
            && whole(other.origin[1] - self.origin[1])
    }

    /// Offset of `other`'s cell (0, 0) in this grid's cells (columns, rows); the grids must be
    /// [aligned](Self::aligned_with).
    fn offset_of(&self, other: &Grid) -> (i64, i64) {
        (
            ((other.origin[0] - self.origin[0]) / self.spacing).round() as i64,
            ((other.origin[1] - self.origin[1]) / self.spacing).round() as i64,
        )
    }

    /// Cells `i0 .. i0 + size.width` × `j0 .. j0 + size.height` of this grid, as a grid.
    pub fn window(&self, i0: usize, j0: usize, size: ImageSize) -> Grid {
        let (x, y) = self.centre(i0, j0);
        Grid { origin: [x, y], size, ..*self }
    }

    /// The smallest grid holding both grids' cells, or `None` when they are not
    /// [aligned](Self::aligned_with).
    pub fn union(&self, other: &Grid) -> Option<Grid> {
        if !self.aligned_with(other) {
            return None;
        }
        let (di, dj) = self.offset_of(other);
        let (i0, j0) = (di.min(0), dj.min(0));
        let i1 = (self.size.width as i64).max(di + other.size.width as i64);
        let j1 = (self.size.height as i64).max(dj + other.size.height as i64);
        let (x, y) =
            (self.origin[0] + i0 as f64 * self.spacing, self.origin[1] + j0 as f64 * self.spacing);
        Some(Grid {
            origin: [x, y],
            size: ImageSize::new((i1 - i0) as usize, (j1 - j0) as usize),
            ..*self
        })
    }

    /// Whether `other` is the same grid (to a nanometre).
    pub fn same_as(&self, other: &Grid) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        self.size == other.size
            && close(self.spacing, other.spacing)
            && close(self.origin[0], other.origin[0])
            && close(self.origin[1], other.origin[1])
            && close(self.datum_z, other.datum_z)
    }
}

/// The datum plane of a run (see the module documentation): `water_z` plus `depth_max` when
/// the config gives an explicit depth range, otherwise plus the ring cameras' mean height
/// above the water, at least 0.5 m.
pub fn datum_z(water_z: f64, camera_zs: &[f64], depth_max: Option<f64>) -> f64 {
    if let Some(d) = depth_max {
        return water_z + d;
    }
    let above = if camera_zs.is_empty() {
        0.0
    } else {
        camera_zs.iter().map(|z| water_z - z).sum::<f64>() / camera_zs.len() as f64
    };
    water_z + above.max(0.5)
}

/// One frame's height map.
#[derive(Clone, Debug, PartialEq)]
pub struct HeightMap {
    /// The grid.
    pub grid: Grid,
    /// Metres up from the datum plane (`datum_z − z`); NaN where unsupported.
    pub height: GrayImage,
    /// World Z of the bed (m, +Z down); NaN where unsupported.
    pub z: GrayImage,
    /// Points in each cell.
    pub count: Vec<i32>,
    /// Spread of the supporting points (m, pooled over 3 × 3 cells); NaN where unsupported.
    pub sigma: GrayImage,
}

impl HeightMap {
    /// Grids `points` (world coordinates) on `grid`, keeping the smallest window of it that
    /// holds every cell with a point (a 1 × 1 window at cell (0, 0) when no point is on the
    /// grid): the run's grid spans every camera's view of the datum plane, most of which the
    /// bed never reaches. Points off the grid are ignored.
    pub fn from_points(grid: Grid, points: &[Point3<f64>]) -> Self {
        let (mut lo, mut hi) = ([usize::MAX; 2], [0usize; 2]);
        for p in points {
            if let Some((i, j)) = grid.cell(p.x, p.y)
                && p.z.is_finite()
            {
                lo = [lo[0].min(i), lo[1].min(j)];
                hi = [hi[0].max(i), hi[1].max(j)];
            }
        }
        let grid = if lo[0] == usize::MAX {
            grid.window(0, 0, ImageSize::new(1, 1))
        } else {
            grid.window(lo[0], lo[1], ImageSize::new(hi[0] - lo[0] + 1, hi[1] - lo[1] + 1))
        };
        Self::grid_window(grid, points)
    }

    /// Grids `points` on exactly `grid`.
    fn grid_window(grid: Grid, points: &[Point3<f64>]) -> Self {
        let (w, h) = (grid.size.width, grid.size.height);
        let n = w * h;
        let mut count = vec![0i32; n];
        let mut sum = vec![0.0f64; n];
        let mut sum2 = vec![0.0f64; n];
        // Centre each cell's values on the datum so the sums of squares keep their precision.
        for p in points {
            if let Some((i, j)) = grid.cell(p.x, p.y)
                && p.z.is_finite()
            {
                let k = j * w + i;
                let v = p.z - grid.datum_z;
                count[k] += 1;
                sum[k] += v;
                sum2[k] += v * v;
            }
        }
        // Per cell: mean and sum of squared deviations from it.
        let mean: Vec<f64> = (0..n)
            .map(|k| if count[k] > 0 { sum[k] / count[k] as f64 } else { f64::NAN })
            .collect();
        let ss: Vec<f64> = (0..n)
            .map(|k| if count[k] > 0 { (sum2[k] - sum[k] * mean[k]).max(0.0) } else { 0.0 })
            .collect();
        let mut height = GrayImage::from_elem(grid.size, f32::NAN);
        let mut z = GrayImage::from_elem(grid.size, f32::NAN);
        let mut sigma = GrayImage::from_elem(grid.size, f32::NAN);
        for j in 0..h {
            for i in 0..w {
                let k = j * w + i;
                if count[k] == 0 {
                    continue;
                }
                let (mut pooled, mut dof) = (0.0, 0usize);
                for jj in j.saturating_sub(1)..(j + 2).min(h) {
                    for ii in i.saturating_sub(1)..(i + 2).min(w) {
                        let kk = jj * w + ii;
                        if count[kk] > 1 {
                            pooled += ss[kk];
                            dof += count[kk] as usize - 1;
                        }
                    }
                }
                if dof < MIN_POOLED_DOF {
                    continue;
                }
                let world_z = grid.datum_z + mean[k];
                z.set(i, j, [world_z as f32]);
                height.set(i, j, [(-mean[k]) as f32]);
                sigma.set(i, j, [(pooled / dof as f64).sqrt() as f32]);
            }
        }
        Self { grid, height, z, count, sigma }
    }

    /// This map on `grid`, an [aligned](Grid::aligned_with) grid (typically the
    /// [union](Grid::union) of two maps' windows): cells this map does not cover are empty
    /// (NaN, no points).
    pub fn placed(&self, grid: Grid) -> Self {
        let mut out = Self {
            grid,
            height: GrayImage::from_elem(grid.size, f32::NAN),
            z: GrayImage::from_elem(grid.size, f32::NAN),
            count: vec![0; grid.size.area()],
            sigma: GrayImage::from_elem(grid.size, f32::NAN),
        };
        let (di, dj) = grid.offset_of(&self.grid);
        let (w, h) = (self.grid.size.width, self.grid.size.height);
        for j in 0..h {
            let (jj, row) = (j as i64 + dj, j * w);
            if jj < 0 || jj >= grid.size.height as i64 {
                continue;
            }
            for i in 0..w {
                let ii = i as i64 + di;
                if ii < 0 || ii >= grid.size.width as i64 {
                    continue;
                }
                let (src, dst) = (row + i, jj as usize * grid.size.width + ii as usize);
                out.height.as_mut_slice()[dst] = self.height.as_slice()[src];
                out.z.as_mut_slice()[dst] = self.z.as_slice()[src];
                out.sigma.as_mut_slice()[dst] = self.sigma.as_slice()[src];
                out.count[dst] = self.count[src];
            }
        }
        out
    }

    /// Whether cell `k` (row-major) has a height.
    pub fn supported(&self, k: usize) -> bool {
        self.height.as_slice()[k].is_finite()
    }

    /// Cells with a height.
    pub fn n_supported(&self) -> usize {
        self.height.as_slice().iter().filter(|v| v.is_finite()).count()
    }

    /// Writes `height.npz` (and `height.tif`, a single-band 32-bit float TIFF of `height` with
    /// a GeoTIFF model transformation) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, HeightMapError> {
        let npz = dir.join("height.npz");
        let file_err = |path: &Path, e: &dyn std::fmt::Display| HeightMapError::File {
            path: path.to_path_buf(),
            message: format!("cannot write ({e})"),
        };
        let (w, h) = (self.grid.size.width, self.grid.size.height);
        let origin = self.grid.origin;
        let spacing = [self.grid.spacing];
        let datum = [self.grid.datum_z];
        let count = ArrayRef::i32_2d(h, w, &self.count).map_err(|e| file_err(&npz, &e))?;
        let arrays = [
            ("height", ArrayRef::image(&self.height)),
            ("z", ArrayRef::image(&self.z)),
            ("count", count),
            ("sigma", ArrayRef::image(&self.sigma)),
            ("origin", vector(&origin).map_err(|e| file_err(&npz, &e))?),
            ("spacing", vector(&spacing).map_err(|e| file_err(&npz, &e))?),
            ("datum_z", vector(&datum).map_err(|e| file_err(&npz, &e))?),
        ];
        write_npz_with(&npz, &arrays, Compression::Deflated).map_err(|e| file_err(&npz, &e))?;
        let tif = dir.join("height.tif");
        write_float_tiff(&tif, &self.grid, &self.height).map_err(|e| file_err(&tif, &e))?;
        Ok(vec![npz, tif])
    }

    /// Reads a `height.npz` written by [`write`](Self::write).
    pub fn read(path: &Path) -> Result<Self, HeightMapError> {
        let bad = |message: String| HeightMapError::File { path: path.to_path_buf(), message };
        let mut arrays = read_npz(path).map_err(|e| match e {
            crate::io::npz::NpzError::Read { .. } if !path.exists() => {
                bad("no height map: run `aquamvs reconstruct` with `runtime.heightmap: true` (or \
                 more than one frame) to write one"
                    .into())
            }
            e => bad(format!("not a height map ({e})")),
        })?;
        let mut take = |key: &str| {
            arrays.remove(key).ok_or_else(|| bad(format!("no `{key}` array; not a height map")))
        };
        let height = take("height")?;
        let z = take("z")?;
        let count = take("count")?;
        let sigma = take("sigma")?;
        let scalars = |a: NpyArray, key: &str, n: usize| -> Result<Vec<f64>, HeightMapError> {
            match a.into_parts() {
                (shape, crate::io::npz::ArrayBuf::F64(v)) if shape == [n] => Ok(v),
                (shape, _) => {
                    Err(bad(format!("`{key}` must be {n} float64 value(s), got {shape:?}")))
                }
            }
        };
        let origin = scalars(take("origin")?, "origin", 2)?;
        let spacing = scalars(take("spacing")?, "spacing", 1)?[0];
        let datum_z = scalars(take("datum_z")?, "datum_z", 1)?[0];
        let image =
            |a: NpyArray, key: &str| a.into_f32_image().map_err(|e| bad(format!("`{key}`: {e}")));
        let height = image(height, "height")?;
        let z = image(z, "z")?;
        let sigma = image(sigma, "sigma")?;
        let (ch, cw, count) = count.into_i32_2d().map_err(|e| bad(format!("`count`: {e}")))?;
        let size = height.size();
        if z.size() != size || sigma.size() != size || (cw, ch) != (size.width, size.height) {
            return Err(bad("`height`, `z`, `sigma` and `count` differ in shape".into()));
        }
        if !(spacing.is_finite() && spacing > 0.0 && origin.iter().all(|v| v.is_finite())) {
            return Err(bad(format!("bad grid: origin {origin:?}, spacing {spacing}")));
        }
        let grid = Grid { origin: [origin[0], origin[1]], spacing, size, datum_z };
        Ok(Self { grid, height, z, count, sigma })
    }
}

/// A 1-D `float64` array of `values`.
pub(crate) fn vector(values: &[f64]) -> Result<ArrayRef<'_>, crate::io::npz::NpzError> {
    ArrayRef::new(&[values.len()], ArrayData::F64(values))
}

/// GeoTIFF keys: version 1.1.0, two keys: model type user-defined (32767, a local engineering
/// frame: the rig's world), raster type PixelIsPoint (2: the transformation maps pixel
/// centres).
const GEO_KEYS: [u16; 12] = [1, 1, 0, 2, 1024, 0, 1, 32767, 1025, 0, 1, 2];

/// Writes `values` as a single-band 32-bit float TIFF with the GeoTIFF ModelTransformation
/// (world x, y of each pixel centre; rows grow with +Y), GeoKeys and GDAL's no-data tag (NaN).
fn write_float_tiff(
    path: &Path,
    grid: &Grid,
    values: &GrayImage,
) -> Result<(), crate::io::atomic::WriteError> {
    use tiff::encoder::{TiffEncoder, colortype::Gray32Float};
    use tiff::tags::Tag;
    let s = grid.spacing;
    #[rustfmt::skip]
    let transform: [f64; 16] = [
        s, 0.0, 0.0, grid.origin[0],
        0.0, s, 0.0, grid.origin[1],
        0.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 1.0,
    ];
    write_atomic(path, |file| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut buf).map_err(std::io::Error::other)?;
        let (w, h) = (values.width() as u32, values.height() as u32);
        let mut image = enc.new_image::<Gray32Float>(w, h).map_err(std::io::Error::other)?;
        let dir = image.encoder();
        dir.write_tag(Tag::Unknown(34264), &transform[..]).map_err(std::io::Error::other)?;
        dir.write_tag(Tag::GeoKeyDirectoryTag, &GEO_KEYS[..]).map_err(std::io::Error::other)?;
        dir.write_tag(Tag::Unknown(42113), "nan").map_err(std::io::Error::other)?;
        image.write_data(values.as_slice()).map_err(std::io::Error::other)?;
        std::io::Write::write_all(file, buf.get_ref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid { origin: [-0.01, -0.02], spacing: 0.002, size: ImageSize::new(10, 20), datum_z: 1.5 }
    }

    #[test]
    fn grids_points_with_heights_up_and_pooled_spread() {
        let g = grid();
        // Every cell gets two points at z = 1.45 ± 1 mm: mean 1.45, spread √2 mm (n − 1).
        let mut pts = Vec::new();
        for j in 0..20 {
            for i in 0..10 {
                let (x, y) = g.centre(i, j);
                pts.push(Point3::new(x + 0.0004, y, 1.449));
                pts.push(Point3::new(x, y - 0.0004, 1.451));
            }
        }
        pts.push(Point3::new(5.0, 5.0, 1.0)); // off the grid
        let m = HeightMap::from_points(g, &pts);
        assert_eq!(m.n_supported(), 200);
        assert!(m.count.iter().all(|&c| c == 2));
        for v in m.height.as_slice() {
            assert!((v - 0.05).abs() < 1e-6, "{v}");
        }
        for v in m.z.as_slice() {
            assert!((v - 1.45).abs() < 1e-6);
        }
        for v in m.sigma.as_slice() {
            assert!((v - 2e-6f32.sqrt()).abs() < 1e-6, "{v}");
        }
    }

    fn bits(image: &GrayImage) -> Vec<u32> {
        image.as_slice().iter().map(|v| v.to_bits()).collect()
    }

    /// Two points per cell over columns `cols` and rows `rows` of `g`, heights varying.
    fn patch(
        g: &Grid,
        cols: std::ops::Range<usize>,
        rows: std::ops::Range<usize>,
    ) -> Vec<Point3<f64>> {
        let mut pts = Vec::new();
        for j in rows {
            for i in cols.clone() {
                let (x, y) = g.centre(i, j);
                let z = 1.45 + 1e-4 * (i + 3 * j) as f64;
                pts.push(Point3::new(x, y, z - 5e-4));
                pts.push(Point3::new(x, y, z + 5e-4));
            }
        }
        pts
    }

    #[test]
    fn a_map_keeps_the_window_its_points_reach_and_places_back_exactly() {
        let g = grid();
        let pts = patch(&g, 2..5, 3..7);
        let m = HeightMap::from_points(g, &pts);
        assert_eq!(m.grid.size, ImageSize::new(3, 4));
        assert_eq!(m.grid.centre(0, 0), g.centre(2, 3));
        assert!(m.grid.aligned_with(&g) && !m.grid.same_as(&g));
        // Placed back on the run's grid it is the map gridded there directly, bit for bit.
        let full = HeightMap::grid_window(g, &pts);
        let back = m.placed(g);
        assert_eq!(back.grid, g);
        assert_eq!(back.count, full.count);
        for (a, b) in [(&back.height, &full.height), (&back.z, &full.z), (&back.sigma, &full.sigma)]
        {
            assert_eq!(bits(a), bits(b));
        }
        // No point on the grid: one empty cell.
        let empty = HeightMap::from_points(g, &[Point3::new(9.0, 9.0, 1.0)]);
        assert_eq!((empty.grid.size, empty.n_supported()), (ImageSize::new(1, 1), 0));
    }

    #[test]
    fn windows_of_one_grid_unite_and_other_grids_do_not() {
        let g = grid();
        let a = HeightMap::from_points(g, &patch(&g, 0..3, 0..2));
        let b = HeightMap::from_points(g, &patch(&g, 6..10, 15..20));
        let u = a.grid.union(&b.grid).unwrap();
        assert!(u.same_as(&g), "{u:?}");
        assert_eq!(b.grid.union(&a.grid).unwrap(), u);
        let (pa, pb) = (a.placed(u), b.placed(u));
        assert_eq!((pa.n_supported(), pb.n_supported()), (6, 20));
        let k = 17 * 10 + 8;
        assert!(pb.supported(k) && !pa.supported(k));
        // Another cell size, another datum, or a lattice shifted by half a cell: not aligned.
        assert!(a.grid.union(&Grid { spacing: 0.004, ..a.grid }).is_none());
        assert!(a.grid.union(&Grid { datum_z: 1.6, ..a.grid }).is_none());
        let shifted = Grid { origin: [a.grid.origin[0] + 0.001, a.grid.origin[1]], ..a.grid };
        assert!(a.grid.union(&shifted).is_none());
    }

    #[test]
    fn isolated_points_are_unsupported() {
        let g = grid();
        let (x, y) = g.centre(4, 4);
        let m = HeightMap::from_points(g, &[Point3::new(x, y, 1.4)]);
        assert_eq!(m.n_supported(), 0);
        assert_eq!(m.count.iter().sum::<i32>(), 1);
    }

    #[test]
    fn writes_and_reads_back_npz_and_a_float_tiff() {
        let g = grid();
        let pts: Vec<_> = (0..200)
            .flat_map(|k| {
                let (x, y) = g.centre(k % 10, k / 10);
                [
                    Point3::new(x, y, 1.40 + 1e-4 * k as f64),
                    Point3::new(x, y, 1.401 + 1e-4 * k as f64),
                ]
            })
            .collect();
        let m = HeightMap::from_points(g, &pts);
        let dir = tempfile::tempdir().unwrap();
        let written = m.write(dir.path()).unwrap();
        assert_eq!(written.len(), 2);
        let back = HeightMap::read(&dir.path().join("height.npz")).unwrap();
        assert_eq!(back, m);
        let file = std::fs::File::open(dir.path().join("height.tif")).unwrap();
        let mut tif = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).unwrap();
        assert_eq!(tif.dimensions().unwrap(), (10, 20));
        let transform = tif.get_tag_f64_vec(tiff::tags::Tag::Unknown(34264)).unwrap();
        assert_eq!((transform[0], transform[3], transform[7]), (0.002, -0.01, -0.02));
        match tif.read_image().unwrap() {
            tiff::decoder::DecodingResult::F32(v) => assert_eq!(v, m.height.as_slice()),
            _ => panic!("not float32"),
        }
        let missing = HeightMap::read(&dir.path().join("nope.npz")).unwrap_err().to_string();
        assert!(missing.contains("runtime.heightmap"), "{missing}");
    }

    #[test]
    fn grid_covers_a_camera_footprint_and_is_aligned() {
        let rig = crate::synth::rig::RigParams::preset(crate::synth::rig::RigPreset::Tiny)
            .build()
            .unwrap();
        let cams: Vec<RefractiveCamera> =
            rig.ring_names().iter().map(|n| rig.undistorted_camera(n).unwrap().1).collect();
        let refs: Vec<&RefractiveCamera> = cams.iter().collect();
        let zs: Vec<f64> = cams.iter().map(|c| c.centre().z).collect();
        let datum = datum_z(rig.water_z(), &zs, None);
        let g = Grid::covering(&refs, datum, 0.004).unwrap();
        assert!((g.origin[0] / 0.004).fract().abs() < 1e-9);
        // The centre pixel of every camera lands on the grid.
        for c in &cams {
            let s = c.size();
            let ray = c.cast_ray(s.width as f64 / 2.0, s.height as f64 / 2.0).unwrap();
            let p = ray.point_at((datum - ray.origin.z) / ray.dir.z);
            assert!(g.cell(p.x, p.y).is_some());
        }
        assert!(Grid::covering(&refs, datum, 1e-6).is_err());
        assert!(Grid::covering(&refs, datum, 0.0).is_err());
    }
}
