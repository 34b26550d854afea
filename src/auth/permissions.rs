//! Per-user, per-vhost permissions with RabbitMQ's semantics: three regular expressions
//! (configure, write, read) matched against queue and exchange names. Owns compiling and
//! matching them and the refusal text; which AMQP method needs which access is decided by the
//! AMQP adapter (`amqp/access.rs`).
//!
//! As in RabbitMQ (access-control guide): a pattern is searched anywhere in the name (not
//! anchored, so use `^...$` for an exact match), the empty pattern grants nothing, and the
//! default exchange is matched under the name `amq.default`.

use regex::Regex;

/// The name the default exchange `""` has for permission matching (RabbitMQ).
pub const DEFAULT_EXCHANGE: &str = "amq.default";

/// What an operation needs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Create or destroy (declare, delete).
    Configure,
    /// Inject messages (publish, the destination of a bind).
    Write,
    /// Take messages (consume, get, purge, the source of a bind).
    Read,
}

/// The kind of resource checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A queue.
    Queue,
    /// An exchange.
    Exchange,
}

impl Resource {
    /// The word RabbitMQ's refusal texts use.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        }
    }
}

/// One compiled permission pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// `""`: nothing matches.
    Nothing,
    /// `.*` (or `^.*$`): everything matches; skips the regex on the publish path.
    Everything,
    Regex(Regex),
}

impl Pattern {
    /// Compiles a pattern; an invalid regular expression is an error naming it.
    pub fn new(source: &str) -> Result<Pattern, regex::Error> {
        let matcher = match source {
            "" => Matcher::Nothing,
            ".*" | "^.*" | "^.*$" | ".*$" => Matcher::Everything,
            _ => Matcher::Regex(Regex::new(source)?),
        };
        Ok(Pattern {
            source: source.to_string(),
            matcher,
        })
    }

    /// True when `name` is granted.
    pub fn matches(&self, name: &str) -> bool {
        match &self.matcher {
            Matcher::Nothing => false,
            Matcher::Everything => true,
            Matcher::Regex(r) => r.is_match(name),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// A user's permissions on one vhost (`rabbitmqctl set_permissions`).
#[derive(Debug, Clone)]
pub struct Permission {
    /// Declare and delete.
    pub configure: Pattern,
    /// Publish and be bound to.
    pub write: Pattern,
    /// Consume, get, purge, be bound from.
    pub read: Pattern,
}

impl Permission {
    /// Compiles the three patterns.
    pub fn new(configure: &str, write: &str, read: &str) -> Result<Permission, regex::Error> {
        Ok(Permission {
            configure: Pattern::new(configure)?,
            write: Pattern::new(write)?,
            read: Pattern::new(read)?,
        })
    }

    /// Everything (`.*` three times), as the default user has on `/`.
    pub fn full() -> Permission {
        let all = Pattern {
            source: ".*".to_string(),
            matcher: Matcher::Everything,
        };
        Permission {
            configure: all.clone(),
            write: all.clone(),
            read: all,
        }
    }

    /// True when `access` to the resource called `name` is granted. The default exchange is
    /// matched as `amq.default`.
    pub fn allows(&self, access: Access, resource: Resource, name: &str) -> bool {
        let name = if resource == Resource::Exchange && name.is_empty() {
            DEFAULT_EXCHANGE
        } else {
            name
        };
        match access {
            Access::Configure => self.configure.matches(name),
            Access::Write => self.write.matches(name),
            Access::Read => self.read.matches(name),
        }
    }
}

/// RabbitMQ's refusal text: `access to queue 'q' in vhost '/' refused for user 'u'`.
pub fn refused_text(resource: Resource, name: &str, vhost: &str, user: &str) -> String {
    let name = if resource == Resource::Exchange && name.is_empty() {
        DEFAULT_EXCHANGE
    } else {
        name
    };
    format!(
        "access to {} '{name}' in vhost '{vhost}' refused for user '{user}'",
        resource.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rabbitmq_matching_rules() {
        let p = Permission::new("^tmp-", "^(amq\\.default|logs)$", "").unwrap();
        assert!(p.allows(Access::Configure, Resource::Queue, "tmp-1"));
        assert!(!p.allows(Access::Configure, Resource::Queue, "x-tmp-1"));
        // The default exchange is amq.default for matching.
        assert!(p.allows(Access::Write, Resource::Exchange, ""));
        assert!(p.allows(Access::Write, Resource::Exchange, "logs"));
        assert!(!p.allows(Access::Write, Resource::Exchange, "logs2"));
        // The empty pattern grants nothing, not even the empty name.
        assert!(!p.allows(Access::Read, Resource::Queue, ""));
        assert!(!p.allows(Access::Read, Resource::Queue, "q"));
        // Unanchored: a pattern is searched anywhere in the name.
        let q = Permission::new("q", "q", "q").unwrap();
        assert!(q.allows(Access::Read, Resource::Queue, "my-queue"));
        assert!(Permission::new("(", ".*", ".*").is_err());
        let full = Permission::full();
        assert!(full.allows(Access::Configure, Resource::Exchange, "anything"));
    }

    #[test]
    fn refusal_text_as_rabbitmq() {
        assert_eq!(
            refused_text(Resource::Exchange, "", "/", "bob"),
            "access to exchange 'amq.default' in vhost '/' refused for user 'bob'"
        );
        assert_eq!(
            refused_text(Resource::Queue, "q", "v", "u"),
            "access to queue 'q' in vhost 'v' refused for user 'u'"
        );
    }
}
