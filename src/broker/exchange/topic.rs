//! The topic exchange: bindings with wildcards over routing-key levels, backed by the topic
//! index. MQTT filters and AMQP binding keys land in the same index as level filters, which is
//! how an MQTT subscription and an AMQP queue binding see the same messages.

use std::sync::Arc;

use super::{BindingKey, ExchangeType};
use crate::broker::binding::Binding;
use crate::broker::routing_key;
use crate::broker::topic_index::TopicIndex;

/// Matches cached per exchange; bounded so a topic-scanning publisher cannot grow memory.
const MATCH_CACHE_CAPACITY: usize = 4096;

/// A topic exchange.
pub struct TopicExchange {
    index: TopicIndex<Binding>,
}

impl TopicExchange {
    /// An exchange with no bindings.
    pub fn new() -> TopicExchange {
        TopicExchange {
            index: TopicIndex::new(MATCH_CACHE_CAPACITY),
        }
    }
}

impl Default for TopicExchange {
    fn default() -> Self {
        Self::new()
    }
}

fn filter_levels(key: BindingKey<'_>) -> Vec<routing_key::FilterLevel> {
    match key {
        BindingKey::Mqtt(filter) => routing_key::parse_mqtt_filter(filter),
        BindingKey::Amqp(key) => routing_key::parse_amqp_binding_key(key),
    }
}

impl ExchangeType for TopicExchange {
    fn route(&self, levels: &[&str]) -> Arc<[Binding]> {
        self.index.matches(levels)
    }

    fn bind(&self, key: BindingKey<'_>, binding: Binding) -> bool {
        self.index.insert(&filter_levels(key), binding)
    }

    fn unbind(&self, key: BindingKey<'_>, binding: &Binding) -> bool {
        self.index.remove(&filter_levels(key), binding)
    }
}
