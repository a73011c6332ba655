//! The sparse index of a closed segment, saved beside it (`<base>.idx`) so reopening a
//! log reads only the last segment in full instead of every retained byte.
//!
//! The file is only a cache: it is written without `fsync` after the segment closed,
//! checked on load (magic, CRC-32, and the segment's size it describes), and when it
//! is missing or does not match, the segment is scanned as if there were none. The
//! records of a segment opened through its index are checked (CRC) when read.
//!
//! ```text
//! "NLIDX1\0\0" | u64 segment size | i64 end offset | u32 entries |
//!     entries x (i64 offset | u64 position | i64 max timestamp) | u32 CRC-32 of all before
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::segments::IndexEntry;

const MAGIC: &[u8; 8] = b"NLIDX1\0\0";
const ENTRY: usize = 24;

/// The index file of the segment at `segment`.
pub(crate) fn path_for(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// What an index file says about its segment.
#[derive(Debug)]
pub(crate) struct Saved {
    pub(crate) size: u64,
    pub(crate) end: i64,
    pub(crate) entries: Vec<IndexEntry>,
}

/// Writes the index of a closed segment (atomically, by rename; not synced).
pub(crate) fn save(segment: &Path, saved: &Saved) -> io::Result<()> {
    let mut out = Vec::with_capacity(32 + saved.entries.len() * ENTRY);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&saved.size.to_le_bytes());
    out.extend_from_slice(&saved.end.to_le_bytes());
    let count = u32::try_from(saved.entries.len()).map_err(io::Error::other)?;
    out.extend_from_slice(&count.to_le_bytes());
    for entry in &saved.entries {
        out.extend_from_slice(&entry.offset.to_le_bytes());
        out.extend_from_slice(&entry.pos.to_le_bytes());
        out.extend_from_slice(&entry.max_ts.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let path = path_for(segment);
    let temp = path.with_extension("idx.tmp");
    fs::write(&temp, out)?;
    fs::rename(temp, path)
}

/// The saved index of `segment`, if there is one that describes `size` bytes of it.
pub(crate) fn load(segment: &Path, size: u64) -> Option<Saved> {
    let bytes = fs::read(path_for(segment)).ok()?;
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) || !body.starts_with(MAGIC) {
        return None;
    }
    let u64_at = |at: usize| Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
    let i64_at = |at: usize| Some(i64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?));
    let saved_size = u64_at(8)?;
    let end = i64_at(16)?;
    let count = usize::try_from(u32::from_le_bytes(body.get(24..28)?.try_into().ok()?)).ok()?;
    if saved_size != size || body.len() != 28 + count * ENTRY {
        return None;
    }
    let entries = (0..count)
        .map(|i| {
            let at = 28 + i * ENTRY;
            Some(IndexEntry { offset: i64_at(at)?, pos: u64_at(at + 8)?, max_ts: i64_at(at + 16)? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Saved { size, end, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_index_loads_only_for_the_size_it_describes_and_undamaged() {
        let dir = std::env::temp_dir().join(format!("nearline-idx-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let segment = dir.join("00000000000000000010.seg");
        let entries = vec![
            IndexEntry { offset: 10, pos: 0, max_ts: 5 },
            IndexEntry { offset: 900, pos: 65_600, max_ts: 7 },
        ];
        save(&segment, &Saved { size: 70_000, end: 1000, entries: entries.clone() }).unwrap();

        let loaded = load(&segment, 70_000).expect("loads for its size");
        assert_eq!((loaded.size, loaded.end, loaded.entries), (70_000, 1000, entries));
        assert!(load(&segment, 70_001).is_none(), "a segment of another size is scanned instead");
        let mut bytes = fs::read(path_for(&segment)).unwrap();
        bytes[30] ^= 1;
        fs::write(path_for(&segment), bytes).unwrap();
        assert!(load(&segment, 70_000).is_none(), "a damaged index is ignored");
        fs::remove_dir_all(dir).unwrap();
    }
}
