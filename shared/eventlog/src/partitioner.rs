//! The key-to-partition mapping shared by every topic and both log implementations.
//!
//! It is Kafka's default (Java) partitioner: `murmur2(key) & 0x7fffffff % partitions`,
//! which librdkafka calls `murmur2_random`. Using one function everywhere is what makes
//! topics with equal partition counts co-partitioned: a request id's impression and
//! play land on the same partition number, so one attribution worker sees both.

/// Partition of `key` in a topic with `partitions` partitions (Kafka's murmur2 partitioner).
///
/// # Panics
/// When `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition, got {partitions}");
    // The mask keeps the value non-negative, so the conversions are lossless.
    let positive = murmur2(key) & 0x7fff_ffff;
    (positive % partitions as u32) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java hashes the length as an int; keys longer than 4 GiB do not occur.
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::{murmur2, partition_for_key};

    /// Vectors from librdkafka's `rdmurmur2.c` unit test, which checks them against Java.
    #[test]
    fn matches_java_murmur2() {
        assert_eq!(murmur2(b"kafka"), 0xd067_cf64);
        assert_eq!(murmur2(b"giberish123456789"), 0x8f55_2b0c);
        assert_eq!(murmur2(b""), 0x106e_08d9);
    }

    #[test]
    fn partitions_are_in_range() {
        for key in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"kafka"] {
            for n in 1..20 {
                let p = partition_for_key(key, n);
                assert!((0..n).contains(&p), "{key:?} -> {p} of {n}");
            }
        }
    }
}
