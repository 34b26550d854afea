//! AMQP 0-9-1 scenarios over lapin: one publisher -> a queue -> one consumer (transient, no
//! confirms), the same with persistent messages on a durable queue and publisher confirms, and a
//! fanout exchange feeding `--queues` queues with a consumer each. Consumers use basic.qos
//! prefetch and ack with multiple=true every `--ack-every` deliveries. Every name carries a run id
//! and is deleted afterwards, so runs do not see each other's messages.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::PublisherConfirm;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::watch;

use crate::cli::{AmqpArgs, AmqpMode};
use crate::flow::{Flow, Tally, Window};
use crate::procstat;
use crate::stats::{self, Latency, Report};

/// How long to wait for the last deliveries after publishing stops.
const DRAIN: Duration = Duration::from_secs(5);
/// Most publishes handed to lapin at once.
const BATCH: u64 = 64;
/// How long connection setup and declarations may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the scenario against `addr` and reports.
pub async fn run(args: &AmqpArgs, addr: &str, pid: Option<u32>) -> Result<Report> {
    if args.size < stats::HEADER_LEN {
        bail!("--size must be at least {} bytes", stats::HEADER_LEN);
    }
    let uri = format!("amqp://{}:{}@{addr}/%2f", args.user, args.password);
    let run_id = format!("{}-{}", std::process::id(), stats::now_ns());
    let queues: Vec<String> = match args.mode {
        AmqpMode::Fanout => (0..args.queues.max(1))
            .map(|i| format!("fmqbench-{run_id}-q{i}"))
            .collect(),
        _ => vec![format!("fmqbench-{run_id}")],
    };
    let exchange = match args.mode {
        AmqpMode::Fanout => format!("fmqbench-{run_id}-fx"),
        _ => String::new(),
    };
    let durable = args.mode == AmqpMode::Confirms;

    let setup = async {
        let pub_conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
        let pub_ch = pub_conn.create_channel().await?;
        if !exchange.is_empty() {
            pub_ch
                .exchange_declare(
                    &exchange,
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        for q in &queues {
            let opts = QueueDeclareOptions {
                durable,
                ..QueueDeclareOptions::default()
            };
            pub_ch.queue_declare(q, opts, FieldTable::default()).await?;
            if !exchange.is_empty() {
                pub_ch
                    .queue_bind(
                        q,
                        &exchange,
                        "",
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        if durable {
            pub_ch
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        let mut consumers = Vec::new();
        for q in &queues {
            // A connection per consumer, so a multi-threaded broker can spread them.
            let conn = Connection::connect(&uri, ConnectionProperties::default()).await?;
            let ch = conn.create_channel().await?;
            ch.basic_qos(args.prefetch, BasicQosOptions::default())
                .await?;
            let consumer = ch
                .basic_consume(
                    q,
                    "fmqbench",
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push((conn, ch, consumer));
        }
        Ok::<_, lapin::Error>((pub_conn, pub_ch, consumers))
    };
    let (pub_conn, pub_ch, consumers) = tokio::time::timeout(SETUP_TIMEOUT, setup)
        .await
        .context("AMQP setup timed out")?
        .context("AMQP setup")?;

    let flow = Flow::new(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut conns = Vec::new();
    for (conn, ch, consumer) in consumers {
        conns.push(conn);
        tasks.push(tokio::spawn(consume(
            ch,
            consumer,
            flow.clone(),
            // Acking less often than the prefetch allows would stall the consumer.
            args.ack_every.clamp(1, u64::from(args.prefetch.max(2)) / 2),
            stop_rx.clone(),
        )));
    }

    let before = pid.map(procstat::sample).transpose()?;
    let start = Instant::now();
    let start_ns = stats::now_ns();
    let deadline = start + args.common.duration;
    let copies = queues.len() as u64;
    let inflight = if durable { args.inflight } else { 0 };
    let mut window = Window::new(args.window, 0, copies);
    let routing_key = if exchange.is_empty() { &queues[0] } else { "" };
    let props = if durable {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default().with_delivery_mode(1)
    };
    let mut payloads = vec![vec![0u8; args.size]; BATCH as usize];
    let mut pending = VecDeque::new();
    let mut sent: u64 = 0;
    let state = &flow.pubs[0];
    while Instant::now() < deadline {
        let mut n = window.wait(state, sent, deadline).await.min(BATCH);
        if n == 0 {
            break;
        }
        if let Some(rate) = args.rate {
            let rate = rate.max(1) as f64;
            let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
            if due <= sent {
                let next = start + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(next.min(deadline).into()).await;
                continue;
            }
            n = n.min(due - sent);
        }
        if inflight > 0 {
            while pending.len() as u64 >= inflight {
                if let Some(c) = pending.pop_front() {
                    check_confirm(c.await?)?;
                }
            }
            n = n.min(inflight - pending.len() as u64);
        }
        let batch = &mut payloads[..n as usize];
        for p in batch.iter_mut() {
            stats::stamp(p, stats::now_ns(), 0);
        }
        let confirms = publish_batch(&pub_ch, &exchange, routing_key, batch, &props).await?;
        sent += n;
        if inflight > 0 {
            pending.extend(confirms);
        }
    }
    for c in pending {
        check_confirm(c.await?)?;
    }
    let expected = sent * copies;
    let drain_deadline = Instant::now() + DRAIN;
    while flow
        .total_delivered
        .load(std::sync::atomic::Ordering::Acquire)
        < expected
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let after = pid.map(procstat::sample).transpose()?;
    let _ = stop_tx.send(true);
    let mut lat = Latency::new();
    for t in tasks {
        lat.merge(&t.await.context("consumer task")??);
    }
    let delivered = flow
        .total_delivered
        .load(std::sync::atomic::Ordering::Acquire);
    let last = flow
        .last_delivery_ns
        .load(std::sync::atomic::Ordering::Acquire);
    let elapsed = Duration::from_nanos(last.saturating_sub(start_ns));

    // Clean up (best effort): the queues hold nothing now, the exchange is ours.
    for q in &queues {
        let _ = pub_ch.queue_delete(q, QueueDeleteOptions::default()).await;
    }
    if !exchange.is_empty() {
        let _ = pub_ch
            .exchange_delete(&exchange, ExchangeDeleteOptions::default())
            .await;
    }
    let _ = pub_conn.close(200, "bench done").await;
    for c in conns {
        let _ = c.close(200, "bench done").await;
    }
    Ok(Report::new(sent, delivered, elapsed, &lat).with_broker(before, after))
}

/// Publishes `payloads` with all publishes in flight at once. lapin's `basic_publish` resolves
/// only once its frames are written, so awaiting publishes one by one costs a round trip to
/// lapin's I/O thread and a socket write per message, which made lapin (not the broker) the
/// bottleneck; polled together, lapin writes the whole batch at once.
async fn publish_batch(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    payloads: &[Vec<u8>],
    props: &BasicProperties,
) -> Result<Vec<PublisherConfirm>> {
    type Publish<'a> = Pin<Box<dyn Future<Output = lapin::Result<PublisherConfirm>> + Send + 'a>>;
    let mut futs: Vec<Publish<'_>> = payloads
        .iter()
        .map(|p| {
            Box::pin(ch.basic_publish(
                exchange,
                routing_key,
                BasicPublishOptions::default(),
                p,
                props.clone(),
            )) as Publish<'_>
        })
        .collect();
    let mut done: Vec<Option<lapin::Result<PublisherConfirm>>> =
        (0..futs.len()).map(|_| None).collect();
    // Polled in order, so lapin queues the frames in publish order.
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (f, slot) in futs.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(r) => *slot = Some(r),
                    Poll::Pending => all = false,
                }
            }
        }
        if all {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter()
        .map(|r| r.expect("every publish completed").map_err(Into::into))
        .collect()
}

fn check_confirm(c: lapin::publisher_confirm::Confirmation) -> Result<()> {
    if c.is_nack() {
        bail!("broker nacked a publish");
    }
    Ok(())
}

/// Consumes until stopped, acking with multiple=true every `ack_every` deliveries.
async fn consume(
    ch: Channel,
    mut consumer: lapin::Consumer,
    flow: Arc<Flow>,
    ack_every: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<Latency> {
    let mut lat = Latency::new();
    let mut tally = Tally::new(1);
    let mut unacked = 0;
    loop {
        let delivery = tokio::select! {
            d = consumer.next() => d,
            _ = stop.changed() => return Ok(lat),
        };
        let Some(delivery) = delivery else {
            bail!("consumer cancelled by the broker");
        };
        let delivery = delivery.context("delivery")?;
        if let Some((sent, publisher)) = stats::read_stamp(&delivery.data) {
            lat.record_since(sent);
            tally.add(publisher);
        }
        unacked += 1;
        if unacked >= ack_every {
            ch.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await?;
            unacked = 0;
        }
        // lapin hands deliveries over one at a time, so the tally is flushed per delivery.
        tally.flush(&flow, stats::now_ns());
    }
}
