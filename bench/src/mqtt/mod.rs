//! The MQTT side of the bench: a minimal 3.1.1 client (`wire` for packets, `open` here for the
//! connect handshake), the pub/sub throughput and latency scenario (`throughput`) and the idle
//! connection scenario (`idle`).

pub mod idle;
pub mod throughput;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use wire::Incoming;

/// How long a handshake step (CONNACK, SUBACK) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// An open MQTT connection: the socket and any bytes read past the handshake.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    pub rbuf: BytesMut,
}

/// Connects (optionally from `source`), sends CONNECT and waits for an accepting CONNACK.
pub async fn open(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    client_id: &str,
    keep_alive: u16,
) -> Result<Conn> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind source address {ip}"))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        stream,
        rbuf: BytesMut::with_capacity(64),
    };
    let mut out = BytesMut::with_capacity(64);
    wire::connect(&mut out, client_id, keep_alive);
    conn.stream.write_all(&out).await?;
    match conn.next().await? {
        Incoming::ConnAck { code: 0 } => Ok(conn),
        Incoming::ConnAck { code } => bail!("CONNACK refused the connection, return code {code}"),
        other => bail!("expected CONNACK, got {other:?}"),
    }
}

impl Conn {
    /// Subscribes to one filter and waits for a SUBACK granting it.
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<()> {
        let mut out = BytesMut::with_capacity(64);
        wire::subscribe(&mut out, 1, filter, qos);
        self.stream.write_all(&out).await?;
        match self.next().await? {
            Incoming::SubAck { granted, .. } if granted < 0x80 => Ok(()),
            other => bail!("SUBSCRIBE {filter:?} refused: {other:?}"),
        }
    }

    /// Reads the next handshake packet (owned kinds only), within `HANDSHAKE_TIMEOUT`.
    async fn next(&mut self) -> Result<Incoming<'static>> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            loop {
                if let Some((packet, used)) = wire::parse(&self.rbuf)? {
                    let owned = match packet {
                        Incoming::ConnAck { code } => Incoming::ConnAck { code },
                        Incoming::SubAck { packet_id, granted } => {
                            Incoming::SubAck { packet_id, granted }
                        }
                        Incoming::PubAck { packet_id } => Incoming::PubAck { packet_id },
                        Incoming::PingResp => Incoming::PingResp,
                        Incoming::Publish { .. } => Incoming::Other(3),
                        Incoming::Other(t) => Incoming::Other(t),
                    };
                    self.rbuf.advance(used);
                    return Ok(owned);
                }
                if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                    bail!("broker closed the connection during the handshake");
                }
            }
        })
        .await
        .context("broker did not answer the handshake in time")?
    }
}

/// Resolves HOST:PORT to the first address.
pub async fn resolve(addr: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))
}
