//! Broker shutdown (MQTT 5.0 section 3.14.2.1, reason 0x8B Server shutting down): every
//! connected client's connection ends promptly, v5 clients are told why first, and a client
//! that connects while the shutdown is under way is not left behind.

use conformance::{broker, raw_connect_v311, raw_connect_v5, RawClient, WAIT};

#[tokio::test]
async fn shutdown_sends_v5_clients_disconnect_0x8b_and_closes_every_connection() {
    let b = broker().await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut v5 = RawClient::connect(&b).await;
        v5.send(&raw_connect_v5(&format!("down5-{i}"), 60)).await;
        assert_eq!(v5.read_packet().await.expect("CONNACK").0, 0x20);
        let mut v3 = RawClient::connect(&b).await;
        v3.send(&raw_connect_v311(&format!("down3-{i}"), 60)).await;
        assert_eq!(v3.read_packet().await, Some((0x20, vec![0x00, 0x00])));
        clients.push((v5, v3));
    }
    let stopping = tokio::spawn(b.shutdown());
    for (mut v5, mut v3) in clients {
        let seen = v5.expect_close().await;
        assert_eq!(seen.len(), 1, "one DISCONNECT, then close: {seen:02x?}");
        assert_eq!(seen[0].0, 0xe0, "DISCONNECT");
        assert_eq!(seen[0].1.first(), Some(&0x8b), "Server shutting down");
        assert!(v3.expect_close().await.is_empty(), "v3: closed, no packet");
    }
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown finished in time")
        .expect("shutdown task");
}
