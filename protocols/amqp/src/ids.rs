//! Newtypes for the numbers that travel next to each other and must not be mixed up: channel
//! numbers (frame header) and delivery tags (basic.deliver / ack / nack / reject, and publish
//! sequence numbers in confirm mode).

use std::fmt;

/// A channel number from a frame header. Channel 0 is the connection itself (connection class
/// methods and heartbeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChannelId(pub u16);

impl ChannelId {
    /// Channel 0: connection-level methods and heartbeats.
    pub const CONNECTION: ChannelId = ChannelId(0);
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A channel-scoped delivery tag (spec domain `delivery-tag`). Tags start at 1; 0 only appears
/// with `multiple` to mean "all outstanding".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeliveryTag(pub u64);

impl fmt::Display for DeliveryTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
