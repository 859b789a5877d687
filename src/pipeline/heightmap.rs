//! The height-map stage: a frame's cloud gridded on the run's shared grid
//! (`frame_NNNNNN/heightmap/height.npz` and `height.tif`), when `runtime.heightmap` is on
//! (null: when the run has more than one frame).

use std::path::Path;

use crate::change::output::{ChangeFile, path};
use crate::cloud::PointCloud;
use crate::config::DepthRange;
use crate::geom::refraction::RefractiveCamera;
use crate::heightmap::{Grid, HeightMap, datum_z};

use super::context::Context;
use super::{FrameReport, PipelineError};

/// Whether this run writes height maps.
pub fn enabled(ctx: &Context) -> bool {
    ctx.config.runtime.heightmap.unwrap_or(ctx.frames.len() > 1)
}

/// The run's grid: from the ring cameras, the water surface, the explicit depth range if any,
/// and `reconstruction.grid_resolution` (never from a frame's cloud).
pub fn run_grid(ctx: &Context) -> Result<Grid, PipelineError> {
    let ring: Vec<&RefractiveCamera> = ctx.ring.iter().map(|n| ctx.camera(n)).collect();
    let zs: Vec<f64> = ring.iter().map(|c| c.centre().z).collect();
    let depth_max = match &ctx.config.reconstruction.depth_range {
        Some(DepthRange::Fixed { max, .. }) => Some(*max),
        _ => None,
    };
    let datum = datum_z(ctx.rig.water_z(), &zs, depth_max);
    Grid::covering(&ring, datum, ctx.config.reconstruction.grid_resolution)
        .map_err(PipelineError::from)
}

/// Grids `cloud` and writes the frame's height map under `output`.
pub fn write_frame_height_map(
    ctx: &Context,
    cloud: &PointCloud,
    output: &Path,
    index: usize,
    report: &mut FrameReport,
) -> Result<(), PipelineError> {
    let grid = run_grid(ctx)?;
    let map = HeightMap::from_points(grid, cloud.points());
    let dir = path(output, ChangeFile::HeightMapDir(index));
    map.write(&dir)?;
    let frame = crate::layout::OutputLayout::new(output).frame(index);
    for f in ["height.npz", "height.tif"] {
        report.outputs.push(frame.heightmap(f).rel);
    }
    tracing::info!(
        "height map: {} cells supported in a window of {} of the run's {} cells of {:.1} mm",
        map.n_supported(),
        map.grid.size,
        grid.size,
        grid.spacing * 1e3
    );
    Ok(())
}
