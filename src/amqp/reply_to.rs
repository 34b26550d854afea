//! RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): an RPC client consumes the pseudo-queue
//! `amq.rabbitmq.reply-to` in no-ack mode, publishes requests with that `reply_to`, and the
//! broker rewrites it to `amq.rabbitmq.reply-to.<token>`; a reply published to the default
//! exchange with that routing key goes straight to the consumer, with no queue in between.
//!
//! Owns the broker's registry token -> reply consumer ([`Registry`], one per broker, held by the
//! AMQP adapter state). An entry lives exactly as long as its [`ReplyConsumer`] (dropped with
//! basic.cancel, the channel, or the connection), so a reply to a consumer that is gone finds
//! nothing and is dropped (or returned if mandatory). Tokens are random (`random_token`), so
//! they are not guessable. Must not touch queues or routing: replies never enter the routing
//! core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use ferromq_amqp::ChannelId;
use tokio::sync::mpsc;

use super::consumer::{Outbound, BACKLOG_HIGH};
use crate::broker::message::Message;

/// The pseudo-queue a reply consumer consumes from, and the `reply_to` value a request carries.
pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
/// Prefix of the rewritten `reply_to` (and of the routing key a reply is published with).
const PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Replies buffered for one reply consumer before further ones are dropped. RabbitMQ applies no
/// flow control to direct reply-to; this bound only keeps a stalled requester from growing its
/// connection's mailbox without limit (overflow policy: drop, or return if mandatory).
const REPLY_BACKLOG_MAX: usize = BACKLOG_HIGH;

/// Where replies for one token go.
struct Target {
    mailbox: mpsc::UnboundedSender<Outbound>,
    channel: ChannelId,
    consumer_tag: Arc<str>,
    backlog: Arc<AtomicUsize>,
}

/// Every live reply consumer of one broker, by token.
#[derive(Default)]
pub struct Registry {
    targets: DashMap<Box<str>, Target>,
}

/// A channel's reply consumer (at most one per channel, RabbitMQ's `reply_consumer`).
/// Dropping it unregisters the token.
pub struct ReplyConsumer {
    /// The AMQP consumer tag.
    pub tag: Arc<str>,
    /// The full rewritten `reply_to`: `amq.rabbitmq.reply-to.<token>`.
    address: String,
    registry: Arc<Registry>,
}

impl ReplyConsumer {
    /// Registers a reply consumer writing to `mailbox` as `channel` / `tag`.
    pub fn register(
        registry: &Arc<Registry>,
        mailbox: mpsc::UnboundedSender<Outbound>,
        channel: ChannelId,
        tag: Arc<str>,
    ) -> ReplyConsumer {
        let token = crate::broker::vhost::random_token();
        let address = format!("{PREFIX}{token}");
        registry.targets.insert(
            token.into(),
            Target {
                mailbox,
                channel,
                consumer_tag: Arc::clone(&tag),
                backlog: Arc::new(AtomicUsize::new(0)),
            },
        );
        ReplyConsumer {
            tag,
            address,
            registry: Arc::clone(registry),
        }
    }

    /// The `reply_to` a request published on this channel carries.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for ReplyConsumer {
    fn drop(&mut self) {
        if let Some(token) = token_of(self.address.as_bytes()) {
            self.registry.targets.remove(token);
        }
    }
}

/// A reply on its way to a reply consumer's connection.
pub struct Reply {
    /// The reply consumer's channel.
    pub channel: ChannelId,
    /// The reply consumer's tag (a later reply consumer on the channel has another).
    pub consumer_tag: Arc<str>,
    /// The message as published.
    pub message: Arc<Message>,
    /// The reply consumer's backlog, decremented when written.
    pub backlog: Arc<AtomicUsize>,
}

/// The token of a routing key `amq.rabbitmq.reply-to.<token>`, if it is one.
pub fn token_of(routing_key: &[u8]) -> Option<&str> {
    let rest = routing_key.strip_prefix(PREFIX.as_bytes())?;
    std::str::from_utf8(rest).ok().filter(|t| !t.is_empty())
}

impl Registry {
    /// True if `token` names a live reply consumer (queue.declare of
    /// `amq.rabbitmq.reply-to.<token>`).
    pub fn exists(&self, token: &str) -> bool {
        self.targets
            .get(token)
            .is_some_and(|t| !t.mailbox.is_closed())
    }

    /// Hands a reply to the consumer behind `token`; false if there is none (gone, or its
    /// backlog is full), and the caller drops or returns the message.
    pub fn deliver(&self, token: &str, message: Arc<Message>) -> bool {
        let Some(target) = self.targets.get(token) else {
            return false;
        };
        if target.backlog.load(Ordering::Relaxed) >= REPLY_BACKLOG_MAX {
            return false;
        }
        target.backlog.fetch_add(1, Ordering::Relaxed);
        let sent = target.mailbox.send(Outbound::Reply(Reply {
            channel: target.channel,
            consumer_tag: Arc::clone(&target.consumer_tag),
            message,
            backlog: Arc::clone(&target.backlog),
        }));
        if sent.is_err() {
            target.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        sent.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_what_follows_the_prefix() {
        assert_eq!(token_of(b"amq.rabbitmq.reply-to.abc"), Some("abc"));
        assert_eq!(token_of(b"amq.rabbitmq.reply-to."), None);
        assert_eq!(token_of(b"amq.rabbitmq.reply-to"), None);
        assert_eq!(token_of(b"q"), None);
    }
}
