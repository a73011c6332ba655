//! The Poisson bootstrap: every resample's weighted column sums in one sequential pass.
//!
//! The classical bootstrap draws `n` decisions with replacement per resample: `n`
//! random reads of the terms each, 10⁹ of them for 1 000 resamples of 1 M decisions,
//! bound by memory latency. The Poisson bootstrap (Hanley and MacGibbon 2006; Chamandy
//! et al. 2012) gives decision `i` an independent Poisson(1) count `kᵦᵢ` in resample `b`
//! instead, which is what the multinomial counts tend to as `n` grows (same mean 1,
//! variance 1 and third central moment 1 per decision, so the bootstrap keeps the
//! skewness of a heavy-weight sum that BCa corrects for). A resample is then a weighted
//! sum over the terms in their order: a pass the compiler vectorises, over blocks of
//! decisions small enough to stay in cache while every resample of a thread passes
//! over them. Estimates are ratios of those sums (a mean divides by `Σᵢ kᵦᵢ`, the
//! resample's size).
//!
//! The counts come from counter-based randomness: decision `i`'s count in resample `b`
//! is a 16-bit lane of `mix64(key_b + ⌊i/4⌋·γ)` (SplitMix64 at position `⌊i/4⌋` of
//! resample `b`'s stream) through the Poisson(1) inverse CDF at 16-bit resolution. So a
//! count depends on the seed, the resample and the decision only: not on the block
//! size, the number of threads or which thread ran it.

use nearline_billboard::policy::rng::mix64;

/// `⌈65536·P(K < j)⌋` for `j = 1..=8`, `K ~ Poisson(1)`: a 16-bit uniform `u` gives
/// the count `#{j : u ≥ T_j}` (at most 8; `P(K > 8)` is 1.1e-6, below the resolution).
const THRESHOLDS: [u16; 8] = [24109, 48219, 60273, 64292, 65296, 65497, 65531, 65535];

/// SplitMix64's increment (the golden ratio).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Decisions per block: their counts (4 KiB) and a few columns (4 KiB each) stay in
/// the first-level cache while a thread's resamples pass over them.
const BLOCK: usize = 512;

/// For each of `resamples` resamples `b`: `[Σᵢ kᵦᵢ, Σᵢ kᵦᵢ·c₀ᵢ, Σᵢ kᵦᵢ·c₁ᵢ, …]` over the
/// columns (all of one length), as one row of `columns.len() + 1` values. Resamples
/// are shared among up to `threads` threads; the result does not depend on how many.
pub fn poisson_sums(columns: &[&[f64]], resamples: usize, seed: u64, threads: usize) -> Vec<Vec<f64>> {
    let n = columns.first().map_or(0, |c| c.len());
    assert!(columns.iter().all(|c| c.len() == n), "columns of one length");
    let width = columns.len() + 1;
    let mut out = vec![vec![0.0; width]; resamples];
    if resamples == 0 {
        return out;
    }
    let chunk = resamples.div_ceil(threads.clamp(1, resamples));
    std::thread::scope(|scope| {
        for (c, rows) in out.chunks_mut(chunk).enumerate() {
            scope.spawn(move || sums_of(columns, n, c * chunk, rows, seed));
        }
    });
    out
}

/// Fills `rows` (resamples `first..first + rows.len()`), block by block.
fn sums_of(columns: &[&[f64]], n: usize, first: usize, rows: &mut [Vec<f64>], seed: u64) {
    let keys: Vec<u64> = (first..first + rows.len()).map(|b| stream_key(seed, b)).collect();
    let mut counts = [0.0f64; BLOCK];
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let counts = &mut counts[..end - start];
        for (row, &key) in rows.iter_mut().zip(&keys) {
            row[0] += fill_counts(key, start, counts);
            for (sum, column) in row[1..].iter_mut().zip(columns) {
                *sum += dot(counts, &column[start..end]);
            }
        }
        start = end;
    }
}

/// The key of resample `b`'s stream.
fn stream_key(seed: u64, b: usize) -> u64 {
    mix64(seed ^ mix64((b as u64).wrapping_add(1).wrapping_mul(GAMMA)))
}

/// Writes the counts of decisions `start..start + out.len()` (`start` a multiple of 4)
/// and returns their sum.
#[inline]
fn fill_counts(key: u64, start: usize, out: &mut [f64]) -> f64 {
    debug_assert_eq!(start % 4, 0);
    let mut lanes = [0u16; BLOCK];
    let words = out.len().div_ceil(4);
    let base = (start / 4) as u64;
    for (w, four) in lanes[..words * 4].chunks_exact_mut(4).enumerate() {
        let word = mix64(key.wrapping_add((base + w as u64).wrapping_mul(GAMMA)));
        for (l, lane) in four.iter_mut().enumerate() {
            *lane = (word >> (16 * l)) as u16;
        }
    }
    let mut total = 0u32;
    for (slot, &u) in out.iter_mut().zip(&lanes) {
        let k = THRESHOLDS.iter().map(|&t| u16::from(u >= t)).sum::<u16>();
        total += u32::from(k);
        *slot = f64::from(k);
    }
    f64::from(total)
}

/// `Σ aᵢbᵢ` with eight running sums (a fixed order, so the same everywhere), which the
/// compiler keeps in vector registers.
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_poisson_cdf() {
        let mut cdf = 0.0;
        let mut factorial = 1.0;
        for (j, &t) in THRESHOLDS.iter().enumerate() {
            if j > 0 {
                factorial *= j as f64;
            }
            cdf += (-1.0f64).exp() / factorial;
            assert_eq!(f64::from(t), (65536.0 * cdf).round(), "T_{}", j + 1);
        }
    }

    #[test]
    fn counts_have_the_moments_of_poisson_one() {
        // Exactly, over every 16-bit value: mean, variance and third central moment 1.
        let (mut m1, mut m2, mut m3) = (0.0, 0.0, 0.0);
        for u in 0..=u16::MAX {
            let k = f64::from(THRESHOLDS.iter().map(|&t| u16::from(u >= t)).sum::<u16>());
            m1 += k;
            m2 += k * k;
            m3 += k * k * k;
        }
        let (m1, m2, m3) = (m1 / 65536.0, m2 / 65536.0, m3 / 65536.0);
        let var = m2 - m1 * m1;
        let third = m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1;
        assert!(
            (m1 - 1.0).abs() < 1e-4 && (var - 1.0).abs() < 1e-3 && (third - 1.0).abs() < 1e-2,
            "{m1} {var} {third}"
        );
    }

    #[test]
    fn sums_do_not_depend_on_threads_and_match_a_plain_loop() {
        let n = 1_237;
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let ones = vec![1.0; n];
        let a = poisson_sums(&[&x, &ones], 37, 5, 1);
        assert_eq!(a, poisson_sums(&[&x, &ones], 37, 5, 4));
        for (b, row) in a.iter().enumerate() {
            // The count column equals the sum of the counts times one.
            assert_eq!(row[0], row[2]);
            let mut counts = vec![0.0; n];
            for (block, out) in counts.chunks_mut(BLOCK).enumerate() {
                fill_counts(stream_key(5, b), block * BLOCK, out);
            }
            let plain: f64 = counts.iter().zip(&x).map(|(k, x)| k * x).sum();
            assert!((plain - row[1]).abs() < 1e-9, "{plain} {}", row[1]);
        }
        // Mean resample size near n, with Poisson spread.
        let mean = a.iter().map(|r| r[0]).sum::<f64>() / 37.0;
        assert!((mean - n as f64).abs() < 4.0 * (n as f64 / 37.0).sqrt(), "{mean}");
    }
}
