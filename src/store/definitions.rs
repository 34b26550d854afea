//! Durable definitions: exchanges, queues and bindings that survive a restart (RabbitMQ's
//! durable entities; transient ones are simply never written). Kept in `definitions.log`, a
//! small append-only log of changes in the segment log's record framing (`record`): one record
//! per declare / delete / bind / unbind, appended and fsynced before the change is answered.
//!
//! Why our own log and not an embedded database (redb): definitions are a few small records
//! that change rarely and are read once, at start; the framing, torn-tail handling and fsync
//! discipline already exist for messages, and the log is rewritten compacted (write a temporary
//! file, fsync, rename, fsync the directory) at every start, so it never grows beyond one
//! start's worth of changes. No new dependency, one storage format to reason about.
//!
//! One log holds every vhost's definitions: records of `/` are written as they always were
//! (so data directories from before vhosts were durable load unchanged), those of other vhosts
//! wrapped in an `IN_VHOST` record naming the vhost, and a `DELETE_VHOST` record drops a
//! deleted vhost's. Changes are appended under the vhost's registry lock and fsynced after it
//! is released, many declares sharing one fsync (`Definitions::sync_to`).
//!
//! Replay rules: deleting an exchange drops every binding from or to it, deleting a queue every
//! binding to it, as the vhost does.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::codec::{CodecError, Reader, Writer};
use super::record::{self, Decoded};
use crate::broker::exchange::{ExchangeKind, ExchangeSettings};
use crate::broker::headers::Headers;

/// Errors opening or writing the definitions log.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    /// The file could not be read, written or fsynced.
    #[error("definitions log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a binding leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundTo {
    /// A queue by name.
    Queue(String),
    /// An exchange by name.
    Exchange(String),
}

/// A durable binding as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingDef {
    /// The source exchange.
    pub source: String,
    /// The destination.
    pub destination: BoundTo,
    /// The key as given.
    pub key: String,
    /// True if the key is an MQTT topic filter, false for an AMQP binding key.
    pub mqtt_key: bool,
    /// Binding arguments.
    pub arguments: Headers,
}

/// A durable queue as declared.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDef {
    /// Deleted after its last consumer goes.
    pub auto_delete: bool,
    /// Declaration arguments.
    pub arguments: Headers,
}

/// One change to the durable definitions.
// Changes are built one at a time and written at once, never held in bulk: the size of the
// session variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A durable exchange was declared.
    Exchange(String, ExchangeSettings),
    /// An exchange was deleted.
    DeleteExchange(String),
    /// A durable queue was declared.
    Queue(String, QueueDef),
    /// A queue was deleted.
    DeleteQueue(String),
    /// A binding between durable ends was added.
    Bind(BindingDef),
    /// A binding was removed.
    Unbind(BindingDef),
    /// A persistent MQTT session was created or changed (replaces what was recorded).
    MqttSession(String, MqttSessionDef),
    /// A persistent MQTT session ended.
    DeleteMqttSession(String),
    /// Which incarnation of the vhost the definitions belong to (the id `ferromq vhost add`
    /// gave it): a vhost deleted and added again under the same name is another one, and
    /// must not find the old one's definitions.
    Incarnation(String),
}

/// A persistent MQTT session as recorded: what it takes to resume it after a restart. Its
/// messages are in its durable queue (`mqtt-subscription-<clientid>qos1`), its filters are
/// also that queue's bindings.
#[derive(Debug, Clone, Default)]
pub struct MqttSessionDef {
    /// Seconds it outlives its connection (`u32::MAX`: for ever).
    pub expiry_secs: u32,
    /// Its subscriptions.
    pub subscriptions: Vec<MqttSubscriptionDef>,
    /// A will waiting out its delay (seconds left when recorded, and the message), published
    /// after a restart once that delay passed again unless the client resumed the session.
    pub will: Option<(u32, crate::broker::message::Message)>,
    /// When the session went offline, unix seconds (`None` if recorded while a connection
    /// owned it): its expiry counts from there, not from a restart.
    pub offline_since: Option<u64>,
    /// When the will is due, unix seconds (records older than this field count its delay
    /// from the restart).
    pub will_due: Option<u64>,
}

impl PartialEq for MqttSessionDef {
    /// Equal as the log tells them apart: a will by its delay, topic and body (core messages
    /// have no equality of their own).
    fn eq(&self, other: &Self) -> bool {
        let will = |w: &Option<(u32, crate::broker::message::Message)>| {
            w.as_ref()
                .map(|(d, m)| (*d, m.topic.clone(), m.body.clone()))
        };
        self.expiry_secs == other.expiry_secs
            && self.subscriptions == other.subscriptions
            && will(&self.will) == will(&other.will)
            && self.offline_since == other.offline_since
            && self.will_due == other.will_due
    }
}

/// One MQTT subscription as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSubscriptionDef {
    /// The topic filter as subscribed (`$share/...` included).
    pub filter: String,
    /// Maximum QoS granted.
    pub qos: u8,
    /// MQTT 5 No Local.
    pub no_local: bool,
    /// MQTT 5 Retain As Published.
    pub retain_as_published: bool,
    /// MQTT 5 Retain Handling (0, 1, 2).
    pub retain_handling: u8,
    /// MQTT 5 Subscription Identifier.
    pub id: Option<u32>,
}

/// Every durable definition, as replayed from the log.
#[derive(Debug, Default, Clone)]
pub struct DefinitionSet {
    /// Exchanges by name.
    pub exchanges: BTreeMap<String, ExchangeSettings>,
    /// Queues by name.
    pub queues: BTreeMap<String, QueueDef>,
    /// Bindings in the order they were made.
    pub bindings: Vec<BindingDef>,
    /// Persistent MQTT sessions by client identifier.
    pub mqtt_sessions: BTreeMap<String, MqttSessionDef>,
    /// The vhost incarnation these are of (`Change::Incarnation`); `None` for vhosts without
    /// one (`/`, vhosts of the config file, and those added before incarnations existed).
    pub incarnation: Option<String>,
}

impl DefinitionSet {
    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
            && self.queues.is_empty()
            && self.bindings.is_empty()
            && self.mqtt_sessions.is_empty()
            && self.incarnation.is_none()
    }

    /// Applies one change.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Exchange(name, settings) => {
                self.exchanges.insert(name, settings);
            }
            Change::DeleteExchange(name) => {
                self.exchanges.remove(&name);
                self.bindings.retain(|b| {
                    b.source != name && b.destination != BoundTo::Exchange(name.clone())
                });
            }
            Change::Queue(name, def) => {
                self.queues.insert(name, def);
            }
            Change::DeleteQueue(name) => {
                self.queues.remove(&name);
                self.bindings
                    .retain(|b| b.destination != BoundTo::Queue(name.clone()));
            }
            Change::Bind(b) => {
                if !self.bindings.contains(&b) {
                    self.bindings.push(b);
                }
            }
            Change::Unbind(b) => self.bindings.retain(|x| *x != b),
            Change::MqttSession(client_id, def) => {
                self.mqtt_sessions.insert(client_id, def);
            }
            Change::DeleteMqttSession(client_id) => {
                self.mqtt_sessions.remove(&client_id);
            }
            Change::Incarnation(id) => self.incarnation = Some(id),
        }
    }

    /// The changes that rebuild this set from nothing.
    fn changes(&self) -> impl Iterator<Item = Change> + '_ {
        let exchanges = self
            .exchanges
            .iter()
            .map(|(n, s)| Change::Exchange(n.clone(), s.clone()));
        let queues = self
            .queues
            .iter()
            .map(|(n, d)| Change::Queue(n.clone(), d.clone()));
        let bindings = self.bindings.iter().cloned().map(Change::Bind);
        let sessions = self
            .mqtt_sessions
            .iter()
            .map(|(c, d)| Change::MqttSession(c.clone(), d.clone()));
        let incarnation = self.incarnation.iter().cloned().map(Change::Incarnation);
        incarnation
            .chain(exchanges)
            .chain(queues)
            .chain(bindings)
            .chain(sessions)
    }
}

/// The durable definitions of every vhost, by vhost name.
pub type VhostSets = BTreeMap<String, DefinitionSet>;

/// The vhost whose records are written untagged (as before vhosts were durable), so data
/// directories written by earlier versions load unchanged.
pub const DEFAULT_VHOST: &str = "/";

/// The open definitions log, shared by every vhost.
///
/// Writing is split in two so a vhost need not hold its registry lock across the disk: `append`
/// (under the registry lock, so the log has each vhost's changes in the order they were made)
/// writes the record to the file and returns its end position; `sync_to` (after the lock is
/// released) returns once that position is fsynced. Concurrent `sync_to`s share one fsync: the
/// first caller syncs everything written so far, the others find their position covered
/// (group commit, as the message persister does for messages).
pub struct Definitions {
    path: PathBuf,
    /// The appending handle and the bytes written through it so far.
    file: Mutex<(File, u64)>,
    /// A second handle on the same file for fsync, so appends go on during one.
    sync_file: File,
    /// Bytes known to be durable; held while fsyncing, so waiters queue behind one fsync.
    synced: Mutex<u64>,
    sync: bool,
}

impl Definitions {
    /// Reads the log at `path` (a torn or corrupt tail is dropped and logged), rewrites it
    /// compacted, and returns it open for appending with the definitions it held, by vhost.
    /// `sync`: fsync every change (off only with `fsync = "never"`).
    pub fn open(path: &Path, sync: bool) -> Result<(Definitions, VhostSets), DefinitionsError> {
        let io = |source| DefinitionsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut sets = VhostSets::new();
        match std::fs::read(path) {
            Ok(bytes) => replay(path, &bytes, &mut sets),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        sets.retain(|_, set| !set.is_empty());
        // Compact: the current sets as a fresh file, swapped in atomically.
        let tmp = path.with_extension("log.tmp");
        let mut buf = Vec::new();
        for (vhost, set) in &sets {
            for change in set.changes() {
                encode(vhost, &change, &mut buf);
            }
        }
        {
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(&buf).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            super::segment::sync_dir(dir).map_err(io)?;
        }
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        let sync_file = file.try_clone().map_err(io)?;
        for (vhost, set) in &sets {
            tracing::info!(
                path = %path.display(),
                vhost = %vhost,
                exchanges = set.exchanges.len(),
                queues = set.queues.len(),
                bindings = set.bindings.len(),
                mqtt_sessions = set.mqtt_sessions.len(),
                "store: recovered definitions"
            );
        }
        let len = buf.len() as u64;
        Ok((
            Definitions {
                path: path.to_path_buf(),
                file: Mutex::new((file, len)),
                sync_file,
                synced: Mutex::new(len),
                sync,
            },
            sets,
        ))
    }

    /// Appends one change of `vhost` and makes it durable before returning.
    pub fn record(&self, vhost: &str, change: &Change) {
        let at = self.append(vhost, change);
        self.sync_to(at);
    }

    /// Appends one change of `vhost` without waiting for the disk; returns the position to
    /// pass to `sync_to` before answering the change.
    pub fn append(&self, vhost: &str, change: &Change) -> u64 {
        let mut buf = Vec::new();
        encode(vhost, change, &mut buf);
        self.write(&buf)
    }

    /// Forgets every definition of `vhost` (it was deleted), durably.
    pub fn forget_vhost(&self, vhost: &str) {
        let mut buf = Vec::new();
        record::frame(&mut buf, kind::DELETE_VHOST, |out| Writer(out).str(vhost));
        let at = self.write(&buf);
        self.sync_to(at);
    }

    fn write(&self, buf: &[u8]) -> u64 {
        let mut guard = self.file.lock();
        let (file, len) = &mut *guard;
        match file.write_all(buf) {
            Ok(()) => *len += buf.len() as u64,
            Err(e) => tracing::error!(
                error = %e,
                path = %self.path.display(),
                "store: cannot write a definition change; it will not survive a restart"
            ),
        }
        *len
    }

    /// Returns once everything up to `position` (from `append`) is on disk.
    pub fn sync_to(&self, position: u64) {
        if !self.sync {
            return;
        }
        let mut synced = self.synced.lock();
        if *synced >= position {
            // Someone's fsync, done while we waited for the lock, covered ours.
            return;
        }
        let written = self.file.lock().1;
        match self.sync_file.sync_data() {
            Ok(()) => *synced = written,
            Err(e) => tracing::error!(
                error = %e,
                path = %self.path.display(),
                "store: cannot fsync the definitions log; recent changes may not survive a crash"
            ),
        }
    }
}

/// Record kinds of the definitions log.
mod kind {
    pub const EXCHANGE: u8 = 1;
    pub const DELETE_EXCHANGE: u8 = 2;
    pub const QUEUE: u8 = 3;
    pub const DELETE_QUEUE: u8 = 4;
    pub const BIND: u8 = 5;
    pub const UNBIND: u8 = 6;
    pub const MQTT_SESSION: u8 = 7;
    pub const DELETE_MQTT_SESSION: u8 = 8;
    /// A change of a vhost other than `/`: vhost name, inner kind, inner payload.
    pub const IN_VHOST: u8 = 9;
    /// A vhost was deleted: every definition of it goes.
    pub const DELETE_VHOST: u8 = 10;
    pub const INCARNATION: u8 = 11;
}

fn replay(path: &Path, bytes: &[u8], sets: &mut VhostSets) {
    let mut at = 0;
    loop {
        match record::decode(&bytes[at..]) {
            Decoded::Record {
                kind,
                payload,
                size,
            } => {
                match decode_tagged(kind, payload) {
                    Ok(Tagged::Change(vhost, change)) => {
                        sets.entry(vhost).or_default().apply(*change);
                    }
                    Ok(Tagged::DeleteVhost(vhost)) => {
                        sets.remove(&vhost);
                    }
                    Err(e) => tracing::warn!(
                        path = %path.display(),
                        offset = at,
                        error = %e,
                        "store: undecodable definition skipped"
                    ),
                }
                at += size;
            }
            Decoded::End => return,
            Decoded::Bad(why) => {
                tracing::warn!(
                    path = %path.display(),
                    offset = at,
                    bytes = bytes.len() - at,
                    "store: {why} in the definitions log; the changes from there are dropped"
                );
                return;
            }
        }
    }
}

/// A decoded record of the log.
enum Tagged {
    /// A change of the named vhost.
    Change(String, Box<Change>),
    /// A vhost was deleted.
    DeleteVhost(String),
}

fn decode_tagged(kind: u8, payload: &[u8]) -> Result<Tagged, CodecError> {
    match kind {
        kind::IN_VHOST => {
            let mut r = Reader::new(payload);
            let vhost = r.string()?;
            let inner = r.u8()?;
            if inner == kind::IN_VHOST || inner == kind::DELETE_VHOST {
                return Err(CodecError("nested vhost record"));
            }
            Ok(Tagged::Change(vhost, Box::new(decode(inner, r.rest())?)))
        }
        kind::DELETE_VHOST => Ok(Tagged::DeleteVhost(Reader::new(payload).string()?)),
        _ => Ok(Tagged::Change(
            DEFAULT_VHOST.to_string(),
            Box::new(decode(kind, payload)?),
        )),
    }
}

/// Frames `change` of `vhost`: untagged for `/` (the format from before vhosts were
/// durable), wrapped in an `IN_VHOST` record for the others.
fn encode(vhost: &str, change: &Change, out: &mut Vec<u8>) {
    let kind = kind_of(change);
    if vhost == DEFAULT_VHOST {
        record::frame(out, kind, |out| encode_payload(change, out));
    } else {
        record::frame(out, kind::IN_VHOST, |out| {
            let mut w = Writer(out);
            w.str(vhost);
            w.u8(kind);
            encode_payload(change, out);
        });
    }
}

fn kind_of(change: &Change) -> u8 {
    match change {
        Change::Exchange(..) => kind::EXCHANGE,
        Change::DeleteExchange(_) => kind::DELETE_EXCHANGE,
        Change::Queue(..) => kind::QUEUE,
        Change::DeleteQueue(_) => kind::DELETE_QUEUE,
        Change::Bind(_) => kind::BIND,
        Change::Unbind(_) => kind::UNBIND,
        Change::MqttSession(..) => kind::MQTT_SESSION,
        Change::DeleteMqttSession(_) => kind::DELETE_MQTT_SESSION,
        Change::Incarnation(_) => kind::INCARNATION,
    }
}

/// Writes the payload of `change` (without framing: `encode` frames it, tagged or not).
fn encode_payload(change: &Change, out: &mut Vec<u8>) {
    {
        // Scoped as when this was `frame`'s closure, so concurrent edits of the arms merge.
        let mut w = Writer(out);
        match change {
            Change::Exchange(name, s) => {
                w.str(name);
                w.str(s.kind.as_str());
                w.u8(u8::from(s.durable));
                w.u8(u8::from(s.auto_delete));
                w.u8(u8::from(s.internal));
                w.headers(&s.arguments);
            }
            Change::DeleteExchange(name)
            | Change::DeleteQueue(name)
            | Change::DeleteMqttSession(name)
            | Change::Incarnation(name) => w.str(name),
            Change::MqttSession(client_id, s) => {
                w.str(client_id);
                w.u32(s.expiry_secs);
                w.u32(u32::try_from(s.subscriptions.len()).unwrap_or(u32::MAX));
                for sub in &s.subscriptions {
                    w.str(&sub.filter);
                    w.u8(sub.qos);
                    w.u8(u8::from(sub.no_local));
                    w.u8(u8::from(sub.retain_as_published));
                    w.u8(sub.retain_handling);
                    w.opt(sub.id, |w, id| w.u32(id));
                }
                // Last, so records written before wills were kept still read.
                w.opt(s.will.as_ref(), |w, (delay, message)| {
                    w.u32(*delay);
                    w.message(message);
                });
                // After the will, for the same reason.
                w.opt(s.offline_since, |w, t| w.u64(t));
                w.opt(s.will_due, |w, t| w.u64(t));
            }
            Change::Queue(name, q) => {
                w.str(name);
                w.u8(u8::from(q.auto_delete));
                w.headers(&q.arguments);
            }
            Change::Bind(b) | Change::Unbind(b) => {
                w.str(&b.source);
                match &b.destination {
                    BoundTo::Queue(q) => {
                        w.u8(0);
                        w.str(q);
                    }
                    BoundTo::Exchange(x) => {
                        w.u8(1);
                        w.str(x);
                    }
                }
                w.str(&b.key);
                w.u8(u8::from(b.mqtt_key));
                w.headers(&b.arguments);
            }
        }
    }
}

fn decode(kind: u8, payload: &[u8]) -> Result<Change, CodecError> {
    let mut r = Reader::new(payload);
    Ok(match kind {
        kind::EXCHANGE => {
            let name = r.string()?;
            let kind =
                ExchangeKind::parse(&r.string()?).ok_or(CodecError("unknown exchange type"))?;
            Change::Exchange(
                name,
                ExchangeSettings {
                    kind,
                    durable: r.bool()?,
                    auto_delete: r.bool()?,
                    internal: r.bool()?,
                    arguments: r.headers()?,
                },
            )
        }
        kind::DELETE_EXCHANGE => Change::DeleteExchange(r.string()?),
        kind::QUEUE => Change::Queue(
            r.string()?,
            QueueDef {
                auto_delete: r.bool()?,
                arguments: r.headers()?,
            },
        ),
        kind::DELETE_QUEUE => Change::DeleteQueue(r.string()?),
        kind::BIND | kind::UNBIND => {
            let source = r.string()?;
            let destination = match r.u8()? {
                0 => BoundTo::Queue(r.string()?),
                1 => BoundTo::Exchange(r.string()?),
                _ => return Err(CodecError("unknown binding destination")),
            };
            let b = BindingDef {
                source,
                destination,
                key: r.string()?,
                mqtt_key: r.bool()?,
                arguments: r.headers()?,
            };
            if kind == kind::BIND {
                Change::Bind(b)
            } else {
                Change::Unbind(b)
            }
        }
        kind::MQTT_SESSION => {
            let client_id = r.string()?;
            let expiry_secs = r.u32()?;
            let n = r.u32()?;
            let mut subscriptions = Vec::new();
            for _ in 0..n {
                // Each takes at least 9 bytes: a count beyond the payload fails below, and
                // nothing is reserved from it up front.
                subscriptions.push(MqttSubscriptionDef {
                    filter: r.string()?,
                    qos: r.u8()?,
                    no_local: r.bool()?,
                    retain_as_published: r.bool()?,
                    retain_handling: r.u8()?,
                    id: r.opt(|r| r.u32())?,
                });
            }
            // Fields added later are absent from older records.
            let will = if r.is_empty() {
                None
            } else {
                r.opt(|r| Ok((r.u32()?, r.message()?)))?
            };
            let mut times = [None, None];
            for t in &mut times {
                if !r.is_empty() {
                    *t = r.opt(|r| r.u64())?;
                }
            }
            let [offline_since, will_due] = times;
            Change::MqttSession(
                client_id,
                MqttSessionDef {
                    expiry_secs,
                    subscriptions,
                    will,
                    offline_since,
                    will_due,
                },
            )
        }
        kind::DELETE_MQTT_SESSION => Change::DeleteMqttSession(r.string()?),
        kind::INCARNATION => Change::Incarnation(r.string()?),
        _ => return Err(CodecError("unknown definition kind")),
    })
}

#[cfg(test)]
#[path = "definitions_tests.rs"]
mod tests;
