//! TLS and WebSocket conformance tests: rumqttc (rustls) on the MQTTS listener, lapin (rustls)
//! and hand-written AMQP over a tokio-rustls client on the AMQPS listener, certificate hot
//! reload, and MQTT over WebSocket. Each TLS test makes its own certificates with
//! `ferromq-certs` into a temporary directory.

#[path = "tls/tls_01_mqtts.rs"]
mod tls_01_mqtts;
#[path = "tls/tls_02_amqps.rs"]
mod tls_02_amqps;
#[path = "tls/tls_03_reload.rs"]
mod tls_03_reload;
#[path = "tls/tls_04_lapin.rs"]
mod tls_04_lapin;
#[path = "tls/ws_01_mqtt.rs"]
mod ws_01_mqtt;
