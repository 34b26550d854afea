//! Will messages (MQTT 3.1.2.5; v5 3.1.3.2): published when a connection ends without a
//! normal DISCONNECT, or with DISCONNECT 0x04. A v5 Will Delay Interval postpones it; a
//! reconnect of the session within the delay cancels it [MQTT-3.1.3-9], and the session ending
//! first publishes it early.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::session::Session;
use super::translate::will_to_message;
use super::Mqtt;

/// Publishes `will` now, or after its delay if the session lives on.
pub fn publish(
    mqtt: &Arc<Mqtt>,
    will: ferromq_mqtt::Will,
    session: &Arc<Session>,
    epoch: u64,
    session_expiry: u32,
) {
    let delay = will
        .properties
        .will_delay_interval
        .unwrap_or(0)
        .min(session_expiry);
    let client_id = Arc::clone(&session.client_id);
    let mqtt = Arc::clone(mqtt);
    let session = Arc::clone(session);
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
        }
        let reconnected = delay > 0 && {
            let s = session.lock();
            s.epoch != epoch && !s.ended
        };
        if reconnected {
            tracing::debug!(client_id = %client_id, "will cancelled: session resumed within the will delay");
            return;
        }
        let exchange = &mqtt.vhost.mqtt_exchange().name;
        let message = will_to_message(will, &client_id, exchange, Instant::now());
        mqtt.publish_and_wait(Arc::new(message)).await;
    });
}
