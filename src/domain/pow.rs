//! The waiting room's bot cost: a proof of work. A shopper's join carries a
//! nonce such that SHA-256 of `challenge + ":" + nonce` starts with `bits`
//! zero bits: about 2^bits hashes to find, one to check.

use sha2::{Digest, Sha256};

/// The most a room may ask: 2^26 hashes is about a minute in a phone's browser.
pub const MAX_BITS: u8 = 26;

/// Leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// Whether `nonce` solves `challenge` at `bits`.
pub fn solves(challenge: &str, nonce: &str, bits: u8) -> bool {
    let mut h = Sha256::new();
    h.update(challenge.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    leading_zero_bits(&h.finalize()) >= bits as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the queue page's worker does, in Rust.
    fn solve(challenge: &str, bits: u8) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| solves(challenge, n, bits))
            .unwrap()
    }

    #[test]
    fn counts_zero_bits_across_bytes() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0x00, 0x00, 0x01]), 23);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solution_solves_its_challenge_only() {
        let nonce = solve("c-1", 12);
        assert!(solves("c-1", &nonce, 12));
        assert!(solves("c-1", &nonce, 0), "any nonce solves 0 bits");
        // Another challenge, or more bits, almost never takes the same nonce.
        let misses = (0..64).filter(|i| !solves(&format!("c-other-{i}"), &nonce, 12)).count();
        assert!(misses >= 60, "{misses}");
        let harder = (0..64)
            .filter(|i| solves(&format!("c-{i}"), &solve(&format!("c-{i}"), 8), 16))
            .count();
        assert!(harder < 8, "{harder}");
    }
}
