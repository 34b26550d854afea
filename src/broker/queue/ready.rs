//! The ready messages of one queue: one FIFO per priority level (RabbitMQ's priority queue keeps
//! one backing queue per priority the same way). A queue without `x-max-priority` has a single
//! level, so the common case is one `VecDeque`. The "head" of the queue — what is delivered,
//! dropped by `x-max-length` or taken by `basic.get` next — is the front of the highest
//! non-empty level; expiry looks at the front of every level, as `rabbit_priority_queue`'s
//! `dropwhile` does per sub-queue.
//!
//! Owns message order and the ready count and byte size; knows nothing of consumers.
//!
//! Bounded memory (a queue with a `Pager`, i.e. a durable one): only the first `window` ready
//! messages of each level keep their bodies in memory. A stored message pushed behind them
//! drops its body (the store holds it; its size, level and deadline stay, so limits and expiry
//! need no disk) and is read back from the store as the head comes near: every pop refills the
//! window, so the head is always in memory. `paged_from` per level is the lowest position that
//! may lack its body, which keeps refilling O(1) per pop. A body that cannot be read back is
//! logged by the store; its message is dropped and handed to the actor (`take_lost`) to settle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::MessageId;
use crate::broker::message::Message;
use crate::store::{MessageStore, StoreId};

/// A message in the queue (ready or unacknowledged).
pub(super) struct Entry {
    pub id: MessageId,
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// Where the store keeps it (persistent messages only).
    pub stored: Option<StoreId>,
    /// When it expires: its own expiry or the queue's TTL after arrival, whichever is first.
    pub deadline: Option<Instant>,
    /// Its priority level: 0 unless the queue has `x-max-priority`.
    pub level: u8,
}

impl Entry {
    /// Expired strictly before `now`: a deadline equal to the pass's clock still delivers, which
    /// is what lets a TTL of 0 reach a consumer that is ready.
    pub fn expired_before(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d < now)
    }

    /// Expired at `now` (deadline reached).
    pub fn expired_at(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// Body bytes, as `x-max-length-bytes` counts them.
    pub fn size(&self) -> usize {
        self.message.body.len()
    }
}

/// Where a queue's dropped bodies are read back from, and how many stay in memory per level.
pub(super) struct Pager {
    pub store: Arc<dyn MessageStore>,
    pub window: usize,
}

/// A stored message recovered without its body (beyond the memory window).
pub(super) struct Paged {
    pub id: MessageId,
    pub stored: StoreId,
    pub redelivered: bool,
    pub deadline: Option<Instant>,
    pub level: u8,
    pub size: usize,
}

/// A ready message: an `Entry` whose body may be in the store only.
struct Slot {
    id: MessageId,
    message: Option<Arc<Message>>,
    redelivered: bool,
    stored: Option<StoreId>,
    deadline: Option<Instant>,
    level: u8,
    size: usize,
}

impl Slot {
    fn expired_at(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }
}

/// Ready messages by priority level.
pub(super) struct Ready {
    /// Index = priority; one level without `x-max-priority`.
    levels: Vec<VecDeque<Slot>>,
    /// Per level: no slot before this position lacks its body.
    paged_from: Vec<usize>,
    /// No level above this one holds a message, so pops need not scan the empty high levels.
    top: usize,
    len: usize,
    bytes: usize,
    pager: Option<Pager>,
    /// Messages whose bodies could not be read back: dropped, to be settled by the actor.
    lost: Vec<StoreId>,
}

impl Ready {
    /// Levels `0..=max_priority` (one level for `None`); with a pager, bodies beyond its
    /// window live in its store only.
    pub fn new(max_priority: Option<u8>, pager: Option<Pager>) -> Ready {
        let levels = usize::from(max_priority.unwrap_or(0)) + 1;
        Ready {
            levels: (0..levels).map(|_| VecDeque::new()).collect(),
            paged_from: vec![0; levels],
            top: 0,
            len: 0,
            bytes: 0,
            pager: pager.filter(|p| p.window > 0),
            lost: Vec::new(),
        }
    }

    /// The level `message` goes to: its AMQP `priority` capped at the queue's maximum (MQTT
    /// messages and AMQP ones without the property: 0), as `rabbit_priority_queue` does.
    pub fn level_for(&self, message: &Message) -> u8 {
        self.level_for_priority(message.properties.amqp.as_ref().and_then(|a| a.priority))
    }

    /// The level of a message with AMQP priority `priority`.
    pub fn level_for_priority(&self, priority: Option<u8>) -> u8 {
        let max = self.levels.len() - 1;
        if max == 0 {
            return 0;
        }
        // `max` <= 255, so the cast back is lossless.
        usize::from(priority.unwrap_or(0)).min(max) as u8
    }

    /// Ready messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is ready.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Body bytes of the ready messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends at the tail of its level (arrival); beyond the memory window a stored
    /// message's body is dropped.
    pub fn push_back(&mut self, entry: Entry) {
        let size = entry.size();
        let mut slot = Slot {
            id: entry.id,
            message: Some(entry.message),
            redelivered: entry.redelivered,
            stored: entry.stored,
            deadline: entry.deadline,
            level: entry.level,
            size,
        };
        let level = self.account_in(slot.level, size);
        if let Some(pager) = &self.pager {
            if slot.stored.is_some() && self.levels[level].len() >= pager.window {
                slot.message = None;
            }
        }
        self.push_slot(level, slot);
    }

    /// Appends a recovered message whose body is in the store only.
    pub fn push_back_paged(&mut self, p: Paged) {
        let level = self.account_in(p.level, p.size);
        let slot = Slot {
            id: p.id,
            message: None,
            redelivered: p.redelivered,
            stored: Some(p.stored),
            deadline: p.deadline,
            level: p.level,
            size: p.size,
        };
        self.push_slot(level, slot);
        self.refill(level);
    }

    fn push_slot(&mut self, level: usize, slot: Slot) {
        let q = &mut self.levels[level];
        if slot.message.is_none() {
            self.paged_from[level] = self.paged_from[level].min(q.len());
        } else if self.paged_from[level] == q.len() {
            self.paged_from[level] += 1;
        }
        q.push_back(slot);
    }

    /// Puts back at the head of its level (requeue).
    pub fn push_front(&mut self, entry: Entry) {
        let size = entry.size();
        let level = self.account_in(entry.level, size);
        self.levels[level].push_front(Slot {
            id: entry.id,
            message: Some(entry.message),
            redelivered: entry.redelivered,
            stored: entry.stored,
            deadline: entry.deadline,
            level: entry.level,
            size,
        });
        self.paged_from[level] += 1;
    }

    /// Takes the head: the oldest message of the highest non-empty level.
    pub fn pop_front(&mut self) -> Option<Entry> {
        loop {
            while self.top > 0 && self.levels[self.top].is_empty() {
                self.top -= 1;
            }
            let level = self.top;
            let slot = self.levels[level].pop_front()?;
            if let Some(entry) = self.take_slot(level, slot) {
                return Some(entry);
            }
        }
    }

    /// Takes the front of some level if it has expired at `now` (highest level first). Only
    /// fronts are looked at: a message behind an unexpired one waits (RabbitMQ expires
    /// messages only at the head of a queue).
    pub fn pop_expired(&mut self, now: Instant) -> Option<Entry> {
        loop {
            let level = (0..=self.top)
                .rev()
                .find(|&l| self.levels[l].front().is_some_and(|e| e.expired_at(now)))?;
            let slot = self.levels[level].pop_front()?;
            if let Some(entry) = self.take_slot(level, slot) {
                return Some(entry);
            }
        }
    }

    /// The earliest deadline among the fronts of the levels: when `pop_expired` has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.levels[..=self.top]
            .iter()
            .filter_map(|l| l.front().and_then(|e| e.deadline))
            .min()
    }

    /// Takes every ready message (purge, delete): only where they are stored matters, so no
    /// body is read back.
    pub fn take_all(&mut self) -> Vec<Option<StoreId>> {
        let mut all = Vec::with_capacity(self.len);
        for level in self.levels.iter_mut().rev() {
            all.extend(level.drain(..).map(|s| s.stored));
        }
        self.paged_from.iter_mut().for_each(|p| *p = 0);
        self.top = 0;
        self.len = 0;
        self.bytes = 0;
        all
    }

    /// Messages dropped because their bodies could not be read back (see the module doc).
    pub fn take_lost(&mut self) -> Vec<StoreId> {
        std::mem::take(&mut self.lost)
    }

    /// A slot just popped from `level`: accounted out, the window refilled, and made an entry
    /// (its body read back if needed; `None` if that failed).
    fn take_slot(&mut self, level: usize, slot: Slot) -> Option<Entry> {
        self.len -= 1;
        self.bytes -= slot.size;
        self.paged_from[level] = self.paged_from[level].saturating_sub(1);
        let message = match slot.message {
            Some(m) => Some(m),
            None => self.read_back(slot.stored),
        };
        self.refill(level);
        Some(Entry {
            id: slot.id,
            message: message?,
            redelivered: slot.redelivered,
            stored: slot.stored,
            deadline: slot.deadline,
            level: slot.level,
        })
    }

    fn read_back(&mut self, stored: Option<StoreId>) -> Option<Arc<Message>> {
        let id = stored?;
        let read = self.pager.as_ref().and_then(|p| p.store.read(id));
        if read.is_none() {
            self.lost.push(id);
        }
        read
    }

    /// Reads back the bodies of `level`'s first `window` messages that lack them.
    fn refill(&mut self, level: usize) {
        let Some(window) = self.pager.as_ref().map(|p| p.window) else {
            return;
        };
        while self.paged_from[level] < window.min(self.levels[level].len()) {
            let at = self.paged_from[level];
            if self.levels[level][at].message.is_none() {
                let stored = self.levels[level][at].stored;
                match self.read_back(stored) {
                    Some(m) => self.levels[level][at].message = Some(m),
                    None => {
                        // Lost (logged by the store): out of the queue, settled by the actor.
                        if let Some(slot) = self.levels[level].remove(at) {
                            self.len -= 1;
                            self.bytes -= slot.size;
                        }
                        continue;
                    }
                }
            }
            self.paged_from[level] += 1;
        }
    }

    fn account_in(&mut self, level: u8, size: usize) -> usize {
        let level = usize::from(level).min(self.levels.len() - 1);
        self.top = self.top.max(level);
        self.len += 1;
        self.bytes += size;
        level
    }
}
