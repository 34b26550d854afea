//! Read coalescing for an AMQP connection whose publisher confirms wait for the disk.
//!
//! Publishes read while a confirmed persistent publish waits for its fsync join the next
//! group commit anyway, so reading them at once gains nothing. While a busy publisher's
//! confirms wait, the connection puts reads off for [`COALESCE_READS`]: a client that writes
//! each publish on its own (lapin, pika) is then read once per group commit instead of once
//! per message, and the queue, the persister and the consumers get the batch at once: fewer
//! wakeups, syscalls and fsyncs along the whole path (README, Benchmarks).
//!
//! Busy means either many publishes in flight (at least [`COALESCE_FROM`] when the last
//! answers came, as with a slow disk) or a high rate of confirmed publishes (at least
//! [`BUSY_RATE`] a second over the last [`RATE_WINDOW`]) with more than one in flight. The
//! rate matters because on a fast disk a fast publisher never has many in flight: each
//! fsync is short, every batch small, and with in-flight counts alone such a publisher was
//! taken for a slow one and read once per message (the bimodal runs of README "Targets").
//! For a busy publisher the answers do not end the wait: reads resume when the period ends,
//! so a group commit holds what arrived in about 2 ms, not what arrived during the previous,
//! possibly much shorter, fsync. Its confirms and deliveries wait that much longer (RabbitMQ
//! batches more: p50 21 ms at full rate, README). A publisher at a moderate rate, or one
//! that waits for each confirm, is read at once as before and keeps its latency.
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

/// Confirmed publishes a second from which a publisher counts as busy whatever its in-flight
/// count: five times the 1000 msg/s at which latency is measured, and enough that a period of
/// [`COALESCE_READS`] gathers a batch worth an fsync of its own.
pub const BUSY_RATE: u64 = 5_000;

/// How long answers are counted before the rate is judged again.
const RATE_WINDOW: Duration = Duration::from_millis(20);

/// Bytes the kernel waits for before it signals the socket readable while reads are put
/// off. Below the socket buffer, so a client filling its window still wakes us.
const LOW_WATER: libc::c_int = 64 * 1024;

/// Whether, and until when, reads are put off.
pub struct Coalesce {
    fd: Option<RawFd>,
    until: Option<Instant>,
    raised: bool,
    /// The publisher counted as busy when the last answers came.
    busy: bool,
    /// Since when answers are counted for the rate, and how many came.
    window_start: Instant,
    answered_in_window: u64,
    /// The rate of the last full window reached [`BUSY_RATE`].
    fast: bool,
}

impl Coalesce {
    /// For the socket `fd` (`None`: reads are only skipped, the kernel is not told).
    pub fn new(fd: Option<RawFd>) -> Coalesce {
        Coalesce {
            fd,
            until: None,
            raised: false,
            busy: false,
            window_start: Instant::now(),
            answered_in_window: 0,
            fast: false,
        }
    }

    /// A read of `read` bytes was handled and `undecided` confirmed publishes now wait for
    /// their queues: puts the next read off if they wait for a busy publisher. Not after a
    /// read that filled the largest read chunk: more is waiting, and putting it off would cap
    /// a group commit at one chunk (about 100 small publishes) however fast the client is.
    pub fn after_read(&mut self, undecided: usize, read: usize) {
        if read >= crate::connection::MAX_CHUNK {
            return;
        }
        if undecided > 0 && (self.busy || undecided >= COALESCE_FROM) {
            self.start();
        }
    }

    /// Verdicts came back (an fsync ended): `answered` publishes were answered now and
    /// `waiting` still wait. The publisher's pace is noted; reads go on at once unless it is
    /// busy, whose reads wait for the end of the period (see the module doc).
    pub fn answered(&mut self, answered: usize, waiting: usize) {
        let now = Instant::now();
        self.answered_in_window += answered as u64;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            // answered / elapsed >= BUSY_RATE / s, without a division.
            self.fast = u128::from(self.answered_in_window) * 1_000_000
                >= u128::from(BUSY_RATE) * elapsed.as_micros();
            self.window_start = now;
            self.answered_in_window = 0;
        }
        let in_flight = answered + waiting;
        self.busy = in_flight >= COALESCE_FROM || (self.fast && in_flight > 1);
        if !self.busy {
            self.stop();
        }
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
