//! The broker's access control at run time: who may log in (users from the access file and
//! the config file, the built-in `guest`), which vhosts exist, each user's permissions there,
//! and the MQTT ACL file. Owns the in-memory snapshot and its refresh: the access file is
//! re-read when its identity (inode, size, mtime) changes, checked at every login, and both
//! files on `reload` (SIGHUP), so `ferromq user ...` takes effect without a restart.
//!
//! Reads on the publish path are one atomic load (`generation`) for connections that cache
//! their permission; the snapshot is swapped under a short lock, never held across `.await`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::acl::{AclFile, ClientAcl};
use super::file::{self, AuthFile};
use super::password;
use super::permissions::Permission;
use super::settings::AuthConfig;
use super::{Authenticator, Credentials, Decision, GUEST};
use crate::config::Config;

/// A user's secret as held in memory.
#[derive(Debug, Clone)]
enum Secret {
    /// PHC argon2id hash.
    Hash(String),
    /// Clear text from the config file (or the built-in guest).
    Plain(String),
}

/// One consistent view of users, vhosts and permissions.
#[derive(Debug, Default)]
struct Snapshot {
    /// No user is configured anywhere: only the built-in guest, plus certificate users and
    /// named MQTT clients, which then get guest's rights on `/`.
    builtin: bool,
    users: HashMap<String, Secret>,
    vhosts: HashSet<String>,
    /// Incarnations of the vhosts the access file has one for (`AuthFile::vhost_ids`).
    vhost_ids: HashMap<String, String>,
    /// vhost -> user -> permission.
    permissions: HashMap<String, HashMap<String, Arc<Permission>>>,
}

/// Whether a client may use a vhost.
#[derive(Debug, Clone)]
pub enum VhostAccess {
    /// Yes, with these permissions (`None`: an anonymous MQTT client, bound by ACLs only).
    Allowed(Option<Arc<Permission>>),
    /// The vhost does not exist.
    NoSuchVhost,
    /// The user has no permissions there.
    Refused,
}

/// Identity of the access file as last read: a rename gives a new inode, so an atomic
/// rewrite is seen even within one mtime tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    mtime: Option<std::time::SystemTime>,
}

/// Users, vhosts, permissions and ACLs of one broker.
pub struct AccessControl {
    settings: AuthConfig,
    allow_anonymous: bool,
    file: PathBuf,
    config_users: Vec<(String, Secret)>,
    config_permissions: Vec<(String, String, Arc<Permission>)>,
    acl_path: Option<PathBuf>,
    snapshot: RwLock<Arc<Snapshot>>,
    stamp: Mutex<Option<Stamp>>,
    acl: RwLock<Option<Arc<AclFile>>>,
    generation: AtomicU64,
    /// An embedding application's own login policy, replacing the user checks (permissions
    /// and ACLs still come from the configuration); see `with_login`.
    login_hook: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl AccessControl {
    /// Builds access control from the configuration and reads the access file and ACL file.
    /// Invalid entries in the config file are logged and skipped (the broker still starts;
    /// an unreadable ACL file refuses every MQTT topic rather than allowing all).
    pub fn new(config: &Config) -> AccessControl {
        let mut config_users = Vec::new();
        for u in &config.users {
            let secret = match (&u.password_hash, &u.password) {
                (Some(h), _) => match password::validate(h) {
                    Ok(()) => Secret::Hash(h.clone()),
                    Err(e) => {
                        tracing::error!(user = %u.name, "config: skipping user: {e}");
                        continue;
                    }
                },
                (None, Some(p)) => Secret::Plain(p.clone()),
                (None, None) => {
                    tracing::error!(user = %u.name, "config: skipping user without password or password_hash");
                    continue;
                }
            };
            config_users.push((u.name.clone(), secret));
        }
        let mut config_permissions = Vec::new();
        for p in &config.permissions {
            match Permission::new(&p.configure, &p.write, &p.read) {
                Ok(perm) => {
                    config_permissions.push((p.user.clone(), p.vhost.clone(), Arc::new(perm)))
                }
                Err(e) => {
                    tracing::error!(user = %p.user, vhost = %p.vhost, "config: skipping permissions: {e}")
                }
            }
        }
        let control = AccessControl {
            settings: config.auth.clone(),
            allow_anonymous: config.mqtt.allow_anonymous,
            file: file::path(&config.data_dir),
            config_users,
            config_permissions,
            acl_path: config.mqtt.acl_file.clone(),
            snapshot: RwLock::default(),
            stamp: Mutex::new(None),
            acl: RwLock::new(None),
            generation: AtomicU64::new(0),
            login_hook: None,
        };
        control.reload();
        control
    }

    /// Re-reads the access file and the ACL file (SIGHUP).
    pub fn reload(&self) {
        self.load_file(true);
        if let Some(path) = &self.acl_path {
            let acl = match std::fs::read_to_string(path) {
                Ok(text) => match AclFile::parse(&text) {
                    Ok(acl) => acl,
                    Err(e) => {
                        tracing::error!(path = %path.display(), "ACL file refused, denying all MQTT topics: {e}");
                        AclFile::default()
                    }
                },
                Err(e) => {
                    tracing::error!(path = %path.display(), "cannot read ACL file, denying all MQTT topics: {e}");
                    AclFile::default()
                }
            };
            *self.acl.write() = Some(Arc::new(acl));
            // Again after the swap: a connection that re-read its grants between the access
            // file's bump and this swap must not keep the old ACL under the new generation.
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Re-reads the access file if it changed since it was last read (cheap: one `stat`).
    pub fn refresh(&self) {
        self.load_file(false);
    }

    fn load_file(&self, force: bool) {
        let mut stamp = self.stamp.lock();
        let now = stamp_of(&self.file);
        if !force && now == *stamp && self.generation.load(Ordering::Acquire) > 0 {
            return;
        }
        let from_file = match AuthFile::read(&self.file) {
            Ok(f) => f,
            Err(e) => {
                // Keep serving with what we had: a half-edited file must not lock everyone out.
                tracing::error!("access file not reloaded: {e}");
                *stamp = now;
                if self.generation.load(Ordering::Acquire) > 0 {
                    return;
                }
                // At start there is nothing to keep: fail closed with no file users (and so
                // no built-in guest) rather than open with guest / guest.
                Some(AuthFile::default())
            }
        };
        let snapshot = self.build(from_file);
        *self.snapshot.write() = Arc::new(snapshot);
        *stamp = now;
        self.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(path = %self.file.display(), "access file loaded");
    }

    /// Merges the file (which wins for a user in both) with the config file's users; with
    /// neither, the built-in guest / guest with full permissions on `/` (as RabbitMQ).
    fn build(&self, from_file: Option<AuthFile>) -> Snapshot {
        let mut s = Snapshot::default();
        s.vhosts.insert("/".to_string());
        let builtin = from_file.is_none() && self.config_users.is_empty();
        s.builtin = builtin;
        if builtin {
            s.users
                .insert(GUEST.to_string(), Secret::Plain(GUEST.to_string()));
            s.permissions
                .entry("/".to_string())
                .or_default()
                .insert(GUEST.to_string(), Arc::new(Permission::full()));
        }
        for (name, secret) in &self.config_users {
            s.users.insert(name.clone(), secret.clone());
        }
        for (user, vhost, perm) in &self.config_permissions {
            s.vhosts.insert(vhost.clone());
            s.permissions
                .entry(vhost.clone())
                .or_default()
                .insert(user.clone(), Arc::clone(perm));
        }
        if let Some(f) = from_file {
            for u in f.users {
                s.users.insert(u.name, Secret::Hash(u.password_hash));
            }
            s.vhosts.extend(f.vhosts);
            s.vhost_ids.extend(f.vhost_ids);
            for p in f.permissions {
                match Permission::new(&p.configure, &p.write, &p.read) {
                    Ok(perm) => {
                        s.permissions
                            .entry(p.vhost)
                            .or_default()
                            .insert(p.user, Arc::new(perm));
                    }
                    Err(e) => tracing::error!(user = %p.user, vhost = %p.vhost,
                        "access file: skipping permissions: {e}"),
                }
            }
        }
        s
    }

    /// Changes whenever the snapshot is replaced (connections re-fetch cached permissions).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether anonymous MQTT clients are let in (`[mqtt] allow_anonymous`).
    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// True when `vhost` exists (`/` always does).
    pub fn vhost_exists(&self, vhost: &str) -> bool {
        self.snapshot.read().vhosts.contains(vhost)
    }

    /// The incarnation of `vhost` (a fresh id per `ferromq vhost add`), if it has one.
    pub fn vhost_incarnation(&self, vhost: &str) -> Option<String> {
        self.snapshot.read().vhost_ids.get(vhost).cloned()
    }

    /// The names of every vhost that exists (`/` included), in no particular order.
    pub fn vhost_names(&self) -> Vec<String> {
        self.snapshot.read().vhosts.iter().cloned().collect()
    }

    /// `user`'s permissions on `vhost`, if any. With only the built-in guest configured, every
    /// user that got in (guest, a certificate identity, a named MQTT client) has guest's full
    /// rights on `/`, so TLS and MQTT work out of the box as they do with Mosquitto.
    pub fn permission(&self, user: &str, vhost: &str) -> Option<Arc<Permission>> {
        let s = self.snapshot.read();
        let found = s.permissions.get(vhost).and_then(|p| p.get(user)).cloned();
        if found.is_none() && s.builtin && vhost == "/" {
            return s.permissions.get("/").and_then(|p| p.get(GUEST)).cloned();
        }
        found
    }

    /// Replaces the user checks with `hook` (an embedding application's login policy, or a
    /// test's recorder); permissions and ACLs still apply as configured.
    pub fn with_login(mut self, hook: Arc<dyn Authenticator>) -> AccessControl {
        self.login_hook = Some(hook);
        self
    }

    /// Whether `user` (`None` = anonymous MQTT client) may use `vhost`: it must exist and a
    /// named user needs permissions there (RabbitMQ's vhost access check).
    pub fn vhost_access(&self, user: Option<&str>, vhost: &str) -> VhostAccess {
        if !self.vhost_exists(vhost) {
            return VhostAccess::NoSuchVhost;
        }
        match user {
            None => VhostAccess::Allowed(None),
            Some(u) => match self.permission(u, vhost) {
                Some(p) => VhostAccess::Allowed(Some(p)),
                None => VhostAccess::Refused,
            },
        }
    }

    /// The ACL rules of one MQTT client, or `None` when no ACL file is configured.
    pub fn client_acl(&self, user: Option<&str>, client_id: &str) -> Option<ClientAcl> {
        let acl = self.acl.read().clone()?;
        Some(acl.for_client(user, client_id))
    }

    /// Checks a login; the argon2 verification (tens of milliseconds of CPU) runs off the
    /// async runtime. A refusal is delayed by `[auth] failed_login_delay_ms` against password
    /// guessing and logged with the peer and user name, never the password.
    pub async fn login(self: &Arc<Self>, credentials: &Credentials<'_>) -> Decision {
        let decision = match self.hooked_or_check(credentials) {
            Check::Done(d) => d,
            Check::Verify {
                user,
                hash,
                password,
                known,
            } => {
                let verified =
                    tokio::task::spawn_blocking(move || password::verify(&password, &hash))
                        .await
                        .unwrap_or(false);
                self.decide(credentials, user, known && verified)
            }
        };
        if !matches!(decision, Decision::Allow { .. }) {
            tracing::warn!(peer = %credentials.peer, protocol = credentials.protocol,
                user = credentials.username.unwrap_or(""), ?decision, "login refused");
            tokio::time::sleep(Duration::from_millis(self.settings.failed_login_delay_ms)).await;
        }
        decision
    }

    fn hooked_or_check(&self, credentials: &Credentials<'_>) -> Check {
        match &self.login_hook {
            Some(hook) => Check::Done(hook.authenticate(credentials)),
            None => self.check(credentials),
        }
    }

    /// Everything of a login but the hash verification, which it hands back when needed.
    fn check(&self, credentials: &Credentials<'_>) -> Check {
        if let Some(identity) = credentials.tls_identity {
            // A certificate login (SASL EXTERNAL, MQTT identity as user name): the CA vouched
            // for the name, so no password is asked, from any address (as RabbitMQ's
            // rabbitmq_auth_mechanism_ssl). A password login under that name is checked as
            // usual below.
            if credentials.password.is_none() && credentials.username == Some(identity) {
                return Check::Done(Decision::Allow {
                    user: Some(identity.to_string()),
                });
            }
        }
        let Some(user) = credentials.username else {
            // Only MQTT can connect without a user name.
            let anonymous = credentials.protocol == "mqtt" && self.allow_anonymous;
            return Check::Done(if anonymous {
                Decision::Allow { user: None }
            } else {
                Decision::NotAuthorized
            });
        };
        self.refresh();
        let secret = self.snapshot.read().users.get(user).cloned();
        let given = credentials.password.unwrap_or_default();
        match secret {
            Some(Secret::Hash(hash)) => Check::Verify {
                user: user.to_string(),
                hash,
                password: given.to_vec(),
                known: true,
            },
            Some(Secret::Plain(p)) => Check::Done(self.decide(
                credentials,
                user.to_string(),
                password::constant_time_eq(given, p.as_bytes()),
            )),
            // Mosquitto without a password file: with anonymous clients allowed, a user name
            // is taken as given (ACLs may use it), the password is not checked.
            None if credentials.protocol == "mqtt"
                && self.allow_anonymous
                && self.snapshot.read().builtin =>
            {
                Check::Done(Decision::Allow {
                    user: Some(user.to_string()),
                })
            }
            // Spend the same work as for a known user, so timing does not reveal names.
            None => Check::Verify {
                user: user.to_string(),
                hash: DUMMY_HASH.to_string(),
                password: given.to_vec(),
                known: false,
            },
        }
    }

    /// The decision once the password was checked: loopback-only users from elsewhere are
    /// refused (RabbitMQ's `loopback_users`).
    fn decide(&self, credentials: &Credentials<'_>, user: String, password_ok: bool) -> Decision {
        if !password_ok {
            return Decision::BadCredentials;
        }
        if !credentials.peer.ip().is_loopback() && self.settings.loopback_users.contains(&user) {
            return Decision::NotAuthorized;
        }
        Decision::Allow { user: Some(user) }
    }
}

/// A login's state before the hash verification.
enum Check {
    /// Decided without a hash.
    Done(Decision),
    /// Verify `password` against `hash`; `known` is false for an unknown user (a dummy hash
    /// is verified for the time it costs, and the login fails either way).
    Verify {
        user: String,
        hash: String,
        password: Vec<u8>,
        known: bool,
    },
}

impl Authenticator for AccessControl {
    /// Verifies a login on the calling thread (blocking: async tasks call `login`).
    fn authenticate(&self, credentials: &Credentials<'_>) -> Decision {
        match self.hooked_or_check(credentials) {
            Check::Done(d) => d,
            Check::Verify {
                user,
                hash,
                password,
                known,
            } => {
                let verified = password::verify(&password, &hash);
                self.decide(credentials, user, known && verified)
            }
        }
    }
}

/// A valid argon2id hash (of a random password) verified for unknown users.
pub(super) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8Q1d0m6mQyqW2b3m0mJ3l6Yq3r6l4p8h2c1s9k0v7xE";

fn stamp_of(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        inode,
        len: m.len(),
        mtime: m.modified().ok(),
    })
}
