//! The vhost as seen from its queues and from publishers that need a queue's verdict:
//!
//! - `VhostHost`, the `QueueHost` each queue actor holds: a `Weak<Vhost>`, so a queue never
//!   keeps its vhost (and through it, itself) alive. Dead letters are routed from the dead-letter
//!   exchange like a publish (internal exchanges included: only clients are kept from publishing
//!   to those; a missing exchange drops the message, as RabbitMQ does), minus the queues the
//!   message would cycle into (RabbitMQ's rule, `DeadLetter::cycles_into`). A queue unused for
//!   its `x-expires` is removed with its bindings.
//! - `dispatch_with_outcome`: `dispatch` for a publisher in confirm mode, which must nack a
//!   publish that a `reject-publish[-dlx]` queue refused.
//! - `consume_error`: RabbitMQ's reply for a basic.consume a queue refused.
//!
//! Queue identity among routed bindings is the binding target's address, as everywhere in
//! routing (`Binding::destination_key`).

use std::sync::{Arc, Weak};

use super::{Vhost, VhostError};
use crate::broker::binding::{Binding, Pending};
use crate::broker::dispatch::dispatch;
use crate::broker::message::Message;
use crate::broker::queue::{
    Admission, ConsumeError, DeadLetter, Outcome, QueueHandle, QueueHost, Verdict,
};

/// What `Vhost::dispatch_with_outcome` did with one publish.
pub struct Dispatched {
    /// Destinations reached, as `dispatch` counts them. A queue that refuses the message still
    /// counts: in RabbitMQ a refused publish was routed (no basic.return), and is nacked.
    pub reached: usize,
    /// Present when the message went to at least one queue that may refuse it or stores it
    /// durably: resolves to `Refused` if any of them refused it (or could not write it), once
    /// all answered. Await it (after the publish's `Pending`s) before confirming the publish.
    pub verdict: Option<Verdict>,
}

/// A queue's way back to its vhost.
pub(super) struct VhostHost(Weak<Vhost>);

impl VhostHost {
    /// The host every queue of `vhost` shares.
    pub fn shared(vhost: Weak<Vhost>) -> Arc<dyn QueueHost> {
        Arc::new(VhostHost(vhost))
    }
}

impl QueueHost for VhostHost {
    fn dead_letter(&self, letter: DeadLetter, pending: &mut Vec<Pending>) {
        if let Some(vhost) = self.0.upgrade() {
            vhost.route_dead_letter(&letter, pending);
        }
    }

    fn unused_expired(&self, queue: &str) {
        if let Some(vhost) = self.0.upgrade() {
            vhost.unused_queue_expired(queue);
        }
    }
}

impl Vhost {
    /// Delivers a routed publish like `dispatch`, and for the queues among `bindings` whose
    /// `x-overflow` can refuse it, asks for their verdict (`QueueHandle::publish_with_outcome`).
    /// For AMQP publishers in confirm mode; everyone else calls `dispatch`. Without such
    /// queues in the vhost this is `dispatch` plus one read lock.
    pub fn dispatch_with_outcome(
        &self,
        message: &Arc<Message>,
        bindings: &[Binding],
        pending: &mut Vec<Pending>,
    ) -> Dispatched {
        self.dispatch_answered(message, bindings, pending, |_| true)
    }

    /// `dispatch_with_outcome` asking only the durable queues, whose verdict comes once the
    /// message is on disk: for MQTT acknowledgements, which wait for storage but not for the
    /// verdicts of queues that may refuse (a full subscriber queue drops newer messages
    /// unannounced, as Mosquitto's). Asking a queue costs a reply per message.
    pub fn dispatch_until_stored(
        &self,
        message: &Arc<Message>,
        bindings: &[Binding],
        pending: &mut Vec<Pending>,
    ) -> Dispatched {
        self.dispatch_answered(message, bindings, pending, QueueHandle::is_durable)
    }

    fn dispatch_answered(
        &self,
        message: &Arc<Message>,
        bindings: &[Binding],
        pending: &mut Vec<Pending>,
        ask: impl Fn(&QueueHandle) -> bool,
    ) -> Dispatched {
        let refusing: Vec<(usize, QueueHandle)> = {
            let map = self.refusing.read();
            if map.is_empty() {
                Vec::new()
            } else {
                let mut found: Vec<(usize, QueueHandle)> = Vec::new();
                for b in bindings {
                    let key = b.destination_key();
                    if let Some(handle) = map.get(&key).filter(|h| ask(h)) {
                        if found.iter().all(|(k, _)| *k != key) {
                            found.push((key, handle.clone()));
                        }
                    }
                }
                found
            }
        };
        if refusing.is_empty() {
            return Dispatched {
                reached: dispatch(message, bindings, pending),
                verdict: None,
            };
        }
        let others: Vec<Binding> = bindings
            .iter()
            .filter(|b| refusing.iter().all(|(k, _)| *k != b.destination_key()))
            .cloned()
            .collect();
        let mut reached = dispatch(message, &others, pending);
        let mut verdicts = Vec::with_capacity(refusing.len());
        for (_, handle) in refusing {
            reached += 1;
            match handle.publish_with_outcome(Arc::clone(message)) {
                Outcome::Queued(wait) => pending.extend(wait),
                Outcome::Decided(verdict) => verdicts.push(verdict),
                Outcome::Waiting { send, verdict } => {
                    pending.push(send);
                    verdicts.push(verdict);
                }
            }
        }
        let verdict: Option<Verdict> = match verdicts.len() {
            0 => None,
            1 => verdicts.pop(),
            _ => Some(Box::pin(async move {
                let mut all = Admission::Accepted;
                for verdict in verdicts {
                    if verdict.await == Admission::Refused {
                        all = Admission::Refused;
                    }
                }
                all
            })),
        };
        Dispatched { reached, verdict }
    }

    /// The error for a basic.consume on queue `queue` that the queue refused
    /// (`QueueHandle::consume_checked`): RabbitMQ's 403 "queue 'q' in vhost '/' in exclusive
    /// use", or 404 for a queue deleted before the request reached it.
    pub fn consume_error(&self, queue: &str, error: ConsumeError) -> VhostError {
        match error {
            ConsumeError::QueueDeleted => self.no_queue(queue),
            ConsumeError::ExclusiveConsumerExists
            | ConsumeError::QueueHasConsumers
            | ConsumeError::SingleActiveConsumer => VhostError::AccessRefused(format!(
                "{} in exclusive use",
                self.resource("queue", queue)
            )),
        }
    }

    fn route_dead_letter(&self, letter: &DeadLetter, pending: &mut Vec<Pending>) {
        let Some(x) = self.exchange(letter.exchange()) else {
            return;
        };
        let routed = self.route_from(&x, &letter.message);
        // Only queues named in the message's x-death can close a cycle: look those up by name
        // rather than every routed destination by address.
        let cycling: Vec<usize> = letter
            .death_queues()
            .filter_map(|q| std::str::from_utf8(q).ok())
            .filter(|q| letter.cycles_into(q))
            .filter_map(|q| self.queue_entry(q))
            .map(|q| q.binding().destination_key())
            .collect();
        if cycling.is_empty() {
            dispatch(&letter.message, &routed, pending);
            return;
        }
        let kept: Vec<Binding> = routed
            .iter()
            .filter(|b| !cycling.contains(&b.destination_key()))
            .cloned()
            .collect();
        dispatch(&letter.message, &kept, pending);
    }
}
