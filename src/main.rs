//! The `aquamvs` binary: parses the command line and hands over to [`aquamvs::cli`].
//!
//! Everything else (logging set-up, error rendering, exit codes) lives in the `cli` module so
//! that it can be tested.

fn main() -> std::process::ExitCode {
    aquamvs::cli::main()
}
