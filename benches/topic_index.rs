//! Topic index throughput: matching against 10k filters (exact, `+`, `#`), with the match cache
//! hot and with it disabled, matching from two threads at once, and the cost of a bind/unbind.
//!
//! Run: `cargo bench --bench topic_index`. Topics and filters come from a fixed-seed generator,
//! so runs are comparable.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ferromq::broker::routing_key::{mqtt_levels, parse_mqtt_filter, FilterLevel};
use ferromq::broker::topic_index::TopicIndex;

const FILTERS: usize = 10_000;
const TOPICS: usize = 1_000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// A topic shaped like IoT telemetry: `site/building/floor/device/metric`.
fn topic(rng: &mut Rng) -> String {
    const METRICS: [&str; 4] = ["temp", "humidity", "co2", "status"];
    format!(
        "site{}/b{}/f{}/dev{}/{}",
        rng.below(10),
        rng.below(20),
        rng.below(10),
        rng.below(100),
        METRICS[rng.below(METRICS.len())]
    )
}

/// 70% exact topics, 20% with one or two `+`, 10% ending in `#`.
fn filters(rng: &mut Rng) -> Vec<Vec<FilterLevel>> {
    (0..FILTERS)
        .map(|_| {
            let t = topic(rng);
            let mut levels: Vec<&str> = t.split('/').collect();
            match rng.below(10) {
                0..=6 => {}
                7 | 8 => {
                    levels[1 + rng.below(3)] = "+";
                    if rng.below(2) == 0 {
                        levels[4] = "+";
                    }
                }
                _ => {
                    let keep = 1 + rng.below(3);
                    levels.truncate(keep);
                    levels.push("#");
                }
            }
            parse_mqtt_filter(&levels.join("/"))
        })
        .collect()
}

fn build(cache_capacity: usize) -> (TopicIndex<u32>, Vec<String>) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let index = TopicIndex::new(cache_capacity);
    for (value, filter) in filters(&mut rng).iter().enumerate() {
        index.insert(filter, value as u32);
    }
    let topics = (0..TOPICS).map(|_| topic(&mut rng)).collect();
    (index, topics)
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("match");
    group.throughput(Throughput::Elements(TOPICS as u64));
    for (name, capacity) in [("cached", 4 * TOPICS), ("uncached", 0)] {
        let (index, topics) = build(capacity);
        for t in &topics {
            index.matches(&mqtt_levels(t)); // warm the cache
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                for t in &topics {
                    black_box(index.matches(&mqtt_levels(t)));
                }
            })
        });
    }
    // Two threads (both cores) matching cached topics at once: the cache's locking under
    // contention.
    let (index, topics) = build(4 * TOPICS);
    let index = Arc::new(index);
    let topics = Arc::new(topics);
    group.throughput(Throughput::Elements(2 * TOPICS as u64));
    group.bench_function("cached_2_threads", |b| {
        b.iter_custom(|iters| contended(&index, &topics, iters))
    });
    group.finish();
}

/// Time for two threads to each match every topic `iters` times.
fn contended(index: &Arc<TopicIndex<u32>>, topics: &Arc<Vec<String>>, iters: u64) -> Duration {
    let start = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (index, topics, start) = (index.clone(), topics.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..iters {
                    // Different starting points so the threads are not in lockstep.
                    for t in topics
                        .iter()
                        .skip(w * TOPICS / 2)
                        .chain(topics.iter())
                        .take(TOPICS)
                    {
                        black_box(index.matches(&mqtt_levels(t)));
                    }
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for worker in workers {
        worker.join().expect("bench worker panicked");
    }
    began.elapsed()
}

fn churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn");
    let (index, _) = build(4 * TOPICS);
    let exact = parse_mqtt_filter("site3/b7/f2/dev42/temp");
    let wildcard = parse_mqtt_filter("site3/b7/+/dev42/#");
    for (name, filter) in [
        ("insert_remove_exact", exact),
        ("insert_remove_wildcard", wildcard),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || filter.clone(),
                |filter| {
                    assert!(index.insert(&filter, u32::MAX));
                    assert!(index.remove(&filter, &u32::MAX));
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, matching, churn);
criterion_main!(benches);
