//! The access-control part of the configuration file: `[auth]` settings and users and
//! permissions declared with `[[users]]` / `[[permissions]]`. Owns their schema and defaults;
//! `config.rs` holds them in the one `Config` tree.

use serde::Deserialize;

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Milliseconds a refused login waits before its answer (slows password guessing).
    pub failed_login_delay_ms: u64,
    /// Users that may only log in from a loopback address (RabbitMQ's `loopback_users`).
    pub loopback_users: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            failed_login_delay_ms: 250,
            loopback_users: vec![super::GUEST.to_string()],
        }
    }
}

/// A user declared in the config file (`[[users]]`): a PHC argon2id `password_hash`
/// (preferred; `ferromq user hash PASSWORD` prints one) or a clear-text `password`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// PHC argon2id hash.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Clear-text password (for development setups).
    #[serde(default)]
    pub password: Option<String>,
}

/// Permissions declared in the config file (`[[permissions]]`), as `set_permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionConfig {
    /// User name.
    pub user: String,
    /// Vhost (default `/`).
    #[serde(default = "root_vhost")]
    pub vhost: String,
    /// Configure pattern.
    pub configure: String,
    /// Write pattern.
    pub write: String,
    /// Read pattern.
    pub read: String,
}

fn root_vhost() -> String {
    "/".to_string()
}
