//! Queue lifecycle with RabbitMQ 3.x semantics: `queue.declare` (server-named queues, reserved
//! `amq.` names, exclusive ownership, equivalence of redeclarations), `queue.delete`
//! (`if-unused`, `if-empty`; a missing queue is not an error), `queue.purge`, auto-delete after
//! the last consumer, and exclusive queues going away with their connection.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::args;
use super::bindings::Destination;
use super::{QueueEntry, QueueInfo, QueueSettings, Registry, Vhost, VhostError};
use crate::broker::binding::Subscriber;
use crate::broker::queue::{self, QueueHandle};
use crate::broker::ConnectionId;
use crate::store::definitions::{Change, QueueDef};

impl Vhost {
    /// `queue.declare` by connection `owner`.
    ///
    /// Passive: the queue must exist (404) and be usable by `owner` (405). Otherwise an empty
    /// name gets a server-generated `amq.gen-...` one; other names starting with `amq.` are
    /// refused (403, even for an existing queue, as RabbitMQ does). An existing queue must be
    /// usable by `owner` and declared alike: a different `exclusive` is 405 (RabbitMQ reports
    /// exclusivity as a lock), a different `durable`, `auto_delete` or compared `x-` argument
    /// is 406. A new queue's arguments are checked (406 `invalid arg ...`).
    pub fn declare_queue(
        &self,
        name: &str,
        settings: QueueSettings,
        passive: bool,
        owner: ConnectionId,
    ) -> Result<QueueInfo, VhostError> {
        let mut reg = self.lock_registry();
        if passive {
            let q = self.queue_entry(name).ok_or_else(|| self.no_queue(name))?;
            self.check_access(&q, owner)?;
            // Any declaration renews an x-expires lease (RabbitMQ's `stat` call does).
            q.handle.mark_used();
            return Ok(q.info());
        }
        let name = if name.is_empty() {
            self.unused_server_name()
        } else if name.starts_with("amq.") {
            return Err(VhostError::AccessRefused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        } else {
            name.to_string()
        };
        let resource = self.resource("queue", &name);
        if let Some(q) = self.queue_entry(&name) {
            if q.owner != settings.exclusive.then_some(owner) {
                return Err(self.locked(&name));
            }
            for (key, current, received) in [
                ("durable", q.settings.durable, settings.durable),
                ("auto_delete", q.settings.auto_delete, settings.auto_delete),
            ] {
                if current != received {
                    return Err(args::inequivalent(
                        &resource,
                        key,
                        &format!("'{received}'"),
                        &format!("'{current}'"),
                    ));
                }
            }
            args::assert_queue_equivalent(&resource, &q.settings.arguments, &settings.arguments)?;
            q.handle.mark_used();
            return Ok(q.info());
        }
        self.create_queue(&mut reg, &name, settings, owner)
    }

    /// Creates queue `name` (known not to exist) owned by `owner` if exclusive: its arguments
    /// are checked (406), its actor started (a durable one with the messages the store
    /// recovered for it), its definition recorded if durable.
    pub(super) fn create_queue(
        &self,
        reg: &mut Registry,
        name: &str,
        settings: QueueSettings,
        owner: ConnectionId,
    ) -> Result<QueueInfo, VhostError> {
        let resource = self.resource("queue", name);
        let mut limits = args::queue_limits(&resource, &settings.arguments)?;
        limits.drop_qos0_without_consumer = settings.mqtt_session;
        let name: Arc<str> = name.into();
        let durable = settings.durable && !settings.exclusive;
        let (store, recovered) = if durable {
            // A durable queue recreated at start takes the messages the store recovered.
            (Arc::clone(&self.store), self.store.take_recovered(&name))
        } else {
            (Arc::clone(&self.transient), Vec::new())
        };
        let handle =
            queue::spawn_recovered(&name, limits, store, Arc::clone(&self.host), recovered);
        if durable {
            self.log_definition(Change::Queue(
                name.to_string(),
                QueueDef {
                    auto_delete: settings.auto_delete,
                    arguments: settings.arguments.clone(),
                },
            ));
        }
        let target: Arc<dyn Subscriber> = Arc::new(handle.clone());
        let owner = settings.exclusive.then_some(owner);
        if let Some(owner) = owner {
            reg.exclusive
                .entry(owner)
                .or_default()
                .push(Arc::clone(&name));
        }
        let entry = Arc::new(QueueEntry {
            name: Arc::clone(&name),
            handle,
            target,
            settings,
            owner,
            consumers: AtomicU64::new(0),
            had_consumer: AtomicBool::new(false),
        });
        if entry.handle.answers_publishes() {
            let key = entry.binding().destination_key();
            self.refusing.write().insert(key, entry.handle.clone());
        }
        self.queues.insert(name, Arc::clone(&entry));
        Ok(entry.info())
    }

    /// The queue named `name`, for consuming, getting, acking: 404 if missing, 405 if it is
    /// another connection's exclusive queue.
    pub fn queue(&self, name: &str, requester: ConnectionId) -> Result<QueueHandle, VhostError> {
        let q = self.queue_entry(name).ok_or_else(|| self.no_queue(name))?;
        self.check_access(&q, requester)?;
        Ok(q.handle.clone())
    }

    /// The queue's handle and counts, as for a passive declare.
    pub fn queue_info(&self, name: &str, requester: ConnectionId) -> Result<QueueInfo, VhostError> {
        let q = self.queue_entry(name).ok_or_else(|| self.no_queue(name))?;
        self.check_access(&q, requester)?;
        Ok(q.info())
    }

    /// `queue.delete`: removes the queue and its bindings and stops its actor (consumers are
    /// told through `ConsumerSink::cancelled`); returns the number of ready messages dropped. A
    /// missing queue gives `Ok(0)` (RabbitMQ 3.x). `if_unused`: 406 while it has consumers;
    /// `if_empty`: 406 while it has ready messages (checked with the actor, so messages
    /// published before the call count).
    pub async fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        requester: ConnectionId,
    ) -> Result<u64, VhostError> {
        let Some(q) = self.queue_entry(name) else {
            return Ok(0);
        };
        self.check_access(&q, requester)?;
        self.check_unused(&q, if_unused)?;
        if if_empty && q.handle.counts().await.ready > 0 {
            return Err(VhostError::PreconditionFailed(format!(
                "{} not empty",
                self.resource("queue", name)
            )));
        }
        let dropped = {
            let mut reg = self.lock_registry();
            match self.queue_entry(name) {
                // Deleted (or deleted and redeclared) while the lock was released.
                Some(current) if Arc::ptr_eq(&current, &q) => {}
                _ => return Ok(0),
            }
            self.check_unused(&q, if_unused)?;
            self.remove_queue(&mut reg, &q)
        };
        Ok(dropped.await.unwrap_or(0))
    }

    /// The queue named `name`, if there is one, for the broker's own use (no access check).
    pub fn queue_handle(&self, name: &str) -> Option<QueueHandle> {
        self.queue_entry(name).map(|q| q.handle.clone())
    }

    /// The settings queue `name` was declared (or recovered) with, if there is one, for the
    /// broker's own use (no access check).
    pub fn queue_settings(&self, name: &str) -> Option<QueueSettings> {
        self.queue_entry(name).map(|q| q.settings.clone())
    }

    /// Deletes the queue behind `handle` at once, without `queue.delete`'s preconditions, if
    /// it is still the one registered under its name (one declared anew meanwhile stays). For
    /// the queues the MQTT adapter manages (sessions, shared-subscription groups): when this
    /// returns, the name is free for the next session. Returns whether it was deleted.
    pub fn delete_queue_now(&self, handle: &QueueHandle) -> bool {
        let mut reg = self.lock_registry();
        match self.queue_entry(handle.name()) {
            Some(q) if Arc::ptr_eq(q.handle.name(), handle.name()) => {
                // Nobody waits for the count of dropped messages.
                drop(self.remove_queue(&mut reg, &q));
                true
            }
            _ => false,
        }
    }

    /// `queue.purge`: drops the ready messages; returns how many. 404 / 405 as for `queue`.
    pub async fn purge_queue(
        &self,
        name: &str,
        requester: ConnectionId,
    ) -> Result<u64, VhostError> {
        let handle = self.queue(name, requester)?;
        Ok(handle.purge().await)
    }

    /// A consumer started on queue `queue` (AMQP `basic.consume`).
    pub fn consumer_added(&self, queue: &str) {
        let _reg = self.lock_registry();
        if let Some(q) = self.queue_entry(queue) {
            q.consumers.fetch_add(1, Ordering::Relaxed);
            q.had_consumer.store(true, Ordering::Relaxed);
        }
    }

    /// A consumer of queue `queue` went away (cancelled, or its channel or connection closed).
    /// An auto-delete queue whose last consumer this was is deleted.
    pub fn consumer_removed(&self, queue: &str) {
        let mut reg = self.lock_registry();
        let Some(q) = self.queue_entry(queue) else {
            return;
        };
        let left = q.consumers.load(Ordering::Relaxed).saturating_sub(1);
        q.consumers.store(left, Ordering::Relaxed);
        if left == 0 && q.settings.auto_delete && q.had_consumer.load(Ordering::Relaxed) {
            // Nobody waits for the count of dropped messages.
            drop(self.remove_queue(&mut reg, &q));
        }
    }

    /// The actor of queue `name` stopped after being unused for its `x-expires`: the queue
    /// goes with its bindings (`QueueHost::unused_expired`). A queue of that name whose actor
    /// still runs was declared anew meanwhile and stays.
    pub(super) fn unused_queue_expired(&self, name: &str) {
        let mut reg = self.lock_registry();
        if let Some(q) = self.queue_entry(name) {
            if q.handle.is_closed() {
                drop(self.remove_queue(&mut reg, &q));
            }
        }
    }

    /// Connection `owner` closed: its exclusive queues are deleted.
    pub fn connection_closed(&self, owner: ConnectionId) {
        let mut reg = self.lock_registry();
        for name in reg.exclusive.remove(&owner).unwrap_or_default() {
            if let Some(q) = self.queue_entry(&name) {
                drop(self.remove_queue(&mut reg, &q));
            }
        }
    }

    fn check_unused(&self, q: &QueueEntry, if_unused: bool) -> Result<(), VhostError> {
        if if_unused && q.consumers.load(Ordering::Relaxed) > 0 {
            return Err(VhostError::PreconditionFailed(format!(
                "{} in use",
                self.resource("queue", &q.name)
            )));
        }
        Ok(())
    }

    /// Takes the queue out of the registry with its bindings and stops its actor; the receiver
    /// yields the number of ready messages dropped.
    fn remove_queue(&self, reg: &mut Registry, q: &Arc<QueueEntry>) -> oneshot::Receiver<u64> {
        self.queues.remove(&q.name);
        if q.is_durable() {
            self.log_definition(Change::DeleteQueue(q.name.to_string()));
        }
        if let Some(owner) = q.owner {
            if let Some(names) = reg.exclusive.get_mut(&owner) {
                names.retain(|n| *n != q.name);
                if names.is_empty() {
                    reg.exclusive.remove(&owner);
                }
            }
        }
        if q.handle.answers_publishes() {
            self.refusing.write().remove(&q.binding().destination_key());
        }
        let destination = Destination::Queue(Arc::clone(&q.name));
        let emptied = self.unbind_destination(reg, &destination, &q.binding());
        self.auto_delete_exchanges(reg, emptied);
        q.handle.delete()
    }

    /// `amq.gen-` and 22 characters of base64url (128 random bits), as RabbitMQ names them;
    /// retried on the (improbable) clash with an existing queue.
    fn unused_server_name(&self) -> String {
        loop {
            let name = server_name();
            if !self.queues.contains_key(name.as_str()) {
                return name;
            }
        }
    }
}

fn server_name() -> String {
    format!("amq.gen-{}", random_token())
}

/// 22 characters of base64url carrying 128 random bits: the suffix RabbitMQ gives server-named
/// queues (`amq.gen-`) and generated consumer tags (`amq.ctag-`).
pub fn random_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        // Each `RandomState` is keyed from the process's random seed, so the output is not
        // guessable from the inputs, which only keep it unique.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(n);
        hasher.write_usize(i);
        hasher.write_u128(nanos);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    base64url(&bytes)
}

/// Base64url without padding (RFC 4648 section 5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn server_names_look_like_rabbitmq_ones() {
        let a = server_name();
        let b = server_name();
        assert_ne!(a, b);
        let suffix = a.strip_prefix("amq.gen-").expect("prefix");
        assert_eq!(suffix.len(), 22);
        assert!(suffix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
