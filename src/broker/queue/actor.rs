//! The queue actor: a task that owns one queue's ready messages, consumers and unacknowledged
//! deliveries. Publishes arrive on a bounded inbox (full = the publisher waits); acks, rejects,
//! consumes and cancels arrive on a control channel that is served first, so a consumer's ack
//! never waits behind a flood of publishes. The control channel needs no bound of its own: the
//! acks and rejects in it are bounded by the deliveries made, which the consumers' prefetch
//! windows bound, and consume/cancel come one per request of a client.
//!
//! Expiry: each message gets a deadline when it enters (its own expiry, or the queue's
//! `x-message-ttl` after arrival if sooner). Expired messages are skipped when they would be
//! delivered and dropped from the head of the queue on a timer, as RabbitMQ does; a message
//! behind the head waits for its turn. A TTL of 0 still lets a message go to a consumer that can
//! take it at once (deadlines compare strictly within the pass that enqueued it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::consumer::{Consumer, ConsumerSink, ConsumerTag};
use super::{MessageId, Overflow, QueueCounts, QueueDelivery, QueueLimits, QueueStats};
use crate::broker::binding::{Delivery, Pending, Subscriber};
use crate::broker::message::Message;
use crate::store::{MessageStore, StoreId};

/// Capacity of a queue's publish inbox.
const INBOX_CAPACITY: usize = 1024;

/// A handle to a running queue actor; cheap to clone.
#[derive(Clone)]
pub struct QueueHandle {
    name: Arc<str>,
    inbox: mpsc::Sender<Arc<Message>>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<QueueStats>,
}

enum Control {
    Consume(Consumer),
    Cancel {
        tag: ConsumerTag,
        requeue_unacked: bool,
        done: oneshot::Sender<()>,
    },
    Ack(MessageId),
    Reject {
        id: MessageId,
        requeue: bool,
    },
    Purge(oneshot::Sender<u64>),
    Get {
        owner: ConsumerTag,
        no_ack: bool,
        reply: oneshot::Sender<Option<(QueueDelivery, u64)>>,
    },
    /// A consumer's sink has room again: dispatch.
    Resume,
    Counts(oneshot::Sender<QueueCounts>),
    /// Drop everything, tell the consumers, answer the number of ready messages, stop.
    Delete(oneshot::Sender<u64>),
}

/// What woke the actor.
enum Event {
    Control(Control),
    Publish(Arc<Message>),
    Timer,
    Closed,
}

/// Starts a queue actor named `name`; it stops when every handle is dropped or on `delete`. Persistent
/// messages (qos >= 1) are recorded in `store` on arrival and settled there when acknowledged
/// or dropped, so a durable store can recover exactly the unsettled ones.
pub fn spawn(name: &str, limits: QueueLimits, store: Arc<dyn MessageStore>) -> QueueHandle {
    let (inbox, inbox_rx) = mpsc::channel(INBOX_CAPACITY);
    let (control, control_rx) = mpsc::unbounded_channel();
    let stats = Arc::new(QueueStats::default());
    let name: Arc<str> = name.into();
    let actor = Actor {
        name: Arc::clone(&name),
        limits,
        store,
        stats: Arc::clone(&stats),
        ready: VecDeque::new(),
        ready_bytes: 0,
        unacked: HashMap::new(),
        consumers: Vec::new(),
        next_consumer: 0,
        next_id: 1,
    };
    tokio::spawn(actor.run(inbox_rx, control_rx));
    QueueHandle {
        name,
        inbox,
        control,
        stats,
    }
}

impl QueueHandle {
    /// The queue's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Live counters (ready, unacked, consumers).
    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Enqueues a message; `Some(pending)` if the inbox is full and the caller must await it.
    pub fn publish(&self, message: Arc<Message>) -> Option<Pending> {
        match self.inbox.try_send(message) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(message)) => {
                let inbox = self.inbox.clone();
                Some(Box::pin(async move {
                    let _ = inbox.send(message).await;
                }))
            }
            // The queue was deleted: the message goes nowhere, as for an unbound exchange.
            Err(mpsc::error::TrySendError::Closed(_)) => None,
        }
    }

    /// Adds a consumer with a prefetch window (0 = unlimited); `no_ack` settles on delivery.
    pub fn consume(
        &self,
        tag: ConsumerTag,
        sink: Arc<dyn ConsumerSink>,
        prefetch: u32,
        no_ack: bool,
    ) {
        let _ = self.control.send(Control::Consume(Consumer {
            tag,
            sink,
            prefetch,
            no_ack,
            unacked: 0,
        }));
    }

    /// Removes a consumer; its unacknowledged messages are requeued when `requeue_unacked`
    /// (a consumer that goes away), or left for `ack`/`reject` (AMQP basic.cancel keeps them).
    pub async fn cancel(&self, tag: ConsumerTag, requeue_unacked: bool) {
        let (done, wait) = oneshot::channel();
        let sent = self.control.send(Control::Cancel {
            tag,
            requeue_unacked,
            done,
        });
        if sent.is_ok() {
            let _ = wait.await;
        }
    }

    /// Removes a consumer without waiting for the queue to confirm it (for callers that cannot
    /// await). Requests on one handle are handled in the order they were made.
    pub fn cancel_nowait(&self, tag: ConsumerTag, requeue_unacked: bool) {
        let (done, _) = oneshot::channel();
        let _ = self.control.send(Control::Cancel {
            tag,
            requeue_unacked,
            done,
        });
    }

    /// Settles a delivered message.
    pub fn ack(&self, id: MessageId) {
        let _ = self.control.send(Control::Ack(id));
    }

    /// Rejects a delivered message: requeued (marked redelivered) or dropped.
    pub fn reject(&self, id: MessageId, requeue: bool) {
        let _ = self.control.send(Control::Reject { id, requeue });
    }

    /// Takes one ready message (AMQP basic.get) with the number still ready after it, or
    /// `None` when empty. Unless `no_ack`, it stays unacknowledged under `owner` until
    /// `ack`/`reject`.
    pub async fn get(&self, owner: ConsumerTag, no_ack: bool) -> Option<(QueueDelivery, u64)> {
        let (reply, wait) = oneshot::channel();
        self.control
            .send(Control::Get {
                owner,
                no_ack,
                reply,
            })
            .ok()?;
        wait.await.ok().flatten()
    }

    /// Tells the queue a consumer whose sink reported no room can take deliveries again.
    pub fn resume(&self) {
        let _ = self.control.send(Control::Resume);
    }

    /// Drops every ready message; returns how many.
    pub async fn purge(&self) -> u64 {
        let (reply, wait) = oneshot::channel();
        if self.control.send(Control::Purge(reply)).is_err() {
            return 0;
        }
        wait.await.unwrap_or(0)
    }

    /// Exact counters: the actor answers after taking in everything published before this call
    /// (unlike `stats`, which lags by up to one actor pass). For `queue.declare-ok`.
    pub async fn counts(&self) -> QueueCounts {
        let (reply, wait) = oneshot::channel();
        if self.control.send(Control::Counts(reply)).is_err() {
            return QueueCounts::default();
        }
        wait.await.unwrap_or_default()
    }

    /// Stops the queue: its messages are dropped (and settled in the store), its consumers are
    /// told through `ConsumerSink::cancelled`, and later publishes go nowhere. The returned
    /// receiver yields the number of ready messages dropped; it may be ignored.
    pub fn delete(&self) -> oneshot::Receiver<u64> {
        let (reply, wait) = oneshot::channel();
        let _ = self.control.send(Control::Delete(reply));
        wait
    }

    /// True once the actor has stopped (deleted, or its task ended).
    pub fn is_closed(&self) -> bool {
        self.control.is_closed()
    }
}

impl std::fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Subscriber for QueueHandle {
    fn deliver(&self, message: &Arc<Message>, _delivery: Delivery) -> Option<Pending> {
        self.publish(Arc::clone(message))
    }

    fn identity(&self) -> Option<&str> {
        None
    }
}

struct Entry {
    id: MessageId,
    message: Arc<Message>,
    redelivered: bool,
    /// Where the store keeps it (persistent messages only).
    stored: Option<StoreId>,
    /// When it expires: its own expiry or the queue's TTL after arrival, whichever is first.
    deadline: Option<Instant>,
}

impl Entry {
    /// Expired strictly before `now`: a deadline equal to the pass's clock still delivers, which
    /// is what lets a TTL of 0 reach a consumer that is ready.
    fn expired_before(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d < now)
    }
}

/// Whether the actor goes on after a control request.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

struct Actor {
    name: Arc<str>,
    limits: QueueLimits,
    store: Arc<dyn MessageStore>,
    stats: Arc<QueueStats>,
    ready: VecDeque<Entry>,
    ready_bytes: usize,
    unacked: HashMap<MessageId, (Entry, ConsumerTag)>,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    next_id: u64,
}

impl Actor {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Arc<Message>>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        loop {
            let timer = self.ready.front().and_then(|e| e.deadline);
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
                    // What a client published before this request must count for it
                    // (a purge after publishes empties them too): take the inbox first.
                    while let Ok(m) = inbox.try_recv() {
                        self.enqueue(m, now);
                    }
                    if self.on_control(c, now) == Flow::Stop {
                        return;
                    }
                }
                Event::Publish(m) => {
                    self.enqueue(m, now);
                    // Drain what is already there before dispatching: one pass per batch.
                    while let Ok(m) = inbox.try_recv() {
                        self.enqueue(m, now);
                    }
                }
                Event::Timer => {}
                Event::Closed => return,
            }
            self.dispatch(now);
            self.expire_head(Instant::now());
            self.publish_stats();
        }
    }

    fn on_control(&mut self, c: Control, now: Instant) -> Flow {
        match c {
            Control::Consume(consumer) => self.consumers.push(consumer),
            Control::Cancel {
                tag,
                requeue_unacked,
                done,
            } => {
                self.consumers.retain(|c| c.tag != tag);
                if requeue_unacked {
                    let ids: Vec<MessageId> = self
                        .unacked
                        .iter()
                        .filter(|(_, (_, owner))| *owner == tag)
                        .map(|(id, _)| *id)
                        .collect();
                    self.requeue(ids);
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
                } else if let Some(entry) = self.settle(id) {
                    self.forget(entry);
                }
            }
            Control::Get {
                owner,
                no_ack,
                reply,
            } => {
                let got = self.take_one(now).map(|entry| {
                    let delivery = QueueDelivery {
                        queue: Arc::clone(&self.name),
                        consumer: owner.clone(),
                        id: entry.id,
                        message: Arc::clone(&entry.message),
                        redelivered: entry.redelivered,
                    };
                    if no_ack {
                        self.forget(entry);
                    } else {
                        self.unacked.insert(entry.id, (entry, owner));
                    }
                    (delivery, self.ready.len() as u64)
                });
                let _ = reply.send(got);
            }
            Control::Resume => {}
            Control::Purge(reply) => {
                let n = self.ready.len() as u64;
                for entry in std::mem::take(&mut self.ready) {
                    self.forget(entry);
                }
                self.ready_bytes = 0;
                let _ = reply.send(n);
            }
            Control::Counts(reply) => {
                // Count what is left once the messages just taken in had their chance to go.
                self.dispatch(now);
                self.expire_head(Instant::now());
                let _ = reply.send(QueueCounts {
                    ready: self.ready.len() as u64,
                    unacked: self.unacked.len() as u64,
                    consumers: self.consumers.len() as u64,
                });
            }
            Control::Delete(reply) => {
                let n = self.ready.len() as u64;
                for entry in std::mem::take(&mut self.ready) {
                    self.forget(entry);
                }
                for (_, (entry, _)) in std::mem::take(&mut self.unacked) {
                    self.forget(entry);
                }
                for consumer in std::mem::take(&mut self.consumers) {
                    consumer.sink.cancelled(&consumer.tag);
                }
                self.ready_bytes = 0;
                self.publish_stats();
                let _ = reply.send(n);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn enqueue(&mut self, message: Arc<Message>, now: Instant) {
        let size = message.body.len();
        if self.over_limit(size) {
            match self.limits.overflow {
                Overflow::RejectPublish => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Overflow::DropHead => {
                    while self.over_limit(size) {
                        let Some(old) = self.ready.pop_front() else {
                            break;
                        };
                        self.ready_bytes -= old.message.body.len();
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        self.forget(old);
                    }
                }
            }
        }
        let id = MessageId(self.next_id);
        self.next_id += 1;
        self.ready_bytes += size;
        let stored = (message.qos > 0).then(|| self.store.enqueue(&self.name, &message));
        let ttl_deadline = self.limits.message_ttl.map(|ttl| now + ttl);
        let deadline = match (message.expires_at, ttl_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.ready.push_back(Entry {
            id,
            message,
            redelivered: false,
            stored,
            deadline,
        });
    }

    /// Drops expired messages from the head of the queue (RabbitMQ expires from the head only).
    fn expire_head(&mut self, now: Instant) {
        while self
            .ready
            .front()
            .is_some_and(|e| e.deadline.is_some_and(|d| d <= now))
        {
            if let Some(entry) = self.ready.pop_front() {
                self.ready_bytes -= entry.message.body.len();
                self.forget(entry);
            }
        }
    }

    fn over_limit(&self, incoming: usize) -> bool {
        self.limits
            .max_length
            .is_some_and(|max| self.ready.len() + 1 > max)
            || self
                .limits
                .max_length_bytes
                .is_some_and(|max| self.ready_bytes + incoming > max)
    }

    /// Hands ready messages to consumers round-robin while any has credit.
    fn dispatch(&mut self, now: Instant) {
        while !self.ready.is_empty() && !self.consumers.is_empty() {
            let n = self.consumers.len();
            let Some(slot) = (0..n)
                .map(|i| (self.next_consumer + i) % n)
                .find(|&i| self.consumers[i].has_credit())
            else {
                return;
            };
            self.next_consumer = (slot + 1) % n;
            let Some(entry) = self.ready.pop_front() else {
                return;
            };
            self.ready_bytes -= entry.message.body.len();
            if entry.expired_before(now) {
                self.forget(entry);
                continue;
            }
            let consumer = &mut self.consumers[slot];
            let delivery = QueueDelivery {
                queue: Arc::clone(&self.name),
                consumer: consumer.tag.clone(),
                id: entry.id,
                message: Arc::clone(&entry.message),
                redelivered: entry.redelivered,
            };
            if consumer.no_ack {
                consumer.sink.deliver(delivery);
                self.forget(entry);
            } else {
                consumer.unacked += 1;
                self.unacked.insert(entry.id, (entry, consumer.tag.clone()));
                consumer.sink.deliver(delivery);
            }
        }
    }

    /// The next ready message that has not expired (expired ones are dropped on the way).
    fn take_one(&mut self, now: Instant) -> Option<Entry> {
        while let Some(entry) = self.ready.pop_front() {
            self.ready_bytes -= entry.message.body.len();
            if entry.deadline.is_some_and(|d| d <= now) {
                self.forget(entry);
                continue;
            }
            return Some(entry);
        }
        None
    }

    /// Removes an unacked message; returns it.
    fn settle(&mut self, id: MessageId) -> Option<Entry> {
        let (entry, owner) = self.unacked.remove(&id)?;
        if let Some(c) = self.consumers.iter_mut().find(|c| c.tag == owner) {
            c.unacked = c.unacked.saturating_sub(1);
        }
        Some(entry)
    }

    /// The message leaves the queue for good: the store may drop it.
    fn forget(&self, entry: Entry) {
        if let Some(stored) = entry.stored {
            self.store.settle(&self.name, stored);
        }
    }

    /// Puts unacked messages back at the head of the queue in their original order, marked
    /// redelivered (AMQP basic.reject/recover; a consumer that went away).
    fn requeue(&mut self, mut ids: Vec<MessageId>) {
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(mut entry) = self.settle(id) {
                entry.redelivered = true;
                self.ready_bytes += entry.message.body.len();
                self.ready.push_front(entry);
            }
        }
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
