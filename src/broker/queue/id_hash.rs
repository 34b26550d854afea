//! A hasher for maps keyed by small integer ids looked up on every message: the queue actor's
//! maps keyed by `MessageId` and an AMQP connection's channel table. Message ids are assigned
//! by the queue itself (sequential, never chosen by a peer), and a client's channel numbers
//! are at most `channel_max` and only its own connection would slow down if they collided, so
//! the DoS resistance of the default SipHash buys nothing there, while hashing on every
//! delivery and every ack was a visible share of a QoS 1 fan-out profile, and of an AMQP
//! publish (README, Benchmarks). One multiply spreads sequential ids over both the bucket bits
//! and hashbrown's top control bits. Owns nothing else.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds `IdHasher`s; use as the `S` of a `HashMap<MessageId, _, S>`.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// Fibonacci hashing constant (2^64 / golden ratio, odd so the multiply is a bijection).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Multiplicative hasher for broker-assigned integer ids.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `MessageId` (it hashes one u64); correct for any key all the same.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }

    fn write_u16(&mut self, n: u16) {
        // AMQP channel numbers (`amqp::conn`).
        self.write_u64(u64::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_ids_spread_over_buckets_and_control_bits() {
        let build = IdBuildHasher::default();
        let hashes: Vec<u64> = (1..=4096u64).map(|id| build.hash_one(id)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(
            low.len(),
            4096,
            "sequential ids must not collide in the bucket bits"
        );
        assert!(top.len() > 100, "only {} distinct control bytes", top.len());
    }
}
