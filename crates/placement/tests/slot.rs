//! Key → slot against the Redis Cluster specification's vectors.

use placement::{crc16, hash_tag, key_slot, SLOTS};

/// CRC16 is CRC-16/XMODEM: the spec's check value for "123456789" is 0x31C3.
#[test]
fn crc16_matches_the_cluster_spec_check_value() {
    assert_eq!(crc16(b"123456789"), 0x31C3);
    assert_eq!(crc16(b""), 0);
    // Bitwise reference: the table-driven form must agree with the polynomial definition.
    let bitwise = |bytes: &[u8]| {
        let mut crc = 0u16;
        for &byte in bytes {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    };
    let all: Vec<u8> = (0..=255).collect();
    for end in 0..all.len() {
        assert_eq!(crc16(&all[..end]), bitwise(&all[..end]));
    }
}

/// Keys land on the slots Redis reports for them.
#[test]
fn known_keys_land_on_redis_slots() {
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"bar"), 5061);
    assert_eq!(key_slot(b"hello"), 866);
    assert_eq!(key_slot(b""), 0);
    assert_eq!(key_slot(b"123456789"), 0x31C3 % SLOTS);
}

/// Hash tags follow the spec's examples exactly.
#[test]
fn hash_tags_follow_the_spec_examples() {
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}", "empty tag hashes the whole key");
    assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
    assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
    assert_eq!(hash_tag(b"foo{bar"), b"foo{bar", "unclosed brace hashes the whole key");
    assert_eq!(hash_tag(b"foo}bar{"), b"foo}bar{", "a close before the open does not count");
    assert_eq!(hash_tag(b"}{x}"), b"x");
    assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
}
