//! MQTT topic ACLs in Mosquitto's `acl_file` syntax. Owns parsing the file and deciding, for
//! one client, whether it may publish to a topic or subscribe to a filter. Knows no packets:
//! the MQTT adapter turns a refusal into SUBACK 0x80 / 0x87 or a dropped / 0x87 PUBLISH.
//!
//! Syntax (one rule per line, `#` starts a comment line, the topic is the rest of the line):
//!
//! ```text
//! topic [read|write|readwrite|deny] TOPIC     # before any `user` line: anonymous clients
//! user NAME                                   # following `topic` lines apply to NAME
//! pattern [read|write|readwrite|deny] TOPIC   # every client; %u = user name, %c = client id
//! ```
//!
//! The access word defaults to `readwrite`. With a file configured everything not granted is
//! refused; `deny` wins over grants. As in Mosquitto, a `pattern` whose `%u` / `%c` would be
//! filled with a value containing `+` or `#` is skipped (it must not widen into a wildcard),
//! and `%u` patterns never apply to anonymous clients.
//!
//! A SUBSCRIBE is granted when a readable rule covers the whole filter (every topic the filter
//! matches) and no `deny` rule covers it too. As in Mosquitto, a filter that only partly
//! overlaps a `deny` rule is granted and the denied topics are held back at delivery
//! (`may_read`, checked for every message sent), so `#` under `topic read #` plus
//! `topic deny secret/#` receives everything but `secret/...`.

use std::collections::HashMap;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAccess {
    /// Subscribe / receive.
    Read,
    /// Publish.
    Write,
    /// Both.
    ReadWrite,
    /// Neither, overriding grants.
    Deny,
}

impl AclAccess {
    fn parse(word: &str) -> Option<AclAccess> {
        match word {
            "read" => Some(AclAccess::Read),
            "write" => Some(AclAccess::Write),
            "readwrite" => Some(AclAccess::ReadWrite),
            "deny" => Some(AclAccess::Deny),
            _ => None,
        }
    }

    fn reads(self) -> bool {
        matches!(self, AclAccess::Read | AclAccess::ReadWrite)
    }

    fn writes(self) -> bool {
        matches!(self, AclAccess::Write | AclAccess::ReadWrite)
    }
}

/// A line of the ACL file that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("acl file line {line}: {why}")]
pub struct AclError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

#[derive(Debug, Clone)]
struct Rule {
    access: AclAccess,
    topic: String,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl AclFile {
    /// Parses the text of an ACL file.
    pub fn parse(text: &str) -> Result<AclFile, AclError> {
        let mut acl = AclFile::default();
        let mut current_user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: &str| AclError {
                line: i + 1,
                why: why.to_string(),
            };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err("`user` without a name"));
                    }
                    current_user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let (access, topic) = match rest.split_once(char::is_whitespace) {
                        Some((word, topic)) => match AclAccess::parse(word) {
                            Some(a) => (a, topic.trim()),
                            None => (AclAccess::ReadWrite, rest),
                        },
                        // `topic read` alone: an access word and no topic.
                        None if AclAccess::parse(rest).is_some() => (AclAccess::Deny, ""),
                        None => (AclAccess::ReadWrite, rest),
                    };
                    if topic.is_empty() {
                        return Err(err("rule without a topic"));
                    }
                    let rule = Rule {
                        access,
                        topic: topic.to_string(),
                    };
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(user) = &current_user {
                        acl.users.entry(user.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(err(&format!("unknown keyword `{other}`"))),
            }
        }
        Ok(acl)
    }

    /// The rules that apply to one client, with `%u` / `%c` filled in.
    pub fn for_client(&self, user: Option<&str>, client_id: &str) -> ClientAcl {
        let own = match user {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or_default(),
            None => &self.anonymous,
        };
        let mut rules: Vec<(AclAccess, Vec<String>)> =
            own.iter().map(|r| (r.access, levels(&r.topic))).collect();
        let unsafe_value = |v: &str| v.contains(['+', '#']);
        for r in &self.patterns {
            if r.topic.contains("%u") && user.is_none_or(unsafe_value) {
                continue;
            }
            if r.topic.contains("%c") && unsafe_value(client_id) {
                continue;
            }
            let topic = r
                .topic
                .replace("%u", user.unwrap_or_default())
                .replace("%c", client_id);
            rules.push((r.access, levels(&topic)));
        }
        ClientAcl { rules }
    }
}

/// The ACL rules of one connected client (substituted at CONNECT).
#[derive(Debug, Clone, Default)]
pub struct ClientAcl {
    rules: Vec<(AclAccess, Vec<String>)>,
}

impl ClientAcl {
    /// May the client publish to `topic` (no wildcards)? Runs on every PUBLISH: no allocation.
    pub fn may_publish(&self, topic: &str) -> bool {
        let mut granted = false;
        for (a, p) in &self.rules {
            if (*a == AclAccess::Deny || a.writes()) && topic_matches(p, topic) {
                if *a == AclAccess::Deny {
                    return false;
                }
                granted = true;
            }
        }
        granted
    }

    /// May the client receive a message published to `topic`? Runs on every delivery: no
    /// allocation.
    pub fn may_read(&self, topic: &str) -> bool {
        let mut granted = false;
        for (a, p) in &self.rules {
            if (*a == AclAccess::Deny || a.reads()) && topic_matches(p, topic) {
                if *a == AclAccess::Deny {
                    return false;
                }
                granted = true;
            }
        }
        granted
    }

    /// May the client subscribe to `filter` (the filter part of a shared subscription)? A
    /// `deny` rule refuses only a filter it wholly covers; a partial overlap is filtered per
    /// message by `may_read`.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        let f = levels(filter);
        if self
            .rules
            .iter()
            .any(|(a, p)| *a == AclAccess::Deny && covers(p, &f))
        {
            return false;
        }
        self.rules.iter().any(|(a, p)| a.reads() && covers(p, &f))
    }
}

fn levels(s: &str) -> Vec<String> {
    s.split('/').map(str::to_string).collect()
}

/// `topic` is matched by pattern `p` (MQTT matching; wildcards at the first level do not
/// match `$` topics [MQTT-4.7.2-1]).
fn topic_matches(p: &[String], topic: &str) -> bool {
    if topic.starts_with('$') && p.first().is_some_and(|l| l == "+" || l == "#") {
        return false;
    }
    let mut levels = topic.split('/');
    for pl in p {
        match pl.as_str() {
            // `a/#` matches `a` too [MQTT-4.7.1-2].
            "#" => return true,
            "+" => {
                if levels.next().is_none() {
                    return false;
                }
            }
            literal => {
                if levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    levels.next().is_none()
}

/// Every topic filter `f` matches is matched by pattern `p`.
fn covers(p: &[String], f: &[String]) -> bool {
    if f.first().is_some_and(|l| l.starts_with('$'))
        && p.first().is_some_and(|l| l == "+" || l == "#")
    {
        return false;
    }
    let mut i = 0;
    loop {
        match (p.get(i).map(String::as_str), f.get(i).map(String::as_str)) {
            (Some("#"), _) => return true,
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(pl), Some(fl)) if fl != "+" && pl == fl => {}
            (None, None) => return true,
            _ => return false,
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic write shared/in
topic deny alice/secret/#

pattern write devices/%c/up
pattern read users/%u/#
";

    #[test]
    fn anonymous_users_and_patterns() {
        let acl = AclFile::parse(FILE).unwrap();
        let anon = acl.for_client(None, "dev1");
        assert!(anon.may_subscribe("public/#"));
        assert!(anon.may_subscribe("public/a/+"));
        assert!(!anon.may_publish("public/a"));
        assert!(anon.may_publish("devices/dev1/up"));
        assert!(!anon.may_publish("devices/dev2/up"));
        // %u never applies to anonymous clients.
        assert!(!anon.may_subscribe("users//x"));

        let alice = acl.for_client(Some("alice"), "c1");
        assert!(alice.may_publish("alice/x"));
        assert!(alice.may_subscribe("alice/public/+"));
        // `alice/+/y` also matches `alice/secret/y`: granted, that topic is held back per
        // message (Mosquitto's order of checks).
        assert!(alice.may_subscribe("alice/+/y"));
        assert!(alice.may_read("alice/public/y"));
        assert!(!alice.may_read("alice/secret/y"));
        assert!(alice.may_publish("shared/in"));
        assert!(!alice.may_subscribe("shared/in"));
        assert!(!alice.may_publish("alice/secret/k"));
        // Only a filter the deny rule wholly covers is refused.
        assert!(alice.may_subscribe("alice/#"));
        assert!(!alice.may_subscribe("alice/secret/#"));
        assert!(!alice.may_subscribe("alice/secret/+"));
        assert!(!alice.may_read("shared/in"), "write-only");
        assert!(alice.may_read("users/alice/inbox"));
        assert!(alice.may_subscribe("users/alice/inbox"));
        assert!(!alice.may_subscribe("users/bob/inbox"));
        assert!(
            !alice.may_subscribe("public/#"),
            "anonymous rules are not alice's"
        );
    }

    #[test]
    fn wildcard_values_do_not_widen_patterns() {
        let acl = AclFile::parse("pattern readwrite devices/%c/#\n").unwrap();
        assert!(!acl.for_client(None, "+").may_publish("devices/x/y"));
        assert!(!acl.for_client(None, "#").may_subscribe("devices/#"));
        assert!(acl.for_client(None, "ok").may_subscribe("devices/ok/#"));
        assert!(!acl.for_client(None, "ok").may_subscribe("devices/+/#"));
    }

    #[test]
    fn dollar_topics_need_explicit_rules() {
        let acl = AclFile::parse("topic readwrite #\ntopic read $SYS/#\n").unwrap();
        let c = acl.for_client(None, "c");
        assert!(c.may_publish("a/b"));
        assert!(!c.may_publish("$SYS/x"));
        assert!(c.may_subscribe("$SYS/broker/#"));
        assert!(c.may_subscribe("#"));
    }

    #[test]
    fn publish_matching_edges() {
        let c = AclFile::parse("topic write a/#\ntopic write x/+\n")
            .unwrap()
            .for_client(None, "c");
        assert!(c.may_publish("a"), "a/# matches its parent level");
        assert!(c.may_publish("a/b/c"));
        assert!(!c.may_publish("ab"));
        assert!(c.may_publish("x/y"));
        assert!(c.may_publish("x/"), "+ matches an empty level");
        assert!(!c.may_publish("x/y/z"));
        assert!(!c.may_publish("x"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = AclFile::parse("topic read a\nbogus x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(AclFile::parse("user\n").is_err());
        assert!(AclFile::parse("topic read\n").is_err());
        let default = AclFile::parse("topic a/b\n").unwrap();
        assert!(default.for_client(None, "c").may_publish("a/b"));
    }
}
