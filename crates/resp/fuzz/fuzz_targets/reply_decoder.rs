//! Fuzzes the reply decoder: no panic, nothing consumed on `None` or error, the same outcome
//! whole or split, and every decoded frame re-encodes to bytes that decode again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp::{decode_frame, encode, Limits, Protocol};

fn run(limits: &Limits, pieces: &[&[u8]]) -> String {
    // A blob error (`!`) re-encodes as a one-line error, so lines may be as long as bulks.
    let reencoded_limits =
        Limits { inline_len_max: Limits::default().bulk_len_max, ..Limits::default() };
    let mut buffer = BytesMut::new();
    let mut outcome = String::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        loop {
            let before = buffer.clone();
            match decode_frame(&mut buffer, limits) {
                Ok(Some(frame)) => {
                    for protocol in [Protocol::Resp2, Protocol::Resp3] {
                        let mut wire = BytesMut::new();
                        encode(&frame, protocol, &mut wire);
                        let again = decode_frame(&mut wire, &reencoded_limits);
                        assert!(matches!(again, Ok(Some(_))), "{frame:?} re-encoded badly");
                        assert!(wire.is_empty());
                    }
                    outcome.push_str(&format!("{frame:?}\n"));
                }
                Ok(None) => {
                    assert_eq!(buffer, before);
                    break;
                }
                Err(error) => {
                    assert_eq!(buffer, before);
                    outcome.push_str(&format!("error {error}\n"));
                    return outcome;
                }
            }
        }
    }
    outcome
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let limits = if selector % 2 == 0 {
        Limits::default()
    } else {
        Limits {
            bulk_len_max: 24,
            array_len_max: 4,
            inline_len_max: 32,
            depth_max: 3,
            ..Limits::default()
        }
    };
    let split = usize::from(selector / 2) * input.len() / 127;
    assert_eq!(run(&limits, &[input]), run(&limits, &[&input[..split], &input[split..]]));
});
