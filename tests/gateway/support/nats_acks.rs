//! The relay's filters on a NATS connection: while told to, it drops
//! JetStream publish acknowledgements (`MSG` whose payload begins
//! `{"stream":`), so a key-value write lands in the stream but the writer
//! never hears so: all of them ([`Acks::DropAll`]), or only those answering
//! publishes to one subject ([`Acks::DropFor`]: [`PubWatch`] notes the
//! reply inboxes of the client's `PUB`/`HPUB`s to it, and [`AckFilter`]
//! drops acks sent to those inboxes). Everything else passes byte for byte.
//! Both follow the protocol's framing (lines, and bodies of the size their
//! line gives); a stream one cannot frame (a line over [`MAX_LINE`], e.g.
//! another protocol's binary reply) is passed through unfiltered from then on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Longest protocol line followed; past it the filter stands aside.
const MAX_LINE: usize = 4096;

/// Which JetStream publish acknowledgements the relay drops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Acks {
    /// Every acknowledgement passes.
    #[default]
    Pass,
    /// Every acknowledgement is dropped.
    DropAll,
    /// Those answering publishes to this subject.
    DropFor(String),
}

/// Reply inboxes of one connection's publishes whose acks are to be dropped.
pub type Inboxes = Arc<Mutex<HashSet<String>>>;

/// See the module docs.
pub struct AckFilter {
    dropping: watch::Receiver<Acks>,
    inboxes: Inboxes,
    /// The current line, until its `\r\n`.
    line: Vec<u8>,
    /// Bytes of the current message body (with its `\r\n`) still to come.
    body: usize,
    /// A message held whole to be judged (read while dropping).
    held: Option<Vec<u8>>,
    broken: bool,
}

impl AckFilter {
    /// A filter that drops acknowledgements as `dropping` says (those to
    /// `inboxes` for [`Acks::DropFor`]).
    pub fn new(dropping: watch::Receiver<Acks>, inboxes: Inboxes) -> Self {
        Self {
            dropping,
            inboxes,
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
                        if self.judged(&line) {
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

impl AckFilter {
    /// Whether the message this `MSG` line starts is to be held and judged.
    fn judged(&self, line: &[u8]) -> bool {
        match &*self.dropping.borrow() {
            Acks::Pass => false,
            Acks::DropAll => true,
            Acks::DropFor(_) => field(line, 1).is_some_and(|inbox| {
                let mut inboxes = self.inboxes.lock().expect("inboxes");
                inboxes.remove(inbox)
            }),
        }
    }
}

/// The client's side of a connection under [`Acks::DropFor`]: notes the
/// reply inbox of each publish to the subject; passes every byte.
pub struct PubWatch {
    dropping: watch::Receiver<Acks>,
    inboxes: Inboxes,
    line: Vec<u8>,
    /// Bytes of the current message body (with its `\r\n`) still to come.
    body: usize,
    broken: bool,
}

impl PubWatch {
    /// Notes inboxes in `inboxes` while `dropping` is [`Acks::DropFor`].
    pub fn new(dropping: watch::Receiver<Acks>, inboxes: Inboxes) -> Self {
        Self {
            dropping,
            inboxes,
            line: Vec::new(),
            body: 0,
            broken: false,
        }
    }

    /// Observes `chunk`; returns it unchanged.
    pub fn pass(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut i = 0;
        while i < chunk.len() && !self.broken {
            if self.body > 0 {
                let n = self.body.min(chunk.len() - i);
                self.body -= n;
                i += n;
                continue;
            }
            self.line.push(chunk[i]);
            i += 1;
            if self.line.ends_with(b"\r\n") {
                let line = std::mem::take(&mut self.line);
                self.note(&line);
            } else if self.line.len() > MAX_LINE {
                self.broken = true;
            }
        }
        chunk.to_vec()
    }

    /// `PUB <subject> <reply> <size>` or `HPUB <subject> <reply> <headers> <size>`.
    fn note(&mut self, line: &[u8]) {
        let Ok(text) = std::str::from_utf8(line) else {
            return;
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (publish, with_reply) = match fields.first() {
            Some(&"PUB") => (true, fields.len() == 4),
            Some(&"HPUB") => (true, fields.len() == 5),
            _ => (false, false),
        };
        if !publish {
            return;
        }
        self.body = fields
            .last()
            .and_then(|size| size.parse().ok())
            .unwrap_or(0)
            + 2;
        if with_reply
            && let Acks::DropFor(subject) = &*self.dropping.borrow()
            && fields[1] == subject
        {
            let mut inboxes = self.inboxes.lock().expect("inboxes");
            inboxes.insert(fields[2].to_owned());
        }
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

/// The `n`th whitespace-separated field of a protocol line.
fn field(line: &[u8], n: usize) -> Option<&str> {
    std::str::from_utf8(line).ok()?.split_whitespace().nth(n)
}

/// A `MSG` (no headers) whose payload is a publish acknowledgement.
fn is_ack(message: &[u8]) -> bool {
    let Some(end) = message.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    message.starts_with(b"MSG ") && message[end + 2..].starts_with(b"{\"stream\":")
}
