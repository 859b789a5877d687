//! Regions of interest of a comparison: a polygon in world X/Y, or the non-zero pixels of a
//! mask image drawn on one camera's undistorted view (the images `aquamvs export-refs`
//! writes, as for `mask_dir`).

use std::path::PathBuf;

use crate::geom::refraction::RefractiveCamera;
use crate::heightmap::Grid;
use crate::imgproc::{GrayImage, ImageSize, MaskImage};
use crate::masks::keeps_keypoint;

/// A region of interest that cannot be used; each names the vertex, file or camera.
#[derive(Debug, thiserror::Error)]
pub enum RoiError {
    /// A polygon vertex that is not two finite numbers.
    #[error("vertex {number} `{text}` is not `x,y` in metres (e.g. `-0.1,-0.1;0.1,-0.1;0,0.1`)")]
    Vertex {
        /// 1-based.
        number: usize,
        /// The vertex as given.
        text: String,
    },
    /// Fewer than three vertices.
    #[error("a polygon needs at least 3 vertices `x,y;x,y;x,y`, got {0}")]
    FewVertices(usize),
    /// A mask of another size than the camera's undistorted image.
    #[error(
        "the mask is {mask} but the camera's undistorted image is {camera}; draw it on the \
         image `aquamvs export-refs` writes"
    )]
    MaskSize {
        /// The mask's size.
        mask: ImageSize,
        /// The undistorted image's size.
        camera: ImageSize,
    },
    /// A mask file that cannot be used.
    #[error("{}: {source}", path.display())]
    MaskFile {
        /// The mask.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The run's copy of its config (which names the calibration) cannot be read.
    #[error("{}: {source} (the run's copy of its config names the calibration)", path.display())]
    RunConfig {
        /// `OUTPUT/config.yaml`.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::config::ConfigError,
    },
    /// The calibration cannot be read.
    #[error(transparent)]
    Calibration(#[from] crate::calib::CalibError),
    /// The mask's camera is not in the rig, or cannot be undistorted.
    #[error("--roi-camera: {0}")]
    Camera(#[source] crate::calib::RigError),
    /// Flags of another length than the grid.
    #[error("{flags} flags for {cells} cells")]
    FlagCount {
        /// Flags given.
        flags: usize,
        /// Cells of the grid.
        cells: usize,
    },
}

/// Parses `x,y;x,y;x,y…` (world metres, at least three vertices).
pub fn parse_polygon(text: &str) -> Result<Vec<[f64; 2]>, RoiError> {
    let mut out = Vec::new();
    for (k, vertex) in text.split(';').map(str::trim).filter(|v| !v.is_empty()).enumerate() {
        let parsed = vertex.split_once(',').and_then(|(x, y)| {
            let (x, y) = (x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?);
            (x.is_finite() && y.is_finite()).then_some([x, y])
        });
        match parsed {
            Some(p) => out.push(p),
            None => return Err(RoiError::Vertex { number: k + 1, text: vertex.to_owned() }),
        }
    }
    if out.len() < 3 {
        return Err(RoiError::FewVertices(out.len()));
    }
    Ok(out)
}

/// Whether (x, y) is inside `polygon` (even-odd rule).
pub fn inside(polygon: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for k in 0..n {
        let (a, b) = (polygon[k], polygon[(k + n - 1) % n]);
        if (a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
    }
    inside
}

/// One flag per cell: its centre is inside `polygon`.
pub fn polygon_flags(grid: &Grid, polygon: &[[f64; 2]]) -> Vec<bool> {
    let w = grid.size.width;
    (0..grid.size.area())
        .map(|k| {
            let (x, y) = grid.centre(k % w, k / w);
            inside(polygon, x, y)
        })
        .collect()
}

/// One flag per cell: the cell's bed point (its centre at world Z from `z`, NaN cells are out)
/// projects onto a non-zero pixel of `mask`, drawn on `camera`'s undistorted image.
pub fn mask_flags(
    grid: &Grid,
    z: &GrayImage,
    camera: &RefractiveCamera,
    mask: &MaskImage,
) -> Result<Vec<bool>, RoiError> {
    if mask.size() != camera.size() {
        return Err(RoiError::MaskSize { mask: mask.size(), camera: camera.size() });
    }
    let w = grid.size.width;
    Ok((0..grid.size.area())
        .map(|k| {
            let zk = z.as_slice()[k];
            if !zk.is_finite() {
                return false;
            }
            let (x, y) = grid.centre(k % w, k / w);
            match camera.project(&nalgebra::Point3::new(x, y, zk as f64)) {
                Ok(p) => keeps_keypoint(mask, p.x, p.y),
                Err(_) => false,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_parse_and_contain() {
        let p = parse_polygon("0,0; 1,0; 1,1; 0,1").unwrap();
        assert!(inside(&p, 0.5, 0.5) && !inside(&p, 1.5, 0.5) && !inside(&p, -0.1, 0.2));
        // A concave L.
        let l = parse_polygon("0,0;2,0;2,1;1,1;1,2;0,2").unwrap();
        assert!(inside(&l, 0.5, 1.5) && !inside(&l, 1.5, 1.5));
        assert!(parse_polygon("0,0;1,0").unwrap_err().to_string().contains("at least 3"));
        assert!(parse_polygon("0,0;1,x;1,1").unwrap_err().to_string().contains("vertex 2"));
        assert!(parse_polygon("0,0;1,NaN;1,1").is_err());
    }
}
