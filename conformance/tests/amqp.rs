//! AMQP 0-9-1 conformance tests with lapin (and raw sockets for the handshake edges) against
//! an in-process broker on 127.0.0.1:0. Modules numbered by spec area; see SPEC-MAP.md.

#[path = "amqp/amqp091_01_connection.rs"]
mod amqp091_01_connection;
#[path = "amqp/amqp091_02_declare.rs"]
mod amqp091_02_declare;
#[path = "amqp/amqp091_03_routing.rs"]
mod amqp091_03_routing;
#[path = "amqp/amqp091_04_consume.rs"]
mod amqp091_04_consume;
#[path = "amqp/amqp091_05_confirm_get.rs"]
mod amqp091_05_confirm_get;
#[path = "amqp/amqp091_06_tx.rs"]
mod amqp091_06_tx;
#[path = "amqp/amqp091_07_queue_features.rs"]
mod amqp091_07_queue_features;
#[path = "amqp/amqp091_08_queue_lifecycle.rs"]
mod amqp091_08_queue_lifecycle;
#[path = "amqp/amqp091_09_rabbitmq_consumers.rs"]
mod amqp091_09_rabbitmq_consumers;
#[path = "amqp/amqp091_10_limits.rs"]
mod amqp091_10_limits;
#[path = "amqp/interop_01_mqtt_amqp.rs"]
mod interop_01_mqtt_amqp;
#[path = "amqp/interop_02_session_queues.rs"]
mod interop_02_session_queues;
