//! A virtual host: its exchanges and its retained messages. The default vhost `/` is created
//! with the exchange MQTT publishes through (`amq.topic` unless configured otherwise).

use std::sync::Arc;

use dashmap::DashMap;

use super::exchange::Exchange;
use super::message::Message;
use super::retain::RetainStore;

/// One vhost.
pub struct Vhost {
    /// Its name (`/`).
    pub name: String,
    exchanges: DashMap<String, Arc<Exchange>>,
    /// Retained messages by topic (MQTT 3.3.1.3), shared by every protocol in this vhost.
    pub retained: RetainStore<Arc<Message>>,
    mqtt_exchange: Arc<Exchange>,
}

impl Vhost {
    /// A vhost with `amq.topic` and the MQTT exchange `mqtt_exchange` (a topic exchange).
    pub fn new(name: &str, mqtt_exchange: &str) -> Arc<Vhost> {
        let exchanges = DashMap::new();
        for topic in ["amq.topic", mqtt_exchange] {
            exchanges
                .entry(topic.to_string())
                .or_insert_with(|| Arc::new(Exchange::topic(topic)));
        }
        let mqtt_exchange = exchanges
            .get(mqtt_exchange)
            .map(|e| Arc::clone(e.value()))
            .unwrap_or_else(|| Arc::new(Exchange::topic(mqtt_exchange)));
        Arc::new(Vhost {
            name: name.to_string(),
            exchanges,
            retained: RetainStore::new(),
            mqtt_exchange,
        })
    }

    /// The exchange MQTT publishes route through and MQTT subscriptions bind to.
    pub fn mqtt_exchange(&self) -> &Arc<Exchange> {
        &self.mqtt_exchange
    }

    /// An exchange by name.
    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| Arc::clone(e.value()))
    }
}
