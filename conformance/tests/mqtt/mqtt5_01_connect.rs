//! MQTT 5.0 sections 3.1, 3.2, 3.14 and 4.12: CONNECT properties, CONNACK, session expiry,
//! enhanced authentication refusal, takeover reason code.

use conformance::{broker, frame, v5, RawClient};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};

#[tokio::test]
async fn connack_advertises_limits() {
    let b = broker().await;
    let c = v5::connect(&b, "limits").await;
    assert_eq!(c.connack.code, ConnectReturnCode::Success);
    let p = c
        .connack
        .properties
        .clone()
        .expect("v5 CONNACK has properties");
    assert!(p.receive_max.is_some());
    assert!(p.max_packet_size.is_some());
    assert!(p.topic_alias_max.is_some());
}

#[tokio::test]
async fn empty_client_id_gets_assigned_identifier() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v5("", 30)).await;
    let (first, body) = raw.read_packet().await.expect("CONNACK");
    assert_eq!(first, 0x20);
    assert_eq!(&body[..2], &[0x00, 0x00]);
    // [MQTT-3.2.2-16] Assigned Client Identifier (0x12) among the properties.
    assert!(
        body[3..].windows(1).any(|w| w[0] == 0x12),
        "properties: {body:02x?}"
    );
}

#[tokio::test]
async fn short_connack_form_is_never_sent() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v5("long-form", 30))
        .await;
    let (_, body) = raw.read_packet().await.expect("CONNACK");
    // Flags, reason code, then a property length (never omitted).
    assert!(body.len() >= 3, "{body:02x?}");
    assert_eq!(body[2] as usize, body.len() - 3);
}

#[tokio::test]
async fn authentication_method_is_refused_with_0x8c() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x1e];
    // properties: Authentication Method (0x15) "SCRAM-SHA-1"
    let method = b"SCRAM-SHA-1";
    body.push((3 + method.len()) as u8);
    body.push(0x15);
    body.extend_from_slice(&(method.len() as u16).to_be_bytes());
    body.extend_from_slice(method);
    body.extend_from_slice(&[0x00, 0x01, b'a']);
    raw.send(&frame(0x10, &body)).await;
    let seen = raw.expect_close().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, 0x20);
    assert_eq!(seen[0].1[1], 0x8c);
}

#[tokio::test]
async fn session_expiry_keeps_then_discards_session() {
    let b = broker().await;
    let mut o = v5::options(&b, "expiring");
    o.set_clean_start(false);
    let mut props = rumqttc::v5::mqttbytes::v5::ConnectProperties::new();
    props.session_expiry_interval = Some(1);
    o.set_connect_properties(props);
    let c = v5::connect_with(o.clone()).await;
    assert!(!c.connack.session_present);
    c.client.disconnect().await.unwrap();
    drop(c);
    let c = v5::connect_with(o.clone()).await;
    assert!(
        c.connack.session_present,
        "[MQTT-3.1.2-23] kept within the expiry"
    );
    c.client.disconnect().await.unwrap();
    drop(c);
    // The expiry is a wall-clock interval on the broker; wait it out (plus margin).
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let c = v5::connect_with(o).await;
    assert!(!c.connack.session_present, "discarded after the expiry");
}

#[tokio::test]
async fn takeover_sends_disconnect_0x8e() {
    let b = broker().await;
    let mut first = v5::connect(&b, "twin").await;
    let _second = v5::connect(&b, "twin").await;
    let reason = first
        .next("DISCONNECT", |p| match p {
            Packet::Disconnect(d) => Some(d.reason_code),
            _ => None,
        })
        .await;
    assert_eq!(
        reason,
        rumqttc::v5::mqttbytes::v5::DisconnectReasonCode::SessionTakenOver
    );
}

#[tokio::test]
async fn auth_packet_without_method_is_protocol_error() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v5("auth", 30)).await;
    raw.read_packet().await.expect("CONNACK");
    raw.send(&[0xf0, 0x00]).await;
    let seen = raw.expect_close().await;
    assert_eq!(seen.len(), 1, "{seen:02x?}");
    assert_eq!(seen[0].0, 0xe0);
    assert_eq!(seen[0].1[0], 0x82);
}
