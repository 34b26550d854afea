//! The persister thread: the only writer of the segment log. It takes what queues sent, in
//! order, as one batch (everything waiting in its `inbox`), appends the records with one
//! `write`, makes them durable with one fsync (group commit: every queue and publisher waiting
//! at that moment shares it), and only then calls the completions that release publisher
//! confirms. After each batch it deletes the segments the ledger says are no longer needed.
//! Settle and delivered records do not wake it (see `inbox`): they go out with the next batch
//! that holds an enqueue, so acks cost no fsync of their own.
//!
//! The inbox is bounded (`[store] queue_capacity` records). Overflow policy: the sender waits
//! for room — backpressure at disk speed. The sender is a queue actor; while it waits it takes
//! no publishes, so publishers wait on its inbox in turn and stop reading their sockets. The
//! thread never waits on anything but the inbox and the disk, so it always makes room again.
//!
//! A failed write or fsync is logged, its batch's completions report failure (the publishers
//! get nacks) and the log moves on to a fresh segment, so the partial write stays a torn tail
//! that recovery drops rather than a hole in the middle of later records.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::codec::Writer;
use super::inbox::Inbox;
use super::index::Index;
use super::ledger::Ledger;
use super::record;
use super::segment::{self, Location};
use super::{Durable, FsyncPolicy, StoreConfig};
use crate::broker::message::Message;

/// Record kinds of the segment log.
pub mod kind {
    /// `id: u64, queue: str, message`.
    pub const ENQUEUE: u8 = 1;
    /// `id: u64`: the message is settled.
    pub const SETTLE: u8 = 2;
    /// `id: u64`: the message was delivered (it comes back redelivered).
    pub const DELIVERED: u8 = 3;
}

/// Bytes encoded into one batch at most, so completions are not held back for long.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What queues send to the persister.
pub enum Op {
    /// A persistent message entered a durable queue.
    Enqueue {
        id: u64,
        queue: Arc<str>,
        message: Arc<Message>,
        done: Option<Durable>,
    },
    /// First delivery of a message.
    Delivered(u64),
    /// The message is settled.
    Settle(u64),
    /// The message is settled, and the sender waits (`done`, released with the batch's
    /// enqueue completions once durable) or at least wants it written now.
    SettleNow(u64, Option<Durable>),
    /// Answered once everything sent before it is durable and reclamation ran (tests, flush
    /// at shutdown).
    Barrier(Sender<()>),
}

/// The writer's state; owned by its thread.
pub struct Persister {
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_bytes: u64,
    file: Option<File>,
    current: u64,
    current_len: u64,
    ledger: Ledger,
    buf: Vec<u8>,
    done: Vec<Durable>,
    barriers: Vec<Sender<()>>,
    /// A write of the current batch failed before its commit: its completions report failure.
    batch_failed: bool,
    /// Fsyncs of segment data done so far (shared with the store handle, for tests and
    /// monitoring: with group commit it grows far slower than the record count).
    fsyncs: Arc<AtomicU64>,
    /// Where written enqueue records are, for reading bodies back.
    index: Arc<Index>,
    /// Enqueue records of this batch: published to `index` once written.
    written: Vec<(u64, u64, Location)>,
}

impl Persister {
    /// A writer that starts segment `current` (already created) in `dir`, with the ledger
    /// recovery rebuilt.
    pub fn new(
        dir: PathBuf,
        config: &StoreConfig,
        current: u64,
        file: File,
        mut ledger: Ledger,
        fsyncs: Arc<AtomicU64>,
        index: Arc<Index>,
    ) -> Persister {
        ledger.add_segment(current);
        let mut p = Persister {
            dir,
            policy: config.fsync,
            segment_bytes: config.segment_bytes.max(segment::MAGIC.len() as u64 + 1),
            file: Some(file),
            current,
            current_len: segment::MAGIC.len() as u64,
            ledger,
            buf: Vec::with_capacity(64 * 1024),
            done: Vec::new(),
            barriers: Vec::new(),
            batch_failed: false,
            fsyncs,
            index,
            written: Vec::new(),
        };
        p.reclaim();
        p
    }

    /// Serves the inbox until the store closes it; then tells senders it is gone.
    pub fn run(mut self, inbox: Arc<Inbox>) {
        /// Marks the inbox when this thread ends, even by a panic, so no sender waits forever.
        struct Gone(Arc<Inbox>);
        impl Drop for Gone {
            fn drop(&mut self) {
                self.0.persister_gone();
            }
        }
        let gone = Gone(inbox);
        let mut ops = Vec::new();
        loop {
            let open = gone.0.take(&mut ops);
            for op in ops.drain(..) {
                self.take(op);
                if self.buf.len() >= MAX_BATCH_BYTES {
                    self.commit();
                }
            }
            self.commit();
            if !open {
                return;
            }
        }
    }

    fn take(&mut self, op: Op) {
        match op {
            Op::Enqueue {
                id,
                queue,
                message,
                done,
            } => {
                self.maybe_roll();
                let start = self.buf.len();
                record::frame(&mut self.buf, kind::ENQUEUE, |out| {
                    let mut w = Writer(out);
                    w.u64(id);
                    w.str(&queue);
                    w.message(&message);
                });
                let location = Location {
                    offset: self.current_len + start as u64,
                    size: u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX),
                };
                self.written.push((id, self.current, location));
                self.ledger.enqueued(self.current, id);
                self.done.extend(done);
                if self.policy == FsyncPolicy::Always {
                    self.commit();
                }
            }
            Op::Settle(id) => self.reference(kind::SETTLE, id),
            Op::SettleNow(id, done) => {
                self.reference(kind::SETTLE, id);
                self.done.extend(done);
            }
            Op::Delivered(id) => self.reference(kind::DELIVERED, id),
            Op::Barrier(tx) => self.barriers.push(tx),
        }
    }

    fn reference(&mut self, kind: u8, id: u64) {
        if !self.ledger.is_live(id) {
            return;
        }
        self.maybe_roll();
        let settle = kind == kind::SETTLE;
        if settle {
            self.index.remove(id);
        }
        if self.ledger.referenced(self.current, id, settle) {
            record::frame(&mut self.buf, kind, |out| Writer(out).u64(id));
        }
    }

    /// Starts a new segment once the current one reached its size.
    fn maybe_roll(&mut self) {
        if self.current_len + self.buf.len() as u64 >= self.segment_bytes {
            if let Err(e) = self.write_out() {
                tracing::error!(error = %e, "store: write or fsync failed before a rollover");
                self.batch_failed = true;
            }
            if let Err(e) = self.roll() {
                tracing::error!(error = %e, "store: cannot start a new segment");
                self.batch_failed = true;
            }
        }
    }

    /// Writes the buffer to the current segment and fsyncs it (per policy).
    fn write_out(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            self.buf.clear();
            return Err(io::Error::other("no segment open after an earlier failure"));
        };
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = file.write_all(&self.buf);
        self.current_len += self.buf.len() as u64;
        self.buf.clear();
        written?;
        if self.policy != FsyncPolicy::Never {
            file.sync_data()?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn roll(&mut self) -> io::Result<()> {
        let next = self.current + 1;
        self.file = None;
        let file = segment::create(&self.dir, next, self.policy != FsyncPolicy::Never)?;
        self.file = Some(file);
        self.current = next;
        self.current_len = segment::MAGIC.len() as u64;
        self.ledger.add_segment(next);
        Ok(())
    }

    /// Ends a batch: write, fsync, release the completions, reclaim, answer barriers.
    fn commit(&mut self) {
        let ok = match self.write_out() {
            Ok(()) => !std::mem::take(&mut self.batch_failed),
            Err(e) => {
                tracing::error!(
                    error = %e,
                    segment = self.current,
                    "store: write or fsync failed; publishes in this batch are not confirmed"
                );
                if let Err(e) = self.roll() {
                    tracing::error!(error = %e, "store: cannot start a new segment");
                }
                self.batch_failed = false;
                false
            }
        };
        if ok {
            // Not those settled within the batch: their settle already passed the index.
            let ledger = &self.ledger;
            self.index.insert_all(
                self.written
                    .drain(..)
                    .filter(|(id, _, _)| ledger.is_live(*id)),
            );
        } else {
            self.written.clear();
        }
        for done in self.done.drain(..) {
            done(ok);
        }
        self.reclaim();
        for b in self.barriers.drain(..) {
            let _ = b.send(());
        }
    }

    /// Deletes the segments nothing needs any more, in rounds (see `ledger`).
    fn reclaim(&mut self) {
        loop {
            let gone = self.ledger.reclaimable(self.current);
            if gone.is_empty() {
                return;
            }
            for n in &gone {
                self.index.segment_deleted(*n);
                let path = segment::path(&self.dir, *n);
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::debug!(segment = %path.display(), "store: segment reclaimed")
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(error = %e, segment = %path.display(), "store: cannot delete segment");
                        return;
                    }
                }
            }
            // A later round may delete the segments holding these ones' settles: this
            // round's deletions must be durable first.
            if self.policy != FsyncPolicy::Never {
                if let Err(e) = segment::sync_dir(&self.dir) {
                    tracing::warn!(error = %e, "store: cannot fsync the segment directory");
                    return;
                }
            }
            self.ledger.removed(&gone);
        }
    }
}
