//! Exchanges: named routers inside a vhost. Each type implements `ExchangeType` (route, bind,
//! unbind); today only the topic type exists, which MQTT uses through `amq.topic`. Direct,
//! fanout and headers arrive with AMQP.

pub mod topic;

use std::sync::Arc;

use super::binding::Binding;

/// How a binding key is written: the two protocols spell wildcards and separators differently.
#[derive(Debug, Clone, Copy)]
pub enum BindingKey<'a> {
    /// An MQTT topic filter (`/` separators, `+` and `#`).
    Mqtt(&'a str),
    /// An AMQP binding key (`.` separators, `*` and `#`).
    Amqp(&'a str),
}

/// The routing behaviour of one exchange type.
pub trait ExchangeType: Send + Sync {
    /// Destinations matching a routing key given as levels (see `routing_key`).
    fn route(&self, levels: &[&str]) -> Arc<[Binding]>;
    /// Adds a binding; false if it already existed.
    fn bind(&self, key: BindingKey<'_>, binding: Binding) -> bool;
    /// Removes a binding; false if it did not exist.
    fn unbind(&self, key: BindingKey<'_>, binding: &Binding) -> bool;
}

/// A named exchange.
pub struct Exchange {
    /// Its name (`amq.topic`, ...).
    pub name: String,
    /// Its type's routing logic.
    pub kind: Box<dyn ExchangeType>,
}

impl Exchange {
    /// A topic exchange.
    pub fn topic(name: &str) -> Exchange {
        Exchange {
            name: name.to_string(),
            kind: Box::new(topic::TopicExchange::new()),
        }
    }
}
