//! Request ids: canonical lowercase UUIDs that also carry the hour of day the policy
//! used.
//!
//! Outcomes come back from attribution with the impression's country, device and time,
//! but not the client's local hour, and the decision's daypart must be learned where it
//! was decided. So billboard mints UUIDv8s (RFC 9562's layout for custom data): random
//! except for the version, the variant, and the last byte, which holds a 3-bit marker
//! and the hour. Anything else still works as a request id; the learner then falls back
//! to the UTC hour of the impression.

use uuid::Uuid;

/// Marker in the top 3 bits of the last byte.
const MARKER: u8 = 0b101 << 5;

/// A request id for a decision at local `hour_of_day` (0..=23) from 128 random bits.
pub fn mint(random: u128, hour_of_day: u32) -> String {
    let mut bytes = random.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes[15] = MARKER | (hour_of_day.min(23) as u8);
    Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// The hour of day carried by a request id minted by [`mint`].
pub fn hour_of_day(request_id: &str) -> Option<u32> {
    let uuid = Uuid::try_parse(request_id).ok()?;
    let bytes = uuid.as_bytes();
    let hour = u32::from(bytes[15] & 0x1f);
    (bytes[6] >> 4 == 8 && bytes[15] & 0xe0 == MARKER && hour < 24).then_some(hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_hour_in_a_canonical_uuid() {
        for hour in 0..24 {
            let id = mint(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210 ^ u128::from(hour), hour);
            assert_eq!(id.len(), 36);
            assert_eq!(id, id.to_lowercase());
            assert_eq!(Uuid::try_parse(&id).unwrap().get_version_num(), 8);
            assert_eq!(hour_of_day(&id), Some(hour));
        }
        assert_eq!(hour_of_day(&Uuid::new_v4().to_string()), None);
        assert_eq!(hour_of_day("not-a-uuid"), None);
    }
}
