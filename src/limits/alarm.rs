//! Resource alarms (RabbitMQ's memory and disk alarms): a monitor task measures the
//! broker's resident set size and the free space of the data directory's file system every
//! `alarm_check_interval_ms`, and publishes the alarm state on a watch channel. Connections
//! that publish stop reading their sockets while an alarm is on (TCP backpressure), AMQP
//! clients with the `connection.blocked` capability are told; consumers keep being served so
//! memory can drain. Knows no protocol.
//!
//! Why RSS and not a count of queued bytes: RSS is what the OOM killer looks at, and it
//! includes everything — read buffers, per-connection state, allocator overhead, the
//! store's caches — that a count of message bytes would miss. Reading `/proc/self/statm` is
//! one small read every 100 ms.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::settings::{LimitsConfig, Watermark};

/// Which alarms are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmState {
    /// RSS at or above the memory high watermark.
    pub memory: bool,
    /// Free disk below `disk_free_limit`.
    pub disk: bool,
}

impl AlarmState {
    /// Whether publishers must be blocked.
    pub fn blocking(self) -> bool {
        self.memory || self.disk
    }

    /// The reason RabbitMQ gives in connection.blocked.
    pub fn reason(self) -> &'static str {
        match (self.memory, self.disk) {
            (true, _) => "low on memory",
            (false, true) => "low on disk",
            (false, false) => "",
        }
    }
}

/// The alarm thresholds and their current state.
#[derive(Debug)]
pub struct Alarms {
    memory_limit: AtomicU64,
    disk_limit: AtomicU64,
    state: watch::Sender<AlarmState>,
    /// None when nothing is written to disk (`[store] in_memory`): no disk alarm then.
    data_dir: Option<PathBuf>,
    interval: Duration,
}

impl Alarms {
    /// Alarms for `config`, watching the file system of `data_dir` (none: no disk alarm).
    pub fn new(config: &LimitsConfig, data_dir: Option<&Path>) -> Arc<Alarms> {
        let alarms = Alarms {
            memory_limit: AtomicU64::new(u64::MAX),
            disk_limit: AtomicU64::new(0),
            state: watch::channel(AlarmState::default()).0,
            data_dir: data_dir.map(Path::to_path_buf),
            interval: Duration::from_millis(config.alarm_check_interval_ms.max(10)),
        };
        alarms.set_thresholds(config.memory_high_watermark, config.disk_free_limit.0);
        Arc::new(alarms)
    }

    /// Sets the memory watermark and the disk free limit (start, SIGHUP, tests); the next
    /// check applies them.
    pub fn set_thresholds(&self, memory: Watermark, disk_free: u64) {
        let total = total_memory();
        let limit = memory.resolve(total.unwrap_or(u64::MAX));
        if total.is_none() {
            if let Watermark::Fraction(_) = memory {
                tracing::warn!("total memory unknown on this platform: memory alarm disabled");
            }
        }
        self.memory_limit.store(limit, Ordering::Relaxed);
        self.disk_limit.store(disk_free, Ordering::Relaxed);
        tracing::info!(
            memory_limit_bytes = limit,
            disk_free_limit_bytes = disk_free,
            "memory high watermark {} MiB, disk free limit {} MB",
            limit >> 20,
            disk_free / 1_000_000
        );
    }

    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Ordering::Relaxed)
    }

    /// The current state.
    pub fn state(&self) -> AlarmState {
        *self.state.borrow()
    }

    /// A receiver that sees every change (each connection holds one).
    pub fn subscribe(&self) -> watch::Receiver<AlarmState> {
        self.state.subscribe()
    }

    /// Measures once and updates the state, logging each alarm as it sets and clears.
    /// Returns the resident set size measured (0 when unknown).
    pub fn check(&self) -> u64 {
        let mut next = self.state();
        let mut measured = resident_bytes();
        if measured.is_some_and(|rss| rss >= self.memory_limit()) && release_free_memory() {
            measured = resident_bytes();
        }
        if let Some(rss) = measured {
            let limit = self.memory_limit();
            next.memory = rss >= limit;
            if next.memory != self.state().memory {
                if next.memory {
                    tracing::warn!(rss_bytes = rss, limit_bytes = limit,
                        "memory resource limit alarm set: RSS {} MiB >= {} MiB; blocking publishers", rss >> 20, limit >> 20);
                } else {
                    tracing::info!(rss_bytes = rss, limit_bytes = limit,
                        "memory resource limit alarm cleared: RSS {} MiB < {} MiB; unblocking publishers", rss >> 20, limit >> 20);
                }
            }
        }
        let dir = self.data_dir.as_deref();
        if let Some((dir, free)) = dir.and_then(|d| Some((d, disk_free(d)?))) {
            let limit = self.disk_limit.load(Ordering::Relaxed);
            next.disk = free < limit;
            if next.disk != self.state().disk {
                if next.disk {
                    tracing::warn!(free_bytes = free, limit_bytes = limit, dir = %dir.display(),
                        "disk resource limit alarm set: free disk space {} MB < {} MB; blocking publishers", free / 1_000_000, limit / 1_000_000);
                } else {
                    tracing::info!(free_bytes = free, limit_bytes = limit, dir = %dir.display(),
                        "disk resource limit alarm cleared: free disk space {} MB >= {} MB; unblocking publishers", free / 1_000_000, limit / 1_000_000);
                }
            }
        }
        self.state.send_if_modified(|s| {
            let changed = *s != next;
            *s = next;
            changed
        });
        measured.unwrap_or(0)
    }

    /// Checks every interval until shutdown; every `CLOSE_INTERVAL` once memory is past half
    /// the watermark, because a publish flood grows RSS by hundreds of MB per second and
    /// the overshoot past the watermark is growth rate x check interval (a flood test saw
    /// 56 MiB over a 200 MiB watermark with 100 ms checks).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut wait = self.interval;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {
                    let rss = self.check();
                    wait = if rss >= self.memory_limit() / 2 {
                        self.interval.min(CLOSE_INTERVAL)
                    } else {
                        self.interval
                    };
                }
            }
        }
    }
}

/// Check interval once memory is past half the watermark: reading `/proc/self/statm` costs a
/// few microseconds, so 200 reads a second are noise next to a flood.
const CLOSE_INTERVAL: Duration = Duration::from_millis(5);

/// Hands memory the allocator keeps after frees back to the system, so drained queues
/// lower RSS and a memory alarm can clear (allocators keep freed pages: after a flood was
/// purged RSS stayed above the watermark and the alarm never cleared). At most once a
/// second: a release walks the allocator's state. Returns whether it released.
fn release_free_memory() -> bool {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let Ok(mut last) = LAST.lock() else {
        return false;
    };
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
        return false;
    }
    *last = Some(Instant::now());
    crate::allocator::release_free_memory()
}

/// The process's resident set size, from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Memory the process may use: physical RAM, or the cgroup v2 `memory.max` when lower (in
/// a container the cgroup limit, not the host's RAM, is what the OOM killer enforces).
fn total_memory() -> Option<u64> {
    // SAFETY: sysconf reads a system constant; no pointers involved.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    let ram = u64::try_from(pages).ok().map(|p| p * page_size());
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (ram, cgroup) {
        (Some(r), Some(c)) => Some(r.min(c)),
        (r, c) => r.or(c),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf reads a system constant; no pointers involved.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Bytes available to unprivileged users on the file system holding `dir` (its nearest
/// existing ancestor, so a data dir not created yet is measured where it will be).
pub fn disk_free(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = dir.ancestors().find(|p| p.exists())?;
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    let path = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to writable memory
    // of the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so statvfs initialised it.
    let stat = unsafe { stat.assume_init() };
    // The field types differ by platform (u32 on some 32-bit targets), hence the conversions.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Some(free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::settings::ByteSize;

    #[test]
    fn measures_this_process_and_disk() {
        assert!(resident_bytes().unwrap() > 0);
        assert!(disk_free(Path::new("/tmp/ferromq-does-not-exist/x")).unwrap() > 0);
        assert!(total_memory().unwrap() > 0);
    }

    #[test]
    fn thresholds_set_and_clear_the_alarms() {
        let config = LimitsConfig {
            memory_high_watermark: Watermark::Bytes(1),
            disk_free_limit: ByteSize(u64::MAX),
            ..LimitsConfig::default()
        };
        let alarms = Alarms::new(&config, Some(Path::new(".")));
        let mut rx = alarms.subscribe();
        alarms.check();
        assert_eq!(
            alarms.state(),
            AlarmState {
                memory: true,
                disk: true
            }
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().reason(), "low on memory");
        alarms.set_thresholds(Watermark::Bytes(u64::MAX), 0);
        alarms.check();
        assert!(!alarms.state().blocking());
    }
}
