//! One connection's membership in one channel as the hub keeps it: live, or
//! held while its subscribe reads the channel's history.
//!
//! A held member collects the channel's pushes in a buffer bounded like its
//! outbox; the subscribe then releases it with the ack, the replay and the
//! floor (the position the replay reached), and the buffered pushes above the
//! floor follow in arrival order. A live member keeps its floor, so a push
//! the replay already covered that arrives late (its broker message was still
//! on the way) is dropped, not sent twice. Knows no broker and no store.

use crate::close::CloseReason;
use crate::history::Position;
use crate::protocol::Frame;

use super::{Hub, Subscriber};

/// A subscriber and how pushes reach it.
#[derive(Debug)]
pub(super) struct Member {
    pub subscriber: Subscriber,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Pushes go to the outbox, except history pushes at or below `floor`.
    Live { floor: Option<Position> },
    /// Pushes wait here until the subscribe's replay is queued.
    Held {
        frames: Vec<(Option<Position>, Frame)>,
        bytes: usize,
    },
}

impl Member {
    pub fn live(subscriber: Subscriber) -> Self {
        Self {
            subscriber,
            state: State::Live { floor: None },
        }
    }

    pub fn held(subscriber: Subscriber) -> Self {
        Self {
            subscriber,
            state: State::Held {
                frames: Vec::new(),
                bytes: 0,
            },
        }
    }

    /// Sends or holds one push (`at`: its history position, if any); false
    /// when the connection did not take it.
    pub fn offer(&mut self, hub: &Hub, at: Option<&Position>, frame: &Frame) -> bool {
        match &mut self.state {
            State::Live { floor } => {
                if let (Some(floor), Some(at)) = (floor.as_ref(), at)
                    && floor.covers(at)
                {
                    return false;
                }
                hub.push(&self.subscriber.outbox, frame.clone())
            }
            State::Held { frames, bytes } => {
                let outbox = &self.subscriber.outbox;
                if outbox.close_reason().is_some() {
                    hub.metrics.frames_dropped.inc();
                    return false;
                }
                *bytes += frame.len();
                if *bytes > outbox.max_bytes() {
                    // The same bound as the outbox: a client whose pushes
                    // pile up during its replay is cut with 1013.
                    hub.metrics.frames_dropped.inc_by(frames.len() as u64 + 1);
                    hub.metrics.slow_consumers.inc();
                    outbox.close(CloseReason::SlowConsumer);
                    *frames = Vec::new();
                    *bytes = 0;
                    return false;
                }
                frames.push((at.cloned(), frame.clone()));
                true
            }
        }
    }

    /// Queues `ack`, then `replay`, then what was held above `floor`, and
    /// turns the member live with that floor.
    pub fn release(&mut self, hub: &Hub, ack: Frame, replay: Vec<Frame>, floor: Option<Position>) {
        let outbox = &self.subscriber.outbox;
        hub.push(outbox, ack);
        for frame in replay {
            hub.push(outbox, frame);
        }
        let held = std::mem::replace(&mut self.state, State::Live { floor: None });
        if let State::Held { frames, .. } = held {
            for (at, frame) in frames {
                let covered = matches!((&floor, &at), (Some(f), Some(a)) if f.covers(a));
                if !covered {
                    hub.push(outbox, frame);
                }
            }
        }
        self.state = State::Live { floor };
    }
}
