//! Camera inputs: image folders or video files, and which frames a run processes.
//!
//! Rules (as AquaMVS, reference-product §3.2, with stricter checks):
//! - an input is an **image folder** (files ending in `.png .jpg .jpeg .tif .tiff`, any case)
//!   or a **video file** (`.mp4 .avi .mkv .mov`); the cameras of one config are all one kind;
//! - in image folders the frame index is the position in the file list sorted by name, and
//!   every camera must hold the same file names (otherwise frame *i* of two cameras would not
//!   be the same instant);
//! - the frames processed are `range(frame_start, frame_stop or count, frame_step)`;
//! - a video set has as many frames as its shortest video.
//!
//! [`FrameReader`] reads frame *i* of every camera (videos through `ffmpeg`, see
//! [`crate::io::video`]); a camera whose frame cannot be read is reported for that camera
//! only, so a run can go on with the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::io::images::ImageIoError;
use crate::io::video::VideoError;

mod reader;

pub use reader::{CameraReader, FrameImages, FrameReader, readable_images};

/// Extensions (lower case) of files read as video.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "avi", "mkv", "mov"];
/// Extensions (lower case) of files read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff"];

/// What a camera input path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A folder of image files, one per frame.
    ImageFolder,
    /// A video file.
    Video,
}

impl std::fmt::Display for InputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputKind::ImageFolder => "image folder",
            InputKind::Video => "video",
        })
    }
}

/// Errors about camera inputs; each names the camera and/or path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// The path does not exist.
    #[error("input of camera `{camera}` not found: {}", path.display())]
    Missing {
        /// Camera name.
        camera: String,
        /// The configured path.
        path: PathBuf,
    },
    /// The path is neither a folder nor a file with a video extension.
    #[error(
        "input of camera `{camera}` is neither an image folder nor a video ({}): {}",
        VIDEO_EXTENSIONS.join(", "),
        path.display()
    )]
    UnknownKind {
        /// Camera name.
        camera: String,
        /// The configured path.
        path: PathBuf,
    },
    /// Some cameras are videos and others image folders.
    #[error(
        "camera inputs mix image folders ({folders}) and videos ({videos}); use one kind for all cameras"
    )]
    Mixed {
        /// Cameras with image folders.
        folders: String,
        /// Cameras with videos.
        videos: String,
    },
    /// A folder could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An image folder holds no images.
    #[error("image folder of camera `{camera}` holds no images ({}): {}", IMAGE_EXTENSIONS.join(", "), path.display())]
    EmptyFolder {
        /// Camera name.
        camera: String,
        /// The folder.
        path: PathBuf,
    },
    /// Image folders disagree on their file names.
    #[error(
        "image folders differ: camera `{camera}` has {count} images, camera `{reference}` has \
         {reference_count}{detail}; every camera needs the same file names, one per frame"
    )]
    FolderMismatch {
        /// The camera that differs.
        camera: String,
        /// Its image count.
        count: usize,
        /// The camera compared against.
        reference: String,
        /// Its image count.
        reference_count: usize,
        /// The first differing name, if any.
        detail: String,
    },
    /// No camera inputs at all.
    #[error("no camera inputs configured")]
    NoInputs,
    /// A video tool is not installed.
    #[error(
        "`{tool}` was not found on PATH; video input needs FFmpeg ({})",
        crate::io::video::INSTALL_HINT
    )]
    FfmpegMissing {
        /// The program that was looked for.
        tool: &'static str,
    },
    /// A video could not be probed or decoded.
    #[error(transparent)]
    Video(VideoError),
    /// An image of an image folder could not be read.
    #[error("camera `{camera}`, frame {frame}: {source}")]
    Image {
        /// Camera name.
        camera: String,
        /// The frame index.
        frame: usize,
        /// The reading error (it names the file).
        #[source]
        source: Box<ImageIoError>,
    },
    /// The requested frame is past the end of the inputs.
    #[error("frame {frame} is past the end: the inputs have {count} frame(s) (0 to {last})", last = count.saturating_sub(1))]
    FrameOutOfRange {
        /// The requested frame.
        frame: usize,
        /// Frames available in every camera.
        count: usize,
    },
}

impl From<VideoError> for FramesError {
    fn from(err: VideoError) -> Self {
        match err {
            VideoError::FfmpegMissing { tool } => FramesError::FfmpegMissing { tool },
            other => FramesError::Video(other),
        }
    }
}

pub use crate::io::video::VideoInfo;

/// Reads a video's frame size, frame count and frame rate with `ffprobe`.
pub fn probe_video(path: &Path) -> Result<VideoInfo, FramesError> {
    Ok(crate::io::video::probe(path)?)
}

/// The kind of a camera input path (it must exist).
pub fn classify(camera: &str, path: &Path) -> Result<InputKind, FramesError> {
    if path.is_dir() {
        Ok(InputKind::ImageFolder)
    } else if path.is_file() {
        if has_extension(path, VIDEO_EXTENSIONS) {
            Ok(InputKind::Video)
        } else {
            Err(FramesError::UnknownKind { camera: camera.into(), path: path.into() })
        }
    } else {
        Err(FramesError::Missing { camera: camera.into(), path: path.into() })
    }
}

/// True when `path`'s extension (any case) is one of `extensions` (lower case).
pub fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files of a folder, sorted by file name (the frame order).
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, FramesError> {
    let list_err = |source| FramesError::List { path: dir.into(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        if path.is_file() && has_extension(&path, IMAGE_EXTENSIONS) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// The cameras' inputs, checked to be of one kind and (for image folders) frame-aligned.
#[derive(Clone, Debug)]
pub struct InputSet {
    kind: InputKind,
    /// Camera name → image files in frame order (image folders) or the video path.
    cameras: BTreeMap<String, CameraInput>,
}

/// One camera's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CameraInput {
    /// Image files in frame order.
    Images(Vec<PathBuf>),
    /// A video file.
    Video(PathBuf),
}

impl InputSet {
    /// Opens the inputs of `map` (camera → path), checking kinds and image-folder alignment.
    pub fn open(map: &BTreeMap<String, PathBuf>) -> Result<Self, FramesError> {
        if map.is_empty() {
            return Err(FramesError::NoInputs);
        }
        let mut kinds = BTreeMap::new();
        for (camera, path) in map {
            kinds.insert(camera.clone(), classify(camera, path)?);
        }
        let names = |k: InputKind| {
            kinds.iter().filter(|(_, v)| **v == k).map(|(n, _)| n.as_str()).collect::<Vec<_>>()
        };
        let (folders, videos) = (names(InputKind::ImageFolder), names(InputKind::Video));
        if !folders.is_empty() && !videos.is_empty() {
            return Err(FramesError::Mixed {
                folders: folders.join(", "),
                videos: videos.join(", "),
            });
        }
        let kind = if videos.is_empty() { InputKind::ImageFolder } else { InputKind::Video };
        let mut cameras = BTreeMap::new();
        for (camera, path) in map {
            let input = match kind {
                InputKind::Video => CameraInput::Video(path.clone()),
                InputKind::ImageFolder => {
                    let files = list_images(path)?;
                    if files.is_empty() {
                        return Err(FramesError::EmptyFolder {
                            camera: camera.clone(),
                            path: path.clone(),
                        });
                    }
                    CameraInput::Images(files)
                }
            };
            cameras.insert(camera.clone(), input);
        }
        if kind == InputKind::ImageFolder {
            check_aligned(&cameras)?;
        }
        Ok(Self { kind, cameras })
    }

    /// Image folders or videos.
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// Camera names, sorted.
    pub fn camera_names(&self) -> impl Iterator<Item = &str> {
        self.cameras.keys().map(String::as_str)
    }

    /// The input of one camera.
    pub fn camera(&self, name: &str) -> Option<&CameraInput> {
        self.cameras.get(name)
    }

    /// Frames available in every camera, for image folders (videos need a decoder to count).
    pub fn image_frame_count(&self) -> Option<usize> {
        self.cameras.values().find_map(|c| match c {
            CameraInput::Images(files) => Some(files.len()),
            CameraInput::Video(_) => None,
        })
    }
}

fn check_aligned(cameras: &BTreeMap<String, CameraInput>) -> Result<(), FramesError> {
    let file_names = |input: &CameraInput| match input {
        CameraInput::Images(files) => {
            files.iter().map(|f| f.file_name().map(|n| n.to_owned())).collect()
        }
        CameraInput::Video(_) => Vec::new(),
    };
    let mut iter = cameras.iter();
    let Some((ref_name, ref_input)) = iter.next() else { return Ok(()) };
    let ref_files = file_names(ref_input);
    for (name, input) in iter {
        let files = file_names(input);
        if files != ref_files {
            let detail = files
                .iter()
                .zip(&ref_files)
                .find(|(a, b)| a != b)
                .map(|(a, b)| {
                    let show = |n: &Option<std::ffi::OsString>| {
                        n.as_ref().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                    };
                    format!(" (first difference: `{}` vs `{}`)", show(a), show(b))
                })
                .unwrap_or_default();
            return Err(FramesError::FolderMismatch {
                camera: name.clone(),
                count: files.len(),
                reference: ref_name.clone(),
                reference_count: ref_files.len(),
                detail,
            });
        }
    }
    Ok(())
}

/// The frame indices a run processes: `start, start + step, … < (stop or count)`.
pub fn select_frames(count: usize, start: usize, stop: Option<usize>, step: usize) -> Vec<usize> {
    let end = stop.map_or(count, |s| s.min(count));
    (start..end).step_by(step.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn classifies_and_lists_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let cam = dir.path().join("cam1");
        for name in ["b.PNG", "a.jpg", "c.txt", "10.tif"] {
            touch(&cam.join(name));
        }
        assert_eq!(classify("cam1", &cam).unwrap(), InputKind::ImageFolder);
        let names: Vec<_> = list_images(&cam)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10.tif", "a.jpg", "b.PNG"]);
        let video = dir.path().join("cam2.MP4");
        touch(&video);
        assert_eq!(classify("cam2", &video).unwrap(), InputKind::Video);
        let other = dir.path().join("notes.txt");
        touch(&other);
        assert!(matches!(classify("x", &other), Err(FramesError::UnknownKind { .. })));
        assert!(matches!(
            classify("x", &dir.path().join("nope")),
            Err(FramesError::Missing { .. })
        ));
    }

    #[test]
    fn folders_must_align() {
        let dir = tempfile::tempdir().unwrap();
        for cam in ["a", "b"] {
            for f in ["f0.png", "f1.png"] {
                touch(&dir.path().join(cam).join(f));
            }
        }
        let map: BTreeMap<String, PathBuf> =
            ["a", "b"].iter().map(|c| (c.to_string(), dir.path().join(c))).collect();
        let set = InputSet::open(&map).unwrap();
        assert_eq!(set.kind(), InputKind::ImageFolder);
        assert_eq!(set.image_frame_count(), Some(2));

        touch(&dir.path().join("b").join("f2.png"));
        let err = InputSet::open(&map).unwrap_err().to_string();
        assert!(err.contains("camera `b` has 3 images, camera `a` has 2"), "{err}");
    }

    #[test]
    fn mixed_kinds_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a").join("f0.png"));
        touch(&dir.path().join("b.mp4"));
        let map = BTreeMap::from([
            ("a".to_string(), dir.path().join("a")),
            ("b".to_string(), dir.path().join("b.mp4")),
        ]);
        let err = InputSet::open(&map).unwrap_err().to_string();
        assert!(err.contains("mix image folders (a) and videos (b)"), "{err}");
    }

    #[test]
    fn frame_selection() {
        assert_eq!(select_frames(10, 0, None, 1), (0..10).collect::<Vec<_>>());
        assert_eq!(select_frames(10, 2, Some(8), 3), [2, 5]);
        assert_eq!(select_frames(5, 0, Some(50), 2), [0, 2, 4]);
        assert!(select_frames(5, 7, None, 1).is_empty());
    }
}
