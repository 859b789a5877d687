//! The stages of one frame, one file each, in the order [`super::frame::process_frame`]
//! runs them: `undistort` (read and undistort every camera), `matching` (sparse matches and
//! their triangulation), `depth` (depth ranges and the plane sweep of each ring camera),
//! `fusion` (consistency filter, back-projection, voxels, normals, outliers) and `surface`
//! (the mesh, its colours, and the sparse pathway's cloud). Each stage takes values (the
//! undistorted views, the resolved [`super::plan::StageOptions`], the previous stage's
//! result) and returns a value; writing its files is a side effect recorded in the frame's
//! report. None reads another stage's files.

use std::collections::BTreeMap;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use nalgebra::Point3;

use crate::imgproc::{GrayImage, RgbImage};

use super::PipelineError;
use super::context::Context;
use super::report::FrameReport;

pub(crate) mod depth;
pub(crate) mod fusion;
pub(crate) mod matching;
pub(crate) mod surface;
pub(crate) mod undistort;

/// The undistorted images of one camera.
#[derive(Clone, Debug)]
pub(crate) struct FrameView {
    /// Colour, for back-projection and colours.
    pub rgb: RgbImage,
    /// Grey, for matching and the plane sweep.
    pub gray: GrayImage,
}

/// The undistorted views of a frame's readable cameras, by name.
pub(crate) type FrameViews = BTreeMap<String, FrameView>;

/// Times stages and records them in the report.
pub(crate) struct Stages<'r> {
    /// The frame's report.
    pub report: &'r mut FrameReport,
}

impl Stages<'_> {
    /// Runs stage `name` in a `tracing` span and records its wall time.
    pub fn run<T>(&mut self, name: &'static str, f: impl FnOnce(&mut FrameReport) -> T) -> T {
        let span = tracing::info_span!("stage", name);
        let _entered = span.enter();
        let start = Instant::now();
        let out = f(self.report);
        let seconds = start.elapsed().as_secs_f64();
        tracing::info!("{name}: {:.0} ms", seconds * 1e3);
        self.report.stage_seconds.push((name.to_owned(), seconds));
        out
    }
}

/// The centres of the run's active cameras (normals face the nearest).
pub(crate) fn camera_centres(ctx: &Context) -> Vec<Point3<f64>> {
    ctx.cameras.values().map(|c| c.camera.centre()).collect()
}

/// Writes output file `rel` on a thread of its own in `scope` (inside the current span, as an
/// `export` span), so that the write overlaps the computation that follows it. The frame
/// waits for it with [`join_export`] before it is reported done.
pub(crate) fn spawn_export<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    rel: &str,
    write: impl FnOnce() -> Result<T, PipelineError> + Send + 'scope,
) -> ScopedJoinHandle<'scope, Result<T, PipelineError>> {
    let span = tracing::debug_span!("export", file = rel);
    scope.spawn(move || span.in_scope(write))
}

/// Waits for a write started by [`spawn_export`]; its error is the frame's.
pub(crate) fn join_export<T>(
    handle: ScopedJoinHandle<'_, Result<T, PipelineError>>,
) -> Result<T, PipelineError> {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_runs_beside_its_caller_and_returns_its_value_or_its_error() {
        let data = [1u8, 2, 3];
        std::thread::scope(|scope| {
            // Borrows what the caller owns, as the frame's writes borrow nothing but move.
            let sum = spawn_export(scope, "a.bin", || {
                Ok(data.iter().map(|&b| u32::from(b)).sum::<u32>())
            });
            let failed: ScopedJoinHandle<'_, Result<(), _>> =
                spawn_export(scope, "b.bin", || Err(PipelineError::NoRingCamera { frame: 3 }));
            assert_eq!(join_export(sum).unwrap(), 6u32);
            assert!(matches!(join_export(failed), Err(PipelineError::NoRingCamera { frame: 3 })));
        });
    }
}
