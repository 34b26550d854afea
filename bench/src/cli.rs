//! Command line of `ferromq-bench`: one subcommand per scenario plus `compare`, which runs a
//! scenario against several brokers in interleaved rounds. Owns parsing and validation only.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for ferromq, Mosquitto and RabbitMQ (MQTT 3.1.1 and AMQP 0-9-1).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// The scenario, or `compare`.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A scenario against one broker.
    #[command(flatten)]
    Scenario(Scenario),
    /// Runs one scenario against each target in turn, in interleaved rounds, and prints medians
    /// and ratios (the first target is the reference).
    Compare(CompareArgs),
}

/// The scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// MQTT publishers -> one topic -> subscribers (1->1, fan-out, fan-in), QoS 0 or 1.
    Mqtt(MqttArgs),
    /// MQTT idle connections: connect rate and broker RSS per connection.
    MqttIdle(IdleArgs),
    /// AMQP publisher -> queue(s) -> consumer(s).
    Amqp(AmqpArgs),
}

/// Options every scenario has.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Broker address HOST:PORT (MQTT or AMQP listener); `compare` sets it per target.
    #[arg(long)]
    pub addr: Option<String>,
    /// Broker process id, to report its CPU time and RSS from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// How long to publish (idle: how long to hold the connections), e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// `mqtt` options.
#[derive(Debug, Clone, Args)]
pub struct MqttArgs {
    #[command(flatten)]
    pub common: Common,
    /// QoS of publishes and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    pub pubs: u32,
    /// Subscriber connections (each receives every message).
    #[arg(long, default_value_t = 1)]
    pub subs: u32,
    /// Payload size in bytes (at least 12: timestamp and publisher index).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Fixed total publish rate in msg/s (latency mode); unlimited if absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Messages a subscriber may be behind its publishers (shared evenly by the publishers).
    #[arg(long, default_value_t = 1000)]
    pub window: u64,
    /// QoS 1 publishes a publisher may have unacknowledged.
    #[arg(long, default_value_t = 256)]
    pub inflight: u64,
    /// Subscribe as shared-subscription group GROUP (`$share/GROUP/topic`), to measure what
    /// the group's queue costs; needs `--subs 1`, since the window counts every message at
    /// every subscriber.
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,
}

/// `mqtt-idle` options.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub conns: u32,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 128)]
    pub concurrency: u32,
    /// Keep alive sent in CONNECT (seconds).
    #[arg(long, default_value_t = 60)]
    pub keep_alive: u16,
    /// Loopback source addresses to spread over (127.0.0.1, .2, ...); default: one per 25 000
    /// connections, to stay inside the ephemeral port range.
    #[arg(long)]
    pub source_ips: Option<u8>,
}

/// What the `amqp` scenario exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AmqpMode {
    /// Transient messages to a non-durable queue, no confirms.
    Transient,
    /// Persistent messages to a durable queue with publisher confirms.
    Confirms,
    /// Transient messages through a fanout exchange to `--queues` queues.
    Fanout,
}

/// Which AMQP client drives the `amqp` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AmqpClient {
    /// `raw` for transient latency at a fixed `--rate`, `lapin` otherwise.
    Auto,
    /// lapin (its I/O loop runs on a thread of its own).
    Lapin,
    /// Hand-written frames on the bench's tokio runtime (transient, `--rate` only).
    Raw,
}

/// `amqp` options.
#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    #[command(flatten)]
    pub common: Common,
    /// transient | confirms | fanout.
    #[arg(long, value_enum, default_value = "transient")]
    pub mode: AmqpMode,
    /// Queues bound to the fanout exchange (fanout mode), one consumer each.
    #[arg(long, default_value_t = 10)]
    pub queues: u32,
    /// Payload size in bytes (at least 12).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Fixed publish rate in msg/s (latency mode); unlimited if absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// AMQP client: lapin adds a thread hop on each side, which at a fixed rate is most of
    /// the measured latency, so latency runs use the raw client.
    #[arg(long, value_enum, default_value = "auto")]
    pub client: AmqpClient,
    /// Consumer prefetch (basic.qos).
    #[arg(long, default_value_t = 1000)]
    pub prefetch: u16,
    /// Consumers ack with multiple=true every this many deliveries.
    #[arg(long, default_value_t = 100)]
    pub ack_every: u64,
    /// Messages the publisher may be ahead of its consumers.
    #[arg(long, default_value_t = 2000)]
    pub window: u64,
    /// Unconfirmed publishes allowed in confirms mode.
    #[arg(long, default_value_t = 1000)]
    pub inflight: u64,
    /// AMQP user and password.
    #[arg(long, default_value = "guest")]
    pub user: String,
    /// AMQP password.
    #[arg(long, default_value = "guest")]
    pub password: String,
}

impl AmqpArgs {
    /// True when the raw client runs this scenario (see `AmqpClient`).
    pub fn raw_client(&self) -> bool {
        match self.client {
            AmqpClient::Raw => true,
            AmqpClient::Lapin => false,
            AmqpClient::Auto => self.mode == AmqpMode::Transient && self.rate.is_some(),
        }
    }
}

/// `compare` options.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// `name=HOST:PORT[,pid=PID]`; repeat per broker. The first is the reference.
    #[arg(long = "target", required = true, value_parser = parse_target)]
    pub targets: Vec<Target>,
    /// Rounds; each round runs every target once, in order.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Pause between runs so one broker's backlog does not bleed into the next run.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub pause: Duration,
    /// The scenario to run against every target (its --addr/--pid are ignored).
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// One broker under comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Label in the table.
    pub name: String,
    /// HOST:PORT.
    pub addr: String,
    /// Process id for CPU/RSS.
    pub pid: Option<u32>,
}

impl Scenario {
    /// The options every scenario has.
    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Scenario::Mqtt(a) => &mut a.common,
            Scenario::MqttIdle(a) => &mut a.common,
            Scenario::Amqp(a) => &mut a.common,
        }
    }

    /// The address, which a scenario run cannot do without.
    pub fn addr(&mut self) -> anyhow::Result<String> {
        self.common_mut()
            .addr
            .clone()
            .ok_or_else(|| anyhow!("--addr HOST:PORT is required"))
    }
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid duration {s:?} (use e.g. 10s, 500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 {
        bail!("invalid duration {s:?}");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// Parses `name=HOST:PORT[,pid=PID]`.
pub fn parse_target(s: &str) -> anyhow::Result<Target> {
    let mut parts = s.split(',');
    let head = parts.next().unwrap_or_default();
    let (name, addr) = head
        .split_once('=')
        .ok_or_else(|| anyhow!("target {s:?}: expected name=HOST:PORT[,pid=PID]"))?;
    if name.is_empty() || addr.is_empty() {
        bail!("target {s:?}: empty name or address");
    }
    let mut pid = None;
    for extra in parts {
        match extra.split_once('=') {
            Some(("pid", v)) => {
                pid = Some(
                    v.parse()
                        .with_context(|| format!("target {s:?}: bad pid {v:?}"))?,
                )
            }
            _ => bail!("target {s:?}: unknown option {extra:?}"),
        }
    }
    Ok(Target {
        name: name.to_string(),
        addr: addr.to_string(),
        pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("mosquitto=127.0.0.1:1883,pid=42").unwrap(),
            Target {
                name: "mosquitto".into(),
                addr: "127.0.0.1:1883".into(),
                pid: Some(42)
            }
        );
        assert_eq!(parse_target("f=h:1").unwrap().pid, None);
        assert!(parse_target("127.0.0.1:1883").is_err());
        assert!(parse_target("a=h:1,pid=x").is_err());
        assert!(parse_target("a=h:1,port=2").is_err());
    }

    #[test]
    fn scenario_and_compare_command_lines() {
        let cli = Cli::try_parse_from([
            "ferromq-bench",
            "mqtt",
            "--qos",
            "1",
            "--subs",
            "100",
            "--addr",
            "127.0.0.1:1883",
            "--duration",
            "5s",
        ])
        .unwrap();
        let Command::Scenario(Scenario::Mqtt(a)) = cli.command else {
            panic!("mqtt expected");
        };
        assert_eq!((a.qos, a.pubs, a.subs, a.size), (1, 1, 100, 64));
        assert_eq!(a.common.duration, Duration::from_secs(5));

        let cli = Cli::try_parse_from([
            "ferromq-bench",
            "compare",
            "--target",
            "ferromq=127.0.0.1:2883",
            "--target",
            "mosquitto=127.0.0.1:1883,pid=7",
            "--rounds",
            "5",
            "amqp",
            "--mode",
            "confirms",
        ])
        .unwrap();
        let Command::Compare(c) = cli.command else {
            panic!("compare expected");
        };
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.rounds, 5);
        assert!(matches!(c.scenario, Scenario::Amqp(ref a) if a.mode == AmqpMode::Confirms));

        assert!(Cli::try_parse_from(["ferromq-bench", "mqtt", "--qos", "2"]).is_err());
        assert!(Cli::try_parse_from(["ferromq-bench", "compare", "mqtt"]).is_err());
    }
}
