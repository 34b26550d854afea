//! ferromq: one routing core, two protocols.
//!
//! `server` accepts sockets and hands each to a protocol adapter (`mqtt/`, later `amqp/`), which
//! decodes frames with the codec crates in `protocols/` and translates them into calls on the
//! protocol-neutral core in `broker/` (vhosts, exchanges, the topic index, retained messages,
//! sessions). `connection` holds the framed I/O both adapters share; `auth` holds users,
//! permissions and ACLs, and `admin` the `user` / `vhost` / `permissions` subcommands;
//! `limits` the connection limits and the memory / disk alarms that block publishers;
//! `transport` the TLS and WebSocket layers under the adapters; `store` keeps durable
//! definitions and persistent messages (a segment log with a group-commit persister thread,
//! recovered at start). `Broker::start` embeds a whole broker, which is how the conformance
//! tests run one on `127.0.0.1:0`.

pub mod admin;
pub mod allocator;
pub mod amqp;
pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod limits;
pub mod metrics;
pub mod mqtt;
pub mod server;
pub mod store;
pub mod transport;

pub use server::{run, RunningBroker, ServerError};

/// Starts a broker; alias of [`RunningBroker::start`] for embedding.
pub type Broker = RunningBroker;
