//! Topic index tests: matching semantics, cache invalidation, pruning, concurrency, and a
//! proptest against brute-force `filter_matches`.

use super::super::routing_key::{
    filter_matches, mqtt_levels, parse_amqp_binding_key, parse_mqtt_filter,
};
use super::*;
use proptest::prelude::*;
use std::thread;

fn sorted<T: Clone + Ord>(values: Arc<[T]>) -> Vec<T> {
    let mut v = values.to_vec();
    v.sort();
    v
}

fn hits(index: &TopicIndex<u32>, topic: &str) -> Vec<u32> {
    sorted(index.matches(&mqtt_levels(topic)))
}

/// What `matches` must return, by brute force over the (filter, value) pairs.
fn expected<V: Copy + Ord>(model: &HashSet<(Vec<FilterLevel>, V)>, topic: &[&str]) -> Vec<V> {
    let matching = model.iter().filter(|(f, _)| filter_matches(f, topic));
    let mut values: Vec<V> = matching.map(|(_, v)| *v).collect();
    values.sort_unstable();
    values
}

fn index_with(filters: &[(&str, u32)]) -> TopicIndex<u32> {
    let index = TopicIndex::new(64);
    for (filter, value) in filters {
        assert!(index.insert(&parse_mqtt_filter(filter), *value));
    }
    index
}

#[test]
fn exact_and_single_level_wildcards() {
    let index = index_with(&[("a/b", 1), ("a/+", 2), ("+/b", 3), ("a/b/c", 4), ("+", 5)]);
    assert_eq!(hits(&index, "a/b"), [1, 2, 3]);
    assert_eq!(hits(&index, "a/x"), [2]);
    assert_eq!(hits(&index, "a"), [5]);
    assert_eq!(hits(&index, "a/b/c"), [4]);
    assert_eq!(hits(&index, "x/y/z"), Vec::<u32>::new());
    assert_eq!(hits(&index, "a//b"), Vec::<u32>::new());
}

#[test]
fn multi_level_wildcard_in_any_position() {
    let index = index_with(&[("a/#", 1), ("#", 2)]);
    let amqp = [("#.b", 3), ("a.#.c", 4), ("#.#", 5)];
    for (key, value) in amqp {
        assert!(index.insert(&parse_amqp_binding_key(key), value));
    }
    assert_eq!(hits(&index, "a"), [1, 2, 5]); // `a/#` matches its parent level
    assert_eq!(hits(&index, "a/b"), [1, 2, 3, 5]);
    assert_eq!(hits(&index, "a/c"), [1, 2, 4, 5]);
    assert_eq!(hits(&index, "a/x/y/c"), [1, 2, 4, 5]);
    assert_eq!(hits(&index, "x/b"), [2, 3, 5]);
    assert_eq!(hits(&index, "b"), [2, 3, 5]);
}

#[test]
fn dollar_topics_skip_leading_wildcards() {
    // [MQTT-4.7.2-1]
    let index = index_with(&[("#", 1), ("+/info", 2), ("$SYS/#", 3), ("$SYS/info", 4)]);
    assert!(index.insert(&parse_amqp_binding_key("#.info"), 5));
    assert_eq!(hits(&index, "$SYS/info"), [3, 4]);
    assert_eq!(hits(&index, "$SYS"), [3]);
    assert_eq!(hits(&index, "sys/info"), [1, 2, 5]);
    assert_eq!(hits(&index, "a/$SYS"), [1]);
}

#[test]
fn values_are_per_filter_and_pairs_are_unique() {
    let index = index_with(&[("a/b", 1), ("a/b", 2), ("a/+", 1), ("a/#", 1)]);
    assert!(!index.insert(&parse_mqtt_filter("a/b"), 1));
    assert!(!index.insert(&parse_mqtt_filter("a/+"), 1));
    assert_eq!(index.len(), 4);
    // Value 1 is bound through three matching filters and comes back three times.
    assert_eq!(hits(&index, "a/b"), [1, 1, 1, 2]);
}

#[test]
fn remove_prunes_and_reports() {
    let index = index_with(&[("a/+/c", 1), ("a/+/c", 2), ("a/+", 3), ("x/y", 4)]);
    let a_plus_c = parse_mqtt_filter("a/+/c");
    assert!(!index.remove(&a_plus_c, &9));
    assert!(!index.remove(&parse_mqtt_filter("a/+/d"), &1));
    assert!(index.remove(&a_plus_c, &1));
    assert!(!index.remove(&a_plus_c, &1));
    assert_eq!(hits(&index, "a/b/c"), [2]);
    assert!(index.remove(&a_plus_c, &2));
    {
        // `a/+` still needs `a` and `+`; the `c` below it is gone.
        let bindings = index.bindings.read();
        let plus = bindings.root.literal["a"].one.as_deref().unwrap();
        assert!(plus.literal.is_empty());
        assert_eq!(plus.values.len(), 1);
    }
    assert!(index.remove(&parse_mqtt_filter("a/+"), &3));
    assert!(index.remove(&parse_mqtt_filter("x/y"), &4));
    assert!(index.is_empty());
    let bindings = index.bindings.read();
    assert!(bindings.root.is_empty());
    assert!(bindings.exact.is_empty());
    assert_eq!(bindings.inner_many, 0);
}

#[test]
fn churn_does_not_grow_the_trie() {
    let index = TopicIndex::new(16);
    for round in 0..1000u32 {
        let filter = parse_mqtt_filter(&format!("c/{round}/+/#"));
        assert!(index.insert(&filter, round));
        assert_eq!(hits(&index, &format!("c/{round}/x")), [round]);
        assert!(index.remove(&filter, &round));
    }
    assert!(index.bindings.read().root.is_empty());
}

#[test]
fn cache_never_serves_results_older_than_a_change() {
    let index = index_with(&[("a/+", 1)]);
    assert_eq!(hits(&index, "a/b"), [1]);
    assert_eq!(hits(&index, "a/b"), [1]); // now cached
    assert!(index.insert(&parse_mqtt_filter("a/b"), 2));
    assert_eq!(hits(&index, "a/b"), [1, 2]);
    assert!(index.insert(&parse_mqtt_filter("#"), 3));
    assert_eq!(hits(&index, "a/b"), [1, 2, 3]);
    assert!(index.remove(&parse_mqtt_filter("a/+"), &1));
    assert_eq!(hits(&index, "a/b"), [2, 3]);
    assert!(index.remove(&parse_mqtt_filter("a/b"), &2));
    assert_eq!(hits(&index, "a/b"), [3]);
    // Cached empty results are invalidated too.
    assert_eq!(hits(&index, "$x"), Vec::<u32>::new());
    assert!(index.insert(&parse_mqtt_filter("$x"), 4));
    assert_eq!(hits(&index, "$x"), [4]);
}

#[test]
fn late_results_of_older_generations_are_not_cached() {
    // The race: a miss computes at generation 0, a change bumps to 1 and a lookup at 1 runs,
    // then the miss stores its generation-0 result.
    let cache = MatchCache::<u32>::new(8);
    assert!(cache.get(7, &["a"], 1).is_none());
    cache.put(7, &["a"], 0, Arc::from(vec![1]));
    assert!(cache.get(7, &["a"], 1).is_none());
    cache.put(7, &["a"], 1, Arc::from(vec![2]));
    assert_eq!(cache.get(7, &["a"], 1).as_deref(), Some(&[2][..]));
    assert!(cache.get(7, &["b"], 1).is_none(), "same hash, other topic");
}

#[test]
fn cache_stays_within_capacity() {
    let index = index_with(&[("#", 1)]);
    for i in 0..1000 {
        assert_eq!(hits(&index, &format!("t/{i}")), [1]);
    }
    let shards = index.cache.shards.iter();
    let cached: usize = shards.map(|s| s.0.lock().entries.len()).sum();
    assert!(cached <= 64, "{cached} entries cached");
    let disabled = TopicIndex::new(0);
    assert!(disabled.insert(&parse_mqtt_filter("a"), 1u32));
    assert_eq!(hits(&disabled, "a"), [1]);
    assert!(disabled.cache.shards.is_empty());
}

#[test]
fn deep_filters_and_topics_do_not_recurse() {
    // MQTT allows ~65k levels; the walk, remove and drop must not use the call stack for it.
    let deep = "a/".repeat(70_000);
    let index = TopicIndex::new(4);
    let filter = parse_mqtt_filter(&format!("{deep}#"));
    assert!(index.insert(&filter, 1u32));
    assert!(index.insert(&parse_mqtt_filter(&format!("{deep}+")), 2));
    assert_eq!(hits(&index, &format!("{deep}x")), [1, 2]);
    assert!(index.remove(&filter, &1));
    drop(index);
}

#[test]
fn concurrent_readers_and_writers_agree() {
    // Writer `w` binds values w*1000 + (0..50): even ones through `s/#`, odd ones through
    // `s/x/t`, and removes two binds out of three. Value 0 stays bound through `s/+/t`.
    let script = |w: u32| {
        (0..2000u32).map(move |i| {
            let filter = parse_mqtt_filter(if i % 2 == 0 { "s/#" } else { "s/x/t" });
            (filter, w * 1000 + i % 50, i % 3 != 0)
        })
    };
    let index = Arc::new(index_with(&[("s/+/t", 0)]));
    let mut threads = Vec::new();
    for w in 1..=2 {
        let index = Arc::clone(&index);
        threads.push(thread::spawn(move || {
            for (filter, value, then_remove) in script(w) {
                index.insert(&filter, value);
                if then_remove {
                    index.remove(&filter, &value);
                }
            }
        }));
    }
    for r in 0..3 {
        let index = Arc::clone(&index);
        threads.push(thread::spawn(move || {
            for i in 0..5000 {
                let topic = if (i + r) % 2 == 0 { "s/x/t" } else { "s/y/t" };
                let found = index.matches(&mqtt_levels(topic));
                // Value 0 is always there once; no value is bound through two matching
                // filters, so none repeats; `s/y/t` only reaches `s/#` (even values).
                assert_eq!(found.iter().filter(|v| **v == 0).count(), 1);
                assert_eq!(found.iter().collect::<HashSet<_>>().len(), found.len());
                assert!(found.iter().all(|v| topic == "s/x/t" || v % 2 == 0));
            }
        }));
    }
    for handle in threads {
        handle.join().expect("thread panicked");
    }
    // Replaying each writer's script alone gives the final state (their values are disjoint).
    let mut model = HashSet::from([(parse_mqtt_filter("s/+/t"), 0)]);
    for (filter, value, then_remove) in (1..=2).flat_map(script) {
        model.insert((filter.clone(), value));
        if then_remove {
            model.remove(&(filter, value));
        }
    }
    assert_eq!(index.len(), model.len());
    for topic in ["s/x/t", "s/y/t", "s", "s/x"] {
        assert_eq!(hits(&index, topic), expected(&model, &mqtt_levels(topic)));
    }
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<TopicIndex<Arc<str>>>();
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<FilterLevel>, u8),
    Remove(Vec<FilterLevel>, u8),
    Match(Vec<&'static str>),
}

/// Few distinct levels, so filters overlap, repeat and get removed often.
const LEVELS: [&str; 4] = ["a", "b", "$s", ""];

fn op_strategy() -> impl Strategy<Value = Op> {
    let level = prop_oneof![
        3 => prop::sample::select(&LEVELS[..]).prop_map(|s| FilterLevel::Literal(s.into())),
        1 => Just(FilterLevel::One),
        1 => Just(FilterLevel::Many),
    ];
    let filter = prop::collection::vec(level, 1..5);
    prop_oneof![
        3 => (filter.clone(), 0..4u8).prop_map(|(f, v)| Op::Insert(f, v)),
        2 => (filter, 0..4u8).prop_map(|(f, v)| Op::Remove(f, v)),
        4 => prop::collection::vec(prop::sample::select(&LEVELS[..]), 1..5).prop_map(Op::Match),
    ]
}

proptest! {
    #[test]
    fn matches_agree_with_brute_force(
        ops in prop::collection::vec(op_strategy(), 1..60),
        capacity in prop::sample::select(vec![0usize, 3, 64]),
    ) {
        let index = TopicIndex::new(capacity);
        let mut model: HashSet<(Vec<FilterLevel>, u8)> = HashSet::new();
        for op in ops {
            match op {
                Op::Insert(f, v) => {
                    prop_assert_eq!(index.insert(&f, v), model.insert((f, v)));
                }
                Op::Remove(f, v) => {
                    prop_assert_eq!(index.remove(&f, &v), model.remove(&(f, v)));
                }
                Op::Match(topic) => {
                    prop_assert_eq!(sorted(index.matches(&topic)), expected(&model, &topic));
                }
            }
            prop_assert_eq!(index.len(), model.len());
        }
        for (f, v) in model {
            prop_assert!(index.remove(&f, &v));
        }
        let bindings = index.bindings.read();
        prop_assert!(bindings.root.is_empty() && bindings.exact.is_empty());
    }
}
