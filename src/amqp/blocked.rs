//! connection.blocked / connection.unblocked (RabbitMQ extension, see its "Blocked
//! Connection Notifications"): sent to clients that announced the `connection.blocked`
//! capability when a resource alarm starts and stops holding their connection.

use std::net::SocketAddr;

use ferromq_amqp::ShortString;
use ferromq_amqp::{
    encode_frame, ChannelId, ConnectionBlocked, ConnectionUnblocked, Frame, Method,
};

use super::reply_code::AmqpError;
use crate::limits::AlarmState;

/// Queues connection.blocked with the alarm's reason (`Some`) or connection.unblocked (`None`).
pub fn notify(
    wbuf: &mut bytes::BytesMut,
    alarm: Option<AlarmState>,
    peer: SocketAddr,
) -> Result<(), AmqpError> {
    let method = match alarm {
        Some(state) => {
            tracing::info!(%peer, reason = state.reason(), "AMQP: connection blocked");
            Method::ConnectionBlocked(ConnectionBlocked {
                reason: ShortString::truncating(state.reason()),
            })
        }
        None => {
            tracing::info!(%peer, "AMQP: connection unblocked");
            Method::ConnectionUnblocked(ConnectionUnblocked)
        }
    };
    encode_frame(&Frame::Method(ChannelId(0), method), wbuf).map_err(|e| {
        AmqpError::connection(
            ferromq_amqp::reply_code::INTERNAL_ERROR,
            e.to_string(),
            None,
        )
    })
}
