//! MQTT 5 topic aliases (section 3.3.2.3.4): the client's aliases for its PUBLISHes, and the
//! aliases the broker assigns to topics it sends, up to the client's Topic Alias Maximum.

use std::collections::HashMap;

/// A table of aliases, allocated on first use: most clients use no aliases, and an empty
/// `HashMap` inline is 48 bytes in every connection's state (README, Benchmarks: idle
/// connections).
type Table<K, V> = Option<Box<HashMap<K, V>>>;

use ferromq_mqtt::ReasonCode;

use super::reason::MqttError;

/// Aliases set by the client; at most the broker's Topic Alias Maximum of them.
#[derive(Default)]
pub struct Inbound {
    max: u16,
    topics: Table<u16, String>,
}

impl Inbound {
    /// A table accepting aliases 1..=max.
    pub fn new(max: u16) -> Inbound {
        Inbound { max, topics: None }
    }

    /// Resolves a PUBLISH's topic: records `topic` under `alias` when both are present, or
    /// looks the alias up when the topic is empty.
    pub fn resolve(&mut self, topic: &mut String, alias: Option<u16>) -> Result<(), MqttError> {
        let Some(alias) = alias else {
            if topic.is_empty() {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "empty topic without topic alias",
                ));
            }
            return Ok(());
        };
        if alias == 0 || alias > self.max {
            // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
            return Err(MqttError::protocol(
                ReasonCode::TOPIC_ALIAS_INVALID,
                format!("topic alias {alias} outside 1..={}", self.max),
            ));
        }
        if topic.is_empty() {
            match self.topics.as_ref().and_then(|t| t.get(&alias)) {
                Some(t) => topic.clone_from(t),
                None => {
                    return Err(MqttError::protocol(
                        ReasonCode::PROTOCOL_ERROR,
                        format!("topic alias {alias} used before it was set"),
                    ))
                }
            }
        } else {
            self.topics
                .get_or_insert_with(Box::default)
                .insert(alias, topic.clone());
        }
        Ok(())
    }
}

/// Aliases the broker assigns to topics it sends to this client. First come, first served:
/// once the client's maximum is used up, later topics are sent in full (no eviction, so an
/// alias never changes meaning under the client).
#[derive(Default)]
pub struct Outbound {
    max: u16,
    aliases: Table<String, u16>,
}

/// How to send a topic.
pub enum OutboundAlias {
    /// No alias: send the topic name.
    None,
    /// New alias: send the topic name and the alias.
    Set(u16),
    /// Known alias: send an empty topic and the alias.
    Use(u16),
}

impl Outbound {
    /// A table of at most `max` aliases (the client's Topic Alias Maximum; 0 = none).
    pub fn new(max: u16) -> Outbound {
        Outbound { max, aliases: None }
    }

    /// The alias to use for `topic`.
    pub fn for_topic(&mut self, topic: &str) -> OutboundAlias {
        if self.max == 0 {
            return OutboundAlias::None;
        }
        let aliases = self.aliases.get_or_insert_with(Box::default);
        if let Some(a) = aliases.get(topic) {
            return OutboundAlias::Use(*a);
        }
        let used = aliases.len();
        if used >= usize::from(self.max) {
            return OutboundAlias::None;
        }
        let alias = (used + 1) as u16;
        aliases.insert(topic.to_string(), alias);
        OutboundAlias::Set(alias)
    }
}
