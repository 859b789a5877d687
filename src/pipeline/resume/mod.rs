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
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::atomic::write_bytes_atomic;

use super::PipelineError;
use super::report::{FrameReport, unix_now};

mod fingerprint;

pub use fingerprint::{Fingerprint, RunFingerprint, calibration_hash, config_hash};

/// File name of the completion marker inside a frame folder.
pub const FRAME_MARKER: &str = crate::layout::FRAME_RECORD;

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
        let meta = std::fs::metadata(&full)
            .map_err(|e| PipelineError::OutputMissing { path: full.clone(), source: e })?;
        let hash = content_hash(&full)
            .map_err(|e| PipelineError::OutputUnreadable { path: full.clone(), source: e })?;
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
        let json = serde_json::to_string_pretty(self)?;
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
        crate::layout::LayoutError::Io { path, source } => {
            PipelineError::ClearFrame { dir: dir.to_owned(), path, source }
        }
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
