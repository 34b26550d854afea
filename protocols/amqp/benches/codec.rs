//! The AMQP hot paths: decoding a publish (basic.publish method frame + content header with
//! typical properties + 64 B body frame) and encoding a delivery (`encode_deliver`, 64 B and
//! 4 KiB bodies). Decoding runs over a read buffer holding many publishes back to back, as a
//! connection sees them, so the time is per message (three frames); amq-protocol 8 parsing the
//! same bytes is measured alongside as a reference. Before timing, each path's allocations per
//! message are counted and printed (and must be zero for the encode path).
//! Run with `cargo bench -p ferromq-amqp --bench codec`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ferromq_amqp::*;

struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Messages per refill of the read buffer while decoding.
const BATCH: u64 = 256;
const FRAME_MAX: u32 = 131_072;

fn ss(s: &'static str) -> ShortString {
    ShortString::from_static(s)
}

fn properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(ss("application/json")),
        delivery_mode: Some(2),
        message_id: Some(ss("7f3c2a9e-0001")),
        timestamp: Some(1_700_000_000),
        app_id: Some(ss("sensor-gateway")),
        ..Default::default()
    }
}

fn publish_wire(body_len: usize) -> Vec<u8> {
    let publish = BasicPublish {
        exchange: ss("amq.topic"),
        routing_key: ss("sensors.building-7.floor-3.temperature"),
        mandatory: false,
        immediate: false,
    };
    let mut out = BytesMut::new();
    encode_content(
        &mut out,
        ChannelId(1),
        ContentMethod::Publish(&publish),
        &properties(),
        &vec![0xA5; body_len],
        FRAME_MAX,
    )
    .expect("encodes");
    out.to_vec()
}

/// Decodes one publish (method, header, body) and drops it, as a broker consumes frames one by
/// one; returns the body length so nothing is optimised away.
fn decode_publish(buf: &mut BytesMut) -> usize {
    let mut body_len = 0;
    for _ in 0..3 {
        let frame = decode_frame(buf, FRAME_MAX)
            .expect("decodes")
            .expect("complete");
        if let Frame::Body(_, body) = black_box(&frame) {
            body_len = body.len();
        }
    }
    body_len
}

/// Times `iters` messages with `decode_one`, refilling the buffer (untimed) every `BATCH`.
fn decode_many(
    wire: &[u8],
    iters: u64,
    mut decode_one: impl FnMut(&mut BytesMut) -> usize,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let mut buf = BytesMut::with_capacity(wire.len() * n as usize);
        for _ in 0..n {
            buf.extend_from_slice(wire);
        }
        let start = Instant::now();
        for _ in 0..n {
            black_box(decode_one(black_box(&mut buf)));
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// amq-protocol reading the same three frames (it needs the bytes as a slice).
fn decode_publish_amq(buf: &mut BytesMut) -> usize {
    let mut rest: &[u8] = &buf[..];
    let mut n = 0;
    for _ in 0..3 {
        let (r, frame) = amq_protocol::frame::parse_frame(rest).expect("parses");
        rest = r;
        if let amq_protocol::frame::AMQPFrame::Body(_, body) = black_box(&frame) {
            n = body.len();
        }
    }
    let used = buf.len() - rest.len();
    let _ = buf.split_to(used);
    n
}

fn deliver() -> BasicDeliver {
    BasicDeliver {
        consumer_tag: ss("amq.ctag-Kx2rYq0Qn8JrDw"),
        delivery_tag: DeliveryTag(12_345),
        redelivered: false,
        exchange: ss("amq.topic"),
        routing_key: ss("sensors.building-7.floor-3.temperature"),
    }
}

/// Allocations per message of each measured path, printed before timing.
fn report_allocations() {
    let wire = publish_wire(64);
    let mut buf = BytesMut::with_capacity(wire.len() * 1000);
    for _ in 0..1000 {
        buf.extend_from_slice(&wire);
    }
    let before = allocations();
    for _ in 0..1000 {
        black_box(decode_publish(&mut buf));
    }
    let decode = allocations() - before;
    println!("allocations: publish decode (64 B): {decode} per 1000 messages");
    assert!(decode <= 1, "publish decode allocates per message");

    for size in [64, 4096] {
        let body = vec![0x5A; size];
        let (d, p) = (deliver(), properties());
        let mut out = BytesMut::with_capacity(size + 512);
        let before = allocations();
        for _ in 0..1000 {
            out.clear();
            encode_deliver(&mut out, ChannelId(1), &d, &p, &body, FRAME_MAX).expect("encodes");
        }
        let encode = allocations() - before;
        println!("allocations: deliver encode ({size} B): {encode} per 1000 messages");
        assert_eq!(encode, 0, "deliver encode allocates");
    }
}

fn bench(c: &mut Criterion) {
    report_allocations();

    let wire = publish_wire(64);
    let mut group = c.benchmark_group("publish_64B");
    group.bench_function("decode", |b| {
        b.iter_custom(|iters| decode_many(&wire, iters, decode_publish))
    });
    group.bench_function("decode_amq_protocol", |b| {
        b.iter_custom(|iters| decode_many(&wire, iters, decode_publish_amq))
    });
    group.finish();

    let (d, p) = (deliver(), properties());
    for (size, name) in [(64, "deliver_64B"), (4096, "deliver_4KiB")] {
        let body = vec![0x5A; size];
        let mut out = BytesMut::with_capacity(size + 512);
        let mut group = c.benchmark_group(name);
        group.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                encode_deliver(
                    &mut out,
                    ChannelId(1),
                    black_box(&d),
                    black_box(&p),
                    black_box(&body),
                    FRAME_MAX,
                )
                .expect("encodes");
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // Short runs: the bench shares a 2-core machine with builds and other benches.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
