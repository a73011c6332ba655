//! Reading a bounded input for a batch from files: a directory of `.ndjson` /
//! `.ndjson.gz` files of events in the ingest JSON shape (the contract in
//! `services/ingest/README.md`), validated exactly as ingest validates them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::Range;
use crate::join::{Input, JoinConfig};
use crate::wire;
use crate::{Error, Result};

/// Reads every `.ndjson` / `.ndjson.gz` file of `dir` in name order, keeping the inputs
/// `range` needs; offsets count events across all files. A malformed or invalid line
/// fails the whole read, naming the file and the problem. `progress(files_read, files)`
/// is called as files are read; `default_region` fills events that name none.
pub fn from_directory(
    dir: &Path,
    default_region: &str,
    range: Range,
    config: &JoinConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<Input>> {
    let input_error = |path: &Path, reason: String| Error::Input { path: path.display().to_string(), reason };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| input_error(dir, format!("not a readable directory: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".ndjson") || name.ends_with(".ndjson.gz")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(input_error(dir, "no .ndjson or .ndjson.gz files".into()));
    }
    let total = files.len() as u64;
    progress(0, total);
    let mut inputs = Vec::new();
    let mut offset = 0i64;
    for (read, path) in files.iter().enumerate() {
        let body = read_file(path).map_err(|e| input_error(path, e.to_string()))?;
        let decoded = nearline_ingest::event::decode_ndjson(&body, default_region, usize::MAX)
            .map_err(|e| input_error(path, e.to_string()))?;
        if let Some(violation) = decoded.violations.first() {
            let reason = format!("{violation:?} ({} problem(s) in all)", decoded.violations.len());
            return Err(input_error(path, reason));
        }
        for event in decoded.events {
            if let Some(input) = wire::from_event(event, offset)
                && range.wants(config, input.event.event_time_ms())
            {
                inputs.push(input);
            }
            offset += 1;
        }
        progress(read as u64 + 1, total);
    }
    Ok(inputs)
}

fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut body)?;
    } else {
        std::io::BufReader::new(file).read_to_end(&mut body)?;
    }
    Ok(body)
}
