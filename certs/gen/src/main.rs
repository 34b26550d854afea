//! `cargo run -p ferromq-certs [-- DIR]`: regenerates the development certificates (default
//! directory `certs/` at the workspace root). For development and tests only.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    match ferromq_certs::generate(&dir) {
        Ok(()) => {
            let shown = dir.canonicalize().unwrap_or(dir);
            println!("wrote development certificates to {}", shown.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferromq-certs: {e}");
            ExitCode::FAILURE
        }
    }
}
