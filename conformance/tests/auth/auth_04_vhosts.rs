//! Vhosts besides `/`: AMQP clients open them by name (lapin), MQTT clients select them with
//! `vhost:user` (rumqttc); exchanges, queues, retained messages and MQTT sessions are separate
//! per vhost, MQTT and AMQP meet on the vhost's own `amq.topic`, and a vhost deleted from the
//! access file refuses new connections (530 / 0x87).

use conformance::auth::{self, mqtt_v5_code, reply_code, user, v5_as};
use conformance::v5;
use ferromq::auth::file::{self, AuthFile, PermissionEntry};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet as P5};
use rumqttc::v5::mqttbytes::QoS as Q5;

async fn amqp_in(b: &ferromq::RunningBroker, vhost: &str) -> Result<Connection, lapin::Error> {
    let addr = b.amqp_addr().unwrap();
    let uri = format!("amqp://alice:pw@{addr}/{vhost}");
    tokio::time::timeout(
        conformance::WAIT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("answered in time")
}

fn permission(vhost: &str) -> ferromq::auth::settings::PermissionConfig {
    ferromq::auth::settings::PermissionConfig {
        user: "alice".into(),
        vhost: vhost.into(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    }
}

#[tokio::test]
async fn amqp_vhosts_are_separate() {
    let b = auth::broker(|c| {
        user(c, "alice", "pw", Some((".*", ".*", ".*")));
        c.permissions.push(permission("dev"));
    })
    .await;
    let dev = amqp_in(&b, "dev").await.expect("dev opens");
    let ch = dev.create_channel().await.unwrap();
    ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"in dev",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let got = ch
        .basic_get("q", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("message in dev's q");
    assert_eq!(got.delivery.data, b"in dev");
    // `/` has no queue q.
    let root = amqp_in(&b, "%2f").await.expect("/ opens");
    let e = root
        .create_channel()
        .await
        .unwrap()
        .queue_declare(
            "q",
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect_err("no q in /");
    assert_eq!(reply_code(&e), Some(404), "{e}");
}

#[tokio::test]
async fn mqtt_vhost_user_meets_amqp_in_the_same_vhost_only() {
    let b = auth::broker(|c| {
        user(c, "alice", "pw", Some((".*", ".*", ".*")));
        c.permissions.push(permission("dev"));
    })
    .await;
    let mut in_dev = v5::connect_with(v5_as(&b, "same-id", "dev:alice", "pw")).await;
    // The same client id in `/` is another session, not a takeover.
    let mut in_root = v5::connect_with(v5_as(&b, "same-id", "alice", "pw")).await;
    for c in [&mut in_dev, &mut in_root] {
        c.client.subscribe("t/#", Q5::AtMostOnce).await.unwrap();
        c.next("SUBACK", |p| matches!(p, P5::SubAck(_)).then_some(()))
            .await;
    }
    let dev = amqp_in(&b, "dev").await.unwrap();
    dev.create_channel()
        .await
        .unwrap()
        .basic_publish(
            "amq.topic",
            "t.x",
            BasicPublishOptions::default(),
            b"dev only",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let p = in_dev.publish().await;
    assert_eq!(&p.topic[..], b"t/x");
    assert_eq!(&p.payload[..], b"dev only");
    in_root.no_publish().await;
}

#[tokio::test]
async fn vhost_deleted_from_the_access_file_refuses_new_connections() {
    let dir = auth::temp_dir("vhosts");
    let path = file::path(&dir);
    let mut f = AuthFile::seeded().unwrap();
    f.users[0].name = "alice".into();
    f.users[0].password_hash = ferromq::auth::password::hash(b"pw").unwrap();
    f.vhosts.push("files".into());
    f.permissions = vec![PermissionEntry {
        user: "alice".into(),
        vhost: "files".into(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    }];
    f.write(&path).unwrap();
    let data_dir = dir.clone();
    let b = auth::broker(move |c| c.data_dir = data_dir).await;
    amqp_in(&b, "files").await.expect("vhost from the file");
    assert_eq!(
        mqtt_v5_code(&b, "m1", Some(("files:alice", "pw"))).await,
        ConnectReturnCode::Success
    );
    f.vhosts.clear();
    f.permissions.clear();
    f.write(&path).unwrap();
    let e = amqp_in(&b, "files").await.expect_err("deleted");
    assert_eq!(reply_code(&e), Some(530), "{e}");
    assert_eq!(
        mqtt_v5_code(&b, "m2", Some(("files:alice", "pw"))).await,
        ConnectReturnCode::NotAuthorized
    );
    std::fs::remove_dir_all(&dir).ok();
}
