//! The hot paths allocate nothing per message: decoding basic.publish + content header + body
//! from a read buffer (short strings and the body are slices of it), and `encode_deliver` into
//! a buffer that already has room. Counted with a global allocator that tallies this thread's
//! allocations, so the test harness's own threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use ferromq_amqp::*;

struct CountingAlloc;

thread_local! {
    // const-initialised and without a destructor: safe to touch from inside the allocator.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
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

fn ss(s: &'static str) -> ShortString {
    ShortString::from_static(s)
}

fn publish_wire(body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let publish = BasicPublish {
        exchange: ss("amq.topic"),
        routing_key: ss("sensors.building-7.temperature"),
        mandatory: false,
        immediate: false,
    };
    let props = BasicProperties {
        content_type: Some(ss("application/octet-stream")),
        delivery_mode: Some(2),
        message_id: Some(ss("msg-0001")),
        timestamp: Some(1_700_000_000),
        ..Default::default()
    };
    encode_content(
        &mut out,
        ChannelId(1),
        ContentMethod::Publish(&publish),
        &props,
        body,
        131_072,
    )
    .expect("encodes");
    out.to_vec()
}

#[test]
fn decoding_publish_allocates_nothing_per_message() {
    const MESSAGES: usize = 1000;
    let wire = publish_wire(&[0xA5; 64]);
    let mut buf = BytesMut::with_capacity(wire.len() * MESSAGES);
    for _ in 0..MESSAGES {
        buf.extend_from_slice(&wire);
    }
    let before = allocations();
    let mut frames = 0;
    while let Some(frame) = decode_frame(&mut buf, 131_072).expect("decodes") {
        // Look at the fields so nothing is optimised away, then drop the frame.
        match &frame {
            Frame::Method(_, Method::BasicPublish(p)) => assert_eq!(p.exchange, "amq.topic"),
            Frame::Header(_, h) => assert_eq!(h.body_size, 64),
            Frame::Body(_, b) => assert_eq!(b.len(), 64),
            other => panic!("unexpected {other:?}"),
        }
        frames += 1;
    }
    let spent = allocations() - before;
    assert_eq!(frames, 3 * MESSAGES);
    // The first split turns the read buffer into a shared one (one allocation for its
    // reference count); after that, every frame is a reference-counted slice.
    assert!(spent <= 1, "{spent} allocations for {MESSAGES} publishes");
}

#[test]
fn encode_deliver_allocates_nothing_into_a_reserved_buffer() {
    let deliver = BasicDeliver {
        consumer_tag: ss("amq.ctag-f3b2"),
        delivery_tag: DeliveryTag(1),
        redelivered: false,
        exchange: ss("amq.topic"),
        routing_key: ss("sensors.building-7.temperature"),
    };
    let props = BasicProperties {
        content_type: Some(ss("application/octet-stream")),
        delivery_mode: Some(2),
        ..Default::default()
    };
    for body in [vec![0x5A; 64], vec![0x5A; 4096], vec![0x5A; 300_000]] {
        let mut out = BytesMut::with_capacity(body.len() + 1024);
        let before = allocations();
        for _ in 0..100 {
            out.clear();
            encode_deliver(&mut out, ChannelId(1), &deliver, &props, &body, 131_072)
                .expect("encodes");
        }
        let spent = allocations() - before;
        assert_eq!(
            spent,
            0,
            "{} allocations for a {}-byte body",
            spent,
            body.len()
        );
    }
}
