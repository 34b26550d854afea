//! MQTT 5 shared subscriptions `$share/{group}/{filter}` (section 4.8.2). A group is a queue in
//! the vhost named `mqtt-shared-<group>-<filter>`, bound to the MQTT exchange with the group's
//! filter; each online member session is a competing consumer of it, and so can be any AMQP
//! consumer of that queue. The queue holds messages while no member can take them, hands each
//! message to one member round-robin, and gets back (requeued) what a member had queued but
//! not sent when it goes offline, so another member receives it. The queue goes when the last
//! MQTT member leaves.
//!
//! Durability: with a durable store the group's queue is durable, and while the group has a
//! persistent member (session expiry above 0, clean session 0) a QoS 1/2 message waiting in it
//! (all members offline, or not yet taken by one) is on disk before PUBACK / PUBREC, like one
//! waiting in a persistent session's queue, and survives a crash. QoS 0 messages are never
//! written. Members are not recorded with the group: persistent sessions record their
//! `$share/...` subscriptions (`durable.rs`) and rejoin at start; a group no restored session
//! rejoined had only clean-session members, which a restart ends, so it is deleted then with
//! what it held (`drop_orphaned`). Such a group therefore writes nothing while it has only
//! clean-session members (`QueueHandle::set_persisting`), keeping the in-memory cost; a
//! message that arrived before the first persistent member joined stays in memory only. Its queue carries
//! the argument `x-mqtt-shared-group`, so that clean-up never touches an AMQP client's queue
//! that merely has a similar name.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::queue_sink::{tag, SendAs, SessionSink};
use super::session::Session;
use super::session_queue::MQTT_ADAPTER;
use super::Mqtt;
use crate::broker::binding::BindingOptions;
use crate::broker::exchange::BindingKey;
use crate::broker::headers::{HeaderValue, Headers};
use crate::broker::queue::QueueHandle;
use crate::broker::vhost::{QueueSettings, VhostError};

/// Messages a member may hold (queued in its session or in flight) before the group's queue
/// gives new ones to other members; bounds what a slow member keeps from the rest.
const MEMBER_PREFETCH: u32 = 64;

/// The declaration argument that marks a queue as a shared group's (its value: the share
/// name). Not one the queue interprets: AMQP redeclarations need not repeat it.
pub const GROUP_ARGUMENT: &str = "x-mqtt-shared-group";

/// One shared-subscription group for one filter.
pub struct SharedGroup {
    /// The share name.
    pub group: String,
    /// The topic filter after `$share/{group}/`.
    pub filter: String,
    /// The group's queue.
    pub queue: QueueHandle,
    members: Mutex<HashMap<Arc<str>, Member>>,
}

/// What the group knows of one member session.
#[derive(Clone, Copy)]
struct Member {
    options: BindingOptions,
    /// The session outlives its connection (session expiry above 0, clean session 0).
    persistent: bool,
}

impl SharedGroup {
    /// Declares the group's queue (at most `max_queued_messages` ready messages, oldest
    /// dropped; durable when the store is) and binds it to the MQTT exchange with `filter`.
    /// Takes over the queue recovered at start. Fails only when an AMQP client declared a
    /// queue of that name otherwise (transient, with other arguments, or exclusively).
    pub fn new(mqtt: &Mqtt, group: &str, filter: &str) -> Result<Arc<SharedGroup>, VhostError> {
        let vhost = &mqtt.vhost;
        let max = mqtt.core.config.mqtt.max_queued_messages;
        let mut arguments = Headers::new();
        arguments.push(
            "x-max-length",
            HeaderValue::I64(i64::try_from(max).unwrap_or(i64::MAX)),
        );
        arguments.push(GROUP_ARGUMENT, HeaderValue::string(group));
        let name = queue_name(group, filter);
        // This group's queue kept from before a restart is taken over with the arguments it
        // was created with, as a persistent session's queue is: a `max_queued_messages`
        // changed since must not make the members' rejoin an inequivalent declare (406).
        let marker = HeaderValue::string(group);
        if let Some(kept) = vhost
            .queue_settings(&name)
            .filter(|s| s.arguments.get(GROUP_ARGUMENT) == Some(&marker))
        {
            arguments = kept.arguments;
        }
        let settings = QueueSettings {
            durable: vhost.store().is_durable(),
            arguments,
            ..QueueSettings::default()
        };
        let queue = vhost
            .declare_queue(&name, settings, false, MQTT_ADAPTER)?
            .handle;
        let exchange = vhost.mqtt_exchange().name.to_string();
        vhost.bind_queue(
            &name,
            &exchange,
            BindingKey::Mqtt(filter),
            Headers::empty(),
            MQTT_ADAPTER,
        )?;
        Ok(Arc::new(SharedGroup {
            group: group.to_string(),
            filter: filter.to_string(),
            queue,
            members: Mutex::new(HashMap::new()),
        }))
    }

    /// The last member left: the queue goes, with its binding.
    pub fn delete(&self, mqtt: &Mqtt) {
        mqtt.vhost.delete_queue_now(&self.queue);
    }

    /// Adds a member or updates its options; an online member starts consuming at once.
    pub fn join(&self, session: &Arc<Session>, options: BindingOptions) {
        let member = Member {
            options,
            persistent: session.lock().expiry_secs > 0,
        };
        let previous = {
            let mut members = self.members.lock();
            let previous = members.insert(Arc::clone(&session.client_id), member);
            self.persist_if_needed(&members);
            previous
        };
        if previous.is_some() {
            self.queue.cancel_nowait(tag(session), false);
        }
        if session.is_online() {
            self.consume(session, options);
        }
    }

    /// The member's connection is up: it consumes again (replacing the consumer of a
    /// connection it took over, so the queue never sees two consumers with one tag).
    pub fn attach(&self, session: &Arc<Session>) {
        // The connection may have changed the session's expiry (and so whether it persists).
        let persistent = session.lock().expiry_secs > 0;
        let options = {
            let mut members = self.members.lock();
            let member = members.get_mut(&session.client_id).map(|m| {
                m.persistent = persistent;
                m.options
            });
            self.persist_if_needed(&members);
            member
        };
        if let Some(options) = options {
            self.queue.cancel_nowait(tag(session), false);
            self.consume(session, options);
        }
    }

    /// The member's connection went away: stop giving it messages (what it has in flight stays
    /// with it, MQTT 5.0 section 4.8.2; what it had queued the session requeues).
    pub fn detach(&self, session: &Arc<Session>) {
        self.queue.cancel_nowait(tag(session), false);
    }

    /// Removes a member; returns how many remain.
    pub fn leave(&self, session: &Arc<Session>) -> usize {
        let mut members = self.members.lock();
        if members.remove(&session.client_id).is_some() {
            self.queue.cancel_nowait(tag(session), true);
        }
        self.persist_if_needed(&members);
        members.len()
    }

    /// The queue writes persistent messages only while a member session is persistent: a
    /// group of clean sessions only is deleted at start anyway (`drop_orphaned`), so it keeps
    /// the in-memory path's cost (no fsync before PUBACK).
    fn persist_if_needed(&self, members: &HashMap<Arc<str>, Member>) {
        self.queue
            .set_persisting(members.values().any(|m| m.persistent));
    }

    fn consume(&self, session: &Arc<Session>, options: BindingOptions) {
        let send_as = SendAs::Subscription(options);
        SessionSink::consume(session, &self.queue, send_as, MEMBER_PREFETCH);
    }
}

/// Deletes the group queues of `mqtt`'s vhost that no session joined: at start, after the
/// persistent sessions rejoined theirs, these are the groups of clean-session members only
/// (recovered because the store keeps every durable queue). Their messages go with them, as
/// they would have with the members' sessions.
pub fn drop_orphaned(mqtt: &Mqtt) {
    let vhost = &mqtt.vhost;
    for name in vhost.queue_names() {
        if !name.starts_with("mqtt-shared-") || mqtt.shared.iter().any(|g| g.queue.name() == &name)
        {
            continue;
        }
        let ours = vhost
            .queue_settings(&name)
            .is_some_and(|s| s.arguments.get(GROUP_ARGUMENT).is_some());
        if let Some(handle) = vhost.queue_handle(&name).filter(|_| ours) {
            if vhost.delete_queue_now(&handle) {
                tracing::info!(vhost = %vhost.name, queue = %name,
                    "shared subscription group with no persistent member deleted at start");
            }
        }
    }
}

/// The queue's name, as AMQP clients find it (the filter in MQTT form, e.g.
/// `mqtt-shared-workers-jobs/+`).
pub fn queue_name(group: &str, filter: &str) -> String {
    format!("mqtt-shared-{group}-{filter}")
}
