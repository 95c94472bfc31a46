//! Key → slot exactly as Redis Cluster computes it (cluster spec, "Keys distribution model"):
//! `HASH_SLOT = CRC16(key) mod 16384`, where CRC16 is CRC-16/XMODEM (polynomial `0x1021`,
//! initial value 0, no reflection, no final xor), and where a key containing a non-empty
//! `{hash tag}` hashes only the tag.
//!
//! The tag rule, as in Redis's `keyHashSlot` (cluster.c): find the first `{`; find the first `}`
//! after it; if both exist and at least one byte lies between them, hash only those bytes,
//! otherwise hash the whole key. So `foo{}{bar}` hashes the whole key, `foo{{bar}}zap` hashes
//! `{bar` and `foo{bar}{zap}` hashes `bar`.

/// Number of hash slots, Redis Cluster's.
pub const SLOTS: u16 = 16384;

/// CRC-16/XMODEM's generator polynomial (x^16 + x^12 + x^5 + 1).
const POLYNOMIAL: u16 = 0x1021;

/// The byte-at-a-time lookup table for [`crc16`], built at compile time from [`POLYNOMIAL`].
const TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = (index as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ POLYNOMIAL } else { crc << 1 };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
}

/// CRC-16/XMODEM of `bytes`, the checksum Redis Cluster hashes keys with.
///
/// ```
/// assert_eq!(placement::crc16(b"123456789"), 0x31C3);
/// ```
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ byte)])
}

/// The bytes of `key` that decide its slot: the first non-empty `{hash tag}`, or the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&byte| byte == b'{') else {
        return key;
    };
    let after_open = &key[open + 1..];
    match after_open.iter().position(|&byte| byte == b'}') {
        Some(length) if length > 0 => &after_open[..length],
        _ => key,
    }
}

/// The Redis Cluster hash slot of `key`, in `0..SLOTS`.
///
/// ```
/// use placement::key_slot;
/// assert_eq!(key_slot(b"foo"), 12182);
/// assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    // SLOTS is a power of two, so the modulus is a mask, as in Redis.
    const _: () = assert!(SLOTS.is_power_of_two());
    crc16(hash_tag(key)) & (SLOTS - 1)
}
