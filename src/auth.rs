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

/// The built-in policy until users can be configured: MQTT clients connect with or without
/// credentials (as Mosquitto's anonymous default), AMQP clients log in as RabbitMQ's default
/// user `guest` / `guest`, which, as in RabbitMQ, may only log in from a loopback address.
#[derive(Debug, Default)]
pub struct DefaultPolicy;

/// RabbitMQ's default user name and password.
pub const GUEST: &str = "guest";

impl Authenticator for DefaultPolicy {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Decision {
        if credentials.protocol == "mqtt" {
            return Decision::Allow {
                user: credentials.username.map(str::to_owned),
            };
        }
        let is_guest =
            credentials.username == Some(GUEST) && credentials.password == Some(GUEST.as_bytes());
        if !is_guest {
            return Decision::BadCredentials;
        }
        if !credentials.peer.ip().is_loopback() {
            // RabbitMQ's `loopback_users`: guest is refused from other hosts.
            return Decision::NotAuthorized;
        }
        Decision::Allow {
            user: Some(GUEST.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        protocol: &'static str,
        user: Option<&str>,
        pass: Option<&[u8]>,
        peer: &str,
    ) -> Decision {
        DefaultPolicy.authenticate(&Credentials {
            protocol,
            client_id: "",
            username: user,
            password: pass,
            peer: peer.parse().unwrap(),
        })
    }

    #[test]
    fn guest_only_from_loopback_for_amqp() {
        let ok = Decision::Allow {
            user: Some("guest".into()),
        };
        assert_eq!(
            check("amqp", Some("guest"), Some(b"guest"), "127.0.0.1:1"),
            ok
        );
        assert_eq!(check("amqp", Some("guest"), Some(b"guest"), "[::1]:1"), ok);
        assert_eq!(
            check("amqp", Some("guest"), Some(b"guest"), "10.0.0.1:1"),
            Decision::NotAuthorized
        );
        assert_eq!(
            check("amqp", Some("guest"), Some(b"wrong"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
        assert_eq!(
            check("amqp", None, None, "127.0.0.1:1"),
            Decision::BadCredentials
        );
    }

    #[test]
    fn mqtt_is_anonymous_by_default() {
        assert_eq!(
            check("mqtt", None, None, "10.0.0.1:1"),
            Decision::Allow { user: None }
        );
    }
}
