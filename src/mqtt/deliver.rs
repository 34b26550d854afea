//! Outgoing PUBLISH: pulls what the session has ready into the connection's write buffer,
//! honouring the client's Receive Maximum, Maximum Packet Size and Topic Alias Maximum.

use std::time::Instant;

use bytes::BytesMut;
use ferromq_mqtt::{encoded_len, Packet, PacketId, Properties, PubResponse, ReasonCode};

use super::alias::OutboundAlias;
use super::conn::Conn;
use super::session::{Outgoing, Resend};
use super::translate::to_publish;
use crate::metrics::Metrics;

/// Encodes every delivery the session has ready for this connection.
pub fn pump(conn: &mut Conn, wbuf: &mut BytesMut) {
    let now = Instant::now();
    let mut ready = std::mem::take(&mut conn.ready);
    conn.session
        .pull(conn.generation, conn.client_receive_max, now, &mut ready);
    for r in ready.drain(..) {
        write_publish(conn, wbuf, &r.outgoing, r.packet_id, false, now);
    }
    conn.ready = ready;
}

/// On resuming a persistent session, re-sends unacknowledged PUBLISH (DUP set) and PUBREL in
/// their original order [MQTT-4.4.0-1].
pub fn resend_inflight(conn: &mut Conn, wbuf: &mut BytesMut) {
    let now = Instant::now();
    for item in conn.session.resend_list() {
        match item {
            Resend::Publish(id, outgoing) => {
                write_publish(conn, wbuf, &outgoing, Some(id), true, now)
            }
            Resend::PubRel(id) => conn.send(
                wbuf,
                &Packet::PubRel(PubResponse {
                    packet_id: id,
                    reason: ReasonCode::SUCCESS,
                    properties: Properties::default(),
                }),
            ),
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
    let mut publish = to_publish(outgoing, packet_id, dup, now);
    if conn.version.is_v5() {
        let packet = Packet::Publish(publish);
        // A message larger than the client's Maximum Packet Size is not sent; it counts as
        // delivered [MQTT-3.1.2-25]. Checked with the full topic, before an alias is assigned,
        // so an alias is never announced in a packet that is then dropped.
        let too_large =
            encoded_len(&packet, conn.version).map_or(true, |n| n > conn.client_max_packet);
        let Packet::Publish(p) = packet else { return };
        publish = p;
        if too_large {
            if let Some(id) = packet_id {
                conn.session.forget_inflight(id);
            }
            Metrics::add(&conn.mqtt.core.metrics.messages_dropped, 1);
            tracing::debug!(client_id = %conn.session.client_id, "message over the client's Maximum Packet Size; not sent");
            return;
        }
        match conn.aliases_out.for_topic(&publish.topic) {
            OutboundAlias::None => {}
            OutboundAlias::Set(alias) => publish.properties.topic_alias = Some(alias),
            OutboundAlias::Use(alias) => {
                publish.topic.clear();
                publish.properties.topic_alias = Some(alias);
            }
        }
    }
    conn.send(wbuf, &Packet::Publish(publish));
    Metrics::add(&conn.mqtt.core.metrics.messages_sent, 1);
}
