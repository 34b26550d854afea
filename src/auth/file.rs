//! The access file `<data-dir>/auth.toml`: users (argon2id PHC hashes), vhosts and
//! permissions, as the `ferromq user / vhost / permissions` commands write it and the running
//! broker reads it. Owns the on-disk format and the atomic write (temp file, fsync, rename,
//! fsync of the directory), so a crash leaves the old or the new file, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name under the data directory.
pub const FILE_NAME: &str = "auth.toml";

/// One user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// User name.
    pub name: String,
    /// PHC argon2id hash of the password.
    pub password_hash: String,
}

/// One user's permissions on one vhost (regular expressions, RabbitMQ's semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    /// User name.
    pub user: String,
    /// Vhost name.
    pub vhost: String,
    /// Pattern for declare / delete.
    pub configure: String,
    /// Pattern for publish / bind destination.
    pub write: String,
    /// Pattern for consume / get / purge / bind source.
    pub read: String,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthFile {
    /// Users.
    #[serde(rename = "user")]
    pub users: Vec<UserEntry>,
    /// Vhosts besides `/`, which always exists.
    pub vhosts: Vec<String>,
    /// Permissions.
    #[serde(rename = "permission")]
    pub permissions: Vec<PermissionEntry>,
    /// Incarnation of each vhost added by `ferromq vhost add` (a fresh id per add), so the
    /// broker can tell a vhost deleted and added again from the one it knew and start it
    /// empty, as RabbitMQ does. Vhosts added before this field existed have none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vhost_ids: std::collections::BTreeMap<String, String>,
}

/// Errors reading or writing the access file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// I/O on the file or its directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for this format.
    #[error("{path}: {source}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// Could not be rendered (should not happen).
    #[error("cannot render the access file: {0}")]
    Render(#[from] toml::ser::Error),
}

/// The access file's path under `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

impl AuthFile {
    /// What `ferromq user add` starts from on a data dir without a file: RabbitMQ's default
    /// user `guest` / `guest` with full permissions on `/`, so adding a user keeps guest.
    pub fn seeded() -> Result<AuthFile, super::password::HashError> {
        Ok(AuthFile {
            users: vec![UserEntry {
                name: super::GUEST.to_string(),
                password_hash: super::password::hash(super::GUEST.as_bytes())?,
            }],
            vhosts: Vec::new(),
            vhost_ids: Default::default(),
            permissions: vec![PermissionEntry {
                user: super::GUEST.to_string(),
                vhost: "/".to_string(),
                configure: ".*".to_string(),
                write: ".*".to_string(),
                read: ".*".to_string(),
            }],
        })
    }

    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<AuthFile>, FileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FileError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|source| FileError::Parse {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Writes the file atomically: a temp file beside it, fsync, rename over, fsync the
    /// directory (so the rename itself survives a crash). The file is readable by its owner
    /// only: it holds password hashes.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let text = toml::to_string_pretty(self)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension(format!("toml.tmp{}", std::process::id()));
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Directory fsync is not supported everywhere; the rename has happened either way.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("ferromq-authfile-{}", std::process::id()));
        let p = path(&dir);
        assert_eq!(AuthFile::read(&p).unwrap(), None);
        let mut f = AuthFile::seeded().unwrap();
        f.vhosts.push("dev".into());
        f.vhost_ids.insert("dev".into(), "18a3f".into());
        f.write(&p).unwrap();
        assert_eq!(AuthFile::read(&p).unwrap(), Some(f));
        std::fs::write(&p, "user = 3").unwrap();
        assert!(matches!(AuthFile::read(&p), Err(FileError::Parse { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }
}
