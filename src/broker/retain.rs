//! Retained messages (MQTT 3.3.1.3): at most one message per topic, handed to every new
//! subscription whose filter matches that topic, wildcards included.
//!
//! Owns: the store, a trie keyed by topic level (MQTT form, see `routing_key`), guarded by one
//! `parking_lot::RwLock`. Must not touch: wire types, payload interpretation (the caller turns a
//! retained PUBLISH with an empty payload into a delete [MQTT-3.3.1-10] [MQTT-3.3.1-11]),
//! persistence, size limits, and anything async: methods are synchronous and never hold the lock
//! beyond the call, so never across `.await`.
//!
//! Matching walks the trie level by level, so a subscription costs what its filter can reach, not
//! what the store holds; a filter without wildcards is a direct lookup.

use std::collections::{HashMap, HashSet};
use std::fmt;

use parking_lot::RwLock;

use super::routing_key::{self, literal_levels, FilterLevel};

/// Retained messages by topic. `M` is the stored message handle (e.g. `Arc<Message>`); it is
/// cloned out on every read, so it should be cheap to clone.
pub struct RetainStore<M> {
    trie: RwLock<Trie<M>>,
}

impl<M: Clone> RetainStore<M> {
    /// An empty store.
    pub fn new() -> Self {
        RetainStore {
            trie: RwLock::new(Trie {
                root: Node::default(),
                len: 0,
            }),
        }
    }

    /// Stores `message` as the retained message of `topic` (an MQTT topic name), replacing any
    /// previous one [MQTT-3.3.1-5]; `None` deletes it [MQTT-3.3.1-10]. Returns the previous
    /// message.
    pub fn set(&self, topic: &str, message: Option<M>) -> Option<M> {
        if topic.is_empty() {
            // Not an MQTT topic name [MQTT-4.7.3-1]: nothing can be retained under it.
            return None;
        }
        let levels = routing_key::mqtt_levels(topic);
        let mut trie = self.trie.write();
        match message {
            Some(message) => {
                let previous = trie.root.insert(&levels, message);
                trie.len += usize::from(previous.is_none());
                previous
            }
            None => {
                let previous = trie.root.remove(&levels);
                trie.len -= usize::from(previous.is_some());
                previous
            }
        }
    }

    /// The retained message of exactly `topic` (an MQTT topic name), if any.
    pub fn get_exact(&self, topic: &str) -> Option<M> {
        self.trie
            .read()
            .root
            .get(&routing_key::mqtt_levels(topic))
            .cloned()
    }

    /// Every retained message whose topic matches `filter`, with its topic in MQTT form. Order is
    /// unspecified. A filter whose first level is a wildcard does not match topics starting with
    /// `$` [MQTT-4.7.2-1]; `a/#` includes `a` itself (MQTT 4.7.1.2).
    pub fn matching(&self, filter: &[FilterLevel]) -> Vec<(String, M)> {
        let trie = self.trie.read();
        if let Some(levels) = literal_levels(filter) {
            return trie
                .root
                .get(&levels)
                .map(|message| (routing_key::levels_to_mqtt(&levels), message.clone()))
                .into_iter()
                .collect();
        }
        trie.root.walk(filter)
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.trie.read().len
    }

    /// True if no message is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M: Clone> Default for RetainStore<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> fmt::Debug for RetainStore<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainStore")
            .field("len", &self.trie.read().len)
            .finish_non_exhaustive()
    }
}

struct Trie<M> {
    root: Node<M>,
    /// Number of nodes holding a message.
    len: usize,
}

/// A trie node: the topic spelled by the path from the root. The root itself is never a topic
/// (every topic has at least one level).
struct Node<M> {
    children: HashMap<Box<str>, Node<M>>,
    message: Option<M>,
}

impl<M> Default for Node<M> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            message: None,
        }
    }
}

/// A pending visit in [`Node::walk`]: `node` sits at `depth` (reached through level `key`) and
/// must still match `filter[fpos..]`.
struct Visit<'a, M> {
    node: &'a Node<M>,
    key: &'a str,
    depth: usize,
    fpos: usize,
}

impl<M: Clone> Node<M> {
    /// Iterative, like every walk here: MQTT topics may have up to 65,536 levels.
    fn insert(&mut self, levels: &[&str], message: M) -> Option<M> {
        let mut node = self;
        for level in levels {
            node = node.children.entry((*level).into()).or_default();
        }
        node.message.replace(message)
    }

    fn get(&self, levels: &[&str]) -> Option<&M> {
        let mut node = self;
        for level in levels {
            node = node.children.get(*level)?;
        }
        node.message.as_ref()
    }

    /// Takes the message at `levels` and prunes the nodes left without message and children.
    fn remove(&mut self, levels: &[&str]) -> Option<M> {
        // First pass (shared): find the deepest node on the path that must stay; everything
        // below it on the path is left empty by the removal and is detached in one go.
        let mut node: &Node<M> = self;
        let mut keep = 0; // levels from the root to the last node that stays
        for (depth, level) in levels.iter().enumerate() {
            if node.message.is_some() || node.children.len() > 1 {
                keep = depth;
            }
            node = node.children.get(*level)?;
        }
        node.message.as_ref()?;
        let target_stays = !node.children.is_empty();
        let stop = if target_stays { levels.len() } else { keep };
        let mut node: &mut Node<M> = self;
        for level in &levels[..stop] {
            node = node.children.get_mut(*level)?;
        }
        if target_stays {
            node.message.take()
        } else {
            let mut detached = node.children.remove(levels[keep])?;
            // The detached chain has exactly one message, at its end.
            let mut chain = &mut detached;
            for level in &levels[keep + 1..] {
                chain = chain.children.get_mut(*level)?;
            }
            chain.message.take()
        }
    }

    /// Messages below this (root) node matching `filter`, which has a wildcard.
    fn walk(&self, filter: &[FilterLevel]) -> Vec<(String, M)> {
        // [MQTT-4.7.2-1] applies to the whole filter: with a wildcard first level, no `$` child
        // of the root is entered, whichever filter level is being matched there (`#/$SYS` must
        // not reach `$SYS` by letting `#` match zero levels).
        let skip_dollar = filter.first().is_some_and(FilterLevel::is_wildcard);
        // With two or more `#` (AMQP-style keys) a (node, filter position) pair can be reached
        // along several paths; visiting each once avoids duplicates and exponential work.
        let dedup = filter.iter().filter(|l| **l == FilterLevel::Many).count() > 1;
        let mut seen: HashSet<(*const Node<M>, usize)> = HashSet::new();
        let mut out = Vec::new();
        // `path` holds the levels down to the current visit. Depth-first order keeps it valid:
        // every visit popped between a push and its pop lies below the same parent.
        let mut path: Vec<&str> = Vec::new();
        let mut stack = vec![Visit {
            node: self,
            key: "",
            depth: 0,
            fpos: 0,
        }];
        while let Some(Visit {
            node,
            key,
            depth,
            fpos,
        }) = stack.pop()
        {
            if dedup && !seen.insert((node as *const Node<M>, fpos)) {
                continue;
            }
            if depth > 0 {
                path.truncate(depth - 1);
                path.push(key);
            }
            let enter = |key: &str| !(depth == 0 && skip_dollar && key.starts_with('$'));
            let below = |fpos| {
                node.children
                    .iter()
                    .filter(|(k, _)| enter(k))
                    .map(move |(k, child)| Visit {
                        node: child,
                        key: k,
                        depth: depth + 1,
                        fpos,
                    })
            };
            match filter.get(fpos) {
                None => {
                    if let Some(message) = &node.message {
                        out.push((routing_key::levels_to_mqtt(&path), message.clone()));
                    }
                }
                Some(FilterLevel::Literal(level)) => {
                    if let Some((k, child)) = node.children.get_key_value(level.as_str()) {
                        if enter(k) {
                            stack.push(Visit {
                                node: child,
                                key: k,
                                depth: depth + 1,
                                fpos: fpos + 1,
                            });
                        }
                    }
                }
                Some(FilterLevel::One) => stack.extend(below(fpos + 1)),
                Some(FilterLevel::Many) => {
                    // `#` matches zero levels here, or one more and stays pending below.
                    stack.push(Visit {
                        node,
                        key,
                        depth,
                        fpos: fpos + 1,
                    });
                    stack.extend(below(fpos));
                }
            }
        }
        out
    }
}

impl<M> Drop for Node<M> {
    /// Drops descendants from an explicit stack: the default recursive drop could overflow on a
    /// topic with tens of thousands of levels.
    fn drop(&mut self) {
        let mut pending: Vec<Node<M>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = pending.pop() {
            pending.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::routing_key::{
        filter_matches, mqtt_levels, parse_amqp_binding_key, parse_mqtt_filter,
    };
    use super::*;
    use proptest::prelude::*;

    fn topics(store: &RetainStore<u32>, filter: &str) -> Vec<String> {
        let mut found: Vec<String> = store
            .matching(&parse_mqtt_filter(filter))
            .into_iter()
            .map(|(topic, _)| topic)
            .collect();
        found.sort();
        found
    }

    fn store_with(topics: &[&str]) -> RetainStore<u32> {
        let store = RetainStore::new();
        for (i, topic) in topics.iter().enumerate() {
            assert_eq!(store.set(topic, Some(i as u32)), None);
        }
        store
    }

    #[test]
    fn set_replace_get_delete() {
        let store = RetainStore::new();
        assert!(store.is_empty());
        assert_eq!(store.set("a/b", Some(1)), None);
        assert_eq!(store.set("a/b", Some(2)), Some(1));
        assert_eq!(store.get_exact("a/b"), Some(2));
        assert_eq!(store.get_exact("a"), None);
        assert_eq!(store.len(), 1);
        assert_eq!(store.set("a/c", None), None);
        assert_eq!(store.set("a", None), None);
        assert_eq!(store.len(), 1);
        assert_eq!(store.set("a/b", None), Some(2));
        assert_eq!(store.get_exact("a/b"), None);
        assert!(store.is_empty());
        assert!(store.trie.read().root.children.is_empty(), "pruned");
    }

    #[test]
    fn delete_keeps_what_others_need() {
        let store = store_with(&["a", "a/b/c", "a/b/d"]);
        assert_eq!(store.set("a/b/c", None), Some(1));
        assert_eq!(store.get_exact("a/b/d"), Some(2));
        assert_eq!(store.set("a", None), Some(0));
        assert_eq!(store.get_exact("a/b/d"), Some(2));
        assert_eq!(store.set("a/b/d", None), Some(2));
        assert!(store.trie.read().root.children.is_empty());
        let store = store_with(&["x", "x/y"]);
        assert_eq!(store.set("x/y", None), Some(1));
        assert!(store.trie.read().root.children["x"].children.is_empty());
        assert_eq!(store.get_exact("x"), Some(0));
    }

    #[test]
    fn wildcard_subscriptions_receive_matching_retained() {
        let store = store_with(&[
            "sport",
            "sport/tennis",
            "sport/tennis/player1",
            "sport/golf",
            "sport//x",
            "news/tennis",
            "/lead",
        ]);
        assert_eq!(topics(&store, "sport/tennis"), ["sport/tennis"]);
        assert_eq!(topics(&store, "sport/+"), ["sport/golf", "sport/tennis"]);
        assert_eq!(
            topics(&store, "sport/#"),
            [
                "sport",
                "sport//x",
                "sport/golf",
                "sport/tennis",
                "sport/tennis/player1"
            ]
        );
        assert_eq!(topics(&store, "+/tennis"), ["news/tennis", "sport/tennis"]);
        assert_eq!(
            topics(&store, "+/+"),
            ["/lead", "news/tennis", "sport/golf", "sport/tennis"]
        );
        assert_eq!(topics(&store, "sport/+/x"), ["sport//x"]);
        assert_eq!(topics(&store, "#").len(), 7);
        assert_eq!(topics(&store, "nothing/#"), Vec::<String>::new());
        let (topic, message) = store.matching(&parse_mqtt_filter("sport/golf")).remove(0);
        assert_eq!((topic.as_str(), message), ("sport/golf", 3));
    }

    #[test]
    fn dollar_topics_only_for_explicit_filters() {
        // [MQTT-4.7.2-1]
        let store = store_with(&["$SYS/uptime", "a/$b"]);
        assert_eq!(topics(&store, "#"), ["a/$b"]);
        assert_eq!(topics(&store, "+/uptime"), Vec::<String>::new());
        assert_eq!(topics(&store, "$SYS/#"), ["$SYS/uptime"]);
        assert_eq!(topics(&store, "$SYS/+"), ["$SYS/uptime"]);
        assert_eq!(topics(&store, "a/+"), ["a/$b"]);
        assert!(store
            .matching(&parse_amqp_binding_key("#.uptime"))
            .is_empty());
        assert!(store
            .matching(&parse_amqp_binding_key("#.$SYS.#"))
            .is_empty());
    }

    #[test]
    fn dotted_levels_stay_one_level() {
        let store = store_with(&["fw/v1.2/status"]);
        let found = store.matching(&parse_amqp_binding_key("fw.v1/2.*"));
        assert_eq!(found, [("fw/v1.2/status".to_owned(), 0)]);
        assert!(store
            .matching(&parse_amqp_binding_key("fw.v1.2.status"))
            .is_empty());
    }

    #[test]
    fn deep_topics_do_not_recurse() {
        let deep = format!("{}end", "l/".repeat(70_000));
        let store = RetainStore::new();
        store.set(&deep, Some(1u8));
        assert_eq!(store.matching(&parse_mqtt_filter("l/#")).len(), 1);
        assert_eq!(store.set(&deep, Some(2)), Some(1));
        drop(store);
    }

    proptest! {
        #[test]
        fn matching_agrees_with_brute_force(
            stored in prop::collection::vec(("[ab$]{0,1}(/[ab$]{0,1}){0,3}", any::<bool>()), 0..30),
            filter in prop::collection::vec(prop_oneof![
                3 => prop::sample::select(vec!["a", "b", "$", ""])
                    .prop_map(|s| FilterLevel::Literal(s.to_owned())),
                1 => Just(FilterLevel::One),
                1 => Just(FilterLevel::Many),
            ], 1..5),
        ) {
            let store = RetainStore::new();
            let mut model = std::collections::BTreeMap::new();
            for (i, (topic, keep)) in stored.iter().enumerate() {
                if topic.is_empty() {
                    prop_assert_eq!(store.set(topic, Some(i)), None, "empty topics are never stored");
                    continue;
                }
                let message = keep.then_some(i);
                prop_assert_eq!(store.set(topic, message), match message {
                    Some(m) => model.insert(topic.clone(), m),
                    None => model.remove(topic),
                });
            }
            prop_assert_eq!(store.len(), model.len());
            let mut found = store.matching(&filter);
            found.sort();
            let expected: Vec<(String, usize)> = model
                .into_iter()
                .filter(|(topic, _)| filter_matches(&filter, &mqtt_levels(topic)))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
