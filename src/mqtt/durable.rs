//! Persistent MQTT sessions across broker restarts. A session that outlives its connection is
//! recorded in the durable definitions (client id, expiry, subscriptions with their options,
//! when it went offline, a will waiting out its delay with its due time) whenever that
//! changes; its messages need nothing more, they are in its durable queue (`session_queue`),
//! which the store restores with its bindings. At start the adapter of each vhost rebuilds
//! each recorded session of it offline, with that queue and its shared-group memberships, so a client
//! reconnecting with clean session 0 finds its session present and its messages.
//!
//! Kept across a crash as well:
//! - the packet identifiers of QoS 2 messages the session received and has not seen released:
//!   small records in the message log (`remember_qos2`; PUBREC waits for them), settled at
//!   PUBREL, so a PUBLISH re-sent after a restart is still recognised;
//! - the packet identifiers of QoS 2 messages in flight to the client, and which of them were
//!   released (`durable_out`): they are re-sent with the same identifier and DUP=1, or as
//!   PUBREL only, so a receiver that delivers at PUBLISH gets each message once;
//! - wall-clock times: a session's expiry counts from when it went offline and a will's delay
//!   from when it was set, not from the restart. A session whose expiry passed while the
//!   broker was down is discarded at start (its queue and records go; its will, if any, is
//!   published then).
//!
//! Not kept (documented): identifiers of QoS 1 messages in flight to the client (they come back
//! from the queue as new deliveries: at least once, as QoS 1 promises). A session recorded
//! while its client was connected counts its expiry from the restart.

use std::sync::Arc;

use bytes::Bytes;
use ferromq_mqtt::{QoS, RetainHandling, SubscriptionOptions};
use tokio::sync::oneshot;

use super::connect::expire_after;
use super::session::{Session, Subscription};
use super::session_queue::{self, SessionQueue};
use super::subscribe;
use super::Mqtt;
use crate::broker::message::Message;
use crate::broker::queue::{Admission, Verdict};
use crate::store::definitions::{MqttSessionDef, MqttSubscriptionDef};

/// Records `session` if it outlives its connection (or forgets it if it no longer does).
/// Recorded in the session's vhost (with the store in memory this does nothing).
pub fn record(mqtt: &Mqtt, session: &Session) {
    let def = {
        let mut s = session.lock();
        if s.ended || s.expiry_secs == 0 {
            None
        } else {
            s.recorded = true;
            let now = std::time::Instant::now();
            let unix = unix_now();
            let will_left = s
                .pending_will
                .as_ref()
                .map(|(due, _)| due.saturating_duration_since(now).as_secs());
            Some(MqttSessionDef {
                will: s
                    .pending_will
                    .as_ref()
                    .zip(will_left)
                    .map(|((_, m), left)| {
                        (u32::try_from(left).unwrap_or(u32::MAX), Message::clone(m))
                    }),
                will_due: will_left.map(|left| unix.saturating_add(left)),
                offline_since: s.offline_since,
                expiry_secs: s.expiry_secs,
                subscriptions: s
                    .subscriptions
                    .iter()
                    .map(|(filter, sub)| subscription_def(filter, sub))
                    .collect(),
            })
        }
    };
    match def {
        Some(def) => mqtt
            .vhost
            .record_mqtt_session(&session.client_id, Some(def)),
        None => forget(mqtt, session),
    }
}

/// The session ended (or no longer outlives its connection): its record goes.
pub fn forget(mqtt: &Mqtt, session: &Session) {
    let markers: Vec<u16> = session
        .lock()
        .qos2
        .as_ref()
        .map_or_else(Vec::new, |q| q.markers.keys().copied().collect());
    for packet_id in markers {
        release_qos2(mqtt, session, packet_id);
    }
    super::durable_out::forget_all(mqtt, session);
    let was_recorded = std::mem::take(&mut session.lock().recorded);
    if was_recorded {
        mqtt.vhost.record_mqtt_session(&session.client_id, None);
    }
}

/// Rebuilds the sessions the store recovered in `mqtt`'s vhost (once per vhost, at start).
pub fn restore(mqtt: &Arc<Mqtt>) {
    let recovered = mqtt
        .core
        .recovered_mqtt_sessions
        .lock()
        .remove(&mqtt.vhost.name)
        .unwrap_or_default();
    let now = unix_now();
    for (client_id, def) in recovered {
        let session = Session::new(Arc::from(client_id.as_str()), Arc::clone(&mqtt.core));
        let name = session_queue::queue_name(&client_id);
        let handle = match mqtt.vhost.queue_handle(&name) {
            Some(handle) => handle,
            // Its queue was deleted before the restart (e.g. by an AMQP client): the session
            // comes back empty.
            None => match SessionQueue::declare(mqtt, &client_id, true) {
                Ok(q) => q.handle,
                Err(error) => {
                    tracing::warn!(%client_id, %error, "persistent MQTT session not restored");
                    continue;
                }
            },
        };
        let queue = Arc::new(SessionQueue { handle });
        // Offline since it was recorded so, else since the crash: counted from now.
        let offline_since = def.offline_since.unwrap_or(now).min(now);
        let expiry_left = expiry_left(def.expiry_secs, offline_since, now);
        {
            let mut s = session.lock();
            s.expiry_secs = def.expiry_secs;
            s.offline_since = Some(offline_since);
            s.queue = Some(Arc::clone(&queue));
            s.recorded = true;
            for (packet_id, id) in mqtt
                .core
                .recovered_qos2
                .lock()
                .remove(&(mqtt.vhost.name.clone(), client_id.clone()))
                .unwrap_or_default()
            {
                let q = s.qos2_mut();
                q.inbound.insert(packet_id);
                q.markers.insert(packet_id, id);
            }
        }
        for sub in &def.subscriptions {
            let subscription = subscription_of(sub);
            match ferromq_mqtt::topic::parse_shared(&sub.filter) {
                Some(shared) => {
                    subscribe::join_group(mqtt, &session, &sub.filter, shared, subscription);
                }
                None => {
                    session
                        .lock()
                        .subscriptions
                        .insert(sub.filter.clone(), subscription);
                    // Restored with the queue already; binding again is a no-op then.
                    queue.bind(mqtt, &sub.filter);
                }
            }
        }
        let out = mqtt
            .core
            .recovered_qos2_out
            .lock()
            .remove(&(mqtt.vhost.name.clone(), client_id.clone()));
        if let Some(out) = out {
            super::durable_out::restore(mqtt, &session, &queue.handle, out);
        }
        mqtt.sessions
            .insert(Arc::clone(&session.client_id), Arc::clone(&session));
        if expiry_left == Some(0) {
            // Expired while the broker was down: discarded now, before any client can resume
            // it; a will still waiting goes out, as when a session ends [MQTT-3.1.3-9].
            if let Some((_, message)) = def.will {
                let mqtt = Arc::clone(mqtt);
                tokio::spawn(async move { mqtt.publish_and_wait(Arc::new(message)).await });
            }
            tracing::info!(%client_id, "persistent MQTT session expired while the broker was down; discarded");
            super::connect::remove_session(mqtt, &session);
            continue;
        }
        if let Some((delay, message)) = def.will {
            // Due at its recorded wall-clock time (older records: its delay from now).
            let delay = def.will_due.map_or(delay, |due| {
                u32::try_from(due.saturating_sub(now)).unwrap_or(u32::MAX)
            });
            let due = std::time::Instant::now() + std::time::Duration::from_secs(u64::from(delay));
            session.lock().pending_will = Some((due, Arc::new(message)));
            super::will::publish_recovered(mqtt, &session, delay);
        }
        if let Some(left) = expiry_left {
            expire_after(mqtt, &session, 0, left);
        }
        tracing::info!(%client_id, subscriptions = def.subscriptions.len(), "persistent MQTT session restored");
    }
}

/// Seconds a session offline since `offline_since` (unix seconds) has left at `now`; `None`
/// for one that never expires, `Some(0)` for one already expired.
fn expiry_left(expiry_secs: u32, offline_since: u64, now: u64) -> Option<u32> {
    if expiry_secs == u32::MAX {
        return None;
    }
    let gone = now.saturating_sub(offline_since);
    Some(
        u64::from(expiry_secs)
            .saturating_sub(gone)
            .try_into()
            .unwrap_or(u32::MAX),
    )
}

/// Now as unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A small record of session `client_id` in the message log (packet identifier state): a core
/// message only the store ever sees.
pub(super) fn marker_message(client_id: &str, body: Bytes) -> Arc<Message> {
    Arc::new(Message {
        exchange: Arc::from(""),
        topic: client_id.to_string(),
        body,
        qos: 1,
        retain: false,
        expires_at: None,
        properties: Default::default(),
        origin: Default::default(),
    })
}

/// The store's name for the QoS 2 packet identifiers session `client_id` received and has not
/// seen released (in the reserved `amq.` namespace: no client can declare it).
pub fn qos2_store_name(client_id: &str) -> String {
    format!("amq.mqtt.qos2/{client_id}")
}

/// Remembers durably that a persistent session received QoS 2 packet `packet_id` (with a
/// durable store only): a small record in the message log, whose verdict the PUBREC waits for.
pub fn remember_qos2(mqtt: &Mqtt, session: &Session, packet_id: u16) -> Option<Verdict> {
    let store = mqtt.vhost.store();
    if !store.is_durable() || session.lock().expiry_secs == 0 {
        return None;
    }
    let marker = marker_message(
        &session.client_id,
        Bytes::copy_from_slice(&packet_id.to_be_bytes()),
    );
    let (tx, rx) = oneshot::channel();
    let id = store.enqueue(
        &qos2_store_name(&session.client_id),
        &marker,
        Some(Box::new(move |written| {
            let _ = tx.send(written);
        })),
    );
    if let Some(old) = session.lock().qos2_mut().markers.insert(packet_id, id) {
        store.settle(&qos2_store_name(&session.client_id), old);
    }
    Some(Box::pin(async move {
        match rx.await {
            Ok(true) => Admission::Accepted,
            _ => Admission::Refused,
        }
    }))
}

/// PUBREL released `packet_id` (or the session ended): its durable record goes. Returns what
/// PUBCOMP waits for, if there was a record: once the client has PUBCOMP it may reuse the
/// packet id, and a restart that still found the record would take the client's next PUBLISH
/// under that id for a duplicate and drop it.
pub fn release_qos2(mqtt: &Mqtt, session: &Session, packet_id: u16) -> Option<Verdict> {
    let id = session
        .lock()
        .qos2
        .as_mut()
        .and_then(|q| q.markers.remove(&packet_id))?;
    // Written at once, not with a later batch of settles.
    let (tx, rx) = oneshot::channel();
    mqtt.vhost.store().settle_now(
        &qos2_store_name(&session.client_id),
        id,
        Some(Box::new(move |written| {
            let _ = tx.send(written);
        })),
    );
    Some(Box::pin(async move {
        match rx.await {
            Ok(true) => Admission::Accepted,
            _ => Admission::Refused,
        }
    }))
}

fn subscription_def(filter: &str, sub: &Subscription) -> MqttSubscriptionDef {
    let o = &sub.options;
    MqttSubscriptionDef {
        filter: filter.to_string(),
        qos: o.qos as u8,
        no_local: o.no_local,
        retain_as_published: o.retain_as_published,
        retain_handling: match o.retain_handling {
            RetainHandling::SendAtSubscribe => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        },
        id: sub.id,
    }
}

fn subscription_of(def: &MqttSubscriptionDef) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos: QoS::from_u8(def.qos).unwrap_or(QoS::AtLeastOnce),
            no_local: def.no_local,
            retain_as_published: def.retain_as_published,
            retain_handling: match def.retain_handling {
                1 => RetainHandling::SendIfNew,
                2 => RetainHandling::DoNotSend,
                _ => RetainHandling::SendAtSubscribe,
            },
        },
        id: def.id,
    }
}

#[cfg(test)]
mod tests {
    use super::expiry_left;

    #[test]
    fn expiry_counts_from_going_offline() {
        assert_eq!(expiry_left(u32::MAX, 0, 1_000), None, "never expires");
        assert_eq!(expiry_left(60, 1_000, 1_000), Some(60));
        assert_eq!(expiry_left(60, 1_000, 1_045), Some(15));
        assert_eq!(expiry_left(60, 1_000, 1_060), Some(0));
        assert_eq!(expiry_left(60, 1_000, 9_999), Some(0));
        // A clock that went back counts as no time gone.
        assert_eq!(expiry_left(60, 2_000, 1_000), Some(60));
    }
}
