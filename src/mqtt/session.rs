//! An MQTT session: subscriptions, the queue of messages waiting for the client (the session's
//! outbox, bounded by `max_queued_messages`), outgoing QoS 1/2 messages in flight with their
//! packet identifiers, and incoming QoS 2 packet identifiers not yet released. It outlives
//! connections when the session is persistent. All state sits behind one short-held mutex; the
//! owning connection is woken through `wake` and pulls what is ready, so publishers never wait
//! on a subscriber's socket.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferromq_mqtt::{PacketId, SubscriptionOptions};
use parking_lot::{Mutex, MutexGuard};

use super::session_queue::SessionQueue;
use crate::broker::binding::{Delivery, Pending, Subscriber};
use crate::broker::message::Message;
use crate::broker::queue::{MessageId, QueueHandle};
use crate::broker::routing_key::{self, FilterLevel};
use crate::broker::Core;
use crate::metrics::Metrics;
use crate::store::{MessageStore, StoreId};

/// One subscription as the session remembers it (to answer re-subscribes and to unbind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The options it was made with.
    pub options: SubscriptionOptions,
    /// Its v5 subscription identifier.
    pub id: Option<u32>,
}

/// A message waiting to be sent, with how to send it.
#[derive(Clone)]
pub struct Outgoing {
    /// The message (shared with every other receiver).
    pub message: Arc<Message>,
    /// QoS to send with.
    pub qos: u8,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers to attach.
    pub subscription_ids: Vec<u32>,
    /// Set when it came through a shared subscription's queue: the queue learns when the
    /// message is done (or must go to another member).
    pub ack: Option<QueueAck>,
}

/// Settles a message with the queue it came from.
#[derive(Clone)]
pub struct QueueAck {
    /// The queue.
    pub queue: QueueHandle,
    /// The message's id in it.
    pub id: MessageId,
    /// The message's record in the queue's durable store, if it has one.
    pub stored: Option<StoreId>,
    /// Set for a message the session took back from the store at start (a QoS 2 message in
    /// flight at the crash, `durable_out`): the queue does not hold it, the session settles
    /// its record in this store itself.
    pub held: Option<Arc<dyn MessageStore>>,
}

impl QueueAck {
    /// The message is done with (delivered, or dropped for good).
    pub fn settle(self) {
        match (&self.held, self.stored) {
            (Some(store), Some(stored)) => store.settle(self.queue.name(), stored),
            (Some(_), None) => {}
            (None, _) => self.queue.ack(self.id),
        }
    }

    /// The message goes back to the queue for another consumer. A held message stays in the
    /// store, which gives it back to the session's queue at the next start (only QoS 0/1
    /// messages are ever requeued, and a held one is QoS 2).
    pub fn requeue(self) {
        if self.held.is_none() {
            self.queue.reject(self.id, true);
        }
    }
}

impl Outgoing {
    fn settle(self) {
        if let Some(ack) = self.ack {
            ack.settle();
        }
    }
}

/// An outgoing QoS 1/2 message the client has not finished acknowledging.
#[derive(Clone)]
pub enum Inflight {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck(Outgoing),
    /// PUBREL sent; waiting for PUBCOMP.
    AwaitComp,
}

/// How one message from the session's queue is sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// QoS to send with.
    pub qos: u8,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Subscription identifiers to attach.
    pub subscription_ids: Vec<u32>,
}

/// A message pulled for sending now: `packet_id` is set for QoS 1/2.
pub struct Ready {
    /// Packet identifier allocated for it (QoS > 0).
    pub packet_id: Option<PacketId>,
    /// The message.
    pub outgoing: Outgoing,
}

/// What must be re-sent when a persistent session resumes [MQTT-4.4.0-1].
pub enum Resend {
    /// PUBLISH again with DUP set.
    Publish(PacketId, Outgoing),
    /// PUBREL again.
    PubRel(PacketId),
}

/// Mutable session state; see the module doc.
pub struct SessionState {
    /// Generation of the connection that owns the session; 0 when offline.
    pub owner: u64,
    /// Bumped on every attach, so expiry and will timers can tell a reconnect happened.
    pub epoch: u64,
    /// Seconds the session outlives its connection; `u32::MAX` = forever.
    pub expiry_secs: u32,
    /// Subscriptions by filter text (including `$share/...`).
    pub subscriptions: HashMap<String, Subscription>,
    /// QoS 2 packet identifiers, once the session had a QoS 2 exchange (see `qos2_mut`).
    pub qos2: Option<Box<Qos2Ids>>,
    /// When the session last went offline, as unix seconds (`None` while a connection owns
    /// it); its expiry counts from here, across restarts too.
    pub offline_since: Option<u64>,
    /// The owning connection's takeover signal.
    pub kick: Option<Arc<super::kick::Kick>>,
    /// Set once the session is discarded: deliveries are ignored from then on.
    pub ended: bool,
    /// Between `detach` and the end of `connect::release_session`: the session is offline but
    /// whether it is kept or ended is not decided yet.
    pub releasing: bool,
    /// The session is in the durable definitions (`durable`), to be deleted there when it ends.
    pub recorded: bool,
    /// A will waiting out its delay: when it is due, and the message (recorded by `durable`).
    pub pending_will: Option<(Instant, Arc<Message>)>,
    /// The queue the session's subscriptions bind, once it has one (see `session_queue`).
    pub queue: Option<Arc<SessionQueue>>,
    /// Parsed filters of `subscriptions`, for working out how a message from the queue is sent;
    /// allocated by the first such message (an empty map inline was 48 bytes of every session,
    /// so of every idle connection: README, Benchmarks).
    // Boxed on purpose: the point is the 8-byte `None`, not where the table lives.
    #[allow(clippy::box_collection)]
    parsed: Option<Box<HashMap<String, Vec<FilterLevel>>>>,
    outbox: VecDeque<Outgoing>,
    inflight: BTreeMap<u16, Inflight>,
    next_packet_id: u16,
}

/// The QoS 2 packet identifiers a session keeps track of. Allocated by the session's first
/// QoS 2 exchange and kept: most sessions never have one, and inline the three maps were 72
/// bytes of every session, so of every idle connection (README, Benchmarks). B-trees, as an
/// empty one is 24 bytes and a `HashMap` 48.
#[derive(Default)]
pub struct Qos2Ids {
    /// Incoming QoS 2 packet identifiers received but not yet released by PUBREL.
    pub inbound: BTreeSet<u16>,
    /// Store ids of the durable records of `inbound` (persistent sessions, `durable`).
    pub markers: BTreeMap<u16, StoreId>,
    /// Durable records of outgoing QoS 2 packet identifiers (persistent sessions,
    /// `durable_out`).
    pub out: BTreeMap<u16, super::durable_out::OutMarker>,
}

impl SessionState {
    /// The QoS 2 identifiers, allocated on first use.
    pub fn qos2_mut(&mut self) -> &mut Qos2Ids {
        self.qos2.get_or_insert_with(Box::default)
    }
}

/// A session, shared by the registry, the topic index bindings and its connection.
pub struct Session {
    /// The client identifier.
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
    online: AtomicBool,
    core: Arc<Core>,
}

impl Session {
    /// A new, empty, offline session.
    pub fn new(client_id: Arc<str>, core: Arc<Core>) -> Arc<Session> {
        Arc::new(Session {
            client_id,
            state: Mutex::new(SessionState {
                owner: 0,
                epoch: 0,
                expiry_secs: 0,
                subscriptions: HashMap::new(),
                qos2: None,
                offline_since: None,
                kick: None,
                ended: false,
                releasing: false,
                recorded: false,
                pending_will: None,
                queue: None,
                parsed: None,
                outbox: VecDeque::new(),
                inflight: BTreeMap::new(),
                next_packet_id: 1,
            }),
            online: AtomicBool::new(false),
            core,
        })
    }

    /// Locks the state. Never hold the guard across `.await`.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    /// True while a connection owns the session.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Makes connection `generation` the owner; returns the previous owner's takeover signal.
    /// The caller wakes `Mqtt::released`: someone else waiting to take the session over now
    /// waits for this owner instead.
    pub fn attach(
        &self,
        generation: u64,
        kick: Arc<super::kick::Kick>,
        expiry_secs: u32,
    ) -> Option<Arc<super::kick::Kick>> {
        let mut s = self.state.lock();
        s.owner = generation;
        s.releasing = false;
        // A resumed session cancels its delayed will [MQTT-3.1.3-9].
        s.pending_will = None;
        s.epoch += 1;
        s.expiry_secs = expiry_secs;
        s.offline_since = None;
        let previous = s.kick.replace(kick);
        self.online.store(true, Ordering::Release);
        previous
    }

    /// Releases ownership if `generation` still owns the session; returns the epoch, or `None`
    /// if another connection took the session over or it was discarded meanwhile. Queued QoS 0
    /// messages are dropped (as Mosquitto does for offline clients) and queued messages from
    /// shared subscriptions go back to their group for another member.
    pub fn detach(&self, generation: u64) -> Option<u64> {
        let mut s = self.state.lock();
        if s.owner != generation || s.ended {
            return None;
        }
        s.owner = 0;
        s.kick = None;
        s.releasing = true;
        s.offline_since = Some(super::durable::unix_now());
        self.online.store(false, Ordering::Release);
        let mut kept = VecDeque::with_capacity(s.outbox.len());
        for o in s.outbox.drain(..) {
            match o.ack {
                Some(ack) => ack.requeue(),
                None if o.qos > 0 => kept.push_back(o),
                None => {}
            }
        }
        s.outbox = kept;
        Some(s.epoch)
    }

    /// Discards the session: no more deliveries. Returns its subscriptions (to unbind); every
    /// message from a shared subscription it still held goes back to its group, except QoS 2
    /// messages already sent to it.
    pub fn end(&self) -> HashMap<String, Subscription> {
        let mut s = self.state.lock();
        s.ended = true;
        self.online.store(false, Ordering::Release);
        for o in s.outbox.drain(..) {
            if let Some(ack) = o.ack {
                ack.requeue();
            }
        }
        for inflight in std::mem::take(&mut s.inflight).into_values() {
            if let Inflight::AwaitAck(Outgoing {
                ack: Some(ack),
                qos,
                ..
            }) = inflight
            {
                if qos == 2 {
                    // A QoS 2 message already sent to this member must not go to any other
                    // once its session ends [MQTT-4.8.2-5].
                    ack.settle();
                } else {
                    ack.requeue();
                }
            }
        }
        std::mem::take(&mut s.subscriptions)
    }

    /// Queues a message for the client (see `Subscriber::deliver`), with an explicit retain
    /// flag; used for retained messages sent because of a new subscription [MQTT-3.3.1-8].
    pub fn enqueue(&self, outgoing: Outgoing) {
        {
            let mut s = self.state.lock();
            let online = self.is_online();
            if s.ended || (!online && outgoing.qos == 0) {
                drop(s);
                outgoing.settle();
                return;
            }
            // A message from a queue was admitted by that queue's own limit.
            if outgoing.ack.is_none() && s.outbox.len() >= self.core.config.mqtt.max_queued_messages
            {
                drop(s);
                outgoing.settle();
                Metrics::add(&self.core.metrics.messages_dropped, 1);
                tracing::debug!(client_id = %self.client_id, "session queue full; message dropped");
                return;
            }
            s.outbox.push_back(outgoing);
            // The owner's kick is its one wake-up signal (a second `Notify` here was 32 bytes
            // of every session and a 64-byte branch of every idle connection's wait). Woken
            // under the lock: taking the `Arc` out would cost two atomic operations per
            // delivery, and the wake-up itself does not block.
            if let Some(kick) = &s.kick {
                kick.poke();
            }
        }
    }

    /// Moves what may be sent now into `ready`: QoS 0 messages, and QoS 1/2 ones while fewer
    /// than `window` are in flight (the client's Receive Maximum). Expired messages are
    /// dropped here [MQTT-3.3.2-5]. Only the owning connection `generation` gets anything, so a
    /// connection being taken over sends nothing more.
    pub fn pull(&self, generation: u64, window: usize, now: Instant, ready: &mut Vec<Ready>) {
        let mut s = self.state.lock();
        if s.owner != generation {
            return;
        }
        while let Some(front) = s.outbox.front() {
            if front.message.is_expired(now) {
                if let Some(expired) = s.outbox.pop_front() {
                    expired.settle();
                }
                continue;
            }
            if front.qos == 0 {
                if let Some(mut outgoing) = s.outbox.pop_front() {
                    // QoS 0 is done once handed to the connection.
                    if let Some(ack) = outgoing.ack.take() {
                        ack.settle();
                    }
                    ready.push(Ready {
                        packet_id: None,
                        outgoing,
                    });
                }
                continue;
            }
            if s.inflight.len() >= window {
                break;
            }
            let Some(packet_id) = s.allocate_packet_id() else {
                break;
            };
            let Some(outgoing) = s.outbox.pop_front() else {
                break;
            };
            s.inflight
                .insert(packet_id.get(), Inflight::AwaitAck(outgoing.clone()));
            ready.push(Ready {
                packet_id: Some(packet_id),
                outgoing,
            });
        }
    }

    /// Everything in flight, in packet-id order, to re-send on resume.
    pub fn resend_list(&self) -> Vec<Resend> {
        let s = self.state.lock();
        s.inflight
            .iter()
            .filter_map(|(id, f)| {
                let pid = PacketId::new(*id)?;
                Some(match f {
                    Inflight::AwaitAck(o) => Resend::Publish(pid, o.clone()),
                    Inflight::AwaitComp => Resend::PubRel(pid),
                })
            })
            .collect()
    }

    /// PUBACK: completes a QoS 1 message. False if no QoS 1 message had this id.
    pub fn puback(&self, packet_id: PacketId) -> bool {
        let mut s = self.state.lock();
        match s.inflight.get(&packet_id.get()) {
            Some(Inflight::AwaitAck(o)) if o.qos == 1 => {
                if let Some(Inflight::AwaitAck(o)) = s.inflight.remove(&packet_id.get()) {
                    o.settle();
                }
                true
            }
            _ => false,
        }
    }

    /// PUBREC: a QoS 2 message moves to awaiting PUBCOMP (`accepted`), or is dropped when the
    /// receiver refused it (v5 reason >= 0x80). False if no QoS 2 message had this id.
    pub fn pubrec(&self, packet_id: PacketId, accepted: bool) -> bool {
        let mut s = self.state.lock();
        match s.inflight.get(&packet_id.get()) {
            Some(Inflight::AwaitAck(o)) if o.qos == 2 => {
                // PUBREC means the receiver owns the message: the queue is done with it.
                let next = accepted.then_some(Inflight::AwaitComp);
                let done = match next {
                    Some(state) => s.inflight.insert(packet_id.get(), state),
                    None => s.inflight.remove(&packet_id.get()),
                };
                if let Some(Inflight::AwaitAck(o)) = done {
                    o.settle();
                }
                true
            }
            Some(Inflight::AwaitComp) => true,
            _ => false,
        }
    }

    /// PUBCOMP: completes a QoS 2 message. False if it was not awaiting PUBCOMP.
    pub fn pubcomp(&self, packet_id: PacketId) -> bool {
        let mut s = self.state.lock();
        if matches!(s.inflight.get(&packet_id.get()), Some(Inflight::AwaitComp)) {
            s.inflight.remove(&packet_id.get());
            true
        } else {
            false
        }
    }

    /// How a message from the session's queue is sent, from the subscriptions it matches now:
    /// the highest of their QoS (capped by the message's) [MQTT-3.3.4-2], RETAIN if any has
    /// Retain As Published, and all their identifiers [MQTT-3.3.4-4]. A message that matches no
    /// subscription (routed by a binding an AMQP client added, or queued before an
    /// UNSUBSCRIBE, which may still be delivered [MQTT-3.10.4-3]) goes at the message's QoS
    /// capped at 1, the queue's. `None` when every match has No Local and the session
    /// published the message itself [MQTT-3.8.3-3].
    pub fn options_for(&self, message: &Message) -> Option<DeliveryOptions> {
        let topic: Vec<&str> = message.topic.split('/').collect();
        let from_self = message.origin.client_id.as_deref() == Some(&*self.client_id);
        let mut s = self.state.lock();
        let s = &mut *s;
        let parsed = s.parsed.get_or_insert_with(Box::default);
        if parsed.len() > 2 * s.subscriptions.len() + 8 {
            // Drop the parses of filters unsubscribed since.
            let subscriptions = &s.subscriptions;
            parsed.retain(|f, _| subscriptions.contains_key(f));
        }
        let mut options = DeliveryOptions::default();
        let (mut matched, mut excluded) = (false, false);
        for (filter, sub) in &s.subscriptions {
            if filter.starts_with("$share/") {
                continue;
            }
            // Looked up before inserting: `entry` would clone the filter per delivery.
            if !parsed.contains_key(filter) {
                parsed.insert(filter.clone(), routing_key::parse_mqtt_filter(filter));
            }
            let Some(levels) = parsed.get(filter) else {
                continue;
            };
            if !routing_key::filter_matches(levels, &topic) {
                continue;
            }
            if sub.options.no_local && from_self {
                excluded = true;
                continue;
            }
            matched = true;
            options.qos = options.qos.max((sub.options.qos as u8).min(message.qos));
            options.retain |= sub.options.retain_as_published && message.retain;
            options.subscription_ids.extend(sub.id);
        }
        if !matched {
            if excluded {
                return None;
            }
            options.qos = message.qos.min(1);
        }
        options.subscription_ids.sort_unstable();
        options.subscription_ids.dedup();
        Some(options)
    }

    /// Puts back an outgoing QoS 2 message recovered from the store (`durable_out`), to be
    /// re-sent with its packet identifier when the client resumes the session.
    pub fn restore_inflight(&self, packet_id: u16, entry: Inflight) {
        self.state.lock().inflight.insert(packet_id, entry);
    }

    /// Forgets an in-flight message that could not be sent (too large for the client).
    pub fn forget_inflight(&self, packet_id: PacketId) {
        let removed = self.state.lock().inflight.remove(&packet_id.get());
        if let Some(Inflight::AwaitAck(o)) = removed {
            o.settle();
        }
    }
}

impl SessionState {
    /// The next free packet identifier after the last one used, wrapping 65535 -> 1 and skipping
    /// identifiers still in flight [MQTT-2.2.1-3]; starts at 1 for a new session.
    fn allocate_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let candidate = self.next_packet_id;
            self.next_packet_id = if candidate == u16::MAX {
                1
            } else {
                candidate + 1
            };
            if !self.inflight.contains_key(&candidate) {
                return PacketId::new(candidate);
            }
        }
        None
    }
}

impl Subscriber for Session {
    fn deliver(&self, message: &Arc<Message>, delivery: Delivery) -> Option<Pending> {
        // A session never makes the publisher wait: its outbox drops beyond
        // `max_queued_messages`, as Mosquitto does, so one slow subscriber cannot stall a topic.
        self.enqueue(Outgoing {
            message: Arc::clone(message),
            qos: delivery.qos,
            retain: delivery.retain_as_published && message.retain,
            subscription_ids: delivery.subscription_ids,
            ack: None,
        });
        None
    }

    fn identity(&self) -> Option<&str> {
        Some(&self.client_id)
    }
}
