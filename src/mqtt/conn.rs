//! The connection loop: waits for CONNECT, then reads packets, pulls deliveries from the
//! session, and writes everything of one turn with a single syscall. Owns the socket and the
//! per-connection protocol state; session state lives in `session.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferromq_mqtt::{
    decode, encode, encoded_len, Disconnect, Packet, Properties, ProtocolVersion, ReasonCode,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::alias;
use super::reason::MqttError;
use super::session::{Ready, Session};
use super::Mqtt;
use crate::broker::binding::Pending;
use crate::connection::Framed;
use crate::metrics::Metrics;

/// Per-connection state after a successful CONNECT.
pub struct Conn {
    /// Adapter state.
    pub mqtt: Arc<Mqtt>,
    /// Protocol version from CONNECT.
    pub version: ProtocolVersion,
    /// The session this connection owns.
    pub session: Arc<Session>,
    /// This connection's ownership generation.
    pub generation: u64,
    /// Peer address, for logs.
    pub peer: SocketAddr,
    /// Keep alive in effect (0 = none).
    pub keep_alive: u16,
    /// The will, until a normal DISCONNECT clears it. Boxed: most clients set none, and inline
    /// it would be over half of this struct, held by every idle connection.
    pub will: Option<Box<ferromq_mqtt::Will>>,
    /// Session Expiry Interval in effect.
    pub session_expiry: u32,
    /// The client's Receive Maximum: outgoing QoS 1/2 in flight at most.
    pub client_receive_max: usize,
    /// The client's Maximum Packet Size.
    pub client_max_packet: usize,
    /// Client-to-server topic aliases.
    pub aliases_in: alias::Inbound,
    /// Server-to-client topic aliases.
    pub aliases_out: alias::Outbound,
    /// Wakes the idle connection: takeover, shutdown, keep alive, alarm change (`kick.rs`).
    pub kick: Arc<super::kick::Kick>,
    /// Reused buffer of deliveries pulled from the session.
    pub ready: Vec<Ready>,
    /// Deliveries waiting for room in full queue inboxes; awaited before reading on.
    pub backpressure: Vec<Pending>,
    /// What the client may publish and subscribe to.
    pub access: super::access::ClientAccess,
    /// PUBACK / PUBREC waiting for their messages to be stored.
    pub acks: super::publish_ack::PendingAcks,
    /// Outgoing QoS 2 PUBLISH / PUBREL waiting for their packet id records to be stored (and
    /// what was queued behind them).
    pub sends: super::durable_out::PendingSends,
    /// The user's slot under `max_connections_per_user` (none for anonymous clients); boxed,
    /// as inline it would be 32 bytes of every connection's state even when `None`.
    pub _user_slot: Option<Box<crate::limits::UserSlot>>,
}

/// How the connection ended.
pub enum Exit {
    /// DISCONNECT with reason 0x00: no will.
    Normal,
    /// DISCONNECT 0x04: a normal close that still publishes the will.
    NormalWithWill,
    /// Any abnormal end: publish the will.
    WithWill(MqttError),
    /// Broker shutdown: no will (nobody would receive it).
    Shutdown,
}

/// Serves one socket from CONNECT to close.
// Not `async fn`: its arguments would stay in the connection's future for its whole life
// (rust-lang/rust#62958), though only the CONNECT phase needs them. They move into that
// phase's own box instead, freed once CONNECT is done.
pub fn run<S>(
    stream: S,
    peer: SocketAddr,
    tls: Option<crate::transport::TlsInfo>,
    mqtt: Arc<Mqtt>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_opened(Box::pin(open(
        Framed::new(stream),
        peer,
        tls,
        mqtt,
        shutdown,
    )))
}

/// A connection whose CONNECT was accepted.
struct Opened<S> {
    io: Framed<S>,
    conn: Conn,
    shutdown: watch::Receiver<bool>,
}

/// Runs a connection once `opening` accepted its CONNECT, then closes it.
async fn serve_opened<S, F>(opening: std::pin::Pin<Box<F>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: std::future::Future<Output = Option<Opened<S>>> + Send,
{
    // This task's future is as large as its largest await point, and it lives as long as the
    // connection: the once-only CONNECT and close paths run in their own boxed futures (whose
    // locals, such as the decoded CONNECT, die with them), so an idle connection holds only
    // the state of its read loop (README, Benchmarks: idle connections).
    // Matched in place: a named `Option<Opened>` would keep a second Conn's worth of storage
    // in this future for the connection's life.
    let Some(Opened {
        mut io,
        mut conn,
        mut shutdown,
    }) = opening.await
    else {
        return;
    };
    let metrics = &conn.mqtt.core.metrics;
    Metrics::add(&metrics.clients_connected, 1);
    let exit = conn.serve(&mut io, &mut shutdown).await;
    let metrics = &conn.mqtt.core.metrics;
    Metrics::sub(&metrics.clients_connected, 1);
    Metrics::add(&metrics.bytes_received, io.bytes_read);
    Metrics::add(&metrics.bytes_sent, io.bytes_written);
    Box::pin(conn.finish(exit, &mut io)).await;
}

/// Waits for CONNECT and accepts it; `None` once the connection is closed instead.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: Framed<S>,
    peer: SocketAddr,
    tls: Option<crate::transport::TlsInfo>,
    mqtt: Arc<Mqtt>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<Opened<S>> {
    let cfg = &mqtt.core.config.mqtt;
    let connect_timeout = Duration::from_secs(cfg.connect_timeout_secs);
    let first = tokio::select! {
        r = tokio::time::timeout(connect_timeout, read_connect(&mut io, cfg.max_packet_size)) => r,
        _ = shutdown.changed() => return None,
    };
    let connect = match first {
        Err(_) => {
            tracing::info!(%peer, "closing connection: no CONNECT within {}s", connect_timeout.as_secs());
            return None;
        }
        Ok(Err(e)) => {
            reject_bad_connect(&mut io, &e).await;
            tracing::warn!(%peer, error = %e, "closing connection: bad CONNECT");
            return None;
        }
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(connect))) => connect,
    };
    match super::connect::accept(connect, &mut io, peer, tls.as_ref(), &mqtt).await {
        Some(conn) => Some(Opened { io, conn, shutdown }),
        None => {
            io.close().await;
            None
        }
    }
}

/// Reads until the first packet; it must be CONNECT [MQTT-3.1.0-1].
async fn read_connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Framed<S>,
    max_packet: usize,
) -> Result<Option<ferromq_mqtt::Connect>, MqttError> {
    loop {
        // The version argument is ignored for CONNECT, which carries its own.
        match decode(&mut io.rbuf, ProtocolVersion::V5, max_packet)? {
            Some(Packet::Connect(c)) => return Ok(Some(*c)),
            Some(_) => {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "first packet is not CONNECT",
                ));
            }
            None => {}
        }
        if io.read_more().await? == 0 {
            return Ok(None);
        }
    }
}

/// An unsupported protocol level gets CONNACK with v3 return code 1 [MQTT-3.1.2-2]; anything
/// else malformed just closes the socket [MQTT-4.8.0-1].
async fn reject_bad_connect<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Framed<S>, e: &MqttError) {
    if let MqttError::Decode(ferromq_mqtt::DecodeError::UnsupportedProtocolVersion(_)) = e {
        let connack = Packet::ConnAck(ferromq_mqtt::ConnAck {
            session_present: false,
            code: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            properties: Properties::default(),
        });
        let _ = encode(&connack, ProtocolVersion::V311, &mut io.wbuf);
    }
    io.close().await;
}

impl Conn {
    /// The client's grants, recomputed first if the access snapshot changed (a reloaded ACL
    /// file or changed permissions apply to connected clients too, as in Mosquitto).
    pub fn access(&mut self) -> &super::access::ClientAccess {
        let auth = &self.mqtt.core.auth;
        if self.access.is_stale(auth) {
            self.access = super::access::ClientAccess::current(
                auth,
                self.access.user.as_deref(),
                &self.session.client_id,
                &self.mqtt.vhost.name,
                &self.mqtt.vhost.mqtt_exchange().name,
            );
        }
        &self.access
    }

    /// Writes one packet into the batch; encoding only fails for values the protocol cannot
    /// carry, which are logged and skipped rather than tearing the connection down.
    pub fn send(&self, wbuf: &mut bytes::BytesMut, packet: &Packet) {
        if let Err(e) = encode(packet, self.version, wbuf) {
            tracing::warn!(client_id = %self.session.client_id, error = %e, "cannot encode packet; skipped");
        }
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Framed<S>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Exit {
        let max_packet = self.mqtt.core.config.mqtt.max_packet_size;
        // The client may be silent for 1.5 times its keep alive [MQTT-3.1.2-24]; the broker's
        // sweeper (`kick.rs`) wakes this connection once that deadline passed.
        let keep_alive =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        let kick = Arc::clone(&self.kick);
        let arm = |kick: &super::kick::Kick| match keep_alive {
            Some(k) => kick.arm(k),
            None => kick.disarm(),
        };
        arm(&kick);
        if keep_alive.is_some() {
            self.mqtt.deadlines.track(&kick);
        }
        // Resource alarms: a publishing client is not read while one is on (TCP backpressure,
        // as RabbitMQ's MQTT plugin); subscribers keep receiving so queues can drain. Alarm
        // changes arrive as kicks, and the gate is read again on every turn.
        let mut gate = crate::limits::PublishGate::new(&self.mqtt.core.limits.alarms);
        let mut was_held = false;
        loop {
            // Decode everything complete, then answer it and send deliveries in one write.
            // Stop at the first full destination, so later publishes cannot overtake the one
            // waiting for room.
            while self.backpressure.is_empty() {
                match decode(&mut io.rbuf, self.version, max_packet) {
                    Ok(Some(packet)) => {
                        if let Packet::Publish(_) = packet {
                            gate.mark_publisher();
                        }
                        match self.handle(packet, &mut io.wbuf) {
                            Ok(None) => {}
                            Ok(Some(exit)) => return exit,
                            Err(e) => return Exit::WithWill(e),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Exit::WithWill(e.into()),
                }
            }
            super::deliver::pump(self, &mut io.wbuf);
            if let Err(e) = io.flush().await {
                return Exit::WithWill(e.into());
            }
            // A full destination stops this publisher reading its socket until it has room.
            if !self.backpressure.is_empty() {
                for wait in self.backpressure.drain(..) {
                    wait.await;
                }
                // Packets already read wait behind the publish that blocked: decode them first.
                continue;
            }
            // Shutdown arrives as a kick (`Mqtt::kick_on_shutdown`) rather than through a
            // `shutdown.changed()` branch, whose future would be 120 bytes of every idle
            // connection. The flag is checked here too: a connection that attached its
            // session after the kicks went out was not kicked.
            if *shutdown.borrow() {
                return Exit::Shutdown;
            }
            let held = gate.holds();
            if held != was_held {
                // A held client's PINGREQs are not read: no deadline while held, and a fresh
                // one once reading resumes.
                if held {
                    kick.disarm();
                } else {
                    arm(&kick);
                }
                was_held = held;
            }
            tokio::select! {
                _ = std::future::poll_fn(|cx| kick.poll_woken(cx)) => {
                    let reasons = kick.take_reasons();
                    if *shutdown.borrow() || reasons & super::kick::SHUTDOWN != 0 {
                        return Exit::Shutdown;
                    }
                    if reasons & super::kick::TAKEN_OVER != 0 {
                        return Box::pin(self.last_packets(io)).await;
                    }
                    // Checked again here: a read may have moved the deadline after the
                    // sweeper looked.
                    if reasons & super::kick::KEEP_ALIVE != 0 && kick.expired() {
                        return Exit::WithWill(MqttError::KeepAliveTimeout);
                    }
                    // ALARM: the gate is read again at the top of the loop.
                }
                r = io.read_more(), if !held => match r {
                    Ok(0) => return Exit::WithWill(MqttError::Eof),
                    Ok(_) => if keep_alive.is_some() {
                        arm(&kick);
                    },
                    Err(e) => return Exit::WithWill(e.into()),
                },
                // Polled in place (`poll_fn` borrows the field): futures of their own were
                // 40 bytes each of every idle connection's wait.
                _ = std::future::poll_fn(|cx| self.acks.poll_front_ready(cx)) => {
                    let mut ready = Vec::new();
                    self.acks.take_ready(&mut ready);
                    for packet in &ready {
                        self.send(&mut io.wbuf, packet);
                    }
                }
                _ = std::future::poll_fn(|cx| self.sends.poll_front_ready(cx)) => {
                    super::deliver::write_ready(self, &mut io.wbuf);
                }
            }
        }
    }

    /// Taken over: packets the client sent before it connected again (often its DISCONNECT)
    /// are already here or in the socket; they are handled first, so the new connection finds
    /// the session as the client left it (an expiry-0 session ended by that DISCONNECT is gone).
    async fn last_packets<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Framed<S>,
    ) -> Exit {
        // Bytes already in the socket may not be known to the runtime's reactor yet (a read
        // would report "not ready" from its cached readiness), so give them a moment to show.
        let _ = tokio::time::timeout(TAKEOVER_GRACE, io.read_more()).await;
        let max_packet = self.mqtt.core.config.mqtt.max_packet_size;
        loop {
            match decode(&mut io.rbuf, self.version, max_packet) {
                Ok(Some(packet)) => match self.handle(packet, &mut io.wbuf) {
                    Ok(None) => {}
                    Ok(Some(exit)) => return exit,
                    Err(e) => return Exit::WithWill(e),
                },
                Ok(None) => return Exit::WithWill(MqttError::TakenOver),
                Err(e) => return Exit::WithWill(e.into()),
            }
        }
    }

    /// Handles one packet from the client. `Ok(Some(exit))` ends the connection.
    fn handle(
        &mut self,
        packet: Packet,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<Option<Exit>, MqttError> {
        match packet {
            Packet::Publish(p) => self.on_publish(p, wbuf)?,
            Packet::PubRel(p) => self.on_pubrel(p, wbuf),
            Packet::PubAck(p) => self.on_puback(p),
            Packet::PubRec(p) => self.on_pubrec(p, wbuf),
            Packet::PubComp(p) => self.on_pubcomp(p),
            Packet::Subscribe(s) => self.on_subscribe(s, wbuf)?,
            Packet::Unsubscribe(u) => self.on_unsubscribe(u, wbuf),
            Packet::PingReq => self.send(wbuf, &Packet::PingResp),
            Packet::Disconnect(d) => return self.on_disconnect(d).map(Some),
            Packet::Auth(_) => {
                // No enhanced authentication method was accepted at CONNECT, so AUTH is a
                // protocol error [MQTT-4.12.0-1].
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "AUTH without an authentication method",
                ));
            }
            Packet::Connect(_) => {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "second CONNECT [MQTT-3.1.0-2]",
                ));
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "server-to-client packet sent by client",
                ));
            }
        }
        Ok(None)
    }

    fn on_disconnect(&mut self, d: Disconnect) -> Result<Exit, MqttError> {
        if let Some(expiry) = d.properties.session_expiry_interval {
            // A session that started with expiry 0 cannot be given one at DISCONNECT
            // [MQTT-3.14.2-2].
            if self.session_expiry == 0 && expiry != 0 {
                return Err(MqttError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    "session expiry set at DISCONNECT after CONNECT had none",
                ));
            }
            self.session_expiry = expiry;
        }
        if d.reason == ReasonCode::DISCONNECT_WITH_WILL {
            return Ok(Exit::NormalWithWill);
        }
        Ok(Exit::Normal)
    }

    /// After the loop: tell the client why (v5), publish the will if due, then release or end
    /// the session.
    async fn finish<S: AsyncRead + AsyncWrite + Unpin>(mut self, exit: Exit, io: &mut Framed<S>) {
        let client_id = Arc::clone(&self.session.client_id);
        let will = match &exit {
            Exit::Normal => {
                tracing::debug!(%client_id, peer = %self.peer, "client disconnected");
                None
            }
            Exit::NormalWithWill => {
                tracing::debug!(%client_id, peer = %self.peer, "client disconnected with will (0x04)");
                self.will.take().map(|w| *w)
            }
            Exit::Shutdown => {
                self.send_disconnect(&mut io.wbuf, ReasonCode::SERVER_SHUTTING_DOWN, None);
                None
            }
            Exit::WithWill(e) => {
                if let Some(code) = e.disconnect_code() {
                    let why = e.to_string();
                    self.send_disconnect(&mut io.wbuf, code, Some(why));
                }
                if e.is_client_fault() {
                    tracing::warn!(%client_id, peer = %self.peer, error = %e, "closing connection");
                } else {
                    tracing::debug!(%client_id, peer = %self.peer, reason = %e, "connection closed");
                }
                self.will.take().map(|w| *w)
            }
        };
        // The session is released before the socket closes, so a client that sees the close
        // knows the broker is done with the connection (an expiry-0 session is gone).
        super::connect::release_session(
            &self.mqtt,
            &self.session,
            self.generation,
            self.session_expiry,
            will,
        );
        io.close().await;
    }

    fn send_disconnect(&self, wbuf: &mut bytes::BytesMut, reason: ReasonCode, why: Option<String>) {
        if !self.version.is_v5() {
            return;
        }
        let mut packet = Packet::Disconnect(Disconnect {
            reason,
            properties: Properties {
                reason_string: why,
                ..Properties::default()
            },
        });
        // [MQTT-3.14.2-3]: no Reason String that would exceed the client's Maximum Packet Size.
        if encoded_len(&packet, self.version).map_or(true, |n| n > self.client_max_packet) {
            if let Packet::Disconnect(d) = &mut packet {
                d.properties.reason_string = None;
            }
        }
        self.send(wbuf, &packet);
    }
}

/// How long a connection being taken over waits for what its client sent last.
const TAKEOVER_GRACE: Duration = Duration::from_millis(50);
