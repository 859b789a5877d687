//! The `aquamvs` binary: parses the command line and hands over to [`aquamvs::run_cli`].
//!
//! Everything else (logging set-up, error rendering, exit codes) lives in the `cli` module so
//! that it can be tested.

/// glibc's allocator lets resident memory grow over a long run of frames (fragmentation of
/// the frame-sized buffers each frame allocates and frees); mimalloc keeps it flat. The
/// library leaves the choice of allocator to whoever embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aquamvs::run_cli()
}
