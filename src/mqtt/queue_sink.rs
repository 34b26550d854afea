//! Hands the deliveries of a core queue to an MQTT session: the session's own queue
//! (`session_queue`) or a shared-subscription group's queue (`shared`). A delivery that finds
//! the session gone offline goes back to the queue (for its next connection, or another
//! member); otherwise it joins the session's outbox, and is settled with the queue when the
//! client acknowledged it (or at once for QoS 0).

use std::sync::{Arc, Weak};

use super::session::{DeliveryOptions, Outgoing, QueueAck, Session};
use crate::broker::binding::BindingOptions;
use crate::broker::queue::{ConsumerSink, ConsumerTag, QueueDelivery, QueueHandle};

/// Where a delivery's QoS, RETAIN and subscription identifiers come from.
pub enum SendAs {
    /// The session's subscriptions matching the message at the time it leaves the queue.
    Subscriptions,
    /// One subscription's options (a shared group's filter).
    Subscription(BindingOptions),
}

/// A consumer of `queue` that feeds one session.
pub struct SessionSink {
    session: Weak<Session>,
    queue: QueueHandle,
    send_as: SendAs,
}

impl SessionSink {
    /// Starts `session` consuming from `queue` with up to `prefetch` messages held by it.
    pub fn consume(session: &Arc<Session>, queue: &QueueHandle, send_as: SendAs, prefetch: u32) {
        let sink = Arc::new(SessionSink {
            session: Arc::downgrade(session),
            queue: queue.clone(),
            send_as,
        });
        queue.consume(tag(session), sink, prefetch, false);
    }
}

/// The consumer tag a session consumes with: its client identifier.
pub fn tag(session: &Session) -> ConsumerTag {
    ConsumerTag(Arc::clone(&session.client_id))
}

impl ConsumerSink for SessionSink {
    fn deliver(&self, d: QueueDelivery) {
        let ack = QueueAck {
            queue: self.queue.clone(),
            id: d.id,
            stored: d.stored,
            held: None,
        };
        let Some(session) = self.session.upgrade().filter(|s| s.is_online()) else {
            // Dispatched just before the connection went away: back to the queue.
            ack.requeue();
            return;
        };
        let options = match &self.send_as {
            SendAs::Subscriptions => match session.options_for(&d.message) {
                Some(options) => options,
                None => {
                    // Every matching subscription has No Local and the session published it
                    // itself [MQTT-3.8.3-3].
                    ack.settle();
                    return;
                }
            },
            SendAs::Subscription(o) => DeliveryOptions {
                qos: o.max_qos.min(d.message.qos),
                retain: o.retain_as_published && d.message.retain,
                subscription_ids: o.subscription_id.into_iter().collect(),
            },
        };
        session.enqueue(Outgoing {
            qos: options.qos,
            retain: options.retain,
            subscription_ids: options.subscription_ids,
            message: d.message,
            ack: Some(ack),
        });
    }
}
