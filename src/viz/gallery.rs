//! `summary/timeseries_gallery.png`: one height map per frame on a common colour scale, so
//! that change over time (sediment moving, an object placed) shows as change in colour.
//!
//! Each frame's cloud is reduced to a [`HeightGrid`] (mean world Z per square cell) as soon as
//! it is read, so a long series never holds more than one cloud in memory.

use nalgebra::Point3;
use rayon::prelude::*;

use super::colorbar::colorbar;
use super::colormap::{Colormap, ValueRange};
use super::draw::{self, Anchor, BLACK};
use super::raster::point_spacing;
use super::scene::{format_length, robust_bounds};
use crate::imgproc::{ImageSize, RgbImage};

/// Cells along the longer side of a grid, unless the points are too sparse for that many.
pub(crate) const GRID_CELLS: usize = 256;

/// Most cells along either side of a grid (bounds memory for odd inputs).
const MAX_GRID_CELLS: usize = 2048;

/// Colour of cells without points (lighter than the invalid grey of depth maps: the corners
/// of a round bottom in a square grid are not errors).
pub(crate) const NO_DATA: [u8; 3] = [225, 225, 225];

/// Width of the block of tiles in the gallery, in pixels.
const GALLERY_WIDTH: usize = 1200;

/// Mean world Z per cell of a square grid over part of the XY plane (NaN where no point fell).
#[derive(Clone, Debug, PartialEq)]
pub struct HeightGrid {
    x0: f64,
    y0: f64,
    cell: f64,
    nx: usize,
    ny: usize,
    values: Vec<f32>,
}

impl HeightGrid {
    /// A cell size for `points`: `GRID_CELLS` across the longer side, but at least twice
    /// the point spacing so that cells are not mostly empty. `None` for fewer than two points.
    pub fn suggested_cell(points: &[Point3<f64>]) -> Option<f64> {
        let (lo, hi) = robust_bounds(points)?;
        let longest = (hi.x - lo.x).max(hi.y - lo.y);
        let spacing = point_spacing(points).unwrap_or(0.0);
        let cell = (longest / GRID_CELLS as f64).max(2.0 * spacing);
        (cell.is_finite() && cell > 0.0).then_some(cell)
    }

    /// Grids `points` at `cell` metres over their robust XY bounds (the cell edges snapped to
    /// multiples of `cell`, so grids of different frames line up). `None` when there are no
    /// points or `cell` is not positive.
    pub fn from_points(points: &[Point3<f64>], cell: f64) -> Option<Self> {
        if !(cell.is_finite() && cell > 0.0) {
            return None;
        }
        let (lo, hi) = robust_bounds(points)?;
        let x0 = (lo.x / cell).floor() * cell;
        let y0 = (lo.y / cell).floor() * cell;
        let nx = (((hi.x - x0) / cell).floor() as usize + 1).min(MAX_GRID_CELLS);
        let ny = (((hi.y - y0) / cell).floor() as usize + 1).min(MAX_GRID_CELLS);
        let mut sum = vec![0.0f64; nx * ny];
        let mut count = vec![0u32; nx * ny];
        for p in points {
            let i = ((p.x - x0) / cell).floor();
            let j = ((p.y - y0) / cell).floor();
            if i >= 0.0 && j >= 0.0 && (i as usize) < nx && (j as usize) < ny && p.z.is_finite() {
                let k = j as usize * nx + i as usize;
                sum[k] += p.z;
                count[k] += 1;
            }
        }
        let values: Vec<f32> = sum
            .iter()
            .zip(&count)
            .map(|(&s, &c)| if c > 0 { (s / c as f64) as f32 } else { f32::NAN })
            .collect();
        let values = fill_pinholes(&values, nx, ny);
        Some(Self { x0, y0, cell, nx, ny, values })
    }

    /// Cell side (metres).
    pub fn cell(&self) -> f64 {
        self.cell
    }

    /// Cells along x and y.
    pub fn dims(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// XY bounds `(x_min, y_min, x_max, y_max)` of the grid (cell edges).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        (
            self.x0,
            self.y0,
            self.x0 + self.nx as f64 * self.cell,
            self.y0 + self.ny as f64 * self.cell,
        )
    }

    /// Cell values, row-major from (x_min, y_min); NaN where empty.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The value of the cell holding (x, y), or `None` outside the grid or in an empty cell.
    pub fn value_at(&self, x: f64, y: f64) -> Option<f32> {
        let i = ((x - self.x0) / self.cell).floor();
        let j = ((y - self.y0) / self.cell).floor();
        if i < 0.0 || j < 0.0 || i as usize >= self.nx || j as usize >= self.ny {
            return None;
        }
        let v = self.values[j as usize * self.nx + i as usize];
        v.is_finite().then_some(v)
    }
}

/// Fills empty cells that have at least five of their eight neighbours filled with the mean of
/// those neighbours: the scattered gaps an irregular cloud leaves in a grid as fine as its
/// spacing. Gaps at the edge of the data or wider than a cell stay empty.
fn fill_pinholes(values: &[f32], nx: usize, ny: usize) -> Vec<f32> {
    let mut out = values.to_vec();
    for j in 1..ny.saturating_sub(1) {
        for i in 1..nx.saturating_sub(1) {
            if values[j * nx + i].is_finite() {
                continue;
            }
            let (mut sum, mut n) = (0.0f64, 0);
            for (di, dj) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let v = values[(j as i64 + dj) as usize * nx + (i as i64 + di) as usize];
                if v.is_finite() {
                    sum += v as f64;
                    n += 1;
                }
            }
            if n >= 5 {
                out[j * nx + i] = (sum / n as f64) as f32;
            }
        }
    }
    out
}

/// A grid of height maps, one tile per frame in the order given, over the union of their
/// bounds and on one colour scale (the 1st-99th percentile of all cells), with a colour bar.
pub(crate) fn timeseries_gallery(frames: &[(usize, HeightGrid)]) -> RgbImage {
    let s = 2;
    let pad = 8 * s;
    let line_h = draw::text_size("F", s).1;
    if frames.is_empty() {
        return super::scene::empty_picture(ImageSize::new(640, 240), "no frames with points");
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (_, g) in frames {
        let b = g.bounds();
        x0 = x0.min(b.0);
        y0 = y0.min(b.1);
        x1 = x1.max(b.2);
        y1 = y1.max(b.3);
    }
    let all = frames.iter().flat_map(|(_, g)| g.values().iter().map(|&v| v as f64));
    let range = ValueRange::from_quantiles(all, 0.01, 0.99).unwrap_or(ValueRange::new(0.0, 1.0));
    let n = frames.len();
    let ncols = (n as f64).sqrt().ceil() as usize;
    let nrows = n.div_ceil(ncols);
    let (ex, ey) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let tile_w = ((GALLERY_WIDTH - (ncols - 1) * pad) / ncols).clamp(120, 480);
    let tile_h = ((tile_w as f64 * ey / ex).round() as usize).clamp(40, 2 * tile_w);
    let cell_h = line_h + pad / 2 + tile_h + pad;
    let title = format!(
        "height maps, {} frame{}, common colour scale, cell {}",
        n,
        if n == 1 { "" } else { "s" },
        format_length(frames[0].1.cell())
    );
    let title_h = line_h + 2 * pad;
    let grid_w = ncols * tile_w + (ncols - 1) * pad;
    let grid_h = nrows * cell_h;
    let bar = colorbar(Colormap::Viridis, range, "world Z (m, down)", grid_h.max(240), s);
    let page_w = (pad + grid_w + pad + bar.width()).max(draw::text_size(&title, s).0 + 2 * pad);
    let page_h = title_h + grid_h.max(bar.height()) + pad;
    let mut page = RgbImage::from_elem(ImageSize::new(page_w, page_h), 255);
    draw::text(&mut page, pad as i64, pad as i64, &title, s, BLACK, Anchor::TopLeft);
    let tiles: Vec<RgbImage> = frames
        .par_iter()
        .map(|(_, g)| {
            RgbImage::from_fn(ImageSize::new(tile_w, tile_h), |i, j| {
                let x = x0 + (i as f64 + 0.5) / tile_w as f64 * ex;
                let y = y0 + (j as f64 + 0.5) / tile_h as f64 * ey;
                match g.value_at(x, y) {
                    Some(z) => Colormap::Viridis.map_unit(range.normalise(z as f64) as f32),
                    None => NO_DATA,
                }
            })
        })
        .collect();
    for (k, ((frame, _), tile)) in frames.iter().zip(&tiles).enumerate() {
        let (col, row) = (k % ncols, k / ncols);
        let x = pad + col * (tile_w + pad);
        let y = title_h + row * cell_h;
        draw::text(
            &mut page,
            x as i64,
            y as i64,
            &format!("frame {frame}"),
            s,
            BLACK,
            Anchor::TopLeft,
        );
        draw::paste(&mut page, tile, x as i64, (y + line_h + pad / 2) as i64);
    }
    draw::paste(&mut page, &bar, (pad + grid_w + pad) as i64, title_h as i64);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::PointCloud;
    use crate::viz::draw::tests::{count_color, ink_fraction};
    use crate::viz::scene::tests::tiny_cloud;

    /// The gallery from clouds: all are gridded at the largest cell size any of them suggests
    /// (see [`HeightGrid::suggested_cell`]), so the sparsest frame still fills its grid.
    fn timeseries_gallery_from_clouds(frames: &[(usize, &PointCloud)]) -> RgbImage {
        let cell = frames
            .par_iter()
            .filter_map(|(_, c)| HeightGrid::suggested_cell(c.points()))
            .reduce_with(f64::max);
        let grids: Vec<(usize, HeightGrid)> = match cell {
            Some(cell) => frames
                .par_iter()
                .filter_map(|(f, c)| HeightGrid::from_points(c.points(), cell).map(|g| (*f, g)))
                .collect(),
            None => Vec::new(),
        };
        timeseries_gallery(&grids)
    }

    fn plane(z: impl Fn(f64, f64) -> f64) -> Vec<Point3<f64>> {
        (0..50 * 50)
            .map(|k| {
                let (x, y) = ((k % 50) as f64 * 0.01 + 0.005, (k / 50) as f64 * 0.01 + 0.005);
                Point3::new(x, y, z(x, y))
            })
            .collect()
    }

    #[test]
    fn grids_average_heights_per_cell() {
        let pts = plane(|x, _| 1.0 + 0.1 * x);
        let g = HeightGrid::from_points(&pts, 0.05).unwrap();
        assert_eq!(g.dims(), (10, 10));
        // Cell 2 holds x = 0.105 … 0.145: mean z = 1.0125.
        let v = g.value_at(0.12, 0.2).unwrap();
        assert!((v - 1.0125).abs() < 1e-6, "{v}");
        assert!(g.value_at(-1.0, 0.0).is_none());
        let row: Vec<f32> = (0..10).map(|i| g.values()[30 + i]).collect();
        assert!(row.windows(2).all(|w| w[1] > w[0]));
        let cell = HeightGrid::suggested_cell(&pts).unwrap();
        assert!(cell > 0.015 && cell < 0.05, "{cell}");
        assert!(HeightGrid::from_points(&[], 0.1).is_none());
    }

    #[test]
    fn gallery_uses_one_colour_scale_for_all_frames() {
        let low = HeightGrid::from_points(&plane(|_, _| 1.0), 0.02).unwrap();
        let high = HeightGrid::from_points(&plane(|_, _| 1.1), 0.02).unwrap();
        let img = timeseries_gallery(&[(0, low), (7, high)]);
        // Two frames: two tiles, one at each end of the scale.
        let first = Colormap::Viridis.map_unit(0.0);
        let last = Colormap::Viridis.map_unit(1.0);
        assert!(count_color(&img, first) > 10_000, "{}", count_color(&img, first));
        assert!(count_color(&img, last) > 10_000);
        assert!(img.width() >= GALLERY_WIDTH);
    }

    #[test]
    fn gallery_of_a_drifting_sand_bed() {
        let clouds: Vec<PointCloud> = (0..3).map(tiny_cloud).collect();
        let frames: Vec<(usize, &PointCloud)> = clouds.iter().enumerate().collect();
        let img = timeseries_gallery_from_clouds(&frames);
        assert!(img.width() >= GALLERY_WIDTH && img.height() > 300);
        assert!(ink_fraction(&img) > 0.3, "{}", ink_fraction(&img));
        // Three tiles of colour, few cells without data inside the sampled square.
        assert!(count_color(&img, NO_DATA) < img.size().area() / 20);
        let empty = timeseries_gallery(&[]);
        assert!(ink_fraction(&empty) > 0.0);
    }
}
