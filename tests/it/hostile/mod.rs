//! The hostile-input suite: broken, absurd and malicious configs, calibrations, images, PLYs
//! and command lines, and runs that would harm a user's files. Every case must end with a
//! non-zero exit and a one-line message naming the file, field or camera, with no panic, no
//! abort, nothing written outside the output folder and no user file changed or removed.
//! `docs/reliability.md` states the guarantees these tests hold the code to.

mod bounds;
mod files;
mod results;
