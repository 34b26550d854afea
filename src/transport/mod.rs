//! Transports under the protocol adapters: TLS today (`tls.rs`: certificate loading and the
//! reloadable acceptor; `identity.rs`: the user name a client certificate carries;
//! `reload.rs`: reload on SIGHUP and when the files change) and WebSocket (`ws.rs`: the
//! upgrade and a byte stream over binary messages, for MQTT). Owns nothing of MQTT or AMQP:
//! a connection leaves here as a byte stream plus [`TlsInfo`].

pub mod config;
pub mod identity;
pub mod reload;
pub mod tls;
pub mod ws;

/// What the TLS handshake established about a connection, handed to the protocol adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The user name taken from the verified client certificate (per `[tls] identity`), or
    /// `None` when the client sent no certificate or it has no such field.
    pub identity: Option<String>,
}
