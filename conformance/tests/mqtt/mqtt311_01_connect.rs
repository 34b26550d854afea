//! 3.1.1 section 3.1 / 3.2: CONNECT and CONNACK.

use conformance::{broker, frame, v4, RawClient};

#[tokio::test]
async fn accepted_connect_gets_connack_0() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v311("c1", 30)).await;
    // [MQTT-3.2.0-1] CONNACK first; [MQTT-3.2.2-1] session present 0 on clean session.
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
}

#[tokio::test]
async fn mqtt31_connect_with_mqisdp_is_accepted() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    let mut body = vec![
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x1e,
    ];
    body.extend_from_slice(&[0x00, 0x02, b'o', b'k']);
    raw.send(&frame(0x10, &body)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
}

#[tokio::test]
async fn empty_client_id_without_clean_session_is_rejected() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    // clean session 0, empty client id: [MQTT-3.1.3-8] CONNACK 0x02 then close.
    let body = [
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x00, 0x00, 0x1e, 0x00, 0x00,
    ];
    raw.send(&frame(0x10, &body)).await;
    let seen = raw.expect_close().await;
    assert_eq!(seen, vec![(0x20, vec![0x00, 0x02])]);
}

#[tokio::test]
async fn empty_client_id_with_clean_session_is_assigned() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    let body = [
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x1e, 0x00, 0x00,
    ];
    raw.send(&frame(0x10, &body)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
}

#[tokio::test]
async fn unsupported_protocol_level_gets_return_code_1() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    let body = [
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x1e, 0x00, 0x01, b'x',
    ];
    raw.send(&frame(0x10, &body)).await;
    // [MQTT-3.1.2-2]
    assert_eq!(raw.expect_close().await, vec![(0x20, vec![0x00, 0x01])]);
}

#[tokio::test]
async fn session_present_on_resumed_session() {
    let b = broker().await;
    let mut o = v4::options(&b, "persist");
    o.set_clean_session(false);
    let first = v4::connect_with(o.clone()).await;
    assert!(!first.session_present, "[MQTT-3.2.2-3] no session existed");
    first.client.disconnect().await.unwrap();
    drop(first);
    let second = v4::connect_with(o).await;
    assert!(second.session_present, "[MQTT-3.2.2-2] session resumed");
}

#[tokio::test]
async fn second_connection_with_same_id_takes_over() {
    let b = broker().await;
    let mut first = v4::connect(&b, "same").await;
    let _second = v4::connect(&b, "same").await;
    // [MQTT-3.1.4-2] the existing client is disconnected.
    first.disconnected().await;
}

#[tokio::test]
async fn no_connect_within_timeout_closes_socket() {
    let b = conformance::broker_with(|c| c.mqtt.connect_timeout_secs = 1).await;
    let mut raw = RawClient::connect(&b).await;
    let started = std::time::Instant::now();
    assert!(raw.expect_close().await.is_empty());
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

#[tokio::test]
async fn keepalive_timeout_closes_connection() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v311("ka", 1)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    let started = std::time::Instant::now();
    // [MQTT-3.1.2-24] nothing within 1.5 x keep alive: the server disconnects.
    assert!(raw.expect_close().await.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(1400),
        "closed after {waited:?}"
    );
    // The broker checks deadlines on a 250 ms sweep: late by at most that (plus scheduling).
    assert!(
        waited <= std::time::Duration::from_millis(2500),
        "closed only after {waited:?}"
    );
}

#[tokio::test]
async fn pings_within_keep_alive_keep_the_connection_open() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v311("ka-ping", 1)).await;
    assert_eq!(raw.read_packet().await, Some((0x20, vec![0x00, 0x00])));
    // Three times the 1.5 s allowance, pinging every 500 ms: every PINGREQ moves the
    // deadline, so the keep-alive sweep never closes this connection.
    for _ in 0..9 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        raw.send(&[0xc0, 0x00]).await;
        assert_eq!(raw.read_packet().await, Some((0xd0, vec![])));
    }
}

#[tokio::test]
async fn pingreq_gets_pingresp() {
    let b = broker().await;
    let mut raw = RawClient::connect(&b).await;
    raw.send(&conformance::raw_connect_v311("ping", 30)).await;
    raw.read_packet().await;
    raw.send(&[0xc0, 0x00]).await;
    assert_eq!(raw.read_packet().await, Some((0xd0, vec![])));
}
