//! `$SYS/broker/...` topics with Mosquitto's names, published as retained messages every
//! `sys_interval_secs` so monitoring tools written for Mosquitto work unchanged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::Mqtt;
use crate::broker::message::{Message, Origin, Properties};
use crate::metrics::Metrics;

/// Publishes the `$SYS` tree until shutdown.
pub async fn run(mqtt: Arc<Mqtt>, mut shutdown: watch::Receiver<bool>) {
    let secs = mqtt.core.config.mqtt.sys_interval_secs;
    if secs == 0 {
        return;
    }
    publish(
        &mqtt,
        "$SYS/broker/version",
        format!("ferromq version {}", env!("CARGO_PKG_VERSION")),
    )
    .await;
    let mut tick = tokio::time::interval(Duration::from_secs(secs));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => publish_all(&mqtt).await,
        }
    }
}

async fn publish_all(mqtt: &Arc<Mqtt>) {
    let m = &mqtt.core.metrics;
    let uptime = mqtt.core.started.elapsed().as_secs();
    let connected = Metrics::get(&m.clients_connected);
    // Sessions kept for clients that are not connected (Mosquitto's "inactive").
    let disconnected = (mqtt.sessions.len() as u64).saturating_sub(connected);
    let values = [
        ("$SYS/broker/uptime", format!("{uptime} seconds")),
        ("$SYS/broker/clients/connected", connected.to_string()),
        ("$SYS/broker/clients/active", connected.to_string()),
        ("$SYS/broker/clients/disconnected", disconnected.to_string()),
        ("$SYS/broker/clients/inactive", disconnected.to_string()),
        (
            "$SYS/broker/clients/total",
            (connected + disconnected).to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            Metrics::get(&m.messages_received).to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            Metrics::get(&m.messages_sent).to_string(),
        ),
        (
            "$SYS/broker/publish/messages/dropped",
            Metrics::get(&m.messages_dropped).to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            Metrics::get(&m.bytes_received).to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            Metrics::get(&m.bytes_sent).to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            mqtt.core.vhost.retained.len().to_string(),
        ),
    ];
    for (topic, value) in values {
        publish(mqtt, topic, value).await;
    }
}

async fn publish(mqtt: &Arc<Mqtt>, topic: &str, value: String) {
    mqtt.publish_and_wait(Arc::new(Message {
        exchange: Arc::clone(&mqtt.core.vhost.mqtt_exchange().name),
        topic: topic.to_string(),
        body: Bytes::from(value),
        qos: 0,
        retain: true,
        expires_at: None::<Instant>,
        properties: Properties::default(),
        origin: Origin::default(),
    }))
    .await;
}
