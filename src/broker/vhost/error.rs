//! Errors of vhost operations. Each variant is one AMQP reply code class; the text is
//! RabbitMQ's reply text without its `CODE_NAME - ` prefix, so the AMQP adapter can map a
//! variant to its code (404, 403, 406, 405, 530, 406) in one place and send the text as is.

/// Why a vhost operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VhostError {
    /// The exchange or queue does not exist (AMQP 404 NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// Reserved names, the default exchange, internal exchanges (AMQP 403 ACCESS_REFUSED).
    #[error("{0}")]
    AccessRefused(String),
    /// Inequivalent redeclaration, `if-unused` / `if-empty`, invalid arguments (AMQP 406
    /// PRECONDITION_FAILED).
    #[error("{0}")]
    PreconditionFailed(String),
    /// An exclusive queue of another connection (AMQP 405 RESOURCE_LOCKED).
    #[error("{0}")]
    ResourceLocked(String),
    /// Not allowed in this vhost (AMQP 530 NOT_ALLOWED).
    #[error("{0}")]
    NotAllowed(String),
    /// An argument the core cannot accept (AMQP 406, as RabbitMQ reports bad arguments).
    #[error("{0}")]
    InvalidArgument(String),
}
