//! MQTT conformance tests with real clients (rumqttc v3.1.1 / v5 and raw sockets) against an
//! in-process broker on 127.0.0.1:0. One binary, modules numbered by spec area; each test's
//! spec statements are listed in conformance/SPEC-MAP.md.

#[path = "mqtt/malformed_01_raw.rs"]
mod malformed_01_raw;
#[path = "mqtt/mqtt311_01_connect.rs"]
mod mqtt311_01_connect;
#[path = "mqtt/mqtt311_02_publish.rs"]
mod mqtt311_02_publish;
#[path = "mqtt/mqtt311_03_retain.rs"]
mod mqtt311_03_retain;
#[path = "mqtt/mqtt311_04_will.rs"]
mod mqtt311_04_will;
#[path = "mqtt/mqtt311_05_session.rs"]
mod mqtt311_05_session;
#[path = "mqtt/mqtt5_01_connect.rs"]
mod mqtt5_01_connect;
#[path = "mqtt/mqtt5_02_publish.rs"]
mod mqtt5_02_publish;
#[path = "mqtt/mqtt5_03_subscribe.rs"]
mod mqtt5_03_subscribe;
#[path = "mqtt/mqtt5_04_shutdown.rs"]
mod mqtt5_04_shutdown;
