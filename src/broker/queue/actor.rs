//! The queue actor: a task that owns one queue's ready messages, consumers and unacknowledged
//! deliveries. Publishes arrive on a bounded inbox (full = the publisher waits); acks, rejects,
//! consumes and cancels arrive on a control channel that is served first, so a consumer's ack
//! never waits behind a flood of publishes. The control channel needs no bound of its own: the
//! acks and rejects in it are bounded by the deliveries made, which the consumers' prefetch
//! windows bound, and consume/cancel come one per request of a client.
//!
//! Expiry: each message gets a deadline when it enters (its own expiry, or the queue's
//! `x-message-ttl` after arrival if sooner). As in RabbitMQ, messages expire only at the head of
//! the queue (the head of each priority level): a timer set for the earliest head deadline
//! dead-letters them even with no consumer, and an expired message met on its way to a consumer
//! or to basic.get is dead-lettered instead; a message behind an unexpired head waits for its
//! turn. A TTL of 0 still lets a message go to a consumer that can take it at once (deadlines
//! compare strictly within the pass that enqueued it).
//!
//! Length limits are judged as RabbitMQ's queue process judges them, one publish at a time:
//! before a publish is refused (`reject-publish[-dlx]`) or the head dropped (`drop-head`), the
//! consumers get the messages of the current batch they can take, since RabbitMQ would have
//! delivered each earlier publish before looking at the next.
//!
//! Dead letters (rejected with requeue=false, expired, dropped or refused by a length limit) are
//! built here (`dead_letter`) and routed by the `QueueHost`, never under a lock of ours; the
//! original is settled in the store once handed over (RabbitMQ's at-most-once dead lettering).
//!
//! `x-expires`: while the queue has no consumers, a second timer runs from its last use (a get,
//! a redeclaration, the last consumer leaving); when it fires the actor stops and asks its host
//! to remove it. Queue deletion and expiry drop messages without dead-lettering them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::consumer::Consumers;
use super::dead_letter::{self, DeathReason, QueueHost};
use super::handle::{Admission, Control, Inbound};
use super::ready::{Entry, Paged, Pager, Ready};
use super::{MessageId, Overflow, QueueCounts, QueueDelivery, QueueLimits, QueueStats};
use crate::broker::binding::Pending;
use crate::broker::message::Message;
use crate::broker::queue::ConsumerTag;
use crate::store::{Durable, MessageStore, RecoveredMessage, StoreId};

/// What woke the actor.
enum Event {
    Control(Control),
    Publish(Inbound),
    Timer,
    Closed,
}

/// Whether the actor goes on after a control request.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(super) struct Actor {
    name: Arc<str>,
    limits: QueueLimits,
    store: Arc<dyn MessageStore>,
    /// Whether new persistent messages are written (`QueueHandle::set_persisting`).
    persisting: Arc<AtomicBool>,
    host: Arc<dyn QueueHost>,
    stats: Arc<QueueStats>,
    ready: Ready,
    /// Keyed with `IdHasher`: ids are ours, and SipHash per delivery and ack showed in profiles.
    unacked: HashMap<MessageId, (Entry, ConsumerTag), super::id_hash::IdBuildHasher>,
    consumers: Consumers,
    next_id: u64,
    /// When the queue expires if it stays unused (`x-expires`); counts only while it has no
    /// consumers.
    unused_deadline: Option<Instant>,
    /// Dead-letter deliveries that met a full inbox: awaited on a task of their own at the end
    /// of the pass.
    dead_letter_waits: Vec<Pending>,
}

impl Actor {
    pub fn new(
        name: Arc<str>,
        limits: QueueLimits,
        (store, persisting): (Arc<dyn MessageStore>, Arc<AtomicBool>),
        host: Arc<dyn QueueHost>,
        stats: Arc<QueueStats>,
        recovered: Vec<RecoveredMessage>,
    ) -> Actor {
        let now = Instant::now();
        // Durable queues keep a bounded window of bodies in memory (see `ready`).
        let pager = (store.is_durable() && store.memory_window() > 0).then(|| Pager {
            store: Arc::clone(&store),
            window: store.memory_window(),
        });
        let mut actor = Actor {
            name,
            ready: Ready::new(limits.max_priority, pager),
            consumers: Consumers::new(limits.single_active_consumer),
            // Declaration is the first use.
            unused_deadline: limits.expires.map(|e| now + e),
            limits,
            store,
            persisting,
            host,
            stats,
            unacked: HashMap::default(),
            next_id: 1,
            dead_letter_waits: Vec::new(),
        };
        // Messages recovered from the store come first, in publish order, already stored. A
        // queue TTL counts from the restart (the arrival instant is not stored).
        for r in recovered {
            match r.message {
                Some(message) => {
                    let mut entry = actor.new_entry(message, now);
                    entry.stored = Some(r.id);
                    entry.redelivered = r.redelivered;
                    actor.ready.push_back(entry);
                }
                None => {
                    let id = MessageId(actor.next_id);
                    actor.next_id += 1;
                    let paged = Paged {
                        id,
                        stored: r.id,
                        redelivered: r.redelivered,
                        deadline: actor.deadline(r.expires_at, now),
                        level: actor.ready.level_for_priority(r.priority),
                        size: r.size,
                    };
                    actor.ready.push_back_paged(paged);
                }
            }
        }
        actor.publish_stats();
        actor
    }

    pub async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Inbound>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        loop {
            let timer = self.next_wake();
            // Evaluated even when its branch is disabled, hence a placeholder instant.
            let wake = tokio::time::Instant::from_std(timer.unwrap_or_else(Instant::now));
            let event = tokio::select! {
                biased;
                c = control.recv() => c.map_or(Event::Closed, Event::Control),
                m = inbox.recv() => m.map_or(Event::Closed, Event::Publish),
                () = tokio::time::sleep_until(wake), if timer.is_some() => Event::Timer,
            };
            let now = Instant::now();
            match event {
                Event::Control(c) => {
                    if self.serve(c, &mut inbox, now) == Flow::Stop {
                        self.hand_off_dead_letter_waits();
                        return;
                    }
                }
                Event::Publish(m) => {
                    // One group commit for the whole batch (`store::Run`).
                    let _run = crate::store::Run::new(&self.store);
                    self.enqueue(m, now);
                    // Drain what is already there before dispatching: one pass per batch.
                    while let Ok(m) = inbox.try_recv() {
                        self.enqueue(m, now);
                    }
                }
                Event::Timer if self.unused_since_deadline(now) => {
                    // A consume, get or redeclaration may be waiting: they are uses.
                    while let Ok(c) = control.try_recv() {
                        if self.serve(c, &mut inbox, now) == Flow::Stop {
                            self.hand_off_dead_letter_waits();
                            return;
                        }
                    }
                    if self.unused_since_deadline(now) {
                        break;
                    }
                }
                Event::Timer => {}
                Event::Closed => return,
            }
            self.end_pass(now);
        }
        // Unused for its x-expires: stop, then let the host remove it. The receivers go first,
        // so the host sees this queue's handle closed and cannot mistake a newer queue of the
        // same name for it.
        self.drop_all();
        self.hand_off_dead_letter_waits();
        drop(inbox);
        drop(control);
        self.host.unused_expired(&self.name);
    }

    /// One control request, after taking in what was published before it: what a client
    /// published before a request must count for it (a purge after publishes empties them too).
    fn serve(&mut self, c: Control, inbox: &mut mpsc::Receiver<Inbound>, now: Instant) -> Flow {
        if let Ok(m) = inbox.try_recv() {
            let _run = crate::store::Run::new(&self.store);
            self.enqueue(m, now);
            while let Ok(m) = inbox.try_recv() {
                self.enqueue(m, now);
            }
        }
        self.on_control(c, now)
    }

    fn on_control(&mut self, c: Control, now: Instant) -> Flow {
        match c {
            Control::Consume { consumer, reply } => {
                self.stats.consumes_pending.fetch_sub(1, Ordering::AcqRel);
                if let Some(reply) = reply {
                    let admitted = self.consumers.admit(consumer.exclusive);
                    // A caller that stopped waiting would never cancel it: do not register.
                    if reply.send(admitted).is_err() || admitted.is_err() {
                        return Flow::Continue;
                    }
                }
                self.consumers.add(consumer);
            }
            Control::Cancel {
                tag,
                requeue_unacked,
                done,
            } => {
                if self.consumers.remove(&tag) && self.consumers.is_empty() {
                    // The last consumer leaving is a use: the x-expires countdown starts now.
                    self.mark_used(now);
                }
                if requeue_unacked {
                    let ids: Vec<MessageId> = self
                        .unacked
                        .iter()
                        .filter(|(_, (_, owner))| *owner == tag)
                        .map(|(id, _)| *id)
                        .collect();
                    self.requeue(ids);
                    self.drop_head(now);
                }
                let _ = done.send(());
            }
            Control::Ack(id) => {
                if let Some(entry) = self.settle(id) {
                    self.forget(entry);
                }
            }
            Control::Reject { id, requeue } => {
                if requeue {
                    self.requeue(vec![id]);
                    self.drop_head(now);
                } else if let Some(entry) = self.settle(id) {
                    self.dead_letter(entry, DeathReason::Rejected);
                }
            }
            Control::Get {
                owner,
                no_ack,
                reply,
            } => {
                self.mark_used(now);
                let got = self.take_one(now).map(|entry| {
                    let delivery = self.delivery(&entry, owner.clone());
                    if no_ack {
                        self.forget(entry);
                    } else {
                        self.record_delivery(&entry);
                        self.unacked.insert(entry.id, (entry, owner));
                    }
                    (delivery, self.ready.len() as u64)
                });
                let _ = reply.send(got);
            }
            Control::Resume => {}
            Control::MarkUsed => self.mark_used(now),
            Control::Purge(reply) => {
                // Purged messages are not dead-lettered (RabbitMQ).
                let all = self.ready.take_all();
                let n = all.len() as u64;
                for stored in all {
                    self.forget_stored(stored);
                }
                let _ = reply.send(n);
            }
            Control::Counts(reply) => {
                // Count what is left once the messages just taken in had their chance to go.
                self.dispatch(now);
                self.expire_heads(Instant::now());
                let _ = reply.send(QueueCounts {
                    ready: self.ready.len() as u64,
                    unacked: self.unacked.len() as u64,
                    consumers: self.consumers.len() as u64,
                });
            }
            Control::Delete(reply) => {
                let n = self.drop_all();
                for consumer in self.consumers.take_all() {
                    consumer.sink.cancelled(&consumer.tag);
                }
                self.publish_stats();
                let _ = reply.send(n);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Takes in one publish under the queue's length limits (RabbitMQ's
    /// `maybe_deliver_or_enqueue` and `maybe_drop_head`).
    fn enqueue(&mut self, inbound: Inbound, now: Instant) {
        let Inbound { message, verdict } = inbound;
        if self.limits.drop_qos0_without_consumer
            && message.qos == 0
            && self.consumers.is_empty()
            && self.stats.consumes_pending.load(Ordering::Acquire) == 0
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            answer(verdict, Admission::Accepted);
            return;
        }
        if self.limits.overflow.refuses() && self.would_overflow(message.body.len()) {
            self.dispatch(now);
            if self.would_overflow(message.body.len()) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if self.limits.overflow == Overflow::RejectPublishDlx {
                    self.republish(&message, DeathReason::MaxLen);
                }
                answer(verdict, Admission::Refused);
                return;
            }
        }
        let (entry, verdict) = self.entry(message, now, verdict);
        self.ready.push_back(entry);
        answer(verdict, Admission::Accepted);
        self.drop_head(now);
    }

    /// With `drop-head`, dead-letters (reason `maxlen`) messages from the head while the queue
    /// is over a limit: after a publish, and after a requeue (RabbitMQ's `requeue_and_run`
    /// calls `maybe_drop_head` too).
    fn drop_head(&mut self, now: Instant) {
        if self.limits.overflow != Overflow::DropHead || !self.over_limit() {
            return;
        }
        // RabbitMQ hands a publish to a waiting consumer before it enqueues it, so only what
        // no consumer can take is over the limit.
        self.dispatch(now);
        while self.over_limit() {
            let Some(head) = self.ready.pop_front() else {
                break;
            };
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.dead_letter(head, DeathReason::MaxLen);
        }
    }

    /// A new entry for an arriving message; a persistent one is written to the store. A
    /// publisher's verdict goes to the store with it when there is one, answered once the
    /// message is durable (a confirm after the fsync); otherwise it is handed back.
    fn entry(
        &mut self,
        message: Arc<Message>,
        now: Instant,
        mut verdict: Option<oneshot::Sender<Admission>>,
    ) -> (Entry, Option<oneshot::Sender<Admission>>) {
        let mut entry = self.new_entry(message, now);
        if entry.message.qos > 0 && self.persisting.load(Ordering::Relaxed) {
            let done = verdict.take().map(|tx| -> Durable {
                Box::new(move |ok| {
                    // A record that could not be written is a refusal: the confirm is a nack.
                    let _ = tx.send(if ok {
                        Admission::Accepted
                    } else {
                        Admission::Refused
                    });
                })
            });
            entry.stored = Some(self.store.enqueue(&self.name, &entry.message, done));
        }
        (entry, verdict)
    }

    fn new_entry(&mut self, message: Arc<Message>, now: Instant) -> Entry {
        let id = MessageId(self.next_id);
        self.next_id += 1;
        let deadline = self.deadline(message.expires_at, now);
        let level = self.ready.level_for(&message);
        Entry {
            id,
            message,
            redelivered: false,
            stored: None,
            deadline,
            level,
        }
    }

    /// When a message arriving `now` expires: its own expiry or the queue's TTL, whichever is
    /// first.
    fn deadline(&self, expires_at: Option<Instant>, now: Instant) -> Option<Instant> {
        let ttl_deadline = self.limits.message_ttl.map(|ttl| now + ttl);
        match (expires_at, ttl_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A stored message goes to a consumer that must ack it, for the first time: the store
    /// records it, so after a restart it comes back redelivered.
    fn record_delivery(&self, entry: &Entry) {
        if let (Some(stored), false) = (entry.stored, entry.redelivered) {
            self.store.delivered(stored);
        }
    }

    /// Adding a message of `size` bytes would break a limit (`will_overflow`).
    fn would_overflow(&self, size: usize) -> bool {
        self.limits
            .max_length
            .is_some_and(|max| self.ready.len() + 1 > max)
            || self
                .limits
                .max_length_bytes
                .is_some_and(|max| self.ready.bytes() + size > max)
    }

    /// The ready messages break a limit (`over_max_length`).
    fn over_limit(&self) -> bool {
        self.limits
            .max_length
            .is_some_and(|max| self.ready.len() > max)
            || self
                .limits
                .max_length_bytes
                .is_some_and(|max| self.ready.bytes() > max)
    }

    /// Hands ready messages to consumers while one has credit: round-robin, or to the single
    /// active consumer.
    fn dispatch(&mut self, now: Instant) {
        while !self.ready.is_empty() {
            let Some(slot) = self.consumers.next_with_credit() else {
                return;
            };
            let Some(entry) = self.ready.pop_front() else {
                return;
            };
            if entry.expired_before(now) {
                self.dead_letter(entry, DeathReason::Expired);
                continue;
            }
            let consumer = self.consumers.at_mut(slot);
            let delivery = QueueDelivery {
                queue: Arc::clone(&self.name),
                consumer: consumer.tag.clone(),
                id: entry.id,
                message: Arc::clone(&entry.message),
                redelivered: entry.redelivered,
                stored: entry.stored,
            };
            if consumer.no_ack {
                consumer.sink.deliver(delivery);
                self.forget(entry);
            } else {
                consumer.unacked += 1;
                let tag = consumer.tag.clone();
                consumer.sink.deliver(delivery);
                self.record_delivery(&entry);
                self.unacked.insert(entry.id, (entry, tag));
            }
        }
    }

    /// Dead-letters expired messages at the heads of the priority levels.
    fn expire_heads(&mut self, now: Instant) {
        while let Some(entry) = self.ready.pop_expired(now) {
            self.dead_letter(entry, DeathReason::Expired);
        }
    }

    /// The next ready message that has not expired (expired ones are dead-lettered on the way).
    fn take_one(&mut self, now: Instant) -> Option<Entry> {
        while let Some(entry) = self.ready.pop_front() {
            if entry.expired_at(now) {
                self.dead_letter(entry, DeathReason::Expired);
                continue;
            }
            return Some(entry);
        }
        None
    }

    fn delivery(&self, entry: &Entry, consumer: ConsumerTag) -> QueueDelivery {
        QueueDelivery {
            queue: Arc::clone(&self.name),
            consumer,
            id: entry.id,
            message: Arc::clone(&entry.message),
            redelivered: entry.redelivered,
            stored: entry.stored,
        }
    }

    /// Removes an unacked message; returns it.
    fn settle(&mut self, id: MessageId) -> Option<Entry> {
        let (entry, owner) = self.unacked.remove(&id)?;
        if let Some(c) = self.consumers.get_mut(&owner) {
            c.unacked = c.unacked.saturating_sub(1);
        }
        Some(entry)
    }

    /// Puts unacked messages back at the head of their level in their original order, marked
    /// redelivered (AMQP basic.reject/recover; a consumer that went away). They keep their
    /// deadline.
    fn requeue(&mut self, mut ids: Vec<MessageId>) {
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(mut entry) = self.settle(id) {
                entry.redelivered = true;
                self.ready.push_front(entry);
            }
        }
    }

    /// The message leaves the queue dead: republished to the dead-letter exchange if the queue
    /// has one, then settled.
    fn dead_letter(&mut self, entry: Entry, reason: DeathReason) {
        self.republish(&entry.message, reason);
        self.forget(entry);
    }

    fn republish(&mut self, message: &Message, reason: DeathReason) {
        let Some(dlx) = &self.limits.dead_letter_exchange else {
            return;
        };
        let letter = dead_letter::dead_letter(
            message,
            reason,
            &self.name,
            dlx,
            self.limits.dead_letter_routing_key.as_deref(),
            SystemTime::now(),
        );
        self.host.dead_letter(letter, &mut self.dead_letter_waits);
    }

    /// The message leaves the queue for good: the store may drop it.
    fn forget(&self, entry: Entry) {
        self.forget_stored(entry.stored);
    }

    fn forget_stored(&self, stored: Option<StoreId>) {
        if let Some(stored) = stored {
            self.store.settle(&self.name, stored);
        }
    }

    /// Drops every message, ready or not (delete, expiry); returns the number that were ready.
    fn drop_all(&mut self) -> u64 {
        let ready = self.ready.take_all();
        let n = ready.len() as u64;
        for stored in ready {
            self.forget_stored(stored);
        }
        for (_, (entry, _)) in std::mem::take(&mut self.unacked) {
            self.forget(entry);
        }
        n
    }

    fn mark_used(&mut self, now: Instant) {
        if let Some(expires) = self.limits.expires {
            self.unused_deadline = Some(now + expires);
        }
    }

    /// No consumers, and unused since its x-expires deadline.
    fn unused_since_deadline(&self, now: Instant) -> bool {
        self.consumers.is_empty() && self.unused_deadline.is_some_and(|d| d <= now)
    }

    /// When a timer must wake the actor: the earliest head deadline, or the x-expires deadline
    /// while the queue has no consumers.
    fn next_wake(&self) -> Option<Instant> {
        let unused = self.unused_deadline.filter(|_| self.consumers.is_empty());
        match (self.ready.next_deadline(), unused) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn end_pass(&mut self, now: Instant) {
        self.dispatch(now);
        for lost in self.ready.take_lost() {
            self.store.settle(&self.name, lost);
        }
        self.expire_heads(Instant::now());
        self.publish_stats();
        self.hand_off_dead_letter_waits();
    }

    /// Dead letters that met a full inbox are awaited in order, off this task: this queue never
    /// waits on another one's inbox (two queues dead-lettering into each other would wait for
    /// each other forever). One task per pass that had any, and only then.
    fn hand_off_dead_letter_waits(&mut self) {
        if self.dead_letter_waits.is_empty() {
            return;
        }
        let waits = std::mem::take(&mut self.dead_letter_waits);
        tokio::spawn(async move {
            for wait in waits {
                wait.await;
            }
        });
    }

    fn publish_stats(&self) {
        self.stats
            .ready
            .store(self.ready.len() as u64, Ordering::Relaxed);
        self.stats
            .unacked
            .store(self.unacked.len() as u64, Ordering::Relaxed);
        self.stats
            .consumers
            .store(self.consumers.len() as u64, Ordering::Relaxed);
    }
}

fn answer(verdict: Option<oneshot::Sender<Admission>>, admission: Admission) {
    if let Some(verdict) = verdict {
        // The publisher may have gone; nobody else wants the answer.
        let _ = verdict.send(admission);
    }
}
