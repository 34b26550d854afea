//! Which permission each AMQP method needs, checked before the method runs, as RabbitMQ's
//! access-control guide lists them: declaring or deleting a queue or exchange needs configure
//! on it; queue.bind write on the queue and read on the exchange; exchange.bind write on the
//! destination and read on the source (unbind the same); basic.publish write on the exchange;
//! basic.consume, basic.get and queue.purge read on the queue. A refusal is a 403 channel
//! error with RabbitMQ's text. Passive declares only look and need no permission (RabbitMQ).
//!
//! The connection caches its user's permission on its vhost and re-fetches it when the
//! access-control snapshot changes (one atomic load per check).

use std::borrow::Cow;
use std::sync::Arc;

use ferromq_amqp::{reply_code, ChannelId, Method, ShortString};

use super::conn::Connection;
use super::reply_code::AmqpError;
use crate::auth::permissions::{refused_text, Access, Permission, Resource};

/// The connection's cached permission.
#[derive(Debug, Default)]
pub struct Grant {
    generation: u64,
    permission: Option<Arc<Permission>>,
}

/// The name as text, borrowed when it is valid UTF-8 (no allocation on the publish path).
fn text(s: &ShortString) -> Cow<'_, str> {
    String::from_utf8_lossy(s.as_bytes())
}

impl Connection {
    /// Checks that the connection's user may run `method`; `Err` is the 403 channel error.
    pub(super) fn authorize(&mut self, id: ChannelId, method: &Method) -> Result<(), AmqpError> {
        use Access::{Configure, Read, Write};
        use Resource::{Exchange, Queue};
        let checks: [Option<(Access, Resource, Cow<str>)>; 2] = match method {
            Method::ExchangeDeclare(m) if !m.passive => {
                [Some((Configure, Exchange, text(&m.exchange))), None]
            }
            Method::ExchangeDelete(m) => [Some((Configure, Exchange, text(&m.exchange))), None],
            Method::ExchangeBind(m) => [
                Some((Write, Exchange, text(&m.destination))),
                Some((Read, Exchange, text(&m.source))),
            ],
            Method::ExchangeUnbind(m) => [
                Some((Write, Exchange, text(&m.destination))),
                Some((Read, Exchange, text(&m.source))),
            ],
            Method::QueueDeclare(m) if !m.passive => {
                let name = text(&m.queue);
                if name.starts_with(super::reply_to::PSEUDO_QUEUE) {
                    return Ok(());
                }
                // A server-named queue is checked as RabbitMQ does, by an `amq.gen-` name.
                let name = if name.is_empty() {
                    Cow::Owned(format!("amq.gen-{}", crate::broker::vhost::random_token()))
                } else {
                    name
                };
                [Some((Configure, Queue, name)), None]
            }
            Method::QueueDelete(m) => [
                self.queue(id, &m.queue).map(|q| (Configure, Queue, q)),
                None,
            ],
            Method::QueuePurge(m) => [self.queue(id, &m.queue).map(|q| (Read, Queue, q)), None],
            Method::QueueBind(m) => [
                self.queue(id, &m.queue).map(|q| (Write, Queue, q)),
                Some((Read, Exchange, text(&m.exchange))),
            ],
            Method::QueueUnbind(m) => [
                self.queue(id, &m.queue).map(|q| (Write, Queue, q)),
                Some((Read, Exchange, text(&m.exchange))),
            ],
            Method::BasicPublish(m) => [Some((Write, Exchange, text(&m.exchange))), None],
            Method::BasicConsume(m)
                if m.queue.as_bytes() != super::reply_to::PSEUDO_QUEUE.as_bytes() =>
            {
                [self.queue(id, &m.queue).map(|q| (Read, Queue, q)), None]
            }
            Method::BasicGet(m) => [self.queue(id, &m.queue).map(|q| (Read, Queue, q)), None],
            _ => return Ok(()),
        };
        let permission = self.current_permission();
        for (access, resource, name) in checks.into_iter().flatten() {
            if !permission
                .as_ref()
                .is_some_and(|p| p.allows(access, resource, &name))
            {
                let text = refused_text(resource, &name, &self.vhost.name, &self.tuned.user);
                tracing::info!(peer = %self.peer, user = %self.tuned.user, ?access, "AMQP: {text}");
                return Err(AmqpError::channel(
                    reply_code::ACCESS_REFUSED,
                    text,
                    Some(method.id()),
                ));
            }
        }
        Ok(())
    }

    /// The queue a method names, or the channel's last declared one for `""`; `None` when
    /// there is none (the method then fails on its own with 404).
    fn queue<'a>(&self, id: ChannelId, name: &'a ShortString) -> Option<Cow<'a, str>> {
        if !name.is_empty() {
            return Some(text(name));
        }
        self.channels.get(&id.0)?.last_queue.clone().map(Cow::Owned)
    }

    /// The user's permission on the vhost, re-fetched when the access snapshot changed (a
    /// `ferromq permissions set` applies to open connections at their next check).
    fn current_permission(&mut self) -> Option<Arc<Permission>> {
        let generation = self.core.auth.generation();
        if generation != self.grant.generation {
            self.grant = Grant {
                generation,
                permission: self
                    .core
                    .auth
                    .permission(&self.tuned.user, &self.vhost.name),
            };
        }
        self.grant.permission.clone()
    }
}
