//! The AMQP connection task: handshake, then a loop that decodes frames and dispatches them to
//! channels, writes deliveries from the consumers' mailbox, keeps heartbeats both ways, and
//! turns errors into channel.close or connection.close. Every write of one turn goes out in one
//! syscall. Owns the socket and all channel state; no locks. A coarse timer closes channels
//! whose oldest delivery waited longer than the acknowledgement timeout (`ack_timeout`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use ferromq_amqp::{
    decode_frame, encode_frame, reply_code, ChannelClose, ChannelCloseOk, ChannelFlowOk, ChannelId,
    ChannelOpenOk, ConnectionClose, ConnectionCloseOk, Frame, Method, MethodId, ShortString,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::ack_timeout;
use super::channel::Channel;
use super::coalesce::Coalesce;
use super::consumer::Outbound;
use super::handshake::{self, Negotiated};
use super::reply_code::AmqpError;
use crate::broker::binding::Pending;
use crate::broker::queue::{Admission, Verdict};
use crate::broker::{ConnectionId, Core};
use crate::connection::Framed;

mod outbound;

/// Deliveries written per turn before the loop reads the socket again (fairness).
const DELIVERIES_PER_TURN: usize = 256;
/// How long a connection being closed by the broker waits for connection.close-ok.
const CLOSE_OK_WAIT: Duration = Duration::from_secs(1);

/// One AMQP connection after the handshake.
pub struct Connection {
    /// The routing core.
    pub core: Arc<Core>,
    /// The vhost this connection opened.
    pub vhost: Arc<crate::broker::vhost::Vhost>,
    /// The AMQP adapter's shared state (direct reply-to registry).
    pub adapter: Arc<super::Amqp>,
    /// This connection's id (exclusive queue ownership).
    pub id: ConnectionId,
    /// Peer address, for logs.
    pub peer: SocketAddr,
    /// Negotiated limits and identity.
    pub tuned: Negotiated,
    /// Open channels. Looked up several times per frame, so not with SipHash (12 % of the
    /// instructions of a transient publish and delivery, README, Benchmarks): the ids are the
    /// client's, but at most `channel_max` of them, and colliding ones would only slow the
    /// client's own connection.
    pub channels: HashMap<u16, Channel, crate::broker::queue::id_hash::IdBuildHasher>,
    /// Where consumers' sinks send deliveries.
    pub mailbox: mpsc::UnboundedSender<Outbound>,
    /// Deliveries to full queue inboxes, awaited before reading on (backpressure).
    pub pending: Vec<Pending>,
    /// Admission answers of queues that may refuse publishes or store them durably, per
    /// confirmed publish, gathered during one turn.
    pub verdicts: Vec<(ChannelId, u64, Verdict)>,
    /// Hands verdicts to this connection's verdict task (`await_verdicts`), so waiting for an
    /// fsync never stops the connection reading. Unbounded: one entry per confirmed publish
    /// not yet answered, and answers come at disk speed while the queues' inboxes bound what
    /// a publisher can have in flight.
    pub verdict_tx: mpsc::UnboundedSender<Undecided>,
    /// Delivery acknowledgement timeout (RabbitMQ `consumer_timeout`).
    pub consumer_timeout: Duration,
    /// The user's permission on the vhost, cached (`access.rs`).
    pub grant: super::access::Grant,
}

/// A confirmed publish waiting for its queues' answer: channel, confirm epoch, sequence number.
pub type Undecided = (ChannelId, u64, u64, Verdict);

/// A queue's answer to a confirmed publish: channel, confirm epoch, sequence number.
type Decided = (ChannelId, u64, u64, Admission);

/// Awaits the verdicts of one connection in publish order and reports them back, a run of
/// answers at a time; ends with the connection.
///
/// The persister answers a whole group commit at once, so once one verdict is ready the ones
/// behind it usually are too: they are taken without waiting and sent as one report. One
/// report per fsync wakes the connection once and becomes one basic.ack; sending each answer
/// on its own let the connection, running on another worker, wake and write an ack for every
/// few of them (strace: five 21-byte acks per group commit).
async fn await_verdicts(
    mut undecided: mpsc::UnboundedReceiver<Undecided>,
    decided: mpsc::UnboundedSender<Vec<Decided>>,
) {
    // Taken from the channel but not answered yet: awaited first in the next round.
    let mut next: Option<Undecided> = None;
    loop {
        let (channel, epoch, seq, verdict) = match next.take() {
            Some(u) => u,
            None => match undecided.recv().await {
                Some(u) => u,
                None => return,
            },
        };
        let mut run = vec![(channel, epoch, seq, verdict.await)];
        while let Ok((channel, epoch, seq, mut verdict)) = undecided.try_recv() {
            match ready_now(&mut verdict) {
                Some(admission) => run.push((channel, epoch, seq, admission)),
                None => {
                    next = Some((channel, epoch, seq, verdict));
                    break;
                }
            }
        }
        if decided.send(run).is_err() {
            return;
        }
    }
}

/// The verdict's answer if it is already there, without waiting (it is awaited later
/// otherwise, which registers the real waker).
fn ready_now(verdict: &mut Verdict) -> Option<Admission> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match verdict.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(admission) => Some(admission),
        std::task::Poll::Pending => None,
    }
}

/// Serves one AMQP socket from the protocol header to close.
pub async fn run<S>(
    stream: S,
    peer: SocketAddr,
    tls: Option<crate::transport::TlsInfo>,
    adapter: Arc<super::Amqp>,
    id: ConnectionId,
    mut shutdown: watch::Receiver<bool>,
    over_limit: Option<u32>,
) where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static,
{
    let core = Arc::clone(&adapter.core);
    let fd = stream.as_raw_fd();
    let mut io = Framed::new(stream);
    let timeout = Duration::from_secs(core.config.amqp.handshake_timeout_secs);
    let tuned = tokio::select! {
        r = tokio::time::timeout(timeout, handshake::run(&mut io, &core, peer, tls.as_ref(), over_limit)) => r,
        _ = shutdown.changed() => return,
    };
    let tuned = match tuned {
        Err(_) => {
            tracing::info!(%peer, "AMQP: handshake not completed within {}s; closing", timeout.as_secs());
            return;
        }
        Ok(Ok(Some(t))) => t,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            if !matches!(
                e,
                AmqpError::Connection {
                    code: reply_code::ACCESS_REFUSED,
                    ..
                }
            ) {
                tracing::warn!(%peer, error = %e, "AMQP handshake failed");
            }
            close_with(&mut io, &e).await;
            return;
        }
    };
    if io.flush().await.is_err() {
        return;
    }
    tracing::debug!(%peer, user = %tuned.user, name = ?tuned.client_name, "AMQP connection open");
    let (mailbox, mut deliveries) = mpsc::unbounded_channel();
    let (verdict_tx, undecided) = mpsc::unbounded_channel();
    let (decided_tx, mut decided) = mpsc::unbounded_channel();
    tokio::spawn(await_verdicts(undecided, decided_tx));
    let consumer_timeout = Duration::from_millis(core.config.amqp.consumer_timeout_ms);
    let mut conn = Connection {
        vhost: Arc::clone(&tuned.host),
        consumer_timeout,
        core,
        adapter,
        id,
        peer,
        tuned,
        channels: HashMap::default(),
        mailbox,
        pending: Vec::new(),
        verdicts: Vec::new(),
        verdict_tx,
        grant: Default::default(),
    };
    let result = conn
        .serve(
            &mut io,
            Some(fd),
            &mut deliveries,
            &mut decided,
            &mut shutdown,
        )
        .await;
    conn.cleanup().await;
    match result {
        Ok(()) => {
            tracing::debug!(%peer, "AMQP connection closed");
            io.close_gracefully(CLOSE_OK_WAIT).await;
        }
        Err(AmqpError::Io(e)) => tracing::debug!(%peer, error = %e, "AMQP connection lost"),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "AMQP connection error");
            close_with(&mut io, &e).await;
        }
    }
}

/// Sends connection.close for a connection exception and waits briefly for close-ok.
async fn close_with<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Framed<S>, e: &AmqpError) {
    if let AmqpError::Connection { code, text, method } = e {
        let (class_id, method_id) = method.map_or((0, 0), |m| (m.class_id, m.method_id));
        let close = Method::ConnectionClose(ConnectionClose {
            reply_code: *code,
            reply_text: ShortString::truncating(text),
            class_id,
            method_id,
        });
        let _ = encode_frame(&Frame::Method(ChannelId(0), close), &mut io.wbuf);
        if io.flush().await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_OK_WAIT, async {
                loop {
                    match decode_frame(&mut io.rbuf, handshake::FRAME_MAX) {
                        Ok(Some(Frame::Method(_, Method::ConnectionCloseOk(_)))) => return,
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        // Framing is lost (often the very frame that caused the close): drop
                        // what was read and keep draining, so the client reads our close instead
                        // of a reset, and a close-ok sent afterwards still ends the wait.
                        Err(_) => io.rbuf.clear(),
                    }
                    if !matches!(io.read_more().await, Ok(n) if n > 0) {
                        return;
                    }
                }
            })
            .await;
        }
    }
    io.close().await;
}

impl Connection {
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Framed<S>,
        fd: Option<RawFd>,
        deliveries: &mut mpsc::UnboundedReceiver<Outbound>,
        decided: &mut mpsc::UnboundedReceiver<Vec<Decided>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), AmqpError> {
        let heartbeat = (self.tuned.heartbeat > 0)
            .then(|| Duration::from_secs(u64::from(self.tuned.heartbeat)));
        // Missing two heartbeats' worth of traffic closes the connection (as RabbitMQ).
        let mut read_deadline = heartbeat.map(|h| Instant::now() + h * 2);
        let mut send_tick =
            heartbeat.map(|h| tokio::time::interval_at(Instant::now() + h / 2, h / 2));
        let mut wrote_since_tick = false;
        let check_every = ack_timeout::check_interval(self.consumer_timeout);
        let mut ack_check = tokio::time::interval_at(Instant::now() + check_every, check_every);
        ack_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Resource alarms: a publishing connection is not read while one is on (`limits/`).
        let mut gate = crate::limits::PublishGate::new(&self.core.limits.alarms);
        let mut told_blocked = false;
        // A publish method decoded while the alarm holds this connection: handled once it
        // clears, so no publish starts while held (and none is left half-read).
        let mut parked: Option<Frame> = None;
        // While many confirmed publishes wait for their fsync, reads wait too (`coalesce`).
        let mut coalesce = Coalesce::new(fd);
        // The size of the last read, until the loop came back to judge it (`coalesce`).
        let mut just_read: Option<usize> = None;
        loop {
            // Stop decoding at the first full destination, so later publishes cannot overtake
            // the one waiting for room.
            while self.pending.is_empty() {
                let frame = match parked.take() {
                    Some(f) => f,
                    None => match decode_frame(&mut io.rbuf, self.tuned.frame_max) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(e) => return Err(AmqpError::from_decode(&e)),
                    },
                };
                // The header and body of every publish skip the async method path: its
                // futures, built per frame, copied the 392-byte frame and their own state
                // several times (README, Benchmarks).
                let max = self.tuned.channel_max;
                if matches!(&frame, Frame::Header(c, _) | Frame::Body(c, _) if c.0 != 0 && c.0 <= max)
                {
                    let channel = frame.channel();
                    let result = self.on_content_frame(frame, &mut io.wbuf);
                    if result.is_err() {
                        self.channel_result(channel, result, &mut io.wbuf).await?;
                    }
                    continue;
                }
                if let Frame::Method(_, Method::BasicPublish(_)) = &frame {
                    gate.mark_publisher();
                    if gate.holds() {
                        parked = Some(frame);
                        break;
                    }
                }
                if self.on_frame(frame, &mut io.wbuf).await? {
                    io.flush().await?;
                    return Ok(());
                }
            }
            let blocked = !self.pending.is_empty();
            // Confirms only once every routed message reached its queues.
            for wait in self.pending.drain(..) {
                wait.await;
            }
            // Their messages are in the queues now; the answers come back on `decided`.
            for (channel, seq, verdict) in self.verdicts.drain(..) {
                if let Some(c) = self
                    .channels
                    .get_mut(&channel.0)
                    .and_then(|c| c.confirms.as_mut())
                {
                    c.undecided.insert(seq);
                    let _ = self.verdict_tx.send((channel, c.epoch, seq, verdict));
                }
            }
            self.flush_confirms(&mut io.wbuf);
            // A publish whose content is still arriving is read to its end first (the next
            // publish method is parked), so a held connection never sits on half a message.
            let held = gate.holds() && !self.channels.values().any(|c| c.publish.is_some());
            if self.tuned.blocked_capable && held != told_blocked {
                told_blocked = held;
                super::blocked::notify(&mut io.wbuf, held.then(|| gate.state()), self.peer)?;
            }
            if !io.wbuf.is_empty() {
                wrote_since_tick = true;
            }
            io.flush().await?;
            if blocked {
                // Frames already read wait behind the publish that blocked: decode them first.
                continue;
            }
            if let Some(n) = just_read.take() {
                coalesce.after_read(self.undecided(), n);
            }
            tokio::select! {
                _ = shutdown.changed() => {
                    return Err(AmqpError::connection(
                        reply_code::CONNECTION_FORCED,
                        "broker forced connection closure with reason 'shutdown'",
                        None,
                    ));
                }
                _ = gate.changed() => {
                    // Heartbeats are not read while held (RabbitMQ suspends the check too).
                    read_deadline = heartbeat.map(|h| Instant::now() + h * 2);
                }
                r = io.read_more(), if !held && coalesce.reads_allowed() => {
                    let n = r?;
                    if n == 0 {
                        return Err(AmqpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                    read_deadline = heartbeat.map(|h| Instant::now() + h * 2);
                    just_read = Some(n);
                }
                _ = sleep_until(coalesce.until()), if coalesce.until().is_some() => {
                    coalesce.stop();
                }
                Some(run) = decided.recv() => {
                    let mut answered = run.len();
                    run.into_iter().for_each(|d| self.on_decided(d));
                    while let Ok(run) = decided.try_recv() {
                        answered += run.len();
                        run.into_iter().for_each(|d| self.on_decided(d));
                    }
                    coalesce.answered(answered, self.undecided());
                }
                Some(out) = deliveries.recv() => {
                    self.on_outbound(out, &mut io.wbuf)?;
                    for _ in 1..DELIVERIES_PER_TURN {
                        match deliveries.try_recv() {
                            Ok(out) => self.on_outbound(out, &mut io.wbuf)?,
                            Err(_) => break,
                        }
                    }
                }
                _ = ack_check.tick() => self.close_timed_out(&mut io.wbuf).await,
                _ = tick(&mut send_tick) => {
                    if !wrote_since_tick {
                        encode_frame(&Frame::heartbeat(), &mut io.wbuf).map_err(internal)?;
                    }
                    wrote_since_tick = false;
                }
                _ = sleep_until(read_deadline), if !held => {
                    tracing::warn!(peer = %self.peer, "AMQP: missed heartbeats from client; closing");
                    return Ok(());
                }
            }
        }
    }

    /// Confirmed publishes waiting for their queues' answer, over all channels.
    fn undecided(&self) -> usize {
        self.channels
            .values()
            .filter_map(|c| c.confirms.as_ref())
            .map(|c| c.undecided.len())
            .sum()
    }

    /// A queue answered a confirmed publish: it is no longer undecided, and a refusal makes
    /// its confirm a nack (sent by the next `flush_confirms`).
    fn on_decided(&mut self, (channel, epoch, seq, admission): Decided) {
        let Some(c) = self
            .channels
            .get_mut(&channel.0)
            .and_then(|c| c.confirms.as_mut())
            .filter(|c| c.epoch == epoch)
        else {
            return;
        };
        c.undecided.remove(&seq);
        if admission == Admission::Refused {
            c.refused.insert(seq);
        }
    }

    /// Handles one frame; `Ok(true)` once the connection is closed (close / close-ok done).
    async fn on_frame(
        &mut self,
        frame: Frame,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<bool, AmqpError> {
        let channel = frame.channel();
        if channel.0 == 0 {
            return self.on_connection_frame(frame, wbuf);
        }
        if channel.0 > self.tuned.channel_max {
            return Err(AmqpError::connection(
                reply_code::CHANNEL_ERROR,
                format!(
                    "channel {} above channel_max {}",
                    channel.0, self.tuned.channel_max
                ),
                None,
            ));
        }
        let result = self.on_channel_frame(frame, wbuf).await;
        self.channel_result(channel, result, wbuf).await
    }

    /// What a channel's frame came to: a channel error closes the channel (the connection
    /// goes on); any other error ends the connection.
    async fn channel_result(
        &mut self,
        channel: ChannelId,
        result: Result<(), AmqpError>,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<bool, AmqpError> {
        match result {
            Ok(()) => Ok(false),
            Err(AmqpError::Channel { code, text, method }) => {
                tracing::info!(peer = %self.peer, channel = channel.0, code, "channel error: {text}");
                self.close_channel(channel, code, &text, method, wbuf).await;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A content header or body frame on an open channel number (the caller checked it is
    /// one): dropped on a channel the broker is closing, else part of the publish in progress.
    fn on_content_frame(
        &mut self,
        frame: Frame,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<(), AmqpError> {
        let id = frame.channel();
        if self.channels.get(&id.0).is_some_and(|c| c.closing) {
            // Content of a publish on a channel the broker closed is dropped with it.
            return Ok(());
        }
        match frame {
            Frame::Header(_, header) => self.on_content_header(id, header, wbuf),
            Frame::Body(_, body) => self.on_content_body(id, body, wbuf),
            Frame::Method(..) | Frame::Heartbeat(_) => Ok(()),
        }
    }

    fn on_connection_frame(
        &mut self,
        frame: Frame,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<bool, AmqpError> {
        match frame {
            Frame::Heartbeat(_) => Ok(false),
            Frame::Method(_, Method::ConnectionClose(close)) => {
                tracing::debug!(peer = %self.peer, code = close.reply_code, "client closed the connection");
                send(
                    wbuf,
                    ChannelId(0),
                    Method::ConnectionCloseOk(ConnectionCloseOk),
                )?;
                Ok(true)
            }
            Frame::Method(_, Method::ConnectionCloseOk(_)) => Ok(true),
            Frame::Method(_, m) => Err(AmqpError::connection(
                reply_code::COMMAND_INVALID,
                format!("unexpected method '{}' on channel 0", m.name()),
                Some(m.id()),
            )),
            _ => Err(AmqpError::connection(
                reply_code::UNEXPECTED_FRAME,
                "content frame on channel 0",
                None,
            )),
        }
    }

    async fn on_channel_frame(
        &mut self,
        frame: Frame,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<(), AmqpError> {
        let id = frame.channel();
        let method = match frame {
            Frame::Method(_, m) => m,
            // Taken by the read loop already (`on_content_frame`); here for completeness.
            content @ (Frame::Header(..) | Frame::Body(..)) => {
                return self.on_content_frame(content, wbuf)
            }
            Frame::Heartbeat(_) => {
                return Err(AmqpError::connection(
                    reply_code::FRAME_ERROR,
                    "heartbeat frame on a non-zero channel",
                    None,
                ))
            }
        };
        if let Method::ChannelOpen(_) = method {
            if self.channels.contains_key(&id.0) {
                return Err(AmqpError::connection(
                    reply_code::CHANNEL_ERROR,
                    "second 'channel.open' seen",
                    Some(method.id()),
                ));
            }
            self.channels.insert(id.0, Channel::new(id));
            return send(wbuf, id, Method::ChannelOpenOk(ChannelOpenOk));
        }
        let Some(channel) = self.channels.get_mut(&id.0) else {
            return Err(AmqpError::connection(
                reply_code::CHANNEL_ERROR,
                format!("expected 'channel.open' on channel {}", id.0),
                Some(method.id()),
            ));
        };
        if channel.closing {
            // After our channel.close, everything but close / close-ok is dropped (0-9-1 4.2.6).
            match method {
                Method::ChannelCloseOk(_) => {
                    self.channels.remove(&id.0);
                }
                Method::ChannelClose(_) => send(wbuf, id, Method::ChannelCloseOk(ChannelCloseOk))?,
                _ => {}
            }
            return Ok(());
        }
        if channel.publish.is_some() {
            return Err(AmqpError::connection(
                reply_code::UNEXPECTED_FRAME,
                format!("expected content header, got '{}'", method.name()),
                Some(method.id()),
            ));
        }
        self.on_method(id, method, wbuf).await
    }

    async fn on_method(
        &mut self,
        id: ChannelId,
        method: Method,
        wbuf: &mut bytes::BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method.id();
        self.authorize(id, &method)?;
        match method {
            Method::ChannelClose(_) => {
                self.release_channel(id).await;
                send(wbuf, id, Method::ChannelCloseOk(ChannelCloseOk))
            }
            Method::ChannelCloseOk(_) => Ok(()),
            // As RabbitMQ: a client may not pause deliveries with channel.flow; consumers use
            // basic.qos (and basic.cancel) for that.
            Method::ChannelFlow(flow) if !flow.active => Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                "active=false",
                Some(mid),
            )),
            Method::ChannelFlow(_) => send(
                wbuf,
                id,
                Method::ChannelFlowOk(ChannelFlowOk { active: true }),
            ),
            Method::ExchangeDeclare(m) => self.exchange_declare(id, m, wbuf),
            Method::ExchangeDelete(m) => self.exchange_delete(id, m, wbuf),
            Method::ExchangeBind(m) => self.exchange_bind(id, m, wbuf),
            Method::ExchangeUnbind(m) => self.exchange_unbind(id, m, wbuf),
            Method::QueueDeclare(m) => self.queue_declare(id, m, wbuf).await,
            Method::QueueBind(m) => self.queue_bind(id, m, wbuf),
            Method::QueueUnbind(m) => self.queue_unbind(id, m, wbuf),
            Method::QueuePurge(m) => self.queue_purge(id, m, wbuf).await,
            Method::QueueDelete(m) => self.queue_delete(id, m, wbuf).await,
            Method::BasicQos(m) => self.basic_qos(id, m, wbuf),
            Method::BasicConsume(m) => self.basic_consume(id, m, wbuf).await,
            Method::BasicCancel(m) => self.basic_cancel(id, m, wbuf).await,
            Method::BasicPublish(m) => self.basic_publish(id, m),
            Method::BasicGet(m) => self.basic_get(id, m, wbuf).await,
            Method::BasicAck(m) => {
                self.basic_ack(id, m.delivery_tag.0, m.multiple, None, mid, wbuf)
            }
            Method::BasicNack(m) => {
                self.basic_ack(id, m.delivery_tag.0, m.multiple, Some(m.requeue), mid, wbuf)
            }
            Method::BasicReject(m) => {
                self.basic_ack(id, m.delivery_tag.0, false, Some(m.requeue), mid, wbuf)
            }
            Method::BasicRecover(m) => self.basic_recover(id, m.requeue, wbuf, true),
            Method::BasicRecoverAsync(m) => self.basic_recover(id, m.requeue, wbuf, false),
            Method::ConfirmSelect(m) => self.confirm_select(id, m.no_wait, wbuf),
            Method::TxSelect(_) => self.tx_select(id, wbuf),
            Method::TxCommit(_) => self.tx_commit(id, wbuf),
            Method::TxRollback(_) => self.tx_rollback(id, wbuf),
            other => Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                format!("method '{}' is not implemented", other.name()),
                Some(mid),
            )),
        }
    }

    /// Sends channel.close for a channel exception and releases the channel's resources.
    async fn close_channel(
        &mut self,
        id: ChannelId,
        code: u16,
        text: &str,
        method: Option<MethodId>,
        wbuf: &mut bytes::BytesMut,
    ) {
        self.release_channel(id).await;
        self.channels.insert(
            id.0,
            Channel {
                closing: true,
                ..Channel::new(id)
            },
        );
        let (class_id, method_id) = method.map_or((0, 0), |m| (m.class_id, m.method_id));
        let _ = send(
            wbuf,
            id,
            Method::ChannelClose(ChannelClose {
                reply_code: code,
                reply_text: ShortString::truncating(text),
                class_id,
                method_id,
            }),
        );
    }

    /// Cancels a channel's consumers (their unacked messages go back to the queues) and
    /// requeues everything else it had unacknowledged (AMQP 0-9-1 basic.ack semantics).
    pub async fn release_channel(&mut self, id: ChannelId) {
        let Some(channel) = self.channels.remove(&id.0) else {
            return;
        };
        for consumer in channel.consumers.into_values() {
            // Cancel first, so requeued messages cannot come back to this consumer.
            consumer.queue.cancel(consumer.queue_tag, true).await;
            self.vhost.consumer_removed(&consumer.queue_name);
        }
        // Highest tag first, so the requeued messages keep their order (see basic_ack).
        for u in channel.unacked.into_values().rev() {
            u.queue.reject(u.id, true);
        }
    }

    /// Closes, with RabbitMQ's 406, every channel whose oldest unacknowledged delivery is older
    /// than the acknowledgement timeout; the close requeues its unacknowledged messages.
    async fn close_timed_out(&mut self, wbuf: &mut bytes::BytesMut) {
        let Some(deadline) = Instant::now().into_std().checked_sub(self.consumer_timeout) else {
            return;
        };
        // Tags grow with time: the first unacked entry is the oldest delivery.
        let expired: Vec<ChannelId> = self
            .channels
            .values()
            .filter(|c| !c.closing)
            .filter(|c| {
                c.unacked
                    .first_key_value()
                    .is_some_and(|(_, u)| u.delivered_at <= deadline)
            })
            .map(|c| c.id)
            .collect();
        for id in expired {
            let text = ack_timeout::reply_text(id.0, self.consumer_timeout);
            tracing::info!(peer = %self.peer, channel = id.0, "AMQP: {text}");
            let AmqpError::Channel { code, text, .. } =
                AmqpError::channel(reply_code::PRECONDITION_FAILED, text, None)
            else {
                continue;
            };
            self.close_channel(id, code, &text, None, wbuf).await;
        }
    }

    async fn cleanup(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        for id in ids {
            self.release_channel(ChannelId(id)).await;
        }
        self.vhost.connection_closed(self.id);
    }
}

/// Queues one method frame.
pub fn send(
    wbuf: &mut bytes::BytesMut,
    channel: ChannelId,
    method: Method,
) -> Result<(), AmqpError> {
    encode_frame(&Frame::Method(channel, method), wbuf).map_err(internal)
}

/// An encoding failure: a value the wire cannot carry reached the encoder.
pub fn internal(e: ferromq_amqp::EncodeError) -> AmqpError {
    AmqpError::connection(reply_code::INTERNAL_ERROR, e, None)
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
