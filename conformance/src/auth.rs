//! Helpers for the access-control tests: a broker with users, permissions and an ACL file in
//! its own temporary data dir, logins over AMQP (lapin) as any user, and MQTT connects that
//! report the CONNACK code a refused login gets (rumqttc 3.1.1 and 5.0).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use ferromq::auth::settings::{PermissionConfig, UserConfig};
use ferromq::config::Config;
use ferromq::RunningBroker;
use lapin::{Connection, ConnectionProperties};

/// A fresh empty directory under the system temp dir, unique per call and process.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "ferromq-conf-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A user declared in the config (clear-text password) with optional permissions on `/`.
pub fn user(config: &mut Config, name: &str, password: &str, perms: Option<(&str, &str, &str)>) {
    config.users.push(UserConfig {
        name: name.to_string(),
        password_hash: None,
        password: Some(password.to_string()),
    });
    if let Some((configure, write, read)) = perms {
        config.permissions.push(PermissionConfig {
            user: name.to_string(),
            vhost: "/".to_string(),
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        });
    }
}

/// Starts a broker in a fresh data dir with a short failed-login delay, after `adjust`.
pub async fn broker(adjust: impl FnOnce(&mut Config)) -> RunningBroker {
    super::broker_with(|c| {
        c.data_dir = temp_dir("auth");
        c.auth.failed_login_delay_ms = 20;
        adjust(c);
    })
    .await
}

/// Opens an AMQP connection as `user` / `password` on vhost `/`.
pub async fn amqp_as(
    broker: &RunningBroker,
    user: &str,
    password: &str,
) -> Result<Connection, lapin::Error> {
    let addr = broker.amqp_addr().expect("AMQP listener is on");
    let uri = format!("amqp://{user}:{password}@{addr}/%2f");
    tokio::time::timeout(
        super::WAIT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("AMQP login answered in time")
}

/// The AMQP reply code of a lapin error (channel or connection close), if it carries one.
pub fn reply_code(e: &lapin::Error) -> Option<u16> {
    match e {
        lapin::Error::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

/// The CONNACK return code an MQTT 3.1.1 CONNECT with these credentials gets.
pub async fn mqtt_v4_code(
    broker: &RunningBroker,
    id: &str,
    credentials: Option<(&str, &str)>,
) -> rumqttc::ConnectReturnCode {
    let mut o = super::v4::options(broker, id);
    if let Some((u, p)) = credentials {
        o.set_credentials(u, p);
    }
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(o, 10);
    let poll = async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) => return a.code,
                Ok(_) => continue,
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("connection failed without CONNACK: {e}"),
            }
        }
    };
    tokio::time::timeout(super::WAIT, poll)
        .await
        .expect("CONNACK in time")
}

/// The CONNACK reason code an MQTT 5.0 CONNECT with these credentials gets.
pub async fn mqtt_v5_code(
    broker: &RunningBroker,
    id: &str,
    credentials: Option<(&str, &str)>,
) -> rumqttc::v5::mqttbytes::v5::ConnectReturnCode {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{ConnectionError, Event};
    let mut o = super::v5::options(broker, id);
    if let Some((u, p)) = credentials {
        o.set_credentials(u, p);
    }
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 10);
    let poll = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => return a.code,
                Ok(_) => continue,
                Err(ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("connection failed without CONNACK: {e}"),
            }
        }
    };
    tokio::time::timeout(super::WAIT, poll)
        .await
        .expect("CONNACK in time")
}

/// Options for an MQTT 3.1.1 client logging in as `user`.
pub fn v4_as(broker: &RunningBroker, id: &str, user: &str, password: &str) -> rumqttc::MqttOptions {
    let mut o = super::v4::options(broker, id);
    o.set_credentials(user, password);
    o
}

/// Options for an MQTT 5.0 client logging in as `user`.
pub fn v5_as(
    broker: &RunningBroker,
    id: &str,
    user: &str,
    password: &str,
) -> rumqttc::v5::MqttOptions {
    let mut o = super::v5::options(broker, id);
    o.set_credentials(user, password);
    o
}
