//! A session's queue: RabbitMQ's `mqtt-subscription-<clientid>qos1`. A persistent session, or
//! one with a QoS 1/2 subscription, keeps its messages in an ordinary core queue declared in
//! the vhost, so AMQP tooling sees it (passive declare, message counts, `basic.get`, extra
//! bindings) and the durable store keeps it like any durable queue. Every non-shared
//! subscription of such a session is a binding of this queue on the MQTT exchange; the session
//! consumes from it while a connection owns it.
//!
//! The queue holds messages, not per-subscription options: the sink works out QoS, RETAIN and
//! subscription identifiers when a message leaves the queue, from the session's subscriptions
//! at that time (`Session::options_for`). Clean sessions with only QoS 0 subscriptions skip the
//! queue and bind the session directly (the cheap path for QoS 0 fan-out).

use std::sync::Arc;

use super::queue_sink::{tag, SendAs, SessionSink};
use super::session::Session;
use super::Mqtt;
use crate::broker::exchange::BindingKey;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::queue::QueueHandle;
use crate::broker::vhost::{QueueSettings, VhostError};
use crate::broker::ConnectionId;

/// Messages the session may hold (queued in its outbox or in flight) before the queue keeps
/// the rest; what it holds is "unacked" to AMQP tooling, the rest "ready".
const SESSION_PREFETCH: u32 = 256;

/// The adapter asks for queues as a connection no AMQP client can be (AMQP numbers its
/// connections from 1). The queues it declares are never exclusive, so the id only names the
/// requester.
pub(super) const MQTT_ADAPTER: ConnectionId = ConnectionId(0);

/// The queue backing one session.
pub struct SessionQueue {
    /// The queue actor (its name is the vhost name).
    pub handle: QueueHandle,
}

/// The queue's name: RabbitMQ's, so tools and scripts written for its MQTT plugin find it.
pub fn queue_name(client_id: &str) -> String {
    format!("mqtt-subscription-{client_id}qos1")
}

/// True if `name` is `queue_name(client_id)` (without building that name).
pub fn is_queue_of(name: &str, client_id: &str) -> bool {
    name.strip_prefix("mqtt-subscription-")
        .and_then(|rest| rest.strip_suffix("qos1"))
        == Some(client_id)
}

impl SessionQueue {
    /// Declares the session's queue (or takes over an existing one of that name, as a resumed
    /// RabbitMQ session does). `durable` for sessions that outlive their connection. Holds at
    /// most `max_queued_messages` ready messages and refuses newer ones beyond that, as
    /// Mosquitto's option of that name does.
    pub fn declare(
        mqtt: &Mqtt,
        client_id: &str,
        durable: bool,
    ) -> Result<SessionQueue, VhostError> {
        let max = mqtt.core.config.mqtt.max_queued_messages;
        let mut arguments = Headers::new();
        arguments.push(
            "x-max-length",
            HeaderValue::I64(i64::try_from(max).unwrap_or(i64::MAX)),
        );
        arguments.push("x-overflow", HeaderValue::string("reject-publish"));
        let settings = QueueSettings {
            durable,
            exclusive: false,
            auto_delete: false,
            arguments,
            mqtt_session: true,
        };
        let info =
            mqtt.vhost
                .declare_queue(&queue_name(client_id), settings, false, MQTT_ADAPTER)?;
        Ok(SessionQueue {
            handle: info.handle,
        })
    }

    /// Binds the queue to the MQTT exchange with `filter` (an MQTT topic filter).
    pub fn bind(&self, mqtt: &Mqtt, filter: &str) {
        let vhost = &mqtt.vhost;
        let exchange = vhost.mqtt_exchange().name.to_string();
        if let Err(e) = vhost.bind_queue(
            self.handle.name(),
            &exchange,
            BindingKey::Mqtt(filter),
            Headers::empty(),
            MQTT_ADAPTER,
        ) {
            // Only if an AMQP client deleted the queue under the session.
            tracing::warn!(queue = %self.handle.name(), %filter, error = %e, "cannot bind session queue");
        }
    }

    /// Removes the binding for `filter`.
    pub fn unbind(&self, mqtt: &Mqtt, filter: &str) {
        let vhost = &mqtt.vhost;
        let exchange = vhost.mqtt_exchange().name.to_string();
        let _ = vhost.unbind_queue(
            self.handle.name(),
            &exchange,
            BindingKey::Mqtt(filter),
            Headers::empty(),
            MQTT_ADAPTER,
        );
    }

    /// The session's connection is up: deliver to it. Replaces the consumer of a connection it
    /// took over, so the queue never sees two consumers with one tag.
    pub fn consume(&self, session: &Arc<Session>) {
        self.handle.cancel_nowait(tag(session), false);
        SessionSink::consume(
            session,
            &self.handle,
            SendAs::Subscriptions,
            SESSION_PREFETCH,
        );
    }

    /// The session's connection went away: stop delivering. Messages in flight stay with the
    /// session, to be re-sent with their packet identifiers on resume [MQTT-4.4.0-1]; the ones
    /// it had queued but not sent go back (`Session::detach` requeues them).
    pub fn stop_consuming(&self, session: &Session) {
        self.handle.cancel_nowait(tag(session), false);
    }

    /// The session ended: the queue goes with its bindings and messages.
    pub fn delete(&self, mqtt: &Mqtt) {
        mqtt.vhost.delete_queue_now(&self.handle);
    }
}
