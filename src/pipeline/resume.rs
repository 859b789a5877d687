//! Resuming runs safely: what identifies a frame's inputs, the `frame.json` marker written last
//! into each completed frame folder, and the check that decides whether a frame is up to date.
//!
//! A frame's outputs are trusted only when its folder holds a readable `frame.json` whose
//! [`Fingerprint`] equals the current one, that records no lost camera (a *degraded* frame is
//! always retried), and every output it lists still exists with the size and the content hash
//! ([`content_hash`]) it had when it was written. Every file is written atomically (temporary
//! file + rename) and `frame.json` after all of them, so a run killed at any moment leaves
//! either a complete frame or one without a valid marker, which the next run recomputes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::calib::{Rig, rig_to_aquacal_json};
use crate::config::{Config, Preprocessing};
use crate::frames::CameraInput;
use crate::io::atomic::write_bytes_atomic;

use super::PipelineError;
use super::context::Context;
use super::report::{FrameReport, unix_now};

/// File name of the completion marker inside a frame folder.
pub const FRAME_MARKER: &str = crate::layout::FRAME_RECORD;

/// FNV-1a (64 bit) over length-prefixed fields: cheap, stable across platforms and versions,
/// and enough to notice a change (this is not a security hash).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xCBF2_9CE4_8422_2325)
    }

    fn raw(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    /// Feeds one field; the length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.raw(&(bytes.len() as u64).to_le_bytes());
        self.raw(bytes);
        self
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// What a frame's outputs depend on, each part hashed separately so that a mismatch can say
/// which part changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The aquamvs version that computed the outputs.
    pub aquamvs_version: String,
    /// Hash of the config as used, without the fields that cannot change a frame's outputs
    /// (see [`config_hash`]).
    pub config: String,
    /// Hash of the calibration's parsed values (see [`calibration_hash`]).
    pub calibration: String,
    /// Hash of the masks in use (names, sizes and pixels).
    pub masks: String,
    /// Hash of the frame's inputs: per camera the image file (path, size, modification time),
    /// or the video (path, size, modification time) and the frame index.
    pub inputs: String,
}

impl Fingerprint {
    /// All parts in one hash (what `run.json` and logs show).
    pub fn combined(&self) -> String {
        let mut h = Fnv::new();
        for part in
            [&self.aquamvs_version, &self.config, &self.calibration, &self.masks, &self.inputs]
        {
            h.field(part.as_bytes());
        }
        h.hex()
    }

    /// Why outputs recorded with `self` are not valid for `current`, or `None` if they are.
    pub fn difference(&self, current: &Self) -> Option<String> {
        if self.aquamvs_version != current.aquamvs_version {
            Some(format!(
                "outputs from aquamvs {} (this is {})",
                self.aquamvs_version, current.aquamvs_version
            ))
        } else if self.config != current.config {
            Some("outputs from a different config".into())
        } else if self.calibration != current.calibration {
            Some("outputs from a different calibration".into())
        } else if self.masks != current.masks {
            Some("outputs from different masks".into())
        } else if self.inputs != current.inputs {
            Some("the frame's input files changed".into())
        } else {
            None
        }
    }
}

/// The parts of the fingerprint shared by every frame of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFingerprint {
    /// See [`Fingerprint::config`].
    pub config: String,
    /// See [`Fingerprint::calibration`].
    pub calibration: String,
    /// See [`Fingerprint::masks`].
    pub masks: String,
}

impl RunFingerprint {
    /// Hashes the config, calibration and masks of a context.
    pub fn of(ctx: &Context) -> Result<Self, PipelineError> {
        let mut masks = Fnv::new();
        for (name, mask) in &ctx.masks {
            let size = mask.size();
            masks
                .field(name.as_bytes())
                .field(&(size.width as u64).to_le_bytes())
                .field(&(size.height as u64).to_le_bytes())
                .field(mask.as_slice());
        }
        Ok(Self {
            config: config_hash(&ctx.config),
            calibration: calibration_hash(&ctx.rig),
            masks: masks.hex(),
        })
    }

    /// The config, calibration and masks in one hash (`config_fingerprint` of `run.json`):
    /// runs with equal values computed, or would compute, identical frames from identical
    /// inputs.
    pub fn combined(&self) -> String {
        let mut h = Fnv::new();
        h.field(self.config.as_bytes())
            .field(self.calibration.as_bytes())
            .field(self.masks.as_bytes());
        h.hex()
    }

    /// The fingerprint of frame `index`.
    pub fn frame(&self, ctx: &Context, index: usize) -> Fingerprint {
        Fingerprint {
            aquamvs_version: env!("CARGO_PKG_VERSION").into(),
            config: self.config.clone(),
            calibration: self.calibration.clone(),
            masks: self.masks.clone(),
            inputs: inputs_hash(ctx, index),
        }
    }
}

/// Hash of the config fields that can change a frame's outputs: everything except the frame
/// selection (`preprocessing.frame_start/stop/step`, which `--frames` and `--shard` change),
/// `output_dir` (an output folder may be moved), `quality_preset` (read only by `init`),
/// `runtime.threads` and `runtime.quiet`.
pub fn config_hash(config: &Config) -> String {
    let defaults = Preprocessing::default();
    let mut c = config.clone();
    c.preprocessing.frame_start = defaults.frame_start;
    c.preprocessing.frame_stop = defaults.frame_stop;
    c.preprocessing.frame_step = defaults.frame_step;
    c.output_dir = PathBuf::new();
    c.quality_preset = None;
    c.runtime.threads = None;
    c.runtime.quiet = false;
    Fnv::new().field(c.to_yaml().as_bytes()).hex()
}

/// Hash of the calibration's values as aquamvs parsed them (written back in one canonical
/// form), not of the file's bytes: line endings, indentation, key order, number spelling and
/// the diagnostics and metadata AquaCal rewrites on every save change nothing.
pub fn calibration_hash(rig: &Rig) -> String {
    Fnv::new().field(rig_to_aquacal_json(rig).as_bytes()).hex()
}

/// Hash of the identity of frame `index`'s inputs in every active camera.
fn inputs_hash(ctx: &Context, index: usize) -> String {
    let mut h = Fnv::new();
    h.field(&(index as u64).to_le_bytes());
    for name in ctx.cameras.keys() {
        h.field(name.as_bytes());
        let file = match ctx.inputs.camera(name) {
            Some(CameraInput::Images(files)) => files.get(index),
            Some(CameraInput::Video(path)) => Some(path),
            None => None,
        };
        let Some(file) = file else {
            h.field(b"-");
            continue;
        };
        h.field(file.as_os_str().as_encoded_bytes());
        match std::fs::metadata(file) {
            Ok(meta) => {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                h.field(&meta.len().to_le_bytes()).field(&mtime.to_le_bytes());
            }
            Err(_) => {
                h.field(b"unreadable");
            }
        }
    }
    h.hex()
}

/// One output file of a completed frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to the frame folder.
    pub path: String,
    /// Size in bytes when the frame completed.
    pub bytes: u64,
    /// Content hash when the frame completed ([`content_hash`]); absent in records written by
    /// aquamvs versions without content hashes, which are therefore stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The content hash of the file at `path`: `crc32:` and the CRC-32 (IEEE, as in PNG and zip)
/// of its bytes in 8 hex digits, read in 1 MiB blocks.
///
/// CRC-32 finds accidental corruption (every burst of up to 32 flipped bits, and any other
/// change with probability 1 − 2⁻³²), runs at several GB/s with the processor's carry-less
/// multiply, and is already a dependency of the PNG and npz writers. It is not meant to
/// detect deliberate tampering. The `crc32:` prefix lets a later version change algorithm:
/// a record with another prefix is stale.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(format!("crc32:{:08x}", hasher.finalize()))
}

/// The size and content hash of each output (`paths`, relative to the frame folder `dir`),
/// in a `tracing` span `output_hashes` (so that `aquamvs profile` shows its cost).
pub fn hash_outputs(dir: &Path, paths: &[String]) -> Result<Vec<OutputFile>, PipelineError> {
    let _span = tracing::info_span!("output_hashes").entered();
    let mut outputs = Vec::with_capacity(paths.len());
    for path in paths {
        let full = dir.join(path);
        let meta = std::fs::metadata(&full).map_err(|e| {
            PipelineError::Frame(format!("output {} was not written: {e}", full.display()))
        })?;
        let hash = content_hash(&full).map_err(|e| {
            PipelineError::Frame(format!("cannot read output {}: {e}", full.display()))
        })?;
        outputs.push(OutputFile { path: path.clone(), bytes: meta.len(), hash: Some(hash) });
    }
    Ok(outputs)
}

/// `frame_NNNNNN/frame.json`: written last, it says the frame's outputs are complete and what
/// they were computed from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Frame index.
    pub index: usize,
    /// What the outputs were computed from.
    pub fingerprint: Fingerprint,
    /// Wall time of the frame's computation (seconds).
    pub seconds: f64,
    /// Seconds since the Unix epoch when the frame completed.
    pub completed_unix: u64,
    /// Every output of the frame with its size and content hash.
    pub outputs: Vec<OutputFile>,
    /// The frame's report (stages, counts).
    pub report: FrameReport,
}

impl FrameRecord {
    /// The record of a frame whose outputs (`report.outputs`, relative to `dir`) were just
    /// written: their sizes and content hashes are read from disk (the files are still in
    /// the page cache).
    pub fn new(
        dir: &Path,
        fingerprint: Fingerprint,
        seconds: f64,
        report: FrameReport,
    ) -> Result<Self, PipelineError> {
        let outputs = hash_outputs(dir, &report.outputs)?;
        Ok(Self {
            index: report.index,
            fingerprint,
            seconds,
            completed_unix: unix_now(),
            outputs,
            report,
        })
    }

    /// Writes `DIR/frame.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), PipelineError> {
        let json =
            serde_json::to_string_pretty(self).map_err(|e| PipelineError::Frame(e.to_string()))?;
        write_bytes_atomic(&dir.join(FRAME_MARKER), json.as_bytes())?;
        Ok(())
    }
}

/// What a frame folder holds, compared with the current fingerprint.
#[derive(Clone, Debug)]
pub enum FrameState {
    /// No folder: the frame was never started.
    New,
    /// Complete outputs with the current fingerprint.
    UpToDate(Box<FrameRecord>),
    /// Outputs that cannot be trusted; the text says why.
    Stale(String),
}

/// Checks the folder `dir` of a frame against `current`.
pub fn check_frame(dir: &Path, current: &Fingerprint) -> FrameState {
    if !dir.exists() {
        return FrameState::New;
    }
    let marker = dir.join(FRAME_MARKER);
    // Through the one capped reader: a record replaced by a device or a huge file is stale,
    // never read whole.
    let text = match crate::io::limits::read_text(&marker) {
        Ok(t) => t,
        Err(crate::io::limits::ReadError::Io { source: e })
            if e.kind() == std::io::ErrorKind::NotFound =>
        {
            return FrameState::Stale(format!(
                "incomplete outputs (no {FRAME_MARKER}: interrupted or failed)"
            ));
        }
        Err(e) => return FrameState::Stale(format!("incomplete outputs ({FRAME_MARKER}: {e})")),
    };
    let record: FrameRecord = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            return FrameState::Stale(format!(
                "incomplete outputs ({FRAME_MARKER} unreadable: {e})"
            ));
        }
    };
    if let Some(why) = record.fingerprint.difference(current) {
        return FrameState::Stale(why);
    }
    if !record.report.skipped_cameras.is_empty() {
        return FrameState::Stale(format!(
            "degraded in its last run (camera {} could not be read)",
            record.report.skipped_cameras.join(", ")
        ));
    }
    // Sizes first: a cheap test that finds most damage before any file is read.
    for out in &record.outputs {
        match std::fs::metadata(dir.join(&out.path)) {
            Ok(meta) if meta.len() == out.bytes => {}
            Ok(meta) => {
                return FrameState::Stale(format!(
                    "incomplete outputs ({} is {} bytes, {} when written)",
                    out.path,
                    meta.len(),
                    out.bytes
                ));
            }
            Err(_) => {
                return FrameState::Stale(format!("incomplete outputs ({} is missing)", out.path));
            }
        }
    }
    for out in &record.outputs {
        let Some(expected) = &out.hash else {
            return FrameState::Stale(format!(
                "{FRAME_MARKER} has no content hash of {} (written by an older aquamvs)",
                out.path
            ));
        };
        match content_hash(&dir.join(&out.path)) {
            Ok(hash) if &hash == expected => {}
            Ok(_) => {
                return FrameState::Stale(format!(
                    "damaged outputs ({} changed since it was written)",
                    out.path
                ));
            }
            Err(e) => {
                return FrameState::Stale(format!(
                    "damaged outputs ({} unreadable: {e})",
                    out.path
                ));
            }
        }
    }
    FrameState::UpToDate(Box::new(record))
}

/// Removes a frame folder before the frame is recomputed, so that no output of an earlier
/// config or an interrupted run survives next to the new ones; only a folder aquamvs marked as
/// its own (see [`crate::layout::FrameLayout::clear`]). The marker goes first: if this is
/// interrupted, what is left is recognisably incomplete.
pub fn clear_frame(dir: &Path) -> Result<(), PipelineError> {
    crate::layout::FrameLayout::from_dir(dir).clear().map_err(|e| match e {
        crate::layout::LayoutError::Io { path, source } => PipelineError::Frame(format!(
            "cannot clear old outputs in {}: {}: {source}",
            dir.display(),
            path.display()
        )),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            aquamvs_version: "1.0.0".into(),
            config: "c".into(),
            calibration: "k".into(),
            masks: "m".into(),
            inputs: "i".into(),
        }
    }

    fn record(dir: &Path) -> FrameRecord {
        std::fs::create_dir_all(dir.join("point_cloud")).unwrap();
        std::fs::write(dir.join("point_cloud/fused.ply"), b"ply data").unwrap();
        let report = FrameReport {
            index: 4,
            outputs: vec!["point_cloud/fused.ply".into()],
            ..FrameReport::default()
        };
        FrameRecord::new(dir, fingerprint(), 1.5, report).unwrap()
    }

    #[test]
    fn content_hash_is_crc32_of_the_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        // The CRC-32 check value: "123456789" → cbf43926.
        std::fs::write(&path, b"123456789").unwrap();
        assert_eq!(content_hash(&path).unwrap(), "crc32:cbf43926");
        // Across the 1 MiB read blocks: one byte changed far in is found.
        let mut big = vec![7u8; (1 << 20) * 2 + 17];
        std::fs::write(&path, &big).unwrap();
        let a = content_hash(&path).unwrap();
        big[(1 << 20) + 5] = 8;
        std::fs::write(&path, &big).unwrap();
        assert_ne!(a, content_hash(&path).unwrap());
        assert!(content_hash(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn hash_fields_are_separated() {
        let mut a = Fnv::new();
        a.field(b"ab").field(b"c");
        let mut b = Fnv::new();
        b.field(b"a").field(b"bc");
        assert_ne!(a.hex(), b.hex());
        // Golden value: FNV-1a of the empty input is the offset basis.
        assert_eq!(Fnv::new().hex(), "cbf29ce484222325");
    }

    #[test]
    fn differences_name_the_part() {
        let a = fingerprint();
        assert_eq!(a.difference(&a), None);
        let cases = [
            (Fingerprint { config: "x".into(), ..a.clone() }, "outputs from a different config"),
            (Fingerprint { calibration: "x".into(), ..a.clone() }, "different calibration"),
            (Fingerprint { masks: "x".into(), ..a.clone() }, "different masks"),
            (Fingerprint { inputs: "x".into(), ..a.clone() }, "input files changed"),
            (Fingerprint { aquamvs_version: "2.0.0".into(), ..a.clone() }, "aquamvs 1.0.0"),
        ];
        for (b, needle) in cases {
            assert!(a.difference(&b).unwrap().contains(needle), "{needle}");
            assert_ne!(a.combined(), b.combined());
        }
    }

    #[test]
    fn config_hash_ignores_frame_selection_and_threads_only() {
        let base = Config::default();
        let mut other = base.clone();
        other.preprocessing.frame_start = 7;
        other.preprocessing.frame_step = 3;
        other.runtime.threads = Some(2);
        other.runtime.quiet = true;
        other.output_dir = "elsewhere".into();
        assert_eq!(config_hash(&base), config_hash(&other));
        other.reconstruction.num_depths += 1;
        assert_ne!(config_hash(&base), config_hash(&other));
        let mut keep = base.clone();
        keep.runtime.keep_intermediates = !keep.runtime.keep_intermediates;
        assert_ne!(config_hash(&base), config_hash(&keep));
    }

    #[test]
    fn check_frame_states() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("frame_000004");
        assert!(matches!(check_frame(&dir, &fingerprint()), FrameState::New));
        let rec = record(&dir);
        // Outputs without the marker: an interrupted frame.
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => assert!(why.starts_with("incomplete outputs"), "{why}"),
            other => panic!("{other:?}"),
        }
        rec.write(&dir).unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::UpToDate(r) => {
                assert_eq!(r.index, 4);
                assert_eq!(
                    r.outputs,
                    [OutputFile {
                        path: "point_cloud/fused.ply".into(),
                        bytes: 8,
                        hash: Some(content_hash(&dir.join("point_cloud/fused.ply")).unwrap()),
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let changed = Fingerprint { config: "new".into(), ..fingerprint() };
        match check_frame(&dir, &changed) {
            FrameState::Stale(why) => assert_eq!(why, "outputs from a different config"),
            other => panic!("{other:?}"),
        }
        // Same size, other bytes: the content hash tells.
        std::fs::write(dir.join("point_cloud/fused.ply"), b"ply\0\0\0\0\0").unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => {
                assert_eq!(
                    why,
                    "damaged outputs (point_cloud/fused.ply changed since it was written)"
                )
            }
            other => panic!("{other:?}"),
        }
        // Restored bytes are trusted again.
        std::fs::write(dir.join("point_cloud/fused.ply"), b"ply data").unwrap();
        assert!(matches!(check_frame(&dir, &fingerprint()), FrameState::UpToDate(_)));
        // A record without hashes (an older aquamvs) and one of a degraded frame are stale.
        let mut old = rec.clone();
        old.outputs[0].hash = None;
        old.write(&dir).unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => assert!(why.contains("no content hash"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut degraded = rec.clone();
        degraded.report.skipped_cameras = vec!["cam1".into()];
        degraded.write(&dir).unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => {
                assert!(why.contains("degraded") && why.contains("cam1"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        rec.write(&dir).unwrap();
        // A truncated output and a missing one.
        std::fs::write(dir.join("point_cloud/fused.ply"), b"ply").unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => assert!(why.contains("fused.ply is 3 bytes, 8"), "{why}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(dir.join("point_cloud/fused.ply")).unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => assert!(why.contains("fused.ply is missing"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A truncated marker.
        std::fs::write(dir.join(FRAME_MARKER), b"{\"index\": 4, \"finger").unwrap();
        match check_frame(&dir, &fingerprint()) {
            FrameState::Stale(why) => assert!(why.contains("frame.json unreadable"), "{why}"),
            other => panic!("{other:?}"),
        }
        clear_frame(&dir).unwrap();
        assert!(!dir.exists());
        clear_frame(&dir).unwrap();
    }
}
