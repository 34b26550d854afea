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
    if delay > 0 && session_expiry > 0 {
        // Kept with the session's record, so a restart within the delay does not lose it.
        let exchange = &mqtt.vhost.mqtt_exchange().name;
        let stored = will_to_message(will.clone(), &client_id, exchange, Instant::now());
        let due = Instant::now() + Duration::from_secs(u64::from(delay));
        session.lock().pending_will = Some((due, Arc::new(stored)));
    }
    let mqtt = Arc::clone(mqtt);
    let session = Arc::clone(session);
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
        }
        let reconnected = delay > 0 && {
            let mut s = session.lock();
            let resumed = s.epoch != epoch && !s.ended;
            if !resumed {
                s.pending_will = None;
            }
            resumed
        };
        if reconnected {
            tracing::debug!(client_id = %client_id, "will cancelled: session resumed within the will delay");
            return;
        }
        let exchange = &mqtt.vhost.mqtt_exchange().name;
        let message = will_to_message(will, &client_id, exchange, Instant::now());
        mqtt.publish_and_wait(Arc::new(message)).await;
        if delay > 0 {
            super::durable::record(&mqtt, &session);
        }
    });
}

/// A delayed will recovered with its session: published `delay` from now unless the session
/// was resumed (or ended) meanwhile.
pub fn publish_recovered(mqtt: &Arc<Mqtt>, session: &Arc<Session>, delay: u32) {
    let mqtt = Arc::clone(mqtt);
    let session = Arc::clone(session);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
        let due = {
            let mut s = session.lock();
            if s.epoch == 0 && !s.ended {
                s.pending_will.take()
            } else {
                None
            }
        };
        if let Some((_, message)) = due {
            tracing::debug!(client_id = %session.client_id, "recovered will published");
            mqtt.publish_and_wait(message).await;
            super::durable::record(&mqtt, &session);
        }
    });
}
