//! Listeners, the accept loop and graceful shutdown. Owns sockets until it hands each one to a
//! protocol adapter; knows nothing of packets.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::Core;
use crate::config::{Config, Listen};

/// Errors that stop the broker.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not bind.
    #[error("cannot bind {protocol} listener on {addr}: {source}")]
    Bind {
        /// "MQTT" or "AMQP".
        protocol: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for a shutdown signal failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}

/// A broker running inside this process (the binary, or a test).
pub struct RunningBroker {
    mqtt_addr: Option<SocketAddr>,
    amqp_addr: Option<SocketAddr>,
    core: Arc<Core>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningBroker {
    /// Binds the configured listeners and starts serving. Logs one line per listener with the
    /// address actually bound (so port 0 reports the real port).
    pub async fn start(config: Config) -> Result<RunningBroker, ServerError> {
        let core = Core::new(&config);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut mqtt_addr = None;
        let mqtt = crate::mqtt::Mqtt::new(Arc::clone(&core));
        if let Listen::Addr(addr) = config.mqtt_listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    protocol: "MQTT",
                    addr,
                    source,
                })?;
            let bound = listener.local_addr().map_err(|source| ServerError::Bind {
                protocol: "MQTT",
                addr,
                source,
            })?;
            tracing::info!(protocol = "mqtt", address = %bound, "listening for MQTT on {bound}");
            mqtt_addr = Some(bound);
            let serve: Serve = {
                let mqtt = Arc::clone(&mqtt);
                Arc::new(move |stream, peer, shutdown| {
                    Box::pin(crate::mqtt::serve(
                        stream,
                        peer,
                        Arc::clone(&mqtt),
                        shutdown,
                    ))
                })
            };
            tasks.spawn(accept_loop(listener, shutdown_rx.clone(), serve));
        }
        let mut amqp_addr = None;
        if let Listen::Addr(addr) = config.amqp_listen {
            let listener = bind("AMQP", addr).await?;
            let bound = listener.local_addr().map_err(|source| ServerError::Bind {
                protocol: "AMQP",
                addr,
                source,
            })?;
            tracing::info!(protocol = "amqp", address = %bound, "listening for AMQP on {bound}");
            amqp_addr = Some(bound);
            let serve: Serve = {
                let amqp = crate::amqp::Amqp::new(Arc::clone(&core));
                Arc::new(move |stream, peer, shutdown| {
                    Box::pin(crate::amqp::serve(
                        stream,
                        peer,
                        Arc::clone(&amqp),
                        shutdown,
                    ))
                })
            };
            tasks.spawn(accept_loop(listener, shutdown_rx.clone(), serve));
        }
        tasks.spawn(crate::mqtt::sys::run(mqtt, shutdown_rx.clone()));
        Ok(RunningBroker {
            mqtt_addr,
            amqp_addr,
            core,
            shutdown,
            tasks,
        })
    }

    /// The bound MQTT address, if the MQTT listener is on.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The bound AMQP address, if the AMQP listener is on.
    pub fn amqp_addr(&self) -> Option<SocketAddr> {
        self.amqp_addr
    }

    /// The routing core (for tests and embedding).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Stops accepting, asks every connection to close, and waits for the listeners to stop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(protocol: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            protocol,
            addr,
            source,
        })
}

/// Runs the broker until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), ServerError> {
    // Handlers first: a signal that arrives right after the "listening" line must already
    // mean "shut down gracefully", not the default "die".
    let signals = Signals::install()?;
    let hangup = hangup_stream()?;
    let broker = RunningBroker::start(config).await?;
    reload_on_hangup(hangup, Arc::clone(broker.core()));
    signals.wait().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP, installed with the other handlers so an early one does not kill the broker.
#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

fn hangup_stream() -> Result<Hangup, ServerError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::hangup()).map_err(ServerError::Signal)
    }
    #[cfg(not(unix))]
    Ok(())
}

/// Each SIGHUP re-reads the access file and the MQTT ACL file (Mosquitto reloads its files
/// on SIGHUP too); the access file is also re-read at a login after it changed.
#[cfg_attr(not(unix), allow(unused_variables))]
fn reload_on_hangup(hangup: Hangup, core: Arc<Core>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let mut hangup = hangup;
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading users, permissions and ACLs");
            core.auth.reload();
        }
    });
}

/// SIGINT and SIGTERM, installed before the listeners start.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServerError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).map_err(ServerError::Signal)?,
                int: signal(SignalKind::interrupt()).map_err(ServerError::Signal)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Starts serving one accepted socket on its own task.
type Serve =
    Arc<dyn Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> ConnectionFuture + Send + Sync>;

/// One connection's whole life, run as one task.
type ConnectionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn accept_loop(listener: TcpListener, mut shutdown: watch::Receiver<bool>, serve: Serve) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small packets (PUBACK, PINGRESP) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, peer, shutdown.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Connections see the same shutdown signal and close themselves; wait a bounded time.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
