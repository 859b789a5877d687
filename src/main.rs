//! The `aquamvs` binary: parses the command line and hands over to [`aquamvs::run_cli`].
//!
//! Everything else (logging set-up, error rendering, exit codes) lives in the `cli` module so
//! that it can be tested.

fn main() -> std::process::ExitCode {
    aquamvs::run_cli()
}
