//! Acknowledgements from the client for messages the broker sent: PUBACK (QoS 1), PUBREC and
//! PUBCOMP (QoS 2). Each frees a slot of the client's Receive Maximum window.

use bytes::BytesMut;
use ferromq_mqtt::{PubResponse, ReasonCode};

use super::conn::Conn;
use super::durable_out;

impl Conn {
    /// PUBACK: a QoS 1 delivery is complete.
    pub(super) fn on_puback(&mut self, ack: PubResponse) {
        if !self.session.puback(ack.packet_id) {
            tracing::debug!(client_id = %self.session.client_id, packet_id = ack.packet_id.get(), "PUBACK for unknown packet id");
        }
    }

    /// PUBREC: answer PUBREL (also for an id we no longer know, with 0x92 in v5, so the
    /// client can finish its side).
    ///
    /// A persistent session's durable record of the identifier is marked released first (and
    /// PUBREL waits for it), before the queue settles the message (`durable_out`).
    pub(super) fn on_pubrec(&mut self, rec: PubResponse, wbuf: &mut BytesMut) {
        let accepted = rec.reason.is_success();
        let id = rec.packet_id.get();
        let verdict = if accepted {
            durable_out::release(&self.mqtt, &self.session, id)
        } else {
            None
        };
        let known = self.session.pubrec(rec.packet_id, accepted);
        if !accepted {
            // v5: a PUBREC with a failure reason ends the exchange (MQTT 5.0 section 4.3.3).
            durable_out::complete(&self.mqtt, &self.session, id);
            return;
        }
        let reason = if known {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        super::deliver::send_pubrel(self, wbuf, rec.packet_id, reason, verdict);
    }

    /// PUBCOMP: a QoS 2 delivery is complete.
    pub(super) fn on_pubcomp(&mut self, comp: PubResponse) {
        if self.session.pubcomp(comp.packet_id) {
            durable_out::complete(&self.mqtt, &self.session, comp.packet_id.get());
        } else {
            tracing::debug!(client_id = %self.session.client_id, packet_id = comp.packet_id.get(), "PUBCOMP for unknown packet id");
        }
    }
}
