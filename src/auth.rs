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
    /// The identity of the peer's verified TLS client certificate (per `[tls] identity`), if
    /// it connected over TLS with one. A login with this as `username` and no password is a
    /// certificate login (AMQP SASL EXTERNAL, MQTT identity-as-username).
    pub tls_identity: Option<&'a str>,
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
/// A certificate login (no password, user name = the verified certificate's identity, e.g.
/// AMQP SASL EXTERNAL) is allowed from anywhere as that user: the CA vouched for it.
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
        if let Some(identity) = credentials.tls_identity {
            if credentials.password.is_none() && credentials.username == Some(identity) {
                return Decision::Allow {
                    user: Some(identity.to_string()),
                };
            }
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
            tls_identity: None,
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
    fn certificate_login_is_its_identity_without_a_password() {
        let cert = |user: Option<&str>, pass: Option<&[u8]>| {
            DefaultPolicy.authenticate(&Credentials {
                protocol: "amqp",
                client_id: "",
                username: user,
                password: pass,
                peer: "10.0.0.1:1".parse().unwrap(),
                tls_identity: Some("device-1"),
            })
        };
        assert_eq!(
            cert(Some("device-1"), None),
            Decision::Allow {
                user: Some("device-1".into())
            }
        );
        // PLAIN with the same name is a password login, not a certificate login.
        assert_eq!(cert(Some("device-1"), Some(b"x")), Decision::BadCredentials);
        assert_eq!(cert(Some("other"), None), Decision::BadCredentials);
    }

    #[test]
    fn mqtt_is_anonymous_by_default() {
        assert_eq!(
            check("mqtt", None, None, "10.0.0.1:1"),
            Decision::Allow { user: None }
        );
    }
}
