//! Declaration arguments: which `x-` queue arguments exist, their types and ranges, how they
//! turn into queue limits, and when a redeclaration is equivalent. Texts follow RabbitMQ's
//! (`rabbit_amqqueue:declare_args/0`, `rabbit_misc:assert_args_equivalence/4`).

use std::sync::Arc;
use std::time::Duration;

use super::error::VhostError;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::queue::{Overflow, QueueLimits};

/// The queue arguments RabbitMQ validates and compares on redeclaration; others are ignored.
const QUEUE_ARGS: [&str; 11] = [
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
];

/// Checks a new queue's arguments and reads the limits the queue actor enforces. `resource` is
/// `queue 'q' in vhost '/'`.
pub(super) fn queue_limits(resource: &str, args: &Headers) -> Result<QueueLimits, VhostError> {
    let mut limits = QueueLimits::default();
    for key in QUEUE_ARGS {
        let Some(value) = args.get(key) else {
            continue;
        };
        let invalid = |reason: String| {
            VhostError::PreconditionFailed(format!("invalid arg '{key}' for {resource}: {reason}"))
        };
        match key {
            "x-max-length" => {
                limits.max_length = Some(to_usize(non_negative(value).map_err(invalid)?))
            }
            "x-max-length-bytes" => {
                limits.max_length_bytes = Some(to_usize(non_negative(value).map_err(invalid)?))
            }
            "x-message-ttl" => {
                let ms = non_negative(value).map_err(invalid)?;
                limits.message_ttl = Some(Duration::from_millis(ms.unsigned_abs()));
            }
            "x-overflow" => {
                limits.overflow = match string(value).map_err(invalid)? {
                    b"drop-head" => Overflow::DropHead,
                    b"reject-publish" => Overflow::RejectPublish,
                    b"reject-publish-dlx" => Overflow::RejectPublishDlx,
                    other => {
                        return Err(invalid(format!(
                            "{{unknown_overflow_type,{}}}",
                            binary(other)
                        )))
                    }
                }
            }
            "x-queue-type" => match string(value).map_err(invalid)? {
                b"classic" => {}
                other => {
                    return Err(VhostError::PreconditionFailed(format!(
                        "invalid arg 'x-queue-type' for {resource}: queue type '{}' is not \
                         supported by this broker (only 'classic')",
                        String::from_utf8_lossy(other)
                    )))
                }
            },
            "x-expires" => {
                let ms = positive(value).map_err(invalid)?;
                limits.expires = Some(Duration::from_millis(ms.unsigned_abs()));
            }
            "x-max-priority" => {
                // 0 is accepted, as RabbitMQ does: one level, like no priorities.
                let p = non_negative(value).map_err(invalid)?;
                let p =
                    u8::try_from(p).map_err(|_| invalid(format!("{{max_value_exceeded,{p}}}")))?;
                limits.max_priority = Some(p);
            }
            "x-dead-letter-exchange" => {
                let dlx = string(value).map_err(invalid)?;
                limits.dead_letter_exchange = Some(Arc::from(String::from_utf8_lossy(dlx)));
            }
            "x-dead-letter-routing-key" => {
                let key = string(value).map_err(invalid)?;
                if !args.contains_key("x-dead-letter-exchange") {
                    return Err(invalid("routing_key_but_no_dlx_defined".to_string()));
                }
                limits.dead_letter_routing_key = Some(Arc::from(String::from_utf8_lossy(key)));
            }
            "x-queue-mode" => match string(value).map_err(invalid)? {
                b"default" | b"lazy" => {}
                other => return Err(invalid(format!("{{unknown_queue_mode,{}}}", binary(other)))),
            },
            "x-single-active-consumer" => match value.as_bool() {
                Some(on) => limits.single_active_consumer = on,
                None => return Err(invalid(unacceptable(value))),
            },
            _ => {}
        }
    }
    Ok(limits)
}

/// Redeclaring a queue must repeat the arguments RabbitMQ compares; a missing `x-queue-type`
/// equals `classic`.
pub(super) fn assert_queue_equivalent(
    resource: &str,
    current: &Headers,
    received: &Headers,
) -> Result<(), VhostError> {
    let classic = HeaderValue::string("classic");
    for key in QUEUE_ARGS {
        let defaulted = |h: &Headers| {
            let v = h.get(key);
            if key == "x-queue-type" && v.is_none() {
                Some(classic.clone())
            } else {
                v.cloned()
            }
        };
        assert_arg_equivalent(
            resource,
            key,
            defaulted(current).as_ref(),
            defaulted(received).as_ref(),
        )?;
    }
    Ok(())
}

/// Checks a new exchange's arguments: `alternate-exchange` must be a string.
pub(super) fn check_exchange_args(resource: &str, args: &Headers) -> Result<(), VhostError> {
    match args.get("alternate-exchange") {
        None | Some(HeaderValue::LongString(_)) => Ok(()),
        Some(v) => Err(invalid_type(resource, v)),
    }
}

/// Redeclaring an exchange compares `alternate-exchange` only, as RabbitMQ does.
pub(super) fn assert_exchange_equivalent(
    resource: &str,
    current: &Headers,
    received: &Headers,
) -> Result<(), VhostError> {
    let key = "alternate-exchange";
    assert_arg_equivalent(resource, key, current.get(key), received.get(key))
}

/// `inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is
/// 'false'`.
pub(super) fn inequivalent(resource: &str, key: &str, received: &str, current: &str) -> VhostError {
    VhostError::PreconditionFailed(format!(
        "inequivalent arg '{key}' for {resource}: received {received} but current is {current}"
    ))
}

fn assert_arg_equivalent(
    resource: &str,
    key: &str,
    current: Option<&HeaderValue>,
    received: Option<&HeaderValue>,
) -> Result<(), VhostError> {
    match (current, received) {
        (None, None) => Ok(()),
        (Some(c), Some(r)) if c.matches(r) => Ok(()),
        (Some(c), Some(r)) => Err(inequivalent(
            resource,
            key,
            &format!("'{}'", r.display()),
            &format!("'{}'", c.display()),
        )),
        (c, r) => Err(inequivalent(resource, key, &typed(r), &typed(c))),
    }
}

/// `none`, or `the value '5' of type 'long'`.
fn typed(value: Option<&HeaderValue>) -> String {
    match value {
        None => "none".to_string(),
        Some(v) => format!("the value '{}' of type '{}'", v.display(), v.type_name()),
    }
}

fn invalid_type(resource: &str, value: &HeaderValue) -> VhostError {
    VhostError::PreconditionFailed(format!(
        "invalid type '{}' for arg 'alternate-exchange' in {resource}",
        value.type_name()
    ))
}

/// An integer of one of RabbitMQ's integer argument types, at least 0.
fn non_negative(value: &HeaderValue) -> Result<i64, String> {
    match value.as_i64() {
        Some(v) if v < 0 => Err(format!("{{value_negative,{v}}}")),
        Some(v) => Ok(v),
        None => Err(unacceptable(value)),
    }
}

/// An integer of one of RabbitMQ's integer argument types, at least 1.
fn positive(value: &HeaderValue) -> Result<i64, String> {
    match non_negative(value)? {
        0 => Err("{value_zero,0}".to_string()),
        v => Ok(v),
    }
}

fn string(value: &HeaderValue) -> Result<&[u8], String> {
    match value {
        HeaderValue::LongString(b) => Ok(b),
        other => Err(unacceptable(other)),
    }
}

fn unacceptable(value: &HeaderValue) -> String {
    format!("{{unacceptable_type,{}}}", value.type_name())
}

/// An Erlang binary as `~p` prints it: `<<"text">>`.
fn binary(bytes: &[u8]) -> String {
    format!("<<\"{}\">>", String::from_utf8_lossy(bytes))
}

fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
