//! Broker-wide counters and gauges, read by `$SYS` publishing (and later an HTTP exporter).
//! Relaxed atomics: they are statistics, never used for synchronisation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by all connections.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connected clients right now.
    pub clients_connected: AtomicU64,
    /// Messages (PUBLISH) received from clients.
    pub messages_received: AtomicU64,
    /// Messages (PUBLISH) sent to clients.
    pub messages_sent: AtomicU64,
    /// Messages dropped because a session's queue was full or the client could not take them.
    pub messages_dropped: AtomicU64,
    /// Bytes read from client sockets.
    pub bytes_received: AtomicU64,
    /// Bytes written to client sockets.
    pub bytes_sent: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` from a gauge.
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
