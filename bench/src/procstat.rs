//! Broker resource usage from Linux `/proc`: CPU time (utime + stime of `/proc/PID/stat`) and
//! resident memory (`VmRSS` of `/proc/PID/status`). Works for any broker process, which is what
//! lets one run compare ferromq with Mosquitto and RabbitMQ. Owns parsing only; callers decide
//! when to sample.

use std::time::Duration;

use anyhow::{anyhow, Context};

/// One sample of a process's resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time consumed so far.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Reads CPU time and RSS of `pid` (all threads of the process).
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (is the broker pid right?)"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Ok(ProcSample {
        cpu: ticks_to_duration(ticks, clock_ticks_per_sec()),
        rss_bytes: parse_status_rss(&status)?,
    })
}

/// Sum of utime and stime (fields 14 and 15 of proc(5) `stat`), in clock ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    // The command name (field 2) is in parentheses and may itself contain spaces or ')', so
    // fields are counted from the last ')'.
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow!("malformed /proc stat: no ')'"))?;
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state), so field N is rest[N - 3].
    let field = |n: usize| -> anyhow::Result<u64> {
        rest.get(n - 3)
            .ok_or_else(|| anyhow!("malformed /proc stat: field {n} missing"))?
            .parse::<u64>()
            .with_context(|| format!("malformed /proc stat: field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

/// `VmRSS` of proc(5) `status`, in bytes.
pub fn parse_status_rss(status: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS line in /proc status"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts
        .next()
        .ok_or_else(|| anyhow!("empty VmRSS line"))?
        .parse()
        .context("VmRSS value")?;
    match parts.next() {
        Some("kB") | None => Ok(value * 1024),
        Some(unit) => Err(anyhow!("unexpected VmRSS unit {unit:?}")),
    }
}

/// Converts clock ticks to time without float rounding.
pub fn ticks_to_duration(ticks: u64, per_sec: u64) -> Duration {
    let per_sec = per_sec.max(1);
    Duration::from_secs(ticks / per_sec)
        + Duration::from_nanos((ticks % per_sec) * 1_000_000_000 / per_sec)
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Raises this process's open-file soft limit to its hard limit and returns the new soft limit;
/// idle-connection runs need one descriptor per connection.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a ')' must not shift the fields.
        let stat = "4242 (my (br)oker) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 \
                    9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat).unwrap(), 325);
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat_cpu_ticks("1 (x) S 1 2 3").is_err());
        assert!(parse_stat_cpu_ticks("garbage").is_err());
    }

    #[test]
    fn rss_is_read_in_bytes() {
        let status = "Name:\tmosquitto\nVmPeak:\t  9999 kB\nVmRSS:\t    6912 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss(status).unwrap(), 6912 * 1024);
        assert!(parse_status_rss("Name:\tx\n").is_err());
    }

    #[test]
    fn ticks_convert_exactly() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn own_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }
}
