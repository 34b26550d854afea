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
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;

use parking_lot::Mutex;

use super::codec::Reader;
use super::ledger::Ledger;
use super::persister::{kind, Op, Persister};
use super::segment;
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
    /// Its id in the store (to settle it).
    pub id: StoreId,
    /// The message as published.
    pub message: Arc<Message>,
    /// It was delivered before the restart.
    pub redelivered: bool,
}

/// The segment-log message store.
pub struct SegmentStore {
    tx: SyncSender<Op>,
    next_id: AtomicU64,
    dir: PathBuf,
    /// Unsettled messages found at open, by queue, until the queues take them.
    recovered: Mutex<HashMap<String, Vec<RecoveredMessage>>>,
    fsyncs: Arc<AtomicU64>,
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
        // id -> (queue, message, redelivered), in id (publish) order.
        let mut live: BTreeMap<u64, (String, Message, bool)> = BTreeMap::new();
        let mut max_id = 0;
        let mut last = 0;
        let mut records = 0;
        for (n, path) in segment::list(dir).map_err(io(dir))? {
            last = n;
            ledger.add_segment(n);
            let scanned = segment::scan(&path, |kind, payload| {
                replay(n, kind, payload, &mut ledger, &mut live, &mut max_id);
            })
            .map_err(io(&path))?;
            records += scanned.records;
            if scanned.valid_len == 0 {
                // Moved aside: nothing in it is tracked.
                ledger.removed(&[n]);
            }
        }
        let current = last + 1;
        let file = segment::create(dir, current, true).map_err(io(dir))?;
        let segments = ledger.segment_count();
        let messages = ledger.live_messages();
        let mut recovered: HashMap<String, Vec<RecoveredMessage>> = HashMap::new();
        for (id, (queue, message, redelivered)) in live {
            recovered.entry(queue).or_default().push(RecoveredMessage {
                id: StoreId(id),
                message: Arc::new(message),
                redelivered,
            });
        }
        tracing::info!(
            dir = %dir.display(),
            segments,
            records,
            messages,
            queues = recovered.len(),
            "store: recovered message log"
        );
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity.max(1));
        let fsyncs = Arc::new(AtomicU64::new(0));
        let persister = Persister::new(
            dir.to_path_buf(),
            config.fsync,
            config.segment_bytes,
            current,
            file,
            ledger,
            Arc::clone(&fsyncs),
        );
        std::thread::Builder::new()
            .name("ferromq-persister".into())
            .spawn(move || persister.run(rx))
            .map_err(io(dir))?;
        Ok(Arc::new(SegmentStore {
            tx,
            next_id: AtomicU64::new(max_id + 1),
            dir: dir.to_path_buf(),
            recovered: Mutex::new(recovered),
            fsyncs,
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
                self.send(Op::Settle(m.id.0));
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

    fn send(&self, op: Op) {
        // Blocks while the channel is full: see `persister` for why that is the policy.
        if let Err(mpsc::SendError(op)) = self.tx.send(op) {
            tracing::error!("store: the persister thread is gone; a record was not written");
            if let Op::Enqueue { done: Some(d), .. } = op {
                d(false);
            }
        }
    }
}

impl MessageStore for SegmentStore {
    fn enqueue(&self, queue: &str, message: &Arc<Message>, done: Option<Durable>) -> StoreId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.send(Op::Enqueue {
            id,
            queue: queue.into(),
            message: Arc::clone(message),
            done,
        });
        StoreId(id)
    }

    fn delivered(&self, id: StoreId) {
        self.send(Op::Delivered(id.0));
    }

    fn settle(&self, _queue: &str, id: StoreId) {
        self.send(Op::Settle(id.0));
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn take_recovered(&self, queue: &str) -> Vec<RecoveredMessage> {
        self.recovered.lock().remove(queue).unwrap_or_default()
    }

    fn discard_unclaimed(&self) {
        self.discard_all_unclaimed();
    }

    /// Waits until everything sent so far is durable and reclamation ran.
    fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Op::Barrier(tx));
        let _ = rx.recv();
    }
}

/// Applies one recovered record of segment `seg`.
fn replay(
    seg: u64,
    kind: u8,
    payload: &[u8],
    ledger: &mut Ledger,
    live: &mut BTreeMap<u64, (String, Message, bool)>,
    max_id: &mut u64,
) {
    let mut r = Reader::new(payload);
    let result = match kind {
        kind::ENQUEUE => (|| {
            let id = r.u64()?;
            let queue = r.string()?;
            let message = r.message()?;
            *max_id = (*max_id).max(id);
            ledger.enqueued(seg, id);
            live.insert(id, (queue, message, false));
            Ok(())
        })(),
        kind::SETTLE | kind::DELIVERED => r.u64().map(|id| {
            *max_id = (*max_id).max(id);
            let settle = kind == kind::SETTLE;
            if ledger.referenced(seg, id, settle) {
                if settle {
                    live.remove(&id);
                } else if let Some(m) = live.get_mut(&id) {
                    m.2 = true;
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
