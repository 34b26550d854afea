//! The ready messages of one queue: one FIFO per priority level (RabbitMQ's priority queue keeps
//! one backing queue per priority the same way). A queue without `x-max-priority` has a single
//! level, so the common case is one `VecDeque`. The "head" of the queue — what is delivered,
//! dropped by `x-max-length` or taken by `basic.get` next — is the front of the highest
//! non-empty level; expiry looks at the front of every level, as `rabbit_priority_queue`'s
//! `dropwhile` does per sub-queue.
//!
//! Owns message order and the ready count and byte size; knows nothing of consumers or the
//! store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::MessageId;
use crate::broker::message::Message;
use crate::store::StoreId;

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

/// Ready messages by priority level.
pub(super) struct Ready {
    /// Index = priority; one level without `x-max-priority`.
    levels: Vec<VecDeque<Entry>>,
    /// No level above this one holds a message, so pops need not scan the empty high levels.
    top: usize,
    len: usize,
    bytes: usize,
}

impl Ready {
    /// Levels `0..=max_priority` (one level for `None`).
    pub fn new(max_priority: Option<u8>) -> Ready {
        let levels = usize::from(max_priority.unwrap_or(0)) + 1;
        Ready {
            levels: (0..levels).map(|_| VecDeque::new()).collect(),
            top: 0,
            len: 0,
            bytes: 0,
        }
    }

    /// The level `message` goes to: its AMQP `priority` capped at the queue's maximum (MQTT
    /// messages and AMQP ones without the property: 0), as `rabbit_priority_queue` does.
    pub fn level_for(&self, message: &Message) -> u8 {
        let max = self.levels.len() - 1;
        if max == 0 {
            return 0;
        }
        let priority = message
            .properties
            .amqp
            .as_ref()
            .and_then(|a| a.priority)
            .unwrap_or(0);
        // `max` <= 255, so the cast back is lossless.
        usize::from(priority).min(max) as u8
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

    /// Appends at the tail of its level (arrival).
    pub fn push_back(&mut self, entry: Entry) {
        let level = self.account_in(&entry);
        self.levels[level].push_back(entry);
    }

    /// Puts back at the head of its level (requeue).
    pub fn push_front(&mut self, entry: Entry) {
        let level = self.account_in(&entry);
        self.levels[level].push_front(entry);
    }

    /// Takes the head: the oldest message of the highest non-empty level.
    pub fn pop_front(&mut self) -> Option<Entry> {
        while self.top > 0 && self.levels[self.top].is_empty() {
            self.top -= 1;
        }
        let entry = self.levels[self.top].pop_front()?;
        self.account_out(&entry);
        Some(entry)
    }

    /// Takes the front of some level if it has expired at `now` (highest level first). Only
    /// fronts are looked at: a message behind an unexpired one waits (RabbitMQ expires
    /// messages only at the head of a queue).
    pub fn pop_expired(&mut self, now: Instant) -> Option<Entry> {
        let level = (0..=self.top)
            .rev()
            .find(|&l| self.levels[l].front().is_some_and(|e| e.expired_at(now)))?;
        let entry = self.levels[level].pop_front()?;
        self.account_out(&entry);
        Some(entry)
    }

    /// The earliest deadline among the fronts of the levels: when `pop_expired` has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.levels[..=self.top]
            .iter()
            .filter_map(|l| l.front().and_then(|e| e.deadline))
            .min()
    }

    /// Takes every ready message (purge, delete).
    pub fn take_all(&mut self) -> Vec<Entry> {
        let mut all = Vec::with_capacity(self.len);
        for level in self.levels.iter_mut().rev() {
            all.extend(level.drain(..));
        }
        self.top = 0;
        self.len = 0;
        self.bytes = 0;
        all
    }

    fn account_in(&mut self, entry: &Entry) -> usize {
        let level = usize::from(entry.level).min(self.levels.len() - 1);
        self.top = self.top.max(level);
        self.len += 1;
        self.bytes += entry.size();
        level
    }

    fn account_out(&mut self, entry: &Entry) {
        self.len -= 1;
        self.bytes -= entry.size();
    }
}
