//! The public face of a queue: `spawn` starts its actor, `QueueHandle` talks to it. Publishes go
//! through the bounded inbox (full = the publisher waits); everything else through the control
//! channel, which the actor serves first (see `actor`).
//!
//! Publisher confirms and refused publishes: only a queue whose `x-overflow` can refuse
//! (`reject-publish`, `reject-publish-dlx`) can make a confirm a nack. For such a queue,
//! `publish_with_outcome` sends a oneshot along with the message and the actor answers it when
//! it admits or refuses the message — judged in arrival order on its exact counts, as
//! RabbitMQ's queue process judges each publish on its own length. The same oneshot carries a
//! persistent message to a durable queue: the actor gives it to the store with the message and
//! the persister answers it after the fsync, so the publisher's confirm follows the data to
//! disk. Every other publish costs what it always did: no oneshot, no wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::actor::Actor;
use super::consumer::{ConsumeError, Consumer, ConsumerSink, ConsumerTag};
use super::dead_letter::{Detached, QueueHost};
use super::{MessageId, QueueCounts, QueueDelivery, QueueLimits, QueueStats};
use crate::broker::binding::{Delivery, Pending, Subscriber};
use crate::broker::message::Message;
use crate::store::{MessageStore, RecoveredMessage};

/// Capacity of a queue's publish inbox.
const INBOX_CAPACITY: usize = 1024;

/// Whether a queue took a message published with [`QueueHandle::publish_with_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Enqueued (or the queue went away meanwhile: like an unbound exchange, not a refusal).
    Accepted,
    /// Refused by `x-overflow = reject-publish` / `reject-publish-dlx`: the publisher's confirm
    /// is a basic.nack.
    Refused,
}

/// The actor's answer to a publish that may be refused; it also waits for inbox room, so
/// awaiting it replaces awaiting a `Pending`.
pub type Verdict = Pin<Box<dyn Future<Output = Admission> + Send>>;

/// How [`QueueHandle::publish_with_outcome`] went.
pub enum Outcome {
    /// The queue never refuses: as [`QueueHandle::publish`] (`Some` = wait for inbox room).
    Queued(Option<Pending>),
    /// The queue may refuse, or stores the message durably: await the verdict before
    /// confirming the publish.
    Decided(Verdict),
    /// As `Decided`, but the inbox was full: `send` hands the message over and must be awaited
    /// in publish order with the other `Pending`s (backpressure, and order within the queue);
    /// the verdict may be awaited later, apart from them.
    Waiting {
        /// Waits for inbox room and sends the message.
        send: Pending,
        /// The queue's answer.
        verdict: Verdict,
    },
}

/// How a consumer registers (AMQP basic.consume and its `x-priority` argument).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// Unacknowledged deliveries allowed at once; 0 = unlimited.
    pub prefetch: u32,
    /// Deliveries are settled when sent.
    pub no_ack: bool,
    /// No other consumer may join (and none may be there).
    pub exclusive: bool,
    /// Consumer priority: the queue serves the highest-priority consumers with credit first,
    /// round-robin among equals (RabbitMQ's `x-priority`, default 0).
    pub priority: i32,
}

/// A handle to a running queue actor; cheap to clone.
#[derive(Clone)]
pub struct QueueHandle {
    name: Arc<str>,
    inbox: mpsc::Sender<Inbound>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<QueueStats>,
    /// The queue's overflow policy can refuse publishes.
    refuses: bool,
    /// The queue writes persistent messages to a durable store: a confirm waits for the fsync.
    durable: bool,
    /// Shared with the actor: while false, a durable queue keeps new persistent messages in
    /// memory only (`set_persisting`).
    persisting: Arc<AtomicBool>,
}

/// A published message, with where to answer if the publisher needs the outcome.
pub(super) struct Inbound {
    pub message: Arc<Message>,
    pub verdict: Option<oneshot::Sender<Admission>>,
}

pub(super) enum Control {
    Consume {
        consumer: Consumer,
        /// `Some` for `consume_checked`: exclusivity is checked and the answer sent here.
        reply: Option<oneshot::Sender<Result<(), ConsumeError>>>,
    },
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
    /// Redeclared: the `x-expires` countdown starts over.
    MarkUsed,
    Counts(oneshot::Sender<QueueCounts>),
    /// Drop everything, tell the consumers, answer the number of ready messages, stop.
    Delete(oneshot::Sender<u64>),
}

/// Starts a queue actor named `name` outside any vhost (no dead-letter routing, and an
/// `x-expires` only stops the actor); see [`spawn_hosted`].
pub fn spawn(name: &str, limits: QueueLimits, store: Arc<dyn MessageStore>) -> QueueHandle {
    spawn_hosted(name, limits, store, Arc::new(Detached))
}

/// Starts a queue actor named `name`; it stops when every handle is dropped, on `delete`, or
/// when unused for its `x-expires` (then it tells `host`). Persistent messages (qos >= 1) are
/// recorded in `store` on arrival and settled there when acknowledged, dropped or
/// dead-lettered, so a durable store can recover exactly the unsettled ones. Dead letters go
/// to `host`, which routes them.
pub fn spawn_hosted(
    name: &str,
    limits: QueueLimits,
    store: Arc<dyn MessageStore>,
    host: Arc<dyn QueueHost>,
) -> QueueHandle {
    spawn_recovered(name, limits, store, host, Vec::new())
}

/// `spawn_hosted` for a durable queue recreated at start: `recovered` (its unsettled messages
/// from `store`, in publish order) are its first ready messages.
pub fn spawn_recovered(
    name: &str,
    limits: QueueLimits,
    store: Arc<dyn MessageStore>,
    host: Arc<dyn QueueHost>,
    recovered: Vec<RecoveredMessage>,
) -> QueueHandle {
    let (inbox, inbox_rx) = mpsc::channel(INBOX_CAPACITY);
    let (control, control_rx) = mpsc::unbounded_channel();
    let stats = Arc::new(QueueStats::default());
    let name: Arc<str> = name.into();
    let refuses = limits.overflow.refuses();
    let durable = store.is_durable();
    let persisting = Arc::new(AtomicBool::new(true));
    let actor = Actor::new(
        Arc::clone(&name),
        limits,
        (store, Arc::clone(&persisting)),
        host,
        Arc::clone(&stats),
        recovered,
    );
    tokio::spawn(actor.run(inbox_rx, control_rx));
    QueueHandle {
        name,
        inbox,
        control,
        stats,
        refuses,
        durable,
        persisting,
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

    /// True if the queue's `x-overflow` can refuse publishes (`reject-publish[-dlx]`).
    pub fn refuses_when_full(&self) -> bool {
        self.refuses
    }

    /// True if a confirming publisher must await this queue's verdict for some messages: it
    /// may refuse them, or it stores persistent ones durably (the verdict comes after the
    /// fsync). See `publish_with_outcome`.
    pub fn answers_publishes(&self) -> bool {
        self.refuses || self.durable
    }

    /// True if the queue writes persistent messages to a durable store (now).
    pub fn is_durable(&self) -> bool {
        self.durable && self.persisting.load(Ordering::Relaxed)
    }

    /// Whether a durable queue writes the persistent messages that arrive from now on (the
    /// default) or keeps them in memory only, as a transient queue would; what it stored stays
    /// stored. For queues whose contents matter across a restart only at times (an MQTT shared
    /// group with no persistent member is deleted at start anyway). A message racing the
    /// switch is handled by the actor either way: its verdict is answered at once when it is
    /// not written.
    pub fn set_persisting(&self, on: bool) {
        self.persisting.store(on, Ordering::Relaxed);
    }

    /// Enqueues a message; `Some(pending)` if the inbox is full and the caller must await it.
    /// A refusal by the overflow policy is silent (see `publish_with_outcome`).
    pub fn publish(&self, message: Arc<Message>) -> Option<Pending> {
        let inbound = Inbound {
            message,
            verdict: None,
        };
        match self.inbox.try_send(inbound) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(inbound)) => {
                let inbox = self.inbox.clone();
                Some(Box::pin(async move {
                    let _ = inbox.send(inbound).await;
                }))
            }
            // The queue was deleted: the message goes nowhere, as for an unbound exchange.
            Err(mpsc::error::TrySendError::Closed(_)) => None,
        }
    }

    /// Enqueues a message for a publisher that must learn whether the queue refused it (AMQP
    /// publisher confirms: a refusal is a basic.nack). Costs a oneshot only on a queue whose
    /// overflow policy can refuse; other queues answer `Outcome::Queued` as `publish` does.
    /// The message is in the inbox when this returns, unless the inbox was full: then
    /// `Outcome::Waiting::send` sends it, and the caller awaits it with its other pendings in
    /// publish order. Verdicts only wait for the answer, so a publisher may read on while
    /// they are outstanding (a confirm waiting for an fsync does not stall the connection).
    pub fn publish_with_outcome(&self, message: Arc<Message>) -> Outcome {
        if !(self.refuses || self.is_durable() && message.qos > 0) {
            return Outcome::Queued(self.publish(message));
        }
        let (tx, rx) = oneshot::channel();
        let inbound = Inbound {
            message,
            verdict: Some(tx),
        };
        // A dropped answer means the queue stopped with the message unread (or the inbox
        // closed before it was sent): gone, like a deleted queue's, not refused.
        let verdict: Verdict = Box::pin(async move { rx.await.unwrap_or(Admission::Accepted) });
        match self.inbox.try_send(inbound) {
            Ok(()) => Outcome::Decided(verdict),
            Err(mpsc::error::TrySendError::Full(inbound)) => {
                let inbox = self.inbox.clone();
                let send: Pending = Box::pin(async move {
                    let _ = inbox.send(inbound).await;
                });
                Outcome::Waiting { send, verdict }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Outcome::Queued(None),
        }
    }

    /// Adds a consumer with a prefetch window (0 = unlimited); `no_ack` settles on delivery.
    /// No exclusivity check (MQTT shared groups); AMQP uses `consume_checked`.
    pub fn consume(
        &self,
        tag: ConsumerTag,
        sink: Arc<dyn ConsumerSink>,
        prefetch: u32,
        no_ack: bool,
    ) {
        let options = ConsumeOptions {
            prefetch,
            no_ack,
            ..ConsumeOptions::default()
        };
        let consumer = consumer(tag, sink, options);
        self.stats.consumes_pending.fetch_add(1, Ordering::AcqRel);
        let _ = self.control.send(Control::Consume {
            consumer,
            reply: None,
        });
    }

    /// AMQP basic.consume: adds a consumer unless exclusivity forbids it (RabbitMQ 403
    /// "in exclusive use", see [`ConsumeError`]). The request is queued when this is called, so
    /// it is ordered with the caller's other requests; the future yields the actor's answer.
    /// Deliveries may reach the sink before the future resolves.
    pub fn consume_checked(
        &self,
        tag: ConsumerTag,
        sink: Arc<dyn ConsumerSink>,
        prefetch: u32,
        no_ack: bool,
        exclusive: bool,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'static {
        let options = ConsumeOptions {
            prefetch,
            no_ack,
            exclusive,
            priority: 0,
        };
        self.consume_with(tag, sink, options)
    }

    /// `consume_checked` with every option, including the consumer's priority.
    pub fn consume_with(
        &self,
        tag: ConsumerTag,
        sink: Arc<dyn ConsumerSink>,
        options: ConsumeOptions,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let consumer = consumer(tag, sink, options);
        self.stats.consumes_pending.fetch_add(1, Ordering::AcqRel);
        let sent = self.control.send(Control::Consume {
            consumer,
            reply: Some(reply),
        });
        async move {
            if sent.is_err() {
                return Err(ConsumeError::QueueDeleted);
            }
            answer.await.unwrap_or(Err(ConsumeError::QueueDeleted))
        }
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

    /// Rejects a delivered message: requeued (marked redelivered), or dead-lettered with reason
    /// `rejected` (dropped without a dead-letter exchange).
    pub fn reject(&self, id: MessageId, requeue: bool) {
        let _ = self.control.send(Control::Reject { id, requeue });
    }

    /// Takes one ready message (AMQP basic.get) with the number still ready after it, or
    /// `None` when empty. Unless `no_ack`, it stays unacknowledged under `owner` until
    /// `ack`/`reject`. Counts as a use for `x-expires`.
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

    /// The queue was redeclared (AMQP queue.declare, passive or not): its `x-expires`
    /// countdown starts over ("redeclaring renews the lease", RabbitMQ).
    pub fn mark_used(&self) {
        let _ = self.control.send(Control::MarkUsed);
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

    /// Stops the queue: its messages are dropped (and settled in the store; never
    /// dead-lettered, as in RabbitMQ), its consumers are told through
    /// `ConsumerSink::cancelled`, and later publishes go nowhere. The returned receiver yields
    /// the number of ready messages dropped; it may be ignored.
    pub fn delete(&self) -> oneshot::Receiver<u64> {
        let (reply, wait) = oneshot::channel();
        let _ = self.control.send(Control::Delete(reply));
        wait
    }

    /// True once the actor has stopped (deleted, expired, or its task ended).
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

fn consumer(tag: ConsumerTag, sink: Arc<dyn ConsumerSink>, options: ConsumeOptions) -> Consumer {
    Consumer {
        tag,
        sink,
        prefetch: options.prefetch,
        no_ack: options.no_ack,
        exclusive: options.exclusive,
        unacked: 0,
        priority: options.priority,
    }
}
