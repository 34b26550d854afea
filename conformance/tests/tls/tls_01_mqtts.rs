//! MQTT over TLS: server authentication, client certificates (required / optional), wrong CA,
//! expired and revoked client certificates, and the certificate identity as user name.

use conformance::tls::{self, mqtt_connect, mqtt_connected, mqtt_options, mqtt_refused, Outcome};
use conformance::{recv, RawClient};
use ferromq::config::ClientCertMode;
use rumqttc::{ConnectReturnCode, Packet, QoS};

#[tokio::test]
async fn publish_and_subscribe_over_tls() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let mut sub = mqtt_connected(mqtt_options(&b, &certs, "ca", None, "sub")).await;
    sub.client
        .subscribe("tls/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let Some(Packet::SubAck(_)) = recv(&mut sub.events, "SUBACK").await {
            break;
        }
    }
    let publisher = mqtt_connected(mqtt_options(&b, &certs, "ca", None, "pub")).await;
    publisher
        .client
        .publish("tls/hello", QoS::AtLeastOnce, false, "secret")
        .await
        .unwrap();
    loop {
        if let Some(Packet::Publish(p)) = recv(&mut sub.events, "PUBLISH over TLS").await {
            assert_eq!(p.topic, "tls/hello");
            assert_eq!(&p.payload[..], b"secret");
            break;
        }
    }
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_rejected_by_the_client() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let e = mqtt_refused(mqtt_options(&b, &certs, "wrong-ca", None, "c")).await;
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("Unknown"),
        "{e}"
    );
}

#[tokio::test]
async fn required_client_certificate_accepts_good_and_refuses_missing_wrong_expired_revoked() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::Required)).await;
    let mut ok = mqtt_connected(mqtt_options(&b, &certs, "ca", Some("client"), "good")).await;
    for (cert, why) in [
        (None, "no certificate"),
        (Some("wrong-ca-client"), "certificate from another CA"),
        (Some("client-expired"), "expired certificate"),
        (Some("client-revoked"), "revoked certificate (crl.pem)"),
    ] {
        let options = mqtt_options(&b, &certs, "ca", cert, "bad");
        match mqtt_connect(options).await {
            Outcome::Failed(_) => {}
            other => panic!("{why}: expected the handshake to fail, got {other:?}"),
        }
    }
    // The refusals did not disturb the broker or the good connection.
    ok.client
        .publish("still/here", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    loop {
        if let Some(Packet::PubAck(_)) = recv(&mut ok.events, "PUBACK").await {
            break;
        }
    }
}

#[tokio::test]
async fn optional_client_certificate_allows_none_but_refuses_a_bad_one() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::Optional)).await;
    mqtt_connected(mqtt_options(&b, &certs, "ca", None, "anon")).await;
    mqtt_connected(mqtt_options(&b, &certs, "ca", Some("client"), "dev")).await;
    mqtt_refused(mqtt_options(
        &b,
        &certs,
        "ca",
        Some("client-revoked"),
        "rev",
    ))
    .await;
    mqtt_refused(mqtt_options(
        &b,
        &certs,
        "ca",
        Some("wrong-ca-client"),
        "wrong",
    ))
    .await;
}

#[tokio::test]
async fn certificate_identity_replaces_the_connect_user_name() {
    let certs = tls::fresh_certs();
    let mut config = tls::config(&certs, ClientCertMode::Optional);
    config.tls.mqtt_identity_as_username = true;
    let (b, recorder) = tls::broker(config).await;
    let mut options = mqtt_options(&b, &certs, "ca", Some("client"), "dev");
    options.set_credentials("mallory", "secret");
    mqtt_connected(options).await;
    let login = recorder.seen().pop().expect("one login");
    assert_eq!(login.protocol, "mqtt");
    assert_eq!(login.username.as_deref(), Some("device-1"));
    assert!(!login.has_password, "the password is ignored");
    assert_eq!(login.tls_identity.as_deref(), Some("device-1"));
}

#[tokio::test]
async fn identity_as_user_name_without_a_certificate_is_not_authorized() {
    let certs = tls::fresh_certs();
    let mut config = tls::config(&certs, ClientCertMode::Optional);
    config.tls.mqtt_identity_as_username = true;
    let (b, _) = tls::broker(config).await;
    let mut options = mqtt_options(&b, &certs, "ca", None, "anon");
    options.set_credentials("device-1", "pw");
    match mqtt_connect(options).await {
        // 3.1.1 return code 5 (Mosquitto answers the same).
        Outcome::ConnAck(code, _) => assert_eq!(code, ConnectReturnCode::NotAuthorized),
        other => panic!("expected CONNACK 5, got {other:?}"),
    }
    // Plain MQTT is not affected by the TLS-only setting.
    let plain = conformance::broker_with(|c| c.tls.mqtt_identity_as_username = true).await;
    conformance::v4::connect(&plain, "plain").await;
}

#[tokio::test]
async fn plain_mqtt_on_the_tls_port_is_dropped_and_the_broker_survives() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let mut raw = RawClient {
        stream: tokio::net::TcpStream::connect(b.mqtts_addr().unwrap())
            .await
            .unwrap(),
    };
    raw.send(&conformance::raw_connect_v311("plain", 30)).await;
    // No CONNACK: the bytes are not a TLS ClientHello (rustls answers with an alert and closes).
    let seen = raw.expect_close().await;
    assert!(seen.iter().all(|(first, _)| *first != 0x20), "{seen:?}");
    mqtt_connected(mqtt_options(&b, &certs, "ca", None, "after")).await;
}

#[tokio::test]
async fn a_stalled_handshake_neither_blocks_others_nor_stays_forever() {
    use tokio::io::AsyncReadExt;
    let certs = tls::fresh_certs();
    let mut config = tls::config(&certs, ClientCertMode::None);
    config.tls.handshake_timeout_secs = 1;
    let (b, _) = tls::broker(config).await;
    // A client that opens the socket and never sends its ClientHello.
    let mut stalled = tokio::net::TcpStream::connect(b.mqtts_addr().unwrap())
        .await
        .unwrap();
    // The accept loop is free: another client completes its handshake meanwhile.
    mqtt_connected(mqtt_options(&b, &certs, "ca", None, "meanwhile")).await;
    // The stalled socket is closed once the handshake timeout passes.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(conformance::WAIT, stalled.read(&mut buf))
        .await
        .expect("closed within the handshake timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
}
