//! Integration tests: one binary for all of them (faster to link). Each module covers one area
//! through the public API or the `aquamvs` binary.

mod bench;
mod change;
mod cli;
mod docs;
mod geometry;
mod hostile;
mod layers;
mod learned;
mod migrate;
mod notebooks;
mod real_data;
mod reconstruct;
mod resume;
mod sparse;
mod surface;
mod synth;
mod tidy;
mod viz;
