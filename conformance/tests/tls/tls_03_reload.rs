//! Certificate hot reload: new connections get the new server certificate (and CA / CRL),
//! established connections stay up; a broken file keeps the previous certificates; the file
//! watcher reloads without a signal.

use std::path::Path;
use std::time::{Duration, Instant};

use conformance::recv;
use conformance::tls::{
    self, mqtt_connect, mqtt_connected, mqtt_options, mqtt_refused, MqttClient, Outcome,
};
use ferromq::config::ClientCertMode;
use rumqttc::{Packet, QoS};

/// Replaces the served certificate with the one from the wrong CA (as an operator would).
fn swap_server_certificate(certs: &Path) {
    std::fs::copy(certs.join("wrong-ca-server.pem"), certs.join("server.pem")).unwrap();
    std::fs::copy(certs.join("wrong-ca-server.key"), certs.join("server.key")).unwrap();
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_keeps_old_connections() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let mut old = subscribed(mqtt_options(&b, &certs, "ca", None, "old")).await;
    swap_server_certificate(&certs);
    b.reload_tls().expect("reload succeeds");
    // New connections: the old CA no longer verifies the server, the new one does.
    mqtt_refused(mqtt_options(&b, &certs, "ca", None, "stale")).await;
    let fresh = mqtt_connected(mqtt_options(&b, &certs, "wrong-ca", None, "new")).await;
    // The connection made before the reload still works both ways.
    fresh
        .client
        .publish("r/x", QoS::AtLeastOnce, false, "after reload")
        .await
        .unwrap();
    expect_publish(&mut old, b"after reload").await;
}

#[tokio::test]
async fn a_broken_file_keeps_the_previous_certificates() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    std::fs::write(certs.join("server.pem"), "not a certificate").unwrap();
    let e = b
        .reload_tls()
        .expect_err("reload refuses a broken certificate");
    assert!(e.to_string().contains("server.pem"), "{e}");
    mqtt_connected(mqtt_options(&b, &certs, "ca", None, "still-old")).await;
}

#[tokio::test]
async fn reload_picks_up_a_new_crl_and_keeps_the_connection_it_now_revokes() {
    let certs = tls::fresh_certs();
    let crl = certs.join("active-crl.pem");
    std::fs::copy(certs.join("crl-empty.pem"), &crl).unwrap();
    let mut config = tls::config(&certs, ClientCertMode::Required);
    config.tls.crl = Some(crl.clone());
    let (b, _) = tls::broker(config).await;
    let mut before = subscribed(mqtt_options(
        &b,
        &certs,
        "ca",
        Some("client-revoked"),
        "before",
    ))
    .await;
    std::fs::copy(certs.join("crl.pem"), &crl).unwrap();
    b.reload_tls().expect("reload succeeds");
    mqtt_refused(mqtt_options(
        &b,
        &certs,
        "ca",
        Some("client-revoked"),
        "after",
    ))
    .await;
    // Revocation applies to new handshakes; the established session is not cut (as with
    // Mosquitto and RabbitMQ, which also check CRLs only at handshake time).
    let other = mqtt_connected(mqtt_options(&b, &certs, "ca", Some("client"), "other")).await;
    other
        .client
        .publish("r/crl", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    expect_publish(&mut before, b"x").await;
}

#[tokio::test]
async fn changed_files_are_reloaded_without_a_signal() {
    let certs = tls::fresh_certs();
    let mut config = tls::config(&certs, ClientCertMode::None);
    config.tls.watch_interval_secs = 1;
    let (b, _) = tls::broker(config).await;
    let mut old = subscribed(mqtt_options(&b, &certs, "ca", None, "old")).await;
    swap_server_certificate(&certs);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match mqtt_connect(mqtt_options(&b, &certs, "wrong-ca", None, "new")).await {
            Outcome::ConnAck(_, Some(mut new)) => {
                new.client
                    .publish("r/w", QoS::AtLeastOnce, false, "y")
                    .await
                    .unwrap();
                // Keep the publisher until the broker has the message.
                while !matches!(
                    recv(&mut new.events, "PUBACK").await,
                    Some(Packet::PubAck(_))
                ) {}
                break;
            }
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("watcher did not reload within 10s: {other:?}"),
        }
    }
    expect_publish(&mut old, b"y").await;
}

/// Connects and subscribes to `r/#` at QoS 1.
async fn subscribed(options: rumqttc::MqttOptions) -> MqttClient {
    let mut c = mqtt_connected(options).await;
    c.client.subscribe("r/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Some(Packet::SubAck(_)) = recv(&mut c.events, "SUBACK").await {
            return c;
        }
    }
}

/// Waits for a PUBLISH with `payload` on `c`.
async fn expect_publish(c: &mut MqttClient, payload: &[u8]) {
    loop {
        if let Some(Packet::Publish(p)) = recv(&mut c.events, "PUBLISH").await {
            assert_eq!(&p.payload[..], payload);
            return;
        }
    }
}
