//! MQTT 5 shared subscriptions `$share/{group}/{filter}` (section 4.8.2): one binding per group
//! in the exchange, and each message goes to one member, round-robin over the members that are
//! online. A message queued for a member that leaves is handed to another member.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::session::{Outgoing, Session};
use crate::broker::binding::{BindingOptions, Delivery, Pending, Subscriber};
use crate::broker::message::Message;

struct Member {
    session: Arc<Session>,
    options: BindingOptions,
}

/// One shared-subscription group for one filter.
pub struct SharedGroup {
    /// The share name.
    pub group: String,
    /// The topic filter after `$share/{group}/`.
    pub filter: String,
    members: Mutex<Vec<Member>>,
    next: AtomicUsize,
    me: Weak<SharedGroup>,
}

impl SharedGroup {
    /// An empty group.
    pub fn new(group: &str, filter: &str) -> Arc<SharedGroup> {
        Arc::new_cyclic(|me| SharedGroup {
            group: group.to_string(),
            filter: filter.to_string(),
            members: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            me: me.clone(),
        })
    }

    /// Adds or updates a member.
    pub fn join(&self, session: &Arc<Session>, options: BindingOptions) {
        let mut members = self.members.lock();
        match members
            .iter_mut()
            .find(|m| Arc::ptr_eq(&m.session, session))
        {
            Some(m) => m.options = options,
            None => members.push(Member {
                session: Arc::clone(session),
                options,
            }),
        }
    }

    /// Removes a member; returns how many remain.
    pub fn leave(&self, session: &Arc<Session>) -> usize {
        let mut members = self.members.lock();
        members.retain(|m| !Arc::ptr_eq(&m.session, session));
        members.len()
    }

    /// Hands a message a departed member did not take to the remaining members.
    pub fn redistribute(&self, orphan: Outgoing) {
        let _ = self.deliver(&orphan.message, Delivery::default());
    }
}

impl Subscriber for SharedGroup {
    fn deliver(&self, message: &Arc<Message>, _delivery: Delivery) -> Option<Pending> {
        let members = self.members.lock();
        if members.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = members.len();
        // Prefer an online member; an offline persistent member still queues QoS 1/2.
        let chosen = (0..n)
            .map(|i| &members[(start + i) % n])
            .find(|m| m.session.is_online())
            .unwrap_or(&members[start % n]);
        let o = chosen.options;
        chosen.session.enqueue(Outgoing {
            message: Arc::clone(message),
            qos: o.max_qos.min(message.qos),
            retain: o.retain_as_published && message.retain,
            subscription_ids: o.subscription_id.into_iter().collect(),
            shared: self.me.upgrade(),
        });
        None
    }

    fn identity(&self) -> Option<&str> {
        None
    }
}
