//! Logins: users from the config and the access file, wrong passwords (MQTT v3 4 / v5 0x86,
//! AMQP 403), `vhost:user` (unknown vhost 0x87), anonymous MQTT on / off, and the delay a
//! refused login waits.

use std::time::{Duration, Instant};

use conformance::auth::{self, amqp_as, mqtt_v4_code, mqtt_v5_code, reply_code, user};
use ferromq::auth::file::{self, AuthFile, PermissionEntry, UserEntry};
use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as V5Code;
use rumqttc::ConnectReturnCode as V4Code;

#[tokio::test]
async fn mqtt_wrong_password_gets_4_and_0x86() {
    let b = auth::broker(|c| user(c, "alice", "s3cret", Some((".*", ".*", ".*")))).await;
    let ok = Some(("alice", "s3cret"));
    let bad = Some(("alice", "nope"));
    assert_eq!(mqtt_v4_code(&b, "a1", ok).await, V4Code::Success);
    assert_eq!(
        mqtt_v4_code(&b, "a2", bad).await,
        V4Code::BadUserNamePassword
    );
    assert_eq!(mqtt_v5_code(&b, "a3", ok).await, V5Code::Success);
    assert_eq!(
        mqtt_v5_code(&b, "a4", bad).await,
        V5Code::BadUserNamePassword
    );
    // An unknown user looks like a wrong password (no user-name probing).
    let ghost = Some(("ghost", "x"));
    assert_eq!(
        mqtt_v5_code(&b, "a5", ghost).await,
        V5Code::BadUserNamePassword
    );
}

#[tokio::test]
async fn mqtt_vhost_prefix_and_vhost_access() {
    let b = auth::broker(|c| {
        user(c, "alice", "pw", Some((".*", ".*", ".*")));
        // bob exists but has no permissions on any vhost.
        user(c, "bob", "pw", None);
    })
    .await;
    assert_eq!(
        mqtt_v5_code(&b, "v1", Some(("/:alice", "pw"))).await,
        V5Code::Success
    );
    assert_eq!(
        mqtt_v5_code(&b, "v2", Some(("nowhere:alice", "pw"))).await,
        V5Code::NotAuthorized
    );
    assert_eq!(
        mqtt_v4_code(&b, "v3", Some(("nowhere:alice", "pw"))).await,
        V4Code::NotAuthorized
    );
    assert_eq!(
        mqtt_v5_code(&b, "v4", Some(("bob", "pw"))).await,
        V5Code::NotAuthorized
    );
}

#[tokio::test]
async fn anonymous_mqtt_follows_allow_anonymous() {
    let open = auth::broker(|_| {}).await;
    assert_eq!(mqtt_v4_code(&open, "anon", None).await, V4Code::Success);
    let closed = auth::broker(|c| c.mqtt.allow_anonymous = false).await;
    assert_eq!(
        mqtt_v4_code(&closed, "anon", None).await,
        V4Code::NotAuthorized
    );
    assert_eq!(
        mqtt_v5_code(&closed, "anon5", None).await,
        V5Code::NotAuthorized
    );
    // The built-in guest still logs in from loopback.
    assert_eq!(
        mqtt_v5_code(&closed, "g", Some(("guest", "guest"))).await,
        V5Code::Success
    );
}

#[tokio::test]
async fn amqp_plain_login_against_users() {
    let b = auth::broker(|c| user(c, "alice", "s3cret", Some((".*", ".*", ".*")))).await;
    let conn = amqp_as(&b, "alice", "s3cret").await.expect("alice logs in");
    conn.create_channel().await.expect("channel");
    let e = amqp_as(&b, "alice", "wrong").await.expect_err("refused");
    assert_eq!(reply_code(&e), Some(403), "{e}");
    // Users in the config replace the built-in guest (as RabbitMQ's default_user).
    let e = amqp_as(&b, "guest", "guest").await.expect_err("no guest");
    assert_eq!(reply_code(&e), Some(403), "{e}");
}

#[tokio::test]
async fn amqp_user_without_vhost_permissions_gets_530() {
    let b = auth::broker(|c| user(c, "bob", "pw", None)).await;
    let e = amqp_as(&b, "bob", "pw").await.expect_err("no access to /");
    assert_eq!(reply_code(&e), Some(530), "{e}");
    assert!(
        e.to_string()
            .contains("access to vhost '/' refused for user 'bob'"),
        "{e}"
    );
}

#[tokio::test]
async fn access_file_users_are_argon2id_and_reread_when_changed() {
    let dir = auth::temp_dir("file");
    let path = file::path(&dir);
    let mut f = AuthFile::default();
    f.users.push(UserEntry {
        name: "carol".into(),
        password_hash: ferromq::auth::password::hash(b"first").unwrap(),
    });
    f.permissions.push(PermissionEntry {
        user: "carol".into(),
        vhost: "/".into(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    });
    f.write(&path).unwrap();
    let data_dir = dir.clone();
    let b = auth::broker(move |c| c.data_dir = data_dir).await;
    amqp_as(&b, "carol", "first")
        .await
        .expect("file user logs in");
    // A file without guest: guest is gone.
    assert_eq!(
        mqtt_v5_code(&b, "g", Some(("guest", "guest"))).await,
        V5Code::BadUserNamePassword
    );
    // Change the password in the file: the running broker sees it at the next login.
    f.users[0].password_hash = ferromq::auth::password::hash(b"second").unwrap();
    f.write(&path).unwrap();
    assert_eq!(
        mqtt_v5_code(&b, "c1", Some(("carol", "first"))).await,
        V5Code::BadUserNamePassword
    );
    assert_eq!(
        mqtt_v5_code(&b, "c2", Some(("carol", "second"))).await,
        V5Code::Success
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn refused_logins_wait_the_configured_delay() {
    let b = auth::broker(|c| {
        user(c, "alice", "pw", Some((".*", ".*", ".*")));
        c.auth.failed_login_delay_ms = 400;
    })
    .await;
    let started = Instant::now();
    assert_eq!(
        mqtt_v4_code(&b, "d1", Some(("alice", "bad"))).await,
        V4Code::BadUserNamePassword
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "refusal answered after {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    amqp_as(&b, "alice", "bad").await.expect_err("refused");
    assert!(started.elapsed() >= Duration::from_millis(400));
}
