//! The exchange and queue classes: declare, delete, bind, unbind, purge. Thin: arguments are
//! translated and the vhost registry decides (equivalence, reserved names, exclusivity).

use bytes::BytesMut;
use ferromq_amqp::{
    reply_code, ChannelId, ExchangeBind, ExchangeBindOk, ExchangeDeclare, ExchangeDeclareOk,
    ExchangeDelete, ExchangeDeleteOk, ExchangeUnbind, ExchangeUnbindOk, Method, QueueBind,
    QueueBindOk, QueueDeclare, QueueDeclareOk, QueueDelete, QueueDeleteOk, QueuePurge,
    QueuePurgeOk, QueueUnbind, QueueUnbindOk, ShortString,
};

use super::basic::method_id;
use super::conn::{send, Connection};
use super::reply_code::AmqpError;
use super::translate::headers_from_table;
use crate::broker::exchange::{BindingKey, ExchangeKind};
use crate::broker::vhost::{ExchangeSettings, QueueSettings};

fn text(s: &ShortString) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}

fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Connection {
    pub(super) fn exchange_declare(
        &mut self,
        id: ChannelId,
        m: ExchangeDeclare,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(40, 10);
        let name = text(&m.exchange);
        let kind_name = text(&m.kind);
        let kind = match ExchangeKind::parse(&kind_name) {
            Some(k) => k,
            // A passive declare does not look at the type (RabbitMQ).
            None if m.passive => ExchangeKind::Direct,
            None => {
                return Err(AmqpError::connection(
                    reply_code::COMMAND_INVALID,
                    format!("invalid exchange type '{kind_name}'"),
                    Some(mid),
                ))
            }
        };
        let settings = ExchangeSettings {
            kind,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: headers_from_table(m.arguments),
        };
        self.vhost
            .declare_exchange(&name, settings, m.passive)
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        reply(
            wbuf,
            id,
            m.no_wait,
            Method::ExchangeDeclareOk(ExchangeDeclareOk),
        )
    }

    pub(super) fn exchange_delete(
        &mut self,
        id: ChannelId,
        m: ExchangeDelete,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        self.vhost
            .delete_exchange(&text(&m.exchange), m.if_unused)
            .map_err(|e| AmqpError::from_vhost(e, method_id(40, 20)))?;
        reply(
            wbuf,
            id,
            m.no_wait,
            Method::ExchangeDeleteOk(ExchangeDeleteOk),
        )
    }

    pub(super) fn exchange_bind(
        &mut self,
        id: ChannelId,
        m: ExchangeBind,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let key = text(&m.routing_key);
        self.vhost
            .bind_exchange(
                &text(&m.destination),
                &text(&m.source),
                BindingKey::Amqp(&key),
                &headers_from_table(m.arguments),
            )
            .map_err(|e| AmqpError::from_vhost(e, method_id(40, 30)))?;
        reply(wbuf, id, m.no_wait, Method::ExchangeBindOk(ExchangeBindOk))
    }

    pub(super) fn exchange_unbind(
        &mut self,
        id: ChannelId,
        m: ExchangeUnbind,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let key = text(&m.routing_key);
        self.vhost
            .unbind_exchange(
                &text(&m.destination),
                &text(&m.source),
                BindingKey::Amqp(&key),
                &headers_from_table(m.arguments),
            )
            .map_err(|e| AmqpError::from_vhost(e, method_id(40, 40)))?;
        reply(
            wbuf,
            id,
            m.no_wait,
            Method::ExchangeUnbindOk(ExchangeUnbindOk),
        )
    }

    /// queue.declare of `amq.rabbitmq.reply-to` (always there) or of a reply address (there
    /// while its reply consumer is), passive or not: RabbitMQ's declare_fast_reply_to answers
    /// 0 messages, 1 consumer.
    fn reply_queue_declare(
        &mut self,
        id: ChannelId,
        m: &QueueDeclare,
        name: String,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let exists = name == super::reply_to::PSEUDO_QUEUE
            || super::reply_to::token_of(name.as_bytes())
                .is_some_and(|t| self.adapter.replies.exists(t));
        if !exists {
            return Err(AmqpError::channel(
                reply_code::NOT_FOUND,
                format!("no queue '{name}' in vhost '{}'", self.vhost.name),
                Some(method_id(50, 10)),
            ));
        }
        let ok = QueueDeclareOk {
            queue: ShortString::truncating(&name),
            message_count: 0,
            consumer_count: 1,
        };
        self.channel(id)?.last_queue = Some(name);
        reply(wbuf, id, m.no_wait, Method::QueueDeclareOk(ok))
    }

    pub(super) async fn queue_declare(
        &mut self,
        id: ChannelId,
        m: QueueDeclare,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let name = text(&m.queue);
        if name.starts_with(super::reply_to::PSEUDO_QUEUE) {
            return self.reply_queue_declare(id, &m, name, wbuf);
        }
        let settings = QueueSettings {
            durable: m.durable,
            exclusive: m.exclusive,
            auto_delete: m.auto_delete,
            arguments: headers_from_table(m.arguments),
            ..QueueSettings::default()
        };
        let info = self
            .vhost
            .declare_queue(&name, settings, m.passive, self.id)
            .map_err(|e| AmqpError::from_vhost(e, method_id(50, 10)))?;
        self.channel(id)?.last_queue = Some(info.name.to_string());
        if m.no_wait {
            return Ok(());
        }
        // Exact counts from the queue itself: the declaring client may just have published.
        let counts = info.handle.counts().await;
        let ok = QueueDeclareOk {
            queue: ShortString::truncating(&info.name),
            message_count: count(counts.ready),
            consumer_count: count(counts.consumers),
        };
        reply(wbuf, id, m.no_wait, Method::QueueDeclareOk(ok))
    }

    pub(super) fn queue_bind(
        &mut self,
        id: ChannelId,
        m: QueueBind,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(50, 20);
        let queue = self.queue_name(id, &m.queue, mid)?;
        let key = text(&m.routing_key);
        self.vhost
            .bind_queue(
                &queue,
                &text(&m.exchange),
                BindingKey::Amqp(&key),
                &headers_from_table(m.arguments),
                self.id,
            )
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        reply(wbuf, id, m.no_wait, Method::QueueBindOk(QueueBindOk))
    }

    pub(super) fn queue_unbind(
        &mut self,
        id: ChannelId,
        m: QueueUnbind,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(50, 50);
        let queue = self.queue_name(id, &m.queue, mid)?;
        let key = text(&m.routing_key);
        self.vhost
            .unbind_queue(
                &queue,
                &text(&m.exchange),
                BindingKey::Amqp(&key),
                &headers_from_table(m.arguments),
                self.id,
            )
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        send(wbuf, id, Method::QueueUnbindOk(QueueUnbindOk))
    }

    pub(super) async fn queue_purge(
        &mut self,
        id: ChannelId,
        m: QueuePurge,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(50, 30);
        let queue = self.queue_name(id, &m.queue, mid)?;
        let purged = self
            .vhost
            .purge_queue(&queue, self.id)
            .await
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        reply(
            wbuf,
            id,
            m.no_wait,
            Method::QueuePurgeOk(QueuePurgeOk {
                message_count: count(purged),
            }),
        )
    }

    pub(super) async fn queue_delete(
        &mut self,
        id: ChannelId,
        m: QueueDelete,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let mid = method_id(50, 40);
        let queue = self.queue_name(id, &m.queue, mid)?;
        let dropped = self
            .vhost
            .delete_queue(&queue, m.if_unused, m.if_empty, self.id)
            .await
            .map_err(|e| AmqpError::from_vhost(e, mid))?;
        reply(
            wbuf,
            id,
            m.no_wait,
            Method::QueueDeleteOk(QueueDeleteOk {
                message_count: count(dropped),
            }),
        )
    }
}

/// Sends the -ok method unless the client asked for no-wait.
fn reply(wbuf: &mut BytesMut, id: ChannelId, no_wait: bool, ok: Method) -> Result<(), AmqpError> {
    if no_wait {
        return Ok(());
    }
    send(wbuf, id, ok)
}
