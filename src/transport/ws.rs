//! MQTT over WebSocket (MQTT 3.1.1 and 5.0 section 6, as Mosquitto's and RabbitMQ's web-mqtt
//! listeners): the HTTP upgrade on one path with the `mqtt` subprotocol, then a byte stream
//! made of binary messages for the MQTT adapter, which stays unaware of WebSocket. Owns the
//! handshake checks and the message <-> byte adaptation, nothing of MQTT itself.
//!
//! The adapter is ours rather than a crate's: it is small, works on tokio's traits directly
//! (no futures-io compatibility layer), and lets one batched write of the connection loop
//! become exactly one WebSocket message.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// Subprotocols accepted in `Sec-WebSocket-Protocol`, in order of preference: `mqtt`
/// [MQTT-6.0.0-3], and `mqttv3.1` which MQTT 3.1 clients (and some libraries) still send.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Runs the WebSocket upgrade on `stream` within `timeout`: the request must be for `path` and
/// offer an MQTT subprotocol, which the response selects [MQTT-6.0.0-4]. `None` (after a log
/// line) when the client is refused or too slow.
pub async fn accept<S>(
    stream: S,
    peer: SocketAddr,
    path: &str,
    max_message: usize,
    timeout: Duration,
) -> Option<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The callback's signature is tungstenite's (`Callback`); its error is an HTTP response.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != path {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "no MQTT endpoint at this path",
            ));
        }
        let offered: Vec<&str> = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // The first of ours the client offers, so `mqtt` wins when both are offered.
        let chosen = SUBPROTOCOLS
            .iter()
            .find(|s| offered.iter().any(|p| s.eq_ignore_ascii_case(p)));
        let Some(chosen) = chosen.map(|p| HeaderValue::from_static(p)) else {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                "the WebSocket subprotocol must be mqtt",
            ));
        };
        resp.headers_mut().insert("sec-websocket-protocol", chosen);
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config));
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(ws)) => Some(WsStream {
            inner: ws,
            pending: Bytes::new(),
        }),
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "WebSocket upgrade refused or failed");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "WebSocket upgrade not completed within {}s", timeout.as_secs());
            None
        }
    }
}

fn refusal(status: StatusCode, why: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(why.to_string()));
    *resp.status_mut() = status;
    resp
}

/// A WebSocket connection seen as a byte stream: binary messages are read back to back, each
/// write becomes one binary message.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The unread rest of the last binary message.
    pending: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                // [MQTT-6.0.0-1]: MQTT travels in binary messages; anything else ends the
                // connection.
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket message on an MQTT connection",
                    )))
                }
                // tungstenite answers pings itself; pongs and raw frames carry no MQTT bytes.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut sink = Pin::new(&mut self.inner);
        ready!(sink.as_mut().poll_ready(cx)).map_err(to_io)?;
        sink.start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.inner).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}
