//! Writes the fuzz targets' seeds into a directory: the generated ones
//! (`ward_snapshot::fuzzing::seeds`) and any snapshot files given after it (as a server
//! saves them), each behind a piece-size byte.
//!
//! `cargo run -p ward-snapshot --features fuzzing --example fuzz_seeds -- DIR [SNAPSHOT...]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(dir) = args.next() else {
        eprintln!("usage: fuzz_seeds DIR [SNAPSHOT...]");
        return ExitCode::from(2);
    };
    let mut seeds = ward_snapshot::fuzzing::seeds();
    for file in args {
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        };
        let name = file
            .file_name()
            .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
        // Pushed in pieces of 256 bytes, the largest the piece-size byte picks.
        let mut seed = vec![255];
        seed.extend_from_slice(&bytes);
        seeds.push((format!("real-{name}"), seed));
    }
    if let Err(e) = write_all(&dir, &seeds) {
        eprintln!("{}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    println!("{} seeds written to {}", seeds.len(), dir.display());
    ExitCode::SUCCESS
}

fn write_all(dir: &Path, seeds: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}
