//! `SegmentStore`: the durable [`MessageStore`]. Queues call it from their tasks; it assigns
//! store ids and hands records to the persister thread (see `persister` for batching, fsync and
//! the channel's overflow policy).
//!
//! Opening it recovers: every segment is scanned oldest first (a torn or corrupt tail is
//! truncated and logged, see `segment::scan`), enqueue records minus settle records give the
//! unsettled messages of each queue in publish order, delivered records give their redelivered
//! flags, and the ledger is rebuilt so reclamation picks up where it stopped. Writing then goes
//! on in a fresh segment. The vhost takes each durable queue's messages with `take_recovered`
//! when it recreates the queue, and `discard_unclaimed` settles those of queues that no longer
//! exist.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

use super::codec::Reader;
use super::inbox::Inbox;
use super::index::Index;
use super::ledger::Ledger;
use super::persister::{kind, Op, Persister};
use super::segment::{self, Location};
use super::{Durable, MessageStore, StoreConfig, StoreId};
use crate::broker::message::Message;

/// Errors opening the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or a segment could not be read or created.
    #[error("cannot open the message store in {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The definitions log could not be opened.
    #[error(transparent)]
    Definitions(#[from] super::DefinitionsError),
}

/// A message recovered for a queue.
#[derive(Debug, Clone)]
pub struct RecoveredMessage {
    /// Its id in the store (to settle it, or `read` it).
    pub id: StoreId,
    /// The message as published; `None` beyond the memory window (read it back when needed).
    pub message: Option<Arc<Message>>,
    /// It was delivered before the restart.
    pub redelivered: bool,
    /// Its body size (what `x-max-length-bytes` counts).
    pub size: usize,
    /// Its AMQP priority, if it has one.
    pub priority: Option<u8>,
    /// When it expires.
    pub expires_at: Option<std::time::Instant>,
}

impl RecoveredMessage {
    fn new(id: u64, message: Message) -> RecoveredMessage {
        RecoveredMessage {
            id: StoreId(id),
            redelivered: false,
            size: message.body.len(),
            priority: message.properties.amqp.as_ref().and_then(|a| a.priority),
            expires_at: message.expires_at,
            message: Some(Arc::new(message)),
        }
    }
}

/// The segment-log message store.
pub struct SegmentStore {
    inbox: Arc<Inbox>,
    next_id: AtomicU64,
    dir: PathBuf,
    /// Unsettled messages found at open, by queue, until the queues take them.
    recovered: Mutex<HashMap<String, Vec<RecoveredMessage>>>,
    fsyncs: Arc<AtomicU64>,
    index: Arc<Index>,
    memory_window: usize,
}

impl SegmentStore {
    /// Opens (creating if needed) the log in `dir`, recovers it and starts the persister.
    pub fn open(dir: &Path, config: &StoreConfig) -> Result<Arc<SegmentStore>, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut ledger = Ledger::default();
        let mut replay = Replay {
            ledger: &mut ledger,
            live: BTreeMap::new(),
            per_queue: HashMap::new(),
            locations: HashMap::new(),
            max_id: 0,
            window: config.memory_window,
        };
        let mut last = 0;
        let mut records = 0;
        for (n, path) in segment::list(dir).map_err(io(dir))? {
            last = n;
            replay.ledger.add_segment(n);
            let scanned = segment::scan(&path, |kind, payload, location| {
                replay.record(n, kind, payload, location);
            })
            .map_err(io(&path))?;
            records += scanned.records;
            if scanned.valid_len == 0 {
                // Moved aside: nothing in it is tracked.
                replay.ledger.removed(&[n]);
            }
        }
        let Replay {
            live,
            locations,
            max_id,
            ..
        } = replay;
        let index = Arc::new(Index::default());
        index.insert_all(locations.into_iter().map(|(id, (seg, loc))| (id, seg, loc)));
        let current = last + 1;
        let file = segment::create(dir, current, true).map_err(io(dir))?;
        let segments = ledger.segment_count();
        let messages = ledger.live_messages();
        let mut recovered: HashMap<String, Vec<RecoveredMessage>> = HashMap::new();
        for (_, (queue, m)) in live {
            recovered.entry(queue).or_default().push(m);
        }
        tracing::info!(
            dir = %dir.display(),
            segments,
            records,
            messages,
            queues = recovered.len(),
            "store: recovered message log"
        );
        let inbox = Arc::new(Inbox::new(config.queue_capacity));
        let fsyncs = Arc::new(AtomicU64::new(0));
        let persister = Persister::new(
            dir.to_path_buf(),
            config,
            current,
            file,
            ledger,
            Arc::clone(&fsyncs),
            Arc::clone(&index),
        );
        let taken = Arc::clone(&inbox);
        std::thread::Builder::new()
            .name("ferromq-persister".into())
            .spawn(move || persister.run(taken))
            .map_err(io(dir))?;
        Ok(Arc::new(SegmentStore {
            inbox,
            next_id: AtomicU64::new(max_id + 1),
            dir: dir.to_path_buf(),
            recovered: Mutex::new(recovered),
            fsyncs,
            index,
            memory_window: config.memory_window,
        }))
    }

    /// Settles every recovered message no queue took (its queue is gone), so its segments
    /// can be reclaimed.
    fn discard_all_unclaimed(&self) {
        let left = std::mem::take(&mut *self.recovered.lock());
        for (queue, messages) in left {
            tracing::info!(
                queue,
                messages = messages.len(),
                "store: dropping recovered messages of a queue that no longer exists"
            );
            for m in messages {
                self.send(Op::Settle(m.id.0), false);
            }
        }
    }

    /// Data fsyncs done since open (group commit makes this far smaller than the records).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// The directory of the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hands `op` to the persister, waking it if `urgent` (see `inbox`).
    fn send(&self, op: Op, urgent: bool) {
        // Blocks while the inbox is full: see `persister` for why that is the policy.
        if let Err(op) = self.inbox.send(op, urgent) {
            tracing::error!("store: the persister thread is gone; a record was not written");
            match op {
                Op::Enqueue { done: Some(d), .. } | Op::SettleNow(_, Some(d)) => d(false),
                _ => {}
            }
        }
    }
}

impl Drop for SegmentStore {
    /// The persister writes what is left and stops.
    fn drop(&mut self) {
        self.inbox.close();
    }
}

impl MessageStore for SegmentStore {
    fn enqueue(&self, queue: &str, message: &Arc<Message>, done: Option<Durable>) -> StoreId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.send(
            Op::Enqueue {
                id,
                queue: queue.into(),
                message: Arc::clone(message),
                done,
            },
            true,
        );
        StoreId(id)
    }

    fn delivered(&self, id: StoreId) {
        self.send(Op::Delivered(id.0), false);
    }

    fn settle(&self, _queue: &str, id: StoreId) {
        self.send(Op::Settle(id.0), false);
    }

    fn settle_now(&self, _queue: &str, id: StoreId, done: Option<Durable>) {
        self.send(Op::SettleNow(id.0, done), true);
    }

    fn begin_run(&self) {
        self.inbox.hold();
    }

    fn end_run(&self) {
        self.inbox.release();
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn take_recovered(&self, queue: &str) -> Vec<RecoveredMessage> {
        self.recovered.lock().remove(queue).unwrap_or_default()
    }

    fn take_recovered_ids(
        &self,
        queue: &str,
        ids: &std::collections::HashSet<StoreId>,
    ) -> Vec<RecoveredMessage> {
        let mut recovered = self.recovered.lock();
        let Some(messages) = recovered.get_mut(queue) else {
            return Vec::new();
        };
        let (taken, kept) = std::mem::take(messages)
            .into_iter()
            .partition(|m| ids.contains(&m.id));
        *messages = kept;
        taken
    }

    fn discard_unclaimed(&self) {
        self.discard_all_unclaimed();
    }

    /// Waits until everything sent so far is durable and reclamation ran.
    fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Op::Barrier(tx), true);
        let _ = rx.recv();
    }

    fn memory_window(&self) -> usize {
        self.memory_window
    }

    fn read(&self, id: StoreId) -> Option<Arc<Message>> {
        if !self.index.contains(id.0) {
            // Its record may still be on its way to the file: wait for the persister once.
            self.flush();
        }
        match self.index.read(&self.dir, id.0) {
            Ok(Some(m)) => Some(Arc::new(m)),
            Ok(None) => {
                tracing::error!(id = id.0, "store: message to read back is not in the log");
                None
            }
            Err(e) => {
                tracing::error!(id = id.0, error = %e, "store: cannot read a message back");
                None
            }
        }
    }
}

/// Recovery state while the segments are scanned.
struct Replay<'a> {
    ledger: &'a mut Ledger,
    /// id -> (queue, message), in id (publish) order.
    live: BTreeMap<u64, (String, RecoveredMessage)>,
    /// Live messages per queue, to keep bodies only for the first `window` of each.
    per_queue: HashMap<String, usize>,
    locations: HashMap<u64, (u64, Location)>,
    max_id: u64,
    window: usize,
}

impl Replay<'_> {
    /// Applies one recovered record of segment `seg`.
    fn record(&mut self, seg: u64, kind: u8, payload: &[u8], location: Location) {
        let mut r = Reader::new(payload);
        let result = match kind {
            kind::ENQUEUE => (|| {
                let id = r.u64()?;
                let queue = r.string()?;
                let message = r.message()?;
                self.max_id = self.max_id.max(id);
                self.ledger.enqueued(seg, id);
                self.locations.insert(id, (seg, location));
                let count = self.per_queue.entry(queue.clone()).or_default();
                *count += 1;
                let mut m = RecoveredMessage::new(id, message);
                if self.window > 0 && *count > self.window {
                    // A backlog is not loaded whole: the queue reads it back as it drains.
                    m.message = None;
                }
                self.live.insert(id, (queue, m));
                Ok(())
            })(),
            kind::SETTLE | kind::DELIVERED => r.u64().map(|id| {
                self.max_id = self.max_id.max(id);
                let settle = kind == kind::SETTLE;
                if self.ledger.referenced(seg, id, settle) {
                    if settle {
                        self.locations.remove(&id);
                        if let Some((queue, _)) = self.live.remove(&id) {
                            if let Some(n) = self.per_queue.get_mut(&queue) {
                                *n = n.saturating_sub(1);
                            }
                        }
                    } else if let Some((_, m)) = self.live.get_mut(&id) {
                        m.redelivered = true;
                    }
                }
            }),
            _ => {
                tracing::warn!(segment = seg, kind, "store: unknown record kind skipped");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(segment = seg, error = %e, "store: undecodable record skipped");
        }
    }
}
