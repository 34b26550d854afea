//! Persistence interface for queued messages. Everything is in memory today; the durable segment
//! log (issue "Durable storage") implements this trait, so queues and sessions call it at the
//! points where a durable broker must write: enqueue of a persistent message and its settlement.

use std::sync::Arc;

use crate::broker::message::Message;

/// Identifies a stored message within one queue / session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(pub u64);

/// Where persistent messages go. Implementations must not block the calling task for long;
/// a durable one hands work to its persister thread.
pub trait MessageStore: Send + Sync + 'static {
    /// A persistent message entered queue `queue`.
    fn enqueue(&self, queue: &str, message: &Arc<Message>) -> StoreId;
    /// The message was acknowledged (or dropped) and may be forgotten.
    fn settle(&self, queue: &str, id: StoreId);
}

/// Keeps nothing: the in-memory broker.
#[derive(Debug, Default)]
pub struct MemoryStore {
    next: std::sync::atomic::AtomicU64,
}

impl MessageStore for MemoryStore {
    fn enqueue(&self, _queue: &str, _message: &Arc<Message>) -> StoreId {
        StoreId(self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    fn settle(&self, _queue: &str, _id: StoreId) {}
}
