//! Topic index: maps routing-key levels to the values (bindings) whose filters match them.
//!
//! Owns: the binding trie for wildcard filters, the exact-match map for filters without
//! wildcards, and the bounded match cache. Must not touch: wire types, protocol spellings (filters
//! arrive as [`FilterLevel`]s, topics as levels in MQTT form, see `routing_key`), delivery, and
//! anything async: every method is synchronous and holds its locks only for the call, so no lock
//! is ever held across `.await`.
//!
//! Read-mostly: every publish routes inline on its connection's task through [`TopicIndex::matches`],
//! while binds and unbinds are rare. Hence one `parking_lot::RwLock` over the bindings (readers run
//! in parallel; writers are short) and a cache in front of it that answers repeated topics without
//! touching that lock at all.
//!
//! Cache validity: a generation counter is bumped, under the write lock, by every insert or remove
//! that changes the bindings. A result is cached together with the generation it was computed at
//! (read under the read lock, so the two agree), and a lookup only serves entries of the current
//! generation. Hence once `insert`/`remove` has returned, no result computed before it is served.
//! Invalidation is coarse (any change invalidates every entry), which suits read-mostly use.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::routing_key::{literal_levels, FilterLevel};

/// Number of independently locked cache shards, chosen by topic hash. Every hit writes its
/// shard's lock word: with one lock, two publishing cores queue behind each other on every hit;
/// with shards on separate cache lines they rarely collide. Measured on the 2-core dev VM (10k
/// filters, 2 threads matching cached topics, aggregate ns per match, best of 15 runs; one thread
/// alone is ~97): one lock 88, 8 hash shards 67, one shard per thread 47. Per-thread shards were
/// not taken: tasks migrate between workers, so each worker's shard needs the whole working set
/// (halving the useful capacity), and without a CPU id two workers can still share a shard.
const CACHE_SHARDS: usize = 8;

/// Maps filters to values and answers "which values match this topic".
///
/// `T` is a binding handle: cheap to clone (typically an `Arc` or a small id) and compared by
/// identity. Use behind an `Arc`; all methods take `&self`.
pub struct TopicIndex<T> {
    bindings: RwLock<Bindings<T>>,
    /// Bumped (under the write lock) by every change to `bindings`.
    generation: AtomicU64,
    cache: MatchCache<T>,
    /// Keys the hashes of topics and exact filters. Seeded per index, because topics are chosen
    /// by peers and a fixed hash would let them flood one bucket.
    hasher: RandomState,
    /// Number of bindings, kept beside the lock's own count for lock-free `len`.
    bound: AtomicUsize,
    /// Apply [MQTT-4.7.2-1] (wildcard-first filters skip `$` topics). MQTT needs it; AMQP
    /// topic exchanges (RabbitMQ) do not have it.
    dollar_rule: bool,
}

impl<T> TopicIndex<T>
where
    T: Clone + Eq + Hash + Send + Sync,
{
    /// An empty index whose match cache keeps at most `cache_capacity` topics (0 disables it).
    ///
    /// The cache is split into shards by topic hash; a full shard is emptied before it takes a new
    /// entry, which keeps hits free of eviction bookkeeping.
    pub fn new(cache_capacity: usize) -> Self {
        Self::with_dollar_rule(cache_capacity, true)
    }

    /// Like [`TopicIndex::new`], choosing whether wildcard-first filters skip `$` topics.
    pub fn with_dollar_rule(cache_capacity: usize, dollar_rule: bool) -> Self {
        TopicIndex {
            bindings: RwLock::new(Bindings {
                root: Node::default(),
                exact: HashMap::default(),
                len: 0,
                inner_many: 0,
            }),
            generation: AtomicU64::new(0),
            cache: MatchCache::new(cache_capacity),
            hasher: RandomState::new(),
            bound: AtomicUsize::new(0),
            dollar_rule,
        }
    }

    /// Binds `value` through `filter`. Returns false (and changes nothing) if exactly this
    /// (filter, value) pair was already bound.
    pub fn insert(&self, filter: &[FilterLevel], value: T) -> bool {
        let mut bindings = self.bindings.write();
        let added = match literal_levels(filter) {
            Some(levels) => {
                let hash = self.hash_levels(levels.iter().copied());
                bindings.insert_exact(hash, &levels, value)
            }
            None => bindings.root.insert(filter, value),
        };
        if added {
            bindings.len += 1;
            self.bound.store(bindings.len, Ordering::Release);
            if has_inner_many(filter) {
                bindings.inner_many += 1;
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        added
    }

    /// Unbinds `value` from `filter`, pruning trie nodes left empty. Returns false if the pair
    /// was not bound.
    pub fn remove(&self, filter: &[FilterLevel], value: &T) -> bool {
        let mut bindings = self.bindings.write();
        let removed = match literal_levels(filter) {
            Some(levels) => {
                let hash = self.hash_levels(levels.iter().copied());
                bindings.remove_exact(hash, &levels, value)
            }
            None => bindings.root.remove(filter, value),
        };
        if removed {
            bindings.len -= 1;
            self.bound.store(bindings.len, Ordering::Release);
            if has_inner_many(filter) {
                bindings.inner_many -= 1;
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    /// The values bound through filters matching `topic` (levels in MQTT form).
    ///
    /// A value appears once per distinct matching filter it is bound through: bound with `a/+`
    /// and `a/#`, it appears twice for `a/b`, and the caller merges overlapping subscriptions.
    /// Order is unspecified. Filters with a wildcard first level do not match topics whose first
    /// level starts with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: &[&str]) -> Arc<[T]> {
        let hash = self.hash_levels(topic.iter().copied());
        if self.cache.enabled() {
            // Loaded before the cache lookup: a change that completes after this load is
            // concurrent with this call, so serving the older result is still linearizable.
            let generation = self.generation.load(Ordering::Acquire);
            if let Some(hit) = self.cache.get(hash, topic, generation) {
                return hit;
            }
        }
        let (found, generation) = {
            let bindings = self.bindings.read();
            // Read under the read lock, so it names exactly the state `found` was computed from.
            let generation = self.generation.load(Ordering::Acquire);
            (bindings.collect(hash, topic, self.dollar_rule), generation)
        };
        // Even an empty result gets its own `Arc` (16 bytes, only when computed): one shared empty
        // `Arc` would be a reference count that every core writes on every unmatched publish.
        let result: Arc<[T]> = Arc::from(found);
        if self.cache.enabled() {
            self.cache.put(hash, topic, generation, Arc::clone(&result));
        }
        result
    }

    /// Number of (filter, value) bindings.
    pub fn len(&self) -> usize {
        // Mirrored outside the lock: routing asks on every publish and must not take it.
        self.bound.load(Ordering::Acquire)
    }

    /// True if nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hash of a level sequence. Each level is terminated by 0xFF, a byte UTF-8 never contains,
    /// so the encoding is prefix-free (`["a/b"]` and `["a", "b"]` differ).
    fn hash_levels<'a>(&self, levels: impl Iterator<Item = &'a str>) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        for level in levels {
            hasher.write(level.as_bytes());
            hasher.write_u8(0xff);
        }
        hasher.finish()
    }
}

impl<T> fmt::Debug for TopicIndex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicIndex")
            .field("bindings", &self.bindings.read().len)
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Everything behind the lock.
struct Bindings<T> {
    /// Filters with at least one wildcard.
    root: Node<T>,
    /// Filters without wildcards, by level hash; the vector holds the rare hash collisions.
    exact: HashMap<u64, Vec<ExactEntry<T>>, BuildHasherDefault<IdentityHasher>>,
    /// Number of (filter, value) pairs.
    len: usize,
    /// Bindings with a `#` before their last level (AMQP only). While there are none, no trie node
    /// can be reached twice in one walk, so the walk skips duplicate tracking.
    inner_many: usize,
}

struct ExactEntry<T> {
    levels: EncodedLevels,
    values: HashSet<T>,
}

impl<T: Clone + Eq + Hash> Bindings<T> {
    fn insert_exact(&mut self, hash: u64, levels: &[&str], value: T) -> bool {
        let bucket = self.exact.entry(hash).or_default();
        match bucket.iter_mut().find(|e| e.levels.is(levels)) {
            Some(entry) => entry.values.insert(value),
            None => {
                bucket.push(ExactEntry {
                    levels: EncodedLevels::new(levels),
                    values: HashSet::from([value]),
                });
                true
            }
        }
    }

    fn remove_exact(&mut self, hash: u64, levels: &[&str], value: &T) -> bool {
        let Some(bucket) = self.exact.get_mut(&hash) else {
            return false;
        };
        let Some(at) = bucket.iter().position(|e| e.levels.is(levels)) else {
            return false;
        };
        if !bucket[at].values.remove(value) {
            return false;
        }
        if bucket[at].values.is_empty() {
            bucket.swap_remove(at);
            if bucket.is_empty() {
                self.exact.remove(&hash);
            }
        }
        true
    }

    /// Every value whose filter matches `topic`, once per filter.
    fn collect(&self, hash: u64, topic: &[&str], dollar_rule: bool) -> Vec<T> {
        let mut out = Vec::new();
        if let Some(bucket) = self.exact.get(&hash) {
            if let Some(entry) = bucket.iter().find(|e| e.levels.is(topic)) {
                out.extend(entry.values.iter().cloned());
            }
        }
        if !self.root.is_empty() {
            self.root
                .walk(topic, self.inner_many > 0, dollar_rule, &mut out);
        }
        out
    }
}

/// A trie node: the filter prefix spelled by the path from the root.
struct Node<T> {
    literal: HashMap<Box<str>, Node<T>>,
    one: Option<Box<Node<T>>>,
    many: Option<Box<Node<T>>>,
    /// Values bound through exactly the filter this node ends.
    values: HashSet<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
            one: None,
            many: None,
            values: HashSet::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.values.is_empty() && self.child_count() == 0
    }

    fn child_count(&self) -> usize {
        self.literal.len() + usize::from(self.one.is_some()) + usize::from(self.many.is_some())
    }

    fn child(&self, level: &FilterLevel) -> Option<&Node<T>> {
        match level {
            FilterLevel::Literal(s) => self.literal.get(s.as_str()),
            FilterLevel::One => self.one.as_deref(),
            FilterLevel::Many => self.many.as_deref(),
        }
    }

    fn child_mut(&mut self, level: &FilterLevel) -> Option<&mut Node<T>> {
        match level {
            FilterLevel::Literal(s) => self.literal.get_mut(s.as_str()),
            FilterLevel::One => self.one.as_deref_mut(),
            FilterLevel::Many => self.many.as_deref_mut(),
        }
    }

    fn detach_child(&mut self, level: &FilterLevel) {
        match level {
            FilterLevel::Literal(s) => drop(self.literal.remove(s.as_str())),
            FilterLevel::One => self.one = None,
            FilterLevel::Many => self.many = None,
        }
    }

    /// Moves every child into `out`; used to drop deep tries without recursion.
    fn drain_children(&mut self, out: &mut Vec<Node<T>>) {
        out.extend(self.literal.drain().map(|(_, node)| node));
        out.extend(self.one.take().map(|node| *node));
        out.extend(self.many.take().map(|node| *node));
    }
}

impl<T: Clone + Eq + Hash> Node<T> {
    /// Iterative, like everything here that follows a filter or topic: MQTT allows 65,535-byte
    /// topics, i.e. up to 65,536 levels, deeper than a task's stack could recurse.
    fn insert(&mut self, filter: &[FilterLevel], value: T) -> bool {
        let mut node = self;
        for level in filter {
            node = match level {
                FilterLevel::Literal(s) => node.literal.entry(s.as_str().into()).or_default(),
                FilterLevel::One => node.one.get_or_insert_with(Box::default),
                FilterLevel::Many => node.many.get_or_insert_with(Box::default),
            };
        }
        node.values.insert(value)
    }

    fn remove(&mut self, filter: &[FilterLevel], value: &T) -> bool {
        // First pass (shared): find the node, and the deepest node on the path that must stay
        // once the value is gone; everything below it on the path becomes empty and is pruned.
        let mut node: &Node<T> = self;
        let mut keep = 0; // number of levels from the root to the last node that stays
        for (depth, level) in filter.iter().enumerate() {
            if !node.values.is_empty() || node.child_count() > 1 {
                keep = depth;
            }
            match node.child(level) {
                Some(child) => node = child,
                None => return false,
            }
        }
        if !node.values.contains(value) {
            return false;
        }
        let target_stays = node.values.len() > 1 || node.child_count() > 0;
        // Second pass (exclusive): walk to the cut point and either remove the value or detach
        // the whole chain that would be left empty.
        let stop = if target_stays { filter.len() } else { keep };
        let mut node: &mut Node<T> = self;
        for level in &filter[..stop] {
            match node.child_mut(level) {
                Some(child) => node = child,
                None => return false, // unreachable: the first pass found the path
            }
        }
        if target_stays {
            node.values.remove(value);
        } else {
            node.detach_child(&filter[keep]);
        }
        true
    }

    /// Appends the values of every filter node matching `topic`. `dedup` is needed only when
    /// some filter has a `#` before its end: then a node can be reached at the same topic position
    /// along several paths (`#.#`), and visiting each (node, position) once keeps both the output
    /// free of duplicates and the walk polynomial.
    fn walk(&self, topic: &[&str], dedup: bool, dollar_rule: bool, out: &mut Vec<T>) {
        // [MQTT-4.7.2-1] Filters starting with a wildcard skip `$` topics. Only the root's `+`
        // and `#` children start such filters, and only the root is visited at position 0
        // (other nodes at position 0 hang below the root's `#`, which is skipped).
        let dollar = dollar_rule && topic.first().is_some_and(|level| level.starts_with('$'));
        let mut seen: HashSet<(*const Node<T>, usize)> = HashSet::new();
        let mut stack: Vec<(&Node<T>, usize)> = vec![(self, 0)];
        while let Some((node, pos)) = stack.pop() {
            if dedup && !seen.insert((node as *const Node<T>, pos)) {
                continue;
            }
            let skip_wildcards = pos == 0 && dollar;
            match topic.get(pos) {
                None => out.extend(node.values.iter().cloned()),
                Some(level) => {
                    if let Some(child) = node.literal.get(*level) {
                        stack.push((child, pos + 1));
                    }
                    if let (Some(one), false) = (node.one.as_deref(), skip_wildcards) {
                        stack.push((one, pos + 1));
                    }
                }
            }
            if let (Some(many), false) = (node.many.as_deref(), skip_wildcards) {
                if many.child_count() == 0 {
                    // A trailing `#` (every MQTT one) matches the rest, whatever its length.
                    stack.push((many, topic.len()));
                } else {
                    stack.extend((pos..=topic.len()).map(|absorbed| (many, absorbed)));
                }
            }
        }
    }
}

impl<T> Drop for Node<T> {
    /// Drops descendants from an explicit stack: the default recursive drop could overflow on a
    /// trie as deep as the longest filter.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.drain_children(&mut pending);
        while let Some(mut node) = pending.pop() {
            node.drain_children(&mut pending);
        }
    }
}

/// True if `#` appears before the last level (possible in AMQP binding keys only).
fn has_inner_many(filter: &[FilterLevel]) -> bool {
    filter
        .split_last()
        .is_some_and(|(_, init)| init.contains(&FilterLevel::Many))
}

/// A level sequence in one allocation: each level's bytes followed by 0xFF, a byte UTF-8 never
/// contains, so the encoding is unambiguous. Compared against `&[&str]` without building anything.
struct EncodedLevels(Box<[u8]>);

impl EncodedLevels {
    fn new(levels: &[&str]) -> Self {
        let mut bytes = Vec::with_capacity(levels.iter().map(|l| l.len() + 1).sum());
        for level in levels {
            bytes.extend_from_slice(level.as_bytes());
            bytes.push(0xff);
        }
        EncodedLevels(bytes.into_boxed_slice())
    }

    fn is(&self, levels: &[&str]) -> bool {
        let mut rest: &[u8] = &self.0;
        for level in levels {
            match rest.strip_prefix(level.as_bytes()) {
                Some([0xff, tail @ ..]) => rest = tail,
                _ => return false,
            }
        }
        rest.is_empty()
    }
}

/// Bounded map from topic to its match result, split into independently locked shards.
struct MatchCache<T> {
    shards: Box<[CacheShard<T>]>,
    /// Entries per shard; `shards.len() * per_shard <= capacity`.
    per_shard: usize,
}

/// Aligned to its own cache line so that locking one shard does not disturb its neighbours.
#[repr(align(64))]
struct CacheShard<T>(Mutex<ShardState<T>>);

struct ShardState<T> {
    /// The generation every entry was computed at.
    generation: u64,
    /// By topic hash. A colliding topic simply replaces the entry (it is a cache).
    entries: HashMap<u64, CacheEntry<T>, BuildHasherDefault<IdentityHasher>>,
}

struct CacheEntry<T> {
    topic: EncodedLevels,
    result: Arc<[T]>,
}

impl<T> MatchCache<T> {
    fn new(capacity: usize) -> Self {
        let shards = capacity.min(CACHE_SHARDS);
        MatchCache {
            shards: (0..shards)
                .map(|_| {
                    CacheShard(Mutex::new(ShardState {
                        generation: 0,
                        entries: HashMap::default(),
                    }))
                })
                .collect(),
            per_shard: capacity.checked_div(shards).unwrap_or(0),
        }
    }

    fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    fn shard(&self, hash: u64) -> &Mutex<ShardState<T>> {
        // Bits 32.. pick the shard: the map uses the low bits for buckets and the top 7 as tags,
        // so this choice leaves both fully random within a shard.
        &self.shards[(hash >> 32) as usize % self.shards.len()].0
    }

    fn get(&self, hash: u64, topic: &[&str], generation: u64) -> Option<Arc<[T]>> {
        let mut shard = self.shard(hash).lock();
        if shard.generation != generation {
            if shard.generation < generation {
                // Everything here predates a change: drop it all now rather than entry by entry.
                shard.entries.clear();
                shard.generation = generation;
            }
            return None;
        }
        let entry = shard.entries.get(&hash)?;
        entry.topic.is(topic).then(|| Arc::clone(&entry.result))
    }

    fn put(&self, hash: u64, topic: &[&str], generation: u64, result: Arc<[T]>) {
        let mut shard = self.shard(hash).lock();
        if generation < shard.generation {
            return; // computed before a change that a later lookup already saw: never serve it
        }
        if generation > shard.generation {
            shard.entries.clear();
            shard.generation = generation;
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&hash) {
            // Full: start the shard over. Unbiased and O(1) amortized, with no bookkeeping on
            // hits; hot topics are back after one miss each. (Evicting "the first" entry instead
            // would always hit low bucket positions and freeze the rest of the cache.)
            shard.entries.clear();
        }
        shard.entries.insert(
            hash,
            CacheEntry {
                topic: EncodedLevels::new(topic),
                result,
            },
        );
    }
}

/// For maps keyed by an already-computed (seeded) hash: hashing it again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; fold anything else rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
#[path = "topic_index_tests.rs"]
mod tests;
