//! The fixed hashes every placement decision is derived from.
//!
//! Every node must compute the same placement from the same inputs, on every platform and in
//! every release, so nothing here uses std's randomly keyed hasher or floating point:
//!
//! - [`siphash24`] is SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
//!   2012, §2) over explicit little-endian bytes, with fixed, published keys: [`RING_KEY`] for
//!   virtual-node points on the shard ring and [`REPLICA_KEY`] for rendezvous scores. Separate
//!   keys keep the two uses independent. It is checked against the paper's reference vectors.
//! - [`log2_fixed`] is an integer-only base-2 logarithm in 32.32 fixed point (the classic
//!   digit-by-digit squaring method), so weighted rendezvous scores need no `f64::ln`, whose last
//!   bit may differ between math libraries.
//!
//! Changing any constant here changes every placement in a running cluster: the golden vectors in
//! the tests exist to make such a change loud.

/// SipHash key for virtual-node points on the shard ring: ASCII `"cohort.ring.v1\0\0"` read as
/// two little-endian `u64`s.
pub const RING_KEY: [u64; 2] = key_from_ascii(b"cohort.ring.v1\0\0");

/// SipHash key for rendezvous (highest random weight) scores of (shard, node) pairs: ASCII
/// `"cohort.hrw.v1\0\0\0"` read as two little-endian `u64`s.
pub const REPLICA_KEY: [u64; 2] = key_from_ascii(b"cohort.hrw.v1\0\0\0");

const fn key_from_ascii(text: &[u8; 16]) -> [u64; 2] {
    let mut low = [0u8; 8];
    let mut high = [0u8; 8];
    let mut index = 0;
    while index < 8 {
        low[index] = text[index];
        high[index] = text[index + 8];
        index += 1;
    }
    [u64::from_le_bytes(low), u64::from_le_bytes(high)]
}

/// SipHash-2-4 of `bytes` under `key` (`key[0]` is k0, the first eight key bytes read
/// little-endian). Two compression rounds per 8-byte word, four finalization rounds.
pub fn siphash24(key: [u64; 2], bytes: &[u8]) -> u64 {
    let mut state = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks_exact yields 8 bytes"));
        compress(&mut state, word);
    }
    // The last word holds the remaining bytes and, in its top byte, the length mod 256.
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    let last = u64::from_le_bytes(last) | ((bytes.len() as u64) << 56);
    compress(&mut state, last);
    state[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut state);
    }
    state[0] ^ state[1] ^ state[2] ^ state[3]
}

fn compress(state: &mut [u64; 4], word: u64) {
    state[3] ^= word;
    sip_round(state);
    sip_round(state);
    state[0] ^= word;
}

fn sip_round(state: &mut [u64; 4]) {
    let [v0, v1, v2, v3] = state;
    *v0 = v0.wrapping_add(*v1);
    *v1 = v1.rotate_left(13) ^ *v0;
    *v0 = v0.rotate_left(32);
    *v2 = v2.wrapping_add(*v3);
    *v3 = v3.rotate_left(16) ^ *v2;
    *v0 = v0.wrapping_add(*v3);
    *v3 = v3.rotate_left(21) ^ *v0;
    *v2 = v2.wrapping_add(*v1);
    *v1 = v1.rotate_left(17) ^ *v2;
    *v2 = v2.rotate_left(32);
}

/// SipHash-2-4 of two `u64`s written little-endian one after the other (16 bytes).
pub fn hash_pair(key: [u64; 2], first: u64, second: u64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&first.to_le_bytes());
    bytes[8..].copy_from_slice(&second.to_le_bytes());
    siphash24(key, &bytes)
}

/// Number of fraction bits in [`log2_fixed`]'s result.
pub const LOG2_FRACTION_BITS: u32 = 32;

/// `floor(log2(value) · 2^32)`, computed with integers only, for `value ≥ 1`.
///
/// The integer part is the position of the highest set bit. The mantissa `m ∈ [1, 2)` is kept
/// with 63 fraction bits; squaring it doubles its logarithm, so after each squaring the next
/// fraction bit is 1 exactly when `m² ≥ 2` (then `m²` is halved). Every step truncates, so the
/// result never exceeds the true value.
///
/// # Panics
///
/// If `value` is zero (the logarithm is undefined).
pub fn log2_fixed(value: u128) -> u64 {
    assert!(value > 0, "log2 of zero");
    let integer = 127 - value.leading_zeros();
    const ONE: u32 = 63;
    // The mantissa in [1, 2) with 63 fraction bits always fits in a u64, so each squaring is a
    // single 64 × 64 → 128-bit multiplication.
    let mut mantissa = if integer <= ONE {
        (value << (ONE - integer)) as u64
    } else {
        (value >> (integer - ONE)) as u64
    };
    let mut result = u64::from(integer) << LOG2_FRACTION_BITS;
    for bit in (0..LOG2_FRACTION_BITS).rev() {
        let square = (u128::from(mantissa) * u128::from(mantissa)) >> ONE;
        mantissa = if square >> (ONE + 1) != 0 {
            result |= 1 << bit;
            (square >> 1) as u64
        } else {
            square as u64
        };
    }
    result
}

/// `-log2(u) · 2^32` for the uniform variate `u = (2·hash + 1) / 2^65 ∈ (0, 1)` that `hash`
/// stands for: the denominator of a weighted rendezvous score. Always at least 1, never more
/// than `65 · 2^32`.
pub fn neg_log2_uniform(hash: u64) -> u64 {
    let odd = 2 * u128::from(hash) + 1;
    let result = (65u64 << LOG2_FRACTION_BITS) - log2_fixed(odd);
    // log2_fixed truncates and 2·hash + 1 < 2^65, so the logarithm is below 65: result ≥ 1.
    assert!(result >= 1);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SipHash-2-4 reproduces the reference vectors of the SipHash paper (key 00..0f, message
    /// 00..len-1), including every tail length 0..=7 and multi-word messages.
    #[test]
    fn siphash_matches_reference_vectors() {
        const EXPECTED: [u64; 16] = [
            0x726fdb47dd0e0e31,
            0x74f839c593dc67fd,
            0x0d6c8009d9a94f5a,
            0x85676696d7fb7e2d,
            0xcf2794e0277187b7,
            0x18765564cd99a68d,
            0xcbc9466e58fee3ce,
            0xab0200f58b01d137,
            0x93f5f5799a932462,
            0x9e0082df0ba9e4b0,
            0x7a5dbbc594ddb9f3,
            0xf4b32f46226bada7,
            0x751e8fbc860ee5fb,
            0x14ea5627c0843d90,
            0xf723ca908e7af2ee,
            0xa129ca6149be45e5,
        ];
        let key_bytes: [u8; 16] = core::array::from_fn(|index| index as u8);
        let key = key_from_ascii(&key_bytes);
        let message: Vec<u8> = (0..64).collect();
        for (length, expected) in EXPECTED.iter().enumerate() {
            assert_eq!(siphash24(key, &message[..length]), *expected, "length {length}");
        }
        assert_eq!(siphash24(key, &message[..63]), 0x958a324ceb064572);
    }

    /// The fixed-point logarithm is exact on powers of two and within 2^-30 of the true value
    /// elsewhere, and never above it.
    #[test]
    fn log2_fixed_is_accurate_and_truncates() {
        for power in 0..127u32 {
            assert_eq!(log2_fixed(1u128 << power), u64::from(power) << 32);
        }
        for value in [3u128, 5, 7, 10, 1000, 123_456_789, u128::from(u64::MAX), u128::MAX] {
            let exact = (value as f64).log2() * (1u64 << 32) as f64;
            let computed = log2_fixed(value) as f64;
            assert!(computed <= exact + 1.0, "{value}: {computed} > {exact}");
            assert!(exact - computed < 4.0, "{value}: {computed} far below {exact}");
        }
        assert_eq!(neg_log2_uniform(u64::MAX), 1);
        assert_eq!(neg_log2_uniform(0), 65 << 32);
    }
}
