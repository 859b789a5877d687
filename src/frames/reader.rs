//! Reading frame *i* of every camera, from image folders or videos.
//!
//! The pipeline asks for frames in increasing order (`frame_start`, `+ frame_step`, …), so a
//! video camera keeps one `ffmpeg` decoder open across frames: consecutive or nearby frames
//! are decoded sequentially, distant ones are reached by a seek (see
//! [`crate::io::video::VideoReader`]). Cameras are read in parallel, each by its own reader;
//! each camera's result is separate, so one unreadable image or a video that ends early costs
//! only that camera for that frame ([`readable_images`] logs it and drops it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::{CameraInput, FramesError, InputSet};
use crate::imgproc::RgbImage;
use crate::io::images::read_rgb;
use crate::io::video::{VideoReader, probe};

/// The images of one frame: camera name → its image, or why it could not be read.
pub type FrameImages = BTreeMap<String, Result<RgbImage, FramesError>>;

/// Reads the frames of one camera.
#[derive(Debug)]
pub struct CameraReader {
    name: String,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Images(Vec<PathBuf>),
    Video(VideoReader),
    /// One frame already decoded (see [`CameraReader::in_memory`]).
    Memory {
        frame: usize,
        image: RgbImage,
    },
}

impl CameraReader {
    /// A reader for camera `name`'s `input` (a video is probed with `ffprobe` here).
    pub fn open(name: &str, input: &CameraInput) -> Result<Self, FramesError> {
        let source = match input {
            CameraInput::Images(files) => Source::Images(files.clone()),
            CameraInput::Video(path) => Source::Video(VideoReader::with_info(path, probe(path)?)),
        };
        Ok(Self { name: name.to_owned(), source })
    }

    /// A reader that serves one already-decoded `image` as frame `frame` (the benchmark reads
    /// a frame once and runs every pathway on it). It reports `frame + 1` frames; any other
    /// frame is out of range.
    pub fn in_memory(name: &str, frame: usize, image: RgbImage) -> Self {
        Self { name: name.to_owned(), source: Source::Memory { frame, image } }
    }

    /// The camera name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames this camera has.
    pub fn frame_count(&self) -> usize {
        match &self.source {
            Source::Images(files) => files.len(),
            Source::Video(video) => video.info().frames,
            Source::Memory { frame, .. } => frame + 1,
        }
    }

    /// Reads frame `frame` of this camera.
    pub fn read(&mut self, frame: usize) -> Result<RgbImage, FramesError> {
        match &mut self.source {
            Source::Images(files) => {
                let Some(file) = files.get(frame) else {
                    return Err(FramesError::FrameOutOfRange { frame, count: files.len() });
                };
                read_rgb(file).map_err(|source| FramesError::Image {
                    camera: self.name.clone(),
                    frame,
                    source: Box::new(source),
                })
            }
            Source::Video(video) => Ok(video.read(frame)?),
            Source::Memory { frame: held, image } if *held == frame => Ok(image.clone()),
            Source::Memory { frame: held, .. } => {
                Err(FramesError::FrameOutOfRange { frame, count: *held + 1 })
            }
        }
    }

    /// [`Self::read`] with the camera's name, as a frame's entry.
    fn read_named(&mut self, frame: usize) -> (String, Result<RgbImage, FramesError>) {
        (self.name.clone(), self.read(frame))
    }
}

/// Reads frame *i* of every camera of an [`InputSet`].
///
/// ```no_run
/// # fn main() -> Result<(), aquamvs::frames::FramesError> {
/// use std::collections::BTreeMap;
/// use aquamvs::frames::{FrameReader, InputSet, readable_images, select_frames};
///
/// let map = BTreeMap::from([
///     ("cam0".to_string(), "videos/cam0.mp4".into()),
///     ("cam1".to_string(), "videos/cam1.mp4".into()),
/// ]);
/// let mut reader = FrameReader::open(&InputSet::open(&map)?)?;
/// for frame in select_frames(reader.frame_count(), 0, None, 10) {
///     let images = readable_images(frame, reader.read(frame)?);
///     // … undistort and reconstruct `images` (camera → RGB image) …
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FrameReader {
    cameras: Vec<CameraReader>,
    count: usize,
}

impl FrameReader {
    /// Opens every camera of `inputs`; videos are probed (in parallel) for their length.
    /// The frame count is that of the shortest camera; differing video lengths are logged.
    pub fn open(inputs: &InputSet) -> Result<Self, FramesError> {
        let names: Vec<&str> = inputs.camera_names().collect();
        let cameras = names
            .par_iter()
            .map(|name| match inputs.camera(name) {
                Some(input) => CameraReader::open(name, input),
                None => Err(FramesError::NoInputs),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = cameras.iter().map(CameraReader::frame_count).min().unwrap_or(0);
        let longest = cameras.iter().map(CameraReader::frame_count).max().unwrap_or(0);
        if longest != count {
            let lengths: Vec<String> =
                cameras.iter().map(|c| format!("{} {}", c.name, c.frame_count())).collect();
            tracing::warn!(
                "camera inputs differ in length ({}); using the shortest: {count} frames",
                lengths.join(", ")
            );
        }
        Ok(Self { cameras, count })
    }

    /// A reader over already-opened cameras (e.g. [`CameraReader::in_memory`]); the frame
    /// count is the shortest camera's.
    pub fn from_cameras(mut cameras: Vec<CameraReader>) -> Self {
        cameras.sort_by(|a, b| a.name.cmp(&b.name));
        let count = cameras.iter().map(CameraReader::frame_count).min().unwrap_or(0);
        Self { cameras, count }
    }

    /// Frames available in every camera (the shortest camera's count).
    pub fn frame_count(&self) -> usize {
        self.count
    }

    /// Camera names, sorted.
    pub fn camera_names(&self) -> impl Iterator<Item = &str> {
        self.cameras.iter().map(CameraReader::name)
    }

    /// The per-camera readers, sorted by name (to read cameras in another arrangement).
    pub fn cameras_mut(&mut self) -> &mut [CameraReader] {
        &mut self.cameras
    }

    /// Reads frame `frame` of every camera, cameras in parallel. The error is only for a frame
    /// past [`Self::frame_count`]; a camera that cannot deliver its image has an error entry.
    pub fn read(&mut self, frame: usize) -> Result<FrameImages, FramesError> {
        self.check_in_range(frame)?;
        let _span = tracing::debug_span!("read_frame", frame).entered();
        Ok(self
            .cameras
            .par_iter_mut()
            .map(|camera| camera.read_named(frame))
            .collect::<Vec<_>>()
            .into_iter()
            .collect())
    }

    /// [`Self::read`] with the cameras one after another on the calling thread: for reading
    /// ahead on a thread of its own while the rayon pool computes the previous frame (a
    /// parallel read there would queue behind that work). Same result as [`Self::read`].
    pub fn read_serial(&mut self, frame: usize) -> Result<FrameImages, FramesError> {
        self.check_in_range(frame)?;
        let _span = tracing::debug_span!("read_ahead", frame).entered();
        Ok(self.cameras.iter_mut().map(|camera| camera.read_named(frame)).collect())
    }

    /// The whole-frame error of [`Self::read`]: `frame` past [`Self::frame_count`].
    fn check_in_range(&self, frame: usize) -> Result<(), FramesError> {
        if frame >= self.count {
            return Err(FramesError::FrameOutOfRange { frame, count: self.count });
        }
        Ok(())
    }
}

/// The cameras of `images` that could be read; each failure is logged as a warning naming
/// the frame, the camera and the cause, and the camera is left out of this frame.
pub fn readable_images(frame: usize, images: FrameImages) -> BTreeMap<String, RgbImage> {
    images
        .into_iter()
        .filter_map(|(camera, result)| match result {
            Ok(img) => Some((camera, img)),
            Err(err) => {
                tracing::warn!("frame {frame}: camera `{camera}` skipped: {err}");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::ImageSize;
    use crate::io::images::write_png_rgb;
    use crate::io::video::VideoCodec;
    use crate::io::video::tests::{ffmpeg_or_skip, test_frames, write_video};

    #[test]
    fn in_memory_cameras_serve_their_one_frame() {
        let size = ImageSize::new(4, 3);
        let a = RgbImage::from_elem(size, 10);
        let b = RgbImage::from_elem(size, 20);
        let mut reader = FrameReader::from_cameras(vec![
            CameraReader::in_memory("cam1", 2, b.clone()),
            CameraReader::in_memory("cam0", 2, a.clone()),
        ]);
        assert_eq!(reader.frame_count(), 3);
        assert_eq!(reader.camera_names().collect::<Vec<_>>(), ["cam0", "cam1"]);
        let images = reader.read(2).unwrap();
        assert_eq!(images["cam0"].as_ref().unwrap(), &a);
        assert_eq!(images["cam1"].as_ref().unwrap(), &b);
        // Only the held frame exists; earlier ones are per-camera errors, later ones past the end.
        assert!(reader.read(1).unwrap().values().all(Result::is_err));
        assert!(matches!(reader.read(3), Err(FramesError::FrameOutOfRange { frame: 3, count: 3 })));
    }

    #[test]
    fn image_folders_by_position_with_per_camera_failures() {
        let dir = tempfile::tempdir().unwrap();
        let size = ImageSize::new(8, 6);
        let frames = test_frames(size, 3, 11);
        let mut map = BTreeMap::new();
        for cam in ["a", "b"] {
            for (i, img) in frames.iter().enumerate() {
                write_png_rgb(&dir.path().join(cam).join(format!("f{i}.png")), img).unwrap();
            }
            map.insert(cam.to_string(), dir.path().join(cam));
        }
        // Camera b's second image is corrupt.
        std::fs::write(dir.path().join("b").join("f1.png"), b"garbage").unwrap();
        let mut reader = FrameReader::open(&InputSet::open(&map).unwrap()).unwrap();
        assert_eq!(reader.frame_count(), 3);
        let images = reader.read(2).unwrap();
        assert!(images["a"].as_ref().unwrap() == &frames[2]);
        assert!(images["b"].as_ref().unwrap() == &frames[2]);
        let images = reader.read(1).unwrap();
        let err = images["b"].as_ref().unwrap_err().to_string();
        assert!(err.contains("camera `b`, frame 1") && err.contains("f1.png"), "{err}");
        // Reading ahead, one camera after another, gives the same entries and the same errors.
        let serial = reader.read_serial(1).unwrap();
        assert!(serial["a"].as_ref().unwrap() == images["a"].as_ref().unwrap());
        assert_eq!(serial["b"].as_ref().unwrap_err().to_string(), err);
        let kept = readable_images(1, images);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a"]);
        assert!(matches!(
            reader.read_serial(3),
            Err(FramesError::FrameOutOfRange { frame: 3, .. })
        ));
        let err = reader.read(3).unwrap_err().to_string();
        assert!(err.contains("frame 3 is past the end: the inputs have 3 frame(s)"), "{err}");
    }

    #[test]
    fn videos_use_the_shortest_and_skip_a_camera_that_fails() {
        if !ffmpeg_or_skip("videos_use_the_shortest_and_skip_a_camera_that_fails") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let size = ImageSize::new(32, 24);
        let long = test_frames(size, 9, 1);
        let short = test_frames(size, 7, 2);
        let (a, b) = (dir.path().join("a.mkv"), dir.path().join("b.mov"));
        write_video(&a, &long, VideoCodec::Ffv1);
        write_video(&b, &short, VideoCodec::Png);
        let map = BTreeMap::from([("a".to_string(), a.clone()), ("b".to_string(), b.clone())]);
        let mut reader = FrameReader::open(&InputSet::open(&map).unwrap()).unwrap();
        assert_eq!(reader.frame_count(), 7);
        assert_eq!(reader.camera_names().collect::<Vec<_>>(), ["a", "b"]);
        for frame in [0, 1, 2, 5, 6] {
            let images = reader.read(frame).unwrap();
            assert!(images["a"].as_ref().unwrap() == &long[frame], "a {frame}");
            assert!(images["b"].as_ref().unwrap() == &short[frame], "b {frame}");
        }
        assert!(matches!(reader.read(7), Err(FramesError::FrameOutOfRange { count: 7, .. })));

        // A video replaced by garbage after opening: that camera fails, the other is read.
        std::fs::write(&b, b"garbage").unwrap();
        let images = reader.read(0).unwrap();
        assert!(images["a"].as_ref().unwrap() == &long[0]);
        let err = images["b"].as_ref().unwrap_err().to_string();
        assert!(err.contains("b.mov"), "{err}");
        assert_eq!(readable_images(0, images).len(), 1);
    }
}
