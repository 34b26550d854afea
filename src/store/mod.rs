//! Durable storage for queued messages.
//!
//! Queues call the [`MessageStore`] trait at the points where a durable broker must write: a
//! persistent message entering a durable queue (`enqueue`), its first delivery (`delivered`, so
//! the redelivered flag survives a restart) and its settlement (`settle`: ack, drop, dead-letter,
//! expiry, purge, delete). [`MemoryStore`] keeps nothing (transient queues, tests);
//! [`SegmentStore`] writes an append-only segment log through one persister thread that group
//! commits (one fsync per batch) and then releases the waiting publishers' confirms.
//!
//! Layout: `record` (the framing: length, CRC32, kind), `codec` (core `Message` <-> bytes),
//! `segment` (segment files: naming, scanning, torn-tail truncation), `ledger` (which segments
//! may be deleted), `inbox` (the bounded FIFO to the persister; acks do not wake it),
//! `persister` (the thread:
//! batching, fsync, segment rollover and reclamation), `log` (`SegmentStore`, the handle queues
//! hold, and recovery at open), `definitions` (durable exchanges, queues, bindings and MQTT
//! sessions of every vhost in their own small log, fsynced as a group after the declaring vhost
//! released its lock), `vhost_store` (a vhost's view of the one shared log: its queue names
//! qualified by the vhost, `/`'s unchanged), `shutdown` (the clean-shutdown marker).
//!
//! Every vhost shares one `SegmentStore`, so one group commit serves all of them.
//!
//! The redelivered flag: `delivered` records are written but not fsynced before the delivery,
//! so after a crash they may be missing. A graceful stop flushes the log and writes the
//! clean-shutdown marker; a start without it flags every recovered message redelivered (as
//! RabbitMQ's classic queues after a dirty recovery).
//!
//! Knows core messages and names of queues; never protocols or queue internals.

mod codec;
pub mod definitions;
mod inbox;
mod index;
mod ledger;
mod log;
mod persister;
mod record;
mod segment;
pub mod shutdown;
#[cfg(test)]
mod tests;
mod vhost_store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;

use crate::broker::message::Message;

pub use definitions::{Definitions, DefinitionsError};
pub use log::{RecoveredMessage, SegmentStore, StoreError};
pub use vhost_store::VhostStore;

/// Identifies a stored message (unique across the whole store, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreId(pub u64);

/// Called once the enqueue record it came with is durable (`true`), or could not be written
/// (`false`: the publisher's confirm must be a nack). Runs on the persister thread: must not
/// block.
pub type Durable = Box<dyn FnOnce(bool) + Send>;

/// Where persistent messages go. Implementations must not block the calling task for long;
/// a durable one hands work to its persister thread.
pub trait MessageStore: Send + Sync + 'static {
    /// A persistent message entered queue `queue`. `done`, if given, is called once the record
    /// is on disk as the fsync policy defines it (a transient store calls it at once).
    fn enqueue(&self, queue: &str, message: &Arc<Message>, done: Option<Durable>) -> StoreId;
    /// The message was handed to a consumer for the first time (it comes back redelivered).
    /// Not fsynced before the delivery: after a crash the store flags every recovered message
    /// instead (`shutdown`).
    fn delivered(&self, _id: StoreId) {}
    /// The message was acknowledged (or dropped) and may be forgotten. The record may wait
    /// for the next batch (an acknowledged message coming back once after a crash is allowed).
    fn settle(&self, queue: &str, id: StoreId);
    /// `settle` for a record whose removal the client is told about (a retained message
    /// cleared, a QoS 2 packet id released): written at once, and `done`, if given, is
    /// called once it is durable, like an enqueue's.
    fn settle_now(&self, queue: &str, id: StoreId, done: Option<Durable>) {
        self.settle(queue, id);
        if let Some(done) = done {
            done(true);
        }
    }
    /// Starts a run of records sent at once (a queue taking in a batch of publishes): the
    /// store may hold its writer back until [`MessageStore::end_run`], so one group commit
    /// takes the whole run. Each call must be paired with one `end_run` (see [`Run`]).
    fn begin_run(&self) {}
    /// Ends a run started with [`MessageStore::begin_run`].
    fn end_run(&self) {}
    /// True if what is enqueued here survives a restart: publishers wait for `done` before
    /// confirming.
    fn is_durable(&self) -> bool {
        false
    }
    /// The unsettled messages recovered at start for `queue`, in publish order; taken once.
    fn take_recovered(&self, _queue: &str) -> Vec<RecoveredMessage> {
        Vec::new()
    }
    /// Takes the recovered messages of `queue` whose ids are in `ids` out of what the queue
    /// gets with `take_recovered`: another holder owns them now and settles them itself (an
    /// MQTT session's QoS 2 messages in flight at the crash). The rest stay for the queue.
    fn take_recovered_ids(
        &self,
        _queue: &str,
        _ids: &std::collections::HashSet<StoreId>,
    ) -> Vec<RecoveredMessage> {
        Vec::new()
    }
    /// Settles the recovered messages no queue took (their queues are gone).
    fn discard_unclaimed(&self) {}
    /// Blocks until everything handed to the store so far is written (graceful shutdown).
    fn flush(&self) {}
    /// Ready messages per queue level whose bodies stay in memory (0: all); beyond it queues
    /// drop bodies and `read` them back.
    fn memory_window(&self) -> usize {
        0
    }
    /// Reads a stored message back (its body was dropped from memory); `None` if it cannot
    /// be read (logged).
    fn read(&self, _id: StoreId) -> Option<Arc<Message>> {
        None
    }
}

/// A run of records (`begin_run`), ended when dropped, so a panic cannot leave it open.
pub struct Run(Arc<dyn MessageStore>);

impl Run {
    /// Starts a run on `store`.
    pub fn new(store: &Arc<dyn MessageStore>) -> Run {
        store.begin_run();
        Run(Arc::clone(store))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.0.end_run();
    }
}

/// Keeps nothing: transient queues and the in-memory broker.
#[derive(Debug, Default)]
pub struct MemoryStore {
    next: AtomicU64,
}

impl MessageStore for MemoryStore {
    fn enqueue(&self, _queue: &str, _message: &Arc<Message>, done: Option<Durable>) -> StoreId {
        if let Some(done) = done {
            done(true);
        }
        StoreId(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn settle(&self, _queue: &str, _id: StoreId) {}
}

/// When the persister forces written records to disk (`[store] fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Group commit (default): one fsync per batch of records, taken from every queue at
    /// once; confirms for the batch are released after it. Survives power loss.
    #[default]
    Batch,
    /// One fsync per enqueue record, no grouping (for comparison; much slower).
    Always,
    /// Records are written to the OS before confirms are released but never fsynced by us:
    /// survives a crash of the broker process, not of the machine.
    Never,
}

/// Storage settings (`[store]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Keep nothing on disk (tests, `Config::ephemeral`): every queue is transient.
    pub in_memory: bool,
    /// When records are fsynced: `batch` (default), `always`, `never`.
    pub fsync: FsyncPolicy,
    /// A segment file is closed and a new one started once it reaches this size, bytes.
    pub segment_bytes: u64,
    /// Records queued for the persister thread before senders wait (the channel's bound).
    pub queue_capacity: usize,
    /// Ready messages per durable queue (and priority level) whose bodies stay in memory; the
    /// bodies of those behind them are dropped once written and read back from the log as
    /// the queue reaches them (RabbitMQ's lazy / CQv2 behaviour). 0 keeps every body.
    pub memory_window: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            in_memory: false,
            fsync: FsyncPolicy::Batch,
            segment_bytes: 64 * 1024 * 1024,
            queue_capacity: 16 * 1024,
            memory_window: 4096,
        }
    }
}

/// What [`open`] found and started.
pub struct Opened {
    /// The message store durable queues write to.
    pub messages: Arc<dyn MessageStore>,
    /// The definitions log and the definitions it held, by vhost (`None` in memory).
    pub definitions: Option<(Definitions, definitions::VhostSets)>,
    /// The last run stopped cleanly (`shutdown`); always true in memory.
    pub clean: bool,
}

/// Opens the store under `data_dir` as `config` says: in memory, or the segment log and the
/// definitions log, recovered.
pub fn open(data_dir: &std::path::Path, config: &StoreConfig) -> Result<Opened, StoreError> {
    if config.in_memory {
        return Ok(Opened {
            messages: Arc::new(MemoryStore::default()),
            definitions: None,
            clean: true,
        });
    }
    let layout = Layout::new(data_dir);
    let fresh = !layout.messages.exists();
    let clean = shutdown::take_clean(data_dir, fresh).map_err(|source| StoreError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    if !clean {
        tracing::warn!(
            "store: the last run did not shut down cleanly; recovered messages come back \
             flagged redelivered"
        );
    }
    let messages = SegmentStore::open(&layout.messages, config)?;
    let definitions = Definitions::open(&layout.definitions, config.fsync != FsyncPolicy::Never)
        .map_err(StoreError::Definitions)?;
    Ok(Opened {
        messages,
        definitions: Some(definitions),
        clean,
    })
}

/// The directories the store uses under the data dir.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `DATA/messages`: the segment log.
    pub messages: PathBuf,
    /// `DATA/definitions.log`.
    pub definitions: PathBuf,
}

impl Layout {
    /// The layout under `data_dir`.
    pub fn new(data_dir: &std::path::Path) -> Layout {
        Layout {
            messages: data_dir.join("messages"),
            definitions: data_dir.join("definitions.log"),
        }
    }
}
