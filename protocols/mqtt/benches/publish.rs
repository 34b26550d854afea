//! PUBLISH decode and encode, 64 B and 4 KiB payloads, MQTT 3.1.1 and 5.0 (the 5.0 packet carries
//! a message expiry and a user property, as forwarded messages often do). Decoding runs over a
//! read buffer holding many packets back to back, as a connection sees them, so the reported time
//! is per packet; mqttbytes 0.6 decoding the same bytes is measured alongside as a
//! reference. Run with `cargo bench -p ferromq-mqtt --bench publish`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferromq_mqtt::{decode, encode, Packet, PacketId, Properties, ProtocolVersion, Publish, QoS};

/// Packets per refill of the read buffer while decoding.
const BATCH: u64 = 256;

fn publish(size: usize, version: ProtocolVersion) -> Packet {
    let mut properties = Properties::default();
    if version.is_v5() {
        properties.message_expiry_interval = Some(60);
        properties.user_properties = vec![("source".into(), "bench".into())];
    }
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "sensors/building-7/floor-3/temperature".into(),
        packet_id: PacketId::new(42),
        properties,
        payload: Bytes::from(vec![0xA5; size]),
    })
}

/// Times decoding `iters` packets with `decode_one`, refilling the buffer (untimed) every
/// `BATCH` packets.
fn decode_many<T>(wire: &[u8], iters: u64, decode_one: impl Fn(&mut BytesMut) -> T) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    let mut decoded = Vec::with_capacity(BATCH as usize);
    while left > 0 {
        let n = left.min(BATCH);
        let mut buf = BytesMut::with_capacity(wire.len() * n as usize);
        for _ in 0..n {
            buf.extend_from_slice(wire);
        }
        let start = Instant::now();
        for _ in 0..n {
            decoded.push(decode_one(black_box(&mut buf)));
        }
        total += start.elapsed();
        decoded.clear();
        left -= n;
    }
    total
}

fn bench(c: &mut Criterion) {
    for (version, vname) in [(ProtocolVersion::V311, "v311"), (ProtocolVersion::V5, "v5")] {
        for (size, sname) in [(64, "64B"), (4096, "4KiB")] {
            let packet = publish(size, version);
            let mut wire = BytesMut::new();
            encode(&packet, version, &mut wire).expect("encodes");

            let mut group = c.benchmark_group(format!("publish/{vname}/{sname}"));
            group.throughput(Throughput::Bytes(wire.len() as u64));
            group.bench_function("decode", |b| {
                b.iter_custom(|iters| {
                    decode_many(&wire, iters, |buf| {
                        decode(buf, version, 1 << 20).expect("decodes")
                    })
                })
            });
            // Reference point on the same machine and load: mqttbytes 0.6 reading the same bytes.
            group.bench_function("decode_mqttbytes", |b| {
                b.iter_custom(|iters| {
                    decode_many(&wire, iters, |buf| match version {
                        ProtocolVersion::V5 => {
                            drop(mqttbytes::v5::read(buf, 1 << 20).expect("reads"));
                        }
                        _ => drop(mqttbytes::v4::read(buf, 1 << 20).expect("reads")),
                    })
                })
            });
            let mut out = BytesMut::with_capacity(wire.len());
            group.bench_function("encode", |b| {
                b.iter(|| {
                    out.clear();
                    encode(black_box(&packet), version, &mut out).expect("encodes");
                    black_box(out.len())
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
