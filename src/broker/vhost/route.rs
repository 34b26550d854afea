//! Routing a published message to its destinations, as RabbitMQ's `rabbit_exchange:route/2`:
//! start at the exchange published to; each exchange visited routes with its own type; a
//! destination that is an exchange (exchange-to-exchange binding) is visited next, and an
//! exchange whose own bindings matched nothing hands over to its `alternate-exchange`. Each
//! exchange is visited at most once, so cycles of bindings or alternates end. The default
//! exchange routes to the queue named by the routing key.
//!
//! Hot path: when the first exchange's result needs no expansion (no exchange-to-exchange
//! bindings in it, no alternate to consult), that result is returned as is — the shared slice
//! from the topic index's cache — with no allocation beyond the level split.

use std::ops::Deref;
use std::sync::Arc;

use super::{Vhost, VhostError};
use crate::broker::binding::Binding;
use crate::broker::exchange::Exchange;
use crate::broker::message::Message;
use crate::broker::routing_key;

/// The bindings a message was routed to. A destination may appear more than once, with the
/// options of each binding that reached it (`dispatch` merges them; [`Routed::dedup`] keeps one
/// per distinct binding).
#[derive(Debug, Clone)]
pub enum Routed {
    /// One exchange's result, shared with its match cache.
    Shared(Arc<[Binding]>),
    /// Assembled from several exchanges.
    Owned(Vec<Binding>),
}

impl Deref for Routed {
    type Target = [Binding];

    fn deref(&self) -> &[Binding] {
        match self {
            Routed::Shared(b) => b,
            Routed::Owned(b) => b,
        }
    }
}

impl Routed {
    /// The bindings as a vector.
    pub fn into_vec(self) -> Vec<Binding> {
        match self {
            Routed::Shared(b) => b.to_vec(),
            Routed::Owned(b) => b,
        }
    }

    /// The bindings with each (destination, options) once: a queue reached through several
    /// keys or exchanges appears once; an MQTT session keeps one binding per distinct set of
    /// subscription options, for `dispatch` to merge.
    pub fn dedup(self) -> Vec<Binding> {
        let mut bindings = self.into_vec();
        if bindings.len() > 1 {
            bindings.sort_unstable_by_key(Binding::destination_key);
            bindings.dedup();
        }
        bindings
    }
}

impl Vhost {
    /// Routes a message published to `exchange`: the bindings it reaches, each destination
    /// once (see [`Routed::dedup`]). 404 for a missing exchange, 403 for an internal one
    /// (`basic.publish` may not target it).
    pub fn route(&self, exchange: &str, message: &Message) -> Result<Vec<Binding>, VhostError> {
        Ok(self.route_shared(exchange, message)?.dedup())
    }

    /// `route` without the copy and deduplication: the common case shares the exchange's
    /// cached result. Feed it to `dispatch`, which merges repeated destinations.
    pub fn route_shared(&self, exchange: &str, message: &Message) -> Result<Routed, VhostError> {
        let x = self
            .exchange(exchange)
            .ok_or_else(|| self.no_exchange(exchange))?;
        if x.settings.internal {
            return Err(VhostError::AccessRefused(format!(
                "cannot publish to internal {}",
                self.resource("exchange", exchange)
            )));
        }
        Ok(self.route_from(&x, message))
    }

    /// Routes through the MQTT exchange (MQTT PUBLISH, wills, `$SYS`) without looking it up.
    pub fn route_mqtt(&self, message: &Message) -> Routed {
        self.route_from(&self.mqtt_exchange, message)
    }

    pub(super) fn route_from(&self, first: &Arc<Exchange>, message: &Message) -> Routed {
        let levels = routing_key::mqtt_levels(&message.topic);
        let found = self.route_one(first, message, &levels);
        let simple = if found.is_empty() {
            first.alternate.is_none()
        } else {
            !first.has_exchange_bindings()
        };
        if simple {
            return Routed::Shared(found);
        }
        let mut walk = Walk {
            seen: vec![Arc::clone(&first.name)],
            pending: Vec::new(),
            out: Vec::new(),
        };
        self.expand(first, &found, &mut walk);
        while let Some(x) = walk.pending.pop() {
            let found = self.route_one(&x, message, &levels);
            self.expand(&x, &found, &mut walk);
        }
        Routed::Owned(walk.out)
    }

    /// One exchange's own result, exchange destinations not expanded.
    fn route_one(&self, x: &Exchange, message: &Message, levels: &[&str]) -> Arc<[Binding]> {
        if !x.name.is_empty() {
            return x.route(message, levels);
        }
        // The default exchange: the queue named by the routing key (AMQP 0-9-1 section 3.1.3.1).
        let queue = routing_key::mqtt_topic_to_amqp_key(&message.topic);
        match self.queue_entry(&queue) {
            Some(q) => Arc::from([q.binding()]),
            None => Arc::from([]),
        }
    }

    /// Sorts one exchange's result into deliveries and exchanges still to visit.
    fn expand(&self, x: &Exchange, found: &[Binding], walk: &mut Walk) {
        if found.is_empty() {
            if let Some(alternate) = &x.alternate {
                self.visit(alternate, walk);
            }
            return;
        }
        for binding in found {
            match binding.destination.as_exchange() {
                Some(next) => self.visit(next, walk),
                None => walk.out.push(binding.clone()),
            }
        }
    }

    fn visit(&self, name: &str, walk: &mut Walk) {
        // Linear: the exchanges one message passes through are few.
        if walk.seen.iter().any(|s| **s == *name) {
            return;
        }
        if let Some(x) = self.exchange(name) {
            walk.seen.push(Arc::clone(&x.name));
            walk.pending.push(x);
        }
    }
}

/// State of one expanded route.
struct Walk {
    /// Exchanges visited or queued for a visit.
    seen: Vec<Arc<str>>,
    pending: Vec<Arc<Exchange>>,
    out: Vec<Binding>,
}
