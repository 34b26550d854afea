//! Connection start-up (AMQP 0-9-1 section 2.2.4): protocol header, connection.start /
//! start-ok with SASL PLAIN, AMQPLAIN or (with a verified TLS client certificate) EXTERNAL, tune / tune-ok, open / open-ok. Produces the
//! negotiated limits; refuses wrong headers, bad logins and unknown vhosts as RabbitMQ does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ferromq_amqp::{
    check_protocol_header, decode_frame, encode_frame, reply_code, ChannelId, ConnectionOpenOk,
    ConnectionStart, ConnectionTune, FieldTable, FieldValue, Frame, Method, ProtocolHeaderCheck,
    ShortString, PROTOCOL_HEADER,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::reply_code::AmqpError;
use crate::auth::{Credentials, Decision, VhostAccess};
use crate::broker::vhost::Vhost;
use crate::broker::Core;
use crate::connection::Framed;
use crate::transport::TlsInfo;

/// Largest frame read before tune settles (RabbitMQ's default `frame_max`); afterwards
/// `[amqp] frame_max` applies.
pub const FRAME_MAX: u32 = 131_072;
/// Heartbeat interval the broker proposes, seconds (RabbitMQ's default).
pub const HEARTBEAT: u16 = 60;

/// What the handshake settled.
pub struct Negotiated {
    /// Frame size limit both ways.
    pub frame_max: u32,
    /// Highest channel number.
    pub channel_max: u16,
    /// Heartbeat interval, seconds (0 = off).
    pub heartbeat: u16,
    /// The authenticated user.
    pub user: String,
    /// The vhost opened.
    pub host: Arc<Vhost>,
    /// The client's `connection_name` (for logs).
    pub client_name: Option<String>,
    /// The client announced the `connection.blocked` capability (RabbitMQ extension): it is
    /// told when a resource alarm holds it.
    pub blocked_capable: bool,
    /// This user's slot under `max_connections_per_user`, held while the connection lives.
    pub _user_slot: crate::limits::UserSlot,
}

/// Runs the handshake. `Ok(None)` when the client went away or was refused (already answered).
/// `over_limit` (the global `max_connections`, reached when this socket was accepted) refuses
/// the connection at connection.open.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Framed<S>,
    core: &Core,
    peer: SocketAddr,
    tls: Option<&TlsInfo>,
    over_limit: Option<u32>,
) -> Result<Option<Negotiated>, AmqpError> {
    let tls_identity = tls.and_then(|t| t.identity.as_deref());
    // Protocol header [AMQP 0-9-1 4.2.2]: a wrong one gets ours back and the socket closed.
    loop {
        match check_protocol_header(&io.rbuf) {
            ProtocolHeaderCheck::Accepted => {
                let _ = io.rbuf.split_to(PROTOCOL_HEADER.len());
                break;
            }
            ProtocolHeaderCheck::Rejected => {
                tracing::info!(%peer, "AMQP: wrong protocol header; answered with AMQP 0-9-1");
                io.wbuf.extend_from_slice(&PROTOCOL_HEADER);
                io.close().await;
                return Ok(None);
            }
            ProtocolHeaderCheck::Incomplete => {
                if io.read_more().await? == 0 {
                    return Ok(None);
                }
            }
        }
    }
    send(
        io,
        Method::ConnectionStart(start_method(tls_identity.is_some())),
    )?;
    io.flush().await?;

    let Some(Method::ConnectionStartOk(start_ok)) = next_method(io).await? else {
        return Err(unexpected("connection.start-ok"));
    };
    let capabilities = start_ok
        .client_properties
        .get("capabilities")
        .and_then(FieldValue::as_table)
        .cloned()
        .unwrap_or_default();
    let client_name = start_ok
        .client_properties
        .get("connection_name")
        .and_then(FieldValue::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let mechanism = String::from_utf8_lossy(start_ok.mechanism.as_bytes()).into_owned();
    let login = if mechanism == "EXTERNAL" {
        // SASL EXTERNAL (RFC 4422 appendix A), as RabbitMQ's rabbitmq_auth_mechanism_ssl: the
        // verified client certificate names the user; the response (an authorization
        // identity) is ignored. Offered only when there is such a certificate.
        tls_identity.map(|id| (id.to_string(), None))
    } else {
        parse_login(&mechanism, &start_ok.response).map(|(u, p)| (u, Some(p)))
    };
    let Some((user, password)) = login else {
        let text = if mechanism == "EXTERNAL" {
            "EXTERNAL authentication needs a verified TLS client certificate".to_string()
        } else {
            format!("unsupported authentication mechanism '{mechanism}' or malformed response")
        };
        return refuse(io, peer, &capabilities, &text).await;
    };
    let decision = core
        .auth
        .login(&Credentials {
            protocol: "amqp",
            client_id: "",
            username: Some(&user),
            password: password.as_deref(),
            peer,
            tls_identity,
        })
        .await;
    let Decision::Allow { user: Some(user) } = decision else {
        let text = format!(
            "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        );
        return refuse(io, peer, &capabilities, &text).await;
    };

    let max_frame = core.config.amqp.frame_max.max(ferromq_amqp::FRAME_MIN_SIZE);
    let max_channel = core.config.amqp.channel_max.max(1);
    send(
        io,
        Method::ConnectionTune(ConnectionTune {
            channel_max: max_channel,
            frame_max: max_frame,
            heartbeat: HEARTBEAT,
        }),
    )?;
    io.flush().await?;
    let Some(Method::ConnectionTuneOk(tune)) = next_method(io).await? else {
        return Err(unexpected("connection.tune-ok"));
    };
    // 0 means "no limit" from the client: ours applies [AMQP 0-9-1 connection.tune-ok].
    let frame_max = if tune.frame_max == 0 {
        max_frame
    } else {
        tune.frame_max
    };
    if !(ferromq_amqp::FRAME_MIN_SIZE..=max_frame).contains(&frame_max) {
        return Err(AmqpError::connection(
            reply_code::NOT_ALLOWED,
            format!(
                "frame_max={frame_max} outside {}..={max_frame}",
                ferromq_amqp::FRAME_MIN_SIZE
            ),
            None,
        ));
    }
    let channel_max = if tune.channel_max == 0 {
        max_channel
    } else {
        tune.channel_max.min(max_channel)
    };

    let Some(Method::ConnectionOpen(open)) = next_method(io).await? else {
        return Err(unexpected("connection.open"));
    };
    let vhost = String::from_utf8_lossy(open.virtual_host.as_bytes()).into_owned();
    if let Some(max) = over_limit {
        // RabbitMQ's node-wide `connection_max` refusal: the client reads why it was turned
        // away instead of seeing its socket reset.
        return Err(AmqpError::connection(
            reply_code::NOT_ALLOWED,
            format!("connection refused: node connection limit ({max}) is reached"),
            Some(open_id()),
        ));
    }
    // RabbitMQ's vhost access check: the vhost must exist and the user needs permissions
    // there; both refusals are 530 connection errors.
    let opened = match core.auth.vhost_access(Some(&user), &vhost) {
        VhostAccess::Allowed(_) => match core.vhost_named(&vhost) {
            Some(host) => Ok(host),
            None => Err(format!("vhost '{vhost}' not found")),
        },
        VhostAccess::NoSuchVhost => Err(format!("vhost '{vhost}' not found")),
        VhostAccess::Refused => Err(format!(
            "access to vhost '{vhost}' refused for user '{user}'"
        )),
    };
    // RabbitMQ checks its user connection limit at connection.open, with a 530.
    let opened = opened.and_then(|host| match core.limits.connections.try_user(&user) {
        Ok(slot) => Ok((host, slot)),
        Err(max) => Err(format!(
            "Connection refused for user '{user}': user connection limit ({max}) is reached"
        )),
    });
    let (host, user_slot) = match opened {
        Ok(opened) => opened,
        Err(text) => {
            tracing::warn!(%peer, %user, "AMQP: {text}");
            return Err(AmqpError::connection(
                reply_code::NOT_ALLOWED,
                text,
                Some(open_id()),
            ));
        }
    };
    send(io, Method::ConnectionOpenOk(ConnectionOpenOk))?;
    Ok(Some(Negotiated {
        frame_max,
        channel_max,
        heartbeat: tune.heartbeat,
        user,
        host,
        client_name,
        blocked_capable: capabilities
            .get("connection.blocked")
            .and_then(FieldValue::as_bool)
            .unwrap_or(false),
        _user_slot: user_slot,
    }))
}

fn open_id() -> ferromq_amqp::MethodId {
    ferromq_amqp::MethodId {
        class_id: 10,
        method_id: 40,
    }
}

fn unexpected(expected: &str) -> AmqpError {
    AmqpError::connection(
        reply_code::COMMAND_INVALID,
        format!("expected '{expected}' during the connection handshake"),
        None,
    )
}

/// A refused login: with the client's `authentication_failure_close` capability it gets
/// connection.close 403 first, otherwise the socket just closes (AMQP 0-9-1 section 2.2.4).
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Framed<S>,
    peer: SocketAddr,
    capabilities: &FieldTable,
    text: &str,
) -> Result<Option<Negotiated>, AmqpError> {
    tracing::warn!(%peer, "AMQP login refused: {text}");
    let wants_close = capabilities
        .get("authentication_failure_close")
        .and_then(FieldValue::as_bool)
        .unwrap_or(false);
    if wants_close {
        // The caller sends connection.close and waits for close-ok, as for any connection
        // exception, so the client reads the reason instead of a reset socket.
        return Err(AmqpError::connection(
            reply_code::ACCESS_REFUSED,
            text,
            None,
        ));
    }
    io.close().await;
    Ok(None)
}

/// PLAIN: `\0user\0password`; AMQPLAIN: a field table body with LOGIN and PASSWORD.
fn parse_login(mechanism: &str, response: &Bytes) -> Option<(String, Bytes)> {
    match mechanism {
        "PLAIN" => {
            let mut parts = response.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            let pass = parts.next()?;
            let user = std::str::from_utf8(user).ok()?.to_string();
            Some((user, Bytes::copy_from_slice(pass)))
        }
        "AMQPLAIN" => {
            // The response is a field table without its 4-byte length prefix.
            let table = FieldTable::decode_entries(response.clone()).ok()?;
            let user = table.get("LOGIN")?.as_bytes()?;
            let pass = table.get("PASSWORD")?.as_bytes()?.clone();
            Some((String::from_utf8_lossy(user).into_owned(), pass))
        }
        _ => None,
    }
}

/// connection.start; `external` adds SASL EXTERNAL to the mechanisms (a TLS connection with a
/// verified client certificate).
fn start_method(external: bool) -> ConnectionStart {
    let mut capabilities = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        capabilities.push(ShortString::truncating(cap), FieldValue::Bool(true));
    }
    let mut props = FieldTable::default();
    let text = |s: &str| FieldValue::LongString(Bytes::copy_from_slice(s.as_bytes()));
    props.push(ShortString::from_static("product"), text("ferromq"));
    props.push(
        ShortString::from_static("version"),
        text(env!("CARGO_PKG_VERSION")),
    );
    props.push(ShortString::from_static("platform"), text("Rust"));
    props.push(ShortString::from_static("cluster_name"), text("ferromq"));
    props.push(
        ShortString::from_static("information"),
        text("ferromq: MQTT and AMQP 0-9-1 over one routing core"),
    );
    props.push(
        ShortString::from_static("capabilities"),
        FieldValue::Table(capabilities),
    );
    ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: props,
        mechanisms: if external {
            Bytes::from_static(b"PLAIN AMQPLAIN EXTERNAL")
        } else {
            Bytes::from_static(b"PLAIN AMQPLAIN")
        },
        locales: Bytes::from_static(b"en_US"),
    }
}

/// Queues a method frame on channel 0.
fn send<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Framed<S>,
    method: Method,
) -> Result<(), AmqpError> {
    encode_frame(&Frame::Method(ChannelId(0), method), &mut io.wbuf)
        .map_err(|e| AmqpError::connection(reply_code::INTERNAL_ERROR, e, None))
}

/// The next method frame on channel 0 (heartbeats are skipped). `None` when the peer closed.
async fn next_method<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Framed<S>,
) -> Result<Option<Method>, AmqpError> {
    loop {
        match decode_frame(&mut io.rbuf, FRAME_MAX).map_err(|e| AmqpError::from_decode(&e))? {
            Some(Frame::Method(ChannelId(0), m)) => return Ok(Some(m)),
            Some(Frame::Heartbeat(_)) => continue,
            Some(_) => {
                return Err(AmqpError::connection(
                    reply_code::UNEXPECTED_FRAME,
                    "non-method frame during the connection handshake",
                    None,
                ))
            }
            None => {}
        }
        if io.read_more().await? == 0 {
            return Ok(None);
        }
    }
}
