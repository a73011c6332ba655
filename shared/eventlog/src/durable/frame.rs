//! How one record is laid out in a segment file.
//!
//! ```text
//! u32 body length | u32 CRC-32 of the body | body:
//!     i64 offset | i64 timestamp ms | u32 key length | key | payload
//! ```
//!
//! All integers little-endian. The offset is stored although it follows from the
//! record's position, so recovery can check that a segment holds the run of offsets
//! its name promises; the CRC tells a torn or corrupted write from a whole one.

use bytes::Bytes;

use crate::memory::partition::Stored;

/// Bytes of the length and CRC in front of every body.
pub(crate) const HEADER: usize = 8;
/// Bytes of the fixed part of a body (offset, timestamp, key length).
const FIXED: usize = 20;

/// Appends the frame of `record` at `offset` to `out`; returns the frame's length.
pub(crate) fn encode(out: &mut Vec<u8>, offset: i64, record: &Stored) -> usize {
    let body_len = FIXED + record.key.len() + record.payload.len();
    let start = out.len();
    out.reserve(HEADER + body_len);
    out.extend_from_slice(&u32::try_from(body_len).expect("records are far below 4 GiB").to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&u32::try_from(record.key.len()).expect("keys are far below 4 GiB").to_le_bytes());
    out.extend_from_slice(&record.key);
    out.extend_from_slice(&record.payload);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// A frame decoded from the front of a buffer.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) offset: i64,
    pub(crate) record: Stored,
    /// Bytes of the whole frame.
    pub(crate) len: usize,
}

/// Why the front of a buffer is not a whole, valid frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// The buffer ends inside the frame: more bytes may complete it.
    Incomplete,
    /// The frame is whole but its CRC or layout is wrong.
    Corrupt,
}

/// Decodes the frame at the front of `buf`; `base` is the buffer as shared bytes, so
/// key and payload are views into it rather than copies.
pub(crate) fn decode(buf: &Bytes) -> Result<Decoded, Invalid> {
    let header = buf.get(..HEADER).ok_or(Invalid::Incomplete)?;
    let body_len = usize::try_from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")))
        .expect("u32 fits in usize");
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if body_len < FIXED {
        return Err(Invalid::Corrupt);
    }
    let body = buf.get(HEADER..HEADER + body_len).ok_or(Invalid::Incomplete)?;
    if crc32fast::hash(body) != crc {
        return Err(Invalid::Corrupt);
    }
    let offset = i64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
    let timestamp_ms = i64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let key_len =
        usize::try_from(u32::from_le_bytes(body[16..20].try_into().expect("4 bytes"))).expect("fits");
    if FIXED + key_len > body_len {
        return Err(Invalid::Corrupt);
    }
    let key_at = HEADER + FIXED;
    let key = buf.slice(key_at..key_at + key_len);
    let payload = buf.slice(key_at + key_len..HEADER + body_len);
    Ok(Decoded { offset, record: Stored { key, payload, timestamp_ms }, len: HEADER + body_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &str, payload: &str) -> Stored {
        Stored {
            key: Bytes::from(key.to_owned()),
            payload: Bytes::from(payload.to_owned()),
            timestamp_ms: 42,
        }
    }

    #[test]
    fn a_frame_round_trips_and_any_damage_is_detected() {
        let mut buf = Vec::new();
        let len = encode(&mut buf, 7, &stored("k", "payload"));
        assert_eq!(len, buf.len());
        let whole = Bytes::from(buf.clone());
        let decoded = decode(&whole).expect("a whole frame decodes");
        assert_eq!((decoded.offset, decoded.len), (7, len));
        assert_eq!((&decoded.record.key[..], &decoded.record.payload[..]), (&b"k"[..], &b"payload"[..]));

        for cut in 0..len {
            assert_eq!(decode(&Bytes::from(buf[..cut].to_vec())).unwrap_err(), Invalid::Incomplete);
        }
        for at in HEADER..len {
            let mut flipped = buf.clone();
            flipped[at] ^= 0x40;
            assert_eq!(decode(&Bytes::from(flipped)).unwrap_err(), Invalid::Corrupt, "byte {at}");
        }
    }
}
