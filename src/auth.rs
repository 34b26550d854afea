//! The login hook both protocols call before a connection is accepted. In memory and permissive
//! for now; users, password hashes and permissions arrive with the TLS/auth issue and plug in
//! behind the same trait.

use std::net::SocketAddr;

/// What a client presented when connecting.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    /// "mqtt" or "amqp".
    pub protocol: &'static str,
    /// MQTT client identifier (empty for AMQP).
    pub client_id: &'a str,
    /// User name, if any.
    pub username: Option<&'a str>,
    /// Password, if any (MQTT passwords are binary).
    pub password: Option<&'a [u8]>,
    /// The peer's address (e.g. for loopback-only users).
    pub peer: SocketAddr,
}

/// The verdict on a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the client in, acting as this user (`None` = anonymous).
    Allow {
        /// The authenticated user name.
        user: Option<String>,
    },
    /// Wrong user name or password (MQTT v5 0x86 / v3 4; AMQP 403).
    BadCredentials,
    /// Known user, but not allowed here (MQTT v5 0x87 / v3 5; AMQP 403).
    NotAuthorized,
}

/// Decides who may connect. Implementations must be cheap or cache: they run on the
/// connection's task before CONNACK.
pub trait Authenticator: Send + Sync + 'static {
    /// Checks one login.
    fn authenticate(&self, credentials: &Credentials<'_>) -> Decision;
}

/// Lets everyone in (the default until users exist).
#[derive(Debug, Default)]
pub struct AllowAll;

impl Authenticator for AllowAll {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Decision {
        Decision::Allow {
            user: credentials.username.map(str::to_owned),
        }
    }
}
