//! Test harness for the conformance suite: starts an in-process broker on `127.0.0.1:0`, wraps
//! rumqttc (v3.1.1 and v5) event loops in channels so tests can wait with timeouts, and offers a
//! raw socket client for hand-written bytes. It never encodes packets with ferromq's own codec,
//! so a codec bug cannot hide itself.

use std::net::SocketAddr;
use std::time::Duration;

use ferromq::config::Config;
use ferromq::RunningBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub mod amqp;
pub mod auth;
pub mod process;
pub mod rawamqp;
pub mod tls;
pub mod v4;
pub mod v5;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Starts a broker with the test defaults (MQTT and AMQP on 127.0.0.1:0, no $SYS timer noise).
pub async fn broker() -> RunningBroker {
    broker_with(|_| {}).await
}

/// Starts a broker after letting the test adjust the configuration.
pub async fn broker_with(adjust: impl FnOnce(&mut Config)) -> RunningBroker {
    let mut config = Config::ephemeral();
    config.mqtt.sys_interval_secs = 0;
    adjust(&mut config);
    RunningBroker::start(config).await.expect("broker starts")
}

/// The broker's MQTT address.
pub fn addr(broker: &RunningBroker) -> SocketAddr {
    broker.mqtt_addr().expect("MQTT listener is on")
}

/// Receives from a channel within `WAIT`, panicking with `what` otherwise.
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("channel closed while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A client speaking raw bytes, for malformed input and exact wire checks.
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects to the broker.
    pub async fn connect(broker: &RunningBroker) -> RawClient {
        let stream = TcpStream::connect(addr(broker)).await.expect("tcp connect");
        RawClient { stream }
    }

    /// Sends bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one packet: (first byte, body), or `None` if the broker closed the connection.
    pub async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let read = async {
            let mut first = [0u8; 1];
            if self.stream.read_exact(&mut first).await.is_err() {
                return None;
            }
            let mut len: usize = 0;
            let mut shift = 0;
            loop {
                let mut b = [0u8; 1];
                self.stream.read_exact(&mut b).await.ok()?;
                len |= usize::from(b[0] & 0x7f) << shift;
                shift += 7;
                if b[0] & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            self.stream.read_exact(&mut body).await.ok()?;
            Some((first[0], body))
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("broker answered or closed in time")
    }

    /// Asserts the broker closes the connection (after any packets, which are returned).
    pub async fn expect_close(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut seen = Vec::new();
        while let Some(p) = self.read_packet().await {
            seen.push(p);
        }
        seen
    }
}

/// A hand-encoded MQTT 3.1.1 CONNECT with clean session and the given keep alive.
pub fn raw_connect_v311(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    frame(0x10, &body)
}

/// A hand-encoded MQTT 5.0 CONNECT with clean start, no properties.
pub fn raw_connect_v5(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.push(0x00); // property length
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    frame(0x10, &body)
}

/// Prefixes `body` with a fixed header (first byte + remaining length).
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The command line's arguments that are numbers, in order (the examples' positional sizes).
pub fn numeric_args() -> Vec<usize> {
    std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect()
}
