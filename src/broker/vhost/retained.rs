//! Retained messages of a vhost, and their durability. The retained store itself is in memory
//! (`RetainStore`, matched against new subscriptions); with a durable message store every
//! retained message is also written to it under a name no client can declare
//! ([`RETAINED`], in the reserved `amq.` namespace), and the one it replaces is settled there,
//! so the log holds exactly the current retained messages and gives them back at start.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::Vhost;
use crate::broker::message::Message;
use crate::broker::queue::{Admission, Verdict};

/// The store's name for the retained messages of a vhost.
pub const RETAINED: &str = "amq.mqtt.retained";

impl Vhost {
    /// Keeps or clears the retained message of a message's topic when it carries the retain
    /// flag; an empty body deletes [MQTT-3.3.1-6]. Used by MQTT publishes and by AMQP publishes
    /// to the MQTT exchange with `x-mqtt-retain: true`. With a durable store, the returned
    /// verdict resolves once the new retained message, or the clearing of the old one, is on
    /// disk (a publisher's acknowledgement waits for it).
    pub fn update_retained(&self, message: &Arc<Message>) -> Option<Verdict> {
        if !message.retain {
            return None;
        }
        let keep = (!message.body.is_empty()).then(|| Arc::clone(message));
        if !self.store.is_durable() {
            self.retained.set(&message.topic, keep);
            return None;
        }
        // One lock over the memory and disk updates, so they happen in the same order.
        let mut ids = self.retained_ids.lock();
        self.retained.set(&message.topic, keep.clone());
        let old = ids.remove(&message.topic);
        let (tx, rx) = oneshot::channel();
        let done: crate::store::Durable = Box::new(move |written| {
            let _ = tx.send(written);
        });
        let verdict: Verdict = Box::pin(async move {
            match rx.await {
                Ok(true) => Admission::Accepted,
                _ => Admission::Refused,
            }
        });
        let Some(message) = keep else {
            // Cleared: the settle of the old copy is what must be durable (acknowledgements
            // of settles otherwise ride on a later batch).
            self.store.settle_now(RETAINED, old?, Some(done));
            return Some(verdict);
        };
        if let Some(old) = old {
            // Written before the new copy, so durable once the new copy is.
            self.store.settle(RETAINED, old);
        }
        let id = self.store.enqueue(RETAINED, &message, Some(done));
        ids.insert(message.topic.clone(), id);
        Some(verdict)
    }

    /// Takes back the retained messages the store recovered (at start, before
    /// `MessageStore::discard_unclaimed`). Recovered in the order they were written, so a
    /// later one for a topic replaces an earlier one (which is settled: only a crash between
    /// the two writes leaves both).
    pub fn restore_retained(&self) {
        let mut ids = self.retained_ids.lock();
        let mut restored = 0usize;
        for r in self.store.take_recovered(RETAINED) {
            let message = match r.message {
                Some(m) => m,
                None => match self.store.read(r.id) {
                    Some(m) => m,
                    None => continue,
                },
            };
            let topic = message.topic.clone();
            if let Some(old) = ids.insert(topic.clone(), r.id) {
                self.store.settle(RETAINED, old);
            }
            self.retained.set(&topic, Some(message));
            restored += 1;
        }
        if restored > 0 {
            tracing::info!(vhost = %self.name, count = ids.len(), "retained messages restored");
        }
    }
}
