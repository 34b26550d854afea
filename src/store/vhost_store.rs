//! `VhostStore`: one vhost's view of the shared message store. Every vhost's durable queues
//! write to the one segment log (so one group commit serves all of them); this wrapper
//! qualifies their queue names with the vhost so two vhosts' queues of the same name stay
//! apart in the log, and, after an unclean shutdown, flags what it recovers as redelivered.
//!
//! Names of `/` are kept as they are (data directories written before vhosts were durable
//! load unchanged); other vhosts' are `amq.vhost/<len>/<vhost>/<queue>`: `amq.` is reserved
//! (no client can declare such a queue in `/`), and the length makes the split unambiguous
//! whatever characters the vhost name holds.

use std::sync::Arc;

use super::{Durable, MessageStore, RecoveredMessage, StoreId};
use crate::broker::message::Message;

/// A vhost's handle on the shared store.
pub struct VhostStore {
    inner: Arc<dyn MessageStore>,
    /// Prepended to queue names (empty for `/`).
    prefix: String,
    /// The broker did not shut down cleanly last time: every recovered message may have been
    /// delivered (its `delivered` record is not fsynced before the delivery), so it comes back
    /// redelivered (AMQP 0-9-1 `redelivered`, MQTT DUP is per broker run).
    unclean: bool,
}

impl VhostStore {
    /// `vhost`'s view of `inner`; `unclean`: the last shutdown was not clean.
    pub fn new(inner: Arc<dyn MessageStore>, vhost: &str, unclean: bool) -> VhostStore {
        VhostStore {
            inner,
            prefix: key_prefix(vhost),
            unclean,
        }
    }

    fn key(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }
}

/// What `vhost`'s queue names are prefixed with in the shared store.
pub fn key_prefix(vhost: &str) -> String {
    if vhost == super::definitions::DEFAULT_VHOST {
        String::new()
    } else {
        format!("amq.vhost/{}/{vhost}/", vhost.len())
    }
}

impl MessageStore for VhostStore {
    fn enqueue(&self, queue: &str, message: &Arc<Message>, done: Option<Durable>) -> StoreId {
        if self.prefix.is_empty() {
            return self.inner.enqueue(queue, message, done);
        }
        self.inner.enqueue(&self.key(queue), message, done)
    }

    fn delivered(&self, id: StoreId) {
        self.inner.delivered(id);
    }

    fn settle(&self, queue: &str, id: StoreId) {
        if self.prefix.is_empty() {
            return self.inner.settle(queue, id);
        }
        self.inner.settle(&self.key(queue), id);
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    fn take_recovered(&self, queue: &str) -> Vec<RecoveredMessage> {
        let mut recovered = self.inner.take_recovered(&self.key(queue));
        if self.unclean {
            for m in recovered.iter_mut().filter(|m| !m.redelivered) {
                m.redelivered = true;
                // Written, so the flag holds after the next restart too, clean or not.
                self.inner.delivered(m.id);
            }
        }
        recovered
    }

    fn discard_unclaimed(&self) {
        self.inner.discard_unclaimed();
    }

    fn flush(&self) {
        self.inner.flush();
    }

    fn memory_window(&self) -> usize {
        self.inner.memory_window()
    }

    fn read(&self, id: StoreId) -> Option<Arc<Message>> {
        self.inner.read(id)
    }
}
