//! Why a connection is woken from its idle wait (takeover, shutdown, keep alive, alarm, or just
//! something queued), and the one broker-wide sweeper that enforces keep alive. Each connection
//! owns one `Kick` (shared with its session, so deliveries, takeover and shutdown can reach
//! it); the reasons accumulate as bits and the connection takes them all at once. Keep alive and alarm changes ride the same wake-up instead of a `Sleep` and an
//! alarm-watch future per connection: those two were about 270 bytes of every idle
//! connection's state (README, Benchmarks: idle connections). Owns no connection state; never
//! touches the socket.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::Mqtt;

/// Another connection took the session over (or a clean start discarded it).
pub const TAKEN_OVER: u8 = 1;
/// The broker is shutting down.
pub const SHUTDOWN: u8 = 2;
/// The sweeper saw the read deadline pass; the connection checks it again itself.
pub const KEEP_ALIVE: u8 = 4;
/// A resource alarm went on or off: the connection re-reads its publish gate.
pub const ALARM: u8 = 8;
/// Set by every wake-up, reason or not, until the connection sees it (`poll_woken`).
const WOKEN: u8 = 0x80;

/// How often the sweeper looks at the read deadlines that came due (`deadlines.rs`).
const SWEEP_EVERY: Duration = Duration::from_millis(super::deadlines::SLOT_MS);

/// One connection's wake-up signal and read deadline. It has one waiter, its connection, so
/// an `AtomicWaker` is all it needs: a tokio `Notify` (32 bytes) and its `Notified` future (64
/// bytes, in every idle connection's wait) serve any number of waiters (README, Benchmarks).
#[derive(Debug, Default)]
pub struct Kick {
    waker: AtomicWaker,
    /// The reasons not taken yet, and `WOKEN`.
    reasons: AtomicU8,
    /// When the connection's keep alive runs out, in `now_ms` units; 0 = no deadline (no keep
    /// alive, or reading is held by an alarm, whose unread PINGREQs must not count).
    deadline: AtomicU64,
}

impl Kick {
    /// A signal with no reasons and no deadline.
    pub fn new() -> Kick {
        Kick::default()
    }

    /// Wakes the connection for `reason` (one of the constants above). A wake-up that finds
    /// the connection busy is kept until it waits again (`WOKEN` stays set).
    pub fn wake(&self, reason: u8) {
        self.reasons.fetch_or(reason | WOKEN, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Wakes the connection with no reason: something was queued for it, which every wake-up
    /// looks for anyway.
    pub fn poke(&self) {
        self.wake(0);
    }

    /// Ready once woken since the last time it was ready. Polled in place by the connection
    /// (`poll_fn`), so its wait holds no future of its own.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before the flag is read: a wake-up in between finds the new waker.
        self.waker.register(cx.waker());
        if self.reasons.fetch_and(!WOKEN, Ordering::AcqRel) & WOKEN != 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The reasons gathered since the last call.
    pub fn take_reasons(&self) -> u8 {
        self.reasons.fetch_and(WOKEN, Ordering::AcqRel) & !WOKEN
    }

    /// Sets the read deadline `after` from now; called after every read.
    pub fn arm(&self, after: Duration) {
        let at = now_ms().saturating_add(duration_ms(after));
        self.deadline.store(at, Ordering::Relaxed);
    }

    /// Removes the read deadline (no keep alive, or reading is held).
    pub fn disarm(&self) {
        self.deadline.store(0, Ordering::Relaxed);
    }

    /// The read deadline in `now_ms` units; 0 = none.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline.load(Ordering::Relaxed)
    }

    /// Whether the read deadline has passed.
    pub fn expired(&self) -> bool {
        let at = self.deadline.load(Ordering::Relaxed);
        at != 0 && at <= now_ms()
    }
}

/// Kicks connections whose keep alive ran out (the ones `deadlines` says are due), and every
/// connection when an alarm changes, until `shutdown`. One task per broker, over every vhost.
pub async fn sweep(mqtt: Arc<Mqtt>, mut shutdown: watch::Receiver<bool>) {
    let mut alarms = mqtt.core.limits.alarms.subscribe();
    let mut alarms_open = true;
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => mqtt.deadlines.sweep(),
            r = alarms.changed(), if alarms_open => match r {
                Ok(()) => each_kick(&mqtt, &|k: &Kick| k.wake(ALARM)),
                Err(_) => alarms_open = false,
            },
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() {
                return;
            },
        }
    }
}

/// Calls `f` on the signal of every connected client, in every vhost.
pub fn each_kick(mqtt: &Mqtt, f: &dyn Fn(&Kick)) {
    for session in mqtt.online_sessions() {
        if let Some(kick) = &session.lock().kick {
            f(kick);
        }
    }
    for other in mqtt.other_vhosts() {
        each_kick(&other, f);
    }
}

/// Milliseconds since the first call, never 0 (0 means "no deadline").
pub(super) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    duration_ms(Instant::now().saturating_duration_since(epoch)).saturating_add(1)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_passes_and_reasons_accumulate() {
        let k = Kick::new();
        assert!(!k.expired(), "no deadline until armed");
        k.arm(Duration::from_secs(60));
        assert!(!k.expired());
        k.arm(Duration::ZERO);
        assert!(k.expired());
        k.disarm();
        assert!(!k.expired());
        k.wake(ALARM);
        k.wake(TAKEN_OVER);
        assert_eq!(k.take_reasons(), ALARM | TAKEN_OVER);
        assert_eq!(k.take_reasons(), 0);
    }

    #[tokio::test]
    async fn a_wake_up_is_kept_until_seen_once_and_wakes_a_waiting_task() {
        let k = Arc::new(Kick::new());
        k.poke();
        k.wake(ALARM);
        // Two wake-ups before the wait: one is seen, then the next wait waits.
        std::future::poll_fn(|cx| k.poll_woken(cx)).await;
        let waiting = tokio::time::timeout(
            Duration::from_millis(20),
            std::future::poll_fn(|cx| k.poll_woken(cx)),
        );
        assert!(
            waiting.await.is_err(),
            "no wake-up since the last one was seen"
        );
        assert_eq!(k.take_reasons(), ALARM, "the reason outlives the wake-up");

        let waiter = tokio::spawn({
            let k = Arc::clone(&k);
            async move { std::future::poll_fn(|cx| k.poll_woken(cx)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        k.wake(SHUTDOWN);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiting task is woken")
            .expect("no panic");
        assert_eq!(k.take_reasons(), SHUTDOWN);
    }
}
