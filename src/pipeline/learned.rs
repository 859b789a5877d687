//! The learned matchers in the pipeline: loaded once per run when `matcher_type` is
//! `lightglue` or `roma` (the ONNX Runtime library is never touched otherwise). RoMa's dense
//! stage is [`super::roma`].

use crate::config::{Config, MatcherType};
use crate::features::onnx::{LightGlueMatcher, RomaMatcher};

use super::PipelineError;

/// A loaded learned matcher.
#[derive(Debug)]
pub enum Learned {
    /// SuperPoint + LightGlue.
    LightGlue(LightGlueMatcher),
    /// RoMa v2.
    Roma(RomaMatcher),
}

/// Loads the learned matcher `config.matcher_type` names (`None` for the classical matcher).
pub fn load(config: &Config) -> Result<Option<Learned>, PipelineError> {
    let setup = |source: crate::features::onnx::OnnxError| PipelineError::Learned {
        matcher: config.matcher_type,
        source: Box::new(source),
    };
    Ok(match config.matcher_type {
        MatcherType::Classical => None,
        MatcherType::Lightglue => {
            Some(Learned::LightGlue(LightGlueMatcher::from_config(config).map_err(setup)?))
        }
        MatcherType::Roma => Some(Learned::Roma(RomaMatcher::from_config(config).map_err(setup)?)),
    })
}
