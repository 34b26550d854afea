//! AMQP 0-9-1 section 2.2.4 / 4.2.2: protocol header, handshake, login, vhost, close.

use conformance::{amqp, broker, RawClient};
use lapin::{Connection, ConnectionProperties};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn guest_connects_and_opens_channels() {
    let b = broker().await;
    let conn = amqp::connect(&b).await;
    let c1 = conn.create_channel().await.unwrap();
    let c2 = conn.create_channel().await.unwrap();
    assert_ne!(c1.id(), c2.id());
    c1.close(200, "bye").await.unwrap();
    conn.close(200, "bye").await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let b = broker().await;
    let addr = b.amqp_addr().unwrap();
    let uri = format!("amqp://guest:wrong@{addr}/%2f");
    let r = tokio::time::timeout(
        conformance::WAIT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("answered in time");
    let err = r.expect_err("login refused").to_string();
    assert!(
        err.contains("403") || err.to_lowercase().contains("access"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_vhost_is_refused() {
    let b = broker().await;
    let addr = b.amqp_addr().unwrap();
    let uri = format!("amqp://guest:guest@{addr}/nowhere");
    let r = tokio::time::timeout(
        conformance::WAIT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    .expect("answered in time");
    let err = r.expect_err("vhost refused").to_string();
    assert!(err.contains("530") || err.contains("NOT_ALLOWED"), "{err}");
}

#[tokio::test]
async fn wrong_protocol_header_gets_ours_back() {
    let b = broker().await;
    let addr = b.amqp_addr().unwrap();
    let mut raw = RawClient {
        stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
    };
    raw.send(b"AMQP\x01\x01\x00\x0a").await;
    let mut back = Vec::new();
    tokio::time::timeout(conformance::WAIT, raw.stream.read_to_end(&mut back))
        .await
        .expect("closed in time")
        .unwrap();
    // [AMQP 0-9-1 4.2.2] the server answers with the header it supports and closes.
    assert_eq!(back, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test]
async fn mqtt_bytes_on_the_amqp_port_are_refused() {
    let b = broker().await;
    let addr = b.amqp_addr().unwrap();
    let mut raw = RawClient {
        stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
    };
    raw.send(&conformance::raw_connect_v311("lost", 30)).await;
    let mut back = Vec::new();
    let _ = tokio::time::timeout(conformance::WAIT, raw.stream.read_to_end(&mut back)).await;
    assert_eq!(back, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test]
async fn channel_flow_pause_is_refused_as_rabbitmq_does() {
    let b = broker().await;
    let (_c, ch) = amqp::channel(&b).await;
    ch.channel_flow(lapin::options::ChannelFlowOptions { active: true })
        .await
        .expect("flow active=true is accepted");
    let e = ch
        .channel_flow(lapin::options::ChannelFlowOptions { active: false })
        .await
        .expect_err("active=false is not implemented")
        .to_string();
    assert!(e.contains("540") || e.contains("NOT_IMPLEMENTED"), "{e}");
}
