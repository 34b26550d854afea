//! MQTT over WebSocket (MQTT 3.1.1 / 5.0 section 6) with a tokio-tungstenite client sending
//! hand-written MQTT bytes: binary messages, packets split over messages or sharing one, the
//! `mqtt` subprotocol, refusals, and wss with the TLS settings.

use conformance::tls::{self, client_config, tls_connect};
use conformance::{broker_with, raw_connect_v311, WAIT};
use ferromq::config::{ClientCertMode, Listen};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const CONNACK_OK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: [u8; 2] = [0xD0, 0x00];

fn local() -> Listen {
    Listen::Addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Upgrades `stream` on `path` offering `protocol`; the handshake result.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    path: &str,
    protocol: Option<&str>,
) -> Result<WebSocketStream<S>, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://localhost{path}")
        .into_client_request()
        .unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
    }
    let (ws, resp) = tokio_tungstenite::client_async(req, stream).await?;
    if protocol.is_some() {
        // [MQTT-6.0.0-4]
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").unwrap(),
            "mqtt"
        );
    }
    Ok(ws)
}

/// The next binary message's bytes, within WAIT; `None` when the broker closed.
async fn next_binary<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("answer in time")
        {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn connect_and_ping_in_binary_messages_split_and_glued() {
    let b = broker_with(|c| c.mqtt_ws_listen = local()).await;
    let tcp = tokio::net::TcpStream::connect(b.mqtt_ws_addr().unwrap())
        .await
        .unwrap();
    let mut ws = upgrade(tcp, "/mqtt", Some("mqtt")).await.expect("upgrade");
    // [MQTT-6.0.0-2]: a packet may span WebSocket messages.
    let connect = raw_connect_v311("ws1", 30);
    let (a, rest) = connect.split_at(5);
    ws.send(Message::binary(a.to_vec())).await.unwrap();
    ws.send(Message::binary(rest.to_vec())).await.unwrap();
    assert_eq!(next_binary(&mut ws).await.as_deref(), Some(&CONNACK_OK[..]));
    // ...and one message may hold several packets.
    ws.send(Message::binary([PINGREQ, PINGREQ].concat()))
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        got.extend(next_binary(&mut ws).await.expect("PINGRESPs"));
    }
    assert_eq!(got, [PINGRESP, PINGRESP].concat());
}

#[tokio::test]
async fn a_text_message_closes_the_connection() {
    let b = broker_with(|c| c.mqtt_ws_listen = local()).await;
    let tcp = tokio::net::TcpStream::connect(b.mqtt_ws_addr().unwrap())
        .await
        .unwrap();
    let mut ws = upgrade(tcp, "/mqtt", Some("mqtt")).await.unwrap();
    ws.send(Message::binary(raw_connect_v311("t", 30)))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await.as_deref(), Some(&CONNACK_OK[..]));
    // [MQTT-6.0.0-1]
    ws.send(Message::text("PINGREQ")).await.unwrap();
    assert_eq!(next_binary(&mut ws).await, None);
}

#[tokio::test]
async fn wrong_path_and_missing_subprotocol_are_refused() {
    let b = broker_with(|c| c.mqtt_ws_listen = local()).await;
    let addr = b.mqtt_ws_addr().unwrap();
    for (path, proto) in [
        ("/other", Some("mqtt")),
        ("/mqtt", None),
        ("/mqtt", Some("chat")),
    ] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(upgrade(tcp, path, proto).await.is_err(), "{path} {proto:?}");
    }
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    upgrade(tcp, "/mqtt", Some("mqttv3.1, mqtt"))
        .await
        .expect("still serving");
}

#[tokio::test]
async fn secure_websocket_uses_the_tls_settings() {
    let certs = tls::fresh_certs();
    let mut config = tls::config(&certs, ClientCertMode::Required);
    config.mqtt_wss_listen = local();
    let (b, recorder) = tls::broker(config).await;
    let addr = b.mqtt_wss_addr().unwrap();
    let s = tls_connect(addr, client_config(&certs, "ca", Some("client")))
        .await
        .unwrap();
    let mut ws = upgrade(s, "/mqtt", Some("mqtt"))
        .await
        .expect("wss upgrade");
    ws.send(Message::binary(raw_connect_v311("wss", 30)))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await.as_deref(), Some(&CONNACK_OK[..]));
    assert_eq!(recorder.seen()[0].tls_identity.as_deref(), Some("device-1"));
    // A revoked certificate never gets to the upgrade.
    let refused = match tls_connect(addr, client_config(&certs, "ca", Some("client-revoked"))).await
    {
        Err(_) => true,
        Ok(s) => upgrade(s, "/mqtt", Some("mqtt")).await.is_err(),
    };
    assert!(refused);
}
