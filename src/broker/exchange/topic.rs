//! The topic exchange: bindings with wildcards over routing-key levels, backed by topic indexes.
//! MQTT filters and AMQP binding keys are both level filters, which is how an MQTT subscription
//! and an AMQP queue binding see the same messages. They sit in two indexes only because the MQTT
//! rule that wildcard-first filters skip `$` topics [MQTT-4.7.2-1] must not apply to AMQP
//! bindings (RabbitMQ has no such rule). Binding arguments play no part in topic routing.

use std::sync::Arc;

use super::{BindingKey, ExchangeType};
use crate::broker::binding::Binding;
use crate::broker::headers::Headers;
use crate::broker::message::Message;
use crate::broker::topic_index::TopicIndex;

/// Matches cached per exchange; bounded so a topic-scanning publisher cannot grow memory.
const MATCH_CACHE_CAPACITY: usize = 4096;

/// A topic exchange.
pub struct TopicExchange {
    mqtt: TopicIndex<Binding>,
    amqp: TopicIndex<Binding>,
}

impl TopicExchange {
    /// An exchange with no bindings.
    pub fn new() -> TopicExchange {
        TopicExchange {
            mqtt: TopicIndex::with_dollar_rule(MATCH_CACHE_CAPACITY, true),
            amqp: TopicIndex::with_dollar_rule(MATCH_CACHE_CAPACITY, false),
        }
    }
}

impl TopicExchange {
    fn index(&self, key: BindingKey<'_>) -> &TopicIndex<Binding> {
        match key {
            BindingKey::Mqtt(_) => &self.mqtt,
            BindingKey::Amqp(_) => &self.amqp,
        }
    }
}

impl Default for TopicExchange {
    fn default() -> Self {
        Self::new()
    }
}

impl ExchangeType for TopicExchange {
    fn route(&self, _message: &Message, levels: &[&str]) -> Arc<[Binding]> {
        // An index with no bindings is not consulted: a broker used by one protocol pays for
        // one lookup, and joins (one allocation) happen only when both protocols match.
        let mqtt = (!self.mqtt.is_empty()).then(|| self.mqtt.matches(levels));
        let amqp = (!self.amqp.is_empty()).then(|| self.amqp.matches(levels));
        match (mqtt, amqp) {
            (Some(m), Some(a)) if !m.is_empty() && !a.is_empty() => {
                m.iter().chain(a.iter()).cloned().collect()
            }
            (Some(m), Some(a)) => {
                if m.is_empty() {
                    a
                } else {
                    m
                }
            }
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => Arc::from([]),
        }
    }

    fn bind(&self, key: BindingKey<'_>, _arguments: &Headers, binding: Binding) -> bool {
        self.index(key).insert(&key.filter_levels(), binding)
    }

    fn unbind(&self, key: BindingKey<'_>, _arguments: &Headers, binding: &Binding) -> bool {
        self.index(key).remove(&key.filter_levels(), binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::exchange::test_support::{destination, has, message};
    use crate::broker::routing_key::mqtt_levels;

    fn route(x: &TopicExchange, topic: &str) -> Arc<[Binding]> {
        x.route(&message(topic, None), &mqtt_levels(topic))
    }

    #[test]
    fn amqp_wildcards_match_levels_including_inner_hash() {
        let x = TopicExchange::new();
        let (_a, star) = destination();
        let (_b, inner) = destination();
        let (_c, mqtt) = destination();
        let none = Headers::empty();
        assert!(x.bind(BindingKey::Amqp("sensors.*.temp"), none, star.clone()));
        assert!(!x.bind(BindingKey::Amqp("sensors.*.temp"), none, star.clone()));
        x.bind(BindingKey::Amqp("a.#.z"), none, inner.clone());
        x.bind(BindingKey::Mqtt("sensors/+/temp"), none, mqtt.clone());

        let r = route(&x, "sensors/x/temp");
        assert!(has(&r, &star) && has(&r, &mqtt));
        assert!(route(&x, "sensors/x/y/temp").is_empty());
        for hit in ["a/z", "a/b/z", "a/b/c/z"] {
            assert!(has(&route(&x, hit), &inner), "{hit}");
        }
        assert!(route(&x, "a/b").is_empty());

        assert!(x.unbind(BindingKey::Amqp("sensors.*.temp"), none, &star));
        assert!(!x.unbind(BindingKey::Amqp("sensors.*.temp"), none, &star));
        assert!(!has(&route(&x, "sensors/x/temp"), &star));
    }

    #[test]
    fn dotted_mqtt_level_meets_slashed_amqp_word() {
        let x = TopicExchange::new();
        let (_d, b) = destination();
        x.bind(
            BindingKey::Amqp("fw.v1/2.status"),
            Headers::empty(),
            b.clone(),
        );
        assert!(has(&route(&x, "fw/v1.2/status"), &b));
        assert!(route(&x, "fw/v1/2/status").is_empty());
    }

    #[test]
    fn dollar_rule_applies_to_mqtt_filters_only() {
        let x = TopicExchange::new();
        let (_a, mqtt) = destination();
        let (_b, amqp) = destination();
        let none = Headers::empty();
        x.bind(BindingKey::Mqtt("#"), none, mqtt.clone());
        x.bind(BindingKey::Amqp("#"), none, amqp.clone());
        // [MQTT-4.7.2-1] for the MQTT subscription; RabbitMQ has no such rule.
        let r = route(&x, "$SYS/broker/uptime");
        assert!(has(&r, &amqp) && !has(&r, &mqtt));
        let r = route(&x, "plain");
        assert!(has(&r, &amqp) && has(&r, &mqtt));
    }
}
