//! What a run measures and how it is summarised: the send timestamp carried in each payload,
//! the end-to-end latency histogram (HdrHistogram, nanoseconds), and the `Report` printed per
//! run (throughput, percentiles, broker CPU per message, broker RSS). Owns no I/O.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::procstat::ProcSample;

/// Bytes at the start of every payload: send time (u64 LE, ns since the process clock origin)
/// and the publisher index (u32 LE), so the receiver can credit the right publisher's window.
pub const HEADER_LEN: usize = 12;

/// Highest latency the histogram tracks; larger values are clamped (and show as 60 s).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Nanoseconds since the first call in this process (publishers and subscribers of a run live
/// in one process, so they share the origin and the monotonic clock).
pub fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Writes the payload header into `payload` (which must be at least `HEADER_LEN` long).
pub fn stamp(payload: &mut [u8], sent_ns: u64, publisher: u32) {
    payload[..8].copy_from_slice(&sent_ns.to_le_bytes());
    payload[8..12].copy_from_slice(&publisher.to_le_bytes());
}

/// Reads the payload header; `None` if the payload is too short to be one of ours.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u32)> {
    let ts = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let publisher = u32::from_le_bytes(payload.get(8..12)?.try_into().ok()?);
    Some((ts, publisher))
}

/// A latency histogram in nanoseconds, 3 significant digits.
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram covering 1 ns .. 60 s.
    pub fn new() -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    /// Records one latency (clamped into the tracked range).
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Records the latency of a message stamped at `sent_ns` and received now.
    pub fn record_since(&mut self, sent_ns: u64) {
        self.record(now_ns().saturating_sub(sent_ns));
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0..=1), or zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.hist.value_at_quantile(q))
    }
}

/// The outcome of one scenario run against one broker.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Messages delivered to subscribers/consumers (a fan-out counts each copy).
    pub delivered: u64,
    /// Messages published.
    pub published: u64,
    /// Wall time of the measured window (publishing plus drain).
    pub elapsed: Duration,
    /// p50 / p99 / p99.9 end-to-end latency.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Broker CPU time consumed during the window, if a pid was given.
    pub broker_cpu: Option<Duration>,
    /// Broker RSS at the end of the window, if a pid was given.
    pub broker_rss: Option<u64>,
    /// Extra figure of a scenario (idle connections: RSS bytes per connection).
    pub rss_per_conn: Option<f64>,
}

impl Report {
    /// Fills throughput and latency fields.
    pub fn new(published: u64, delivered: u64, elapsed: Duration, lat: &Latency) -> Report {
        Report {
            delivered,
            published,
            elapsed,
            p50: lat.quantile(0.5),
            p99: lat.quantile(0.99),
            p999: lat.quantile(0.999),
            ..Report::default()
        }
    }

    /// Adds the broker's CPU delta and final RSS between two samples.
    pub fn with_broker(mut self, before: Option<ProcSample>, after: Option<ProcSample>) -> Report {
        if let (Some(b), Some(a)) = (before, after) {
            self.broker_cpu = Some(a.cpu.saturating_sub(b.cpu));
            self.broker_rss = Some(a.rss_bytes);
        }
        self
    }

    /// Deliveries per second over the window.
    pub fn rate(&self) -> f64 {
        per_second(self.delivered, self.elapsed)
    }

    /// Broker CPU microseconds per delivered message.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        let cpu = self.broker_cpu?;
        (self.delivered > 0).then(|| cpu.as_secs_f64() * 1e6 / self.delivered as f64)
    }

    /// One human-readable line.
    pub fn line(&self) -> String {
        // Idle-connection runs count connections and time the connect handshake.
        let (unit, what) = match self.rss_per_conn {
            Some(_) => ("conn", "connect"),
            None => ("msg", "latency"),
        };
        let mut s = format!(
            "published {} delivered {} in {:.2}s: {:.0} {unit}/s, {what} p50 {} p99 {} p99.9 {}",
            self.published,
            self.delivered,
            self.elapsed.as_secs_f64(),
            self.rate(),
            fmt_us(self.p50),
            fmt_us(self.p99),
            fmt_us(self.p999),
        );
        if let Some(cpu) = self.cpu_us_per_msg() {
            s += &format!(", broker CPU {cpu:.2} µs/{unit}");
        }
        if let Some(rss) = self.broker_rss {
            s += &format!(", broker RSS {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
        }
        if let Some(per) = self.rss_per_conn {
            s += &format!(", {:.2} KiB/conn", per / 1024.0);
        }
        s
    }
}

/// `count / elapsed` in events per second (zero for an empty window).
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

/// A duration as whole microseconds, e.g. `83µs`.
pub fn fmt_us(d: Duration) -> String {
    format!("{}µs", d.as_micros())
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut lat = Latency::new();
        // 1..=1000 µs, one each: p50 = 500 µs, p99 = 990 µs, p99.9 = 999 µs (3 significant
        // digits, so within 0.1 %).
        for us in 1..=1000u64 {
            lat.record(us * 1000);
        }
        let close = |d: Duration, us: u64| {
            let got = d.as_nanos() as f64;
            let want = (us * 1000) as f64;
            assert!((got - want).abs() / want < 0.002, "{got} vs {want}");
        };
        close(lat.quantile(0.5), 500);
        close(lat.quantile(0.99), 990);
        close(lat.quantile(0.999), 999);
        assert_eq!(lat.count(), 1000);
    }

    #[test]
    fn merge_adds_counts_and_empty_is_zero() {
        let mut a = Latency::new();
        assert_eq!(a.quantile(0.99), Duration::ZERO);
        let mut b = Latency::new();
        b.record(5_000);
        b.record(0); // clamped, not rejected
        b.record(u64::MAX); // clamped to 60 s
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.quantile(1.0) >= Duration::from_secs(59));
    }

    #[test]
    fn stamp_round_trips_and_short_payloads_are_refused() {
        let mut p = vec![0u8; 64];
        stamp(&mut p, 123_456_789, 42);
        assert_eq!(read_stamp(&p), Some((123_456_789, 42)));
        assert_eq!(read_stamp(&p[..11]), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn cpu_per_message_and_rate() {
        let mut r = Report::new(1000, 2000, Duration::from_secs(2), &Latency::new());
        assert_eq!(r.rate(), 1000.0);
        assert_eq!(r.cpu_us_per_msg(), None);
        let b = ProcSample {
            cpu: Duration::from_millis(100),
            rss_bytes: 1,
        };
        let a = ProcSample {
            cpu: Duration::from_millis(110),
            rss_bytes: 2048,
        };
        r = r.with_broker(Some(b), Some(a));
        // 10 ms over 2000 deliveries = 5 µs each.
        assert!((r.cpu_us_per_msg().unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(r.broker_rss, Some(2048));
    }
}
