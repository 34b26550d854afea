//! Routing keys as sequences of levels: the one place that defines how MQTT topic names and
//! filters and AMQP 0-9-1 routing and binding keys map onto protocol-neutral levels and back.
//!
//! Owns: splitting keys into levels, rendering levels back into either protocol's spelling, the
//! [`FilterLevel`] model of filters, and [`filter_matches`], the reference matcher (used by the
//! retained-message store and as the oracle in tests of the topic index).
//! Must not touch: wire types, locks, sessions, or the topic index's data structures. Everything
//! here is a pure function over strings.
//!
//! # The mapping
//!
//! A level's text is held in **MQTT form**, so the MQTT path neither rewrites nor copies text.
//! MQTT splits on `/`, AMQP on `.`. A literal `.` inside an MQTT level and a literal `/` inside an
//! AMQP word are the same character with the separators swapped, which makes the mapping total
//! and lossless for names and keys:
//!
//! ```text
//! MQTT fw/v1.2/status  <->  levels ["fw", "v1.2", "status"]  <->  AMQP fw.v1/2.status
//! ```
//!
//! Filters: MQTT `+` <-> AMQP `*` (exactly one level); `#` <-> `#` (zero or more levels, so
//! `a/#` matches `a` in both protocols). AMQP allows `#` and `*` in any position (`a.#.b`,
//! `#.#`); MQTT requires `#` last [MQTT-4.7.1-2], which its decoder enforces.
//!
//! Empty levels are real levels: `a//b` has three, MQTT `/a` has two (`""`, `"a"`). The empty
//! string alone has zero levels, as RabbitMQ splits the empty AMQP routing key into zero words:
//! it matches the bindings `""` and `#` but not `*`. (MQTT never sees it: an empty topic name
//! or filter is invalid there.)
//!
//! Topics whose first level starts with `$` are not matched by filters whose first level is a
//! wildcard [MQTT-4.7.2-1]. The core applies this to AMQP bindings too, so an AMQP `#` binding does
//! not see `$SYS/...` traffic (RabbitMQ would deliver it).
//!
//! Not every filter exists in both spellings: an MQTT filter level that is literally `*` would be a
//! wildcard in AMQP, and an AMQP word that is literally `+` or `#`-containing is not a valid MQTT
//! filter level. The `*_filter_string` renderers return `None` for those.

use std::borrow::Cow;
use std::fmt;

/// Separator between levels of an MQTT topic name or filter.
pub const MQTT_SEPARATOR: char = '/';

/// Separator between words of an AMQP 0-9-1 routing or binding key.
pub const AMQP_SEPARATOR: char = '.';

/// One level of a topic filter or binding key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterLevel {
    /// Matches exactly this level text (MQTT form: may contain `.`, never `/`).
    Literal(String),
    /// Matches exactly one level: MQTT `+`, AMQP `*`.
    One,
    /// Matches zero or more levels: `#` in both protocols.
    Many,
}

impl FilterLevel {
    /// True for `One` and `Many`.
    pub fn is_wildcard(&self) -> bool {
        !matches!(self, FilterLevel::Literal(_))
    }
}

/// Why an MQTT topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingKeyError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1].
    Empty,
    /// Wildcards may appear in filters only, never in topic names [MQTT-4.7.1-1].
    WildcardInTopicName,
    /// `+` and `#` must occupy a whole level [MQTT-4.7.1-2] [MQTT-4.7.1-3].
    PartialWildcard,
    /// `#` must be the last level of an MQTT filter [MQTT-4.7.1-2].
    MultiLevelNotLast,
}

impl fmt::Display for RoutingKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingKeyError::Empty => "topic is empty",
            RoutingKeyError::WildcardInTopicName => "wildcard in topic name",
            RoutingKeyError::PartialWildcard => "wildcard does not occupy a whole level",
            RoutingKeyError::MultiLevelNotLast => "'#' is not the last level",
        })
    }
}

impl std::error::Error for RoutingKeyError {}

/// Splits an MQTT topic name or filter into levels, borrowing from `topic`.
///
/// `""` gives zero levels (the empty AMQP routing key; MQTT rejects empty topics before this).
/// This runs on every MQTT publish, so it sizes the vector first: one allocation, no regrowth.
pub fn mqtt_levels(topic: &str) -> Vec<&str> {
    if topic.is_empty() {
        return Vec::new();
    }
    let separators = topic.bytes().filter(|&b| b == b'/').count();
    let mut levels = Vec::with_capacity(separators + 1);
    let mut start = 0;
    for (at, byte) in topic.bytes().enumerate() {
        if byte == b'/' {
            levels.push(&topic[start..at]);
            start = at + 1;
        }
    }
    levels.push(&topic[start..]);
    levels
}

/// Splits an AMQP routing key into levels in MQTT form: each word's `/` becomes `.`.
///
/// Words without `/` are borrowed; only those needing the swap are allocated. The empty key gives
/// one empty level. Use [`as_strs`] to get the `&[&str]` the matchers take.
pub fn amqp_levels(key: &str) -> Vec<Cow<'_, str>> {
    if key.is_empty() {
        return Vec::new();
    }
    key.split(AMQP_SEPARATOR).map(amqp_word_to_level).collect()
}

/// Borrows owned-or-borrowed levels as `&str`, the form [`filter_matches`] and the index take.
pub fn as_strs<'a>(levels: &'a [Cow<'_, str>]) -> Vec<&'a str> {
    levels.iter().map(|level| level.as_ref()).collect()
}

/// Renders levels (MQTT form) as an MQTT topic name: levels joined by `/`.
pub fn levels_to_mqtt<S: AsRef<str>>(levels: &[S]) -> String {
    let mut out = String::with_capacity(rendered_len(levels));
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push(MQTT_SEPARATOR);
        }
        out.push_str(level.as_ref());
    }
    out
}

/// Renders levels (MQTT form) as an AMQP routing key: `.` inside a level becomes `/`, levels are
/// joined by `.`.
pub fn levels_to_amqp<S: AsRef<str>>(levels: &[S]) -> String {
    let mut out = String::with_capacity(rendered_len(levels));
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push(AMQP_SEPARATOR);
        }
        push_swapped(&mut out, level.as_ref());
    }
    out
}

/// Converts a whole MQTT topic name to the equivalent AMQP routing key (swaps `/` and `.`).
/// Borrows when the topic has a single level without `.`.
pub fn mqtt_topic_to_amqp_key(topic: &str) -> Cow<'_, str> {
    swap_separators(topic)
}

/// Converts a whole AMQP routing key to the equivalent MQTT topic name (swaps `.` and `/`).
/// Borrows when the key has a single word without `/`.
pub fn amqp_key_to_mqtt_topic(key: &str) -> Cow<'_, str> {
    swap_separators(key)
}

/// Parses an MQTT topic filter into levels: a level that is exactly `+` is [`FilterLevel::One`],
/// exactly `#` is [`FilterLevel::Many`], anything else is literal.
///
/// Does not validate; the MQTT decoder (or [`validate_mqtt_filter`]) has already rejected filters
/// with partial wildcards or a `#` before the last level.
pub fn parse_mqtt_filter(filter: &str) -> Vec<FilterLevel> {
    if filter.is_empty() {
        return Vec::new();
    }
    filter
        .split(MQTT_SEPARATOR)
        .map(|level| match level {
            "+" => FilterLevel::One,
            "#" => FilterLevel::Many,
            literal => FilterLevel::Literal(literal.to_owned()),
        })
        .collect()
}

/// Parses an AMQP binding key into levels: a word that is exactly `*` is [`FilterLevel::One`],
/// exactly `#` is [`FilterLevel::Many`] (in any position); other words are literal, with `/`
/// turned into `.` (MQTT form). Every binding key is valid.
pub fn parse_amqp_binding_key(key: &str) -> Vec<FilterLevel> {
    if key.is_empty() {
        return Vec::new();
    }
    key.split(AMQP_SEPARATOR)
        .map(|word| match word {
            "*" => FilterLevel::One,
            "#" => FilterLevel::Many,
            literal => FilterLevel::Literal(amqp_word_to_level(literal).into_owned()),
        })
        .collect()
}

/// Renders a filter as an MQTT topic filter, or `None` if MQTT cannot express it: a `#` before
/// the last level [MQTT-4.7.1-2], a literal containing `+`, `#` or `/`, or the single empty level
/// (an empty filter [MQTT-4.7.3-1]).
pub fn mqtt_filter_string(filter: &[FilterLevel]) -> Option<String> {
    let mut out = String::new();
    for (i, level) in filter.iter().enumerate() {
        if i > 0 {
            out.push(MQTT_SEPARATOR);
        }
        match level {
            FilterLevel::One => out.push('+'),
            FilterLevel::Many if i + 1 == filter.len() => out.push('#'),
            FilterLevel::Many => return None,
            FilterLevel::Literal(s) if s.contains(['+', '#', MQTT_SEPARATOR]) => return None,
            FilterLevel::Literal(s) => out.push_str(s),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Renders a filter as an AMQP binding key, or `None` if AMQP cannot express it: a literal that
/// is exactly `*` or `#` (it would read back as a wildcard) or contains `/`.
pub fn amqp_binding_key_string(filter: &[FilterLevel]) -> Option<String> {
    if matches!(filter, [FilterLevel::Literal(s)] if s.is_empty()) {
        // One empty word has no spelling: the empty key means zero words.
        return None;
    }
    let mut out = String::new();
    for (i, level) in filter.iter().enumerate() {
        if i > 0 {
            out.push(AMQP_SEPARATOR);
        }
        match level {
            FilterLevel::One => out.push('*'),
            FilterLevel::Many => out.push('#'),
            FilterLevel::Literal(s) if s == "*" || s == "#" || s.contains(MQTT_SEPARATOR) => {
                return None
            }
            FilterLevel::Literal(s) => push_swapped(&mut out, s),
        }
    }
    Some(out)
}

/// Checks an MQTT topic name (PUBLISH, will): non-empty [MQTT-4.7.3-1], no wildcards
/// [MQTT-4.7.1-1].
pub fn validate_mqtt_topic_name(topic: &str) -> Result<(), RoutingKeyError> {
    if topic.is_empty() {
        return Err(RoutingKeyError::Empty);
    }
    if topic.contains(['+', '#']) {
        return Err(RoutingKeyError::WildcardInTopicName);
    }
    Ok(())
}

/// Checks an MQTT topic filter (SUBSCRIBE, UNSUBSCRIBE): non-empty [MQTT-4.7.3-1], wildcards
/// occupy whole levels [MQTT-4.7.1-2] [MQTT-4.7.1-3], `#` only last [MQTT-4.7.1-2].
pub fn validate_mqtt_filter(filter: &str) -> Result<(), RoutingKeyError> {
    if filter.is_empty() {
        return Err(RoutingKeyError::Empty);
    }
    let mut levels = filter.split(MQTT_SEPARATOR).peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" if levels.peek().is_some() => return Err(RoutingKeyError::MultiLevelNotLast),
            "#" | "+" => {}
            _ if level.contains(['+', '#']) => return Err(RoutingKeyError::PartialWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// True if the filter has no wildcard, i.e. it matches exactly one topic.
pub fn is_exact(filter: &[FilterLevel]) -> bool {
    !filter.iter().any(FilterLevel::is_wildcard)
}

/// The levels of a filter without wildcards (the one topic it matches), or `None` if it has one.
pub fn literal_levels(filter: &[FilterLevel]) -> Option<Vec<&str>> {
    filter
        .iter()
        .map(|level| match level {
            FilterLevel::Literal(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// True if `topic` (levels in MQTT form) matches `filter`.
///
/// `One` consumes exactly one level, `Many` zero or more, in any position. A topic whose first
/// level starts with `$` never matches a filter whose first level is a wildcard [MQTT-4.7.2-1].
/// Runs in O(filter × topic) at worst, without recursion or allocation, so peer-sized input
/// cannot exhaust the stack.
pub fn filter_matches(filter: &[FilterLevel], topic: &[&str]) -> bool {
    if let (Some(first), Some(level)) = (filter.first(), topic.first()) {
        if first.is_wildcard() && level.starts_with('$') {
            return false;
        }
    }
    // Glob matching with `Many` as `*` and `One` as `?`: on a mismatch, retry from the most
    // recent `Many` with one more level consumed by it. Only the latest `Many` needs remembering,
    // because whatever an earlier one could absorb the latest one can absorb too.
    let (mut f, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < topic.len() {
        match filter.get(f) {
            Some(FilterLevel::Many) => {
                resume = Some((f + 1, t));
                f += 1;
                continue;
            }
            Some(FilterLevel::One) => {
                f += 1;
                t += 1;
                continue;
            }
            Some(FilterLevel::Literal(s)) if s == topic[t] => {
                f += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((after_many, absorbed_to)) => {
                f = after_many;
                t = absorbed_to + 1;
                resume = Some((after_many, t));
            }
            None => return false,
        }
    }
    filter[f..].iter().all(|level| *level == FilterLevel::Many)
}

fn amqp_word_to_level(word: &str) -> Cow<'_, str> {
    if word.contains(MQTT_SEPARATOR) {
        Cow::Owned(word.replace(MQTT_SEPARATOR, "."))
    } else {
        Cow::Borrowed(word)
    }
}

// Runs on every AMQP publish: byte-wise, since both separators are ASCII (a `char` pattern
// search and a `chars()` rebuild were ~2 % of an AMQP publish's instructions).
fn swap_separators(key: &str) -> Cow<'_, str> {
    let (mqtt, amqp) = (MQTT_SEPARATOR as u8, AMQP_SEPARATOR as u8);
    if !key.bytes().any(|b| b == mqtt || b == amqp) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len());
    push_swapped(&mut out, key);
    Cow::Owned(out)
}

/// Appends `text` with `/` and `.` exchanged (both are ASCII, so byte lengths are unchanged).
/// Copied in runs between separators, which stay on character boundaries.
fn push_swapped(out: &mut String, text: &str) {
    let (mqtt, amqp) = (MQTT_SEPARATOR as u8, AMQP_SEPARATOR as u8);
    let mut from = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == mqtt || b == amqp {
            out.push_str(&text[from..i]);
            out.push(if b == mqtt {
                AMQP_SEPARATOR
            } else {
                MQTT_SEPARATOR
            });
            from = i + 1;
        }
    }
    out.push_str(&text[from..]);
}

fn rendered_len<S: AsRef<str>>(levels: &[S]) -> usize {
    levels.iter().map(|l| l.as_ref().len() + 1).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::FilterLevel::{Literal, Many, One};
    use super::*;
    use proptest::prelude::*;

    fn lit(s: &str) -> FilterLevel {
        Literal(s.to_owned())
    }

    fn m(filter: &str, topic: &str) -> bool {
        filter_matches(&parse_mqtt_filter(filter), &mqtt_levels(topic))
    }

    fn a(binding: &str, key: &str) -> bool {
        filter_matches(
            &parse_amqp_binding_key(binding),
            &as_strs(&amqp_levels(key)),
        )
    }

    #[test]
    fn dotted_level_round_trips_between_protocols() {
        let levels = mqtt_levels("fw/v1.2/status");
        assert_eq!(levels, ["fw", "v1.2", "status"]);
        assert_eq!(levels_to_amqp(&levels), "fw.v1/2.status");
        let back = amqp_levels("fw.v1/2.status");
        assert_eq!(as_strs(&back), ["fw", "v1.2", "status"]);
        assert!(matches!(back[0], Cow::Borrowed(_)));
        assert!(matches!(back[1], Cow::Owned(_)));
        assert_eq!(levels_to_mqtt(&back), "fw/v1.2/status");
        assert_eq!(mqtt_topic_to_amqp_key("fw/v1.2/status"), "fw.v1/2.status");
        assert_eq!(amqp_key_to_mqtt_topic("fw.v1/2.status"), "fw/v1.2/status");
        // Multi-byte characters next to separators stay whole.
        assert_eq!(amqp_key_to_mqtt_topic("sensör.ü/x.é"), "sensör/ü.x/é");
        assert_eq!(amqp_key_to_mqtt_topic("."), "/");
        assert!(matches!(
            mqtt_topic_to_amqp_key("plain"),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn empty_levels_are_levels() {
        assert_eq!(mqtt_levels("a//b"), ["a", "", "b"]);
        assert_eq!(mqtt_levels("/a"), ["", "a"]);
        assert_eq!(mqtt_levels("a/"), ["a", ""]);
        assert_eq!(mqtt_levels("/"), ["", ""]);
        assert!(
            amqp_levels("").is_empty(),
            "the empty key has zero words, as in RabbitMQ"
        );
        assert!(mqtt_levels("").is_empty());
        assert_eq!(as_strs(&amqp_levels(".a.")), ["", "a", ""]);
        assert_eq!(levels_to_amqp(&["", "a", ""]), ".a.");
        assert_eq!(levels_to_mqtt(&["", "a", ""]), "/a/");
        assert!(m("+/a", "/a"));
        assert!(!m("a", "/a"));
        assert!(m("a//b", "a//b"));
        assert!(!m("a/b", "a//b"));
        assert!(m("a/+/b", "a//b"));
    }

    #[test]
    fn empty_amqp_routing_key_matches_like_rabbitmq() {
        assert!(a("", ""));
        assert!(a("#", ""));
        assert!(!a("a", ""));
        assert!(!a("", "a"));
        assert!(!a("a.#", ""));
        // One empty level, not zero words: `*` matches too (RabbitMQ differs here).
        assert!(!a("*", ""), "RabbitMQ: `*` needs exactly one word");
    }

    #[test]
    fn filters_parse_per_protocol() {
        assert_eq!(parse_mqtt_filter("a/+/#"), [lit("a"), One, Many]);
        assert_eq!(parse_amqp_binding_key("a.*.#"), [lit("a"), One, Many]);
        // The other protocol's wildcard characters are literals.
        assert_eq!(parse_mqtt_filter("a/*"), [lit("a"), lit("*")]);
        assert_eq!(parse_amqp_binding_key("a.+"), [lit("a"), lit("+")]);
        assert_eq!(
            parse_amqp_binding_key("#.v1/2.#"),
            [Many, lit("v1.2"), Many]
        );
        assert_eq!(parse_amqp_binding_key("a*.b#"), [lit("a*"), lit("b#")]);
        assert!(parse_amqp_binding_key("").is_empty());
    }

    #[test]
    fn filters_render_or_refuse() {
        let f = parse_amqp_binding_key("fw.v1/2.*.#");
        assert_eq!(mqtt_filter_string(&f).as_deref(), Some("fw/v1.2/+/#"));
        assert_eq!(amqp_binding_key_string(&f).as_deref(), Some("fw.v1/2.*.#"));
        assert_eq!(mqtt_filter_string(&[Many, lit("a")]), None);
        assert_eq!(mqtt_filter_string(&[lit("+")]), None);
        assert_eq!(mqtt_filter_string(&[lit("")]), None);
        assert_eq!(
            mqtt_filter_string(&[lit(""), lit("")]).as_deref(),
            Some("/")
        );
        assert_eq!(amqp_binding_key_string(&[lit("*")]), None);
        assert_eq!(
            amqp_binding_key_string(&[Many, lit("a")]).as_deref(),
            Some("#.a")
        );
    }

    #[test]
    fn mqtt_validation_cites_the_spec() {
        assert_eq!(validate_mqtt_topic_name(""), Err(RoutingKeyError::Empty));
        assert_eq!(
            validate_mqtt_topic_name("a/+"),
            Err(RoutingKeyError::WildcardInTopicName)
        );
        assert_eq!(validate_mqtt_topic_name("/"), Ok(()));
        assert_eq!(validate_mqtt_filter(""), Err(RoutingKeyError::Empty));
        assert_eq!(
            validate_mqtt_filter("a/#/b"),
            Err(RoutingKeyError::MultiLevelNotLast)
        );
        assert_eq!(
            validate_mqtt_filter("a#"),
            Err(RoutingKeyError::PartialWildcard)
        );
        assert_eq!(
            validate_mqtt_filter("sport+"),
            Err(RoutingKeyError::PartialWildcard)
        );
        for ok in ["#", "+", "+/+", "/+", "a/#", "+/tennis/#", "a//b"] {
            assert_eq!(validate_mqtt_filter(ok), Ok(()), "{ok}");
        }
        assert!(is_exact(&parse_mqtt_filter("a/b")));
        assert!(!is_exact(&parse_mqtt_filter("a/+")));
        assert_eq!(
            literal_levels(&parse_mqtt_filter("a//b")),
            Some(vec!["a", "", "b"])
        );
        assert_eq!(literal_levels(&parse_mqtt_filter("a/#")), None);
    }

    #[test]
    fn wildcards_match_levels() {
        assert!(m("sport/tennis/+", "sport/tennis/player1"));
        assert!(!m("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!m("sport/+", "sport"));
        assert!(m("sport/+", "sport/"));
        // MQTT 4.7.1.2: `#` also matches the parent level.
        assert!(m("sport/#", "sport"));
        assert!(m("sport/#", "sport/a/b"));
        assert!(m("#", "a"));
        assert!(m("+/+", "/finance"));
        assert!(m("/+", "/finance"));
        assert!(!m("+", "/finance"));
        // `#` anywhere (AMQP).
        assert!(a("#.b", "b"));
        assert!(a("#.b", "x.y.b"));
        assert!(!a("#.b", "b.x"));
        assert!(a("a.#.b", "a.b"));
        assert!(a("a.#.b", "a.x.y.b"));
        assert!(a("a.#.b", "a.b.b"));
        assert!(!a("a.#.b", "a.x.c"));
        assert!(a("#.#", "a"));
        assert!(a("*.#.*", "a.b"));
        assert!(!a("*.#.*", "a"));
        assert!(a("#.*.#.c", "a.b.c"));
        assert!(filter_matches(&[Many], &[]));
        assert!(!filter_matches(&[One], &[]));
    }

    #[test]
    fn dollar_topics_escape_leading_wildcards() {
        // [MQTT-4.7.2-1]
        assert!(!m("#", "$SYS/broker/uptime"));
        assert!(!m("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(m("$SYS/#", "$SYS/broker/uptime"));
        assert!(m("$SYS/+/uptime", "$SYS/broker/uptime"));
        assert!(m("a/+", "a/$b"));
        assert!(!a("#.$SYS", "$SYS"));
        assert!(!a("#", "$SYS.x"));
    }

    fn level_text() -> impl Strategy<Value = String> {
        // Separators of both protocols, `$`, and wildcard characters of the other protocol.
        "[ab.$*]{0,3}"
    }

    fn filter_strategy() -> impl Strategy<Value = Vec<FilterLevel>> {
        let level = prop_oneof![
            3 => level_text().prop_map(Literal),
            1 => Just(One),
            1 => Just(Many),
        ];
        prop::collection::vec(level, 1..5)
    }

    proptest! {
        #[test]
        fn amqp_key_round_trips(key in "[ab./$]{0,8}") {
            let levels = amqp_levels(&key);
            prop_assert_eq!(levels_to_amqp(&levels), key.clone());
            prop_assert_eq!(amqp_key_to_mqtt_topic(&key), levels_to_mqtt(&levels));
        }

        #[test]
        fn mqtt_topic_round_trips(topic in "[ab./$]{0,8}") {
            let levels = mqtt_levels(&topic);
            prop_assert_eq!(levels_to_mqtt(&levels), topic.clone());
            prop_assert_eq!(mqtt_topic_to_amqp_key(&topic), levels_to_amqp(&levels));
            let amqp = levels_to_amqp(&levels);
            let back = amqp_levels(&amqp);
            prop_assert_eq!(as_strs(&back), levels);
        }

        #[test]
        fn mqtt_and_amqp_spellings_match_alike(
            filter in filter_strategy(),
            topic in prop::collection::vec("[ab.$]{0,2}", 1..5),
        ) {
            let topic: Vec<&str> = topic.iter().map(String::as_str).collect();
            // A single empty level has no string form (the empty string is zero levels).
            prop_assume!(topic != [""]);
            let expected = filter_matches(&filter, &topic);
            let mqtt_topic = levels_to_mqtt(&topic);
            let amqp_key = levels_to_amqp(&topic);
            if let Some(binding) = amqp_binding_key_string(&filter) {
                let parsed = parse_amqp_binding_key(&binding);
                prop_assert_eq!(&parsed, &filter);
                prop_assert_eq!(
                    filter_matches(&parsed, &as_strs(&amqp_levels(&amqp_key))),
                    expected
                );
            }
            if let Some(mqtt) = mqtt_filter_string(&filter) {
                prop_assert_eq!(validate_mqtt_filter(&mqtt), Ok(()));
                let parsed = parse_mqtt_filter(&mqtt);
                prop_assert_eq!(
                    filter_matches(&parsed, &mqtt_levels(&mqtt_topic)),
                    expected
                );
            }
        }

        #[test]
        fn matcher_agrees_with_recursive_definition(
            filter in filter_strategy(),
            topic in prop::collection::vec("[ab$]{0,1}", 0..5),
        ) {
            let topic: Vec<&str> = topic.iter().map(String::as_str).collect();
            let dollar = topic.first().is_some_and(|l| l.starts_with('$'))
                && filter.first().is_some_and(FilterLevel::is_wildcard);
            prop_assert_eq!(filter_matches(&filter, &topic), !dollar && naive(&filter, &topic));
        }
    }

    /// The textbook recursive definition, without the `$` rule.
    fn naive(filter: &[FilterLevel], topic: &[&str]) -> bool {
        match (filter.split_first(), topic.split_first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some((Many, rest)), _) => (0..=topic.len()).any(|k| naive(rest, &topic[k..])),
            (Some(_), None) => false,
            (Some((One, rest)), Some((_, t))) => naive(rest, t),
            (Some((Literal(s), rest)), Some((level, t))) => s == level && naive(rest, t),
        }
    }
}
