//! rumqttc MQTT 3.1.1 clients whose events arrive on a channel.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish};
use tokio::sync::mpsc;

use ferromq::RunningBroker;

/// A connected MQTT 3.1.1 client.
pub struct Client {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// Incoming packets (after CONNACK), or `None` once the connection failed.
    pub events: mpsc::UnboundedReceiver<Option<Packet>>,
    /// The CONNACK's session present flag.
    pub session_present: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    /// Dropping a client closes its socket at once, without DISCONNECT (an abrupt loss).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for `connect_with`.
pub fn options(broker: &RunningBroker, id: &str) -> MqttOptions {
    let addr = super::addr(broker);
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects with clean session.
pub async fn connect(broker: &RunningBroker, id: &str) -> Client {
    connect_with(options(broker, id)).await
}

/// Connects with the given options and waits for CONNACK (accepted).
pub async fn connect_with(options: MqttOptions) -> Client {
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Some(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let session_present = loop {
        match super::recv(&mut rx, "CONNACK").await {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(
                    ack.code,
                    rumqttc::ConnectReturnCode::Success,
                    "connection accepted"
                );
                break ack.session_present;
            }
            Some(_) => continue,
            None => panic!("connection failed before CONNACK"),
        }
    };
    Client {
        client,
        events: rx,
        session_present,
        task,
    }
}

impl Client {
    /// The next PUBLISH (skipping acks); panics on timeout or disconnect.
    pub async fn publish(&mut self) -> Publish {
        loop {
            match super::recv(&mut self.events, "PUBLISH").await {
                Some(Packet::Publish(p)) => return p,
                Some(_) => continue,
                None => panic!("disconnected while waiting for PUBLISH"),
            }
        }
    }

    /// Publishes at QoS 1 or 2 and waits until the broker acknowledged it (PUBACK / PUBCOMP),
    /// which it does only after routing the message and updating the retained store.
    pub async fn publish_acked(
        &mut self,
        topic: &str,
        qos: rumqttc::QoS,
        retain: bool,
        payload: &[u8],
    ) {
        assert_ne!(
            qos,
            rumqttc::QoS::AtMostOnce,
            "QoS 0 has no acknowledgement"
        );
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .expect("publish queued");
        loop {
            match super::recv(&mut self.events, "PUBACK/PUBCOMP").await {
                Some(Packet::PubAck(_)) if qos == rumqttc::QoS::AtLeastOnce => return,
                Some(Packet::PubComp(_)) if qos == rumqttc::QoS::ExactlyOnce => return,
                Some(_) => continue,
                None => panic!("disconnected while waiting for the publish acknowledgement"),
            }
        }
    }

    /// Waits for SUBACK and returns its return codes.
    pub async fn suback(&mut self) -> Vec<rumqttc::SubscribeReasonCode> {
        loop {
            match super::recv(&mut self.events, "SUBACK").await {
                Some(Packet::SubAck(s)) => return s.return_codes,
                Some(_) => continue,
                None => panic!("disconnected while waiting for SUBACK"),
            }
        }
    }

    /// Subscribes and waits for SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("subscribe queued");
        let codes = self.suback().await;
        assert_eq!(codes.len(), 1);
    }

    /// Asserts no PUBLISH arrives within `QUIET`.
    pub async fn no_publish(&mut self) {
        let deadline = tokio::time::Instant::now() + super::QUIET;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return,
                Ok(Some(Some(Packet::Publish(p)))) => panic!("unexpected PUBLISH on {}", p.topic),
                Ok(Some(Some(_))) => continue,
                Ok(_) => return,
            }
        }
    }

    /// Waits until the broker drops the connection.
    pub async fn disconnected(&mut self) {
        loop {
            if super::recv(&mut self.events, "disconnect").await.is_none() {
                return;
            }
        }
    }
}
