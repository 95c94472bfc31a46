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

/// Slicing-by-8 tables (Kounavis and Berry, "A systematic approach to building high
/// performance software-based CRC generators", 2005): `TABLES[k][x]` is the CRC register after
/// feeding byte `x` and then `k` zero bytes into a zero register; `TABLES[0]` is the classic
/// byte-at-a-time table. Built at compile time from [`POLYNOMIAL`].
const TABLES: [[u16; 256]; 8] = build_tables();

const fn build_tables() -> [[u16; 256]; 8] {
    let mut tables = [[0u16; 256]; 8];
    let mut index = 0;
    while index < 256 {
        let mut crc = (index as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ POLYNOMIAL } else { crc << 1 };
            bit += 1;
        }
        tables[0][index] = crc;
        index += 1;
    }
    let mut slice = 1;
    while slice < 8 {
        let mut index = 0;
        while index < 256 {
            // One more zero byte: a byte-at-a-time step with input 0.
            let previous = tables[slice - 1][index];
            tables[slice][index] = (previous << 8) ^ tables[0][(previous >> 8) as usize];
            index += 1;
        }
        slice += 1;
    }
    tables
}

/// CRC-16/XMODEM of `bytes`, the checksum Redis Cluster hashes keys with.
///
/// Eight bytes at a time: CRC is linear, so the register (folded into the block's first two
/// bytes) and the eight bytes contribute independently, each through the table for the number
/// of bytes that follow it; the eight lookups do not wait on one another. The tail goes a byte
/// at a time.
///
/// ```
/// assert_eq!(placement::crc16(b"123456789"), 0x31C3);
/// ```
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0u16;
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let [high, low] = crc.to_be_bytes();
        crc = TABLES[7][usize::from(block[0] ^ high)]
            ^ TABLES[6][usize::from(block[1] ^ low)]
            ^ TABLES[5][usize::from(block[2])]
            ^ TABLES[4][usize::from(block[3])]
            ^ TABLES[3][usize::from(block[4])]
            ^ TABLES[2][usize::from(block[5])]
            ^ TABLES[1][usize::from(block[6])]
            ^ TABLES[0][usize::from(block[7])];
    }
    for &byte in blocks.remainder() {
        crc = (crc << 8) ^ TABLES[0][usize::from((crc >> 8) as u8 ^ byte)];
    }
    crc
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
