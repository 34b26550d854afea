//! ferromq-mqtt: MQTT 3.1 / 3.1.1 / 5.0 control packets <-> bytes.
//!
//! Pure and resumable: `decode` returns `Ok(None)` on incomplete input, checks the packet size
//! limit as soon as the fixed header is readable (before buffering the body), and hands out
//! payloads as zero-copy `Bytes` slices of the read buffer. No tokio, no broker types.

#![warn(missing_docs)]

mod decode;
mod encode;
mod error;
mod packet;
mod properties;
mod reason;
pub mod topic;

pub use decode::{decode, decode_connect_version};
pub use encode::{encode, encode_publish, encoded_len, encoded_publish_len};
pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use properties::Properties;
pub use reason::ReasonCode;
