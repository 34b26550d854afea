//! SUBSCRIBE and UNSUBSCRIBE: each filter becomes a binding on the MQTT exchange — of the
//! session's queue (`session_queue`) once it has one, of its shared group's queue, or of the
//! session itself (clean sessions with QoS 0 subscriptions only); retained messages are sent as
//! the Retain Handling option says.

use std::sync::Arc;

use bytes::BytesMut;
use ferromq_mqtt::{
    topic::parse_shared, Packet, Properties, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscribeFilter, UnsubAck, Unsubscribe,
};

use super::conn::Conn;
use super::reason::MqttError;
use super::session::{Outgoing, Session, Subscription};
use super::session_queue::SessionQueue;
use super::shared::SharedGroup;
use super::Mqtt;
use crate::broker::binding::{Binding, BindingOptions, Subscriber};
use crate::broker::exchange::BindingKey;
use crate::broker::headers::Headers;
use crate::broker::routing_key;

impl Conn {
    /// SUBSCRIBE: bind every filter, answer SUBACK, then queue matching retained messages
    /// (SUBACK is written first, so the client sees it before them).
    pub(super) fn on_subscribe(
        &mut self,
        sub: Subscribe,
        wbuf: &mut BytesMut,
    ) -> Result<(), MqttError> {
        let id = sub.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(sub.filters.len());
        let mut retained_for = Vec::new();
        for f in sub.filters {
            let shared = parse_shared(&f.filter).map(|(g, flt)| (g.to_string(), flt.to_string()));
            if shared.is_some() && f.options.no_local && self.version.is_v5() {
                // [MQTT-3.8.3-4]
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "No Local on a shared subscription",
                ));
            }
            let plain_filter = shared.as_ref().map_or(f.filter.as_str(), |(_, flt)| flt);
            if !self.access().may_subscribe(plain_filter) {
                tracing::info!(peer = %self.peer, client_id = %self.session.client_id,
                    user = self.access.user.as_deref().unwrap_or(""), filter = %f.filter,
                    "MQTT SUBSCRIBE refused by ACL / permissions");
                reasons.push(super::reason::denied_subscription(self.version));
                continue;
            }
            let subscription = Subscription {
                options: f.options,
                id,
            };
            let Some(existed) = self.subscribe_one(&f.filter, shared, subscription) else {
                // The group's queue name is taken by an AMQP queue declared otherwise.
                reasons.push(ReasonCode::UNSPECIFIED_ERROR);
                continue;
            };
            reasons.push(ReasonCode(f.options.qos as u8));
            let send_retained = match f.options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
            // Retained messages are not sent to shared subscriptions (MQTT 5.0 section 4.8.2).
            if send_retained && parse_shared(&f.filter).is_none() {
                retained_for.push((f, id));
            }
        }
        self.send(
            wbuf,
            &Packet::SubAck(SubAck {
                packet_id: sub.packet_id,
                reasons,
                properties: Properties::default(),
            }),
        );
        for (f, id) in retained_for {
            self.send_retained(&f, id);
        }
        super::durable::record(&self.mqtt, &self.session);
        Ok(())
    }

    /// Binds one filter; returns whether the session already had it (then it is replaced
    /// [MQTT-3.8.4-3]), or `None` if a shared group's queue could not be declared.
    fn subscribe_one(
        &mut self,
        filter: &str,
        shared: Option<(String, String)>,
        subscription: Subscription,
    ) -> Option<bool> {
        let mqtt = &self.mqtt;
        if let Some((group, shared_filter)) = shared {
            let previous = self.session.lock().subscriptions.contains_key(filter);
            return join_group(
                mqtt,
                &self.session,
                filter,
                (&group, &shared_filter),
                subscription,
            )
            .then_some(previous);
        }
        let previous = self
            .session
            .lock()
            .subscriptions
            .insert(filter.to_string(), subscription);
        if let Some(old) = previous {
            unbind(mqtt, &self.session, filter, old);
        }
        if subscription.options.qos as u8 > 0 {
            ensure_queue(mqtt, &self.session, self.session_expiry > 0);
        }
        bind(mqtt, &self.session, filter, subscription);
        Some(previous.is_some())
    }

    /// Queues the retained messages matching a new subscription, with RETAIN set
    /// [MQTT-3.3.1-9] and QoS capped by the subscription.
    fn send_retained(&self, f: &SubscribeFilter, id: Option<u32>) {
        let levels = routing_key::parse_mqtt_filter(&f.filter);
        let now = std::time::Instant::now();
        for (_topic, message) in self.mqtt.vhost.retained.matching(&levels) {
            if message.is_expired(now) {
                // An expired retained message is no longer sent (MQTT 5.0 section 3.3.2.3.3).
                // It is not deleted here: a newer one may have replaced it meanwhile.
                continue;
            }
            let qos = (f.options.qos as u8).min(message.qos);
            self.session.enqueue(Outgoing {
                message,
                qos,
                retain: true,
                subscription_ids: id.into_iter().collect(),
                ack: None,
            });
        }
    }

    /// UNSUBSCRIBE: remove each filter; v5 reports per filter whether it existed.
    pub(super) fn on_unsubscribe(&mut self, unsub: Unsubscribe, wbuf: &mut BytesMut) {
        let mut reasons = Vec::with_capacity(unsub.filters.len());
        for filter in unsub.filters {
            let removed = self.session.lock().subscriptions.remove(&filter);
            reasons.push(match removed {
                Some(sub) => {
                    unbind(&self.mqtt, &self.session, &filter, sub);
                    ReasonCode::SUCCESS
                }
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            });
        }
        super::durable::record(&self.mqtt, &self.session);
        self.send(
            wbuf,
            &Packet::UnsubAck(UnsubAck {
                packet_id: unsub.packet_id,
                reasons,
                properties: Properties::default(),
            }),
        );
    }
}

fn binding_options(s: Subscription) -> BindingOptions {
    BindingOptions {
        max_qos: s.options.qos as u8,
        no_local: s.options.no_local,
        retain_as_published: s.options.retain_as_published,
        subscription_id: s.id,
    }
}

/// Makes the session a member of shared group `group` for `shared_filter` (declaring the
/// group's queue if needed) and records the subscription `filter` (`$share/...`) in it. False
/// if the group's queue could not be declared (its name taken by an AMQP queue declared
/// otherwise).
pub fn join_group(
    mqtt: &Arc<Mqtt>,
    session: &Arc<Session>,
    filter: &str,
    (group, shared_filter): (&str, &str),
    subscription: Subscription,
) -> bool {
    let g = match mqtt
        .shared
        .entry((group.to_string(), shared_filter.to_string()))
    {
        dashmap::Entry::Occupied(e) => Arc::clone(e.get()),
        dashmap::Entry::Vacant(e) => match SharedGroup::new(mqtt, group, shared_filter) {
            Ok(g) => Arc::clone(e.insert(g).value()),
            Err(error) => {
                tracing::warn!(client_id = %session.client_id, %filter, %error,
                    "cannot declare the shared subscription's queue");
                return false;
            }
        },
    };
    session
        .lock()
        .subscriptions
        .insert(filter.to_string(), subscription);
    g.join(session, binding_options(subscription));
    true
}

/// Gives the session its queue if it has none yet (see `session_queue`): declared (`durable`
/// for a session that outlives its connection), bound with every non-shared filter the session
/// has (moved off the session itself, where QoS 0 subscriptions of a clean session bind), and
/// consumed while the session is online. If the name is taken by an AMQP queue declared
/// otherwise, the session keeps binding itself directly, which works the same while connected.
pub fn ensure_queue(mqtt: &Arc<Mqtt>, session: &Arc<Session>, durable: bool) {
    if session.lock().queue.is_some() {
        return;
    }
    let queue = match SessionQueue::declare(mqtt, &session.client_id, durable) {
        Ok(q) => Arc::new(q),
        Err(error) => {
            tracing::warn!(client_id = %session.client_id, %error,
                "cannot declare the session's queue; subscriptions bind the session directly");
            return;
        }
    };
    let direct: Vec<(String, Subscription)> = {
        let mut s = session.lock();
        if s.ended {
            drop(s);
            queue.delete(mqtt);
            return;
        }
        s.queue = Some(Arc::clone(&queue));
        s.subscriptions
            .iter()
            .filter(|(f, _)| parse_shared(f).is_none())
            .map(|(f, sub)| (f.clone(), *sub))
            .collect()
    };
    let exchange = mqtt.vhost.mqtt_exchange();
    for (filter, sub) in direct {
        exchange.unbind(
            BindingKey::Mqtt(&filter),
            Headers::empty(),
            &session_binding(session, sub),
        );
        queue.bind(mqtt, &filter);
    }
    if session.is_online() {
        queue.consume(session);
    }
}

/// Binds a non-shared filter: to the session's queue if it has one, else to the session.
fn bind(mqtt: &Arc<Mqtt>, session: &Arc<Session>, filter: &str, sub: Subscription) {
    let queue = session.lock().queue.clone();
    match queue {
        Some(q) => q.bind(mqtt, filter),
        None => {
            mqtt.vhost.mqtt_exchange().bind(
                BindingKey::Mqtt(filter),
                Headers::empty(),
                session_binding(session, sub),
            );
        }
    }
}

fn session_binding(session: &Arc<Session>, s: Subscription) -> Binding {
    let destination: Arc<dyn Subscriber> = session.clone();
    Binding {
        destination,
        options: binding_options(s),
    }
}

/// Removes one subscription's binding (or the session's membership of a shared group; the
/// group's binding goes when its last member leaves).
pub fn unbind(mqtt: &Arc<Mqtt>, session: &Arc<Session>, filter: &str, sub: Subscription) {
    let exchange = mqtt.vhost.mqtt_exchange();
    match parse_shared(filter) {
        Some((group, shared_filter)) => {
            let key = (group.to_string(), shared_filter.to_string());
            let mut emptied = None;
            mqtt.shared.remove_if(&key, |_, g| {
                if g.leave(session) == 0 {
                    emptied = Some(Arc::clone(g));
                    true
                } else {
                    false
                }
            });
            if let Some(g) = emptied {
                g.delete(mqtt);
            }
        }
        None => {
            let queue = session.lock().queue.clone();
            match queue {
                Some(q) => q.unbind(mqtt, filter),
                None => {
                    exchange.unbind(
                        BindingKey::Mqtt(filter),
                        Headers::empty(),
                        &session_binding(session, sub),
                    );
                }
            }
        }
    }
}

/// Calls `f` with each shared-subscription group the session is a member of.
fn for_each_group(mqtt: &Arc<Mqtt>, session: &Arc<Session>, f: impl Fn(&SharedGroup)) {
    let filters: Vec<String> = session.lock().subscriptions.keys().cloned().collect();
    for filter in filters {
        if let Some((group, shared_filter)) = parse_shared(&filter) {
            let key = (group.to_string(), shared_filter.to_string());
            if let Some(g) = mqtt.shared.get(&key) {
                f(&g);
            }
        }
    }
}

/// The session's connection is up: it consumes from its queue and its shared groups again.
pub fn attach_queues(mqtt: &Arc<Mqtt>, session: &Arc<Session>) {
    let queue = session.lock().queue.clone();
    if let Some(q) = queue {
        q.consume(session);
    }
    for_each_group(mqtt, session, |g| g.attach(session));
}

/// The session's connection is gone: its queue and shared groups stop giving it messages.
pub fn detach_queues(mqtt: &Arc<Mqtt>, session: &Arc<Session>) {
    let queue = session.lock().queue.clone();
    if let Some(q) = queue {
        q.stop_consuming(session);
    }
    for_each_group(mqtt, session, |g| g.detach(session));
}
