//! The protocol header a client sends before any frame (spec 4.2.2): `AMQP` 0 0 9 1. This module
//! only classifies the first bytes; the broker writes `PROTOCOL_HEADER` back and closes the
//! socket when they are wrong, as the spec requires.

/// The 0-9-1 protocol header: `"AMQP"`, 0, then version 0-9-1.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// What the first bytes from a client say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolHeaderCheck {
    /// The 8 bytes are the 0-9-1 header: consume them and send connection.start.
    Accepted,
    /// Not the 0-9-1 header (another AMQP version, another protocol, garbage): write
    /// `PROTOCOL_HEADER` and close. Decided at the first differing byte, so a peer that sends
    /// fewer than 8 wrong bytes and waits is not left hanging.
    Rejected,
    /// Fewer than 8 bytes so far, all matching: read more.
    Incomplete,
}

/// Classifies the first bytes a client sent. Looks at no more than 8 bytes; anything after
/// them is the first frame and stays for `decode_frame`.
///
/// RabbitMQ also accepts the 0-9 header (`AMQP` 1 1 0 9) as 0-9-1 and speaks 0-8 to `AMQP`
/// 1 1 8 0; ferromq only speaks 0-9-1, which every maintained client sends.
pub fn check_protocol_header(buf: &[u8]) -> ProtocolHeaderCheck {
    let n = buf.len().min(PROTOCOL_HEADER.len());
    if buf[..n] != PROTOCOL_HEADER[..n] {
        ProtocolHeaderCheck::Rejected
    } else if n < PROTOCOL_HEADER.len() {
        ProtocolHeaderCheck::Incomplete
    } else {
        ProtocolHeaderCheck::Accepted
    }
}
