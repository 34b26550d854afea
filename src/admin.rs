//! The administration subcommands of the `ferromq` binary: `user`, `vhost` and `permissions`
//! (as `rabbitmqctl add_user / delete_user / change_password / list_users / add_vhost /
//! delete_vhost / list_vhosts / set_permissions / clear_permissions / list_permissions`).
//! They edit `<data-dir>/auth.toml` with an atomic rewrite; a running broker sees the change
//! at its next login (or SIGHUP) without a restart. Owns argument shapes and messages; the
//! file format lives in `auth::file`.
//!
//! A data dir without the file starts from the built-in `guest` / `guest` with full
//! permissions on `/`, so `user add` keeps guest until it is deleted (as RabbitMQ).

use std::path::Path;

use clap::Subcommand;

use crate::auth::file::{self, AuthFile, PermissionEntry, UserEntry};
use crate::auth::password;
use crate::auth::permissions::Permission;

/// Administration commands (they do not start the broker).
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage users (argon2id password hashes in <data-dir>/auth.toml).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage vhosts.
    #[command(subcommand)]
    Vhost(VhostCommand),
    /// Manage users' permissions on vhosts (RabbitMQ's configure / write / read patterns).
    #[command(subcommand)]
    Permissions(PermissionsCommand),
}

/// `ferromq user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Adds a user (no permissions until `permissions set`).
    Add {
        /// User name.
        name: String,
        /// Password.
        password: String,
    },
    /// Deletes a user and its permissions.
    Delete {
        /// User name.
        name: String,
    },
    /// Changes a user's password.
    Passwd {
        /// User name.
        name: String,
        /// New password.
        password: String,
    },
    /// Lists users.
    List,
    /// Prints the argon2id hash of a password (for `password_hash` in the config file).
    Hash {
        /// Password.
        password: String,
    },
}

/// `ferromq vhost ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum VhostCommand {
    /// Adds a vhost.
    Add {
        /// Vhost name.
        name: String,
    },
    /// Deletes a vhost and the permissions on it.
    Delete {
        /// Vhost name.
        name: String,
    },
    /// Lists vhosts.
    List,
}

/// `ferromq permissions ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum PermissionsCommand {
    /// Sets a user's permissions on a vhost (regular expressions; "" grants nothing).
    Set {
        /// User name.
        name: String,
        /// Vhost.
        #[arg(long, default_value = "/")]
        vhost: String,
        /// Configure pattern (declare, delete).
        configure: String,
        /// Write pattern (publish, bind destination).
        write: String,
        /// Read pattern (consume, get, purge, bind source).
        read: String,
    },
    /// Removes a user's permissions on a vhost.
    Clear {
        /// User name.
        name: String,
        /// Vhost.
        #[arg(long, default_value = "/")]
        vhost: String,
    },
    /// Lists permissions (user, vhost, configure, write, read; tab separated).
    List {
        /// Only this vhost.
        #[arg(long)]
        vhost: Option<String>,
    },
}

/// Why a command failed (printed, exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Reading or writing the access file.
    #[error(transparent)]
    File(#[from] file::FileError),
    /// Hashing.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// The command cannot apply (unknown user, duplicate, bad pattern...).
    #[error("{0}")]
    Refused(String),
}

/// Runs `command` on the access file under `data_dir`; returns what to print.
pub fn run(command: &Command, data_dir: &Path) -> Result<String, AdminError> {
    let path = file::path(data_dir);
    let load = || -> Result<AuthFile, AdminError> {
        match AuthFile::read(&path)? {
            Some(f) => Ok(f),
            None => Ok(AuthFile::seeded()?),
        }
    };
    let refused = |s: String| Err(AdminError::Refused(s));
    let mut f = load()?;
    let message = match command {
        Command::User(UserCommand::List) => {
            return Ok(f.users.iter().map(|u| format!("{}\n", u.name)).collect());
        }
        Command::User(UserCommand::Hash { password }) => {
            return Ok(format!("{}\n", password::hash(password.as_bytes())?));
        }
        Command::Vhost(VhostCommand::List) => {
            let mut names = vec!["/".to_string()];
            names.extend(f.vhosts.iter().filter(|v| *v != "/").cloned());
            return Ok(names.iter().map(|v| format!("{v}\n")).collect());
        }
        Command::Permissions(PermissionsCommand::List { vhost }) => {
            return Ok(f
                .permissions
                .iter()
                .filter(|p| vhost.as_ref().is_none_or(|v| *v == p.vhost))
                .map(|p| {
                    format!(
                        "{}\t{}\t{}\t{}\t{}\n",
                        p.user, p.vhost, p.configure, p.write, p.read
                    )
                })
                .collect());
        }
        Command::User(UserCommand::Add { name, password }) => {
            if name.is_empty() || name.contains(':') {
                // `vhost:user` is how MQTT clients select a vhost.
                return refused(format!(
                    "invalid user name '{name}' (empty or contains ':')"
                ));
            }
            if f.users.iter().any(|u| u.name == *name) {
                return refused(format!("user '{name}' already exists"));
            }
            f.users.push(UserEntry {
                name: name.clone(),
                password_hash: password::hash(password.as_bytes())?,
            });
            format!("user '{name}' added")
        }
        Command::User(UserCommand::Delete { name }) => {
            let before = f.users.len();
            f.users.retain(|u| u.name != *name);
            if f.users.len() == before {
                return refused(format!("no user '{name}'"));
            }
            f.permissions.retain(|p| p.user != *name);
            format!("user '{name}' deleted")
        }
        Command::User(UserCommand::Passwd { name, password }) => {
            let hash = password::hash(password.as_bytes())?;
            let Some(u) = f.users.iter_mut().find(|u| u.name == *name) else {
                return refused(format!("no user '{name}'"));
            };
            u.password_hash = hash;
            format!("password of '{name}' changed")
        }
        Command::Vhost(VhostCommand::Add { name }) => {
            if name.is_empty() || name == "/" || f.vhosts.contains(name) {
                return refused(format!("vhost '{name}' already exists"));
            }
            f.vhosts.push(name.clone());
            f.vhost_ids.insert(name.clone(), new_incarnation());
            format!("vhost '{name}' added")
        }
        Command::Vhost(VhostCommand::Delete { name }) => {
            if name == "/" {
                return refused("the default vhost '/' cannot be deleted".to_string());
            }
            let before = f.vhosts.len();
            f.vhosts.retain(|v| v != name);
            if f.vhosts.len() == before {
                return refused(format!("no vhost '{name}'"));
            }
            f.permissions.retain(|p| p.vhost != *name);
            f.vhost_ids.remove(name);
            format!("vhost '{name}' deleted")
        }
        Command::Permissions(PermissionsCommand::Set {
            name,
            vhost,
            configure,
            write,
            read,
        }) => {
            if !f.users.iter().any(|u| u.name == *name) {
                return refused(format!("no user '{name}'"));
            }
            if vhost != "/" && !f.vhosts.contains(vhost) {
                return refused(format!("no vhost '{vhost}'"));
            }
            if let Err(e) = Permission::new(configure, write, read) {
                return refused(format!("invalid pattern: {e}"));
            }
            f.permissions
                .retain(|p| !(p.user == *name && p.vhost == *vhost));
            f.permissions.push(PermissionEntry {
                user: name.clone(),
                vhost: vhost.clone(),
                configure: configure.clone(),
                write: write.clone(),
                read: read.clone(),
            });
            format!("permissions of '{name}' on vhost '{vhost}' set")
        }
        Command::Permissions(PermissionsCommand::Clear { name, vhost }) => {
            let before = f.permissions.len();
            f.permissions
                .retain(|p| !(p.user == *name && p.vhost == *vhost));
            if f.permissions.len() == before {
                return refused(format!("'{name}' has no permissions on vhost '{vhost}'"));
            }
            format!("permissions of '{name}' on vhost '{vhost}' cleared")
        }
    };
    f.write(&path)?;
    Ok(format!("{message}\n"))
}

/// A fresh vhost incarnation id: the time of the add in nanoseconds and the process id, in
/// hex. Unique enough for its purpose: telling one add of a name from the next.
fn new_incarnation() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
