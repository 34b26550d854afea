//! AMQP 0-9-1 over TLS: the handshake by hand over a tokio-rustls client. SASL EXTERNAL is
//! offered only with a verified client certificate and logs in as its identity (RabbitMQ's
//! rabbitmq_auth_mechanism_ssl); PLAIN still works over TLS; bad certificates never get as far
//! as the AMQP header.

use conformance::rawamqp::{self, close_code, read_method, send_header, send_method, start_ok};
use conformance::tls::{self, client_config, tls_connect};
use ferromq::config::ClientCertMode;

const START: (u16, u16) = (10, 10);
const TUNE: (u16, u16) = (10, 30);
const OPEN_OK: (u16, u16) = (10, 41);
const CLOSE: (u16, u16) = (10, 50);

#[tokio::test]
async fn external_is_offered_with_a_certificate_and_logs_in_as_its_common_name() {
    let certs = tls::fresh_certs();
    let (b, recorder) = tls::broker(tls::config(&certs, ClientCertMode::Optional)).await;
    let addr = b.amqps_addr().unwrap();
    let mut s = tls_connect(addr, client_config(&certs, "ca", Some("client")))
        .await
        .expect("TLS with a good client certificate");
    send_header(&mut s).await.unwrap();
    let (c, m, args) = read_method(&mut s).await.expect("connection.start");
    assert_eq!((c, m), START);
    let mechanisms = rawamqp::start_mechanisms(&args);
    assert!(
        mechanisms.split(' ').any(|m| m == "EXTERNAL"),
        "{mechanisms}"
    );
    send_method(&mut s, 10, 11, &start_ok("EXTERNAL", b""))
        .await
        .unwrap();
    let (c, m, tune) = read_method(&mut s).await.expect("connection.tune");
    assert_eq!((c, m), TUNE);
    let (c, m, _) = rawamqp::tune_and_open(&mut s, &tune[..8])
        .await
        .expect("open answered");
    assert_eq!((c, m), OPEN_OK);
    let login = recorder.seen().pop().expect("one login");
    assert_eq!(login.protocol, "amqp");
    assert_eq!(login.username.as_deref(), Some("device-1"));
    assert!(!login.has_password);
}

#[tokio::test]
async fn without_a_certificate_external_is_not_offered_and_is_refused() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::Optional)).await;
    let addr = b.amqps_addr().unwrap();
    let mut s = tls_connect(addr, client_config(&certs, "ca", None))
        .await
        .expect("TLS without a client certificate (optional)");
    send_header(&mut s).await.unwrap();
    let (_, _, args) = read_method(&mut s).await.expect("connection.start");
    let mechanisms = rawamqp::start_mechanisms(&args);
    assert!(!mechanisms.contains("EXTERNAL"), "{mechanisms}");
    send_method(&mut s, 10, 11, &start_ok("EXTERNAL", b""))
        .await
        .unwrap();
    // authentication_failure_close: connection.close 403 ACCESS_REFUSED.
    let (c, m, args) = read_method(&mut s).await.expect("connection.close");
    assert_eq!((c, m), CLOSE);
    assert_eq!(close_code(&args), 403);
}

#[tokio::test]
async fn plain_guest_login_works_over_tls() {
    let certs = tls::fresh_certs();
    let (b, recorder) = tls::broker(tls::config(&certs, ClientCertMode::None)).await;
    let mut s = tls_connect(b.amqps_addr().unwrap(), client_config(&certs, "ca", None))
        .await
        .expect("TLS");
    send_header(&mut s).await.unwrap();
    let (_, _, args) = read_method(&mut s).await.expect("connection.start");
    assert_eq!(rawamqp::start_mechanisms(&args), "PLAIN AMQPLAIN");
    send_method(&mut s, 10, 11, &start_ok("PLAIN", b"\0guest\0guest"))
        .await
        .unwrap();
    let (_, _, tune) = read_method(&mut s).await.expect("connection.tune");
    let (c, m, _) = rawamqp::tune_and_open(&mut s, &tune[..8])
        .await
        .expect("open answered");
    assert_eq!((c, m), OPEN_OK);
    assert_eq!(recorder.seen()[0].tls_identity, None);
}

#[tokio::test]
async fn bad_client_certificates_fail_the_handshake() {
    let certs = tls::fresh_certs();
    let (b, _) = tls::broker(tls::config(&certs, ClientCertMode::Required)).await;
    let addr = b.amqps_addr().unwrap();
    for cert in [
        None,
        Some("client-expired"),
        Some("client-revoked"),
        Some("wrong-ca-client"),
    ] {
        // TLS 1.3 reports a refused client certificate after the client's handshake is done,
        // on the first read: send the header and expect no connection.start.
        let refused = match tls_connect(addr, client_config(&certs, "ca", cert)).await {
            Err(_) => true,
            Ok(mut s) => {
                let _ = send_header(&mut s).await;
                read_method(&mut s).await.is_none()
            }
        };
        assert!(refused, "{cert:?} must be refused");
    }
    let good = tls_connect(addr, client_config(&certs, "ca", Some("client2"))).await;
    let mut s = good.expect("a good certificate still works");
    send_header(&mut s).await.unwrap();
    assert_eq!(read_method(&mut s).await.map(|m| (m.0, m.1)), Some(START));
}
