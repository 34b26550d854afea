//! ferromq-bench: a load generator that drives any MQTT 3.1.1 or AMQP 0-9-1 broker address, so
//! one run can compare ferromq with Mosquitto and RabbitMQ. `cli` parses the command line,
//! `mqtt/`, `amqp` (lapin) and `amqp_raw` (latency) run the scenarios, `flow` keeps publishers within a window of their
//! receivers, `stats` summarises latency and throughput, `procstat` reads a broker's CPU time
//! and RSS from /proc, and `compare` runs a scenario against several brokers in interleaved
//! rounds and prints medians and ratios.

pub mod amqp;
pub mod amqp_raw;
pub mod cli;
pub mod compare;
pub mod flow;
pub mod mqtt;
pub mod procstat;
pub mod stats;

use cli::Scenario;
use stats::Report;

/// Runs one scenario against the address and pid in its options.
pub async fn run_scenario(scenario: &Scenario) -> anyhow::Result<Report> {
    let mut s = scenario.clone();
    let addr = s.addr()?;
    let pid = s.common_mut().pid;
    match &s {
        Scenario::Mqtt(a) => mqtt::throughput::run(a, &addr, pid).await,
        Scenario::MqttIdle(a) => mqtt::idle::run(a, &addr, pid).await,
        Scenario::Amqp(a) if a.raw_client() => amqp_raw::run(a, &addr, pid).await,
        Scenario::Amqp(a) => amqp::run(a, &addr, pid).await,
    }
}
