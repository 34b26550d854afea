//! AMQP 0-9-1 latency at a fixed rate over plain tokio sockets: one publisher connection, one
//! consumer connection (exclusive auto-delete queue, basic.qos prefetch, multi-acks), both
//! driven by tasks of the bench's own runtime. lapin runs its I/O loop on a thread of its own,
//! so each message took a thread hop in the publisher and another in the consumer, and lapin's
//! share of the measured latency was larger than the broker's (README, Benchmarks). Frames are
//! written by hand here (AMQP 0-9-1 section 4.2), only the methods this scenario needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::cli::AmqpArgs;
use crate::procstat;
use crate::stats::{self, Latency, Report};

/// How long to wait for the last deliveries after publishing stops.
const DRAIN: Duration = Duration::from_secs(5);
/// How long the connection setup may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// The one channel used on each connection.
const CHANNEL: u16 = 1;
/// Largest frame this client asks for (and sends).
const FRAME_MAX: u32 = 131_072;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;

/// Runs the transient scenario at `--rate` against `addr` and reports.
pub async fn run(args: &AmqpArgs, addr: &str, pid: Option<u32>) -> Result<Report> {
    let Some(rate) = args.rate else {
        bail!("the raw AMQP client measures latency at a fixed --rate");
    };
    if args.mode != crate::cli::AmqpMode::Transient {
        bail!("the raw AMQP client runs the transient mode only");
    }
    if args.size < stats::HEADER_LEN {
        bail!("--size must be at least {} bytes", stats::HEADER_LEN);
    }
    let queue = format!("fmqbench-raw-{}-{}", std::process::id(), stats::now_ns());
    let setup = async {
        let mut consumer = Raw::connect(addr, &args.user, &args.password).await?;
        consumer.subscribe(&queue, args.prefetch).await?;
        let publisher = Raw::connect(addr, &args.user, &args.password).await?;
        Ok::<_, anyhow::Error>((consumer, publisher))
    };
    let (consumer, mut publisher) = tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .context("AMQP setup timed out")??;

    let delivered = Arc::new(AtomicU64::new(0));
    let last_ns = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ack_every = args.ack_every.clamp(1, u64::from(args.prefetch.max(2)) / 2);
    let consuming = tokio::spawn(consume(
        consumer,
        ack_every,
        Arc::clone(&delivered),
        Arc::clone(&last_ns),
        stop_rx,
    ));

    let before = pid.map(procstat::sample).transpose()?;
    let start = Instant::now();
    let start_ns = stats::now_ns();
    let deadline = start + args.common.duration;
    let rate = rate.max(1) as f64;
    let mut payload = vec![0u8; args.size];
    let mut frames = BytesMut::new();
    let mut sent: u64 = 0;
    while Instant::now() < deadline {
        let due = start + Duration::from_secs_f64(sent as f64 / rate);
        tokio::time::sleep_until(due.min(deadline).into()).await;
        // Stay within the window of the consumer, as the lapin path does.
        if sent.saturating_sub(delivered.load(Ordering::Acquire)) >= args.window {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        stats::stamp(&mut payload, stats::now_ns(), 0);
        publisher.publish(&mut frames, &queue, &payload);
        publisher.write(&mut frames).await?;
        sent += 1;
    }
    let drain_deadline = Instant::now() + DRAIN;
    while delivered.load(Ordering::Acquire) < sent && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = pid.map(procstat::sample).transpose()?;
    let _ = stop_tx.send(true);
    let lat = consuming.await.context("consumer task")??;
    let elapsed = Duration::from_nanos(last_ns.load(Ordering::Acquire).saturating_sub(start_ns));
    let delivered = delivered.load(Ordering::Acquire);
    // The queue is exclusive and auto-delete: it goes with the consumer's connection.
    Ok(Report::new(sent, delivered, elapsed, &lat).with_broker(before, after))
}

/// Reads deliveries until stopped, recording each one's latency when its body is complete and
/// acking with multiple=true every `ack_every`.
async fn consume(
    mut conn: Raw,
    ack_every: u64,
    delivered: Arc<AtomicU64>,
    last_ns: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Result<Latency> {
    let mut lat = Latency::new();
    let mut body = BytesMut::new();
    let mut remaining: u64 = 0;
    let mut tag: u64 = 0;
    let mut unacked: u64 = 0;
    let mut out = BytesMut::new();
    loop {
        let frame = tokio::select! {
            f = conn.read_frame() => f?,
            _ = stop.changed() => break,
        };
        let (kind, mut payload) = frame;
        match kind {
            FRAME_METHOD => {
                let (class, method) = (payload.get_u16(), payload.get_u16());
                if (class, method) != (60, 60) {
                    bail!("unexpected method {class}.{method} while consuming");
                }
                // basic.deliver: consumer-tag, delivery-tag, redelivered, exchange, routing-key.
                skip_short(&mut payload)?;
                tag = payload.get_u64();
                body.clear();
            }
            FRAME_HEADER => {
                // class-id, weight, body-size, then properties (not needed).
                payload.advance(4);
                remaining = payload.get_u64();
            }
            FRAME_BODY => {
                remaining = remaining.saturating_sub(payload.len() as u64);
                body.extend_from_slice(&payload);
            }
            _ => continue,
        }
        if kind == FRAME_METHOD || remaining > 0 {
            continue;
        }
        let now = stats::now_ns();
        if let Some((sent_ns, _)) = stats::read_stamp(&body) {
            lat.record(now.saturating_sub(sent_ns));
        }
        delivered.fetch_add(1, Ordering::AcqRel);
        last_ns.store(now, Ordering::Release);
        unacked += 1;
        if unacked >= ack_every {
            // basic.ack: delivery-tag, multiple.
            let mut args = BytesMut::new();
            args.put_u64(tag);
            args.put_u8(1);
            method(&mut out, CHANNEL, 60, 80, &args);
            conn.write(&mut out).await?;
            unacked = 0;
        }
    }
    Ok(lat)
}

/// One AMQP connection with channel `CHANNEL` open.
struct Raw {
    stream: TcpStream,
    rbuf: BytesMut,
}

impl Raw {
    /// Connects, logs in with PLAIN, opens vhost `/` and channel `CHANNEL`.
    async fn connect(addr: &str, user: &str, password: &str) -> Result<Raw> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut conn = Raw {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
        };
        conn.stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        conn.expect(10, 10).await?; // connection.start
        let mut out = BytesMut::new();
        let mut args = BytesMut::new();
        args.put_u32(0); // client-properties: empty table
        short(&mut args, "PLAIN");
        let response = format!("\0{user}\0{password}");
        args.put_u32(response.len() as u32);
        args.put_slice(response.as_bytes());
        short(&mut args, "en_US");
        method(&mut out, 0, 10, 11, &args); // start-ok
        conn.write(&mut out).await?;
        let mut tune = conn.expect(10, 30).await?;
        let channel_max = tune.get_u16();
        let frame_max = tune.get_u32();
        let frame_max = if frame_max == 0 {
            FRAME_MAX
        } else {
            frame_max.min(FRAME_MAX)
        };
        let mut args = BytesMut::new();
        args.put_u16(channel_max);
        args.put_u32(frame_max);
        args.put_u16(0); // no heartbeats: runs are short
        method(&mut out, 0, 10, 31, &args); // tune-ok
        let mut args = BytesMut::new();
        short(&mut args, "/");
        short(&mut args, "");
        args.put_u8(0);
        method(&mut out, 0, 10, 40, &args); // connection.open
        conn.write(&mut out).await?;
        conn.expect(10, 41).await?;
        method(&mut out, CHANNEL, 20, 10, &[0]); // channel.open, reserved shortstr ""
        conn.write(&mut out).await?;
        conn.expect(20, 11).await?;
        Ok(conn)
    }

    /// Declares `queue` (exclusive, auto-delete), sets the prefetch and starts consuming.
    async fn subscribe(&mut self, queue: &str, prefetch: u16) -> Result<()> {
        let mut out = BytesMut::new();
        let mut args = BytesMut::new();
        args.put_u16(0);
        short(&mut args, queue);
        args.put_u8(0b0000_1100); // exclusive, auto-delete
        args.put_u32(0);
        method(&mut out, CHANNEL, 50, 10, &args); // queue.declare
        self.write(&mut out).await?;
        self.expect(50, 11).await?;
        let mut args = BytesMut::new();
        args.put_u32(0);
        args.put_u16(prefetch);
        args.put_u8(0);
        method(&mut out, CHANNEL, 60, 10, &args); // basic.qos
        self.write(&mut out).await?;
        self.expect(60, 11).await?;
        let mut args = BytesMut::new();
        args.put_u16(0);
        short(&mut args, queue);
        short(&mut args, "fmqbench");
        args.put_u8(0); // acks required
        args.put_u32(0);
        method(&mut out, CHANNEL, 60, 20, &args); // basic.consume
        self.write(&mut out).await?;
        self.expect(60, 21).await?;
        Ok(())
    }

    /// Appends basic.publish to the default exchange with routing key `queue`, its content
    /// header (delivery-mode 1) and one body frame to `out`.
    fn publish(&self, out: &mut BytesMut, queue: &str, body: &[u8]) {
        let mut args = BytesMut::new();
        args.put_u16(0);
        short(&mut args, "");
        short(&mut args, queue);
        args.put_u8(0);
        method(out, CHANNEL, 60, 40, &args);
        let mut header = BytesMut::new();
        header.put_u16(60);
        header.put_u16(0);
        header.put_u64(body.len() as u64);
        header.put_u16(0x1000); // delivery-mode present
        header.put_u8(1);
        frame(out, FRAME_HEADER, CHANNEL, &header);
        frame(out, FRAME_BODY, CHANNEL, body);
    }

    /// Writes and empties `out`.
    async fn write(&mut self, out: &mut BytesMut) -> Result<()> {
        self.stream.write_all(out).await?;
        out.clear();
        Ok(())
    }

    /// Reads the next method frame and checks it is `class.method`; returns its arguments.
    async fn expect(&mut self, class: u16, method: u16) -> Result<Bytes> {
        loop {
            let (kind, mut payload) = self.read_frame().await?;
            if kind != FRAME_METHOD {
                continue;
            }
            let got = (payload.get_u16(), payload.get_u16());
            if got == (10, 50) || got == (20, 40) {
                let code = payload.get_u16();
                let mut text = payload;
                let text = read_short(&mut text).unwrap_or_default();
                bail!("broker closed: {code} {text}");
            }
            if got != (class, method) {
                bail!("expected {class}.{method}, got {}.{}", got.0, got.1);
            }
            return Ok(payload);
        }
    }

    /// Reads one frame: (type, payload); heartbeats are skipped.
    async fn read_frame(&mut self) -> Result<(u8, Bytes)> {
        loop {
            if self.rbuf.len() >= 7 {
                let size =
                    u32::from_be_bytes([self.rbuf[3], self.rbuf[4], self.rbuf[5], self.rbuf[6]])
                        as usize;
                if self.rbuf.len() >= 8 + size {
                    let kind = self.rbuf[0];
                    let mut frame = self.rbuf.split_to(8 + size).freeze();
                    if frame[7 + size] != FRAME_END {
                        bail!("frame without frame-end octet");
                    }
                    frame.truncate(7 + size);
                    frame.advance(7);
                    if kind == FRAME_HEARTBEAT {
                        continue;
                    }
                    return Ok((kind, frame));
                }
                self.rbuf.reserve(8 + size);
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                bail!("broker closed the connection");
            }
        }
    }
}

/// Appends a method frame.
fn method(out: &mut BytesMut, channel: u16, class: u16, method: u16, args: &[u8]) {
    let mut payload = BytesMut::with_capacity(4 + args.len());
    payload.put_u16(class);
    payload.put_u16(method);
    payload.put_slice(args);
    frame(out, FRAME_METHOD, channel, &payload);
}

/// Appends a frame: type, channel, size, payload, frame-end.
fn frame(out: &mut BytesMut, kind: u8, channel: u16, payload: &[u8]) {
    out.put_u8(kind);
    out.put_u16(channel);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.put_u8(FRAME_END);
}

fn short(out: &mut BytesMut, s: &str) {
    out.put_u8(s.len() as u8);
    out.put_slice(s.as_bytes());
}

fn read_short(b: &mut Bytes) -> Option<String> {
    let len = usize::from(*b.first()?);
    if b.len() < 1 + len {
        return None;
    }
    let s = String::from_utf8_lossy(&b[1..1 + len]).into_owned();
    b.advance(1 + len);
    Some(s)
}

fn skip_short(b: &mut Bytes) -> Result<()> {
    read_short(b).map(drop).context("short string")
}
