//! Authentication and authorisation. This file holds the login hook both protocols call
//! before a connection is accepted (`Authenticator`, `Credentials`, `Decision`); the parts live
//! beside it: `password` (argon2id hashes), `file` (the access file under the data dir),
//! `settings` (config schema), `permissions` (RabbitMQ-style vhost permissions), `acl` (MQTT
//! topic ACLs in Mosquitto's syntax) and `control` (the run-time view the adapters ask).

pub mod acl;
pub mod control;
pub mod file;
pub mod password;
pub mod permissions;
pub mod settings;

pub use control::{AccessControl, VhostAccess};

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

/// RabbitMQ's default user name and password.
pub const GUEST: &str = "guest";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn control(tag: &str, toml: &str) -> (AccessControl, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("ferromq-auth-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = Config::from_toml(toml).unwrap();
        config.data_dir = dir.clone();
        (AccessControl::new(&config), dir)
    }

    fn check(
        c: &AccessControl,
        protocol: &'static str,
        user: Option<&str>,
        pass: Option<&[u8]>,
        peer: &str,
    ) -> Decision {
        c.authenticate(&Credentials {
            protocol,
            client_id: "",
            username: user,
            password: pass,
            peer: peer.parse().unwrap(),
            tls_identity: None,
        })
    }

    #[test]
    fn builtin_guest_only_from_loopback() {
        let (c, _) = control("guest", "");
        let ok = Decision::Allow {
            user: Some("guest".into()),
        };
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"guest"), "127.0.0.1:1"),
            ok
        );
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"guest"), "[::1]:1"),
            ok
        );
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"guest"), "10.0.0.1:1"),
            Decision::NotAuthorized
        );
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"wrong"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
        assert_eq!(
            check(&c, "mqtt", None, None, "10.0.0.1:1"),
            Decision::Allow { user: None }
        );
        assert!(c.permission("guest", "/").is_some());
        // As Mosquitto without a password file: a named MQTT client gets in as that name
        // (for ACL %u), with guest's rights on `/` while only the built-in guest exists.
        assert_eq!(
            check(&c, "mqtt", Some("sensor-7"), Some(b"any"), "10.0.0.1:1"),
            Decision::Allow {
                user: Some("sensor-7".into())
            }
        );
        assert!(c.permission("sensor-7", "/").is_some());
        assert!(c.permission("sensor-7", "other").is_none());
        // Not over AMQP, which has no anonymous access.
        assert_eq!(
            check(&c, "amqp", Some("sensor-7"), Some(b"any"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
    }

    #[test]
    fn certificate_login_is_its_identity_without_a_password() {
        let (c, _) = control("cert", "");
        let cert = |user: Option<&str>, pass: Option<&[u8]>| {
            c.authenticate(&Credentials {
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
        // With only the built-in guest, a certificate user may use `/` as guest does.
        assert!(matches!(
            c.vhost_access(Some("device-1"), "/"),
            VhostAccess::Allowed(Some(_))
        ));
    }

    #[test]
    fn config_users_replace_guest_and_file_changes_are_seen() {
        let (c, dir) = control(
            "cfg",
            "[mqtt]\nallow_anonymous = false\n[[users]]\nname = \"ann\"\npassword = \"pw\"\n\
             [[permissions]]\nuser = \"ann\"\nconfigure = \"^a\"\nwrite = \".*\"\nread = \"\"\n",
        );
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"guest"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
        assert_eq!(
            check(&c, "mqtt", Some("ann"), Some(b"pw"), "10.0.0.1:1"),
            Decision::Allow {
                user: Some("ann".into())
            }
        );
        assert_eq!(
            check(&c, "mqtt", None, None, "127.0.0.1:1"),
            Decision::NotAuthorized
        );
        // With users configured, an unknown MQTT user is refused like any other.
        assert_eq!(
            check(&c, "mqtt", Some("who"), Some(b"pw"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
        assert!(matches!(
            c.vhost_access(Some("ann"), "/"),
            VhostAccess::Allowed(Some(_))
        ));
        assert!(matches!(
            c.vhost_access(Some("ann"), "nope"),
            VhostAccess::NoSuchVhost
        ));
        // A file written (as the CLI does) is seen at the next login.
        let generation = c.generation();
        let mut f = file::AuthFile::default();
        f.users.push(file::UserEntry {
            name: "bob".into(),
            password_hash: password::hash(b"b0b").unwrap(),
        });
        f.write(&file::path(&dir)).unwrap();
        assert_eq!(
            check(&c, "amqp", Some("bob"), Some(b"b0b"), "127.0.0.1:1"),
            Decision::Allow {
                user: Some("bob".into())
            }
        );
        assert!(c.generation() > generation);
        assert!(matches!(
            c.vhost_access(Some("bob"), "/"),
            VhostAccess::Refused
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn invalid_config_users_are_skipped_not_fatal() {
        let (c, _) = control(
            "badcfg",
            "[[users]]\nname = \"x\"\npassword_hash = \"md5:abc\"\n\
             [[users]]\nname = \"y\"\n\
             [[users]]\nname = \"z\"\npassword = \"pw\"\n\
             [[permissions]]\nuser = \"z\"\nconfigure = \"(\"\nwrite = \"\"\nread = \"\"\n",
        );
        for user in ["x", "y"] {
            assert_eq!(
                check(&c, "amqp", Some(user), Some(b""), "127.0.0.1:1"),
                Decision::BadCredentials
            );
        }
        assert!(matches!(
            check(&c, "amqp", Some("z"), Some(b"pw"), "127.0.0.1:1"),
            Decision::Allow { .. }
        ));
        // Its invalid permissions were skipped: no access to `/`.
        assert!(matches!(
            c.vhost_access(Some("z"), "/"),
            VhostAccess::Refused
        ));
    }

    #[test]
    fn unreadable_access_file_at_start_fails_closed() {
        let dir = std::env::temp_dir().join(format!("ferromq-auth-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(file::path(&dir), "not = [valid").unwrap();
        let config = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let c = AccessControl::new(&config);
        assert_eq!(
            check(&c, "amqp", Some("guest"), Some(b"guest"), "127.0.0.1:1"),
            Decision::BadCredentials
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unknown_users_cost_a_hash_too() {
        use argon2::password_hash::PasswordHash;
        assert!(PasswordHash::new(control::DUMMY_HASH).is_ok());
    }
}
