//! MQTT pub/sub scenario: `--pubs` publishers send to one topic that `--subs` subscribers all
//! subscribe to (1->1, fan-out 1->N, fan-in N->1; with `--share`, one member of a shared
//! group), at QoS 0 or 1, flat out under a window or at a fixed `--rate`. Measures deliveries per second, end-to-end latency from the timestamp in each
//! payload, and the broker's CPU time over exactly the publishing-plus-drain window.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::wire::{self, Incoming};
use crate::cli::MqttArgs;
use crate::flow::{Flow, PubState, Tally, Window};
use crate::procstat;
use crate::stats::{self, Latency, Report};

/// Most messages a publisher encodes into one write.
const BATCH: u64 = 64;
/// How long to wait for the last deliveries after publishing stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the scenario against `addr` and reports.
pub async fn run(args: &MqttArgs, addr: &str, pid: Option<u32>) -> Result<Report> {
    if args.size < stats::HEADER_LEN {
        bail!("--size must be at least {} bytes", stats::HEADER_LEN);
    }
    if args.pubs == 0 || args.subs == 0 {
        bail!("--pubs and --subs must be at least 1");
    }
    if args.share.is_some() && args.subs != 1 {
        bail!("--share needs --subs 1 (a group hands each message to one member)");
    }
    let addr = super::resolve(addr).await?;
    let run_id = format!("{}-{}", std::process::id(), stats::now_ns());
    let topic = format!("fmqbench/{run_id}");
    let flow = Flow::new(args.pubs as usize);
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut subs = Vec::new();
    for i in 0..args.subs {
        let mut conn = super::open(addr, None, &format!("fmqb-s{i}-{run_id}"), 60).await?;
        let filter = match &args.share {
            Some(group) => format!("$share/{group}/{topic}"),
            None => topic.clone(),
        };
        conn.subscribe(&filter, args.qos).await?;
        let (rd, wr) = conn.stream.into_split();
        let flow = flow.clone();
        let stop = stop_rx.clone();
        let pubs = args.pubs as usize;
        subs.push(tokio::spawn(subscriber(
            rd, wr, conn.rbuf, flow, pubs, stop,
        )));
    }
    let mut pubs = Vec::new();
    for i in 0..args.pubs {
        pubs.push(super::open(addr, None, &format!("fmqb-p{i}-{run_id}"), 60).await?);
    }

    let before = pid.map(procstat::sample).transpose()?;
    let start = Instant::now();
    let start_ns = stats::now_ns();
    let deadline = start + args.common.duration;
    let mut tasks = Vec::new();
    for (i, conn) in pubs.into_iter().enumerate() {
        let p = Publisher {
            index: i as u32,
            topic: topic.clone(),
            qos: args.qos,
            size: args.size,
            rate: args.rate.map(|r| r as f64 / f64::from(args.pubs)),
            // The window bounds what one subscriber may be behind, so publishers share it:
            // 100 publishers with a full window each would overflow a subscriber's queue
            // (Mosquitto drops QoS 1 beyond max_queued_messages, 1000 by default).
            window: Window::new(
                args.window.div_ceil(u64::from(args.pubs)),
                if args.qos > 0 { args.inflight } else { 0 },
                u64::from(args.subs),
            ),
        };
        let flow = flow.clone();
        tasks.push(tokio::spawn(async move {
            let (rd, wr) = conn.stream.into_split();
            p.run(rd, wr, conn.rbuf, flow, start, deadline).await
        }));
    }
    let mut published = 0;
    for t in tasks {
        published += t.await.context("publisher task")??;
    }
    let expected = published * u64::from(args.subs);
    let drain_deadline = Instant::now() + DRAIN;
    while flow.total_delivered.load(Ordering::Acquire) < expected && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = pid.map(procstat::sample).transpose()?;
    let _ = stop_tx.send(true);
    let mut lat = Latency::new();
    for s in subs {
        lat.merge(&s.await.context("subscriber task")??);
    }
    let delivered = flow.total_delivered.load(Ordering::Acquire);
    let last = flow.last_delivery_ns.load(Ordering::Acquire);
    let elapsed = Duration::from_nanos(last.saturating_sub(start_ns));
    Ok(Report::new(published, delivered, elapsed, &lat).with_broker(before, after))
}

/// Reads deliveries until stopped, crediting publishers and acking QoS 1 messages.
async fn subscriber(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut rbuf: BytesMut,
    flow: Arc<Flow>,
    pubs: usize,
    mut stop: watch::Receiver<bool>,
) -> Result<Latency> {
    let mut lat = Latency::new();
    let mut tally = Tally::new(pubs);
    let mut acks = BytesMut::with_capacity(4096);
    rbuf.reserve(256 * 1024);
    loop {
        let mut used_total = 0;
        while let Some((packet, used)) = wire::parse(&rbuf[used_total..])? {
            used_total += used;
            if let Incoming::Publish {
                qos,
                packet_id,
                payload,
            } = packet
            {
                if qos > 0 {
                    wire::puback(&mut acks, packet_id);
                }
                if let Some((sent, publisher)) = stats::read_stamp(payload) {
                    lat.record_since(sent);
                    tally.add(publisher);
                }
            }
        }
        rbuf.advance(used_total);
        tally.flush(&flow, stats::now_ns());
        if !acks.is_empty() {
            wr.write_all(&acks).await?;
            acks.clear();
        }
        if rbuf.capacity() - rbuf.len() < 64 * 1024 {
            rbuf.reserve(256 * 1024);
        }
        tokio::select! {
            n = rd.read_buf(&mut rbuf) => {
                if n? == 0 {
                    bail!("broker closed a subscriber connection");
                }
            }
            _ = stop.changed() => return Ok(lat),
        }
    }
}

/// One publishing connection's settings.
struct Publisher {
    index: u32,
    topic: String,
    qos: u8,
    size: usize,
    /// Messages per second for this publisher, or flat out.
    rate: Option<f64>,
    window: Window,
}

impl Publisher {
    /// Publishes until `deadline`; returns how many messages were sent.
    async fn run(
        mut self,
        rd: OwnedReadHalf,
        mut wr: OwnedWriteHalf,
        rbuf: BytesMut,
        flow: Arc<Flow>,
        start: Instant,
        deadline: Instant,
    ) -> Result<u64> {
        let acks = (self.qos > 0).then(|| {
            let flow = flow.clone();
            let index = self.index as usize;
            tokio::spawn(async move { read_acks(rd, rbuf, &flow.pubs[index]).await })
        });
        let state = &flow.pubs[self.index as usize];
        let mut payload = vec![0u8; self.size];
        let mut out = BytesMut::with_capacity((self.size + 64) * BATCH as usize);
        let mut sent: u64 = 0;
        let mut packet_id: u16 = 0;
        while Instant::now() < deadline {
            let mut n = self.window.wait(state, sent, deadline).await.min(BATCH);
            if let Some(rate) = self.rate {
                let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
                if due <= sent {
                    let next = start + Duration::from_secs_f64(sent as f64 / rate);
                    tokio::time::sleep_until(next.min(deadline).into()).await;
                    continue;
                }
                n = n.min(due - sent);
            }
            for _ in 0..n {
                packet_id = packet_id.checked_add(1).unwrap_or(1);
                stats::stamp(&mut payload, stats::now_ns(), self.index);
                wire::publish(&mut out, &self.topic, self.qos, packet_id, &payload);
            }
            wr.write_all(&out).await?;
            out.clear();
            sent += n;
        }
        if let Some(acks) = acks {
            // Wait for every PUBACK before closing: closing with PUBACKs unread makes the kernel
            // reset the connection, and the broker would lose publishes it had not read yet.
            let until = Instant::now() + DRAIN;
            while state.acked.load(Ordering::Acquire) < sent && Instant::now() < until {
                let _ = tokio::time::timeout_at(until.into(), state.notify.notified()).await;
            }
            acks.abort();
        }
        Ok(sent)
    }
}

/// Counts PUBACKs for a QoS 1 publisher.
async fn read_acks(mut rd: OwnedReadHalf, mut rbuf: BytesMut, state: &PubState) -> Result<()> {
    loop {
        let mut acked = 0;
        let mut used_total = 0;
        while let Some((packet, used)) = wire::parse(&rbuf[used_total..])? {
            used_total += used;
            if let Incoming::PubAck { .. } = packet {
                acked += 1;
            }
        }
        rbuf.advance(used_total);
        if acked > 0 {
            state.acked.fetch_add(acked, Ordering::AcqRel);
            state.notify.notify_one();
        }
        rbuf.reserve(4096);
        if rd.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
    }
}
