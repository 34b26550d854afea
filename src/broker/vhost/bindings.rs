//! Bindings between exchanges and queues (`queue.bind`, `exchange.bind` and their unbinds).
//!
//! Identity follows RabbitMQ: a binding is (source, destination, key, arguments); binding the
//! same twice is a no-op and unbinding a missing one succeeds. Two spellings of one key (`a/+`
//! and `a.*` on a topic exchange) are one key. The exchange's router holds less: one entry per
//! (key, destination) — or (arguments, destination) for headers, or the destination for fanout —
//! so the table below decides when the router gains or loses an entry: it loses it only with the
//! last binding that needs it.
//!
//! MQTT subscriptions bind sessions on the MQTT exchange's router directly and are not in this
//! table (their identity is the session's).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{default_exchange_refused, Registry, Vhost, VhostError};
use crate::broker::binding::Binding;
use crate::broker::exchange::{BindingKey, Exchange, ExchangeKind};
use crate::broker::headers::Headers;
use crate::broker::routing_key::{self, FilterLevel};
use crate::broker::ConnectionId;
use crate::store::definitions::{BindingDef, BoundTo, Change};

impl Vhost {
    /// `queue.bind`: binds queue `queue` to exchange `exchange`. 403 on the default exchange,
    /// 404 for a missing exchange or queue, 405 for another connection's exclusive queue, 406
    /// for invalid headers-exchange arguments.
    pub fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        key: BindingKey<'_>,
        arguments: &Headers,
        requester: ConnectionId,
    ) -> Result<(), VhostError> {
        let mut reg = self.lock_registry();
        let ends = self.queue_ends(queue, exchange, requester)?;
        self.add(&mut reg, ends, key, arguments)
    }

    /// `queue.unbind`. A binding that does not exist is not an error (RabbitMQ 3.x).
    pub fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        key: BindingKey<'_>,
        arguments: &Headers,
        requester: ConnectionId,
    ) -> Result<(), VhostError> {
        let mut reg = self.lock_registry();
        let ends = self.queue_ends(queue, exchange, requester)?;
        self.remove(&mut reg, &ends, key, arguments);
        Ok(())
    }

    /// `exchange.bind` (RabbitMQ extension): messages routed by `source` go on to
    /// `destination`. Cycles are allowed; routing visits each exchange once.
    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: BindingKey<'_>,
        arguments: &Headers,
    ) -> Result<(), VhostError> {
        let mut reg = self.lock_registry();
        let ends = self.exchange_ends(destination, source)?;
        self.add(&mut reg, ends, key, arguments)
    }

    /// `exchange.unbind`. A binding that does not exist is not an error.
    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: BindingKey<'_>,
        arguments: &Headers,
    ) -> Result<(), VhostError> {
        let mut reg = self.lock_registry();
        let ends = self.exchange_ends(destination, source)?;
        self.remove(&mut reg, &ends, key, arguments);
        Ok(())
    }

    /// The two ends of a queue binding, checked: the exchange must be bindable (403/404), the
    /// queue must exist (404) and be usable by `requester` (405).
    fn queue_ends(
        &self,
        queue: &str,
        exchange: &str,
        requester: ConnectionId,
    ) -> Result<Ends, VhostError> {
        let source = self.bindable_exchange(exchange)?;
        let q = self
            .queue_entry(queue)
            .ok_or_else(|| self.no_queue(queue))?;
        self.check_access(&q, requester)?;
        Ok(Ends {
            durable: source.settings.durable && q.is_durable(),
            source,
            destination: Destination::Queue(Arc::clone(&q.name)),
            target: q.binding(),
        })
    }

    /// The two ends of an exchange-to-exchange binding, both bindable (403/404).
    fn exchange_ends(&self, destination: &str, source: &str) -> Result<Ends, VhostError> {
        let source = self.bindable_exchange(source)?;
        let dst = self.bindable_exchange(destination)?;
        Ok(Ends {
            durable: source.settings.durable && dst.settings.durable,
            source,
            destination: Destination::Exchange(Arc::clone(&dst.name)),
            target: dst.as_destination(),
        })
    }

    /// An exchange that bindings may name: not the default one (403), and existing (404).
    fn bindable_exchange(&self, name: &str) -> Result<Arc<Exchange>, VhostError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        self.exchange(name).ok_or_else(|| self.no_exchange(name))
    }

    fn remove(&self, reg: &mut Registry, ends: &Ends, key: BindingKey<'_>, arguments: &Headers) {
        let Ends {
            source,
            destination,
            target,
            durable,
        } = ends;
        let kind = source.kind();
        let probe = Record::new(kind, key, arguments);
        let Some(removed) = reg.bindings.remove(&source.name, destination, &probe) else {
            return;
        };
        if *durable {
            // As it was recorded: the spelling it was bound with.
            let def = binding_def(&source.name, destination, removed.key(), &removed.arguments);
            self.log_definition(Change::Unbind(def));
        }
        let still_routed = reg
            .bindings
            .records(&source.name, destination)
            .iter()
            .any(|r| r.same_route(kind, &removed));
        if !still_routed {
            source.unbind(removed.key(), &removed.arguments, target);
        }
        self.auto_delete_exchanges(reg, vec![Arc::clone(&source.name)]);
    }

    /// Removes every binding to `destination` (a queue or exchange being deleted); the sources
    /// left without bindings are returned for the auto-delete check.
    pub(super) fn unbind_destination(
        &self,
        reg: &mut Registry,
        destination: &Destination,
        target: &Binding,
    ) -> Vec<Arc<str>> {
        let mut sources = Vec::new();
        for (source, records) in reg.bindings.remove_destination(destination) {
            if let Some(x) = self.exchange(&source) {
                for r in &records {
                    x.unbind(r.key(), &r.arguments, target);
                }
            }
            sources.push(source);
        }
        sources
    }

    /// Deletes an exchange with everything bound to or from it; returns the exchanges that
    /// lost a binding (auto-delete candidates).
    pub(super) fn remove_exchange(&self, reg: &mut Registry, x: &Arc<Exchange>) -> Vec<Arc<str>> {
        self.exchanges.remove(&x.name);
        if x.settings.durable {
            // Replaying the deletion drops its bindings too.
            self.log_definition(Change::DeleteExchange(x.name.to_string()));
        }
        // Its own bindings go with its router.
        reg.bindings.remove_source(&x.name);
        let destination = Destination::Exchange(Arc::clone(&x.name));
        self.unbind_destination(reg, &destination, &x.as_destination())
    }

    /// Deletes the auto-delete exchanges among `candidates` that have no bindings left, and
    /// those that this leaves without bindings in turn (RabbitMQ's cascade).
    pub(super) fn auto_delete_exchanges(&self, reg: &mut Registry, mut candidates: Vec<Arc<str>>) {
        while let Some(name) = candidates.pop() {
            let Some(x) = self.exchange(&name) else {
                continue;
            };
            if x.settings.auto_delete && !reg.bindings.has_source(&name) {
                candidates.extend(self.remove_exchange(reg, &x));
            }
        }
    }
}

impl Vhost {
    fn add(
        &self,
        reg: &mut Registry,
        ends: Ends,
        key: BindingKey<'_>,
        arguments: &Headers,
    ) -> Result<(), VhostError> {
        let Ends {
            source,
            destination,
            target,
            durable,
        } = ends;
        source
            .router
            .validate_binding(arguments)
            .map_err(VhostError::PreconditionFailed)?;
        let def = durable.then(|| binding_def(&source.name, &destination, key, arguments));
        let record = Record::new(source.kind(), key, arguments);
        if reg.bindings.insert(&source.name, destination, record) {
            // False when another binding already gave the router this entry: nothing to do.
            source.bind(key, arguments, target);
            if let Some(def) = def {
                self.log_definition(Change::Bind(def));
            }
        }
        Ok(())
    }
}

/// A binding's source exchange, its destination in the registry, the binding the source's
/// router holds for it, and whether it survives a restart (both ends durable, as in RabbitMQ).
struct Ends {
    source: Arc<Exchange>,
    destination: Destination,
    target: Binding,
    durable: bool,
}

/// A binding as the definitions log records it.
fn binding_def(
    source: &str,
    destination: &Destination,
    key: BindingKey<'_>,
    arguments: &Headers,
) -> BindingDef {
    let (key, mqtt_key) = match key {
        BindingKey::Mqtt(k) => (k.to_string(), true),
        BindingKey::Amqp(k) => (k.to_string(), false),
    };
    BindingDef {
        source: source.to_string(),
        destination: match destination {
            Destination::Queue(q) => BoundTo::Queue(q.to_string()),
            Destination::Exchange(x) => BoundTo::Exchange(x.to_string()),
        },
        key,
        mqtt_key,
        arguments: arguments.clone(),
    }
}

/// What a binding leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Destination {
    /// A queue by name.
    Queue(Arc<str>),
    /// An exchange by name.
    Exchange(Arc<str>),
}

/// One binding as the table keeps it.
#[derive(Debug, Clone)]
pub(super) struct Record {
    /// The key as given (its spelling is what the router is called with).
    key: OwnedKey,
    /// The key as the source's type reads it: wildcards parsed for topic, literal levels
    /// otherwise. Two spellings of one key normalize alike.
    normalized: Vec<FilterLevel>,
    arguments: Headers,
}

#[derive(Debug, Clone)]
enum OwnedKey {
    Mqtt(String),
    Amqp(String),
}

impl Record {
    fn new(kind: ExchangeKind, key: BindingKey<'_>, arguments: &Headers) -> Record {
        let normalized = match kind {
            ExchangeKind::Topic => key.filter_levels(),
            _ => routing_key::mqtt_levels(&key.exact_topic())
                .into_iter()
                .map(|level| FilterLevel::Literal(level.to_owned()))
                .collect(),
        };
        Record {
            key: match key {
                BindingKey::Mqtt(k) => OwnedKey::Mqtt(k.to_owned()),
                BindingKey::Amqp(k) => OwnedKey::Amqp(k.to_owned()),
            },
            normalized,
            arguments: arguments.clone(),
        }
    }

    fn key(&self) -> BindingKey<'_> {
        match &self.key {
            OwnedKey::Mqtt(k) => BindingKey::Mqtt(k),
            OwnedKey::Amqp(k) => BindingKey::Amqp(k),
        }
    }

    /// The same binding (same source and destination assumed).
    fn same_binding(&self, other: &Record) -> bool {
        self.normalized == other.normalized && self.arguments == other.arguments
    }

    /// Both need the same router entry.
    fn same_route(&self, kind: ExchangeKind, other: &Record) -> bool {
        match kind {
            ExchangeKind::Fanout => true,
            ExchangeKind::Headers => self.arguments == other.arguments,
            ExchangeKind::Direct | ExchangeKind::Topic => self.normalized == other.normalized,
        }
    }
}

/// Every binding of the vhost, by source and by destination.
#[derive(Default)]
pub(super) struct BindingTable {
    by_source: HashMap<Arc<str>, HashMap<Destination, Vec<Record>>>,
    /// The sources bound to each destination.
    by_destination: HashMap<Destination, HashSet<Arc<str>>>,
}

impl BindingTable {
    /// Adds a binding; false if it existed.
    fn insert(&mut self, source: &Arc<str>, destination: Destination, record: Record) -> bool {
        let records = self
            .by_source
            .entry(Arc::clone(source))
            .or_default()
            .entry(destination.clone())
            .or_default();
        if records.iter().any(|r| r.same_binding(&record)) {
            return false;
        }
        records.push(record);
        self.by_destination
            .entry(destination)
            .or_default()
            .insert(Arc::clone(source));
        true
    }

    /// Removes the binding `probe` describes; returns it, or `None` if it did not exist.
    fn remove(
        &mut self,
        source: &str,
        destination: &Destination,
        probe: &Record,
    ) -> Option<Record> {
        let by_destination = self.by_source.get_mut(source)?;
        let records = by_destination.get_mut(destination)?;
        let at = records.iter().position(|r| r.same_binding(probe))?;
        let removed = records.swap_remove(at);
        if records.is_empty() {
            by_destination.remove(destination);
            if by_destination.is_empty() {
                self.by_source.remove(source);
            }
            if let Some(sources) = self.by_destination.get_mut(destination) {
                sources.remove(source);
                if sources.is_empty() {
                    self.by_destination.remove(destination);
                }
            }
        }
        Some(removed)
    }

    fn records(&self, source: &str, destination: &Destination) -> &[Record] {
        self.by_source
            .get(source)
            .and_then(|d| d.get(destination))
            .map_or(&[], Vec::as_slice)
    }

    /// True if `source` has bindings.
    pub(super) fn has_source(&self, source: &str) -> bool {
        self.by_source.contains_key(source)
    }

    /// Drops every binding from `source`.
    fn remove_source(&mut self, source: &str) {
        let Some(destinations) = self.by_source.remove(source) else {
            return;
        };
        for destination in destinations.into_keys() {
            if let Some(sources) = self.by_destination.get_mut(&destination) {
                sources.remove(source);
                if sources.is_empty() {
                    self.by_destination.remove(&destination);
                }
            }
        }
    }

    /// Drops every binding to `destination`; returns them by source.
    fn remove_destination(&mut self, destination: &Destination) -> Vec<(Arc<str>, Vec<Record>)> {
        let Some(sources) = self.by_destination.remove(destination) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(sources.len());
        for source in sources {
            if let Some(by_destination) = self.by_source.get_mut(&source) {
                if let Some(records) = by_destination.remove(destination) {
                    out.push((Arc::clone(&source), records));
                }
                if by_destination.is_empty() {
                    self.by_source.remove(&source);
                }
            }
        }
        out
    }
}
