//! Stage `undistortion`: frame *i* of every camera read and undistorted into the geometry
//! every later stage works in. A camera whose image cannot be read or does not match its
//! calibration is left out of this frame (a warning and an entry in the report), never the
//! whole frame.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::frames::FrameImages;
use crate::imgproc::rgb_to_gray;

use super::super::PipelineError;
use super::super::context::{CameraSetup, Context};
use super::super::read_ahead::FrameRead;
use super::super::report::FrameReport;
use super::{FrameView, FrameViews};

/// Undistorts every camera's image of frame `index`: `read` when the frame loop has read it
/// already (ahead, while the previous frame was computed), otherwise read here.
pub(crate) fn undistort_frame(
    ctx: &Context,
    index: usize,
    read: Option<FrameRead>,
    report: &mut FrameReport,
) -> Result<FrameViews, PipelineError> {
    let raw = match read {
        Some(read) => read?,
        None => {
            // Frames are processed one at a time; a poisoned lock only means an earlier frame
            // panicked, and the readers are still usable.
            let mut reader = ctx.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            reader.read(index)?
        }
    };
    Ok(undistort_images(&ctx.cameras, raw, index, report))
}

/// Undistorts the images of the active `cameras` (others are ignored); a camera whose image
/// failed to read or does not fit its undistortion is skipped and recorded in `report`.
pub(crate) fn undistort_images(
    cameras: &BTreeMap<String, CameraSetup>,
    raw: FrameImages,
    index: usize,
    report: &mut FrameReport,
) -> FrameViews {
    let undistorted: Vec<(String, Result<FrameView, PipelineError>)> = raw
        .into_par_iter()
        .filter(|(name, _)| cameras.contains_key(name))
        .map(|(name, image)| {
            let _span = tracing::debug_span!("undistort", camera = name.as_str()).entered();
            let view = image.map_err(PipelineError::from).and_then(|img| {
                let rgb = cameras[&name].undistort.remap_rgb(&img).map_err(|source| {
                    PipelineError::CameraImage { camera: name.clone(), source }
                })?;
                let gray = rgb_to_gray(&rgb);
                Ok(FrameView { rgb, gray })
            });
            (name, view)
        })
        .collect();
    let mut views = BTreeMap::new();
    for (name, view) in undistorted {
        match view {
            Ok(v) => {
                views.insert(name, v);
            }
            Err(e) => {
                tracing::warn!("frame {index}: camera `{name}` skipped: {e}");
                report.camera_errors.push(e.to_string());
                report.skipped_cameras.push(name);
            }
        }
    }
    views
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::FramesError;
    use crate::imgproc::{Image, ImageSize, RgbImage};
    use crate::synth::rig::{RigParams, RigPreset};

    #[test]
    fn skips_unreadable_and_misfit_cameras_and_keeps_the_rest() {
        let rig = RigParams::preset(RigPreset::Tiny).build().expect("tiny rig");
        let names: Vec<String> = rig.cameras().iter().map(|c| c.name.clone()).collect();
        let cameras: BTreeMap<String, CameraSetup> = names[..3]
            .iter()
            .map(|n| {
                let (undistort, camera) = rig.undistorted_camera(n).expect("camera");
                (n.clone(), CameraSetup { undistort, camera })
            })
            .collect();
        let size = rig.camera(&names[0]).expect("camera").image_size;
        let grey = |v: u8| -> RgbImage { Image::from_fn(size, |_, _| [v, v, v]) };
        let mut raw = FrameImages::new();
        raw.insert(names[0].clone(), Ok(grey(128)));
        raw.insert(names[1].clone(), Ok(Image::from_fn(ImageSize::new(7, 5), |_, _| [0, 0, 0])));
        raw.insert(names[2].clone(), Err(FramesError::FrameOutOfRange { frame: 3, count: 1 }));
        raw.insert("not_active".into(), Ok(grey(0)));
        let mut report = FrameReport::default();
        let views = undistort_images(&cameras, raw, 3, &mut report);
        assert_eq!(views.keys().collect::<Vec<_>>(), vec![&names[0]]);
        let view = &views[&names[0]];
        assert_eq!(view.rgb.size(), cameras[&names[0]].camera.size());
        assert_eq!(view.gray.size(), view.rgb.size());
        let mut skipped = report.skipped_cameras.clone();
        skipped.sort();
        assert_eq!(skipped, vec![names[1].clone(), names[2].clone()]);
        let misfit = report.camera_errors.iter().find(|e| e.contains(&names[1])).expect("named");
        assert!(misfit.contains("does the image match the calibration?"), "{misfit}");
    }
}
