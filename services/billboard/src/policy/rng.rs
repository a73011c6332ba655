//! Seeded randomness for the policies: a small fast generator, stable hashing for the
//! draws that must not depend on per-member state, and Beta sampling for Thompson.
//!
//! Written here rather than taken from a crate so that a seed gives the same decisions
//! on every platform and every dependency upgrade: the simulator's numbers and the
//! sticky artwork draws are reproducible by construction.

/// SplitMix64's finalizer: a bijective mix of 64 bits with full avalanche.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of byte strings (FNV-1a per part, then mixed), for seeds and
/// traffic splits that must be the same in every process and on every restart.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// A `Hasher` for integer keys (title ids): [`mix64`] of the value, instead of the
/// default SipHash, which costs more than the rest of a candidate's lookup. Keys are
/// catalog ids, not attacker-chosen, so flooding resistance is not needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_i64(&mut self, v: i64) {
        self.0 ^= v as u64;
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// A map keyed by title id, hashed by [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<i64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A uniform number in [0, 1) from 64 random bits (the top 53).
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256++: fast, small state, good statistical quality; not cryptographic.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from 64 bits (expanded with SplitMix64).
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(x)
        };
        Self { s: [next(), next(), next(), next()] }
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform in 0..n (n > 0), by Lemire's multiply-shift (bias below 2^-32 for the
    /// small n used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal, by the polar Box–Muller method.
    pub fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// Gamma(shape, 1), by Marsaglia and Tsang; shapes below 1 by the boost
    /// `Gamma(a) = Gamma(a + 1) * U^(1/a)`.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform().max(f64::MIN_POSITIVE);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            // The cheap squeeze accepts ~98 % of draws without a logarithm.
            if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) with a, b > 0.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y > 0.0 { x / (x + y) } else { 0.5 }
    }
}

/// Many draws from a few fixed Beta laws (Thompson's Monte Carlo estimate): the same
/// laws as [`Rng::beta`], drawn about twice as fast, because each shape's constants are
/// computed once rather than per draw and the polar method's two normals are both used.
#[derive(Debug)]
pub struct BetaDraws<'a> {
    rng: &'a mut Rng,
    spare: Option<f64>,
}

/// The constants of one Beta(a, b)'s two gamma draws.
#[derive(Debug, Clone, Copy)]
pub struct BetaShape {
    a: GammaShape,
    b: GammaShape,
}

impl BetaShape {
    /// Beta(a, b) with a, b > 0.
    pub fn new(a: f64, b: f64) -> Self {
        Self { a: GammaShape::new(a), b: GammaShape::new(b) }
    }
}

/// Marsaglia and Tsang's constants for Gamma(shape, 1), with the boost of a shape below 1.
#[derive(Debug, Clone, Copy)]
struct GammaShape {
    d: f64,
    c: f64,
    /// `1 / shape` when the shape is below 1: `Gamma(a) = Gamma(a + 1) * U^(1/a)`.
    boost: Option<f64>,
}

impl GammaShape {
    fn new(shape: f64) -> Self {
        let (boosted, boost) = if shape < 1.0 { (shape + 1.0, Some(1.0 / shape)) } else { (shape, None) };
        let d = boosted - 1.0 / 3.0;
        Self { d, c: 1.0 / (9.0 * d).sqrt(), boost }
    }
}

impl<'a> BetaDraws<'a> {
    /// Draws with `rng`'s randomness.
    pub fn new(rng: &'a mut Rng) -> Self {
        Self { rng, spare: None }
    }

    /// One draw from `shape`'s Beta law.
    pub fn draw(&mut self, shape: &BetaShape) -> f64 {
        let x = self.gamma(&shape.a);
        let y = self.gamma(&shape.b);
        if x + y > 0.0 { x / (x + y) } else { 0.5 }
    }

    /// Standard normal, by the polar method, keeping the pair's second value.
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.rng.uniform() - 1.0;
            let v = 2.0 * self.rng.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let scale = (-2.0 * s.ln() / s).sqrt();
                self.spare = Some(v * scale);
                return u * scale;
            }
        }
    }

    fn gamma(&mut self, g: &GammaShape) -> f64 {
        let (d, c) = (g.d, g.c);
        let x = loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.rng.uniform();
            if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                break d * v;
            }
        };
        match g.boost {
            Some(inverse) => x * self.rng.uniform().max(f64::MIN_POSITIVE).powf(inverse),
            None => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"m1", b"42"]), stable_hash(&[b"m1", b"42"]));
    }

    #[test]
    fn beta_mean_and_variance_match() {
        let mut rng = Rng::new(1);
        for (a, b) in [(0.5, 0.5), (2.0, 8.0), (30.0, 970.0)] {
            let n = 200_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.beta(a, b)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let true_mean = a / (a + b);
            let true_var = a * b / ((a + b).powi(2) * (a + b + 1.0));
            assert!(
                (mean - true_mean).abs() < 5.0 * (true_var / n as f64).sqrt(),
                "Beta({a},{b}) mean {mean}"
            );
            assert!((var / true_var - 1.0).abs() < 0.03, "Beta({a},{b}) variance {var} vs {true_var}");
        }
    }

    #[test]
    fn batched_beta_draws_have_the_same_law() {
        let mut rng = Rng::new(2);
        for (a, b) in [(0.5, 0.5), (0.6, 19.4), (2.0, 8.0), (30.0, 970.0)] {
            let shape = BetaShape::new(a, b);
            let mut draws = BetaDraws::new(&mut rng);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| draws.draw(&shape)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let true_mean = a / (a + b);
            let true_var = a * b / ((a + b).powi(2) * (a + b + 1.0));
            assert!(
                (mean - true_mean).abs() < 5.0 * (true_var / n as f64).sqrt(),
                "Beta({a},{b}) mean {mean}"
            );
            assert!((var / true_var - 1.0).abs() < 0.03, "Beta({a},{b}) variance {var} vs {true_var}");
            // The share below the mean checks the shape beyond two moments.
            let below = xs.iter().filter(|x| **x < true_mean).count() as f64 / n as f64;
            let mut reference = Rng::new(9);
            let expected = (0..n).filter(|_| reference.beta(a, b) < true_mean).count() as f64 / n as f64;
            assert!((below - expected).abs() < 0.01, "Beta({a},{b}): {below} vs {expected} below the mean");
        }
    }

    #[test]
    fn below_is_uniform() {
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[rng.below(5)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
    }
}
