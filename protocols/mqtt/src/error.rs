//! Codec errors: `DecodeError` for bytes a peer sent, `EncodeError` for packets we cannot put on
//! the wire. `DecodeError::reason_code` is the one place a decode failure becomes an MQTT 5.0
//! reason code; the broker's adapter decides what to do with it (v3 simply closes).

use thiserror::Error;

use crate::reason::ReasonCode;

/// Why a packet could not be decoded. Every variant is fatal for the connection
/// ([MQTT-4.8.0-1] 3.1.1, section 4.13 in 5.0); `reason_code` gives the v5 code to close with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The bytes do not follow the packet format (reason 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed bytes that break a protocol rule (reason 0x82).
    #[error("protocol error: {0}")]
    ProtocolError(&'static str),
    /// The whole packet, fixed header included, exceeds the receiver's limit (reason 0x95).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// Size of the whole packet announced by its fixed header.
        size: usize,
        /// The limit it was checked against.
        max: usize,
    },
    /// CONNECT with a protocol level this codec does not speak, or a level that does not go with
    /// the protocol name (reason 0x84; v3 CONNACK return code 1).
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT with a protocol name other than `MQTT` or `MQIsdp` (reason 0x84, [MQTT-3.1.2-1]).
    #[error("invalid protocol name")]
    InvalidProtocolName,
    /// A topic name (PUBLISH, will topic) is empty or contains a wildcard or U+0000 (reason 0x90).
    #[error("invalid topic name: {0}")]
    TopicNameInvalid(&'static str),
    /// A topic filter (SUBSCRIBE, UNSUBSCRIBE) has misplaced wildcards, is empty, or has a bad
    /// `$share/` shape (reason 0x8F).
    #[error("invalid topic filter: {0}")]
    TopicFilterInvalid(&'static str),
    /// A Topic Alias property of 0 (reason 0x94, [MQTT-3.3.2-8]).
    #[error("topic alias 0 is not permitted")]
    TopicAliasInvalid,
}

impl DecodeError {
    /// The MQTT 5.0 reason code to put in the CONNACK or DISCONNECT that closes the connection.
    /// For 3.1/3.1.1 only CONNECT errors have a wire code: map with `ReasonCode::to_v3_connack`.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::ProtocolError(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::InvalidProtocolName => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            DecodeError::TopicNameInvalid(_) => ReasonCode::TOPIC_NAME_INVALID,
            DecodeError::TopicFilterInvalid(_) => ReasonCode::TOPIC_FILTER_INVALID,
            DecodeError::TopicAliasInvalid => ReasonCode::TOPIC_ALIAS_INVALID,
        }
    }
}

/// Why a packet could not be encoded. Nothing is written to the output buffer on error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A UTF-8 string or binary data field longer than 65,535 bytes (never truncated).
    #[error("{field} is {len} bytes, more than 65535")]
    StringTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The remaining length would exceed 268,435,455 bytes, the largest the fixed header holds.
    #[error("packet remaining length {size} exceeds 268435455")]
    PacketTooLarge {
        /// The remaining length the packet would need.
        size: usize,
    },
    /// A QoS 1/2 PUBLISH without a packet identifier.
    #[error("QoS > 0 PUBLISH without a packet identifier")]
    MissingPacketId,
    /// A QoS 0 PUBLISH with a packet identifier [MQTT-2.2.1-2].
    #[error("QoS 0 PUBLISH with a packet identifier")]
    UnexpectedPacketId,
    /// The packet (or a field of it) does not exist in the target protocol version.
    #[error("not representable in this protocol version: {0}")]
    UnsupportedInVersion(&'static str),
    /// A value outside the range its wire encoding can carry.
    #[error("value out of range: {0}")]
    InvalidValue(&'static str),
}
