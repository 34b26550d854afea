//! The fanout exchange (AMQP 0-9-1 section 3.1.3.2): every message goes to every binding; keys
//! and arguments are ignored. Routing clones one shared slice.

use std::sync::Arc;

use parking_lot::RwLock;

use super::{BindingKey, ExchangeType};
use crate::broker::binding::Binding;
use crate::broker::headers::Headers;
use crate::broker::message::Message;

/// A fanout exchange.
pub struct FanoutExchange {
    /// Every binding once; replaced, never mutated in place, so route results can be shared.
    bindings: RwLock<Arc<[Binding]>>,
}

impl FanoutExchange {
    /// An exchange with no bindings.
    pub fn new() -> FanoutExchange {
        FanoutExchange {
            bindings: RwLock::new(Arc::from([])),
        }
    }
}

impl Default for FanoutExchange {
    fn default() -> Self {
        Self::new()
    }
}

impl ExchangeType for FanoutExchange {
    fn route(&self, _message: &Message, _levels: &[&str]) -> Arc<[Binding]> {
        Arc::clone(&self.bindings.read())
    }

    fn bind(&self, _key: BindingKey<'_>, _arguments: &Headers, binding: Binding) -> bool {
        let mut bindings = self.bindings.write();
        if bindings.contains(&binding) {
            return false;
        }
        *bindings = bindings.iter().cloned().chain([binding]).collect();
        true
    }

    fn unbind(&self, _key: BindingKey<'_>, _arguments: &Headers, binding: &Binding) -> bool {
        let mut bindings = self.bindings.write();
        if !bindings.contains(binding) {
            return false;
        }
        *bindings = bindings.iter().filter(|b| *b != binding).cloned().collect();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::exchange::test_support::{destination, has, message};

    #[test]
    fn every_binding_gets_every_message() {
        let x = FanoutExchange::new();
        let (_a, a) = destination();
        let (_b, b) = destination();
        assert!(x.bind(BindingKey::Amqp("ignored"), Headers::empty(), a.clone()));
        assert!(!x.bind(BindingKey::Amqp("other"), Headers::empty(), a.clone()));
        assert!(x.bind(BindingKey::Amqp(""), Headers::empty(), b.clone()));
        for topic in ["", "x", "a/b/c"] {
            let r = x.route(&message(topic, None), &[]);
            assert_eq!(r.len(), 2);
            assert!(has(&r, &a) && has(&r, &b));
        }
        assert!(x.unbind(BindingKey::Amqp("whatever"), Headers::empty(), &a));
        assert!(!x.unbind(BindingKey::Amqp("whatever"), Headers::empty(), &a));
        let r = x.route(&message("x", None), &[]);
        assert_eq!(r.len(), 1);
        assert!(has(&r, &b));
    }
}
