//! MQTT topic ACLs in Mosquitto's `acl_file` syntax, with rumqttc: a refused SUBSCRIBE gets
//! SUBACK 0x80 (3.1.1) / 0x87 (5.0); a refused PUBLISH is dropped, acknowledged as usual in
//! 3.1.1 and with 0x87 in 5.0; `%c` / `%u` patterns; a refused will topic refuses CONNECT;
//! vhost write permission on the MQTT exchange binds MQTT users too.

use conformance::auth::{self, mqtt_v5_code, user, v4_as, v5_as};
use conformance::{v4, v5};
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, Packet as P5, PubAckReason, PubRecReason, SubscribeReasonCode as Sub5,
};
use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::{ConnectionError, StateError};
use rumqttc::{QoS, SubscribeReasonCode as Sub4};

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#

user watcher
topic read #

pattern write devices/%c/up
pattern read users/%u/inbox
";

async fn setup() -> ferromq::RunningBroker {
    let dir = auth::temp_dir("acl");
    let acl = dir.join("acl");
    std::fs::write(&acl, ACL).unwrap();
    auth::broker(move |c| {
        c.mqtt.acl_file = Some(acl);
        for name in ["alice", "watcher"] {
            user(c, name, "pw", Some((".*", ".*", ".*")));
        }
        // May read, but the empty write pattern grants nothing, so not publish.
        user(c, "reader", "pw", Some((".*", "", ".*")));
    })
    .await
}

/// A 5.0 client subscribed to everything, to see what got through.
async fn watcher(b: &ferromq::RunningBroker) -> v5::Client {
    let mut w = v5::connect_with(v5_as(b, "watcher", "watcher", "pw")).await;
    w.client.subscribe("#", Q5::AtLeastOnce).await.unwrap();
    let codes = w
        .next("SUBACK", |p| match p {
            P5::SubAck(s) => Some(s.return_codes),
            _ => None,
        })
        .await;
    assert_eq!(codes, vec![Sub5::Success(Q5::AtLeastOnce)]);
    w
}

#[tokio::test]
async fn v311_refused_subscribe_gets_0x80_and_refused_publish_is_dropped() {
    let b = setup().await;
    let mut w = watcher(&b).await;
    let mut alice = v4::connect_with(v4_as(&b, "a311", "alice", "pw")).await;
    alice
        .client
        .subscribe("alice/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(alice.suback().await, vec![Sub4::Success(QoS::AtLeastOnce)]);
    alice
        .client
        .subscribe("bob/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(alice.suback().await, vec![Sub4::Failure]);
    // Acknowledged (3.1.1 has no way to say no) but not delivered.
    alice
        .publish_acked("bob/x", QoS::AtLeastOnce, false, b"no")
        .await;
    alice
        .publish_acked("alice/x", QoS::AtLeastOnce, false, b"yes")
        .await;
    let p = w.publish().await;
    assert_eq!(&p.topic[..], b"alice/x");
    w.no_publish().await;
}

/// What `v5_error` sends.
enum Op<'a> {
    Publish(&'a str, Q5),
    Subscribe(&'a str),
}

/// Sends one request on a fresh 5.0 connection and returns the protocol error rumqttc raises
/// for the broker's answer (rumqttc reports SUBACK / PUBACK / PUBREC codes >= 0x80 as errors,
/// not as packets).
async fn v5_error(o: rumqttc::v5::MqttOptions, op: Op<'_>) -> StateError {
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 10);
    match op {
        Op::Publish(topic, qos) => client.publish(topic, qos, false, "no").await.unwrap(),
        Op::Subscribe(filter) => client.subscribe(filter, Q5::AtLeastOnce).await.unwrap(),
    }
    let poll = async {
        loop {
            match eventloop.poll().await {
                Ok(_) => continue,
                Err(ConnectionError::MqttState(e)) => return e,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    };
    tokio::time::timeout(conformance::WAIT, poll)
        .await
        .expect("answer in time")
}

#[tokio::test]
async fn v5_refusals_are_0x87() {
    let b = setup().await;
    let mut w = watcher(&b).await;
    let e = v5_error(v5_as(&b, "a5", "alice", "pw"), Op::Subscribe("bob/#")).await;
    assert!(
        matches!(
            e,
            StateError::SubFail {
                reason: Sub5::NotAuthorized
            }
        ),
        "{e:?}"
    );
    let alice = v5::connect_with(v5_as(&b, "a5-0", "alice", "pw")).await;
    // QoS 0 is dropped silently.
    alice
        .client
        .publish("bob/z", Q5::AtMostOnce, false, "no")
        .await
        .unwrap();
    let e = v5_error(
        v5_as(&b, "a5-1", "alice", "pw"),
        Op::Publish("bob/x", Q5::AtLeastOnce),
    )
    .await;
    assert!(
        matches!(
            e,
            StateError::PubAckFail {
                reason: PubAckReason::NotAuthorized
            }
        ),
        "{e:?}"
    );
    let e = v5_error(
        v5_as(&b, "a5-2", "alice", "pw"),
        Op::Publish("bob/y", Q5::ExactlyOnce),
    )
    .await;
    assert!(
        matches!(
            e,
            StateError::PubRecFail {
                reason: PubRecReason::NotAuthorized
            }
        ),
        "{e:?}"
    );
    w.no_publish().await;
}

#[tokio::test]
async fn client_id_and_user_patterns() {
    let b = setup().await;
    let mut w = watcher(&b).await;
    // Anonymous client `dev1`: may write devices/dev1/up only.
    let dev = v5::connect(&b, "dev1").await;
    for topic in ["devices/dev2/up", "devices/dev1/up"] {
        dev.client
            .publish(topic, Q5::AtMostOnce, false, "t")
            .await
            .unwrap();
    }
    let p = w.publish().await;
    assert_eq!(&p.topic[..], b"devices/dev1/up");
    w.no_publish().await;
    // %u: alice may read users/alice/inbox, not bob's; anonymous clients get no %u rules.
    let mut alice = v4::connect_with(v4_as(&b, "ua", "alice", "pw")).await;
    alice
        .client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("users/alice/inbox".into(), QoS::AtMostOnce),
            rumqttc::SubscribeFilter::new("users/bob/inbox".into(), QoS::AtMostOnce),
        ])
        .await
        .unwrap();
    assert_eq!(
        alice.suback().await,
        vec![Sub4::Success(QoS::AtMostOnce), Sub4::Failure]
    );
    let mut anon = v4::connect(&b, "anon").await;
    anon.client
        .subscribe("public/news", QoS::AtMostOnce)
        .await
        .unwrap();
    assert_eq!(anon.suback().await, vec![Sub4::Success(QoS::AtMostOnce)]);
}

#[tokio::test]
async fn refused_will_topic_refuses_connect() {
    let b = setup().await;
    let mut o = v5_as(&b, "w1", "alice", "pw");
    o.set_last_will(rumqttc::v5::mqttbytes::v5::LastWill::new(
        "bob/will",
        "x",
        Q5::AtMostOnce,
        false,
        None,
    ));
    let (_c, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 10);
    let code = tokio::time::timeout(conformance::WAIT, eventloop.poll())
        .await
        .expect("answer in time");
    assert!(
        matches!(
            code,
            Err(rumqttc::v5::ConnectionError::ConnectionRefused(
                ConnectReturnCode::NotAuthorized
            ))
        ),
        "{code:?}"
    );
}

#[tokio::test]
async fn vhost_write_permission_binds_mqtt_publishers() {
    let b = setup().await;
    assert_eq!(
        mqtt_v5_code(&b, "r0", Some(("reader", "pw"))).await,
        ConnectReturnCode::Success
    );
    let e = v5_error(
        v5_as(&b, "r1", "reader", "pw"),
        Op::Publish("anything", Q5::AtLeastOnce),
    )
    .await;
    assert!(
        matches!(
            e,
            StateError::PubAckFail {
                reason: PubAckReason::NotAuthorized
            }
        ),
        "{e:?}"
    );
    // Reading is granted by the permission, but no ACL line grants reader a topic.
    let e = v5_error(v5_as(&b, "r2", "reader", "pw"), Op::Subscribe("public/#")).await;
    assert!(
        matches!(
            e,
            StateError::SubFail {
                reason: Sub5::NotAuthorized
            }
        ),
        "{e:?}"
    );
}
