//! The headers exchange (AMQP 0-9-1 section 3.1.3.4, with RabbitMQ's semantics): a binding's
//! arguments are a pattern over the message's headers, and `x-match` says how to combine it:
//! `all` (the default) or `any` of the pattern entries must match, ignoring entries whose name
//! starts with `x-`; `all-with-x` and `any-with-x` include them. An entry whose value is `Void`
//! asks only that the header be present; otherwise the value must match by RabbitMQ's comparison
//! ([`HeaderValue::matches`]: integers by value across types, never a string against a number).
//! A message without headers matches only an `all` binding with no entries that count.
//!
//! The routing key is ignored. Headers come from the AMQP `headers` property; a message from
//! MQTT has none of those, and its MQTT 5 user properties are matched as long strings instead.
//! Bindings are scanned linearly, as RabbitMQ does.

use std::sync::Arc;

use parking_lot::RwLock;

use super::{BindingKey, ExchangeType};
use crate::broker::binding::Binding;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::message::Message;

/// A headers exchange.
#[derive(Default)]
pub struct HeadersExchange {
    bindings: RwLock<Vec<Entry>>,
}

struct Entry {
    /// The binding arguments as given: part of the binding's identity.
    arguments: Headers,
    mode: Mode,
    binding: Binding,
}

/// A parsed `x-match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    /// `any` instead of `all`.
    any: bool,
    /// Pattern entries named `x-...` count too.
    with_x: bool,
}

impl HeadersExchange {
    /// An exchange with no bindings.
    pub fn new() -> HeadersExchange {
        HeadersExchange::default()
    }
}

impl ExchangeType for HeadersExchange {
    fn route(&self, message: &Message, _levels: &[&str]) -> Arc<[Binding]> {
        let data = Data::of(message);
        self.bindings
            .read()
            .iter()
            .filter(|e| matches(e.mode, &e.arguments, &data))
            .map(|e| e.binding.clone())
            .collect()
    }

    fn bind(&self, _key: BindingKey<'_>, arguments: &Headers, binding: Binding) -> bool {
        let mut bindings = self.bindings.write();
        if bindings
            .iter()
            .any(|e| e.binding == binding && e.arguments == *arguments)
        {
            return false;
        }
        bindings.push(Entry {
            // Invalid modes are refused by `validate_binding` before a bind; a caller that
            // skipped it gets the default.
            mode: parse_mode(arguments).unwrap_or(Mode {
                any: false,
                with_x: false,
            }),
            arguments: arguments.clone(),
            binding,
        });
        true
    }

    fn unbind(&self, _key: BindingKey<'_>, arguments: &Headers, binding: &Binding) -> bool {
        let mut bindings = self.bindings.write();
        match bindings
            .iter()
            .position(|e| e.binding == *binding && e.arguments == *arguments)
        {
            Some(at) => {
                bindings.swap_remove(at);
                true
            }
            None => false,
        }
    }

    fn validate_binding(&self, arguments: &Headers) -> Result<(), String> {
        parse_mode(arguments).map(|_| ())
    }
}

/// Reads `x-match`; the error is RabbitMQ's text.
fn parse_mode(arguments: &Headers) -> Result<Mode, String> {
    let Some(value) = arguments.get("x-match") else {
        return Ok(Mode {
            any: false,
            with_x: false,
        });
    };
    let HeaderValue::LongString(text) = value else {
        return Err(format!(
            "Invalid x-match field type {} (value {}); expected longstr",
            value.type_name(),
            value.display()
        ));
    };
    let (any, with_x) = match &text[..] {
        b"all" => (false, false),
        b"any" => (true, false),
        b"all-with-x" => (false, true),
        b"any-with-x" => (true, true),
        other => {
            return Err(format!(
                "Invalid x-match field value \"{}\"; expected all, any, all-with-x, or any-with-x",
                String::from_utf8_lossy(other)
            ))
        }
    };
    Ok(Mode { any, with_x })
}

/// The headers a message is matched on.
enum Data<'a> {
    Amqp(&'a Headers),
    Mqtt(&'a [(String, String)]),
    None,
}

impl<'a> Data<'a> {
    fn of(message: &'a Message) -> Data<'a> {
        match &message.properties.amqp {
            Some(amqp) => amqp.headers.as_ref().map_or(Data::None, Data::Amqp),
            None if !message.properties.user_properties.is_empty() => {
                Data::Mqtt(&message.properties.user_properties)
            }
            None => Data::None,
        }
    }

    /// True if the message has header `name` and it satisfies `pattern`.
    fn satisfies(&self, name: &str, pattern: &HeaderValue) -> bool {
        match self {
            Data::Amqp(headers) => headers
                .get(name)
                .is_some_and(|v| *pattern == HeaderValue::Void || pattern.matches(v)),
            Data::Mqtt(properties) => {
                properties
                    .iter()
                    .find(|(k, _)| k == name)
                    .is_some_and(|(_, v)| match pattern {
                        HeaderValue::Void => true,
                        HeaderValue::LongString(p) => p[..] == *v.as_bytes(),
                        _ => false,
                    })
            }
            Data::None => false,
        }
    }
}

fn matches(mode: Mode, pattern: &Headers, data: &Data<'_>) -> bool {
    let mut entries = pattern
        .iter()
        .filter(|(k, _)| k != "x-match" && (mode.with_x || !k.starts_with("x-")));
    if mode.any {
        entries.any(|(k, v)| data.satisfies(k, v))
    } else {
        entries.all(|(k, v)| data.satisfies(k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::exchange::test_support::{destination, message};

    fn h(entries: &[(&str, HeaderValue)]) -> Headers {
        entries.iter().cloned().collect()
    }

    fn s(text: &str) -> HeaderValue {
        HeaderValue::string(text)
    }

    /// Whether a message with `headers` routes through a binding with `arguments`.
    fn hit(arguments: &Headers, headers: Option<Headers>) -> bool {
        let x = HeadersExchange::new();
        assert_eq!(x.validate_binding(arguments), Ok(()));
        let (_d, b) = destination();
        x.bind(BindingKey::Amqp(""), arguments, b);
        !x.route(&message("ignored", headers), &[]).is_empty()
    }

    #[test]
    fn all_needs_every_entry_and_ignores_x_entries() {
        let args = h(&[
            ("x-match", s("all")),
            ("format", s("pdf")),
            ("type", s("report")),
            ("x-tag", s("ignored")),
        ]);
        assert!(hit(
            &args,
            Some(h(&[("type", s("report")), ("format", s("pdf"))]))
        ));
        assert!(!hit(&args, Some(h(&[("format", s("pdf"))]))));
        assert!(!hit(
            &args,
            Some(h(&[("format", s("pdf")), ("type", s("log"))]))
        ));
        // `all` is the default.
        let default = h(&[("format", s("pdf"))]);
        assert!(hit(&default, Some(h(&[("format", s("pdf"))]))));
        assert!(!hit(&default, None));
    }

    #[test]
    fn any_needs_one_entry() {
        let args = h(&[
            ("x-match", s("any")),
            ("format", s("pdf")),
            ("type", s("report")),
        ]);
        assert!(hit(&args, Some(h(&[("type", s("report"))]))));
        assert!(hit(
            &args,
            Some(h(&[("format", s("pdf")), ("type", s("x"))]))
        ));
        assert!(!hit(&args, Some(h(&[("format", s("zip"))]))));
        assert!(!hit(&args, None));
        // `any` with nothing that counts matches nothing.
        assert!(!hit(
            &h(&[("x-match", s("any"))]),
            Some(h(&[("a", s("b"))]))
        ));
    }

    #[test]
    fn with_x_variants_count_x_entries() {
        let all_x = h(&[
            ("x-match", s("all-with-x")),
            ("x-tag", s("t")),
            ("k", s("v")),
        ]);
        assert!(hit(&all_x, Some(h(&[("x-tag", s("t")), ("k", s("v"))]))));
        assert!(!hit(&all_x, Some(h(&[("k", s("v"))]))));
        let any_x = h(&[("x-match", s("any-with-x")), ("x-tag", s("t"))]);
        assert!(hit(&any_x, Some(h(&[("x-tag", s("t"))]))));
        assert!(!hit(&any_x, Some(h(&[("x-tag", s("u"))]))));
        // Plain `any` ignores the same entry.
        let any = h(&[("x-match", s("any")), ("x-tag", s("t"))]);
        assert!(!hit(&any, Some(h(&[("x-tag", s("t"))]))));
    }

    #[test]
    fn void_matches_presence_only() {
        let args = h(&[("flag", HeaderValue::Void)]);
        assert!(hit(&args, Some(h(&[("flag", HeaderValue::I32(0))]))));
        assert!(hit(&args, Some(h(&[("flag", s("anything"))]))));
        assert!(!hit(&args, Some(h(&[("other", s("x"))]))));
    }

    #[test]
    fn equality_is_type_sensitive() {
        let args = h(&[("n", HeaderValue::I32(1))]);
        assert!(hit(&args, Some(h(&[("n", HeaderValue::I64(1))]))));
        assert!(hit(&args, Some(h(&[("n", HeaderValue::U8(1))]))));
        assert!(!hit(&args, Some(h(&[("n", s("1"))]))));
        assert!(!hit(&args, Some(h(&[("n", HeaderValue::F64(1.0))]))));
        assert!(!hit(
            &h(&[("n", s("1"))]),
            Some(h(&[("n", HeaderValue::I32(1))]))
        ));
    }

    #[test]
    fn no_headers_match_only_an_empty_all_binding() {
        assert!(hit(&Headers::new(), None));
        assert!(hit(&h(&[("x-match", s("all"))]), None));
        assert!(hit(&h(&[("x-match", s("all"))]), Some(h(&[("a", s("b"))]))));
        assert!(!hit(&h(&[("x-match", s("any"))]), None));
        assert!(!hit(&h(&[("a", s("b"))]), None));
    }

    #[test]
    fn mqtt_user_properties_match_as_strings() {
        let x = HeadersExchange::new();
        let (_d, b) = destination();
        x.bind(BindingKey::Amqp(""), &h(&[("site", s("lyon"))]), b);
        let mut m = message("t", None);
        m.properties.user_properties = vec![("site".into(), "lyon".into())];
        assert_eq!(x.route(&m, &[]).len(), 1);
        m.properties.user_properties = vec![("site".into(), "paris".into())];
        assert!(x.route(&m, &[]).is_empty());
    }

    #[test]
    fn invalid_x_match_is_refused_and_arguments_identify_bindings() {
        let x = HeadersExchange::new();
        assert!(x
            .validate_binding(&h(&[("x-match", s("some"))]))
            .unwrap_err()
            .contains("Invalid x-match field value"));
        assert!(x
            .validate_binding(&h(&[("x-match", HeaderValue::I32(1))]))
            .unwrap_err()
            .contains("expected longstr"));
        let (_d, b) = destination();
        let a1 = h(&[("a", s("1"))]);
        let a2 = h(&[("a", s("2"))]);
        assert!(x.bind(BindingKey::Amqp(""), &a1, b.clone()));
        assert!(!x.bind(BindingKey::Amqp(""), &a1, b.clone()));
        assert!(x.bind(BindingKey::Amqp(""), &a2, b.clone()));
        assert!(x.unbind(BindingKey::Amqp(""), &a1, &b));
        assert!(!x.unbind(BindingKey::Amqp(""), &a1, &b));
        assert_eq!(
            x.route(&message("t", Some(h(&[("a", s("2"))]))), &[]).len(),
            1
        );
    }
}
