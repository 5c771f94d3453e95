//! The relay's filter on a NATS server's replies: while told to, it drops
//! JetStream publish acknowledgements (`MSG` whose payload begins
//! `{"stream":`), so a key-value write lands in the stream but the writer
//! never hears so. Everything else passes byte for byte. It follows the
//! protocol's framing (lines, and `MSG`/`HMSG` bodies of the size their line
//! gives); a stream it cannot frame (a line over [`MAX_LINE`], e.g. another
//! protocol's binary reply) is passed through unfiltered from then on.

use tokio::sync::watch;

/// Longest protocol line followed; past it the filter stands aside.
const MAX_LINE: usize = 4096;

/// See the module docs.
pub struct AckFilter {
    dropping: watch::Receiver<bool>,
    /// The current line, until its `\r\n`.
    line: Vec<u8>,
    /// Bytes of the current message body (with its `\r\n`) still to come.
    body: usize,
    /// A message held whole to be judged (read while dropping).
    held: Option<Vec<u8>>,
    broken: bool,
}

impl AckFilter {
    /// A filter that drops acknowledgements while `dropping` holds `true`.
    pub fn new(dropping: watch::Receiver<bool>) -> Self {
        Self {
            dropping,
            line: Vec::new(),
            body: 0,
            held: None,
            broken: false,
        }
    }

    /// What of `chunk` (with what was held from earlier chunks) to forward.
    pub fn pass(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.broken {
            return chunk.to_vec();
        }
        let mut out = Vec::with_capacity(chunk.len());
        let mut i = 0;
        while i < chunk.len() {
            if self.body > 0 {
                let n = self.body.min(chunk.len() - i);
                match &mut self.held {
                    Some(held) => held.extend_from_slice(&chunk[i..i + n]),
                    None => out.extend_from_slice(&chunk[i..i + n]),
                }
                self.body -= n;
                i += n;
                if self.body == 0
                    && let Some(held) = self.held.take()
                    && !is_ack(&held)
                {
                    out.extend(held);
                }
                continue;
            }
            self.line.push(chunk[i]);
            i += 1;
            if self.line.ends_with(b"\r\n") {
                let line = std::mem::take(&mut self.line);
                match body_size(&line) {
                    Some(size) => {
                        self.body = size + 2;
                        if *self.dropping.borrow() {
                            self.held = Some(line);
                        } else {
                            out.extend(line);
                        }
                    }
                    None => out.extend(line),
                }
            } else if self.line.len() > MAX_LINE {
                self.broken = true;
                out.append(&mut self.line);
                out.extend_from_slice(&chunk[i..]);
                return out;
            }
        }
        out
    }
}

/// The body size a `MSG` or `HMSG` line announces (its last field).
fn body_size(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    if !(text.starts_with("MSG ") || text.starts_with("HMSG ")) {
        return None;
    }
    text.split_whitespace().last()?.parse().ok()
}

/// A `MSG` (no headers) whose payload is a publish acknowledgement.
fn is_ack(message: &[u8]) -> bool {
    let Some(end) = message.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    message.starts_with(b"MSG ") && message[end + 2..].starts_with(b"{\"stream\":")
}
