//! Exactly-once for the QoS 2 messages the broker sends to a persistent session, across a
//! crash. A receiver may hand a message on at PUBLISH and remember only its packet identifier
//! until PUBREL (MQTT 5.0 section 4.3.3, "Method A"), so two facts must outlive the process:
//!
//! - which identifier a message from the session's durable queue went out with: an `assigned`
//!   record (packet id, the message's store id) in the message log, written and fsynced before
//!   the PUBLISH leaves. After a restart the message is re-sent with that identifier and DUP=1,
//!   which such a receiver recognises, never as a new message it would deliver twice.
//! - that the receiver has it (PUBREC): a `released` record replaces the assigned one. It is
//!   fsynced before PUBREL leaves (the receiver forgets the identifier at PUBREL) and written
//!   before the queue settles the message (one persister, one order), so a restart re-sends
//!   only PUBREL. PUBCOMP settles it without waiting: a PUBREL re-sent for an identifier the
//!   receiver no longer knows gets PUBCOMP [MQTT-4.3.3-11], so nothing is delivered twice.
//!
//! At start `recover` takes these records, and the messages they name, out of the store before
//! the session's queue is rebuilt: the session holds those messages, not the queue
//! (`QueueAck::held`), and `restore` puts them back in flight, re-sent before anything new when
//! the client resumes [MQTT-4.4.0-1]. A session that is discarded settles its records.
//!
//! Costs: one small record and one shared group-commit wait per QoS 2 delivery of a persistent
//! session with a durable store; QoS 0/1 deliveries and clean sessions pay nothing. PUBLISH and
//! PUBREL packets that wait for their record hold back those queued behind them
//! (`PendingSends`), so the order of deliveries is kept.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use ferromq_mqtt::{PacketId, ReasonCode};
use tokio::sync::oneshot;

use super::session::{Inflight, Outgoing, QueueAck, Session};
use super::session_queue;
use super::Mqtt;
use crate::broker::message::Message;
use crate::broker::queue::{Admission, MessageId, QueueHandle, Verdict};
use crate::store::{MessageStore, StoreId};

/// Record kind: the message went out under the packet id (awaiting PUBREC).
const ASSIGNED: u8 = 1;
/// Record kind: PUBREC came, PUBREL is (to be) sent (awaiting PUBCOMP).
const RELEASED: u8 = 2;
/// Kind, packet id, message store id.
const RECORD_LEN: usize = 1 + 2 + 8;

/// The durable record of one outgoing QoS 2 packet identifier of a session.
#[derive(Debug, Clone)]
pub struct OutMarker {
    /// The record's own id in the store (settled when it is replaced or done).
    record: StoreId,
    /// The message it names (its record in the session's queue).
    message: StoreId,
    /// PUBREC came: only PUBREL is re-sent.
    released: bool,
    /// The record is on disk.
    durable: Arc<AtomicBool>,
}

/// One packet identifier recovered for a session at start.
pub struct RecoveredOut {
    /// The packet identifier.
    pub packet_id: u16,
    /// Its record.
    record: StoreId,
    /// The message's record.
    message_id: StoreId,
    /// The message to re-send; `None` once released (only PUBREL is re-sent).
    message: Option<Arc<Message>>,
}

/// The store's name for the records of session `client_id` (reserved `amq.` namespace).
pub fn store_name(client_id: &str) -> String {
    format!("amq.mqtt.qos2out/{client_id}")
}

/// Before `outgoing` goes out as QoS 2 PUBLISH `packet_id`: records the assignment when the
/// session is persistent and the message is in its durable queue; the PUBLISH waits for the
/// returned verdict. `None` (send at once) otherwise.
pub fn assign(
    mqtt: &Mqtt,
    session: &Session,
    packet_id: u16,
    outgoing: &Outgoing,
) -> Option<Verdict> {
    let ack = outgoing.ack.as_ref()?;
    let stored = ack.stored?;
    // Only the session's own queue is meant: a store id names a record of the durable store
    // only if the queue writes there (a shared group's queue does not).
    if outgoing.qos != 2
        || !ack.queue.is_durable()
        || !session_queue::is_queue_of(ack.queue.name(), &session.client_id)
        || !applies(mqtt, session)
    {
        return None;
    }
    Some(write(mqtt, session, packet_id, stored, false))
}

/// PUBREC for `packet_id`: records it as released and settles the message's record right
/// after it; PUBREL waits for the verdict. `None` if nothing was recorded for it.
///
/// The settle is sent here, from the connection, rather than left to the queue's ack: the
/// queue actor may take its time, and the PUBCOMP that settles the released record could
/// overtake it; a restart would then find the message and no record of its release, and send
/// it again as a new message. The queue's own settle later is a no-op for the store.
pub fn release(mqtt: &Mqtt, session: &Session, packet_id: u16) -> Option<Verdict> {
    let message = {
        let s = session.lock();
        let marker = s.qos2.as_ref()?.out.get(&packet_id)?;
        if marker.released {
            return None;
        }
        marker.message
    };
    let verdict = write(mqtt, session, packet_id, message, true);
    mqtt.vhost
        .store()
        .settle(&session_queue::queue_name(&session.client_id), message);
    Some(verdict)
}

/// A PUBLISH or PUBREL re-sent when a session resumes: if its record is not on disk yet (the
/// previous connection was still waiting for it), writes it again and returns what to wait for.
pub fn resend(mqtt: &Mqtt, session: &Session, packet_id: u16) -> Option<Verdict> {
    let (message, released) = {
        let s = session.lock();
        let marker = s.qos2.as_ref()?.out.get(&packet_id)?;
        if marker.durable.load(Ordering::Acquire) {
            return None;
        }
        (marker.message, marker.released)
    };
    Some(write(mqtt, session, packet_id, message, released))
}

/// PUBCOMP (or the exchange ended otherwise): the record of `packet_id` goes.
pub fn complete(mqtt: &Mqtt, session: &Session, packet_id: u16) {
    let marker = session
        .lock()
        .qos2
        .as_mut()
        .and_then(|q| q.out.remove(&packet_id));
    if let Some(m) = marker {
        mqtt.vhost
            .store()
            .settle(&store_name(&session.client_id), m.record);
    }
}

/// The session ended: every record goes.
pub fn forget_all(mqtt: &Mqtt, session: &Session) {
    let markers = session
        .lock()
        .qos2
        .as_mut()
        .map(|q| std::mem::take(&mut q.out))
        .unwrap_or_default();
    let name = store_name(&session.client_id);
    for m in markers.into_values() {
        mqtt.vhost.store().settle(&name, m.record);
    }
}

/// At start, before the queues are rebuilt: takes the records of recovered session
/// `client_id` and the messages they name (out of its queue's recovered messages). Of several
/// records for one identifier the newest counts (a released record is written before the
/// assigned one it replaces is settled); a message already settled is not re-sent, and one
/// released but not yet settled is settled now.
pub fn recover(store: &dyn MessageStore, client_id: &str) -> Vec<RecoveredOut> {
    let name = store_name(client_id);
    let mut latest: BTreeMap<u16, (StoreId, bool, StoreId)> = BTreeMap::new();
    for r in store.take_recovered(&name) {
        let decoded = r
            .message
            .or_else(|| store.read(r.id))
            .and_then(|m| decode(&m.body));
        let Some((released, packet_id, message)) = decoded else {
            tracing::warn!(%client_id, "undecodable outgoing QoS 2 record dropped");
            store.settle(&name, r.id);
            continue;
        };
        let newer = (r.id, released, message);
        match latest.insert(packet_id, newer) {
            Some(old) if old.0 > r.id => {
                latest.insert(packet_id, old);
                store.settle(&name, r.id);
            }
            Some(old) => store.settle(&name, old.0),
            None => {}
        }
    }
    if latest.is_empty() {
        return Vec::new();
    }
    let queue = session_queue::queue_name(client_id);
    let ids: HashSet<StoreId> = latest.values().map(|(_, _, m)| *m).collect();
    let mut messages: HashMap<StoreId, _> = store
        .take_recovered_ids(&queue, &ids)
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let mut out = Vec::with_capacity(latest.len());
    for (packet_id, (record, released, message_id)) in latest {
        let found = messages.remove(&message_id);
        let message = if released {
            if let Some(m) = found {
                // Released before the crash, its settle did not make it to disk.
                store.settle(&queue, m.id);
            }
            None
        } else {
            let body = found.and_then(|m| m.message.or_else(|| store.read(m.id)));
            if body.is_none() {
                // The message left the queue (settled, or the queue was deleted): nothing to
                // re-send under this identifier.
                store.settle(&name, record);
                continue;
            }
            body
        };
        out.push(RecoveredOut {
            packet_id,
            record,
            message_id,
            message,
        });
    }
    tracing::info!(%client_id, packet_ids = out.len(), "outgoing QoS 2 state recovered");
    out
}

/// Puts the recovered identifiers of `session` back in flight (after its subscriptions, which
/// decide RETAIN and subscription identifiers of the re-sent PUBLISH).
pub fn restore(mqtt: &Mqtt, session: &Session, queue: &QueueHandle, recovered: Vec<RecoveredOut>) {
    let store = mqtt.vhost.store();
    for r in recovered {
        let released = r.message.is_none();
        let entry = match r.message {
            Some(message) => {
                let options = session.options_for(&message).unwrap_or_default();
                Inflight::AwaitAck(Outgoing {
                    message,
                    // It went out as QoS 2: it is re-sent as that [MQTT-4.4.0-1].
                    qos: 2,
                    retain: options.retain,
                    subscription_ids: options.subscription_ids,
                    ack: Some(QueueAck {
                        queue: queue.clone(),
                        id: MessageId(0),
                        stored: Some(r.message_id),
                        held: Some(Arc::clone(store)),
                    }),
                })
            }
            None => Inflight::AwaitComp,
        };
        session.restore_inflight(r.packet_id, entry);
        session.lock().qos2_mut().out.insert(
            r.packet_id,
            OutMarker {
                record: r.record,
                message: r.message_id,
                released,
                durable: Arc::new(AtomicBool::new(true)),
            },
        );
    }
}

/// What waits in `PendingSends`.
pub enum Send {
    /// A PUBLISH (DUP set for a re-send).
    Publish {
        /// The message.
        outgoing: Outgoing,
        /// Its packet identifier (QoS > 0).
        packet_id: Option<PacketId>,
        /// DUP flag.
        dup: bool,
    },
    /// PUBREL with this packet identifier and reason code.
    PubRel(PacketId, ReasonCode),
}

/// Sends in order, each with the verdict it waits for (`None`: only for those before it).
type Waiting = VecDeque<(Send, Option<Verdict>)>;

/// Packets to the client that wait for a record to be on disk, and those queued behind them,
/// oldest first. Boxed and made on first use: most connections never need it.
#[derive(Default)]
pub struct PendingSends {
    queue: Option<Box<Waiting>>,
}

impl PendingSends {
    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Returns `send` to write now if it has no verdict and nothing waits; else queues it.
    pub fn push(&mut self, send: Send, verdict: Option<Verdict>) -> Option<Send> {
        if verdict.is_none() && self.is_empty() {
            return Some(send);
        }
        self.queue
            .get_or_insert_with(Default::default)
            .push_back((send, verdict));
        None
    }

    /// Ready once the oldest waiting packet may go; never while none waits (see
    /// `PendingAcks::poll_front_ready`).
    pub fn poll_front_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((_, verdict)) = self.queue.as_mut().and_then(|q| q.front_mut()) else {
            return Poll::Pending;
        };
        if let Some(v) = verdict {
            if ready!(v.as_mut().poll(cx)) == Admission::Refused {
                tracing::warn!(
                    "outgoing QoS 2 packet identifier could not be stored; sent anyway \
                     (exactly-once across a crash is not kept for this message)"
                );
            }
            *verdict = None;
        }
        Poll::Ready(())
    }

    /// Takes every packet that may go now, in order.
    pub fn take_ready(&mut self, out: &mut Vec<Send>) {
        let Some(q) = self.queue.as_mut() else {
            return;
        };
        while matches!(q.front(), Some((_, None))) {
            if let Some((send, _)) = q.pop_front() {
                out.push(send);
            }
        }
        if q.is_empty() {
            self.queue = None;
        }
    }
}

fn applies(mqtt: &Mqtt, session: &Session) -> bool {
    mqtt.vhost.store().is_durable() && session.lock().expiry_secs > 0
}

/// Writes a record for `packet_id` (replacing the one before) and returns its verdict.
fn write(
    mqtt: &Mqtt,
    session: &Session,
    packet_id: u16,
    message: StoreId,
    released: bool,
) -> Verdict {
    let store = mqtt.vhost.store();
    let name = store_name(&session.client_id);
    let mut body = Vec::with_capacity(RECORD_LEN);
    body.push(if released { RELEASED } else { ASSIGNED });
    body.extend_from_slice(&packet_id.to_be_bytes());
    body.extend_from_slice(&message.0.to_be_bytes());
    let record = super::durable::marker_message(&session.client_id, Bytes::from(body));
    let durable = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&durable);
    let (tx, rx) = oneshot::channel();
    let id = store.enqueue(
        &name,
        &record,
        Some(Box::new(move |written| {
            flag.store(written, Ordering::Release);
            let _ = tx.send(written);
        })),
    );
    let old = session.lock().qos2_mut().out.insert(
        packet_id,
        OutMarker {
            record: id,
            message,
            released,
            durable,
        },
    );
    if let Some(old) = old {
        // After the new record: the channel to the persister keeps this order.
        store.settle(&name, old.record);
    }
    Box::pin(async move {
        match rx.await {
            Ok(true) => Admission::Accepted,
            _ => Admission::Refused,
        }
    })
}

/// (released, packet id, message store id) of a record body.
fn decode(body: &[u8]) -> Option<(bool, u16, StoreId)> {
    if body.len() != RECORD_LEN {
        return None;
    }
    let released = match body[0] {
        ASSIGNED => false,
        RELEASED => true,
        _ => return None,
    };
    let packet_id = u16::from_be_bytes(body.get(1..3)?.try_into().ok()?);
    let message = u64::from_be_bytes(body.get(3..11)?.try_into().ok()?);
    (packet_id != 0).then_some((released, packet_id, StoreId(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pubrel(id: u16) -> Send {
        Send::PubRel(PacketId::new(id).expect("non-zero"), ReasonCode::SUCCESS)
    }

    fn id_of(send: &Send) -> u16 {
        match send {
            Send::PubRel(id, _) => id.get(),
            Send::Publish { packet_id, .. } => packet_id.map_or(0, |p| p.get()),
        }
    }

    /// Sends leave in the order they came: one without a verdict waits behind one with a
    /// verdict still open, and a refused verdict (record not written) still lets it go.
    #[tokio::test]
    async fn pending_sends_keep_their_order() {
        let mut pending = PendingSends::default();
        assert!(
            pending.push(pubrel(1), None).is_some(),
            "nothing waits: at once"
        );
        let (tx2, rx2) = oneshot::channel::<Admission>();
        let (tx4, rx4) = oneshot::channel::<Admission>();
        let verdict = |rx: oneshot::Receiver<Admission>| -> Verdict {
            Box::pin(async move { rx.await.unwrap_or(Admission::Refused) })
        };
        assert!(pending.push(pubrel(2), Some(verdict(rx2))).is_none());
        assert!(pending.push(pubrel(3), None).is_none(), "behind 2");
        assert!(pending.push(pubrel(4), Some(verdict(rx4))).is_none());
        let mut out = Vec::new();
        pending.take_ready(&mut out);
        assert!(out.is_empty(), "2 still waits");
        tx2.send(Admission::Accepted).expect("open");
        std::future::poll_fn(|cx| pending.poll_front_ready(cx)).await;
        pending.take_ready(&mut out);
        assert_eq!(out.iter().map(id_of).collect::<Vec<_>>(), vec![2, 3]);
        drop(tx4);
        std::future::poll_fn(|cx| pending.poll_front_ready(cx)).await;
        pending.take_ready(&mut out);
        assert_eq!(out.iter().map(id_of).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert!(pending.is_empty());
    }

    #[test]
    fn session_queue_names_match_their_client() {
        assert!(session_queue::is_queue_of(
            "mqtt-subscription-abcqos1",
            "abc"
        ));
        assert!(!session_queue::is_queue_of(
            "mqtt-subscription-abqos1",
            "abc"
        ));
        assert!(!session_queue::is_queue_of("amq.mqtt.shared/g/t", "abc"));
    }

    #[test]
    fn records_decode_and_reject_garbage() {
        let mut body = vec![RELEASED];
        body.extend_from_slice(&7u16.to_be_bytes());
        body.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(decode(&body), Some((true, 7, StoreId(42))));
        body[0] = 9;
        assert_eq!(decode(&body), None);
        assert_eq!(decode(&body[..5]), None);
        assert_eq!(decode(&[ASSIGNED, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
