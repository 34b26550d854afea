//! basic.publish and its content: the method, then a content header, then body frames until
//! the announced size (AMQP 0-9-1 section 4.2.6). A complete message is routed inline; an
//! unroutable mandatory one comes back as basic.return (312 NO_ROUTE), and in confirm mode the
//! publish is counted for the next basic.ack. Direct reply-to (`reply_to`): a request's
//! `reply_to = amq.rabbitmq.reply-to` is rewritten to the channel's reply address, and a
//! publish to the default exchange with such an address as routing key skips routing.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferromq_amqp::{
    encode_content, reply_code, BasicPublish, BasicReturn, ChannelId, ContentHeader, ContentMethod,
    ShortString, BASIC_CLASS_ID,
};

use super::basic::method_id;
use super::channel::Assembly;
use super::conn::{internal, Connection};
use super::reply_code::AmqpError;
use super::reply_to::{self, PSEUDO_QUEUE};
use super::translate;
use super::tx::HeldPublish;
use crate::broker::dispatch::dispatch;
use crate::broker::message::Message;

/// Largest message body accepted (RabbitMQ's default `max_message_size`, 128 MiB).
pub const MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;

impl Connection {
    pub(super) fn basic_publish(
        &mut self,
        id: ChannelId,
        m: BasicPublish,
    ) -> Result<(), AmqpError> {
        if m.immediate {
            // RabbitMQ 3.0 dropped `immediate`.
            return Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                "immediate=true",
                Some(method_id(60, 40)),
            ));
        }
        self.channel(id)?.publish = Some(Assembly {
            method: m,
            properties: None,
            body_size: 0,
            body: Vec::new(),
            received: 0,
        });
        Ok(())
    }

    pub(super) fn on_content_header(
        &mut self,
        id: ChannelId,
        header: ContentHeader,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let assembly = self.assembly(id, "content header")?;
        if assembly.properties.is_some() || header.class_id != BASIC_CLASS_ID {
            return Err(unexpected_frame("content header"));
        }
        if header.body_size > MAX_MESSAGE_SIZE {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                format!(
                    "message size {} is larger than configured max size {MAX_MESSAGE_SIZE}",
                    header.body_size
                ),
                Some(method_id(60, 40)),
            ));
        }
        assembly.properties = Some(header.properties);
        assembly.body_size = header.body_size;
        if header.body_size == 0 {
            return self.complete_publish(id, wbuf);
        }
        Ok(())
    }

    pub(super) fn on_content_body(
        &mut self,
        id: ChannelId,
        body: Bytes,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let assembly = self.assembly(id, "content body")?;
        if assembly.properties.is_none() {
            return Err(unexpected_frame("content body"));
        }
        assembly.received += body.len() as u64;
        if assembly.received > assembly.body_size {
            return Err(AmqpError::connection(
                reply_code::FRAME_ERROR,
                format!(
                    "content body exceeds the announced size {}",
                    assembly.body_size
                ),
                None,
            ));
        }
        assembly.body.push(body);
        if assembly.received == assembly.body_size {
            return self.complete_publish(id, wbuf);
        }
        Ok(())
    }

    fn assembly(&mut self, id: ChannelId, what: &str) -> Result<&mut Assembly, AmqpError> {
        let channel = self
            .channels
            .get_mut(&id.0)
            .ok_or_else(|| unexpected_frame(what))?;
        channel
            .publish
            .as_mut()
            .ok_or_else(|| unexpected_frame(what))
    }

    fn complete_publish(&mut self, id: ChannelId, wbuf: &mut BytesMut) -> Result<(), AmqpError> {
        let Some(mut assembly) = self.channel(id)?.publish.take() else {
            return Ok(());
        };
        let body = assembly.take_body();
        let mut properties = assembly.properties.take().unwrap_or_default();
        // RabbitMQ's validated user-id: a publisher can only claim the user it logged in as.
        if let Some(claimed) = properties
            .user_id
            .as_ref()
            .filter(|u| u.as_bytes() != self.tuned.user.as_bytes())
        {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                format!(
                    "user_id property set to '{}' but authenticated user was '{}'",
                    String::from_utf8_lossy(claimed.as_bytes()),
                    self.tuned.user
                ),
                Some(method_id(60, 40)),
            ));
        }
        // RabbitMQ's maybe_set_fast_reply_to: only the channel's reply consumer can be
        // addressed, and the address names it (connection + channel + consumer).
        if properties
            .reply_to
            .as_ref()
            .is_some_and(|r| r.as_bytes() == PSEUDO_QUEUE.as_bytes())
        {
            let Some(reply) = self.channel(id)?.reply.as_ref() else {
                return Err(AmqpError::channel(
                    reply_code::PRECONDITION_FAILED,
                    "fast reply consumer does not exist",
                    Some(method_id(60, 40)),
                ));
            };
            properties.reply_to = Some(ShortString::truncating(reply.address()));
        }
        let m = assembly.method;
        let exchange = String::from_utf8_lossy(m.exchange.as_bytes()).into_owned();
        let mut message = translate::to_message(
            &exchange,
            m.routing_key.as_bytes(),
            properties,
            body,
            Instant::now(),
        );
        // RabbitMQ's MQTT plugin: an AMQP publish to the MQTT exchange with header
        // `x-mqtt-retain: true` is retained for MQTT subscribers.
        let vhost = &self.vhost;
        message.retain =
            *exchange == *vhost.mqtt_exchange().name && translate::wants_retain(&message);
        let message = Arc::new(message);
        // Not awaited by the publisher's confirm (the queues' verdicts are).
        drop(vhost.update_retained(&message));
        if exchange.is_empty() {
            if let Some(token) = reply_to::token_of(m.routing_key.as_bytes()) {
                return self.publish_reply(id, &m, token, message, wbuf);
            }
        }
        // The shared result as is: `dispatch` merges a destination reached twice, so a
        // deduplicated copy would only repeat that work.
        let bindings = self
            .vhost
            .route_shared(&exchange, &message)
            .map_err(|e| AmqpError::from_vhost(e, method_id(60, 40)))?;
        if let Some(tx) = self.channel(id)?.tx.as_mut() {
            tx.publishes.push(HeldPublish {
                message,
                bindings,
                mandatory: m
                    .mandatory
                    .then(|| (m.exchange.clone(), m.routing_key.clone())),
            });
            return Ok(());
        }
        let confirming = self.channel(id)?.confirms.is_some();
        let (reached, verdict) = if confirming {
            // Only confirm-mode publishers need to learn of queues refusing the message.
            let d = self
                .vhost
                .dispatch_with_outcome(&message, &bindings, &mut self.pending);
            (d.reached, d.verdict)
        } else {
            (dispatch(&message, &bindings, &mut self.pending), None)
        };
        if reached == 0 && m.mandatory {
            self.write_return(
                id,
                m.exchange.clone(),
                m.routing_key.clone(),
                &message,
                wbuf,
            )?;
        }
        if let Some(c) = self.channel(id)?.confirms.as_mut() {
            c.published += 1;
            let seq = c.published;
            if let Some(v) = verdict {
                self.verdicts.push((id, seq, v));
            }
        }
        Ok(())
    }
}

impl Connection {
    /// A reply to a direct reply-to address: straight to the reply consumer, no queue. It is
    /// not held by a transaction (nothing to roll back: RabbitMQ delivers it at once too). If
    /// the consumer is gone the reply is dropped, or returned if mandatory; a confirm is sent
    /// either way, as for any routed-or-not publish.
    fn publish_reply(
        &mut self,
        id: ChannelId,
        m: &BasicPublish,
        token: &str,
        message: Arc<Message>,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let delivered = self.adapter.replies.deliver(token, Arc::clone(&message));
        if !delivered && m.mandatory {
            self.write_return(
                id,
                m.exchange.clone(),
                m.routing_key.clone(),
                &message,
                wbuf,
            )?;
        }
        if let Some(c) = self.channel(id)?.confirms.as_mut() {
            c.published += 1;
        }
        Ok(())
    }

    /// basic.return 312 NO_ROUTE with the message's content.
    pub(super) fn write_return(
        &mut self,
        id: ChannelId,
        exchange: ShortString,
        routing_key: ShortString,
        message: &Message,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let ret = BasicReturn {
            reply_code: reply_code::NO_ROUTE,
            reply_text: ShortString::from_static("NO_ROUTE"),
            exchange,
            routing_key,
        };
        let properties = translate::to_properties(message);
        encode_content(
            wbuf,
            id,
            ContentMethod::Return(&ret),
            &properties,
            &message.body,
            self.tuned.frame_max,
        )
        .map_err(internal)
    }
}

fn unexpected_frame(what: &str) -> AmqpError {
    AmqpError::connection(
        reply_code::UNEXPECTED_FRAME,
        format!("{what} without a basic.publish in progress"),
        None,
    )
}
