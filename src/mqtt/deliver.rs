//! Outgoing PUBLISH: pulls what the session has ready into the connection's write buffer,
//! honouring the client's Receive Maximum, Maximum Packet Size and Topic Alias Maximum. A QoS 2
//! PUBLISH of a persistent session first has its packet identifier recorded (`durable_out`)
//! and waits for that, with what comes after it, in `Conn::sends`.

use std::time::Instant;

use bytes::BytesMut;
use ferromq_mqtt::{
    encode_publish, encoded_publish_len, Packet, PacketId, Properties, PubResponse, PublishRef,
    QoS, ReasonCode,
};

use super::alias::OutboundAlias;
use super::conn::Conn;
use super::durable_out::{self, Send};
use super::session::{Outgoing, Resend};
use super::translate::wire_properties;
use crate::broker::queue::Verdict;
use crate::metrics::Metrics;

/// No properties, borrowed by deliveries that have none.
static EMPTY: Properties = Properties::EMPTY;

/// Encodes every delivery the session has ready for this connection.
pub fn pump(conn: &mut Conn, wbuf: &mut BytesMut) {
    let now = Instant::now();
    let mut ready = std::mem::take(&mut conn.ready);
    conn.session
        .pull(conn.generation, conn.client_receive_max, now, &mut ready);
    for r in ready.drain(..) {
        let verdict = r
            .packet_id
            .and_then(|id| durable_out::assign(&conn.mqtt, &conn.session, id.get(), &r.outgoing));
        send_publish(conn, wbuf, r.outgoing, r.packet_id, false, verdict, now);
    }
    conn.ready = ready;
}

/// Writes what waited in `Conn::sends` and may go now.
pub fn write_ready(conn: &mut Conn, wbuf: &mut BytesMut) {
    let mut ready = Vec::new();
    conn.sends.take_ready(&mut ready);
    let now = Instant::now();
    for send in ready {
        write(conn, wbuf, send, now);
    }
}

/// Sends PUBREL for `packet_id` once `verdict` (its `released` record) allows.
pub fn send_pubrel(
    conn: &mut Conn,
    wbuf: &mut BytesMut,
    packet_id: PacketId,
    reason: ReasonCode,
    verdict: Option<Verdict>,
) {
    if let Some(send) = conn.sends.push(Send::PubRel(packet_id, reason), verdict) {
        write(conn, wbuf, send, Instant::now());
    }
}

fn send_publish(
    conn: &mut Conn,
    wbuf: &mut BytesMut,
    outgoing: Outgoing,
    packet_id: Option<PacketId>,
    dup: bool,
    verdict: Option<Verdict>,
    now: Instant,
) {
    let send = Send::Publish {
        outgoing,
        packet_id,
        dup,
    };
    if let Some(send) = conn.sends.push(send, verdict) {
        write(conn, wbuf, send, now);
    }
}

fn write(conn: &mut Conn, wbuf: &mut BytesMut, send: Send, now: Instant) {
    match send {
        Send::Publish {
            outgoing,
            packet_id,
            dup,
        } => write_publish(conn, wbuf, &outgoing, packet_id, dup, now),
        Send::PubRel(packet_id, reason) => conn.send(
            wbuf,
            &Packet::PubRel(PubResponse {
                packet_id,
                reason,
                properties: Properties::default(),
            }),
        ),
    }
}

/// On resuming a persistent session, re-sends unacknowledged PUBLISH (DUP set) and PUBREL in
/// their original order [MQTT-4.4.0-1].
pub fn resend_inflight(conn: &mut Conn, wbuf: &mut BytesMut) {
    let now = Instant::now();
    for item in conn.session.resend_list() {
        match item {
            Resend::Publish(id, outgoing) => {
                let verdict = durable_out::resend(&conn.mqtt, &conn.session, id.get());
                send_publish(conn, wbuf, outgoing, Some(id), true, verdict, now);
            }
            Resend::PubRel(id) => {
                let verdict = durable_out::resend(&conn.mqtt, &conn.session, id.get());
                send_pubrel(conn, wbuf, id, ReasonCode::SUCCESS, verdict);
            }
        }
    }
}

fn write_publish(
    conn: &mut Conn,
    wbuf: &mut BytesMut,
    outgoing: &Outgoing,
    packet_id: Option<PacketId>,
    dup: bool,
    now: Instant,
) {
    // MQTT publishes were validated on the way in; an AMQP routing key can spell a topic MQTT
    // cannot carry (empty, or with `+` / `#`), which a client would treat as a protocol error.
    if outgoing.message.properties.amqp.is_some()
        && !ferromq_mqtt::topic::valid_topic_name(&outgoing.message.topic)
    {
        if let Some(id) = packet_id {
            conn.session.forget_inflight(id);
            durable_out::complete(&conn.mqtt, &conn.session, id.get());
        }
        Metrics::add(&conn.mqtt.core.metrics.messages_dropped, 1);
        tracing::debug!(
            client_id = %conn.session.client_id,
            topic = %outgoing.message.topic,
            "message from AMQP has no valid MQTT topic; not sent"
        );
        return;
    }
    // The ACL's read rules hold back denied topics a granted filter also matches (Mosquitto
    // checks each message it sends). Counted as delivered: acknowledged to its queue.
    if !conn.access().may_receive(&outgoing.message.topic) {
        if let Some(id) = packet_id {
            conn.session.forget_inflight(id);
        }
        tracing::debug!(
            client_id = %conn.session.client_id,
            topic = %outgoing.message.topic,
            "message on a topic the ACL denies this client; not sent"
        );
        return;
    }
    // Encoded from the message as it is held, through a borrowed `PublishRef`: no topic copy
    // and no property set per delivery unless the message has properties (README, Benchmarks).
    let v5 = conn.version.is_v5();
    let mut properties = if v5 {
        wire_properties(outgoing, now)
    } else {
        None
    };
    let mut topic: &str = &outgoing.message.topic;
    if v5 {
        // A message larger than the client's Maximum Packet Size is not sent; it counts as
        // delivered [MQTT-3.1.2-25]. Checked with the full topic, before an alias is assigned,
        // so an alias is never announced in a packet that is then dropped.
        let full = publish_ref(outgoing, packet_id, dup, topic, properties.as_ref());
        let too_large =
            encoded_publish_len(&full, conn.version).map_or(true, |n| n > conn.client_max_packet);
        if too_large {
            if let Some(id) = packet_id {
                conn.session.forget_inflight(id);
                durable_out::complete(&conn.mqtt, &conn.session, id.get());
            }
            Metrics::add(&conn.mqtt.core.metrics.messages_dropped, 1);
            tracing::debug!(client_id = %conn.session.client_id, "message over the client's Maximum Packet Size; not sent");
            return;
        }
        let alias = match conn.aliases_out.for_topic(topic) {
            OutboundAlias::None => None,
            OutboundAlias::Set(alias) => Some(alias),
            OutboundAlias::Use(alias) => {
                topic = "";
                Some(alias)
            }
        };
        if let Some(alias) = alias {
            properties
                .get_or_insert_with(Properties::default)
                .topic_alias = Some(alias);
        }
    }
    let publish = publish_ref(outgoing, packet_id, dup, topic, properties.as_ref());
    if let Err(e) = encode_publish(&publish, conn.version, wbuf) {
        tracing::warn!(client_id = %conn.session.client_id, error = %e, "cannot encode PUBLISH; skipped");
        return;
    }
    Metrics::add(&conn.mqtt.core.metrics.messages_sent, 1);
}

/// The PUBLISH for `outgoing` under `topic` (its own, or empty behind a topic alias) with
/// `properties` (none: `EMPTY`).
fn publish_ref<'a>(
    outgoing: &'a Outgoing,
    packet_id: Option<PacketId>,
    dup: bool,
    topic: &'a str,
    properties: Option<&'a Properties>,
) -> PublishRef<'a> {
    PublishRef {
        dup,
        qos: QoS::from_u8(outgoing.qos).unwrap_or(QoS::AtMostOnce),
        retain: outgoing.retain,
        topic,
        packet_id,
        properties: properties.unwrap_or(&EMPTY),
        payload: &outgoing.message.body,
    }
}
