//! Video files through the `ffmpeg` and `ffprobe` programs, run as subprocesses.
//!
//! Why subprocesses and not a linked decoder: the binary stays self-contained (no FFmpeg
//! libraries to match at build time), every platform has a packaged `ffmpeg`, and a decoder
//! crash cannot take the run down with it. Frames cross the pipe as raw `rgb24`, so nothing
//! here parses a codec.
//!
//! - [`probe`] reads size, frame count and frame rate with `ffprobe`.
//! - [`VideoDecoder`] streams consecutive frames from one start frame (one process).
//! - [`VideoReader`] gives random access: it keeps one decoder open and moves it forward by
//!   decoding when the requested frame is near ([`MAX_SKIP_FRAMES`]), and starts a new decoder
//!   with an accurate seek when it is far or behind.
//! - [`VideoEncoder`] writes frames to a video through `ffmpeg`, atomically (a temporary file
//!   renamed over the destination when the encoder succeeded).
//!
//! Frame `i` of a video is its `i`-th decoded frame. A seek computes the timestamp of frame
//! `i` as `(i − ½) / fps` after the first frame (the half frame absorbs rounding of container
//! timestamps), which is exact for constant-frame-rate video, what camera rigs record; the
//! tests check seeking against sequential decoding. Child processes are killed and reaped when
//! their decoder or encoder is dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use crate::imgproc::{ImageSize, RgbImage};
use crate::io::atomic::{PendingFile, WriteError};

/// The decoder and encoder program.
pub const FFMPEG: &str = "ffmpeg";
/// The probing program (installed with `ffmpeg`).
pub const FFPROBE: &str = "ffprobe";
/// How to get FFmpeg, for error messages.
pub const INSTALL_HINT: &str = "Debian/Ubuntu: `sudo apt install ffmpeg`, macOS: `brew install ffmpeg`, Windows: \
     `winget install ffmpeg`; or put a static build of ffmpeg and ffprobe on PATH";

/// Largest forward gap (in frames) that [`VideoReader`] closes by decoding and discarding
/// frames rather than by starting a new decoder with a seek.
///
/// A seek costs a process start (tens of milliseconds) plus decoding from the previous key
/// frame (half a group of pictures on average, often 15-120 frames for camera recordings),
/// while skipping a frame costs one decode and one colour conversion (a few milliseconds at
/// 1600×1200). Below about 30 frames, skipping is cheaper or equal.
pub const MAX_SKIP_FRAMES: usize = 32;

/// Most bytes of an `ffmpeg` error output kept for error messages (the end is kept).
const STDERR_KEEP: usize = 4096;

/// Errors from probing, decoding or encoding video; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` or `ffprobe` is not installed.
    #[error("`{tool}` was not found on PATH; video needs FFmpeg ({INSTALL_HINT})")]
    FfmpegMissing {
        /// The program that was looked for.
        tool: &'static str,
    },
    /// The program exists but could not be started.
    #[error("cannot run `{tool}`: {source}")]
    Spawn {
        /// The program.
        tool: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `ffprobe` could not read the file, or found no video stream in it.
    #[error("cannot read video {}: {message}", path.display())]
    Probe {
        /// The video file.
        path: PathBuf,
        /// What went wrong (ffprobe's message).
        message: String,
    },
    /// Decoding failed.
    #[error("cannot decode frame {frame} of video {}: {message}", path.display())]
    Decode {
        /// The video file.
        path: PathBuf,
        /// The frame being read.
        frame: usize,
        /// What went wrong (ffmpeg's message).
        message: String,
    },
    /// The frame is past the end of the video.
    #[error(
        "video {} has {frames} frame(s); frame {frame} does not exist",
        path.display()
    )]
    OutOfRange {
        /// The video file.
        path: PathBuf,
        /// The requested frame.
        frame: usize,
        /// Frames in the video (as decoded, or as counted by ffprobe).
        frames: usize,
    },
    /// Encoding failed (the destination is untouched).
    #[error("cannot encode video {}: {message}", path.display())]
    Encode {
        /// The destination file.
        path: PathBuf,
        /// What went wrong (ffmpeg's message).
        message: String,
    },
    /// The encoded video could not be moved into place.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Size, length and rate of a video's first video stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VideoInfo {
    /// Frame size (as stored; rotation metadata is ignored, see [`VideoDecoder`]).
    pub size: ImageSize,
    /// Number of frames (ffprobe's count of the stream's packets, read through the file).
    pub frames: usize,
    /// Frames per second (the average rate, else the base rate); `None` when the container
    /// does not say, in which case frames are found by decoding from the start.
    pub fps: Option<f64>,
    /// Time (s) from the container's start to the first video frame, which is where a seek
    /// counts from (non-zero when another stream starts earlier).
    pub start_offset_s: f64,
}

/// Reads a video's size, frame count and frame rate with `ffprobe`.
///
/// The count demuxes the whole file (no decoding), a fraction of a second per gigabyte.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    let output = Command::new(FFPROBE)
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries"])
        .args([
            "stream=width,height,nb_read_packets,avg_frame_rate,r_frame_rate,start_time:\
             format=start_time",
            "-of",
            "json",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(FFPROBE, e))?;
    let probe_err = |message: String| VideoError::Probe { path: path.into(), message };
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(probe_err(if message.is_empty() {
            format!("ffprobe failed ({})", output.status)
        } else {
            message
        }));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| probe_err(format!("unreadable ffprobe output: {e}")))?;
    let stream = json
        .get("streams")
        .and_then(|s| s.get(0))
        .ok_or_else(|| probe_err("the file has no video stream".into()))?;
    let number = |v: Option<&serde_json::Value>| -> Option<f64> {
        match v? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let width = number(stream.get("width")).unwrap_or(0.0) as usize;
    let height = number(stream.get("height")).unwrap_or(0.0) as usize;
    if let Some(problem) = super::limits::image_size_problem(ImageSize::new(width, height)) {
        return Err(probe_err(format!("the video's frames are {problem}")));
    }
    if width == 0 || height == 0 {
        return Err(probe_err("the video stream has no frame size".into()));
    }
    let frames = number(stream.get("nb_read_packets"))
        .ok_or_else(|| probe_err("ffprobe did not count the frames".into()))?
        as usize;
    let rate = |key: &str| {
        let text = stream.get(key)?.as_str()?;
        let (num, den) = text.split_once('/').unwrap_or((text, "1"));
        let fps = num.trim().parse::<f64>().ok()? / den.trim().parse::<f64>().ok()?;
        (fps.is_finite() && fps > 0.0).then_some(fps)
    };
    let fps = rate("avg_frame_rate").or_else(|| rate("r_frame_rate"));
    let stream_start = number(stream.get("start_time"));
    let format_start = number(json.get("format").and_then(|f| f.get("start_time")));
    let start_offset_s = match (stream_start, format_start) {
        (Some(s), Some(f)) if (s - f).is_finite() => (s - f).max(0.0),
        _ => 0.0,
    };
    Ok(VideoInfo { size: ImageSize::new(width, height), frames, fps, start_offset_s })
}

/// True when `ffmpeg` can be run (tests use this to decide whether video tests can run).
pub fn ffmpeg_available() -> bool {
    [FFMPEG, FFPROBE].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when this `ffmpeg` has the encoder `name` (builds differ: `libx264` is optional).
pub fn has_encoder(name: &str) -> Result<bool, VideoError> {
    let output = Command::new(FFMPEG)
        .args(["-hide_banner", "-encoders"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| spawn_error(FFMPEG, e))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().any(|line| line.split_whitespace().nth(1) == Some(name)))
}

fn spawn_error(tool: &'static str, source: std::io::Error) -> VideoError {
    match source.kind() {
        std::io::ErrorKind::NotFound => VideoError::FfmpegMissing { tool },
        _ => VideoError::Spawn { tool, source },
    }
}

/// Collects the end of a child's error output on a thread, so that a chatty child never
/// blocks on a full pipe while we wait on its other pipe.
fn drain_stderr(child: &mut Child) -> Option<JoinHandle<String>> {
    let mut stderr = child.stderr.take()?;
    Some(std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_KEEP {
                kept.drain(..kept.len() - STDERR_KEEP);
            }
        }
        let start = kept.len().saturating_sub(STDERR_KEEP);
        String::from_utf8_lossy(&kept[start..]).trim().to_owned()
    }))
}

fn join_stderr(handle: Option<JoinHandle<String>>) -> String {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// The message for a child that failed: its error output, or its exit status.
fn failure_message(status: Option<ExitStatus>, stderr: String) -> String {
    match (stderr.is_empty(), status) {
        (false, _) => stderr,
        (true, Some(status)) => format!("ffmpeg failed ({status})"),
        (true, None) => "ffmpeg stopped unexpectedly".into(),
    }
}

/// Kills and reaps a child we started (ignoring a child that already exited).
fn stop_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Consecutive frames of one video from one `ffmpeg` process, as `rgb24`.
///
/// The process decodes ahead into the pipe while the caller works; it is killed when the
/// decoder is dropped. Rotation metadata is ignored (`-noautorotate`): frames come as the
/// camera stored them, which is the geometry the calibration describes.
pub struct VideoDecoder {
    path: PathBuf,
    size: ImageSize,
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    next: usize,
    /// Frames decoded in all when the stream has ended.
    ended_at: Option<usize>,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder")
            .field("path", &self.path)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl VideoDecoder {
    /// Starts decoding `path` (described by `info`) at frame `start`.
    ///
    /// A `start` above 0 seeks (accurately: from the preceding key frame, discarding frames
    /// before `start`); without a known frame rate it decodes from the start and skips.
    pub fn open(path: &Path, info: &VideoInfo, start: usize) -> Result<Self, VideoError> {
        let seek = match (start, info.fps) {
            (0, _) | (_, None) => None,
            (s, Some(fps)) => Some(info.start_offset_s + (s as f64 - 0.5) / fps),
        };
        let mut cmd = Command::new(FFMPEG);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error"]);
        if let Some(t) = seek {
            cmd.arg("-ss").arg(format!("{t:.6}"));
        }
        cmd.arg("-noautorotate")
            .arg("-i")
            .arg(path)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
            // One output frame per decoded frame: the raw muxer would otherwise ask for a
            // constant rate and duplicate or drop frames of variable-rate files.
            .args(["-vsync", "passthrough"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(FFMPEG, e))?;
        let stderr = drain_stderr(&mut child);
        let stdout = child.stdout.take();
        let mut decoder = Self {
            path: path.to_path_buf(),
            size: info.size,
            child,
            stdout,
            stderr,
            next: if seek.is_some() { start } else { 0 },
            ended_at: None,
        };
        if decoder.next < start {
            decoder.skip(start - decoder.next)?;
        }
        Ok(decoder)
    }

    /// The index of the frame the next read returns.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// The frame size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Bytes of one frame (`width × height × 3`).
    pub fn frame_bytes(&self) -> usize {
        self.size.area() * 3
    }

    /// Reads the next frame into `buf` (of [`Self::frame_bytes`] bytes). Returns `false`
    /// when the video has ended cleanly.
    pub fn read_into(&mut self, buf: &mut [u8]) -> Result<bool, VideoError> {
        assert_eq!(buf.len(), self.frame_bytes(), "frame buffer of the wrong size");
        if self.ended_at.is_some() {
            return Ok(false);
        }
        let frame = self.next;
        let Some(stdout) = self.stdout.as_mut() else { return Ok(false) };
        let mut filled = 0;
        while filled < buf.len() {
            match stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(VideoError::Decode {
                        path: self.path.clone(),
                        frame,
                        message: e.to_string(),
                    });
                }
            }
        }
        if filled == buf.len() {
            self.next += 1;
            return Ok(true);
        }
        // End of the pipe: the process has finished (or died); its status tells which.
        self.stdout = None;
        let status = self.child.wait().ok();
        let stderr = join_stderr(self.stderr.take());
        self.ended_at = Some(frame);
        if filled == 0 && status.is_some_and(|s| s.success()) {
            return Ok(false);
        }
        let mut message = failure_message(status.filter(|s| !s.success()), stderr);
        if filled > 0 {
            message = format!("truncated frame ({filled} of {} bytes); {message}", buf.len());
        }
        Err(VideoError::Decode { path: self.path.clone(), frame, message })
    }

    /// Reads the next frame, or `None` when the video has ended cleanly.
    pub fn read(&mut self) -> Result<Option<RgbImage>, VideoError> {
        let mut buf = vec![0u8; self.frame_bytes()];
        if !self.read_into(&mut buf)? {
            return Ok(None);
        }
        let img = RgbImage::new(self.size, buf).expect("the buffer holds one frame");
        Ok(Some(img))
    }

    /// Decodes and discards `n` frames; an error when the video ends first.
    pub fn skip(&mut self, n: usize) -> Result<(), VideoError> {
        let mut buf = vec![0u8; self.frame_bytes()];
        let target = self.next + n;
        while self.next < target {
            if !self.read_into(&mut buf)? {
                return Err(VideoError::OutOfRange {
                    path: self.path.clone(),
                    frame: target,
                    frames: self.next,
                });
            }
        }
        Ok(())
    }
}

impl Drop for VideoDecoder {
    fn drop(&mut self) {
        // Closing our end first makes a process blocked on a full pipe exit at once.
        self.stdout = None;
        stop_child(&mut self.child);
        let _ = join_stderr(self.stderr.take());
    }
}

/// Random access to the frames of one video.
///
/// Keeps one [`VideoDecoder`] open: a request at or shortly after its position (within
/// [`MAX_SKIP_FRAMES`]) is served by decoding forward, anything else by a new decoder that
/// seeks. Reading consecutive or nearly consecutive frames therefore decodes every frame
/// once, and sparse frame lists seek.
#[derive(Debug)]
pub struct VideoReader {
    path: PathBuf,
    info: VideoInfo,
    decoder: Option<VideoDecoder>,
    seeks: usize,
}

impl VideoReader {
    /// Probes `path` and prepares to read it (no decoder runs until the first read).
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let info = probe(path)?;
        Ok(Self::with_info(path, info))
    }

    /// A reader for `path` with an already known `info`.
    pub fn with_info(path: &Path, info: VideoInfo) -> Self {
        Self { path: path.to_path_buf(), info, decoder: None, seeks: 0 }
    }

    /// The video's size, length and rate.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// The video file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many decoders were started so far (the first read counts as one).
    pub fn decoder_starts(&self) -> usize {
        self.seeks
    }

    /// Reads frame `frame` into `buf` (of `width × height × 3` bytes).
    pub fn read_into(&mut self, frame: usize, buf: &mut [u8]) -> Result<(), VideoError> {
        if frame >= self.info.frames {
            return Err(VideoError::OutOfRange {
                path: self.path.clone(),
                frame,
                frames: self.info.frames,
            });
        }
        let reuse = self
            .decoder
            .as_ref()
            .is_some_and(|d| d.next_index() <= frame && frame - d.next_index() <= MAX_SKIP_FRAMES);
        if !reuse {
            self.decoder = None;
            self.seeks += 1;
            self.decoder = Some(VideoDecoder::open(&self.path, &self.info, frame)?);
        }
        let decoder = self.decoder.as_mut().expect("a decoder was just ensured");
        let result = decoder
            .skip(frame - decoder.next_index())
            .and_then(|()| decoder.read_into(buf))
            .and_then(|got| {
                if got {
                    Ok(())
                } else {
                    Err(VideoError::OutOfRange { path: self.path.clone(), frame, frames: frame })
                }
            });
        if result.is_err() {
            // A failed decoder is not trusted for the next request.
            self.decoder = None;
        }
        result
    }

    /// Reads frame `frame`.
    pub fn read(&mut self, frame: usize) -> Result<RgbImage, VideoError> {
        let mut buf = vec![0u8; self.info.size.area() * 3];
        self.read_into(frame, &mut buf)?;
        Ok(RgbImage::new(self.info.size, buf).expect("the buffer holds one frame"))
    }
}

/// How [`VideoEncoder`] compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (`libx264`) at constant quality `crf` (0 lossless … 51; 18 is visually
    /// lossless), 4:2:0 chroma when the size is even (what every player plays), else 4:4:4.
    /// Falls back to MPEG-4 Part 2 at high quality when this `ffmpeg` lacks `libx264`.
    H264 {
        /// Constant rate factor.
        crf: u8,
    },
    /// Lossless H.264 in RGB (`libx264rgb`, quantiser 0): decodes to the exact input.
    H264LosslessRgb,
    /// Lossless FFV1 (for `.mkv` and `.avi`): decodes to the exact input.
    Ffv1,
    /// Lossless PNG frames (for `.mov`, `.mkv`, `.avi`): decodes to the exact input.
    Png,
}

/// Writes frames to a video file through one `ffmpeg` process fed raw `rgb24` on its input.
///
/// The video appears at its destination only when [`VideoEncoder::finish`] succeeds; until
/// then `ffmpeg` writes a temporary file next to it, which is removed on error or drop.
pub struct VideoEncoder {
    pending: Option<PendingFile>,
    size: ImageSize,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
    frames: usize,
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoEncoder")
            .field("path", &self.pending.as_ref().map(|p| p.path()))
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl VideoEncoder {
    /// Starts encoding `path` (container from its extension: mp4, mkv, mov or avi) with
    /// frames of `size` at `fps` frames per second.
    pub fn create(
        path: &Path,
        size: ImageSize,
        fps: f64,
        codec: VideoCodec,
    ) -> Result<Self, VideoError> {
        let encode_err = |message: String| VideoError::Encode { path: path.into(), message };
        if size.is_empty() {
            return Err(encode_err(format!("empty frame size {size}")));
        }
        if !(fps.is_finite() && fps > 0.0) {
            return Err(encode_err(format!("the frame rate must be positive, got {fps}")));
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let muxer = match ext.as_deref() {
            Some("mp4") => "mp4",
            Some("mkv") => "matroska",
            Some("mov") => "mov",
            Some("avi") => "avi",
            _ => {
                return Err(encode_err(
                    "the file name must end in .mp4, .mkv, .mov or .avi".into(),
                ));
            }
        };
        let even = size.width.is_multiple_of(2) && size.height.is_multiple_of(2);
        let codec_args: Vec<String> = match codec {
            VideoCodec::H264 { crf } if has_encoder("libx264")? => {
                let pix = if even { "yuv420p" } else { "yuv444p" };
                let crf = crf.min(51).to_string();
                ["-c:v", "libx264", "-preset", "medium", "-crf", &crf, "-pix_fmt", pix]
                    .map(String::from)
                    .to_vec()
            }
            VideoCodec::H264 { .. } => {
                tracing::warn!("this ffmpeg has no libx264 encoder; writing MPEG-4 Part 2");
                ["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"].map(String::from).to_vec()
            }
            VideoCodec::H264LosslessRgb => {
                ["-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24"].map(String::from).to_vec()
            }
            VideoCodec::Ffv1 => ["-c:v", "ffv1"].map(String::from).to_vec(),
            VideoCodec::Png => ["-c:v", "png", "-pix_fmt", "rgb24"].map(String::from).to_vec(),
        };
        let pending = PendingFile::new(path)?;
        let mut cmd = Command::new(FFMPEG);
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .arg("-video_size")
            .arg(format!("{}x{}", size.width, size.height))
            .arg("-framerate")
            .arg(format!("{fps}"))
            .args(["-i", "pipe:0", "-an"])
            .args(&codec_args)
            .args(["-f", muxer])
            .arg(pending.temp_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(FFMPEG, e))?;
        let stderr = drain_stderr(&mut child);
        let stdin = child.stdin.take();
        Ok(Self { pending: Some(pending), size, child, stdin, stderr, frames: 0 })
    }

    /// The frame size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Appends one frame.
    pub fn write(&mut self, img: &RgbImage) -> Result<(), VideoError> {
        if img.size() != self.size {
            return Err(self.encode_error(format!(
                "frame {} is {} but the video is {}",
                self.frames,
                img.size(),
                self.size
            )));
        }
        self.write_raw(img.as_slice())
    }

    /// Appends one frame given as `width × height × 3` bytes of `rgb24`.
    pub fn write_raw(&mut self, rgb: &[u8]) -> Result<(), VideoError> {
        if rgb.len() != self.size.area() * 3 {
            return Err(self.encode_error(format!(
                "frame of {} bytes, expected {}",
                rgb.len(),
                self.size.area() * 3
            )));
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.encode_error("the encoder was already closed".into()));
        };
        if let Err(e) = stdin.write_all(rgb) {
            // The process died; its own message says why.
            self.stdin = None;
            let status = self.child.wait().ok();
            let stderr = join_stderr(self.stderr.take());
            let message = failure_message(status, stderr);
            return Err(self.encode_error(format!("{message} ({e})")));
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> usize {
        self.frames
    }

    /// Closes the input, waits for `ffmpeg` and moves the video into place. Returns the
    /// number of frames written.
    pub fn finish(mut self) -> Result<usize, VideoError> {
        self.stdin = None;
        let status = self.child.wait().ok();
        let stderr = join_stderr(self.stderr.take());
        if !status.is_some_and(|s| s.success()) {
            return Err(self.encode_error(failure_message(status, stderr)));
        }
        if self.frames == 0 {
            return Err(self.encode_error("no frames were written".into()));
        }
        if let Some(pending) = self.pending.take() {
            pending.commit()?;
        }
        Ok(self.frames)
    }

    fn encode_error(&self, message: String) -> VideoError {
        let path = self.pending.as_ref().map(|p| p.path().to_path_buf()).unwrap_or_default();
        VideoError::Encode { path, message }
    }
}

impl Drop for VideoEncoder {
    fn drop(&mut self) {
        if self.pending.is_some() {
            // Not finished: stop the process; the pending file removes the partial video.
            self.stdin = None;
            stop_child(&mut self.child);
            let _ = join_stderr(self.stderr.take());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::synth::rng::SplitMix;

    /// Whether video tests can run; they are skipped (with a note) when ffmpeg is missing,
    /// unless `AQUAMVS_REQUIRE_FFMPEG` is set, as `scripts/test` does, which makes a missing
    /// ffmpeg a failure instead.
    pub(crate) fn ffmpeg_or_skip(test: &str) -> bool {
        if ffmpeg_available() {
            return true;
        }
        assert!(
            std::env::var_os("AQUAMVS_REQUIRE_FFMPEG").is_none(),
            "{test}: ffmpeg is required (AQUAMVS_REQUIRE_FFMPEG is set) but not on PATH"
        );
        // A skipped test must say so; cargo shows this with the test's output.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{test}: skipped, ffmpeg is not on PATH (scripts/test installs it)");
        }
        false
    }

    /// Frames of random noise with a moving bright square: every pixel differs between
    /// frames, so an off-by-one frame index cannot go unnoticed.
    pub(crate) fn test_frames(size: ImageSize, n: usize, seed: u64) -> Vec<RgbImage> {
        let mut rng = SplitMix::new(seed);
        (0..n)
            .map(|i| {
                RgbImage::from_fn(size, |x, y| {
                    if (x / 8 + y / 8) % n == i {
                        [255, 255, 255]
                    } else {
                        let v = rng.next_u64();
                        [v as u8, (v >> 8) as u8, (v >> 16) as u8]
                    }
                })
            })
            .collect()
    }

    pub(crate) fn write_video(path: &Path, frames: &[RgbImage], codec: VideoCodec) {
        let mut enc = VideoEncoder::create(path, frames[0].size(), 30.0, codec).unwrap();
        for f in frames {
            enc.write(f).unwrap();
        }
        assert_eq!(enc.finish().unwrap(), frames.len());
    }

    #[test]
    fn lossless_round_trips_and_seeks_agree() {
        if !ffmpeg_or_skip("lossless_round_trips_and_seeks_agree") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let size = ImageSize::new(48, 32);
        let frames = test_frames(size, 12, 7);
        for (name, codec) in [
            ("a.mkv", VideoCodec::Ffv1),
            ("a.mov", VideoCodec::Png),
            ("a.mp4", VideoCodec::H264LosslessRgb),
        ] {
            let path = dir.path().join(name);
            write_video(&path, &frames, codec);
            let info = probe(&path).unwrap();
            assert_eq!((info.size, info.frames), (size, 12), "{name}");
            assert!((info.fps.unwrap() - 30.0).abs() < 1e-9, "{name}: {info:?}");

            // Sequential decoding returns every frame exactly, then ends.
            let mut dec = VideoDecoder::open(&path, &info, 0).unwrap();
            for (i, want) in frames.iter().enumerate() {
                let got = dec.read().unwrap().unwrap();
                assert!(got == *want, "{name}: frame {i} differs");
            }
            assert!(dec.read().unwrap().is_none(), "{name}");

            // Seeking lands on the same frames; so does a reader in any order.
            for start in [1, 5, 11] {
                let mut dec = VideoDecoder::open(&path, &info, start).unwrap();
                assert!(dec.read().unwrap().unwrap() == frames[start], "{name}: seek {start}");
            }
            let mut reader = VideoReader::with_info(&path, info);
            for i in [3, 4, 9, 2, 11, 0] {
                assert!(reader.read(i).unwrap() == frames[i], "{name}: read {i}");
            }
            // 3 → 4 → 9 continue one decoder; 2 (behind) and 0 restart, 11 skips forward.
            assert_eq!(reader.decoder_starts(), 3, "{name}");
            let err = reader.read(12).unwrap_err();
            assert!(matches!(err, VideoError::OutOfRange { frame: 12, frames: 12, .. }), "{err}");
        }
    }

    #[test]
    fn lossy_h264_is_close_and_odd_sizes_work() {
        if !ffmpeg_or_skip("lossy_h264_is_close_and_odd_sizes_work") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // Smooth frames (H.264 at high quality keeps them within a few levels).
        for size in [ImageSize::new(64, 48), ImageSize::new(33, 17)] {
            let frames: Vec<RgbImage> = (0..4)
                .map(|i| {
                    RgbImage::from_fn(size, |x, y| {
                        [(x * 3 + i * 10) as u8, (y * 4) as u8, 128 + (x + y) as u8 / 2]
                    })
                })
                .collect();
            let path = dir.path().join(format!("b{}.mp4", size.width));
            write_video(&path, &frames, VideoCodec::H264 { crf: 10 });
            let mut reader = VideoReader::open(&path).unwrap();
            assert_eq!(reader.info().frames, 4);
            for (i, want) in frames.iter().enumerate() {
                let got = reader.read(i).unwrap();
                let worst = got
                    .as_slice()
                    .iter()
                    .zip(want.as_slice())
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                assert!(worst <= 12, "{size}: frame {i} off by {worst}");
            }
        }
    }

    #[test]
    fn errors_name_the_file() {
        if !ffmpeg_or_skip("errors_name_the_file") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("bogus.mp4");
        std::fs::write(&bogus, b"not a video").unwrap();
        let err = probe(&bogus).unwrap_err();
        assert!(matches!(err, VideoError::Probe { .. }) && err.to_string().contains("bogus.mp4"));

        let size = ImageSize::new(16, 16);
        let out = dir.path().join("out.mkv");
        let mut enc = VideoEncoder::create(&out, size, 30.0, VideoCodec::Ffv1).unwrap();
        let err = enc.write(&RgbImage::from_elem(ImageSize::new(8, 8), 0)).unwrap_err();
        assert!(err.to_string().contains("out.mkv") && err.to_string().contains("8×8"), "{err}");
        // An encoder dropped before `finish` leaves nothing behind.
        enc.write(&RgbImage::from_elem(size, 9)).unwrap();
        drop(enc);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = VideoEncoder::create(&dir.path().join("x.webm"), size, 30.0, VideoCodec::Ffv1)
            .unwrap_err();
        assert!(err.to_string().contains(".mp4, .mkv"), "{err}");
    }
}
