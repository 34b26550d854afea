//! `compare`: runs one scenario against each target in turn, round after round (interleaved, so
//! drift of a shared machine hits every broker alike), then prints the median of each figure per
//! target as a Markdown table and the ratios of the first target (the reference) to the others.

use std::fmt::Write as _;

use anyhow::Result;

use crate::cli::{CompareArgs, Scenario, Target};
use crate::stats::{median, Report};

/// Median figures of one target over all rounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Deliveries (or connections) per second.
    pub rate: Option<f64>,
    /// Broker CPU µs per delivery (or connection).
    pub cpu_us: Option<f64>,
    /// Latency percentiles in µs.
    pub p50_us: Option<f64>,
    /// p99 in µs.
    pub p99_us: Option<f64>,
    /// p99.9 in µs.
    pub p999_us: Option<f64>,
    /// Broker RSS in MiB at the end of a run.
    pub rss_mib: Option<f64>,
    /// Broker RSS growth per idle connection in KiB.
    pub kib_per_conn: Option<f64>,
}

/// Runs the comparison and prints the tables.
pub async fn run(args: &CompareArgs) -> Result<()> {
    let mut results: Vec<Vec<Report>> = vec![Vec::new(); args.targets.len()];
    for round in 1..=args.rounds {
        for (i, t) in args.targets.iter().enumerate() {
            let mut s = args.scenario.clone();
            let common = s.common_mut();
            common.addr = Some(t.addr.clone());
            common.pid = t.pid;
            match crate::run_scenario(&s).await {
                Ok(r) => {
                    println!("round {round} {}: {}", t.name, r.line());
                    results[i].push(r);
                }
                Err(e) => println!("round {round} {}: FAILED: {e:#}", t.name),
            }
            tokio::time::sleep(args.pause).await;
        }
    }
    let summaries: Vec<Summary> = results.iter().map(|r| summarise(r)).collect();
    let idle = matches!(args.scenario, Scenario::MqttIdle(_));
    println!();
    print!("{}", render(&args.targets, &summaries, idle));
    Ok(())
}

/// Medians of every figure over `reports`.
pub fn summarise(reports: &[Report]) -> Summary {
    let med = |f: &dyn Fn(&Report) -> Option<f64>| {
        let mut v: Vec<f64> = reports.iter().filter_map(f).collect();
        median(&mut v)
    };
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    Summary {
        rate: med(&|r| Some(r.rate())),
        cpu_us: med(&|r| r.cpu_us_per_msg()),
        p50_us: med(&|r| Some(us(r.p50))),
        p99_us: med(&|r| Some(us(r.p99))),
        p999_us: med(&|r| Some(us(r.p999))),
        rss_mib: med(&|r| r.broker_rss.map(|b| b as f64 / 1048576.0)),
        kib_per_conn: med(&|r| r.rss_per_conn.map(|b| b / 1024.0)),
    }
}

/// The Markdown tables: medians per target, then the reference against each other target.
pub fn render(targets: &[Target], s: &[Summary], idle: bool) -> String {
    let (rate, cpu, lat) = if idle {
        ("conn/s", "CPU µs/conn", "connect")
    } else {
        ("msg/s", "CPU µs/msg", "latency")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| target | {rate} | broker {cpu} | {lat} p50 µs | p99 µs | p99.9 µs | broker RSS MiB{} |",
        if idle { " | KiB/conn" } else { "" }
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|{}",
        if idle { "---:|" } else { "" }
    );
    for (t, m) in targets.iter().zip(s) {
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            t.name,
            num(m.rate, 0),
            num(m.cpu_us, 2),
            num(m.p50_us, 0),
            num(m.p99_us, 0),
            num(m.p999_us, 0),
            num(m.rss_mib, 1),
        );
        if idle {
            let _ = write!(out, " {} |", num(m.kib_per_conn, 2));
        }
        out.push('\n');
    }
    let (Some(reference), Some(first)) = (s.first(), targets.first()) else {
        return out;
    };
    if targets.len() > 1 {
        let _ = writeln!(
            out,
            "\n| {0} vs | {rate} ratio ({0} / other) | CPU efficiency (other CPU / {0} CPU) | p99 ratio (other / {0}){1} |",
            first.name,
            if idle { " | RSS/conn ratio (other / ref)" } else { "" }
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|{}",
            if idle { "---:|" } else { "" }
        );
        for (t, m) in targets.iter().zip(s).skip(1) {
            let _ = write!(
                out,
                "| {} | {} | {} | {} |",
                t.name,
                ratio(reference.rate, m.rate),
                ratio(m.cpu_us, reference.cpu_us),
                ratio(m.p99_us, reference.p99_us),
            );
            if idle {
                let _ = write!(out, " {} |", ratio(m.kib_per_conn, reference.kib_per_conn));
            }
            out.push('\n');
        }
    }
    out
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::Latency;

    fn report(delivered: u64, cpu_ms: u64) -> Report {
        let mut r = Report::new(
            delivered,
            delivered,
            Duration::from_secs(1),
            &Latency::new(),
        );
        r.broker_cpu = Some(Duration::from_millis(cpu_ms));
        r
    }

    #[test]
    fn medians_and_ratios() {
        let a = summarise(&[
            report(100_000, 500),
            report(300_000, 900),
            report(200_000, 800),
        ]);
        assert_eq!(a.rate, Some(200_000.0));
        // CPU µs/msg per round: 5, 3, 4 -> median 4.
        assert!((a.cpu_us.unwrap() - 4.0).abs() < 1e-9);
        let b = summarise(&[report(100_000, 1000)]);
        let targets = vec![
            Target {
                name: "ferromq".into(),
                addr: "a:1".into(),
                pid: None,
            },
            Target {
                name: "mosquitto".into(),
                addr: "b:1".into(),
                pid: None,
            },
        ];
        let table = render(&targets, &[a, b], false);
        assert!(table.contains("| ferromq | 200000 | 4.00 |"), "{table}");
        // 200k / 100k msg/s, and 10 µs / 4 µs of CPU.
        assert!(table.contains("| mosquitto | 2.00x | 2.50x |"), "{table}");
    }

    #[test]
    fn missing_figures_render_as_dashes() {
        let s = summarise(&[]);
        assert_eq!(s, Summary::default());
        assert_eq!(num(None, 1), "-");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "-");
    }
}
