//! The packet model: one set of types for MQTT 3.1, 3.1.1 and 5.0 (as rumqttd does).
//! Pure data; decoding lives in `decode.rs`, encoding in `encode.rs`. v3 packets simply
//! carry empty `Properties` and `ReasonCode::SUCCESS`-style codes.

use std::num::NonZeroU16;

use bytes::Bytes;

use crate::properties::Properties;
use crate::reason::ReasonCode;

/// The protocol level announced in CONNECT; it selects the wire format of every later packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// True for MQTT 5.0, the only version with properties and reason codes.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0.
    AtMostOnce = 0,
    /// QoS 1.
    AtLeastOnce = 1,
    /// QoS 2.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses 0..=2; 3 is invalid everywhere [MQTT-3.3.1-4].
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A non-zero packet identifier [MQTT-2.3.1-1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// `None` for 0, which is never a valid packet identifier.
    pub fn new(v: u16) -> Option<PacketId> {
        NonZeroU16::new(v).map(PacketId)
    }

    /// The raw value.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

/// Every MQTT control packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// CONNECT (type 1). Boxed: inline it made every packet 840 bytes, copied on each move of
    /// a PUBLISH from the decoder to the broker, though it comes once per connection.
    Connect(Box<Connect>),
    /// CONNACK (type 2).
    ConnAck(ConnAck),
    /// PUBLISH (type 3).
    Publish(Publish),
    /// PUBACK (type 4).
    PubAck(PubResponse),
    /// PUBREC (type 5).
    PubRec(PubResponse),
    /// PUBREL (type 6).
    PubRel(PubResponse),
    /// PUBCOMP (type 7).
    PubComp(PubResponse),
    /// SUBSCRIBE (type 8).
    Subscribe(Subscribe),
    /// SUBACK (type 9).
    SubAck(SubAck),
    /// UNSUBSCRIBE (type 10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (type 11).
    UnsubAck(UnsubAck),
    /// PINGREQ (type 12).
    PingReq,
    /// PINGRESP (type 13).
    PingResp,
    /// DISCONNECT (type 14).
    Disconnect(Disconnect),
    /// AUTH (type 15, v5 only).
    Auth(Auth),
}

/// CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    /// Protocol name + level.
    pub protocol: ProtocolVersion,
    /// Clean Session (v3) / Clean Start (v5).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// May be empty (the server then assigns one, or rejects it for 3.1 / clean_session=0).
    pub client_id: String,
    /// Will message, if the will flag is set.
    pub will: Option<Will>,
    /// User name, if the flag is set.
    pub username: Option<String>,
    /// Password (binary data), if the flag is set.
    pub password: Option<Bytes>,
    /// v5 CONNECT properties.
    pub properties: Properties,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Will {
    /// Will topic (a topic name, no wildcards).
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain.
    pub retain: bool,
    /// v5 will properties (will delay, expiry, content type, ...).
    pub properties: Properties,
}

/// CONNACK. `code` is always a v5 reason code; for 3.1/3.1.1 the codec maps it to the v3
/// return code on encode (and back on decode), see `ReasonCode::to_v3_connack`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnAck {
    /// Session Present flag.
    pub session_present: bool,
    /// Reason code (v5 numbering).
    pub code: ReasonCode,
    /// v5 CONNACK properties.
    pub properties: Properties,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias is used.
    pub topic: String,
    /// Present iff qos > 0.
    pub packet_id: Option<PacketId>,
    /// v5 PUBLISH properties.
    pub properties: Properties,
    /// Application payload: a zero-copy slice of the read buffer.
    pub payload: Bytes,
}

/// A PUBLISH borrowed from its parts, for `encode_publish`: a broker sending one message to
/// many subscribers writes each copy from the message it holds, without an owned `Publish`
/// per delivery (a copied topic, a 344-byte property set).
#[derive(Debug, Clone, Copy)]
pub struct PublishRef<'a> {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias is used.
    pub topic: &'a str,
    /// Present iff qos > 0.
    pub packet_id: Option<PacketId>,
    /// v5 PUBLISH properties (`Properties::EMPTY` for none).
    pub properties: &'a Properties,
    /// Application payload.
    pub payload: &'a [u8],
}

impl Publish {
    /// This PUBLISH as a `PublishRef`.
    pub fn as_publish_ref(&self) -> PublishRef<'_> {
        PublishRef {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            packet_id: self.packet_id,
            properties: &self.properties,
            payload: &self.payload,
        }
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape.
#[derive(Debug, Clone, PartialEq)]
pub struct PubResponse {
    /// The packet being acknowledged.
    pub packet_id: PacketId,
    /// v5 reason code; `SUCCESS` for v3. On encode a success code with no properties uses the
    /// short 2-byte form [MQTT-3.4.2.1].
    pub reason: ReasonCode,
    /// v5 properties (reason string, user properties).
    pub properties: Properties,
}

/// Retain Handling subscription option (v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send retained messages only if the subscription did not exist.
    SendIfNew,
    /// 2: never send retained messages for this subscription.
    DoNotSend,
}

/// v5 subscription options; v3 uses only `qos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options a v3 subscription implies.
    pub fn with_qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// One topic filter in SUBSCRIBE.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeFilter {
    /// The topic filter (validated wildcard placement); may start with `$share/`.
    pub filter: String,
    /// Its options.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
    /// v5 properties (subscription identifier, user properties).
    pub properties: Properties,
}

/// SUBACK. For v3 the reason codes are 0x00, 0x01, 0x02 or 0x80.
#[derive(Debug, Clone, PartialEq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One code per filter, in order.
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<String>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBACK. v3 has no payload, so `reasons` is empty there.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// v5: one code per filter.
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: Properties,
}

/// DISCONNECT. v3 has no variable header; v5 may use the short form `e0 00`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disconnect {
    /// v5 reason code (`NORMAL_DISCONNECTION` when absent).
    pub reason: ReasonCode,
    /// v5 properties (session expiry, reason string, server reference, user properties).
    pub properties: Properties,
}

/// AUTH (v5 only).
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// `SUCCESS`, `CONTINUE_AUTHENTICATION` or `RE_AUTHENTICATE`.
    pub reason: ReasonCode,
    /// Authentication method / data, reason string, user properties.
    pub properties: Properties,
}
