//! Topic name and topic filter syntax (MQTT 3.1.1 section 4.7, 5.0 sections 4.7 and 4.8.2).
//! Validation only: matching a name against a filter belongs to the broker, which matches on
//! levels. The decoder uses the `check_*` helpers to report which rule was broken.

/// Longest topic that fits a UTF-8 Encoded String [MQTT-4.7.3-3].
const MAX_TOPIC_LEN: usize = u16::MAX as usize;

/// The prefix that marks a shared subscription (5.0 section 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// True if `name` may be used as a PUBLISH or will topic: at least one character
/// [MQTT-4.7.3-1], no `+` or `#` [MQTT-4.7.0-1], no U+0000 [MQTT-4.7.3-2], at most 65,535 bytes.
/// (A v5 PUBLISH may carry an empty name together with a Topic Alias; the decoder allows that.)
pub fn valid_topic_name(name: &str) -> bool {
    check_topic_name(name).is_ok()
}

/// True if `filter` may be used in SUBSCRIBE / UNSUBSCRIBE: at least one character, `#` only as
/// the whole last level [MQTT-4.7.1-2], `+` only as a whole level [MQTT-4.7.1-3], no U+0000, and,
/// if it starts with `$share/`, the shape `$share/{group}/{filter}` (see `parse_shared`).
pub fn valid_topic_filter(filter: &str) -> bool {
    check_topic_filter(filter).is_ok()
}

/// Splits a shared subscription filter `$share/{group}/{filter}` into `(group, filter)`.
///
/// Returns `None` when `filter` does not start with `$share/` or when its shape is wrong: the
/// group must be non-empty and free of `/`, `+` and `#` [MQTT-4.8.2-1] [MQTT-4.8.2-2], and a
/// non-empty filter must follow the second `/`. The inner filter's wildcards are not checked here
/// (`valid_topic_filter` does that).
pub fn parse_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return None;
    }
    Some((group, inner))
}

/// `valid_topic_name` with the broken rule as the error.
pub(crate) fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty topic name");
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err("topic name longer than 65535 bytes");
    }
    if !has_wildcard_or_nul(name.as_bytes()) {
        return Ok(());
    }
    if name.contains('\0') {
        return Err("U+0000 in topic name");
    }
    Err("wildcard in topic name")
}

/// True if `bytes` contain `+`, `#` or NUL. Runs for every PUBLISH, so it scans 16 bytes per
/// step without branches, which the compiler turns into vector compares.
fn has_wildcard_or_nul(bytes: &[u8]) -> bool {
    let special = |b: u8| (b == b'+') | (b == b'#') | (b == 0);
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |acc, &b| acc | special(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

/// `valid_topic_filter` with the broken rule as the error.
pub(crate) fn check_topic_filter(filter: &str) -> Result<(), &'static str> {
    if filter.len() > MAX_TOPIC_LEN {
        return Err("topic filter longer than 65535 bytes");
    }
    if filter.starts_with(SHARE_PREFIX) {
        let (_, inner) = parse_shared(filter).ok_or("malformed $share/{group}/{filter}")?;
        return check_plain_filter(inner);
    }
    check_plain_filter(filter)
}

fn check_plain_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty topic filter");
    }
    if filter.contains('\0') {
        return Err("U+0000 in topic filter");
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" if levels.peek().is_some() => return Err("'#' not in the last level"),
            "#" | "+" => {}
            _ if level.contains('#') => return Err("'#' not alone in its level"),
            _ if level.contains('+') => return Err("'+' not alone in its level"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "/a/",
            "$SYS/x",
            "a b",
            "sport/tennis/player1",
            "v1.2",
        ] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "+", "#", "a/+", "a/#", "a+b", "a#", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        // Past the 16-byte fast path, at and around chunk boundaries.
        for at in [0, 15, 16, 17, 31, 32, 40] {
            for c in ['+', '#', '\0'] {
                let mut name = "x".repeat(41);
                name.replace_range(at..=at, &c.to_string());
                assert!(!valid_topic_name(&name), "{c:?} at {at}");
            }
        }
        assert!(valid_topic_name(&"é/".repeat(40)));
        assert!(!valid_topic_name(&"a".repeat(65_536)));
        assert!(valid_topic_name(&"a".repeat(65_535)));
    }

    #[test]
    fn topic_filters() {
        let ok = [
            "#",
            "+",
            "/",
            "a/#",
            "a/+",
            "+/+",
            "+/#",
            "/+",
            "a//b",
            "sport/+/player1",
            "$SYS/#",
        ];
        for f in ok {
            assert!(valid_topic_filter(f), "{f:?}");
        }
        let bad = [
            "", "a#", "a/#/b", "#/", "a/b#", "a+", "a/+b", "+a/b", "##", "++", "a\0",
        ];
        for f in bad {
            assert!(!valid_topic_filter(f), "{f:?}");
        }
    }

    #[test]
    fn shared_filters() {
        assert_eq!(parse_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(parse_shared("$share/g/#"), Some(("g", "#")));
        assert_eq!(parse_shared("$share/g//"), Some(("g", "/")));
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$share"), None);
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/+/a",
            "$share/g#/a",
        ] {
            assert_eq!(parse_shared(bad), None, "{bad:?}");
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert!(valid_topic_filter("$share/g/+/x/#"));
        assert!(!valid_topic_filter("$share/g/a#"));
        // Without the trailing slash it is an ordinary filter.
        assert!(valid_topic_filter("$share"));
        assert!(valid_topic_filter("$sharex/a"));
    }
}
