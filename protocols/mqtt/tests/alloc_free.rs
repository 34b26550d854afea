//! Allocation checks with a counting global allocator: encoding a PUBLISH grows `out` at most once
//! and allocates nothing else; `encoded_len` allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use ferromq_mqtt::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

fn publish() -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b/c".into(),
        packet_id: PacketId::new(1),
        properties: Properties {
            message_expiry_interval: Some(5),
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into()), ("k2".into(), "v2".into())],
            subscription_identifiers: vec![3, 70_000],
            ..Properties::default()
        },
        payload: Bytes::from(vec![1u8; 5000]),
    })
}

// One test function: the counter is process-wide, so parallel tests would disturb each other.
#[test]
fn publish_encoding_allocates_only_to_grow_the_output() {
    let p = publish();
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        assert_eq!(allocations_during(|| drop(encoded_len(&p, v))), 0, "{v:?}");

        let len = encoded_len(&p, v).unwrap();
        let mut roomy = BytesMut::with_capacity(len);
        assert_eq!(
            allocations_during(|| encode(&p, v, &mut roomy).unwrap()),
            0,
            "{v:?}"
        );
        assert_eq!(roomy.len(), len);

        let mut empty = BytesMut::new();
        assert_eq!(
            allocations_during(|| encode(&p, v, &mut empty).unwrap()),
            1,
            "{v:?}"
        );
        assert_eq!(empty.len(), len);
    }
}
