//! Counter-based random streams.
//!
//! Every random decision is keyed by `(seed, purpose, epoch, call, block)`,
//! never by which thread runs it, so the same seed gives the same draws
//! whatever the thread count. Work is cut into fixed-size blocks and each
//! block gets its own stream.

/// Number of rows (users or positions) that share one random stream.
pub const BLOCK: usize = 256;

#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes a list of words into one 64-bit key.
#[inline]
pub fn mix(words: &[u64]) -> u64 {
    let mut h = 0x6A09_E667_F3BC_C908u64;
    for &w in words {
        h = splitmix64(h ^ splitmix64(w));
    }
    h
}

/// Purposes, so that streams of different jobs never coincide.
pub mod purpose {
    pub const UNIFORM: u64 = 1;
    pub const POPULARITY: u64 = 2;
    pub const FRESH: u64 = 3;
    pub const RETAIN: u64 = 4;
    pub const DRAW: u64 = 5;
    pub const POSITIVES: u64 = 6;
    pub const GUMBEL: u64 = 7;
    pub const SPLIT: u64 = 8;
}

/// Where a sampler is in its sequence of calls; part of every stream key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamKey {
    pub seed: u64,
    pub epoch: u64,
    pub call: u64,
}

impl StreamKey {
    pub fn new(seed: u64, epoch: u64, call: u64) -> Self {
        Self { seed, epoch, call }
    }
    /// The stream for `block` of a job with `purpose`.
    pub fn rng(&self, purpose: u64, block: u64) -> Rng {
        Rng::new(mix(&[self.seed, purpose, self.epoch, self.call, block]))
    }
}

/// wyrand: small, fast, passes BigCrush; enough for sampling.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self {
            state: splitmix64(seed),
        }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xA076_1D64_78BD_642F);
        let t = (self.state as u128).wrapping_mul((self.state ^ 0xE703_7ED1_A0B4_28DB) as u128);
        ((t >> 64) ^ t) as u64
    }

    /// Uniform integer in `[0, n)` (Lemire's method, unbiased). `n` > 0.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        let mut lo = m as u64;
        if lo < n {
            let threshold = n.wrapping_neg() % n;
            while lo < threshold {
                m = (self.next_u64() as u128) * (n as u128);
                lo = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// Uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform float in the open interval `(0, 1)`.
    #[inline]
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard Gumbel variate.
    #[inline]
    pub fn gumbel(&mut self) -> f64 {
        -(-self.open01().ln()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(7);
        let mut counts = [0usize; 10];
        for _ in 0..100_000 {
            let v = r.below(10) as usize;
            counts[v] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{c}");
        }
    }

    #[test]
    fn streams_depend_on_every_key_part() {
        let a = StreamKey::new(1, 2, 3).rng(purpose::UNIFORM, 4).next_u64();
        assert_ne!(
            a,
            StreamKey::new(1, 2, 3).rng(purpose::UNIFORM, 5).next_u64()
        );
        assert_ne!(
            a,
            StreamKey::new(1, 2, 4).rng(purpose::UNIFORM, 4).next_u64()
        );
        assert_ne!(
            a,
            StreamKey::new(1, 3, 3).rng(purpose::UNIFORM, 4).next_u64()
        );
        assert_ne!(
            a,
            StreamKey::new(0, 2, 3).rng(purpose::UNIFORM, 4).next_u64()
        );
        assert_ne!(a, StreamKey::new(1, 2, 3).rng(purpose::FRESH, 4).next_u64());
        assert_eq!(
            a,
            StreamKey::new(1, 2, 3).rng(purpose::UNIFORM, 4).next_u64()
        );
    }

    #[test]
    fn uniform_floats_are_in_unit_interval() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            let o = r.open01();
            assert!(o > 0.0 && o < 1.0);
            assert!(r.gumbel().is_finite());
        }
    }
}
