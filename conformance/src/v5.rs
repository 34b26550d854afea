//! rumqttc MQTT 5.0 clients whose events arrive on a channel.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Disconnect, Packet, Publish};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions, StateError};
use tokio::sync::mpsc;

use ferromq::RunningBroker;

/// A connected MQTT 5.0 client.
pub struct Client {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// Incoming packets (after CONNACK), or `None` once the connection failed.
    pub events: mpsc::UnboundedReceiver<Option<Packet>>,
    /// The CONNACK.
    pub connack: ConnAck,
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

/// Connects with clean start.
pub async fn connect(broker: &RunningBroker, id: &str) -> Client {
    connect_with(options(broker, id)).await
}

/// Connects with the given options and waits for CONNACK (any code).
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
                // rumqttc reports a server DISCONNECT as an error; surface it as the packet.
                Err(ConnectionError::MqttState(StateError::ServerDisconnect {
                    reason_code,
                    ..
                })) => {
                    let d = Disconnect::new(reason_code);
                    let _ = tx.send(Some(Packet::Disconnect(d)));
                    let _ = tx.send(None);
                    return;
                }
                Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let connack = loop {
        match super::recv(&mut rx, "CONNACK").await {
            Some(Packet::ConnAck(ack)) => break ack,
            Some(_) => continue,
            None => panic!("connection failed before CONNACK"),
        }
    };
    Client {
        client,
        events: rx,
        connack,
        task,
    }
}

impl Client {
    /// The next packet matching `pick`; panics on timeout or disconnect.
    pub async fn next<T>(&mut self, what: &str, mut pick: impl FnMut(Packet) -> Option<T>) -> T {
        loop {
            match super::recv(&mut self.events, what).await {
                Some(p) => {
                    if let Some(v) = pick(p) {
                        return v;
                    }
                }
                None => panic!("disconnected while waiting for {what}"),
            }
        }
    }

    /// The next PUBLISH.
    pub async fn publish(&mut self) -> Publish {
        self.next("PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    /// Asserts no PUBLISH arrives within `QUIET`.
    pub async fn no_publish(&mut self) {
        let deadline = tokio::time::Instant::now() + super::QUIET;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return,
                Ok(Some(Some(Packet::Publish(p)))) => {
                    panic!(
                        "unexpected PUBLISH on {}",
                        String::from_utf8_lossy(&p.topic)
                    )
                }
                Ok(Some(Some(_))) => continue,
                Ok(_) => return,
            }
        }
    }
}
