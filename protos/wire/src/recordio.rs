//! RecordIO framing, as used by the Mesos v1 streaming responses.
//!
//! Each record is `<decimal length>\n<length bytes>`. The decoder is
//! incremental: feed it whatever chunk the socket produced and take out every
//! complete record. It never panics and never waits for bytes that cannot
//! come: a non-numeric or oversized length is an error as soon as it is seen,
//! and [`Decoder::finish`] turns a stream that ends mid-record into an error.

use bytes::{Buf, Bytes, BytesMut};

/// The longest length prefix accepted (`u64::MAX` has 20 digits).
const MAX_LENGTH_DIGITS: usize = 20;

/// The most buffer space reserved ahead for a record's announced body: the
/// length is the peer's word, so memory grows with the bytes that arrive.
const MAX_RESERVE: usize = 64 << 10;

/// A malformed RecordIO stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix held something other than decimal digits.
    #[error("record length is not a decimal number: {prefix:?}")]
    NonNumericLength {
        /// The offending prefix (truncated to a few bytes).
        prefix: String,
    },
    /// The length prefix was empty (`"\n"`).
    #[error("record length is empty")]
    EmptyLength,
    /// A record announced more bytes than the configured maximum.
    #[error("record length {len} exceeds the maximum of {max} bytes")]
    TooLong {
        /// The announced length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The stream ended inside a record.
    #[error("stream ended inside a record ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes left over when the stream ended.
        buffered: usize,
    },
}

/// Incremental RecordIO decoder.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_record_len: usize,
    /// Length of the record whose header was consumed but whose body is incomplete.
    pending: Option<usize>,
    /// Set once an error was returned: the stream cannot be resynchronized.
    poisoned: Option<FrameError>,
}

impl Decoder {
    /// A decoder that refuses records longer than `max_record_len` bytes.
    pub fn new(max_record_len: usize) -> Self {
        Decoder { max_record_len, pending: None, poisoned: None }
    }

    /// The configured maximum record length.
    pub fn max_record_len(&self) -> usize {
        self.max_record_len
    }

    /// Takes the next complete record out of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed. After an error the decoder
    /// keeps returning that error: a RecordIO stream cannot be resynchronized.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(err) = &self.poisoned {
            return Err(err.clone());
        }
        let result = self.decode_inner(buf);
        if let Err(err) = &result {
            self.poisoned = Some(err.clone());
        }
        result
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                let scan = buf.len().min(MAX_LENGTH_DIGITS + 1);
                let newline = buf[..scan].iter().position(|&b| b == b'\n');
                // Validate the digits seen so far, so garbage fails fast
                // instead of waiting for a newline that may never come.
                let digits = &buf[..newline.unwrap_or(scan)];
                if let Some(bad) = digits.iter().position(|b| !b.is_ascii_digit()) {
                    let end = (bad + 1).min(digits.len());
                    return Err(FrameError::NonNumericLength {
                        prefix: String::from_utf8_lossy(&digits[..end]).into_owned(),
                    });
                }
                let Some(newline) = newline else {
                    if scan > MAX_LENGTH_DIGITS {
                        return Err(FrameError::NonNumericLength {
                            prefix: String::from_utf8_lossy(&buf[..MAX_LENGTH_DIGITS]).into_owned(),
                        });
                    }
                    return Ok(None);
                };
                if newline == 0 {
                    return Err(FrameError::EmptyLength);
                }
                let text = std::str::from_utf8(&buf[..newline]).unwrap_or("");
                let len: u64 = text
                    .parse()
                    .map_err(|_| FrameError::TooLong { len: u64::MAX, max: self.max_record_len })?;
                if len > self.max_record_len as u64 {
                    return Err(FrameError::TooLong { len, max: self.max_record_len });
                }
                buf.advance(newline + 1);
                let len = len as usize;
                self.pending = Some(len);
                len
            }
        };
        if buf.len() < len {
            buf.reserve((len - buf.len()).min(MAX_RESERVE));
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// Checks that the stream ended on a record boundary.
    pub fn finish(&self, buf: &BytesMut) -> Result<(), FrameError> {
        if let Some(err) = &self.poisoned {
            return Err(err.clone());
        }
        if self.pending.is_some() || !buf.is_empty() {
            return Err(FrameError::Truncated { buffered: buf.len() });
        }
        Ok(())
    }
}

/// Frames one record.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut d = Decoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(r) = d.decode(&mut buf)? {
                out.push(r);
            }
        }
        d.finish(&buf)?;
        Ok(out)
    }

    #[test]
    fn decodes_back_to_back_records() {
        let got = decode_all(&[b"5\nhello3\nabc0\n"], 100).unwrap();
        assert_eq!(got, vec![Bytes::from("hello"), Bytes::from("abc"), Bytes::new()]);
    }

    #[test]
    fn truncated_body_is_an_error_at_end_of_stream() {
        assert_eq!(decode_all(&[b"5\nhel"], 100), Err(FrameError::Truncated { buffered: 3 }));
    }

    #[test]
    fn truncated_length_is_an_error_at_end_of_stream() {
        assert_eq!(decode_all(&[b"5\nhello12"], 100), Err(FrameError::Truncated { buffered: 2 }));
    }

    #[test]
    fn non_numeric_length_fails_without_waiting_for_a_newline() {
        let mut d = Decoder::new(100);
        let mut buf = BytesMut::from(&b"12x"[..]);
        assert!(matches!(d.decode(&mut buf), Err(FrameError::NonNumericLength { .. })));
        // The decoder stays failed.
        let mut more = BytesMut::from(&b"3\nabc"[..]);
        assert!(d.decode(&mut more).is_err());
    }

    #[test]
    fn negative_or_json_lengths_are_rejected() {
        assert!(matches!(decode_all(&[b"-1\n"], 100), Err(FrameError::NonNumericLength { .. })));
        assert!(matches!(
            decode_all(&[b"{\"type\":\"HEARTBEAT\"}"], 100),
            Err(FrameError::NonNumericLength { .. })
        ));
        assert_eq!(decode_all(&[b"\nabc"], 100), Err(FrameError::EmptyLength));
    }

    #[test]
    fn endless_digits_are_rejected() {
        let digits = vec![b'9'; 64];
        assert!(matches!(
            decode_all(&[&digits], usize::MAX),
            Err(FrameError::NonNumericLength { .. })
        ));
    }

    #[test]
    fn length_over_maximum_is_rejected_before_the_body_arrives() {
        let mut d = Decoder::new(10);
        let mut buf = BytesMut::from(&b"11\n"[..]);
        assert_eq!(d.decode(&mut buf), Err(FrameError::TooLong { len: 11, max: 10 }));
        assert_eq!(
            decode_all(&[b"99999999999999999999\n"], 10),
            Err(FrameError::TooLong { len: u64::MAX, max: 10 })
        );
    }

    /// Found by `fuzz/fuzz_targets/recordio.rs`: a huge announced length
    /// (allowed by an unlimited maximum) aborted on reserving it up front.
    #[test]
    fn huge_announced_length_reserves_nothing_up_front() {
        let mut d = Decoder::new(usize::MAX);
        let mut buf = BytesMut::from(&b"2000000000000\nab"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= MAX_RESERVE + 16, "reserved {} bytes", buf.capacity());
        assert_eq!(d.finish(&buf), Err(FrameError::Truncated { buffered: 2 }));
    }

    #[test]
    fn record_at_exact_maximum_is_accepted() {
        assert_eq!(decode_all(&[b"10\n0123456789"], 10).unwrap(), vec![Bytes::from("0123456789")]);
    }

    proptest! {
        /// Property: however a valid stream is split into chunks, the decoder
        /// yields exactly the records that were encoded, in order.
        #[test]
        fn any_chunking_yields_the_same_records(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            let got = decode_all(&chunks, 1 << 20).unwrap();
            let want: Vec<Bytes> = records.into_iter().map(Bytes::from).collect();
            prop_assert_eq!(got, want);
        }

        /// Property: arbitrary bytes never panic the decoder, and it always
        /// either makes progress, asks for more, or fails.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..64) {
            let mut d = Decoder::new(max);
            let mut buf = BytesMut::from(&data[..]);
            for _ in 0..600 {
                match d.decode(&mut buf) {
                    Ok(Some(r)) => prop_assert!(r.len() <= max),
                    Ok(None) | Err(_) => break,
                }
            }
            let _ = d.finish(&buf);
        }
    }
}
