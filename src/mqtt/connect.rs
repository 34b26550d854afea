//! CONNECT: client identifier rules, the login hook, session create / resume / takeover,
//! and CONNACK with the limits the broker enforces. Also the session's release when its
//! connection ends (expiry, clean-session discard).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferromq_mqtt::{ConnAck, Connect, Packet, Properties, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncRead, AsyncWrite};

use super::access::ClientAccess;
use super::conn::Conn;
use super::session::Session;
use super::{alias, session_queue, subscribe, Mqtt};
use crate::auth::{Credentials, Decision, VhostAccess};
use crate::connection::Framed;
use crate::transport::TlsInfo;

/// MQTT 3.1 limits client identifiers to 23 characters (3.1 spec, CONNECT payload).
const V31_MAX_CLIENT_ID: usize = 23;

/// Receive Maximum of a v5 client that sends none (MQTT 5.0 section 3.1.2.11.3).
const DEFAULT_RECEIVE_MAXIMUM: u16 = 65_535;

/// Runs the CONNECT exchange. On success CONNACK is queued in `io.wbuf` and the connection
/// state returned; on refusal CONNACK (if any) is queued and `None` returned.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    connect: Connect,
    io: &mut Framed<S>,
    peer: SocketAddr,
    tls: Option<&TlsInfo>,
    mqtt: &Arc<Mqtt>,
) -> Option<Conn> {
    let version = connect.protocol;
    let cfg = &mqtt.core.config.mqtt;
    let client_max_packet = connect
        .properties
        .maximum_packet_size
        .map_or(usize::MAX, |m| m as usize);
    let refuse = |io: &mut Framed<S>, code: ReasonCode, why: &str| {
        tracing::info!(%peer, client_id = %connect.client_id, code = code.0, "CONNECT refused: {why}");
        let mut ack = Packet::ConnAck(ConnAck {
            session_present: false,
            code,
            properties: Properties {
                reason_string: version.is_v5().then(|| why.to_string()),
                ..Properties::default()
            },
        });
        // [MQTT-3.2.2-19]: no Reason String that would exceed the client's Maximum Packet Size.
        if ferromq_mqtt::encoded_len(&ack, version).map_or(true, |n| n > client_max_packet) {
            if let Packet::ConnAck(a) = &mut ack {
                a.properties.reason_string = None;
            }
        }
        let _ = ferromq_mqtt::encode(&ack, version, &mut io.wbuf);
    };

    if connect.properties.authentication_method.is_some() {
        // No enhanced authentication method is configured [MQTT-4.12.0-1].
        refuse(
            io,
            ReasonCode::BAD_AUTHENTICATION_METHOD,
            "enhanced authentication is not supported",
        );
        return None;
    }
    let mut assigned = None;
    let client_id: Arc<str> = if connect.client_id.is_empty() {
        let allowed = match version {
            ProtocolVersion::V31 => false,
            // [MQTT-3.1.3-7], [MQTT-3.1.3-8]
            ProtocolVersion::V311 => connect.clean_start,
            ProtocolVersion::V5 => true,
        };
        if !allowed {
            refuse(
                io,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                "empty client identifier",
            );
            return None;
        }
        let id = generate_client_id();
        assigned = Some(id.clone());
        id.into()
    } else {
        if version == ProtocolVersion::V31 && connect.client_id.chars().count() > V31_MAX_CLIENT_ID
        {
            refuse(
                io,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                "MQTT 3.1 client identifier over 23 characters",
            );
            return None;
        }
        connect.client_id.as_str().into()
    };

    let tls_identity = tls.and_then(|t| t.identity.as_deref());
    // RabbitMQ's `vhost:username` convention selects the vhost; otherwise `[mqtt] vhost`.
    let (vhost, named) = match connect.username.as_deref() {
        Some(name) => match name.split_once(':') {
            Some((vhost, user)) => (vhost, Some(user)),
            None => (cfg.vhost.as_str(), Some(name)),
        },
        None => (cfg.vhost.as_str(), None),
    };
    let (username, password) = if tls.is_some() && mqtt.core.config.tls.mqtt_identity_as_username {
        // Mosquitto's use_identity_as_username: the certificate names the user, the CONNECT
        // user name and password are ignored, and no certificate means no user.
        match tls_identity {
            Some(id) => (Some(id), None),
            None => {
                refuse(
                    io,
                    ReasonCode::NOT_AUTHORIZED,
                    "a client certificate is required: its identity is the user name",
                );
                return None;
            }
        }
    } else {
        (named, connect.password.as_deref())
    };
    let decision = mqtt
        .core
        .auth
        .login(&Credentials {
            protocol: "mqtt",
            client_id: &client_id,
            username,
            password,
            peer,
            tls_identity,
        })
        .await;
    let user = match decision {
        Decision::Allow { user } => user,
        Decision::BadCredentials => {
            refuse(
                io,
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                "bad user name or password",
            );
            return None;
        }
        Decision::NotAuthorized => {
            refuse(io, ReasonCode::NOT_AUTHORIZED, "not authorized");
            return None;
        }
    };
    // `max_connections_per_user`: CONNACK 0x97 Quota exceeded (v3: 3 Server unavailable).
    let user_slot = match user.as_deref() {
        Some(name) => match mqtt.core.limits.connections.try_user(name) {
            Ok(slot) => Some(slot),
            Err(max) => {
                let why = format!("user connection limit ({max}) is reached");
                refuse(io, ReasonCode::QUOTA_EXCEEDED, &why);
                return None;
            }
        },
        None => None,
    };
    // The permission itself is looked up again with the ACL (`ClientAccess::current`).
    match mqtt.core.auth.vhost_access(user.as_deref(), vhost) {
        VhostAccess::Allowed(_) => {}
        VhostAccess::NoSuchVhost => {
            refuse(io, ReasonCode::NOT_AUTHORIZED, "no such vhost");
            return None;
        }
        VhostAccess::Refused => {
            refuse(io, ReasonCode::NOT_AUTHORIZED, "access to vhost refused");
            return None;
        }
    };
    let Some(host) = mqtt.core.vhost_named(vhost) else {
        refuse(io, ReasonCode::NOT_AUTHORIZED, "no such vhost");
        return None;
    };
    // From here on the client lives in its vhost: sessions, subscriptions, publishes.
    let mqtt = &mqtt.in_vhost(host);
    let access = ClientAccess::current(
        &mqtt.core.auth,
        user.as_deref(),
        &client_id,
        &mqtt.vhost.name,
        &mqtt.vhost.mqtt_exchange().name,
    );
    if let Some(will) = &connect.will {
        // As Mosquitto: a will the client could not publish itself refuses the connection.
        if !access.may_publish(&will.topic) {
            refuse(io, ReasonCode::NOT_AUTHORIZED, "will topic not authorized");
            return None;
        }
    }

    if !version.is_v5() && connect.keep_alive > cfg.max_keepalive_secs {
        // A v3 client cannot be told to use a shorter keep alive (v5 gets Server Keep Alive),
        // and lowering it silently would drop a compliant client; refuse it as Mosquitto's
        // `max_keepalive` does.
        refuse(
            io,
            ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            "keep alive above the broker's maximum",
        );
        return None;
    }

    // v3: clean session 0 keeps the session forever; v5: Session Expiry Interval (absent = 0).
    let session_expiry = if version.is_v5() {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    let generation = mqtt.next_generation();
    let kick = Arc::new(super::kick::Kick::new());
    if !connect.clean_start {
        // Whether a session is present depends on how its current connection ends.
        wait_for_previous_owner(mqtt, &client_id).await;
    }
    let (session, session_present) = take_session(mqtt, &client_id, connect.clean_start);
    if let Some(previous) = session.attach(generation, Arc::clone(&kick), session_expiry) {
        previous.wake(super::kick::TAKEN_OVER);
    }
    // Someone else waiting to take the session over now waits for this owner instead.
    mqtt.released.notify_waiters();
    if session_expiry > 0 {
        // A session that outlives its connection keeps its messages in a queue, whatever the
        // QoS of its subscriptions, as RabbitMQ's MQTT plugin does.
        subscribe::ensure_queue(mqtt, &session, true);
    }
    super::durable::record(mqtt, &session);
    subscribe::attach_queues(mqtt, &session);

    let mut keep_alive = connect.keep_alive;
    let mut server_keep_alive = None;
    if keep_alive > cfg.max_keepalive_secs
        || (keep_alive == 0 && cfg.max_keepalive_secs < u16::MAX && version.is_v5())
    {
        keep_alive = cfg.max_keepalive_secs;
        server_keep_alive = Some(keep_alive);
    }
    let mut properties = Properties::default();
    if version.is_v5() {
        properties.assigned_client_identifier = assigned;
        properties.server_keep_alive = server_keep_alive;
        properties.receive_maximum = Some(cfg.receive_maximum);
        properties.maximum_packet_size = u32::try_from(cfg.max_packet_size).ok();
        properties.topic_alias_maximum = Some(cfg.topic_alias_maximum);
    }
    let connack = Packet::ConnAck(ConnAck {
        // [MQTT-3.2.2-1]..[MQTT-3.2.2-3]
        session_present,
        code: ReasonCode::SUCCESS,
        properties,
    });
    let _ = ferromq_mqtt::encode(&connack, version, &mut io.wbuf);
    tracing::debug!(%peer, %client_id, ?user, ?version, session_present, keep_alive, "client connected");

    let client_receive_max = if version.is_v5() {
        connect
            .properties
            .receive_maximum
            .unwrap_or(DEFAULT_RECEIVE_MAXIMUM)
    } else {
        cfg.max_inflight
    };
    let mut conn = Conn {
        mqtt: Arc::clone(mqtt),
        version,
        session,
        generation,
        peer,
        keep_alive,
        will: connect.will.map(Box::new),
        session_expiry,
        client_receive_max: usize::from(client_receive_max.max(1)),
        client_max_packet,
        aliases_in: alias::Inbound::new(if version.is_v5() {
            cfg.topic_alias_maximum
        } else {
            0
        }),
        aliases_out: alias::Outbound::new(connect.properties.topic_alias_maximum.unwrap_or(0)),
        kick,
        ready: Vec::new(),
        backpressure: Vec::new(),
        acks: Default::default(),
        sends: Default::default(),
        access,
        _user_slot: user_slot.map(Box::new),
    };
    if session_present {
        super::deliver::resend_inflight(&mut conn, &mut io.wbuf);
    }
    Some(conn)
}

/// How long a connection resuming a session waits for the session's current connection to
/// let go of it; after that it takes the session over regardless (that connection may be stuck
/// writing to a client that does not read).
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

/// If a connection owns the session, tells it to end (it first handles what its client sent,
/// [MQTT-3.1.4-3]) and waits until it released the session, so `take_session` sees the session
/// as that connection left it: a client that sent DISCONNECT and reconnected at once finds its
/// expiry-0 session gone however the two sockets were scheduled.
async fn wait_for_previous_owner(mqtt: &Arc<Mqtt>, client_id: &Arc<str>) {
    let Some(existing) = mqtt.sessions.get(client_id).map(|e| Arc::clone(e.value())) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
    let mut first_owner = None;
    loop {
        // The signal is shared by every session of the vhost, so each wake-up checks this one.
        let released = mqtt.released.notified();
        tokio::pin!(released);
        // Registered before the state is read, so a release cannot slip between the two.
        released.as_mut().enable();
        let kick = {
            let s = existing.lock();
            // Done once the session was ended, kept offline, or attached by another
            // connection (which this one then takes it from in turn).
            let first_look = first_owner.is_none();
            let owner = *first_owner.get_or_insert(s.owner);
            if s.ended || (s.owner == 0 && !s.releasing) || (s.owner != 0 && s.owner != owner) {
                return;
            }
            // Kicked on the first look only. No kick: the owner is already releasing it.
            s.kick.clone().filter(|_| first_look)
        };
        if let Some(kick) = kick {
            kick.wake(super::kick::TAKEN_OVER);
        }
        if tokio::time::timeout_at(deadline, released).await.is_err() {
            tracing::debug!(%client_id, "previous connection did not release the session in time; taking it over");
            return;
        }
    }
}

/// Finds or creates the session for `client_id`. A clean start discards an existing session
/// [MQTT-3.1.2-4]; otherwise it is resumed and reported present [MQTT-3.2.2-3].
fn take_session(mqtt: &Arc<Mqtt>, client_id: &Arc<str>, clean_start: bool) -> (Arc<Session>, bool) {
    let fresh = Session::new(Arc::clone(client_id), Arc::clone(&mqtt.core));
    let (session, previous, present) = {
        let mut entry = mqtt
            .sessions
            .entry(Arc::clone(client_id))
            .or_insert_with(|| Arc::clone(&fresh));
        if Arc::ptr_eq(entry.value(), &fresh) {
            (fresh, None, false)
        } else if clean_start {
            let old = std::mem::replace(entry.value_mut(), Arc::clone(&fresh));
            (fresh, Some(old), false)
        } else {
            (Arc::clone(entry.value()), None, true)
        }
    };
    match previous {
        Some(old) => {
            if let Some(kick) = old.lock().kick.take() {
                kick.wake(super::kick::TAKEN_OVER);
            }
            end_session(mqtt, &old);
        }
        None if !present => {
            // No session: a queue left under the session queue's name (by a session of an
            // earlier broker run) holds nothing this client may receive [MQTT-3.2.2-2].
            let vhost = &mqtt.vhost;
            if let Some(stale) = vhost.queue_handle(&session_queue::queue_name(client_id)) {
                vhost.delete_queue_now(&stale);
            }
        }
        None => {}
    }
    (session, present)
}

/// Called when the owning connection ends: publishes the will, and discards the session when
/// its expiry is 0 or schedules the discard after the expiry interval.
pub fn release_session(
    mqtt: &Arc<Mqtt>,
    session: &Arc<Session>,
    generation: u64,
    expiry_secs: u32,
    will: Option<ferromq_mqtt::Will>,
) {
    let Some(epoch) = session.detach(generation) else {
        // Taken over, or discarded by a clean start. A resumed session cancels a delayed will
        // (MQTT 5.0 [MQTT-3.1.3-9]); otherwise the will goes out now.
        if let Some(will) = will {
            let delayed = will.properties.will_delay_interval.unwrap_or(0) > 0;
            if !delayed || session.lock().ended {
                super::will::publish(mqtt, will, session, 0, 0);
            }
        }
        return;
    };
    // After `detach`: a taken-over session keeps consuming for its new connection.
    subscribe::detach_queues(mqtt, session);
    if let Some(will) = will {
        super::will::publish(mqtt, will, session, epoch, expiry_secs);
    }
    if expiry_secs == 0 {
        // Unless a connection that gave up waiting (`TAKEOVER_WAIT`) has resumed it meanwhile.
        if session.lock().owner == 0 {
            remove_session(mqtt, session);
        }
        return;
    }
    // Kept: a connection waiting to take it over may go on (an ended session tells it in
    // `end_session`). DISCONNECT may have changed the expiry: the record follows.
    {
        let mut s = session.lock();
        s.releasing = false;
        s.expiry_secs = expiry_secs;
    }
    super::durable::record(mqtt, session);
    mqtt.released.notify_waiters();
    if expiry_secs != u32::MAX {
        expire_after(mqtt, session, epoch, expiry_secs);
    }
}

/// Ends the offline session `expiry_secs` from now unless a connection resumed it meanwhile
/// (its epoch moved on).
pub(super) fn expire_after(mqtt: &Arc<Mqtt>, session: &Arc<Session>, epoch: u64, expiry_secs: u32) {
    let mqtt = Arc::clone(mqtt);
    let session = Arc::clone(session);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(u64::from(expiry_secs))).await;
        let expired = {
            let s = session.lock();
            s.epoch == epoch && s.owner == 0 && !s.ended
        };
        if expired {
            tracing::debug!(client_id = %session.client_id, "session expired");
            remove_session(&mqtt, &session);
        }
    });
}

/// Removes `session` from the registry (if it is still the registered one) and ends it.
pub(super) fn remove_session(mqtt: &Arc<Mqtt>, session: &Arc<Session>) {
    mqtt.sessions
        .remove_if(&session.client_id, |_, s| Arc::ptr_eq(s, session));
    end_session(mqtt, session);
}

/// Ends a session: unbinds its subscriptions (leaving its shared groups, which requeue what
/// it held) and deletes its queue.
fn end_session(mqtt: &Arc<Mqtt>, session: &Arc<Session>) {
    let queue = session.lock().queue.clone();
    if let Some(q) = &queue {
        // First, so what `end` hands back is not offered to this session again.
        q.stop_consuming(session);
    }
    for (filter, sub) in session.end() {
        // The queue's bindings go with it (and by name: a new session may have the name now).
        if queue.is_none() || ferromq_mqtt::topic::parse_shared(&filter).is_some() {
            subscribe::unbind(mqtt, session, &filter, sub);
        }
    }
    if let Some(q) = queue {
        session.lock().queue = None;
        q.delete(mqtt);
    }
    super::durable::forget(mqtt, session);
    // A connection waiting to take the session over finds it gone now.
    mqtt.released.notify_waiters();
}

fn generate_client_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("ferromq-{:x}{:04x}", nanos & 0xffff_ffff_ffff, n & 0xffff)
}
