//! Dead lettering as RabbitMQ 3.x's `rabbit_dead_letter` does it: the message to republish (its
//! `x-death` header added or updated, the `x-first-death-*` headers on its first death, its
//! per-message expiration removed, its exchange and maybe routing key replaced), and the rule
//! that stops dead-letter cycles. Also the `QueueHost`: what a queue needs from the vhost that
//! holds it (routing for dead letters, removal at `x-expires`) without holding the vhost.
//!
//! Pure functions over core messages: no routing here (the host routes), no queue state.
//!
//! `x-death` entries (tables) carry `count`, `reason`, `queue`, `time`, `exchange`,
//! `routing-keys` and, for a message that had one, `original-expiration`. The array is most
//! recent first: a death for a (queue, reason) already present increments that entry's count and
//! moves it to the front, keeping its other fields; a new one is prepended. Entries that repeat
//! a (queue, reason) — headers from brokers before rabbitmq-server#78 — are merged first. (3.x's
//! merge happens to reverse the order of the other entries when there are several; we keep them
//! most recent first, as its documentation states.) Setting a header sorts the table by name, as
//! `rabbit_misc:set_table_value` does. We route on the publish routing key only (no `CC`/`BCC`),
//! so `routing-keys` holds that one key.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::broker::binding::Pending;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::message::{AmqpProperties, Message};
use crate::broker::routing_key;

/// Why a message was dead-lettered: the `reason` of its `x-death` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathReason {
    /// Rejected or nacked with requeue=false.
    Rejected,
    /// Its per-message or per-queue TTL ran out.
    Expired,
    /// Dropped from the head, or refused at the tail (`reject-publish-dlx`), by a length limit.
    MaxLen,
}

impl DeathReason {
    /// RabbitMQ's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::MaxLen => "maxlen",
        }
    }
}

/// A dead-lettered message on its way to its dead-letter exchange.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message as republished: `exchange` is the dead-letter exchange, `topic` the
    /// dead-letter routing key if the queue has one, `x-death` updated, no expiry.
    pub message: Arc<Message>,
    /// Why it died.
    pub reason: DeathReason,
}

impl DeadLetter {
    /// The exchange to publish it to.
    pub fn exchange(&self) -> &str {
        &self.message.exchange
    }

    /// The queues its `x-death` entries name (the only queues it can cycle into).
    pub fn death_queues(&self) -> impl Iterator<Item = &[u8]> {
        deaths(&self.message).iter().filter_map(|d| match d {
            HeaderValue::Table(t) => long_str(t, "queue"),
            _ => None,
        })
    }

    /// RabbitMQ's cycle rule (`rabbit_dead_letter:is_cycle/2`): delivering this message to
    /// `queue` closes a cycle — and the host must skip that queue — when `queue` appears in its
    /// `x-death` (which already records this death) and none of the entries up to and
    /// including that one is a rejection. A death by rejection never cycles: a client was
    /// involved. So a queue whose expired messages are dead-lettered back into itself drops
    /// them at once (the message would reach it twice with nothing but timers in between).
    pub fn cycles_into(&self, queue: &str) -> bool {
        self.reason != DeathReason::Rejected && is_cycle(queue.as_bytes(), deaths(&self.message))
    }
}

/// What a queue needs from the vhost that holds it. The vhost implements it over a weak
/// reference, so a queue actor never keeps its vhost — or, through the vhost, itself — alive.
/// Called on the queue's task: it must not block or await.
pub trait QueueHost: Send + Sync + 'static {
    /// Routes `letter` through its exchange, as a publish would (a missing exchange drops it,
    /// as RabbitMQ does), skipping the queues it would cycle into
    /// ([`DeadLetter::cycles_into`]). Deliveries that meet a full inbox go to `pending`; the
    /// queue awaits them on a task of their own, never on its own task (two queues
    /// dead-lettering into each other would wait for each other).
    fn dead_letter(&self, letter: DeadLetter, pending: &mut Vec<Pending>);

    /// The queue named `queue` stopped after being unused for its `x-expires`: remove it and
    /// its bindings. Called after the actor stopped, so `QueueHandle::is_closed` tells this
    /// queue from a newer one of the same name.
    fn unused_expired(&self, queue: &str);
}

/// The host of a queue outside any vhost (MQTT shared groups, tests): dead letters go
/// nowhere.
pub(super) struct Detached;

impl QueueHost for Detached {
    fn dead_letter(&self, _letter: DeadLetter, _pending: &mut Vec<Pending>) {}

    fn unused_expired(&self, _queue: &str) {}
}

/// The message `message`, which died in queue `queue` for `reason`, as it is republished to
/// exchange `dlx` with `routing_key` (AMQP form), or its own when `None`.
pub(super) fn dead_letter(
    message: &Message,
    reason: DeathReason,
    queue: &str,
    dlx: &Arc<str>,
    routing_key: Option<&str>,
    now: SystemTime,
) -> DeadLetter {
    let mut m = message.clone();
    let mut amqp = m.properties.amqp.take().unwrap_or_else(|| {
        // Not from AMQP: the headers need a home, and an AMQP consumer must still see the
        // delivery mode it would have seen (`translate::to_properties`: QoS >= 1 is persistent).
        Box::new(AmqpProperties {
            delivery_mode: Some(if message.qos > 0 { 2 } else { 1 }),
            ..AmqpProperties::default()
        })
    });
    let key = routing_key::mqtt_topic_to_amqp_key(&message.topic);
    let time = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut info: Vec<(String, HeaderValue)> = vec![
        ("reason".into(), HeaderValue::string(reason.as_str())),
        ("queue".into(), HeaderValue::string(queue)),
        ("time".into(), HeaderValue::Timestamp(time)),
        ("exchange".into(), HeaderValue::string(&message.exchange)),
        (
            "routing-keys".into(),
            HeaderValue::Array(vec![HeaderValue::string(&key)]),
        ),
    ];
    // The expiration goes, so the message does not expire again wherever it is routed.
    if let Some(expiration) = amqp.expiration.take() {
        info.push((
            "original-expiration".into(),
            HeaderValue::LongString(expiration),
        ));
    }
    let mut headers = amqp.headers.take().unwrap_or_default();
    record_death(&mut headers, info);
    if let Some(rk) = routing_key {
        headers.0.retain(|(k, _)| k != "CC");
        m.topic = routing_key::amqp_key_to_mqtt_topic(rk).into_owned();
    }
    amqp.headers = Some(headers);
    m.properties.amqp = Some(amqp);
    m.exchange = Arc::clone(dlx);
    m.expires_at = None;
    DeadLetter {
        message: Arc::new(m),
        reason,
    }
}

/// `update_x_death_header`: `info` is the new entry without its count.
fn record_death(headers: &mut Headers, info: Vec<(String, HeaderValue)>) {
    let field = |k: &str| {
        info.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or(HeaderValue::Void)
    };
    let (queue, reason) = (field("queue"), field("reason"));
    let counted = |info: Vec<(String, HeaderValue)>| {
        let mut entry = vec![("count".to_string(), HeaderValue::I64(1))];
        entry.extend(info);
        entry
    };
    let deaths = match headers.get("x-death") {
        None => {
            // The first death also gets top-level headers (rabbitmq-server#1332).
            set(headers, "x-first-death-reason", reason);
            set(headers, "x-first-death-queue", queue);
            set(headers, "x-first-death-exchange", field("exchange"));
            vec![HeaderValue::Table(Headers(counted(info)))]
        }
        Some(HeaderValue::Array(tables)) => {
            let (matches, others): (Vec<HeaderValue>, Vec<HeaderValue>) = merge_repeats(tables)
                .into_iter()
                .partition(|t| same_event(t, &queue, &reason));
            let mut entry = match matches.into_iter().next() {
                Some(HeaderValue::Table(old)) => increment(old.0),
                _ => counted(info),
            };
            entry.sort_by(|a, b| a.0.cmp(&b.0));
            let mut deaths = vec![HeaderValue::Table(Headers(entry))];
            deaths.extend(others);
            deaths
        }
        // Not an array: a client republished it with the header mangled (rabbitmq-server#767).
        Some(_) => vec![HeaderValue::Table(Headers(counted(info)))],
    };
    set(headers, "x-death", HeaderValue::Array(deaths));
}

/// True for an `x-death` table of the death (`queue`, `reason`).
fn same_event(table: &HeaderValue, queue: &HeaderValue, reason: &HeaderValue) -> bool {
    let HeaderValue::Table(t) = table else {
        return false;
    };
    let value = |k: &str| t.get(k).and_then(HeaderValue::as_bytes);
    value("queue") == queue.as_bytes() && value("reason") == reason.as_bytes()
}

/// One entry per (queue, reason): the first of a repeated pair stays, counting the repeats if
/// it has no count of its own (`group_by_queue_and_reason`).
fn merge_repeats(tables: &[HeaderValue]) -> Vec<HeaderValue> {
    if tables.len() < 2 {
        return tables.to_vec();
    }
    let mut out: Vec<HeaderValue> = Vec::with_capacity(tables.len());
    for t in tables {
        let HeaderValue::Table(info) = t else {
            out.push(t.clone());
            continue;
        };
        let (queue, reason) = (
            info.get("queue").cloned().unwrap_or(HeaderValue::Void),
            info.get("reason").cloned().unwrap_or(HeaderValue::Void),
        );
        if out.iter().any(|o| same_event(o, &queue, &reason)) {
            continue;
        }
        let mut info = info.clone();
        if !info.contains_key("count") {
            let repeats = tables
                .iter()
                .filter(|o| same_event(o, &queue, &reason))
                .count();
            let repeats = i64::try_from(repeats).unwrap_or(i64::MAX);
            info.0
                .insert(0, ("count".into(), HeaderValue::I64(repeats)));
        }
        out.push(HeaderValue::Table(info));
    }
    out
}

/// The entry with its count one higher; its other fields (time, exchange) stay those of the
/// first such death.
fn increment(mut entry: Vec<(String, HeaderValue)>) -> Vec<(String, HeaderValue)> {
    match entry.iter_mut().find(|(k, _)| k == "count") {
        Some((_, v)) => *v = HeaderValue::I64(v.as_i64().unwrap_or(0).saturating_add(1)),
        None => entry.insert(0, ("count".into(), HeaderValue::I64(1))),
    }
    entry
}

/// `rabbit_misc:set_table_value`: replace or add, then sort the table by name (stable).
fn set(headers: &mut Headers, key: &str, value: HeaderValue) {
    match headers.0.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => headers.0.push((key.to_string(), value)),
    }
    headers.0.sort_by(|a, b| a.0.cmp(&b.0));
}

/// The `x-death` array of a message (empty if it has none, or not as an array).
fn deaths(message: &Message) -> &[HeaderValue] {
    match message.amqp_headers().and_then(|h| h.get("x-death")) {
        Some(HeaderValue::Array(deaths)) => deaths,
        _ => &[],
    }
}

fn is_cycle(queue: &[u8], deaths: &[HeaderValue]) -> bool {
    let Some(at) = deaths.iter().position(|d| match d {
        HeaderValue::Table(t) => long_str(t, "queue") == Some(queue),
        _ => false,
    }) else {
        return false;
    };
    deaths[..=at].iter().all(|d| match d {
        HeaderValue::Table(t) => long_str(t, "reason") != Some(b"rejected".as_slice()),
        // Something a client put there: the cycle is not "fully automatic".
        _ => false,
    })
}

/// A field that is a long string (RabbitMQ's cycle check compares `{longstr, Name}`).
fn long_str<'a>(table: &'a Headers, key: &str) -> Option<&'a [u8]> {
    match table.get(key) {
        Some(HeaderValue::LongString(b)) => Some(Bytes::as_ref(b)),
        _ => None,
    }
}
