//! The persister's inbox: one FIFO of records from every queue, bounded, where a sender says
//! whether its record needs the persister now.
//!
//! Urgent records (an enqueue, which a publisher's confirm may be waiting for; a barrier) wake
//! the persister. Lazy ones (settle, delivered) do not: nobody waits for them, so they ride in
//! the batch of the next urgent record, in order, and share its fsync. A lazy record still
//! reaches the disk within [`LAZY_DELAY`] or once [`LAZY_BATCH`] of them wait, so a drain with
//! no publishes gives segments back all the same. This replaced a plain channel that woke the
//! persister for every record: with `fsync = batch`, half the fsyncs were for batches of acks
//! alone, and every wakeup is a context switch.
//!
//! A sender that sends a run of records at once (a queue taking in a batch of publishes) may
//! `hold` the inbox meanwhile: urgent records then wake the persister only when the last
//! hold is released, so one group commit takes the whole run. Without it the persister,
//! woken by the run's first enqueue on the other core, took the first few records alone and
//! the rest waited for a second fsync. A sender that must wait for room, or for a barrier
//! (`flush`, a body read back before its record is written), wakes the persister whatever
//! the holds, so a hold never stops the records from draining nor a holder from flushing.
//!
//! Order is the point of having one FIFO: a settle must never overtake the enqueue it cancels,
//! and a delivered record sent before an enqueue is durable when that enqueue's confirm is.
//!
//! Overflow policy: a sender finding `capacity` records waiting blocks until the persister
//! takes them (backpressure at disk speed, see `persister`). A sender whose record the
//! persister can no longer take (its thread is gone) gets the record back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::persister::Op;

/// Longest a lazy record waits for an urgent one to carry it.
pub const LAZY_DELAY: Duration = Duration::from_millis(50);
/// Lazy records that wake the persister on their own.
pub const LAZY_BATCH: usize = 4096;

/// The queue between the queues' tasks and the persister thread.
pub struct Inbox {
    state: Mutex<State>,
    /// The persister waits here for an urgent record.
    ready: Condvar,
    /// Senders wait here for room.
    room: Condvar,
    capacity: usize,
}

struct State {
    ops: VecDeque<Op>,
    /// An urgent record waits (the persister was or will be woken for it).
    urgent: bool,
    /// When the oldest lazy record not yet taken arrived.
    lazy_since: Option<Instant>,
    /// The persister is waiting on `ready`.
    sleeping: bool,
    /// Senders waiting on `room`.
    blocked: usize,
    /// Open holds (`hold`): urgent records wait for the last one's release to wake the
    /// persister.
    holds: usize,
    /// A barrier waits: someone blocks until it is answered, so holds do not apply.
    barrier: bool,
    /// No more records will be sent (the store was dropped).
    closed: bool,
    /// The persister is gone: records cannot be taken any more.
    gone: bool,
}

impl Inbox {
    /// An inbox that holds `capacity` records before senders wait.
    pub fn new(capacity: usize) -> Inbox {
        Inbox {
            state: Mutex::new(State {
                ops: VecDeque::new(),
                urgent: false,
                lazy_since: None,
                sleeping: false,
                blocked: 0,
                holds: 0,
                barrier: false,
                closed: false,
                gone: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `op`, waking the persister if `urgent` (or if lazy records piled up). Blocks
    /// while the inbox is full. `Err(op)` if the persister is gone.
    pub fn send(&self, op: Op, urgent: bool) -> Result<(), Op> {
        let mut s = self.state.lock();
        while s.ops.len() >= self.capacity && !s.gone {
            // The persister must take what waits, held or not.
            if s.sleeping {
                self.ready.notify_one();
            }
            s.blocked += 1;
            self.room.wait(&mut s);
            s.blocked -= 1;
        }
        if s.gone {
            return Err(op);
        }
        let barrier = matches!(op, Op::Barrier(_));
        s.barrier |= barrier;
        s.ops.push_back(op);
        let wake = if urgent {
            // Only the first urgent record since the last take needs to wake it.
            !std::mem::replace(&mut s.urgent, true)
        } else {
            s.lazy_since.get_or_insert_with(Instant::now);
            s.ops.len() == LAZY_BATCH
        };
        if (wake || barrier) && s.sleeping && (s.holds == 0 || s.barrier) {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Holds urgent records back from waking the persister until `release` (one call each):
    /// for a run of records sent at once.
    pub fn hold(&self) {
        self.state.lock().holds += 1;
    }

    /// Ends a `hold`; the last one wakes the persister if an urgent record waits.
    pub fn release(&self) {
        let mut s = self.state.lock();
        s.holds = s.holds.saturating_sub(1);
        if s.holds == 0 && s.urgent && s.sleeping {
            self.ready.notify_one();
        }
    }

    /// Takes every waiting record into `into` once one is urgent, lazy ones waited long enough
    /// or piled up, or the inbox is closed. False once it is closed and empty.
    pub fn take(&self, into: &mut Vec<Op>) -> bool {
        let mut s = self.state.lock();
        loop {
            let held = s.holds > 0 && s.blocked == 0 && !s.barrier;
            if (s.urgent && !held) || s.closed || s.ops.len() >= LAZY_BATCH {
                break;
            }
            match s.lazy_since {
                Some(since) if since.elapsed() >= LAZY_DELAY => break,
                Some(since) => {
                    s.sleeping = true;
                    self.ready.wait_until(&mut s, since + LAZY_DELAY);
                    s.sleeping = false;
                }
                None => {
                    s.sleeping = true;
                    self.ready.wait(&mut s);
                    s.sleeping = false;
                }
            }
        }
        s.urgent = false;
        s.barrier = false;
        s.lazy_since = None;
        let open = !(s.closed && s.ops.is_empty());
        into.extend(s.ops.drain(..));
        if s.blocked > 0 {
            self.room.notify_all();
        }
        open
    }

    /// No more records will come: the persister takes what is left and stops.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }

    /// The persister stopped: senders get their records back instead of waiting.
    pub fn persister_gone(&self) {
        let mut s = self.state.lock();
        s.gone = true;
        s.ops.clear();
        drop(s);
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lazy_records_wait_for_an_urgent_one_and_keep_their_order() {
        let inbox = Arc::new(Inbox::new(16));
        inbox.send(Op::Settle(1), false).ok();
        inbox.send(Op::Delivered(2), false).ok();
        let taker = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let started = Instant::now();
                inbox.take(&mut got);
                (got, started.elapsed())
            })
        };
        let (tx, _rx) = std::sync::mpsc::channel();
        inbox.send(Op::Barrier(tx), true).ok();
        let (got, waited) = taker.join().expect("taker");
        let kinds: Vec<&str> = got
            .iter()
            .map(|op| match op {
                Op::Settle(_) => "settle",
                Op::Delivered(_) => "delivered",
                Op::Barrier(_) => "barrier",
                Op::Enqueue { .. } => "enqueue",
                Op::SettleNow(..) => "settle now",
            })
            .collect();
        assert_eq!(kinds, ["settle", "delivered", "barrier"]);
        assert!(waited < LAZY_DELAY * 20, "took {waited:?}");
    }

    #[test]
    fn lazy_records_alone_are_taken_after_the_delay() {
        let inbox = Inbox::new(16);
        inbox.send(Op::Settle(1), false).ok();
        let started = Instant::now();
        let mut got = Vec::new();
        assert!(inbox.take(&mut got));
        assert_eq!(got.len(), 1);
        assert!(started.elapsed() >= LAZY_DELAY / 2);
    }

    #[test]
    fn a_held_inbox_wakes_the_persister_once_released_with_the_whole_run() {
        let inbox = Arc::new(Inbox::new(16));
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let taker = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                inbox.take(&mut got);
                let _ = taken_tx.send(got.len());
            })
        };
        inbox.hold();
        for id in 0..3 {
            inbox.send(Op::Settle(id), true).ok();
        }
        // Held: the urgent records do not wake the taker (well past a wakeup's latency).
        assert!(taken_rx.recv_timeout(Duration::from_millis(100)).is_err());
        inbox.release();
        let taken = taken_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("taken once released");
        assert_eq!(taken, 3);
        taker.join().expect("taker");
    }

    #[test]
    fn a_sender_waiting_for_room_wakes_the_persister_despite_a_hold() {
        let inbox = Arc::new(Inbox::new(2));
        inbox.hold();
        let taker = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while got.len() < 5 {
                    inbox.take(&mut got);
                }
                got.len()
            })
        };
        let (sent_tx, sent_rx) = std::sync::mpsc::channel();
        let sender = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                for id in 0..5 {
                    inbox.send(Op::Settle(id), true).ok();
                }
                let _ = sent_tx.send(());
            })
        };
        // Five records through room for two: only possible if the held persister drains.
        let sent = sent_rx.recv_timeout(Duration::from_secs(5));
        inbox.release();
        assert!(sent.is_ok(), "the sender stayed blocked behind the hold");
        sender.join().expect("sender");
        assert_eq!(taker.join().expect("taker"), 5);
    }

    #[test]
    fn a_barrier_is_taken_despite_a_hold() {
        let inbox = Arc::new(Inbox::new(16));
        inbox.hold();
        let taker = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                inbox.take(&mut got);
                got.len()
            })
        };
        inbox.send(Op::Settle(1), true).ok();
        let (tx, _rx) = std::sync::mpsc::channel();
        inbox.send(Op::Barrier(tx), true).ok();
        // The holder itself may be the one flushing: it must not wait for its own release.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(taker.join().expect("taker"));
        });
        let taken = done_rx.recv_timeout(Duration::from_secs(5));
        inbox.release();
        assert_eq!(taken.ok(), Some(2), "the barrier waited for the hold");
    }

    #[test]
    fn a_closed_inbox_hands_out_what_is_left_then_reports_the_end() {
        let inbox = Inbox::new(16);
        inbox.send(Op::Settle(1), false).ok();
        inbox.close();
        let mut got = Vec::new();
        assert!(inbox.take(&mut got));
        assert_eq!(got.len(), 1);
        got.clear();
        assert!(!inbox.take(&mut got));
        assert!(got.is_empty());
    }

    #[test]
    fn a_full_inbox_blocks_the_sender_until_records_are_taken() {
        let inbox = Arc::new(Inbox::new(2));
        inbox.send(Op::Settle(1), true).ok();
        inbox.send(Op::Settle(2), true).ok();
        let sender = {
            let inbox = Arc::clone(&inbox);
            std::thread::spawn(move || inbox.send(Op::Settle(3), true).is_ok())
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!sender.is_finished(), "the sender should wait for room");
        let mut got = Vec::new();
        inbox.take(&mut got);
        assert!(sender.join().expect("sender"));
        inbox.take(&mut got);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn senders_get_their_record_back_once_the_persister_is_gone() {
        let inbox = Inbox::new(1);
        inbox.persister_gone();
        assert!(inbox.send(Op::Settle(1), true).is_err());
    }
}
