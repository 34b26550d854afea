//! MQTT idle-connection scenario: opens `--conns` connections (CONNECT with keep alive, wait for
//! CONNACK) with bounded concurrency, then holds them for `--duration`, answering keep alive with
//! PINGREQ, and reports the connect rate, connect latency, broker CPU per connection and the
//! broker's RSS growth per connection. Sockets are held as bare `TcpStream`s, not tasks, so the
//! bench itself stays small at 100k connections.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::cli::IdleArgs;
use crate::procstat;
use crate::stats::{Latency, Report};

/// Connections per loopback source address: below the default ephemeral range (32768-60999).
const CONNS_PER_SOURCE: u32 = 25_000;
/// How long RSS is left to settle after the last CONNACK.
const SETTLE: Duration = Duration::from_secs(2);

/// Runs the scenario against `addr` and reports (deliveries = connections opened).
pub async fn run(args: &IdleArgs, addr: &str, pid: Option<u32>) -> Result<Report> {
    let limit = procstat::raise_nofile_limit();
    if u64::from(args.conns) + 64 > limit {
        bail!(
            "--conns {} needs that many open files but this process may have {limit}; raise \
             `ulimit -n` (the broker needs the same)",
            args.conns
        );
    }
    let addr = super::resolve(addr).await?;
    let sources = args
        .source_ips
        .unwrap_or_else(|| args.conns.div_ceil(CONNS_PER_SOURCE) as u8)
        .max(1);
    let run_id = format!("{}-{}", std::process::id(), crate::stats::now_ns());
    let before = pid.map(procstat::sample).transpose()?;

    let gate = Arc::new(Semaphore::new(args.concurrency.max(1) as usize));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(args.conns as usize);
    for i in 0..args.conns {
        let permit = gate.clone().acquire_owned().await?;
        let source = (sources > 1 && addr.ip().is_loopback())
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % u32::from(sources)) as u8)));
        let id = format!("fmqb-i{i}-{run_id}");
        let keep_alive = args.keep_alive;
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let conn = super::open(addr, source, &id, keep_alive).await;
            drop(permit);
            conn.map(|c| (c.stream, t0.elapsed()))
        }));
    }
    let mut conns: Vec<TcpStream> = Vec::with_capacity(tasks.len());
    let mut lat = Latency::new();
    let mut first_error = None;
    for t in tasks {
        match t.await.context("connect task")? {
            Ok((stream, took)) => {
                lat.record(took.as_nanos() as u64);
                conns.push(stream);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let connect_time = start.elapsed();
    if let Some(e) = first_error {
        eprintln!(
            "{} of {} connections failed; first error: {e:#}",
            args.conns as usize - conns.len(),
            args.conns
        );
    }
    let after_connect = pid.map(procstat::sample).transpose()?;
    hold(&conns, SETTLE.max(args.common.duration), args.keep_alive).await;
    let after = pid.map(procstat::sample).transpose()?;

    let opened = conns.len() as u64;
    let mut report = Report::new(opened, opened, connect_time, &lat).with_broker(before, after);
    // CPU per connection is the connect phase's; RSS growth is measured after holding.
    if let (Some(b), Some(c), Some(a)) = (before, after_connect, after) {
        report.broker_cpu = Some(c.cpu.saturating_sub(b.cpu));
        if opened > 0 {
            report.rss_per_conn =
                Some(a.rss_bytes.saturating_sub(b.rss_bytes) as f64 / opened as f64);
        }
    }
    // Closing 100k sockets at once is part of the run, not of the next one.
    drop(conns);
    Ok(report)
}

/// Keeps the connections open for `hold`, sending PINGREQ every half keep alive and discarding
/// the PINGRESPs, without a task per connection.
async fn hold(conns: &[TcpStream], hold: Duration, keep_alive: u16) {
    let end = Instant::now() + hold;
    let ping_every = Duration::from_secs(u64::from(keep_alive.max(2)) / 2);
    let mut next_ping = Instant::now() + ping_every;
    let mut sink = [0u8; 64];
    while Instant::now() < end {
        tokio::time::sleep_until(next_ping.min(end).into()).await;
        if Instant::now() >= next_ping {
            for c in conns {
                // Best effort: a full send buffer or a closed socket just skips one ping.
                let _ = c.try_write(&super::wire::PINGREQ);
                while matches!(c.try_read(&mut sink), Ok(n) if n > 0) {}
            }
            next_ping += ping_every;
        }
    }
}
