//! Exchanges: named routers inside a vhost. Each type (direct, fanout, topic, headers; AMQP
//! 0-9-1 section 3.1.3 and RabbitMQ's headers `x-match` variants) implements `ExchangeType`:
//! route, bind, unbind. An exchange carries its declared settings; the vhost owns the registry of
//! exchanges and the identity of bindings, and expands exchange-to-exchange bindings.
//! Must not touch: wire types, queues' internals, locks across `.await`.

pub mod direct;
pub mod fanout;
pub mod headers;
pub mod topic;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::binding::{Binding, BindingOptions, Delivery, Pending, Subscriber};
use super::headers::Headers;
use super::message::Message;
use super::routing_key::{self, FilterLevel};

/// How a binding key is written: the two protocols spell wildcards and separators differently.
#[derive(Debug, Clone, Copy)]
pub enum BindingKey<'a> {
    /// An MQTT topic filter (`/` separators, `+` and `#`).
    Mqtt(&'a str),
    /// An AMQP binding key (`.` separators, `*` and `#`).
    Amqp(&'a str),
}

impl<'a> BindingKey<'a> {
    /// The key as a topic filter: wildcards parsed in the key's own spelling.
    pub fn filter_levels(self) -> Vec<FilterLevel> {
        match self {
            BindingKey::Mqtt(filter) => routing_key::parse_mqtt_filter(filter),
            BindingKey::Amqp(key) => routing_key::parse_amqp_binding_key(key),
        }
    }

    /// The key as an exact routing key in MQTT form (what `Message::topic` holds): wildcard
    /// characters are literal here, as in a direct exchange.
    pub fn exact_topic(self) -> Cow<'a, str> {
        match self {
            BindingKey::Mqtt(topic) => Cow::Borrowed(topic),
            BindingKey::Amqp(key) => routing_key::amqp_key_to_mqtt_topic(key),
        }
    }
}

/// The exchange types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Routes on the exact routing key.
    Direct,
    /// Routes to every binding.
    Fanout,
    /// Routes on routing-key levels with wildcards.
    Topic,
    /// Routes on message headers (`x-match`).
    Headers,
}

impl ExchangeKind {
    /// The kind named by an AMQP `exchange.declare` type; `None` for unknown types.
    pub fn parse(name: &str) -> Option<ExchangeKind> {
        match name {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    /// The AMQP type name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }

    /// A new, empty router of this kind.
    pub fn router(self) -> Box<dyn ExchangeType> {
        match self {
            ExchangeKind::Direct => Box::new(direct::DirectExchange::new()),
            ExchangeKind::Fanout => Box::new(fanout::FanoutExchange::new()),
            ExchangeKind::Topic => Box::new(topic::TopicExchange::new()),
            ExchangeKind::Headers => Box::new(headers::HeadersExchange::new()),
        }
    }
}

/// What `exchange.declare` sets (AMQP 0-9-1 class exchange).
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeSettings {
    /// The type.
    pub kind: ExchangeKind,
    /// Survives a broker restart (the definition; messages are persistent per message).
    pub durable: bool,
    /// Deleted when its last binding (as a source) goes, after having had one.
    pub auto_delete: bool,
    /// Clients cannot publish to it; only exchange-to-exchange bindings feed it.
    pub internal: bool,
    /// Declaration arguments (`alternate-exchange`, ...).
    pub arguments: Headers,
}

impl ExchangeSettings {
    /// A durable exchange of `kind` without arguments: the built-in exchanges.
    pub fn durable(kind: ExchangeKind) -> ExchangeSettings {
        ExchangeSettings {
            kind,
            durable: true,
            auto_delete: false,
            internal: false,
            arguments: Headers::new(),
        }
    }
}

/// The routing behaviour of one exchange type. Implementations are synchronous and hold their
/// locks only for the call.
pub trait ExchangeType: Send + Sync {
    /// Destinations of `message`; `levels` is its routing key split into levels (MQTT form).
    /// A destination may appear more than once (bound through several keys): `dispatch` merges.
    fn route(&self, message: &Message, levels: &[&str]) -> Arc<[Binding]>;

    /// Adds a binding; false if the type already holds an identical one. `arguments` matter to
    /// the headers type only.
    fn bind(&self, key: BindingKey<'_>, arguments: &Headers, binding: Binding) -> bool;

    /// Removes a binding; false if it did not exist.
    fn unbind(&self, key: BindingKey<'_>, arguments: &Headers, binding: &Binding) -> bool;

    /// Checks binding arguments before a bind (the headers type checks `x-match`); the error is
    /// RabbitMQ's reply text for a 406.
    fn validate_binding(&self, _arguments: &Headers) -> Result<(), String> {
        Ok(())
    }
}

/// A named exchange with its settings and routing state.
pub struct Exchange {
    /// Its name (`amq.topic`, ...).
    pub name: Arc<str>,
    /// What it was declared with.
    pub settings: ExchangeSettings,
    /// The `alternate-exchange` argument: where messages go that nothing here matched.
    pub alternate: Option<Arc<str>>,
    /// Its type's routing logic.
    pub router: Box<dyn ExchangeType>,
    /// Stands for this exchange as the destination of exchange-to-exchange bindings; one `Arc`
    /// for all of them, so bindings can be told apart and removed by pointer.
    target: Arc<dyn Subscriber>,
    /// Bindings in `router` whose destination is an exchange. While 0, routing skips looking
    /// for them (the MQTT hot path).
    exchange_bindings: AtomicUsize,
}

impl Exchange {
    /// An exchange with no bindings.
    pub fn new(name: &str, settings: ExchangeSettings) -> Exchange {
        let name: Arc<str> = name.into();
        let alternate = settings
            .arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_bytes())
            .map(|b| Arc::from(String::from_utf8_lossy(b).as_ref()));
        Exchange {
            router: settings.kind.router(),
            target: Arc::new(ExchangeRef {
                name: Arc::clone(&name),
            }),
            name,
            settings,
            alternate,
            exchange_bindings: AtomicUsize::new(0),
        }
    }

    /// A durable topic exchange.
    pub fn topic(name: &str) -> Exchange {
        Exchange::new(name, ExchangeSettings::durable(ExchangeKind::Topic))
    }

    /// Its type.
    pub fn kind(&self) -> ExchangeKind {
        self.settings.kind
    }

    /// The binding that makes this exchange the destination of another one.
    pub fn as_destination(&self) -> Binding {
        Binding {
            destination: Arc::clone(&self.target),
            options: BindingOptions::default(),
        }
    }

    /// Destinations of `message` through this exchange's own bindings (exchange destinations
    /// not expanded; the vhost does that).
    pub fn route(&self, message: &Message, levels: &[&str]) -> Arc<[Binding]> {
        self.router.route(message, levels)
    }

    /// Adds a binding; false if it already existed.
    pub fn bind(&self, key: BindingKey<'_>, arguments: &Headers, binding: Binding) -> bool {
        let to_exchange = binding.destination.as_exchange().is_some();
        let added = self.router.bind(key, arguments, binding);
        if added && to_exchange {
            self.exchange_bindings.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Removes a binding; false if it did not exist.
    pub fn unbind(&self, key: BindingKey<'_>, arguments: &Headers, binding: &Binding) -> bool {
        let removed = self.router.unbind(key, arguments, binding);
        if removed && binding.destination.as_exchange().is_some() {
            self.exchange_bindings.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// True if some binding here leads to another exchange.
    pub fn has_exchange_bindings(&self) -> bool {
        self.exchange_bindings.load(Ordering::Relaxed) > 0
    }
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An exchange as a binding destination. Never delivered to: the vhost's routing replaces it
/// by what that exchange routes to.
struct ExchangeRef {
    name: Arc<str>,
}

impl Subscriber for ExchangeRef {
    fn deliver(&self, _message: &Arc<Message>, _delivery: Delivery) -> Option<Pending> {
        // Reached only if a caller dispatched an unexpanded route result: the exchange itself
        // holds no messages, so there is nothing to do.
        None
    }

    fn identity(&self) -> Option<&str> {
        None
    }

    fn as_exchange(&self) -> Option<&str> {
        Some(&self.name)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A recording destination and message builders for the exchange and vhost tests.

    use std::sync::Arc;

    use bytes::Bytes;
    use parking_lot::Mutex;

    use crate::broker::binding::{Binding, BindingOptions, Delivery, Pending, Subscriber};
    use crate::broker::headers::Headers;
    use crate::broker::message::{AmqpProperties, Message, Origin, Properties};

    /// Records the topics delivered to it.
    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<String>>);

    impl Subscriber for Recorder {
        fn deliver(&self, message: &Arc<Message>, _delivery: Delivery) -> Option<Pending> {
            self.0.lock().push(message.topic.clone());
            None
        }

        fn identity(&self) -> Option<&str> {
            None
        }
    }

    /// A destination and the binding to it.
    pub fn destination() -> (Arc<dyn Subscriber>, Binding) {
        let d: Arc<dyn Subscriber> = Arc::new(Recorder::default());
        let b = Binding {
            destination: Arc::clone(&d),
            options: BindingOptions::default(),
        };
        (d, b)
    }

    /// A message with routing key `topic` (MQTT form) and optional AMQP headers.
    pub fn message(topic: &str, headers: Option<Headers>) -> Message {
        Message {
            exchange: "x".into(),
            topic: topic.to_string(),
            body: Bytes::from_static(b"m"),
            qos: 0,
            retain: false,
            expires_at: None,
            properties: Properties {
                amqp: headers.map(|h| {
                    Box::new(AmqpProperties {
                        headers: Some(h),
                        ..AmqpProperties::default()
                    })
                }),
                ..Properties::default()
            },
            origin: Origin::default(),
        }
    }

    /// True if `routed` contains `binding`'s destination.
    pub fn has(routed: &[Binding], binding: &Binding) -> bool {
        routed
            .iter()
            .any(|b| b.destination_key() == binding.destination_key())
    }
}
