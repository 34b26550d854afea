//! The one place AMQP adapter errors become wire codes: connection exceptions
//! (connection.close, the connection ends) and channel exceptions (channel.close, the
//! connection lives on), with RabbitMQ's reply codes and texts ("NOT_FOUND - no queue 'q'
//! in vhost '/'").

use ferromq_amqp::{reply_code, DecodeError, MethodId};

use crate::broker::vhost::VhostError;

/// An error that closes a channel or the whole connection.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// A connection exception: connection.close with this code and text.
    #[error("{text}")]
    Connection {
        /// AMQP reply code (5xx, 320, 403, ...).
        code: u16,
        /// Reply text (with the "NAME - " prefix).
        text: String,
        /// The method that failed, if any.
        method: Option<MethodId>,
    },
    /// A channel exception: channel.close with this code and text.
    #[error("{text}")]
    Channel {
        /// AMQP reply code (4xx).
        code: u16,
        /// Reply text (with the "NAME - " prefix).
        text: String,
        /// The method that failed, if any.
        method: Option<MethodId>,
    },
    /// The socket failed or closed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl AmqpError {
    /// A connection exception with RabbitMQ's "NAME - text" reply text.
    pub fn connection(
        code: u16,
        text: impl std::fmt::Display,
        method: Option<MethodId>,
    ) -> AmqpError {
        AmqpError::Connection {
            code,
            text: format!("{} - {text}", reply_code::name(code).unwrap_or("ERROR")),
            method,
        }
    }

    /// A channel exception with RabbitMQ's "NAME - text" reply text.
    pub fn channel(code: u16, text: impl std::fmt::Display, method: Option<MethodId>) -> AmqpError {
        AmqpError::Channel {
            code,
            text: format!("{} - {text}", reply_code::name(code).unwrap_or("ERROR")),
            method,
        }
    }

    /// A core error raised while handling `method`, as the channel exception RabbitMQ sends.
    pub fn from_vhost(e: VhostError, method: MethodId) -> AmqpError {
        let code = match &e {
            VhostError::NotFound(_) => reply_code::NOT_FOUND,
            VhostError::AccessRefused(_) => reply_code::ACCESS_REFUSED,
            VhostError::PreconditionFailed(_) | VhostError::InvalidArgument(_) => {
                reply_code::PRECONDITION_FAILED
            }
            VhostError::ResourceLocked(_) => reply_code::RESOURCE_LOCKED,
            VhostError::NotAllowed(_) => reply_code::NOT_ALLOWED,
        };
        if code == reply_code::NOT_ALLOWED {
            return AmqpError::connection(code, e, Some(method));
        }
        AmqpError::channel(code, e, Some(method))
    }

    /// A frame that could not be decoded: always a connection exception (501/502/503).
    pub fn from_decode(e: &DecodeError) -> AmqpError {
        AmqpError::Connection {
            code: e.reply_code(),
            text: String::from_utf8_lossy(e.reply_text().as_bytes()).into_owned(),
            method: e.failing_method(),
        }
    }
}
