//! Compact request ids.
//!
//! Request ids are the largest part of an event. A canonical UUID (lowercase,
//! hyphenated, as `uuid` and the billboard service write them) is stored as its 16
//! bytes and printed back byte for byte; anything else is kept as text. The form is a
//! function of the text, so equality of [`RequestId`]s is equality of the strings:
//! nothing is hashed, so no collision can ever merge two requests.

use std::fmt;
use std::sync::Arc;

/// A request id, stored compactly; `Display` gives back the original text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// A canonical lowercase hyphenated UUID, as its 128 bits.
    Uuid(u128),
    /// Any other text.
    Text(Arc<str>),
}

impl RequestId {
    /// Parses `text` into its compact form; never fails.
    pub fn new(text: &str) -> Self {
        match parse_uuid(text) {
            Some(bits) => RequestId::Uuid(bits),
            None => RequestId::Text(Arc::from(text)),
        }
    }
}

impl From<&str> for RequestId {
    fn from(text: &str) -> Self {
        RequestId::new(text)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Uuid(bits) => {
                let mut buf = [0u8; 36];
                format_uuid(*bits, &mut buf);
                // format_uuid writes only ASCII hex digits and hyphens.
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
            RequestId::Text(text) => f.write_str(text),
        }
    }
}

const HYPHENS: [usize; 4] = [8, 13, 18, 23];
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Hex digit values (lowercase only); 0xff for anything else.
const UNHEX: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Byte positions of the 32 hex digits of a hyphenated UUID.
const DIGITS: [usize; 32] = {
    let mut positions = [0usize; 32];
    let (mut pos, mut n) = (0, 0);
    while pos < 36 {
        if pos != 8 && pos != 13 && pos != 18 && pos != 23 {
            positions[n] = pos;
            n += 1;
        }
        pos += 1;
    }
    positions
};

/// The 128 bits of a canonical lowercase hyphenated UUID, or `None` for any other text.
pub(crate) fn parse_uuid(text: &str) -> Option<u128> {
    let bytes: &[u8; 36] = text.as_bytes().try_into().ok()?;
    if HYPHENS.iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let mut bits = 0u128;
    let mut invalid = 0u8;
    for pos in DIGITS {
        let nibble = UNHEX[usize::from(bytes[pos])];
        invalid |= nibble;
        bits = (bits << 4) | u128::from(nibble & 0xf);
    }
    // Valid nibbles are < 16, so any 0xff marks a non-digit.
    (invalid < 16).then_some(bits)
}

fn format_uuid(bits: u128, out: &mut [u8; 36]) {
    let mut nibble = 32;
    for (i, slot) in out.iter_mut().enumerate() {
        if HYPHENS.contains(&i) {
            *slot = b'-';
        } else {
            nibble -= 1;
            *slot = HEX[((bits >> (nibble * 4)) & 0xf) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn canonical_uuid_round_trips_compactly() {
        let text = "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b";
        let id = RequestId::new(text);
        assert!(matches!(id, RequestId::Uuid(_)));
        assert_eq!(id.to_string(), text);
    }

    #[test]
    fn other_text_is_kept_verbatim() {
        for text in
            ["0F8E2A4C-1B3D-4E5F-8A9B-0C1D2E3F4A5B", "req-1", "", "0f8e2a4c-1b3d-4e5f-8a9b_0c1d2e3f4a5b"]
        {
            let id = RequestId::new(text);
            assert!(matches!(id, RequestId::Text(_)), "{text}");
            assert_eq!(id.to_string(), text);
        }
    }
}
