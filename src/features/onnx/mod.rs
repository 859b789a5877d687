//! The learned matchers, run through ONNX Runtime: SuperPoint + LightGlue ([`lightglue`]) and
//! RoMa v2 ([`roma`]). The runtime library is loaded at run time, only when one of them is
//! used ([`runtime`]); docs/learned-matchers.md says how to get it and the models.

pub mod lightglue;
pub(crate) mod resize;
pub mod roma;
pub mod runtime;

pub use lightglue::{LightGlueMatcher, LightGlueOptions};
pub use roma::{RomaMatcher, RomaOptions, RomaView, Warp};
pub use runtime::OnnxError;

#[cfg(test)]
mod tests;
