//! Reading one frame of every camera from the run's inputs.

use std::collections::BTreeMap;

use crate::frames::{CameraInput, FramesError, InputSet, probe_video};
use crate::imgproc::RgbImage;

use super::PipelineError;

/// Frames available in every camera: the shortest input.
pub fn frame_count(inputs: &InputSet) -> Result<usize, PipelineError> {
    let mut count = usize::MAX;
    for name in inputs.camera_names() {
        let n = match inputs.camera(name) {
            Some(CameraInput::Images(files)) => files.len(),
            Some(CameraInput::Video(path)) => probe_video(path)?.frames,
            None => continue,
        };
        count = count.min(n);
    }
    Ok(if count == usize::MAX { 0 } else { count })
}

/// The RGB images of frame `index` of `cameras`; a camera whose image cannot be read is
/// reported in the map as an error (the caller skips it with a warning).
pub fn read_frame(
    inputs: &InputSet,
    cameras: &[&str],
    index: usize,
) -> BTreeMap<String, Result<RgbImage, PipelineError>> {
    use rayon::prelude::*;
    cameras
        .par_iter()
        .map(|&name| {
            let image = match inputs.camera(name) {
                Some(CameraInput::Images(files)) => match files.get(index) {
                    Some(path) => crate::io::images::read_rgb(path).map_err(PipelineError::from),
                    None => {
                        Err(PipelineError::Setup(format!("camera `{name}` has no frame {index}")))
                    }
                },
                Some(CameraInput::Video(path)) => Err(PipelineError::from(FramesError::Video {
                    path: path.clone(),
                    message: "video decoding is not available in this build".into(),
                })),
                None => Err(PipelineError::Setup(format!("camera `{name}` has no input"))),
            };
            (name.to_owned(), image)
        })
        .collect()
}
