//! Synthetic refractive scenes with exact ground truth: a rig of cameras in air, a flat water
//! surface, an analytic heightfield under it, and a procedural texture painted on it.
//!
//! Everything is seeded and deterministic, so tests, benchmarks and the demo see the same
//! scene on every machine.

pub mod degrade;
pub mod render;
pub mod rig;
pub mod rng;
pub mod scene;
pub mod surface;
pub mod texture;
