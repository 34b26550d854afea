//! MQTT 5 shared subscriptions `$share/{group}/{filter}` (section 4.8.2). A group is a queue in
//! the vhost named `mqtt-shared-<group>-<filter>`, bound to the MQTT exchange with the group's
//! filter; each online member session is a competing consumer of it, and so can be any AMQP
//! consumer of that queue. The queue holds messages while no member can take them, hands each
//! message to one member round-robin, and gets back (requeued) what a member had queued but
//! not sent when it goes offline, so another member receives it. The queue goes when the last
//! MQTT member leaves.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::queue_sink::{tag, SendAs, SessionSink};
use super::session::Session;
use super::session_queue::MQTT_ADAPTER;
use super::Mqtt;
use crate::broker::binding::BindingOptions;
use crate::broker::exchange::BindingKey;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::queue::QueueHandle;
use crate::broker::vhost::{QueueSettings, VhostError};

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
    members: Mutex<HashMap<Arc<str>, BindingOptions>>,
}

impl SharedGroup {
    /// Declares the group's queue (at most `max_queued_messages` ready messages, oldest
    /// dropped) and binds it to the MQTT exchange with `filter`. Fails only when an AMQP client
    /// declared a queue of that name with other arguments, or exclusively.
    pub fn new(mqtt: &Mqtt, group: &str, filter: &str) -> Result<Arc<SharedGroup>, VhostError> {
        let vhost = &mqtt.vhost;
        let max = mqtt.core.config.mqtt.max_queued_messages;
        let mut arguments = Headers::new();
        arguments.push(
            "x-max-length",
            HeaderValue::I64(i64::try_from(max).unwrap_or(i64::MAX)),
        );
        let settings = QueueSettings {
            arguments,
            ..QueueSettings::default()
        };
        let name = queue_name(group, filter);
        let queue = vhost
            .declare_queue(&name, settings, false, MQTT_ADAPTER)?
            .handle;
        let exchange = vhost.mqtt_exchange().name.to_string();
        vhost.bind_queue(
            &name,
            &exchange,
            BindingKey::Mqtt(filter),
            Headers::empty(),
            MQTT_ADAPTER,
        )?;
        Ok(Arc::new(SharedGroup {
            group: group.to_string(),
            filter: filter.to_string(),
            queue,
            members: Mutex::new(HashMap::new()),
        }))
    }

    /// The last member left: the queue goes, with its binding.
    pub fn delete(&self, mqtt: &Mqtt) {
        mqtt.vhost.delete_queue_now(&self.queue);
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
        let send_as = SendAs::Subscription(options);
        SessionSink::consume(session, &self.queue, send_as, MEMBER_PREFETCH);
    }
}

/// The queue's name, as AMQP clients find it (the filter in MQTT form, e.g.
/// `mqtt-shared-workers-jobs/+`).
pub fn queue_name(group: &str, filter: &str) -> String {
    format!("mqtt-shared-{group}-{filter}")
}
