//! AMQPS with lapin over rustls: PLAIN as guest, SASL EXTERNAL with a client certificate whose
//! CN becomes the user (checked through the validated `user_id` property, 406 otherwise), and
//! refused certificates.

use conformance::amqp::{consume, next, queue};
use conformance::tls::{self, lapin_connect, lapin_tls};
use ferromq::config::ClientCertMode;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::BasicProperties;

#[tokio::test]
async fn guest_round_trip_over_tls() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let conn = lapin_connect(&b, "guest:guest@", "", lapin_tls(&certs, "ca", None))
        .await
        .expect("lapin over TLS");
    let ch = conn.create_channel().await.unwrap();
    queue(&ch, "tls-q").await;
    let mut consumer = consume(&ch, "tls-q").await;
    ch.basic_publish(
        "",
        "tls-q",
        BasicPublishOptions::default(),
        b"over tls",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut consumer).await.data, b"over tls");
}

#[tokio::test]
async fn external_login_is_the_certificate_common_name() {
    let certs = tls::fresh_certs();
    let (b, recorder) = tls::broker(tls::config(&certs, ClientCertMode::Required)).await;
    let conn = lapin_connect(
        &b,
        "",
        "auth_mechanism=external",
        lapin_tls(&certs, "ca", Some("client")),
    )
    .await
    .expect("EXTERNAL login");
    assert_eq!(recorder.seen()[0].username.as_deref(), Some("device-1"));
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    queue(&ch, "mine").await;
    let as_me = BasicProperties::default().with_user_id("device-1".into());
    ch.basic_publish("", "mine", BasicPublishOptions::default(), b"signed", as_me)
        .await
        .unwrap()
        .await
        .expect("confirmed");
    // RabbitMQ's validated user_id: naming another user closes the channel with 406.
    let forged = BasicProperties::default().with_user_id("guest".into());
    let _ = ch
        .basic_publish(
            "",
            "mine",
            BasicPublishOptions::default(),
            b"forged",
            forged,
        )
        .await;
    let deadline = std::time::Instant::now() + conformance::WAIT;
    while ch.status().connected() {
        assert!(
            std::time::Instant::now() < deadline,
            "channel still open after a forged user_id"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn refused_certificates_fail_the_connection() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::Required)).await;
    for (ca, cert) in [
        ("wrong-ca", Some("client")),
        ("ca", Some("client-revoked")),
        ("ca", Some("client-expired")),
        ("ca", Some("wrong-ca-client")),
    ] {
        let r = lapin_connect(
            &b,
            "",
            "auth_mechanism=external",
            lapin_tls(&certs, ca, cert),
        )
        .await;
        assert!(r.is_err(), "{ca} {cert:?} must fail");
    }
}
