//! PUBACK and PUBREC that wait for the message to be stored. A QoS 1/2 message routed to a
//! durable queue (a persistent session's queue, a shared group's queue, an AMQP durable queue)
//! is acknowledged only once that queue has it on disk, so an acknowledged message survives a
//! crash; the connection keeps reading meanwhile. Acknowledgements leave in the order the
//! PUBLISH packets came [MQTT-4.6.0-2], [MQTT-4.6.0-3], so one waiting for the disk holds back
//! those behind it.

use std::collections::VecDeque;
use std::task::{ready, Context, Poll};

use ferromq_mqtt::Packet;

use crate::broker::queue::{Admission, Verdict};

/// One verdict for two: resolves when both did, `Refused` if either refused.
pub fn both(a: Option<Verdict>, b: Option<Verdict>) -> Option<Verdict> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Box::pin(async move {
            let (a, b) = (a.await, b.await);
            if a == Admission::Refused {
                a
            } else {
                b
            }
        })),
        (a, b) => a.or(b),
    }
}

/// Acknowledgements not yet sent, oldest first.
#[derive(Default)]
pub struct PendingAcks {
    queue: VecDeque<(Packet, Option<Verdict>)>,
}

impl PendingAcks {
    /// Returns `packet` to send now if nothing waits (no verdict, nothing queued before it),
    /// else queues it behind the others.
    pub fn push(&mut self, packet: Packet, verdict: Option<Verdict>) -> Option<Packet> {
        if verdict.is_none() && self.queue.is_empty() {
            return Some(packet);
        }
        self.queue.push_back((packet, verdict));
        None
    }

    /// Ready once the oldest acknowledgement may go; never while none waits. Polled through
    /// `poll_fn` in the connection's wait: an `async fn` future there would be 40 bytes of
    /// every idle connection (README, Benchmarks). Cancel-safe: the verdict stays.
    pub fn poll_front_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((_, verdict)) = self.queue.front_mut() else {
            return Poll::Pending;
        };
        if let Some(v) = verdict {
            if ready!(v.as_mut().poll(cx)) == Admission::Refused {
                // A full subscriber queue refuses newer messages (Mosquitto's
                // max_queued_messages); as in Mosquitto the publisher is not told.
                tracing::debug!("a queue refused a message from MQTT; acknowledged anyway");
            }
            *verdict = None;
        }
        Poll::Ready(())
    }

    /// Takes every acknowledgement that may go now, in order.
    pub fn take_ready(&mut self, out: &mut Vec<Packet>) {
        while matches!(self.queue.front(), Some((_, None))) {
            if let Some((packet, _)) = self.queue.pop_front() {
                out.push(packet);
            }
        }
    }
}
