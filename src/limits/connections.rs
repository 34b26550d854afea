//! Connection counting: the global `max_connections` (checked at accept, before any handshake,
//! so a flood of idle sockets cannot exhaust the broker; a few sockets over it at a time may
//! be refused with the protocol's answer) and `max_connections_per_user`
//! (checked after login). Each admitted connection holds an RAII slot; dropping it — however
//! the connection task ends — gives the slot back. Knows no protocol.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

/// Counters of open connections, shared by every listener.
#[derive(Debug, Default)]
pub struct Connections {
    max: AtomicU32,
    max_per_user: AtomicU32,
    open: AtomicU32,
    per_user: DashMap<String, u32>,
    /// Set while refusing at the global limit, so a flood logs once, not once per socket.
    refusing: AtomicBool,
    /// Sockets above the global limit being told so (AMQP's 530); bounded by
    /// `MAX_REFUSALS_IN_FLIGHT` so a flood past the limit still costs next to nothing.
    refusals: AtomicU32,
}

/// Refusals (handshakes run only to say "over the limit") allowed at once; past them sockets
/// above the limit are closed silently, as before.
const MAX_REFUSALS_IN_FLIGHT: u32 = 16;

/// A socket above the global limit being refused politely; released on drop.
#[derive(Debug)]
pub struct RefusalTicket {
    owner: Arc<Connections>,
}

impl Drop for RefusalTicket {
    fn drop(&mut self) {
        self.owner.refusals.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One admitted connection; the slot is released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    owner: Arc<Connections>,
}

/// One admitted connection of a user; released on drop.
#[derive(Debug)]
pub struct UserSlot {
    owner: Arc<Connections>,
    user: String,
}

impl Connections {
    /// Counters with the given limits (0 = unlimited).
    pub fn new(max: u32, max_per_user: u32) -> Arc<Connections> {
        let c = Connections::default();
        c.set_limits(max, max_per_user);
        Arc::new(c)
    }

    /// Changes the limits (SIGHUP); open connections above a lowered limit stay open.
    pub fn set_limits(&self, max: u32, max_per_user: u32) {
        self.max.store(max, Ordering::Relaxed);
        self.max_per_user.store(max_per_user, Ordering::Relaxed);
    }

    /// The global limit now (0 = unlimited).
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// A ticket to refuse one socket above the global limit with the protocol's own answer,
    /// or `None` when `MAX_REFUSALS_IN_FLIGHT` are already running (close it silently).
    pub fn try_refusal(self: &Arc<Self>) -> Option<RefusalTicket> {
        self.refusals
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_REFUSALS_IN_FLIGHT).then_some(n + 1)
            })
            .ok()?;
        Some(RefusalTicket {
            owner: Arc::clone(self),
        })
    }

    /// Open connections right now.
    pub fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a new socket under the global limit, or `None` (logged once per episode).
    pub fn try_open(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.max.load(Ordering::Relaxed);
        // fetch_update makes check-and-increment one step: two accept loops racing for the
        // last slot cannot both win.
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            if !self.refusing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = max,
                    "connection limit reached: refusing new connections"
                );
            }
            return None;
        }
        if self.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                max_connections = max,
                "connection count below the limit again: accepting"
            );
        }
        Some(ConnectionSlot {
            owner: Arc::clone(self),
        })
    }

    /// Admits one more connection of `user` under `max_connections_per_user`; `Err` carries
    /// the limit that was reached.
    pub fn try_user(self: &Arc<Self>, user: &str) -> Result<UserSlot, u32> {
        let max = self.max_per_user.load(Ordering::Relaxed);
        let mut count = self.per_user.entry(user.to_string()).or_insert(0);
        if max != 0 && *count >= max {
            return Err(max);
        }
        *count += 1;
        Ok(UserSlot {
            owner: Arc::clone(self),
            user: user.to_string(),
        })
    }

    /// Open connections of `user`.
    pub fn of_user(&self, user: &str) -> u32 {
        self.per_user.get(user).map_or(0, |c| *c)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.owner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        // Entries go at zero, so the map holds only users with open connections.
        self.owner.per_user.remove_if_mut(&self.user, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_release() {
        let c = Connections::new(2, 1);
        let a = c.try_open().unwrap();
        let _b = c.try_open().unwrap();
        assert!(c.try_open().is_none());
        drop(a);
        assert!(c.try_open().is_some());
        let u = c.try_user("alice").unwrap();
        assert_eq!(c.try_user("alice").unwrap_err(), 1);
        assert!(c.try_user("bob").is_ok());
        assert_eq!(c.of_user("alice"), 1);
        drop(u);
        assert_eq!(c.of_user("alice"), 0);
        assert!(c.try_user("alice").is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let c = Connections::new(0, 0);
        let slots: Vec<_> = (0..100).map(|_| c.try_open().unwrap()).collect();
        let users: Vec<_> = (0..100).map(|_| c.try_user("u").unwrap()).collect();
        assert_eq!((c.open(), c.of_user("u")), (100, 100));
        drop((slots, users));
        assert_eq!((c.open(), c.of_user("u")), (0, 0));
    }
}
