//! PUBLISH from a client (QoS 0/1/2 with PUBACK / PUBREC), and PUBREL completing QoS 2.
//! QoS 2 is exactly-once by remembering received packet identifiers in the session until PUBREL
//! (MQTT 3.1.1 section 4.3.3, method B): a re-sent PUBLISH with a remembered id is acknowledged
//! but not routed again.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use ferromq_mqtt::{Packet, Properties, PubResponse, Publish, QoS, ReasonCode};

use super::conn::Conn;
use super::reason::MqttError;
use super::translate::to_message;
use crate::broker::message::Message;
use crate::broker::queue::Verdict;
use crate::metrics::Metrics;

impl Conn {
    /// A PUBLISH from the client.
    pub(super) fn on_publish(
        &mut self,
        mut publish: Publish,
        wbuf: &mut BytesMut,
    ) -> Result<(), MqttError> {
        self.aliases_in
            .resolve(&mut publish.topic, publish.properties.topic_alias)?;
        publish.properties.topic_alias = None;
        Metrics::add(&self.mqtt.core.metrics.messages_received, 1);
        let packet_id = publish.packet_id;
        if !self.access().may_publish(&publish.topic) {
            self.refuse_publish(&publish, wbuf);
            return Ok(());
        }
        match (publish.qos, packet_id) {
            (QoS::AtMostOnce, _) => {
                self.route(publish);
            }
            (QoS::AtLeastOnce, Some(id)) => {
                let (reached, stored) = self.route_acknowledged(publish);
                let reason = self.no_subscribers_reason(reached);
                self.acknowledge(Packet::PubAck(response(id, reason)), stored, wbuf);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let first_time = {
                    let mut s = self.session.lock();
                    let inbound = &mut s.qos2_mut().inbound;
                    if !inbound.contains(&id.get())
                        && inbound.len() >= usize::from(self.mqtt.core.config.mqtt.receive_maximum)
                    {
                        // [MQTT-3.3.4-7]: more unacknowledged QoS 2 than our Receive Maximum.
                        return Err(MqttError::protocol(
                            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                            "more QoS 2 publishes in flight than Receive Maximum",
                        ));
                    }
                    inbound.insert(id.get())
                };
                let (reason, stored) = if first_time {
                    // The id is remembered durably too, so a re-sent PUBLISH is recognised
                    // after a restart as well (exactly once).
                    let marker = super::durable::remember_qos2(&self.mqtt, &self.session, id.get());
                    let (reached, stored) = self.route_acknowledged(publish);
                    (
                        self.no_subscribers_reason(reached),
                        super::publish_ack::both(stored, marker),
                    )
                } else {
                    (ReasonCode::SUCCESS, None)
                };
                self.acknowledge(Packet::PubRec(response(id, reason)), stored, wbuf);
            }
            // The codec guarantees a packet identifier for QoS > 0.
            (_, None) => {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "QoS > 0 without packet identifier",
                ));
            }
        }
        Ok(())
    }

    /// PUBREL: the client releases a QoS 2 packet identifier; answer PUBCOMP.
    pub(super) fn on_pubrel(&mut self, rel: PubResponse, wbuf: &mut BytesMut) {
        let known = self
            .session
            .lock()
            .qos2
            .as_mut()
            .is_some_and(|q| q.inbound.remove(&rel.packet_id.get()));
        let (reason, released) = if known {
            let released =
                super::durable::release_qos2(&self.mqtt, &self.session, rel.packet_id.get());
            (ReasonCode::SUCCESS, released)
        } else {
            (ReasonCode::PACKET_IDENTIFIER_NOT_FOUND, None)
        };
        // In order with the PUBACKs / PUBRECs still waiting for their messages to be stored.
        let pubcomp = Packet::PubComp(response(rel.packet_id, reason));
        self.acknowledge(pubcomp, released, wbuf);
    }

    /// A PUBLISH the client may not send: dropped, with v5's 0x87 in PUBACK / PUBREC; v3
    /// gets the usual acknowledgement (its QoS 2 id is remembered so PUBREL completes).
    fn refuse_publish(&mut self, publish: &Publish, wbuf: &mut BytesMut) {
        tracing::info!(peer = %self.peer, client_id = %self.session.client_id,
            user = self.access.user.as_deref().unwrap_or(""), topic = %publish.topic,
            "MQTT PUBLISH refused by ACL / permissions");
        let reason = super::reason::denied_publish(self.version);
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                self.acknowledge(Packet::PubAck(response(id, reason)), None, wbuf)
            }
            (QoS::ExactlyOnce, Some(id)) => {
                if reason == ReasonCode::SUCCESS {
                    self.session.lock().qos2_mut().inbound.insert(id.get());
                }
                self.acknowledge(Packet::PubRec(response(id, reason)), None, wbuf);
            }
            _ => {}
        }
    }

    fn route(&mut self, publish: Publish) -> usize {
        let message = self.message_of(publish);
        self.mqtt.publish(message, &mut self.backpressure)
    }

    /// `route` for QoS 1/2: also the verdict of the queues that store the message durably.
    fn route_acknowledged(&mut self, publish: Publish) -> (usize, Option<Verdict>) {
        let message = self.message_of(publish);
        self.mqtt
            .publish_acknowledged(message, &mut self.backpressure)
    }

    /// The core message of a PUBLISH from this client.
    fn message_of(&self, publish: Publish) -> Arc<Message> {
        let exchange = &self.mqtt.vhost.mqtt_exchange().name;
        Arc::new(to_message(
            publish,
            &self.session.client_id,
            exchange,
            Instant::now(),
        ))
    }

    /// Sends PUBACK / PUBREC now, or once the message is stored and those before it are sent.
    fn acknowledge(&mut self, packet: Packet, stored: Option<Verdict>, wbuf: &mut BytesMut) {
        if let Some(now) = self.acks.push(packet, stored) {
            self.send(wbuf, &now);
        }
    }

    /// v5 answers 0x10 when nobody received the message, as Mosquitto does.
    fn no_subscribers_reason(&self, reached: usize) -> ReasonCode {
        if reached == 0 && self.version.is_v5() {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        }
    }
}

fn response(packet_id: ferromq_mqtt::PacketId, reason: ReasonCode) -> PubResponse {
    PubResponse {
        packet_id,
        reason,
        properties: Properties::default(),
    }
}
