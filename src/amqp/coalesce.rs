//! Read coalescing for an AMQP connection whose publisher confirms wait for the disk.
//!
//! Publishes read while a confirmed persistent publish waits for its fsync join the next
//! group commit anyway, so reading them at once gains nothing. While a busy publisher's
//! confirms wait, the connection puts reads off until the fsync ends (a verdict comes back)
//! or [`COALESCE_READS`] passed. A client that writes each publish on its own (lapin, pika)
//! is then read once per batch instead of once per message, and the queue and its consumers
//! get the batch at once: fewer wakeups and syscalls along the whole path (README,
//! Benchmarks). Confirms are not delayed; deliveries of those publishes are, by at most that
//! wait.
//!
//! Busy means at least [`COALESCE_FROM`] publishes were in flight when the last fsync ended,
//! or are waiting now. A publisher with fewer (a moderate rate, or one that waits for each
//! confirm) is read at once as before: there is little to batch, and its consumers keep
//! their latency.
//!
//! Not reading is not enough on its own: each segment the client sends still wakes the
//! runtime's epoll (edge-triggered) for nothing. So while reads are put off, the socket's
//! `SO_RCVLOWAT` is raised, which keeps the kernel from signalling readability for less than
//! that much data (`tcp_data_ready`); lowering it again signals at once if data is waiting
//! (Linux `tcp_set_rcvlowat`), so no byte is left unnoticed. If the option cannot be set the
//! connection only skips its reads, which is correct too.

use std::os::fd::RawFd;
use std::time::Duration;

use tokio::time::Instant;

/// Longest a connection leaves its socket unread while a confirm waits for the disk: short
/// next to an fsync here (1-5 ms; the timer wheel rounds it up to 2-3 ms) and to any
/// heartbeat interval.
pub const COALESCE_READS: Duration = Duration::from_millis(2);

/// Publishes in flight from which a publisher counts as busy: fewer means a rate at which
/// batching saves little (at 1000 msg/s and a 3 ms fsync, about 3 are in flight).
pub const COALESCE_FROM: usize = 16;

/// Bytes the kernel waits for before it signals the socket readable while reads are put
/// off. Below the socket buffer, so a client filling its window still wakes us.
const LOW_WATER: libc::c_int = 64 * 1024;

/// Whether, and until when, reads are put off.
pub struct Coalesce {
    fd: Option<RawFd>,
    until: Option<Instant>,
    raised: bool,
    /// The publisher had at least COALESCE_FROM publishes in flight when the last answers came.
    busy: bool,
}

impl Coalesce {
    /// For the socket `fd` (`None`: reads are only skipped, the kernel is not told).
    pub fn new(fd: Option<RawFd>) -> Coalesce {
        Coalesce {
            fd,
            until: None,
            raised: false,
            busy: false,
        }
    }

    /// A read was handled and `undecided` confirmed publishes now wait for their queues:
    /// puts the next read off if they wait for a busy publisher.
    pub fn after_read(&mut self, undecided: usize) {
        if undecided > 0 && (self.busy || undecided >= COALESCE_FROM) {
            self.start();
        }
    }

    /// Verdicts came back (an fsync ended) with `in_flight` publishes answered or still
    /// waiting: reads go on, and the publisher's pace is noted.
    pub fn answered(&mut self, in_flight: usize) {
        self.busy = in_flight >= COALESCE_FROM;
        self.stop();
    }

    /// Puts reads off from now, unless they already are.
    fn start(&mut self) {
        if self.until.is_some() {
            return;
        }
        self.until = Some(Instant::now() + COALESCE_READS);
        if let Some(fd) = self.fd {
            match set_low_water(fd, LOW_WATER) {
                Ok(()) => self.raised = true,
                Err(e) => {
                    tracing::debug!(error = %e, "AMQP: cannot raise SO_RCVLOWAT; reads are only skipped");
                    self.fd = None;
                }
            }
        }
    }

    /// Reads may go on (the socket is signalled again if data waits).
    pub fn stop(&mut self) {
        self.until = None;
        if std::mem::take(&mut self.raised) {
            if let Some(fd) = self.fd {
                if let Err(e) = set_low_water(fd, 1) {
                    // The socket is then signalled only for LOW_WATER bytes: stop using it.
                    tracing::warn!(error = %e, "AMQP: cannot lower SO_RCVLOWAT again");
                    self.fd = None;
                }
            }
        }
    }

    /// When reads resume by themselves, if they are put off.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }
}

impl Drop for Coalesce {
    /// The socket outlives the loop (close handshakes read it): leave it signalling normally.
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_low_water(fd: RawFd, bytes: libc::c_int) -> std::io::Result<()> {
    // SAFETY: `fd` is the connection's open socket (owned by the caller for as long as this
    // `Coalesce` lives); the option value is a c_int passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
