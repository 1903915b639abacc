//! Server-sent events, as `/v2/events` sends them: an incremental decoder
//! of the `text/event-stream` format (pure), fed with the bytes of a
//! response body in whatever pieces they arrive.
//!
//! Only what Drover (and Marathon) send is kept: the `event` and `data`
//! fields. Comments (`:` lines, Drover's keep-alives), `id` and `retry` are
//! skipped. Lines end in `\n`, `\r\n` or `\r`; several `data` lines of one
//! event are joined with `\n`; an event without data is not dispatched.

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The event type (`message` when the event named none).
    pub(crate) event: String,
    /// The data, its lines joined by `\n`.
    pub(crate) data: String,
}

/// The longest line the decoder keeps; a longer one is an error (a stream
/// that is not SSE, or a server gone wrong), not unbounded memory.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// Decodes a `text/event-stream` body incrementally.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// The bytes of the line being read.
    line: Vec<u8>,
    /// The last byte was a `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    event: String,
    data: Vec<String>,
}

impl SseDecoder {
    /// Feeds the next bytes; returns the events they complete, in order.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    out.extend(self.line_done(&String::from_utf8_lossy(&line)));
                }
                _ if self.line.len() >= MAX_LINE => {
                    return Err(format!("an event stream line is longer than {MAX_LINE} bytes"));
                }
                _ => self.line.push(b),
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if data.is_empty() {
                return None;
            }
            let event = if event.is_empty() { "message".to_owned() } else { event };
            return Some(SseEvent { event, data: data.join("\n") });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_owned(),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &str, piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            out.extend(decoder.push(chunk).unwrap());
        }
        out
    }

    #[test]
    fn events_are_decoded_whatever_the_pieces() {
        let stream = concat!(
            ":\n\n",
            "event: status_update_event\ndata: {\"a\":1}\n\n",
            "event:deployment_info\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\n",
            "id: 7\nretry: 10\nevent: empty\n\n",
            "data: plain\rdata:  spaced\r\r",
            "event: cut-off\ndata: {}\n"
        );
        let want = vec![
            SseEvent { event: "status_update_event".into(), data: "{\"a\":1}".into() },
            SseEvent { event: "deployment_info".into(), data: "{\"b\":\n2}".into() },
            SseEvent { event: "message".into(), data: "plain\n spaced".into() },
        ];
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(decode_in_pieces(stream, piece), want, "pieces of {piece}");
        }
    }

    #[test]
    fn a_stream_that_never_ends_a_line_is_refused() {
        let mut decoder = SseDecoder::default();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..17 {
            result = decoder.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(result.is_err());
    }
}
