//! Temporal median background: removes fish, debris and bubbles from video of a static
//! bottom (reference-numerics §8, reference-product §1.6).
//!
//! Each output frame is the per-pixel, per-channel median ([`super::median`]) of a set of
//! source frames. Which outputs exist and which sources each one uses is a pure function of
//! the video length and the options ([`plan`]), for both schedules of AquaMVS:
//!
//! - **hybrid seek** (default): outputs at `window − 1 + k·framestep`; each uses the frames
//!   `idx − window + 1 ..= idx`, keeping every `window_step`-th from the window start;
//! - **exact seek** (`--exact-seek`): a sequential ring of `⌈window / window_step⌉` frames that
//!   takes a frame whenever a counter, restarted every `window` frames, is a multiple of
//!   `window_step`; an output is written at every frame index that is a multiple of
//!   `framestep` once the ring is full.
//!
//! Execution is one streaming pass whatever the schedule: the frames some output needs are
//! decoded once, in increasing order, by one `ffmpeg` process that decodes straight through
//! small gaps and seeks over large ones ([`crate::io::video::VideoReader`]). A frame stays in
//! memory only until the last output that uses it is done. Decoding, the median (parallel
//! over pixels) and writing run on three threads, so with overlapping windows the cost per
//! output is close to the slowest of the three. AquaMVS re-read every window from a seek, so
//! with `framestep` 1 it decoded each frame `window` times.
//!
//! Outputs: PNG frames `{out}/{video_stem}/frame_{idx:06d}.png` (lossless; the usual input to
//! a reconstruction), or one video `{out}/{stem}_median.mp4` (H.264 at `--output-fps`). Every
//! file is written atomically.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::time::Instant;

use crate::frames::{VIDEO_EXTENSIONS, has_extension};
use crate::imgproc::{ImageSize, RgbImage};
use crate::io::images::{ImageIoError, write_png_rgb};
use crate::io::video::{VideoCodec, VideoEncoder, VideoError, VideoReader, probe};

use super::median::median_u8;

/// Quality of the H.264 videos written with `--format mp4` (constant rate factor): visually
/// lossless, so a median video stays usable as reconstruction input.
pub const MP4_CRF: u8 = 16;

/// Source frames decoded ahead of the median (each is `width × height × 3` bytes).
const DECODE_AHEAD: usize = 2;
/// Finished outputs queued for the writer.
const WRITE_AHEAD: usize = 2;

/// Which frames become outputs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Outputs at `window − 1 + k·framestep`, each from its own window (AquaMVS default).
    HybridSeek,
    /// A sequential ring buffer; outputs where `frame % framestep == 0` (AquaMVS
    /// `--exact-seek`).
    ExactSeek,
}

/// What the filter writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One lossless PNG per output frame, in a folder per video.
    Png,
    /// One H.264 MP4 per video.
    Mp4,
}

/// Options of the temporal median.
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalOptions {
    /// Frames spanned by one median (≥ 1). 30 frames (1 s at 30 fps) outlasts a fish
    /// crossing the view; longer windows remove slower objects but blur real changes.
    pub window: usize,
    /// Distance between output frames (≥ 1).
    pub framestep: usize,
    /// Keep every `window_step`-th frame of a window (≥ 1): `⌈window / window_step⌉` frames
    /// per median, for a long window at lower cost.
    pub window_step: usize,
    /// Which frames become outputs.
    pub schedule: Schedule,
    /// PNG frames or an MP4 video.
    pub format: OutputFormat,
    /// Frame rate of MP4 outputs (frames per second, > 0).
    pub output_fps: f64,
}

impl Default for TemporalOptions {
    /// AquaMVS's defaults: window 30, every frame, every frame of the window, hybrid seek,
    /// PNG, 30 fps for MP4.
    fn default() -> Self {
        Self {
            window: 30,
            framestep: 1,
            window_step: 1,
            schedule: Schedule::HybridSeek,
            format: OutputFormat::Png,
            output_fps: 30.0,
        }
    }
}

impl TemporalOptions {
    /// Checks the ranges; the error names the flag.
    pub fn validate(&self) -> Result<(), TemporalError> {
        for (flag, value) in [
            ("window", self.window),
            ("framestep", self.framestep),
            ("window-step", self.window_step),
        ] {
            if value == 0 {
                return Err(TemporalError::Option { flag, message: "must be at least 1".into() });
            }
        }
        if !(self.output_fps.is_finite() && self.output_fps > 0.0) {
            return Err(TemporalError::Option {
                flag: "output-fps",
                message: format!("must be a positive number, got {}", self.output_fps),
            });
        }
        Ok(())
    }

    /// Source frames per median: `⌈window / window_step⌉`.
    pub fn frames_per_median(&self) -> usize {
        self.window.div_ceil(self.window_step.max(1))
    }
}

/// Errors of the temporal filter; each names the file or the flag.
#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    /// An option is out of range.
    #[error("--{flag} {message}")]
    Option {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The input does not exist.
    #[error("input not found: {}", path.display())]
    MissingInput {
        /// The input path.
        path: PathBuf,
    },
    /// The input file is not a video.
    #[error("{} is not a video ({})", path.display(), VIDEO_EXTENSIONS.join(", "))]
    NotAVideo {
        /// The input path.
        path: PathBuf,
    },
    /// The input folder holds no videos at its top level.
    #[error("no videos ({}) at the top level of {}", VIDEO_EXTENSIONS.join(", "), path.display())]
    NoVideos {
        /// The folder.
        path: PathBuf,
    },
    /// The input folder cannot be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or encoding video failed.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// Writing an output frame failed.
    #[error(transparent)]
    Image(#[from] ImageIoError),
}

/// One output frame: its index (the number in its file name) and the source frames whose
/// median it is, in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFrame {
    /// Output frame index.
    pub index: usize,
    /// Source frame indices, increasing.
    pub sources: Vec<usize>,
}

/// The outputs of a video of `total` frames under `opts` (empty when the video is shorter
/// than the window).
pub fn plan(total: usize, opts: &TemporalOptions) -> Vec<OutputFrame> {
    let (window, framestep, window_step) =
        (opts.window.max(1), opts.framestep.max(1), opts.window_step.max(1));
    match opts.schedule {
        Schedule::HybridSeek => (window - 1..total)
            .step_by(framestep)
            .map(|index| {
                let start = index + 1 - window;
                OutputFrame { index, sources: (start..=index).step_by(window_step).collect() }
            })
            .collect(),
        Schedule::ExactSeek => {
            let capacity = opts.frames_per_median();
            let mut ring: VecDeque<usize> = VecDeque::with_capacity(capacity + 1);
            let mut in_window = 0;
            let mut outputs = Vec::new();
            for frame in 0..total {
                if in_window % window_step == 0 {
                    ring.push_back(frame);
                    if ring.len() > capacity {
                        ring.pop_front();
                    }
                }
                in_window += 1;
                if in_window >= window {
                    in_window = 0;
                }
                if ring.len() == capacity && frame % framestep == 0 {
                    outputs.push(OutputFrame {
                        index: frame,
                        sources: ring.iter().copied().collect(),
                    });
                }
            }
            outputs
        }
    }
}

/// One video to filter and where its outputs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoJob {
    /// The video file.
    pub video: PathBuf,
    /// Its stem (names the outputs).
    pub stem: String,
    /// The PNG folder, or the MP4 file.
    pub destination: PathBuf,
}

/// The videos of `input` (one video file, or the videos at the top level of a folder, sorted
/// by name) and their destinations.
///
/// Output folder when `output_dir` is `None`: the input's folder for a single video, else
/// `{parent}/{folder name}_median`. PNG frames go to `{out}/{stem}/`, videos to
/// `{out}/{stem}_median.mp4` (AquaMVS's layout).
pub fn plan_jobs(
    input: &Path,
    output_dir: Option<&Path>,
    format: OutputFormat,
) -> Result<Vec<VideoJob>, TemporalError> {
    let parent = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (videos, out) = if input.is_file() {
        if !has_extension(input, VIDEO_EXTENSIONS) {
            return Err(TemporalError::NotAVideo { path: input.into() });
        }
        (vec![input.to_path_buf()], output_dir.map_or_else(|| parent(input), Path::to_path_buf))
    } else if input.is_dir() {
        let list_err = |source| TemporalError::List { path: input.into(), source };
        let mut videos = Vec::new();
        for entry in std::fs::read_dir(input).map_err(list_err)? {
            let path = entry.map_err(list_err)?.path();
            if path.is_file() && has_extension(&path, VIDEO_EXTENSIONS) {
                videos.push(path);
            }
        }
        if videos.is_empty() {
            return Err(TemporalError::NoVideos { path: input.into() });
        }
        videos.sort();
        let name = input
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "videos".into());
        let default = || {
            parent(&input.canonicalize().unwrap_or_else(|_| input.to_path_buf()))
                .join(format!("{name}_median"))
        };
        (videos, output_dir.map_or_else(default, Path::to_path_buf))
    } else {
        return Err(TemporalError::MissingInput { path: input.into() });
    };
    Ok(videos
        .into_iter()
        .map(|video| {
            let stem = video
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into());
            let destination = match format {
                OutputFormat::Png => out.join(&stem),
                OutputFormat::Mp4 => out.join(format!("{stem}_median.mp4")),
            };
            VideoJob { video, stem, destination }
        })
        .collect())
}

/// What filtering one video did.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterStats {
    /// Output frames written.
    pub outputs: usize,
    /// Source frames decoded into medians.
    pub frames_decoded: usize,
    /// Frames in the video (ffprobe's count).
    pub frames_in_video: usize,
    /// Frame size.
    pub size: ImageSize,
    /// Wall time (s).
    pub seconds: f64,
    /// True when the video ended before ffprobe's count and later outputs were left out.
    pub ended_early: bool,
}

/// Progress callback: (outputs done, outputs planned).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Filters one video into `job.destination` (see [`plan_jobs`]).
pub fn filter_video(
    job: &VideoJob,
    opts: &TemporalOptions,
    progress: Progress<'_>,
) -> Result<FilterStats, TemporalError> {
    opts.validate()?;
    let started = Instant::now();
    let info = probe(&job.video)?;
    let outputs = plan(info.frames, opts);
    let _span = tracing::info_span!("temporal_filter", video = %job.video.display()).entered();
    tracing::info!(
        "{}: {} at {} fps, {} frames; window {} (every {} → {} per median), framestep {}, {:?}: {} output(s)",
        job.video.display(),
        info.size,
        info.fps.map_or_else(|| "unknown".into(), |f| format!("{f:.2}")),
        info.frames,
        opts.window,
        opts.window_step,
        opts.frames_per_median(),
        opts.framestep,
        opts.schedule,
        outputs.len()
    );
    let mut stats = FilterStats {
        outputs: 0,
        frames_decoded: 0,
        frames_in_video: info.frames,
        size: info.size,
        seconds: 0.0,
        ended_early: false,
    };
    if outputs.is_empty() {
        tracing::warn!(
            "{} has {} frame(s), fewer than the window of {}: no output",
            job.video.display(),
            info.frames,
            opts.window
        );
        return Ok(stats);
    }
    let frame_bytes = info.size.area() * 3;
    tracing::debug!(
        "about {} MB of frames in memory",
        (opts.frames_per_median() + DECODE_AHEAD + WRITE_AHEAD + 2) * frame_bytes / 1_000_000
    );

    // The last output that uses each source frame: when it is done, the frame is freed.
    let mut last_use: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, out) in outputs.iter().enumerate() {
        for &s in &out.sources {
            last_use.insert(s, i);
        }
    }
    let needed: Vec<usize> = last_use.keys().copied().collect();
    let writer = match opts.format {
        OutputFormat::Png => Writer::Png { dir: job.destination.clone(), size: info.size },
        OutputFormat::Mp4 => Writer::Mp4(VideoEncoder::create(
            &job.destination,
            info.size,
            opts.output_fps,
            VideoCodec::H264 { crf: MP4_CRF },
        )?),
    };
    let mut reader = VideoReader::with_info(&job.video, info);

    std::thread::scope(|scope| -> Result<(), TemporalError> {
        let (frame_tx, frame_rx) = sync_channel::<Decoded>(DECODE_AHEAD);
        let (recycle_tx, recycle_rx) = channel::<Vec<u8>>();
        let (out_tx, out_rx) = sync_channel::<Finished>(WRITE_AHEAD);
        let (spare_tx, spare_rx) = channel::<Vec<u8>>();

        let needed = &needed;
        let reader = &mut reader;
        scope.spawn(move || decode_frames(reader, needed, frame_bytes, &frame_tx, &recycle_rx));
        let write_handle = scope.spawn(move || writer.run(&out_rx, &spare_tx));

        let pipes =
            Pipes { decoded: frame_rx, recycle: recycle_tx, finished: out_tx, spare: spare_rx };
        let result =
            compute_medians(&outputs, &last_use, frame_bytes, &pipes, &mut stats, progress);
        // Closing the channels lets both threads finish.
        drop(pipes);
        let written = write_handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        result?;
        written
    })?;
    stats.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "{}: {} output frame(s) in {:.1} s ({:.1} frames/s)",
        job.video.display(),
        stats.outputs,
        stats.seconds,
        stats.outputs as f64 / stats.seconds.max(1e-9)
    );
    Ok(stats)
}

/// A decoded source frame (index, `rgb24` bytes), or why decoding stopped.
type Decoded = Result<(usize, Vec<u8>), VideoError>;
/// A finished output frame (index, `rgb24` bytes).
type Finished = (usize, Vec<u8>);

/// The median loop's ends of the channels to the decoding and writing threads. Buffers
/// travel back (`recycle` to the decoder, `spare` from the writer) so that a long run
/// allocates only a handful of frames.
struct Pipes {
    decoded: Receiver<Decoded>,
    recycle: Sender<Vec<u8>>,
    finished: SyncSender<Finished>,
    spare: Receiver<Vec<u8>>,
}

/// The decoding thread: reads the `needed` frames in order and sends them on.
fn decode_frames(
    reader: &mut VideoReader,
    needed: &[usize],
    frame_bytes: usize,
    frames: &SyncSender<Decoded>,
    recycled: &Receiver<Vec<u8>>,
) {
    for &frame in needed {
        let mut buf = recycled.try_recv().unwrap_or_else(|_| vec![0u8; frame_bytes]);
        let result = reader.read_into(frame, &mut buf).map(|()| (frame, buf));
        let failed = result.is_err();
        if frames.send(result).is_err() || failed {
            return;
        }
    }
}

/// The median loop (calling thread): gathers each output's sources, computes the median and
/// hands it to the writer; frees frames after their last use.
fn compute_medians(
    outputs: &[OutputFrame],
    last_use: &BTreeMap<usize, usize>,
    frame_bytes: usize,
    pipes: &Pipes,
    stats: &mut FilterStats,
    progress: Progress<'_>,
) -> Result<(), TemporalError> {
    let Pipes { decoded: frames, recycle, finished: written, spare } = pipes;
    let mut loaded: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for (i, out) in outputs.iter().enumerate() {
        let Some(&last_source) = out.sources.last() else { continue };
        while loaded.last_key_value().is_none_or(|(&f, _)| f < last_source) {
            match frames.recv() {
                Ok(Ok((frame, buf))) => {
                    stats.frames_decoded += 1;
                    loaded.insert(frame, buf);
                }
                Ok(Err(VideoError::OutOfRange { path, frames: decoded, .. })) => {
                    // ffprobe counted packets that do not decode to frames.
                    tracing::warn!(
                        "{} ends after about {decoded} frames although ffprobe counted {}; \
                         the last {} output(s) are left out",
                        path.display(),
                        stats.frames_in_video,
                        outputs.len() - i
                    );
                    stats.ended_early = true;
                    return Ok(());
                }
                Ok(Err(err)) => return Err(err.into()),
                // The decoder stopped without a message: only after the writer failed.
                Err(_) => return Ok(()),
            }
        }
        let sources: Vec<&[u8]> = out
            .sources
            .iter()
            .map(|s| loaded.get(s).map(Vec::as_slice).expect("sources are decoded in order"))
            .collect();
        let mut median = spare.try_recv().unwrap_or_else(|_| vec![0u8; frame_bytes]);
        median_u8(&sources, &mut median);
        if written.send((out.index, median)).is_err() {
            // The writer failed; its error is reported by the caller.
            return Ok(());
        }
        stats.outputs += 1;
        progress(stats.outputs, outputs.len());
        loaded.retain(|frame, buf| {
            let keep = last_use.get(frame).is_some_and(|&last| last > i);
            if !keep {
                let _ = recycle.send(std::mem::take(buf));
            }
            keep
        });
    }
    Ok(())
}

/// The writing thread's destination.
enum Writer {
    Png { dir: PathBuf, size: ImageSize },
    Mp4(VideoEncoder),
}

impl Writer {
    fn run(
        self,
        outputs: &Receiver<Finished>,
        spare: &Sender<Vec<u8>>,
    ) -> Result<(), TemporalError> {
        match self {
            Writer::Png { dir, size } => {
                for (index, buf) in outputs {
                    let img = RgbImage::new(size, buf).expect("medians have the frame size");
                    write_png_rgb(&dir.join(format!("frame_{index:06}.png")), &img)?;
                    let _ = spare.send(img.into_vec());
                }
                Ok(())
            }
            Writer::Mp4(mut encoder) => {
                for (_, buf) in outputs {
                    encoder.write_raw(&buf)?;
                    let _ = spare.send(buf);
                }
                if encoder.frames_written() > 0 {
                    encoder.finish()?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::images::read_rgb;
    use crate::io::video::tests::{ffmpeg_or_skip, test_frames, write_video};
    use crate::preprocess::median::median_u8_by_sorting;

    fn opts(
        window: usize,
        framestep: usize,
        window_step: usize,
        schedule: Schedule,
    ) -> TemporalOptions {
        TemporalOptions { window, framestep, window_step, schedule, ..TemporalOptions::default() }
    }

    fn indices(total: usize, o: &TemporalOptions) -> Vec<usize> {
        plan(total, o).iter().map(|f| f.index).collect()
    }

    #[test]
    fn hybrid_schedule() {
        let o = opts(4, 3, 1, Schedule::HybridSeek);
        let p = plan(12, &o);
        assert_eq!(indices(12, &o), [3, 6, 9]);
        assert_eq!(p[0].sources, [0, 1, 2, 3]);
        assert_eq!(p[2].sources, [6, 7, 8, 9]);
        // window_step keeps every k-th frame from the window start.
        let p = plan(12, &opts(5, 4, 2, Schedule::HybridSeek));
        assert_eq!(p.iter().map(|f| f.index).collect::<Vec<_>>(), [4, 8]);
        assert_eq!(p[0].sources, [0, 2, 4]);
        assert_eq!(p[1].sources, [4, 6, 8]);
        // Shorter than the window: nothing; exactly the window: one output.
        assert!(plan(3, &o).is_empty());
        assert_eq!(indices(4, &o), [3]);
        // Defaults (window 30, framestep 1): every frame from 29 on.
        assert_eq!(indices(32, &TemporalOptions::default()), [29, 30, 31]);
    }

    #[test]
    fn exact_schedule() {
        // framestep 1, window_step 1: the same outputs as hybrid.
        let (e, h) = (opts(4, 1, 1, Schedule::ExactSeek), opts(4, 1, 1, Schedule::HybridSeek));
        assert_eq!(plan(10, &e), plan(10, &h));
        // With a framestep the two schedules differ: multiples of framestep once full.
        let e = opts(4, 3, 1, Schedule::ExactSeek);
        assert_eq!(indices(12, &e), [3, 6, 9]);
        let e = opts(5, 3, 1, Schedule::ExactSeek);
        assert_eq!(indices(13, &e), [6, 9, 12]);
        assert_eq!(indices(13, &opts(5, 3, 1, Schedule::HybridSeek)), [4, 7, 10]);
        assert_eq!(plan(13, &e)[0].sources, [2, 3, 4, 5, 6]);
        // window_step: the take counter restarts every `window` frames (window 5, step 2:
        // frames 0, 2, 4, 5, 7, 9, 10, …), ring of 3.
        let e = opts(5, 1, 2, Schedule::ExactSeek);
        let p = plan(11, &e);
        assert_eq!(p[0], OutputFrame { index: 4, sources: vec![0, 2, 4] });
        assert_eq!(p[1], OutputFrame { index: 5, sources: vec![2, 4, 5] });
        assert_eq!(p[2], OutputFrame { index: 6, sources: vec![2, 4, 5] });
        assert_eq!(p.last().unwrap(), &OutputFrame { index: 10, sources: vec![7, 9, 10] });
    }

    #[test]
    fn options_are_checked() {
        let mut o = TemporalOptions { window_step: 0, ..TemporalOptions::default() };
        assert!(o.validate().unwrap_err().to_string().contains("--window-step must be at least 1"));
        o.window_step = 1;
        o.output_fps = 0.0;
        assert!(o.validate().unwrap_err().to_string().contains("--output-fps"));
        assert_eq!(TemporalOptions { window: 30, window_step: 4, ..o }.frames_per_median(), 8);
    }

    #[test]
    fn jobs_and_default_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let videos = dir.path().join("videos");
        std::fs::create_dir_all(videos.join("nested")).unwrap();
        for name in ["b.MP4", "a.mkv", "notes.txt", "nested/c.mp4"] {
            std::fs::write(videos.join(name), b"x").unwrap();
        }
        let jobs = plan_jobs(&videos, None, OutputFormat::Png).unwrap();
        let canon = dir.path().canonicalize().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].stem, "a");
        assert_eq!(jobs[0].destination, canon.join("videos_median").join("a"));
        let jobs = plan_jobs(&videos, Some(Path::new("out")), OutputFormat::Mp4).unwrap();
        assert_eq!(jobs[1].destination, Path::new("out/b_median.mp4"));
        let one = videos.join("a.mkv");
        let jobs = plan_jobs(&one, None, OutputFormat::Png).unwrap();
        assert_eq!(jobs[0].destination, videos.join("a"));
        let jobs = plan_jobs(&one, None, OutputFormat::Mp4).unwrap();
        assert_eq!(jobs[0].destination, videos.join("a_median.mp4"));

        let err = plan_jobs(&videos.join("notes.txt"), None, OutputFormat::Png).unwrap_err();
        assert!(err.to_string().contains("is not a video"), "{err}");
        let err = plan_jobs(&videos.join("nested/none"), None, OutputFormat::Png).unwrap_err();
        assert!(err.to_string().contains("input not found"), "{err}");
        std::fs::remove_file(videos.join("a.mkv")).unwrap();
        std::fs::remove_file(videos.join("b.MP4")).unwrap();
        let err = plan_jobs(&videos, None, OutputFormat::Png).unwrap_err();
        assert!(err.to_string().contains("no videos"), "{err}");
    }

    /// Filters a lossless video and compares every output with a direct median of the
    /// source frames the schedule names.
    #[test]
    fn outputs_equal_a_direct_median() {
        if !ffmpeg_or_skip("outputs_equal_a_direct_median") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let size = ImageSize::new(40, 24);
        let frames = test_frames(size, 14, 5);
        let video = dir.path().join("clip.mkv");
        write_video(&video, &frames, VideoCodec::Ffv1);
        for (o, expect) in [
            (opts(4, 1, 1, Schedule::HybridSeek), 11),
            (opts(5, 4, 2, Schedule::ExactSeek), 3),
            // Sparse windows far apart: the reader seeks between them.
            (opts(3, 10, 1, Schedule::HybridSeek), 2),
        ] {
            let out = dir.path().join(format!("out_{}_{}", o.window, o.framestep));
            let job =
                VideoJob { video: video.clone(), stem: "clip".into(), destination: out.clone() };
            let stats = filter_video(&job, &o, &|_, _| {}).unwrap();
            assert_eq!(stats.outputs, expect, "{o:?}");
            for f in plan(frames.len(), &o) {
                let srcs: Vec<&[u8]> = f.sources.iter().map(|&s| frames[s].as_slice()).collect();
                let mut want = vec![0u8; size.area() * 3];
                median_u8_by_sorting(&srcs, &mut want);
                let got = read_rgb(&out.join(format!("frame_{:06}.png", f.index))).unwrap();
                assert!(got.as_slice() == want.as_slice(), "{o:?}: output {}", f.index);
            }
            let written = std::fs::read_dir(&out).unwrap().count();
            assert_eq!(written, expect);
        }
        // MP4 output: one video with one frame per output.
        let o =
            TemporalOptions { format: OutputFormat::Mp4, ..opts(4, 2, 1, Schedule::HybridSeek) };
        let mp4 = dir.path().join("clip_median.mp4");
        let job = VideoJob { video: video.clone(), stem: "clip".into(), destination: mp4.clone() };
        assert_eq!(filter_video(&job, &o, &|_, _| {}).unwrap().outputs, 6);
        let info = probe(&mp4).unwrap();
        assert_eq!((info.size, info.frames), (size, 6));
        assert!((info.fps.unwrap() - 30.0).abs() < 1e-6);
    }
}
