//! RecordIO (`mesos_wire::recordio`): the incremental decoder fed arbitrary
//! bytes split into arbitrary chunks.
//!
//! Input: byte 0 picks the maximum record length, byte 1 seeds the chunk
//! sizes, the rest is the stream.
//!
//! Checks: no panic; no record is longer than the maximum; the records and
//! the outcome are the same whether the stream arrives at once or in
//! chunks; after an error the decoder keeps returning that error; the
//! records decoded, encoded again, decode to the same records.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mesos_wire::DEFAULT_MAX_RECORD_LEN;
use mesos_wire::recordio::{Decoder, FrameError, encode};

/// Every record of `stream` delivered in chunks of the sizes `chunk` gives,
/// and how the stream ended.
fn decode(
    stream: &[u8],
    max: usize,
    mut chunk: impl FnMut() -> usize,
) -> (Vec<Bytes>, Result<(), FrameError>) {
    let mut decoder = Decoder::new(max);
    let mut buf = BytesMut::new();
    let mut records = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(chunk().clamp(1, rest.len()));
        rest = later;
        buf.extend_from_slice(now);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(record)) => {
                    assert!(record.len() <= max, "record of {} bytes over {max}", record.len());
                    records.push(record);
                }
                Ok(None) => break,
                Err(e) => {
                    // A RecordIO stream cannot be resynchronized.
                    buf.extend_from_slice(rest);
                    assert_eq!(decoder.decode(&mut buf), Err(e.clone()), "not poisoned");
                    assert_eq!(decoder.finish(&buf), Err(e.clone()), "finish not poisoned");
                    return (records, Err(e));
                }
            }
        }
    }
    let end = decoder.finish(&buf);
    (records, end)
}

fuzz_target!(|data: &[u8]| {
    let [pick, seed, stream @ ..] = data else { return };
    let max = match pick % 4 {
        0 => usize::from(pick / 4),
        1 => 1 << 10,
        2 => DEFAULT_MAX_RECORD_LEN,
        _ => usize::MAX,
    };

    let whole = decode(stream, max, || usize::MAX);
    // Chunks of 1 to 16 bytes, from a tiny generator seeded by the input.
    let mut state = u32::from(*seed) | 1;
    let chunked = decode(stream, max, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16 + 1) as usize
    });
    assert_eq!(whole, chunked, "the outcome depends on the chunking");

    let (records, _) = whole;
    let again: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
    let (back, end) = decode(&again, max, || usize::MAX);
    assert_eq!(end, Ok(()));
    assert_eq!(back, records, "re-encoded records decode differently");
});
