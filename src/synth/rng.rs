//! Small deterministic random numbers for scene generation: SplitMix64 as a stream and as a
//! stateless hash of integer coordinates (for lattice noise that needs no state).
//!
//! Scenes must be identical on every machine and every run for a given seed, and must not
//! depend on thread scheduling; a stateless hash of (seed, coordinates) gives that for free.

/// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of a seed and up to three integer coordinates, as a float in [0, 1).
#[inline]
pub fn hash_unit(seed: u64, a: i64, b: i64, c: i64) -> f64 {
    let mut h = mix64(seed ^ 0x9E37_79B9_7F4A_7C15);
    h = mix64(h ^ (a as u64));
    h = mix64(h ^ (b as u64).rotate_left(21));
    h = mix64(h ^ (c as u64).rotate_left(42));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A seeded stream of random numbers (SplitMix64).
#[derive(Clone, Debug)]
pub struct SplitMix {
    state: u64,
}

impl SplitMix {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_uniform() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.unit()).collect();
        assert!(xs.iter().zip((0..10_000).map(|_| b.unit())).all(|(x, y)| *x == y));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_eq!(hash_unit(1, 2, 3, 4), hash_unit(1, 2, 3, 4));
        assert_ne!(hash_unit(1, 2, 3, 4), hash_unit(1, 2, 3, 5));
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut r = SplitMix::new(3);
        let xs: Vec<f64> = (0..20_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
    }
}
