//! The direct exchange (AMQP 0-9-1 section 3.1.3.1): a message goes to the bindings whose key
//! equals its routing key exactly. Keys are held in MQTT form (what `Message::topic` holds), so
//! wildcard characters are literal. Routing is one map lookup under a read lock and returns a
//! shared slice: no allocation for a routing key that has bindings.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{BindingKey, ExchangeType};
use crate::broker::binding::Binding;
use crate::broker::headers::Headers;
use crate::broker::message::Message;

/// A direct exchange.
#[derive(Default)]
pub struct DirectExchange {
    /// Routing key (MQTT form) to its bindings; replaced, never mutated in place, so route
    /// results can be shared.
    routes: RwLock<HashMap<Box<str>, Arc<[Binding]>>>,
}

impl DirectExchange {
    /// An exchange with no bindings.
    pub fn new() -> DirectExchange {
        DirectExchange::default()
    }
}

impl ExchangeType for DirectExchange {
    fn route(&self, message: &Message, _levels: &[&str]) -> Arc<[Binding]> {
        match self.routes.read().get(message.topic.as_str()) {
            Some(bindings) => Arc::clone(bindings),
            None => Arc::from([]),
        }
    }

    fn bind(&self, key: BindingKey<'_>, _arguments: &Headers, binding: Binding) -> bool {
        let key = key.exact_topic();
        let mut routes = self.routes.write();
        match routes.get_mut(key.as_ref()) {
            Some(bindings) if bindings.contains(&binding) => false,
            Some(bindings) => {
                *bindings = bindings.iter().cloned().chain([binding]).collect();
                true
            }
            None => {
                routes.insert(key.as_ref().into(), Arc::from([binding]));
                true
            }
        }
    }

    fn unbind(&self, key: BindingKey<'_>, _arguments: &Headers, binding: &Binding) -> bool {
        let key = key.exact_topic();
        let mut routes = self.routes.write();
        let Some(bindings) = routes.get_mut(key.as_ref()) else {
            return false;
        };
        if !bindings.contains(binding) {
            return false;
        }
        if bindings.len() == 1 {
            routes.remove(key.as_ref());
        } else {
            *bindings = bindings.iter().filter(|b| *b != binding).cloned().collect();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::exchange::test_support::{destination, has, message};

    fn route(x: &DirectExchange, topic: &str) -> Arc<[Binding]> {
        x.route(&message(topic, None), &[])
    }

    #[test]
    fn routes_on_the_exact_key_only() {
        let x = DirectExchange::new();
        let (_a, a) = destination();
        let (_b, b) = destination();
        let none = Headers::empty();
        assert!(x.bind(BindingKey::Amqp("orders.new"), none, a.clone()));
        assert!(!x.bind(BindingKey::Mqtt("orders/new"), none, a.clone()));
        assert!(x.bind(BindingKey::Amqp("orders.*"), none, b.clone()));
        let r = route(&x, "orders/new");
        assert_eq!(r.len(), 1);
        assert!(has(&r, &a));
        assert!(route(&x, "orders/old").is_empty());
        assert!(route(&x, "orders").is_empty());
        // Wildcards are literal in a direct exchange.
        assert!(has(&route(&x, "orders/*"), &b));
        assert!(x.unbind(BindingKey::Amqp("orders.new"), none, &a));
        assert!(!x.unbind(BindingKey::Amqp("orders.new"), none, &a));
        assert!(route(&x, "orders/new").is_empty());
    }

    #[test]
    fn several_bindings_share_a_key() {
        let x = DirectExchange::new();
        let (_a, a) = destination();
        let (_b, b) = destination();
        x.bind(BindingKey::Amqp("k"), Headers::empty(), a.clone());
        x.bind(BindingKey::Amqp("k"), Headers::empty(), b.clone());
        assert_eq!(route(&x, "k").len(), 2);
        x.unbind(BindingKey::Amqp("k"), Headers::empty(), &a);
        let r = route(&x, "k");
        assert_eq!(r.len(), 1);
        assert!(has(&r, &b));
    }
}
