//! The tx class (AMQP 0-9-1 section 1.9): on a transactional channel, publishes and
//! acknowledgements are held until tx.commit applies them or tx.rollback discards them
//! (rolled-back acks leave their messages unacknowledged, as in RabbitMQ). A channel is either
//! transactional or in confirm mode, never both (RabbitMQ: 406).

use std::sync::Arc;

use bytes::BytesMut;
use ferromq_amqp::{reply_code, ChannelId, Method, TxCommitOk, TxRollbackOk, TxSelectOk};

use super::basic::method_id;
use super::channel::Unacked;
use super::conn::{send, Connection};
use super::reply_code::AmqpError;
use crate::broker::message::Message;
use crate::broker::vhost::Routed;

/// What a transactional channel holds until commit.
#[derive(Default)]
pub struct TxBuffer {
    /// Routed but not yet delivered publishes, in order.
    pub publishes: Vec<HeldPublish>,
    /// Acks (requeue `None`), nacks and rejects, with their delivery tags for rollback.
    pub settlements: Vec<(u64, Unacked, Option<bool>)>,
}

/// A publish held by a transaction.
pub struct HeldPublish {
    /// The message.
    pub message: Arc<Message>,
    /// Where it routes (decided at publish time, as the exchange is checked then).
    pub bindings: Routed,
    /// The publish's mandatory flag and the names to return it with.
    pub mandatory: Option<(ferromq_amqp::ShortString, ferromq_amqp::ShortString)>,
}

impl Connection {
    pub(super) fn tx_select(
        &mut self,
        id: ChannelId,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let channel = self.channel(id)?;
        if channel.confirms.is_some() {
            return Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                "cannot switch from confirm to tx mode",
                Some(method_id(90, 10)),
            ));
        }
        channel.tx.get_or_insert_with(TxBuffer::default);
        send(wbuf, id, Method::TxSelectOk(TxSelectOk))
    }

    pub(super) fn tx_commit(
        &mut self,
        id: ChannelId,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let held = self.take_tx(id, method_id(90, 20))?;
        for p in held.publishes {
            // Durable queues answer once the message is on disk. commit-ok is written below but
            // leaves only after every pending wait, so waiting on their answers there makes the
            // commit durable before it is acknowledged (RabbitMQ).
            let d =
                self.core
                    .vhost
                    .dispatch_with_outcome(&p.message, &p.bindings, &mut self.pending);
            if let Some(verdict) = d.verdict {
                self.pending.push(Box::pin(async move {
                    verdict.await;
                }));
            }
            let reached = d.reached;
            if let (0, Some((exchange, routing_key))) = (reached, p.mandatory) {
                self.write_return(id, exchange, routing_key, &p.message, wbuf)?;
            }
        }
        // Highest tag first, so requeued messages keep their order (see basic_ack).
        let mut settlements = held.settlements;
        settlements.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        let opened = self
            .channel(id)?
            .release_credit(settlements.iter().map(|s| &s.1));
        for (_, u, requeue) in settlements {
            match requeue {
                None => u.queue.ack(u.id),
                Some(requeue) => u.queue.reject(u.id, requeue),
            }
        }
        self.after_release(id, opened, wbuf)?;
        send(wbuf, id, Method::TxCommitOk(TxCommitOk))
    }

    pub(super) fn tx_rollback(
        &mut self,
        id: ChannelId,
        wbuf: &mut BytesMut,
    ) -> Result<(), AmqpError> {
        let held = self.take_tx(id, method_id(90, 30))?;
        let channel = self.channel(id)?;
        for (tag, u, _) in held.settlements {
            channel.unacked.insert(tag, u);
        }
        send(wbuf, id, Method::TxRollbackOk(TxRollbackOk))
    }

    /// Empties the channel's transaction (the channel stays transactional).
    fn take_tx(
        &mut self,
        id: ChannelId,
        mid: ferromq_amqp::MethodId,
    ) -> Result<TxBuffer, AmqpError> {
        match self.channel(id)?.tx.as_mut() {
            Some(tx) => Ok(std::mem::take(tx)),
            None => Err(AmqpError::channel(
                reply_code::PRECONDITION_FAILED,
                "channel is not transactional",
                Some(mid),
            )),
        }
    }
}
