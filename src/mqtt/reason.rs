//! The one place MQTT adapter errors become wire codes: v5 DISCONNECT reason codes (v3 has
//! none and just closes the socket).

use std::borrow::Cow;

use ferromq_mqtt::{DecodeError, ReasonCode};

/// Why a connection ends abnormally.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The client sent bytes that are not a valid packet.
    #[error("bad packet: {0}")]
    Decode(#[from] DecodeError),
    /// The client broke a protocol rule.
    #[error("protocol violation: {why}")]
    Protocol {
        /// The v5 reason code to send.
        code: ReasonCode,
        /// What happened, for the log and the v5 reason string.
        why: Cow<'static, str>,
    },
    /// Nothing received within 1.5 x keep alive [MQTT-3.1.2-24].
    #[error("keep alive timeout")]
    KeepAliveTimeout,
    /// Another connection with the same client id took the session [MQTT-3.1.4-3].
    #[error("session taken over")]
    TakenOver,
    /// The client closed the socket without DISCONNECT.
    #[error("connection closed by client without DISCONNECT")]
    Eof,
}

impl MqttError {
    /// A protocol error with reason `code`.
    pub fn protocol(code: ReasonCode, why: impl Into<Cow<'static, str>>) -> MqttError {
        MqttError::Protocol {
            code,
            why: why.into(),
        }
    }

    /// The v5 DISCONNECT reason to send before closing, if any is sent at all.
    pub fn disconnect_code(&self) -> Option<ReasonCode> {
        match self {
            MqttError::Io(_) | MqttError::Eof => None,
            MqttError::Decode(e) => Some(e.reason_code()),
            MqttError::Protocol { code, .. } => Some(*code),
            MqttError::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            MqttError::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
        }
    }

    /// True when the client misbehaved (logged at warn rather than debug).
    pub fn is_client_fault(&self) -> bool {
        matches!(self, MqttError::Decode(_) | MqttError::Protocol { .. })
    }
}

/// The code a SUBSCRIBE filter refused by ACL or permissions gets in SUBACK: v5 0x87 Not
/// authorized; 3.1.1 has only 0x80 Failure [MQTT-3.9.3].
pub fn denied_subscription(version: ferromq_mqtt::ProtocolVersion) -> ReasonCode {
    if version.is_v5() {
        ReasonCode::NOT_AUTHORIZED
    } else {
        ReasonCode::UNSPECIFIED_ERROR
    }
}

/// The PUBACK / PUBREC code of a PUBLISH refused by ACL or permissions: v5 0x87 Not
/// authorized; v3 cannot say no, so it is acknowledged and dropped (as Mosquitto does).
pub fn denied_publish(version: ferromq_mqtt::ProtocolVersion) -> ReasonCode {
    if version.is_v5() {
        ReasonCode::NOT_AUTHORIZED
    } else {
        ReasonCode::SUCCESS
    }
}
