//! The per-connection view of the resource alarms: a connection becomes a publisher at its
//! first publish, and a publisher is held — its socket not read — while an alarm is on.
//! As RabbitMQ: connections that only consume are never held, so queues can drain.

use tokio::sync::watch;

use super::alarm::{AlarmState, Alarms};

/// One connection's alarm gate.
#[derive(Debug)]
pub struct PublishGate {
    rx: watch::Receiver<AlarmState>,
    publisher: bool,
}

impl PublishGate {
    /// A gate for a new connection (not a publisher yet).
    pub fn new(alarms: &Alarms) -> PublishGate {
        PublishGate {
            rx: alarms.subscribe(),
            publisher: false,
        }
    }

    /// Records that the connection published.
    pub fn mark_publisher(&mut self) {
        self.publisher = true;
    }

    /// Whether the connection must stop reading now.
    pub fn holds(&self) -> bool {
        self.publisher && self.rx.borrow().blocking()
    }

    /// The current alarm state.
    pub fn state(&self) -> AlarmState {
        *self.rx.borrow()
    }

    /// Resolves at the next alarm change (never, once the broker is gone).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
