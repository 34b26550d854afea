//! Hand-written AMQP 0-9-1 frames for the connection handshake (AMQP 0-9-1 sections 2.3.5 and
//! 4.2.3), over any byte stream (TLS included). Only what the TLS tests need: read
//! connection.start's mechanisms, answer start-ok with a chosen SASL mechanism, tune-ok, open.
//! Written by hand so ferromq's codec cannot check itself.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A method frame as read: (class id, method id, arguments).
pub type Method = (u16, u16, Vec<u8>);

/// Sends the AMQP 0-9-1 protocol header.
pub async fn send_header<S: AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<()> {
    s.write_all(b"AMQP\x00\x00\x09\x01").await
}

/// Writes one method frame on channel 0.
pub async fn send_method<S: AsyncWrite + Unpin>(
    s: &mut S,
    class: u16,
    method: u16,
    args: &[u8],
) -> std::io::Result<()> {
    let mut payload = Vec::with_capacity(4 + args.len());
    payload.extend_from_slice(&class.to_be_bytes());
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(args);
    let mut frame = vec![1u8, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(0xCE);
    s.write_all(&frame).await
}

/// Reads the next method frame (skipping heartbeats); `None` when the peer closed.
pub async fn read_method<S: AsyncRead + Unpin>(s: &mut S) -> Option<Method> {
    let read = async {
        loop {
            let mut head = [0u8; 7];
            s.read_exact(&mut head).await.ok()?;
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let mut payload = vec![0u8; size + 1];
            s.read_exact(&mut payload).await.ok()?;
            assert_eq!(payload.pop(), Some(0xCE), "frame end");
            if head[0] == 8 {
                continue;
            }
            assert_eq!(head[0], 1, "method frame");
            let class = u16::from_be_bytes([payload[0], payload[1]]);
            let method = u16::from_be_bytes([payload[2], payload[3]]);
            return Some((class, method, payload[4..].to_vec()));
        }
    };
    tokio::time::timeout(super::WAIT, read)
        .await
        .expect("broker answered or closed in time")
}

/// The SASL mechanisms of a connection.start's arguments.
pub fn start_mechanisms(args: &[u8]) -> String {
    // version-major, version-minor, server-properties (table), mechanisms (longstr)
    let table_len = u32::from_be_bytes([args[2], args[3], args[4], args[5]]) as usize;
    let at = 6 + table_len;
    let len = u32::from_be_bytes([args[at], args[at + 1], args[at + 2], args[at + 3]]) as usize;
    String::from_utf8_lossy(&args[at + 4..at + 4 + len]).into_owned()
}

/// connection.start-ok arguments: client properties with `authentication_failure_close`,
/// `mechanism`, `response`, locale en_US.
pub fn start_ok(mechanism: &str, response: &[u8]) -> Vec<u8> {
    let mut caps = Vec::new();
    short(&mut caps, "authentication_failure_close");
    caps.extend_from_slice(b"t\x01");
    let mut props = Vec::new();
    short(&mut props, "capabilities");
    props.push(b'F');
    props.extend_from_slice(&(caps.len() as u32).to_be_bytes());
    props.extend_from_slice(&caps);
    let mut args = Vec::new();
    args.extend_from_slice(&(props.len() as u32).to_be_bytes());
    args.extend_from_slice(&props);
    short(&mut args, mechanism);
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response);
    short(&mut args, "en_US");
    args
}

/// Runs tune-ok (echoing the broker's values) and connection.open on `/`; returns the
/// method that answered open (open-ok is (10, 41)).
pub async fn tune_and_open<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    tune_args: &[u8],
) -> Option<Method> {
    send_method(s, 10, 31, tune_args).await.ok()?;
    let mut open = Vec::new();
    short(&mut open, "/");
    short(&mut open, "");
    open.push(0);
    send_method(s, 10, 40, &open).await.ok()?;
    read_method(s).await
}

/// The reply code of a connection.close's arguments.
pub fn close_code(args: &[u8]) -> u16 {
    u16::from_be_bytes([args[0], args[1]])
}

fn short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}
