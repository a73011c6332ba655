//! Request ids: canonical lowercase UUIDs (version 4), which the attribution join
//! stores as their 16 bytes.
//!
//! The context a decision used travels in the impression's `explore.context`, so the id
//! carries nothing but randomness.

/// A random (version 4) request id from 128 random bits; the decision's draw uses the
/// same bits, so one random source serves both.
pub fn mint(random: u128) -> String {
    uuid::Builder::from_random_bytes(random.to_be_bytes()).into_uuid().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn is_a_canonical_version_4_uuid() {
        let id = mint(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_lowercase());
        let parsed = Uuid::try_parse(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.hyphenated().to_string(), id);
    }
}
