//! What identifies a frame's outputs: the [`Fingerprint`] of the aquamvs version, the config,
//! the calibration, the masks and the frame's input files, each part hashed separately (FNV-1a
//! over length-prefixed fields) so a mismatch can say which part changed.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::calib::{Rig, rig_to_aquacal_json};
use crate::config::{Config, Preprocessing};
use crate::frames::CameraInput;

use super::super::PipelineError;
use super::super::context::Context;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
