//! MQTT 5 shared subscriptions `$share/{group}/{filter}` (section 4.8.2). A group is a queue in
//! the core, bound to the MQTT exchange with the group's filter; each online member session is
//! a competing consumer of it. The queue holds messages while no member can take them, hands
//! each message to one member round-robin, and gets back (requeued) what a member had queued
//! but not sent when it goes offline, so another member receives it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::session::{Outgoing, QueueAck, Session};
use crate::broker::binding::{BindingOptions, Subscriber};
use crate::broker::queue::{
    self, ConsumerSink, ConsumerTag, QueueDelivery, QueueHandle, QueueLimits,
};
use crate::store::MessageStore;

/// Messages a member may hold (queued in its session or in flight) before the group's queue
/// gives new ones to other members; bounds what a slow member keeps from the rest.
const MEMBER_PREFETCH: u32 = 64;

/// One shared-subscription group for one filter.
pub struct SharedGroup {
    /// The share name.
    pub group: String,
    /// The topic filter after `$share/{group}/`.
    pub filter: String,
    /// The group's queue.
    pub queue: QueueHandle,
    /// The binding target in the exchange (the queue), kept to unbind it by identity.
    pub target: Arc<dyn Subscriber>,
    members: Mutex<HashMap<Arc<str>, BindingOptions>>,
}

impl SharedGroup {
    /// A group with an empty queue of at most `max_length` ready messages (oldest dropped).
    pub fn new(
        group: &str,
        filter: &str,
        max_length: usize,
        store: Arc<dyn MessageStore>,
    ) -> Arc<SharedGroup> {
        let queue = queue::spawn(
            &queue_name(group, filter),
            QueueLimits {
                max_length: Some(max_length),
                ..QueueLimits::default()
            },
            store,
        );
        Arc::new(SharedGroup {
            group: group.to_string(),
            filter: filter.to_string(),
            target: Arc::new(queue.clone()),
            queue,
            members: Mutex::new(HashMap::new()),
        })
    }

    /// Adds a member or updates its options; an online member starts consuming at once.
    pub fn join(&self, session: &Arc<Session>, options: BindingOptions) {
        let previous = self
            .members
            .lock()
            .insert(Arc::clone(&session.client_id), options);
        if previous.is_some() {
            self.queue.cancel_nowait(tag(session), false);
        }
        if session.is_online() {
            self.consume(session, options);
        }
    }

    /// The member's connection is up: it consumes again (replacing the consumer of a
    /// connection it took over, so the queue never sees two consumers with one tag).
    pub fn attach(&self, session: &Arc<Session>) {
        let options = self.members.lock().get(&session.client_id).copied();
        if let Some(options) = options {
            self.queue.cancel_nowait(tag(session), false);
            self.consume(session, options);
        }
    }

    /// The member's connection went away: stop giving it messages (what it has in flight stays
    /// with it, MQTT 5.0 section 4.8.2; what it had queued the session requeues).
    pub fn detach(&self, session: &Arc<Session>) {
        self.queue.cancel_nowait(tag(session), false);
    }

    /// Removes a member; returns how many remain.
    pub fn leave(&self, session: &Arc<Session>) -> usize {
        let mut members = self.members.lock();
        if members.remove(&session.client_id).is_some() {
            self.queue.cancel_nowait(tag(session), true);
        }
        members.len()
    }

    fn consume(&self, session: &Arc<Session>, options: BindingOptions) {
        let sink = Arc::new(MemberSink {
            session: Arc::downgrade(session),
            options,
            queue: self.queue.clone(),
        });
        self.queue
            .consume(tag(session), sink, MEMBER_PREFETCH, false);
    }
}

/// The queue's name, as AMQP tooling will see it.
pub fn queue_name(group: &str, filter: &str) -> String {
    format!("mqtt-shared-{group}-{filter}")
}

fn tag(session: &Session) -> ConsumerTag {
    ConsumerTag(Arc::clone(&session.client_id))
}

/// Hands a group's deliveries to one member session.
struct MemberSink {
    session: Weak<Session>,
    options: BindingOptions,
    queue: QueueHandle,
}

impl ConsumerSink for MemberSink {
    fn deliver(&self, d: QueueDelivery) {
        let ack = QueueAck {
            queue: self.queue.clone(),
            id: d.id,
        };
        let Some(session) = self.session.upgrade().filter(|s| s.is_online()) else {
            // Dispatched just before the member went away: give it to another member.
            ack.requeue();
            return;
        };
        let o = self.options;
        session.enqueue(Outgoing {
            qos: o.max_qos.min(d.message.qos),
            retain: o.retain_as_published && d.message.retain,
            subscription_ids: o.subscription_id.into_iter().collect(),
            message: d.message,
            ack: Some(ack),
        });
    }
}
