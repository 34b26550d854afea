//! `VhostStore`: one vhost's view of the shared message store. Every vhost's durable queues
//! write to the one segment log (so one group commit serves all of them); this wrapper
//! qualifies their queue names with the vhost so two vhosts' queues of the same name stay
//! apart in the log, and, after an unclean shutdown, flags what it recovers as redelivered.
//!
//! Names of `/` are kept as they are (data directories written before vhosts were durable
//! load unchanged); other vhosts' are `amq.vhost/<len>/<vhost>/<queue>`: `amq.` is reserved
//! (no client can declare such a queue in `/`), and the length makes the split unambiguous
//! whatever characters the vhost name holds. A vhost with an incarnation (one added by
//! `ferromq vhost add`) has `amq.vhost#<incarnation>/<len>/<vhost>/<queue>`: deleted and added
//! again it is a new incarnation, whose queues do not find the old one's messages (those are
//! settled at the next start as anything no queue claims).

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
    pub fn new(
        inner: Arc<dyn MessageStore>,
        vhost: &str,
        incarnation: Option<&str>,
        unclean: bool,
    ) -> VhostStore {
        VhostStore {
            inner,
            prefix: key_prefix(vhost, incarnation),
            unclean,
        }
    }

    fn key(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }
}

/// What `vhost`'s queue names are prefixed with in the shared store.
pub fn key_prefix(vhost: &str, incarnation: Option<&str>) -> String {
    match incarnation {
        _ if vhost == super::definitions::DEFAULT_VHOST => String::new(),
        None => format!("amq.vhost/{}/{vhost}/", vhost.len()),
        // `#` cannot follow `amq.vhost` in a key of the form above.
        Some(i) => format!("amq.vhost#{i}/{}/{vhost}/", vhost.len()),
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

    fn settle_now(&self, queue: &str, id: StoreId, done: Option<Durable>) {
        self.inner.settle_now(&self.key(queue), id, done);
    }

    fn begin_run(&self) {
        self.inner.begin_run();
    }

    fn end_run(&self) {
        self.inner.end_run();
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

    fn take_recovered_ids(
        &self,
        queue: &str,
        ids: &std::collections::HashSet<StoreId>,
    ) -> Vec<RecoveredMessage> {
        let mut taken = self.inner.take_recovered_ids(&self.key(queue), ids);
        if self.unclean {
            // Re-sent with DUP anyway; flagged for the record as `take_recovered` does.
            for m in taken.iter_mut().filter(|m| !m.redelivered) {
                m.redelivered = true;
                self.inner.delivered(m.id);
            }
        }
        taken
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::{Origin, Properties};
    use crate::store::{SegmentStore, StoreConfig};

    fn message(body: &'static str) -> Arc<Message> {
        Arc::new(Message {
            exchange: "".into(),
            topic: "q".into(),
            body: bytes::Bytes::from_static(body.as_bytes()),
            qos: 1,
            retain: false,
            expires_at: None,
            properties: Properties::default(),
            origin: Origin::default(),
        })
    }

    fn bodies(store: &VhostStore, queue: &str) -> Vec<(String, bool)> {
        store
            .take_recovered(queue)
            .into_iter()
            .map(|m| {
                let body = m.message.expect("body in memory").body.clone();
                (String::from_utf8_lossy(&body).into_owned(), m.redelivered)
            })
            .collect()
    }

    #[test]
    fn vhosts_keep_queues_of_the_same_name_apart_and_unclean_starts_flag_redelivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig::default();
        {
            let inner: Arc<dyn MessageStore> =
                SegmentStore::open(dir.path(), &config).expect("open");
            let root = VhostStore::new(Arc::clone(&inner), "/", None, false);
            let prod = VhostStore::new(Arc::clone(&inner), "prod", None, false);
            // A vhost whose name looks like a qualified key of another must not collide.
            let odd = VhostStore::new(Arc::clone(&inner), "prod/3", None, false);
            root.enqueue("q", &message("root"), None);
            let delivered = prod.enqueue("q", &message("prod"), None);
            prod.delivered(delivered);
            odd.enqueue("q", &message("odd"), None);
            let settled = prod.enqueue("q", &message("settled"), None);
            prod.settle("q", settled);
            inner.flush();
        }
        let inner: Arc<dyn MessageStore> = SegmentStore::open(dir.path(), &config).expect("reopen");
        // `/`'s names are the log's own (data written before vhosts were durable).
        assert_eq!(inner.take_recovered("q").len(), 1);
        let prod = VhostStore::new(Arc::clone(&inner), "prod", None, false);
        assert_eq!(bodies(&prod, "q"), [("prod".to_string(), true)]);
        let odd = VhostStore::new(Arc::clone(&inner), "prod/3", None, true);
        assert_eq!(
            bodies(&odd, "q"),
            [("odd".to_string(), true)],
            "after an unclean stop everything recovered is flagged"
        );
        inner.flush();
        drop((prod, odd, inner));
        // The flag given at the unclean start was recorded: it holds at the next start.
        let inner: Arc<dyn MessageStore> = SegmentStore::open(dir.path(), &config).expect("reopen");
        let odd = VhostStore::new(Arc::clone(&inner), "prod/3", None, false);
        assert_eq!(bodies(&odd, "q"), [("odd".to_string(), true)]);
    }

    #[test]
    fn another_incarnation_of_a_vhost_does_not_see_the_old_ones_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig::default();
        {
            let inner: Arc<dyn MessageStore> =
                SegmentStore::open(dir.path(), &config).expect("open");
            let first = VhostStore::new(Arc::clone(&inner), "dev", Some("a1"), false);
            first.enqueue("q", &message("first"), None);
            let legacy = VhostStore::new(Arc::clone(&inner), "dev", None, false);
            legacy.enqueue("q", &message("legacy"), None);
            inner.flush();
        }
        let inner: Arc<dyn MessageStore> = SegmentStore::open(dir.path(), &config).expect("reopen");
        let second = VhostStore::new(Arc::clone(&inner), "dev", Some("b2"), false);
        assert!(
            bodies(&second, "q").is_empty(),
            "a new incarnation starts empty"
        );
        let first = VhostStore::new(Arc::clone(&inner), "dev", Some("a1"), false);
        assert_eq!(bodies(&first, "q"), [("first".to_string(), false)]);
        let legacy = VhostStore::new(Arc::clone(&inner), "dev", None, false);
        assert_eq!(bodies(&legacy, "q"), [("legacy".to_string(), false)]);
    }
}
