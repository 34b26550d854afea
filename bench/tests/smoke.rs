//! Smoke test: every scenario runs briefly against an in-process ferromq on 127.0.0.1:0 and must
//! deliver what it published, so the bench tool cannot silently rot.

use std::time::Duration;

use clap::Parser;
use ferromq::config::Config;
use ferromq::RunningBroker;
use ferromq_bench::cli::{Cli, Command, Scenario};

async fn broker() -> RunningBroker {
    let mut config = Config::ephemeral();
    config.mqtt.sys_interval_secs = 0;
    RunningBroker::start(config).await.expect("broker starts")
}

fn scenario(args: &[&str]) -> Scenario {
    let mut argv = vec!["ferromq-bench"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv)
        .expect("valid command line")
        .command
    {
        Command::Scenario(s) => s,
        Command::Compare(_) => panic!("scenario expected"),
    }
}

async fn run(args: &[&str]) -> ferromq_bench::stats::Report {
    tokio::time::timeout(
        Duration::from_secs(60),
        ferromq_bench::run_scenario(&scenario(args)),
    )
    .await
    .expect("scenario finishes in time")
    .expect("scenario succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_scenarios_deliver_everything_they_publish() {
    let b = broker().await;
    let addr = b.mqtt_addr().expect("mqtt listener").to_string();
    let pid = std::process::id().to_string();
    for (qos, pubs, subs) in [("0", "1", "3"), ("1", "2", "1")] {
        let r = run(&[
            "mqtt",
            "--addr",
            &addr,
            "--pid",
            &pid,
            "--qos",
            qos,
            "--pubs",
            pubs,
            "--subs",
            subs,
            "--duration",
            "300ms",
            "--size",
            "100",
        ])
        .await;
        let subs: u64 = subs.parse().unwrap();
        assert!(r.published > 0, "qos {qos}: nothing published");
        assert_eq!(r.delivered, r.published * subs, "qos {qos}: {}", r.line());
        assert!(r.p50 > Duration::ZERO && r.p50 <= r.p99, "{}", r.line());
        assert!(r.cpu_us_per_msg().is_some() && r.broker_rss.is_some());
    }
    // Fixed rate: 200 msg/s for 0.5 s is about 100 messages, not a flood.
    let r = run(&[
        "mqtt",
        "--addr",
        &addr,
        "--rate",
        "200",
        "--duration",
        "500ms",
    ])
    .await;
    assert!((80..=120).contains(&r.published), "{}", r.line());
    assert_eq!(r.delivered, r.published);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_opened_and_counted() {
    let b = broker().await;
    let addr = b.mqtt_addr().expect("mqtt listener").to_string();
    let pid = std::process::id().to_string();
    let r = run(&[
        "mqtt-idle",
        "--addr",
        &addr,
        "--pid",
        &pid,
        "--conns",
        "50",
        "--duration",
        "0s",
    ])
    .await;
    assert_eq!(r.delivered, 50, "{}", r.line());
    assert!(r.rss_per_conn.is_some());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_scenarios_deliver_everything_they_publish() {
    let b = broker().await;
    let addr = b.amqp_addr().expect("amqp listener").to_string();
    for (mode, copies) in [("transient", 1), ("confirms", 1), ("fanout", 3)] {
        let r = run(&[
            "amqp",
            "--addr",
            &addr,
            "--mode",
            mode,
            "--queues",
            "3",
            "--duration",
            "300ms",
        ])
        .await;
        assert!(r.published > 0, "{mode}: nothing published");
        assert_eq!(r.delivered, r.published * copies, "{mode}: {}", r.line());
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_latency_at_a_fixed_rate_runs_on_both_clients() {
    let b = broker().await;
    let addr = b.amqp_addr().expect("amqp listener").to_string();
    for client in ["raw", "lapin"] {
        let r = run(&[
            "amqp",
            "--addr",
            &addr,
            "--rate",
            "200",
            "--client",
            client,
            "--duration",
            "300ms",
        ])
        .await;
        // 200 msg/s for 300 ms: about 60 messages, each delivered and timed once.
        assert!(r.published >= 30, "{client}: {}", r.line());
        assert_eq!(r.delivered, r.published, "{client}: {}", r.line());
        assert!(r.p50 > std::time::Duration::ZERO, "{client}: {}", r.line());
    }
    b.shutdown().await;
}
