//! Fuzzes the request decoder: no panic, and the same commands and error whether the input
//! arrives whole or split in two at a point chosen by the input itself.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use resp::{Limits, ProtocolError, RequestDecoder};

fn run(limits: Limits, pieces: &[&[u8]]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>, usize) {
    let mut decoder = RequestDecoder::new(limits);
    let mut buffer = BytesMut::new();
    let mut fed_bytes = 0;
    let mut commands = Vec::new();
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed_bytes += piece.len();
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(command)) => commands.push(command),
                Ok(None) => break,
                Err(error) => return (commands, Some(error), fed_bytes - buffer.len()),
            }
        }
    }
    (commands, None, fed_bytes - buffer.len())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    // Small limits reach the limit branches with small inputs.
    let limits = match selector % 3 {
        0 => Limits::default(),
        1 => Limits::unauthenticated(),
        _ => Limits {
            bulk_len_max: 24,
            array_len_max: 4,
            inline_len_max: 32,
            query_buffer_max: 96,
            ..Limits::default()
        },
    };
    let split = usize::from(selector / 3) * input.len() / 85;
    let whole = run(limits, &[input]);
    let parts = run(limits, &[&input[..split], &input[split..]]);
    assert_eq!(whole, parts);
});
