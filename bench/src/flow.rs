//! Publisher flow control shared by the MQTT and AMQP scenarios. A publisher may run at most a
//! window of messages ahead of what its receivers have seen, so a broker is measured at the rate
//! it sustains rather than by how much it can buffer (or drop) in memory; and at most `inflight`
//! ahead of its acknowledgements (QoS 1 PUBACKs, publisher confirms). Receivers credit the
//! publisher named in each payload's header, once per read batch, and wake it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a publisher waits without any progress before it writes the missing messages off
/// as dropped by the broker (QoS 0 overflow) and carries on.
const STALL: Duration = Duration::from_millis(500);

/// Counters of one publisher, written by its receivers and its ack reader.
#[derive(Default)]
pub struct PubState {
    /// Copies of this publisher's messages received by any receiver.
    pub delivered: AtomicU64,
    /// Messages acknowledged by the broker (PUBACK / confirm).
    pub acked: AtomicU64,
    /// Woken when either counter moves.
    pub notify: Notify,
}

/// The shared state of one run: one `PubState` per publisher plus totals.
pub struct Flow {
    /// Per publisher, by index.
    pub pubs: Vec<PubState>,
    /// All deliveries so far.
    pub total_delivered: AtomicU64,
    /// `now_ns()` of the latest delivery, for the end of the measured window.
    pub last_delivery_ns: AtomicU64,
}

impl Flow {
    /// State for `pubs` publishers.
    pub fn new(pubs: usize) -> Arc<Flow> {
        Arc::new(Flow {
            pubs: (0..pubs).map(|_| PubState::default()).collect(),
            total_delivered: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
        })
    }
}

/// Per-receiver tally of one read batch, flushed to the shared counters in one go so the
/// atomics and wake-ups cost once per batch instead of once per message.
pub struct Tally {
    counts: Vec<u64>,
    total: u64,
}

impl Tally {
    /// A tally for `pubs` publishers.
    pub fn new(pubs: usize) -> Tally {
        Tally {
            counts: vec![0; pubs],
            total: 0,
        }
    }

    /// Counts one delivery from `publisher` (ignores indices that are not ours).
    pub fn add(&mut self, publisher: u32) {
        if let Some(c) = self.counts.get_mut(publisher as usize) {
            *c += 1;
            self.total += 1;
        }
    }

    /// Publishes the batch to `flow` and wakes the publishers it credits.
    pub fn flush(&mut self, flow: &Flow, now_ns: u64) {
        if self.total == 0 {
            return;
        }
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c > 0 {
                flow.pubs[i].delivered.fetch_add(*c, Ordering::AcqRel);
                flow.pubs[i].notify.notify_one();
                *c = 0;
            }
        }
        flow.total_delivered.fetch_add(self.total, Ordering::AcqRel);
        flow.last_delivery_ns.fetch_max(now_ns, Ordering::AcqRel);
        self.total = 0;
    }
}

/// A publisher's view of its window.
pub struct Window {
    /// Max messages sent but not yet seen by every receiver.
    pub window: u64,
    /// Max messages sent but not yet acknowledged (0 = no acks expected).
    pub inflight: u64,
    /// Receivers each message reaches.
    pub copies: u64,
    written_off: u64,
}

impl Window {
    /// A window; `copies` is how many receivers get each message.
    pub fn new(window: u64, inflight: u64, copies: u64) -> Window {
        Window {
            window: window.max(1),
            inflight,
            copies: copies.max(1),
            written_off: 0,
        }
    }

    /// How many more messages may be sent now, given `sent` so far.
    pub fn room(&self, state: &PubState, sent: u64) -> u64 {
        let delivered = state.delivered.load(Ordering::Acquire) + self.written_off;
        let outstanding = (sent * self.copies).saturating_sub(delivered);
        let mut room = (self.window * self.copies).saturating_sub(outstanding) / self.copies;
        if self.inflight > 0 {
            let unacked = sent.saturating_sub(state.acked.load(Ordering::Acquire));
            room = room.min(self.inflight.saturating_sub(unacked));
        }
        room
    }

    /// Waits until there is room or `deadline` passes; returns the room (0 at the deadline).
    /// After `STALL` without room, the outstanding deliveries are written off as dropped.
    pub async fn wait(&mut self, state: &PubState, sent: u64, deadline: Instant) -> u64 {
        loop {
            let room = self.room(state, sent);
            if room > 0 {
                return room;
            }
            let now = Instant::now();
            if now >= deadline {
                return 0;
            }
            let wait = STALL.min(deadline - now);
            if tokio::time::timeout(wait, state.notify.notified())
                .await
                .is_err()
                && wait == STALL
            {
                let delivered = state.delivered.load(Ordering::Acquire) + self.written_off;
                self.written_off += (sent * self.copies).saturating_sub(delivered);
                if self.inflight > 0 {
                    // Unacked QoS 1 messages are not written off: the broker owes the acks.
                    continue;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_respects_window_copies_and_inflight() {
        let flow = Flow::new(1);
        let st = &flow.pubs[0];
        let w = Window::new(100, 0, 10);
        assert_eq!(w.room(st, 0), 100);
        // 60 sent, 10 copies each, 300 of 600 copies seen: 30 messages outstanding.
        st.delivered.store(300, Ordering::Release);
        assert_eq!(w.room(st, 60), 70);
        let w = Window::new(100, 16, 10);
        st.acked.store(50, Ordering::Release);
        assert_eq!(w.room(st, 60), 6);
    }

    #[test]
    fn tally_flush_credits_publishers_once_per_batch() {
        let flow = Flow::new(2);
        let mut t = Tally::new(2);
        t.add(1);
        t.add(1);
        t.add(7); // not one of ours
        t.flush(&flow, 99);
        assert_eq!(flow.pubs[1].delivered.load(Ordering::Acquire), 2);
        assert_eq!(flow.pubs[0].delivered.load(Ordering::Acquire), 0);
        assert_eq!(flow.total_delivered.load(Ordering::Acquire), 2);
        assert_eq!(flow.last_delivery_ns.load(Ordering::Acquire), 99);
    }

    #[tokio::test]
    async fn a_stalled_window_is_written_off() {
        let flow = Flow::new(1);
        let mut w = Window::new(10, 0, 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        // 10 sent, none delivered: after one stall the window opens again.
        let start = Instant::now();
        assert_eq!(w.wait(&flow.pubs[0], 10, deadline).await, 10);
        assert!(start.elapsed() >= STALL);
    }
}
