//! MQTT 5.0 sections 3.8, 4.8: subscription options, identifiers, shared subscriptions.

use conformance::{broker, v5};
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, RetainForwardRule, SubscribeProperties};
use rumqttc::v5::mqttbytes::QoS;

async fn suback(c: &mut v5::Client) {
    c.next("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await;
}

#[tokio::test]
async fn no_local_suppresses_own_messages() {
    let b = broker().await;
    let mut me = v5::connect(&b, "me").await;
    let mut f = Filter::new("nl", QoS::AtMostOnce);
    f.nolocal = true;
    me.client.subscribe_many(vec![f]).await.unwrap();
    suback(&mut me).await;
    me.client
        .publish("nl", QoS::AtMostOnce, false, "mine")
        .await
        .unwrap();
    // [MQTT-3.8.3-3]
    me.no_publish().await;
    let other = v5::connect(&b, "other").await;
    other
        .client
        .publish("nl", QoS::AtMostOnce, false, "theirs")
        .await
        .unwrap();
    assert_eq!(&me.publish().await.payload[..], b"theirs");
}

#[tokio::test]
async fn subscription_identifier_is_attached() {
    let b = broker().await;
    let mut sub = v5::connect(&b, "ids").await;
    let props = SubscribeProperties {
        id: Some(42),
        user_properties: vec![],
    };
    sub.client
        .subscribe_with_properties("sid/+", QoS::AtMostOnce, props)
        .await
        .unwrap();
    suback(&mut sub).await;
    let publ = v5::connect(&b, "pub").await;
    publ.client
        .publish("sid/x", QoS::AtMostOnce, false, "x")
        .await
        .unwrap();
    let p = sub.publish().await;
    // [MQTT-3.3.4-3]
    assert_eq!(
        p.properties.expect("props").subscription_identifiers,
        vec![42]
    );
}

#[tokio::test]
async fn retain_as_published_and_retain_handling() {
    let b = broker().await;
    let publ = v5::connect(&b, "pub").await;
    publ.client
        .publish("rh", QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    // Retain handling 2: no retained message at subscribe.
    let mut never = v5::connect(&b, "never").await;
    let mut f = Filter::new("rh", QoS::AtMostOnce);
    f.retain_forward_rule = RetainForwardRule::Never;
    f.preserve_retain = true;
    // Make sure the retained publish was processed: a plain subscriber sees it as retained.
    let mut plain = v5::connect(&b, "plain").await;
    plain.client.subscribe("rh", QoS::AtMostOnce).await.unwrap();
    suback(&mut plain).await;
    assert!(plain.publish().await.retain);
    never.client.subscribe_many(vec![f]).await.unwrap();
    suback(&mut never).await;
    never.no_publish().await;
    // Retain As Published: a forwarded retained publish keeps RETAIN 1 [MQTT-3.3.1-13];
    // without it RETAIN is 0 [MQTT-3.3.1-12].
    publ.client
        .publish("rh", QoS::AtLeastOnce, true, "again")
        .await
        .unwrap();
    assert!(never.publish().await.retain);
    assert!(!plain.publish().await.retain);
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_once() {
    let b = broker().await;
    let mut a = v5::connect(&b, "a").await;
    let mut c = v5::connect(&b, "c").await;
    for m in [&mut a, &mut c] {
        m.client
            .subscribe("$share/g/jobs/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        suback(m).await;
    }
    let publ = v5::connect(&b, "pub").await;
    for i in 0..10u8 {
        publ.client
            .publish("jobs/x", QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut per_member = [0usize; 2];
    while seen.len() < 10 {
        tokio::select! {
            p = a.publish() => { seen.push(p.payload[0]); per_member[0] += 1; }
            p = c.publish() => { seen.push(p.payload[0]); per_member[1] += 1; }
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..10).collect::<Vec<u8>>(),
        "each message exactly once"
    );
    assert!(
        per_member[0] > 0 && per_member[1] > 0,
        "both members served: {per_member:?}"
    );
    a.no_publish().await;
    c.no_publish().await;
    // When one member leaves, the other gets everything.
    a.client.disconnect().await.unwrap();
    drop(a);
    for i in 10..14u8 {
        publ.client
            .publish("jobs/x", QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
    }
    for i in 10..14u8 {
        assert_eq!(c.publish().await.payload[0], i);
    }
}

#[tokio::test]
async fn shared_messages_of_a_member_that_leaves_go_to_another() {
    let b = broker().await;
    let mut o = v5::options(&b, "hoarder");
    o.set_receive_maximum(Some(1));
    o.set_manual_acks(true);
    let mut hoarder = v5::connect_with(o).await;
    hoarder
        .client
        .subscribe("$share/g/work", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut hoarder).await;
    let mut worker = v5::connect(&b, "worker").await;
    worker
        .client
        .subscribe("$share/g/work", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut worker).await;
    let publ = v5::connect(&b, "pub").await;
    for i in 0..10u8 {
        publ.client
            .publish("work", QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
    }
    // The hoarder takes one message and never acknowledges it, then vanishes (clean session:
    // its session ends, so what it held goes back to the group, MQTT 5.0 section 4.8.2).
    hoarder.publish().await;
    drop(hoarder);
    let mut seen = Vec::new();
    while seen.len() < 10 {
        seen.push(worker.publish().await.payload[0]);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<u8>>());
}

#[tokio::test]
async fn shared_group_holds_messages_until_a_member_returns() {
    let b = broker().await;
    let mut o = v5::options(&b, "returning");
    o.set_clean_start(false);
    let mut props = rumqttc::v5::mqttbytes::v5::ConnectProperties::new();
    props.session_expiry_interval = Some(60);
    o.set_connect_properties(props);
    let mut member = v5::connect_with(o.clone()).await;
    member
        .client
        .subscribe("$share/g/held", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut member).await;
    member.client.disconnect().await.unwrap();
    drop(member);
    let mut publ = v5::connect(&b, "pub").await;
    for i in 0..3u8 {
        publ.client
            .publish("held", QoS::AtLeastOnce, false, vec![i])
            .await
            .unwrap();
        publ.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await;
    }
    let mut back = v5::connect_with(o).await;
    assert!(back.connack.session_present);
    for i in 0..3u8 {
        assert_eq!(back.publish().await.payload[0], i);
    }
}
