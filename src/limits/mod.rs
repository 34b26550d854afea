//! Limits and resource alarms shared by both protocols: connection counts (`connections.rs`),
//! the memory and disk alarms that block publishers (`alarm.rs`), and the `[limits]` config
//! table (`settings.rs`). Protocol adapters ask these for admission and alarm state; the
//! wire reactions (CONNACK codes, connection.blocked) stay in the adapters.

pub mod alarm;
pub mod connections;
pub mod gate;
pub mod reload;
pub mod settings;

use std::sync::Arc;

pub use alarm::{AlarmState, Alarms};
pub use connections::{ConnectionSlot, Connections, UserSlot};
pub use gate::PublishGate;
pub use settings::{ByteSize, LimitsConfig, Watermark};

/// The broker's limits: one per `Core`.
#[derive(Debug)]
pub struct Limits {
    /// Open connection counters.
    pub connections: Arc<Connections>,
    /// Memory and disk alarms.
    pub alarms: Arc<Alarms>,
}

impl Limits {
    /// Limits from the configuration.
    pub fn new(config: &crate::config::Config) -> Limits {
        let l = &config.limits;
        Limits {
            connections: Connections::new(l.max_connections, l.max_connections_per_user),
            // A store that writes nothing to disk cannot fill it: no disk alarm.
            alarms: Alarms::new(
                l,
                (!config.store.in_memory).then_some(config.data_dir.as_path()),
            ),
        }
    }

    /// Applies a re-read `[limits]` table (SIGHUP).
    pub fn reload(&self, l: &LimitsConfig) {
        self.connections
            .set_limits(l.max_connections, l.max_connections_per_user);
        self.alarms
            .set_thresholds(l.memory_high_watermark, l.disk_free_limit.0);
        self.alarms.check();
    }
}
