//! Durability: the broker binary as a child process, killed with SIGKILL at random points and
//! restarted on the same data directory, with lapin publishers and consumers. See
//! `conformance::process` for how the binary is found (build it first when running this file
//! alone: `cargo build --bin ferromq`).

#[path = "durable/durable_01_crash.rs"]
mod durable_01_crash;
#[path = "durable/durable_02_definitions.rs"]
mod durable_02_definitions;
#[path = "durable/durable_03_segments.rs"]
mod durable_03_segments;
#[path = "durable/durable_04_mqtt.rs"]
mod durable_04_mqtt;
#[path = "durable/durable_05_mqtt_session.rs"]
mod durable_05_mqtt_session;
#[path = "durable/durable_06_mqtt_qos2_out.rs"]
mod durable_06_mqtt_qos2_out;
#[path = "durable/durable_07_vhosts.rs"]
mod durable_07_vhosts;
#[path = "durable/durable_08_mqtt_shared.rs"]
mod durable_08_mqtt_shared;
#[path = "durable/durable_09_mqtt_expiry.rs"]
mod durable_09_mqtt_expiry;
#[path = "durable/durable_10_confirm_reads.rs"]
mod durable_10_confirm_reads;
#[path = "durable/support.rs"]
mod support;
