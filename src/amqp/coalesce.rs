//! Read coalescing for an AMQP connection whose publisher confirms wait for the disk.
//!
//! Publishes read while a confirmed persistent publish waits for its fsync join the next
//! group commit anyway, so reading them at once gains nothing. While a busy publisher's
//! confirms wait, the connection puts reads off for [`COALESCE_READS`]: a client that writes
//! each publish on its own (lapin, pika) is then read once per group commit instead of once
//! per message, and the queue, the persister and the consumers get the batch at once: fewer
//! wakeups, syscalls and fsyncs along the whole path (README, Benchmarks).
//!
//! Busy means many publishes in flight: at least [`COALESCE_FROM`] answered or waiting when
//! the last answers came. On a fast disk a fast publisher may never have that many in flight
//! if it is read at once (each fsync short, every batch small: the bimodal runs of README
//! "Targets"), so a publisher confirming at least [`BUSY_RATE`] a second that is not busy has
//! one read in [`PROBE_EVERY`] put off until its answers come: a client that streams then
//! shows many in flight and counts as busy from then on, while one held back by a small
//! window of unconfirmed publishes never does and keeps being read at once.
//!
//! For a busy publisher that keeps sending, the answers do not end the wait, so a group
//! commit holds what arrived in up to a period, not what arrived during the previous,
//! possibly much shorter, fsync. Reads resume when the period ends, or once the socket holds
//! as many publishes as the client has been seen to keep in flight (its peak, less those
//! read and waiting; the kernel's low-water mark wakes us): a client held back by a window
//! of unconfirmed publishes has then sent all it can, and waiting on would only idle it. A
//! streaming client's peak is what a period gathers, so it is read about when the period
//! ends. If nothing arrived during the fsync (`FIONREAD`), the client waits for these
//! confirms, and reads resume at once. A read that filled the largest read chunk is followed
//! by another at once. Confirms and deliveries of a streaming publisher wait up to the
//! period longer (RabbitMQ batches more: p50 21 ms at full rate, README). A publisher at a
//! moderate rate, or one that waits for each confirm, is read at once as before and keeps
//! its latency.
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

/// Confirmed publishes a second from which a publisher with few in flight is probed (see
/// the module doc): five times the 1000 msg/s at which latency is measured, and enough that
/// a period of [`COALESCE_READS`] gathers a batch worth an fsync of its own.
pub const BUSY_RATE: u64 = 5_000;

/// A fast publisher that is not busy has every this many reads put off once, to see whether
/// it streams.
const PROBE_EVERY: u32 = 8;

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
    /// Answers since the last probe, while fast but not busy.
    since_probe: u32,
    /// Confirmed publishes waiting when last seen, to count those each read brings.
    undecided_seen: usize,
    /// Bytes a publish takes on the wire, averaged over reads: turns the bytes waiting in
    /// the socket into publishes.
    publish_bytes: usize,
    /// While put off, reads are allowed again, gated by the kernel: the low-water mark is
    /// set to the refill the answers let the client send (see `answered`).
    armed: bool,
    /// Publishes answered since the last read: the refill a windowed client may send.
    answered_since_read: usize,
    /// Most publishes seen in flight (answered since the read, waiting, or unread) at an
    /// answer: a client held back by a window never exceeds its window. Decays by 1/8 per
    /// [`RATE_WINDOW`] unless seen again, so a client that changes its pace is relearned.
    peak: usize,
    /// The most seen during the current rate window.
    window_peak: usize,
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
            since_probe: 0,
            undecided_seen: 0,
            publish_bytes: 256,
            armed: false,
            answered_since_read: 0,
            peak: 0,
            window_peak: 0,
        }
    }

    /// A read of `read` bytes was handled and `undecided` confirmed publishes now wait for
    /// their queues: puts the next read off if they wait for a busy publisher. Not after a
    /// read that filled the largest read chunk: more is waiting, and putting it off would cap
    /// a group commit at one chunk (about 100 small publishes) however fast the client is.
    pub fn after_read(&mut self, undecided: usize, read: usize) {
        let new = undecided.saturating_sub(self.undecided_seen);
        self.undecided_seen = undecided;
        if let Some(per) = read.checked_div(new) {
            // A moving average (1/8 weight), so one odd read does not swing it.
            self.publish_bytes = ((self.publish_bytes * 7 + per) / 8).max(1);
        }
        // A read ends any wait; a new one may start below.
        self.until = None;
        self.armed = false;
        self.answered_since_read = 0;
        let probe = self.fast && self.since_probe >= PROBE_EVERY;
        if read < crate::connection::MAX_CHUNK
            && undecided > 0
            && (self.busy || undecided >= COALESCE_FROM || probe)
        {
            self.since_probe = 0;
            self.start();
        } else {
            self.stop();
        }
    }

    /// True if the socket may be read now: reads are not put off, or the kernel's low-water
    /// mark decides (`answered`).
    pub fn reads_allowed(&self) -> bool {
        self.until.is_none() || self.armed
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
            self.peak = self.window_peak.max(self.peak - self.peak / 8);
            self.window_peak = 0;
        }
        self.undecided_seen = waiting;
        self.answered_since_read = self.answered_since_read.saturating_add(answered);
        // Publishes the client sent that are not read yet count as in flight too: while
        // reads are put off, that is where a streaming client's publishes are.
        let unread = self.unread_publishes();
        self.busy = self.answered_since_read + waiting + unread >= COALESCE_FROM;
        if self.fast && !self.busy {
            self.since_probe = self.since_probe.saturating_add(1);
        }
        // The period is kept only for a client that streams: busy, and more sent during the
        // fsync. One that sent nothing meanwhile waits for these confirms before it sends more
        // (a full window of unconfirmed publishes, `wait_for_confirms`): holding its reads to
        // the end of the period would only slow it down.
        if !(self.busy && unread > 0 && self.until.is_some()) {
            self.stop();
            return;
        }
        // A client held back by a window of unconfirmed publishes can have at most its
        // window in flight: once the socket holds all it can send (the peak in flight, less
        // what is read and waiting), the kernel wakes us and the batch is read, instead of
        // the client idling to the end of the period (a window of 50: 12.7k -> 8.6k msg/s
        // when it did). A streaming client, whose peak is what a whole period gathers,
        // reaches it about when the period ends.
        let Some(fd) = self.fd else {
            return;
        };
        let in_flight = self.answered_since_read + waiting + unread;
        self.window_peak = self.window_peak.max(in_flight);
        let can_send = self.peak.max(self.window_peak).saturating_sub(waiting);
        let refill = can_send.saturating_mul(self.publish_bytes) / 8 * 7;
        let mark = libc::c_int::try_from(refill).map_or(LOW_WATER, |m| m.clamp(1, LOW_WATER));
        match set_low_water(fd, mark) {
            Ok(()) => self.armed = true,
            Err(e) => {
                tracing::warn!(error = %e, "AMQP: cannot set SO_RCVLOWAT");
                self.stop();
            }
        }
    }

    /// About how many publishes wait unread in the socket (`FIONREAD` bytes over the average
    /// publish size); [`COALESCE_FROM`] when it cannot be asked, so the period is kept.
    fn unread_publishes(&self) -> usize {
        let Some(fd) = self.fd else {
            return COALESCE_FROM;
        };
        let mut bytes: libc::c_int = 0;
        // SAFETY: `fd` is the connection's open socket (see `set_low_water`); FIONREAD writes
        // one c_int through the pointer, which points at `bytes`.
        let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes as *mut libc::c_int) };
        match (rc, usize::try_from(bytes)) {
            (0, Ok(bytes)) => bytes.div_ceil(self.publish_bytes),
            _ => COALESCE_FROM,
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
        self.armed = false;
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
