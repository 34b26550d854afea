//! Listeners (MQTT, AMQP, their TLS variants, MQTT over WebSocket), the accept loop, graceful
//! shutdown and SIGHUP. Owns sockets until it hands each one, after any TLS or WebSocket
//! handshake on the connection's own task, to a protocol adapter; knows nothing of packets.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::Authenticator;
use crate::broker::Core;
use crate::config::{Config, Listen};
use crate::transport::tls::{TlsAcceptor, TlsError};

/// Errors that stop the broker.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not bind.
    #[error("cannot bind {protocol} listener on {addr}: {source}")]
    Bind {
        /// "MQTT", "AMQP", "MQTTS", "AMQPS", "MQTT-WS" or "MQTT-WSS".
        protocol: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be opened or recovered.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The TLS certificate, key, CA or CRL could not be loaded.
    #[error("{0}")]
    Tls(TlsError),
    /// Waiting for a shutdown signal failed.
    #[error("cannot install signal handlers: {0}")]
    Signal(std::io::Error),
}

/// A broker running inside this process (the binary, or a test).
pub struct RunningBroker {
    mqtt_addr: Option<SocketAddr>,
    amqp_addr: Option<SocketAddr>,
    mqtts_addr: Option<SocketAddr>,
    amqps_addr: Option<SocketAddr>,
    mqtt_ws_addr: Option<SocketAddr>,
    mqtt_wss_addr: Option<SocketAddr>,
    tls: Option<Arc<TlsAcceptor>>,
    core: Arc<Core>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningBroker {
    /// Binds the configured listeners and starts serving. Logs one line per listener with the
    /// address actually bound (so port 0 reports the real port).
    pub async fn start(config: Config) -> Result<RunningBroker, ServerError> {
        let core = Core::new(&config)?;
        Self::serve(config, core).await
    }

    /// `start` with another login policy than the configured users (permissions and ACLs
    /// still apply); see `AccessControl::with_login`.
    pub async fn start_with_auth(
        config: Config,
        login: Arc<dyn Authenticator>,
    ) -> Result<RunningBroker, ServerError> {
        let core = Core::with_auth(&config, login)?;
        Self::serve(config, core).await
    }

    async fn serve(config: Config, core: Arc<Core>) -> Result<RunningBroker, ServerError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mqtt = crate::mqtt::Mqtt::new(Arc::clone(&core));
        let amqp = crate::amqp::Amqp::new(Arc::clone(&core));
        let wants_tls = [
            config.mqtts_listen,
            config.amqps_listen,
            config.mqtt_wss_listen,
        ]
        .iter()
        .any(|l| *l != Listen::Off);
        // Loaded once before any listener binds, so a bad certificate stops start-up.
        let tls = if wants_tls {
            Some(TlsAcceptor::load(&config.tls).map_err(ServerError::Tls)?)
        } else {
            None
        };
        let ws = |tls: Option<Arc<TlsAcceptor>>| mqtt_ws_serve(&mqtt, tls, &config);
        // AMQP listeners also get a way to refuse a socket over `max_connections` politely
        // (see `accept_loop`); MQTT has none, as Mosquitto (the spec lets a server close
        // before CONNACK).
        let amqp_pair = |tls: Option<Arc<TlsAcceptor>>| {
            (
                amqp_serve(&amqp, tls.clone(), false),
                Some(amqp_serve(&amqp, tls, true)),
            )
        };
        let plans: [(&'static str, Listen, Serves); 6] = [
            ("MQTT", config.mqtt_listen, (mqtt_serve(&mqtt, None), None)),
            ("AMQP", config.amqp_listen, amqp_pair(None)),
            (
                "MQTTS",
                config.mqtts_listen,
                (mqtt_serve(&mqtt, tls.clone()), None),
            ),
            ("AMQPS", config.amqps_listen, amqp_pair(tls.clone())),
            ("MQTT-WS", config.mqtt_ws_listen, (ws(None), None)),
            ("MQTT-WSS", config.mqtt_wss_listen, (ws(tls.clone()), None)),
        ];
        let mut bound_addrs = [None; 6];
        for (slot, (protocol, at, (serve, refuse))) in bound_addrs.iter_mut().zip(plans) {
            let Listen::Addr(addr) = at else {
                continue;
            };
            let listener = bind(protocol, addr).await?;
            let bound = listener.local_addr().map_err(|source| ServerError::Bind {
                protocol,
                addr,
                source,
            })?;
            tracing::info!(protocol, address = %bound, "listening for {protocol} on {bound}");
            *slot = Some(bound);
            let slots = Arc::clone(&core.limits.connections);
            tasks.spawn(accept_loop(
                listener,
                shutdown_rx.clone(),
                serve,
                refuse,
                slots,
            ));
        }
        if let Some(tls) = &tls {
            let every = config.tls.watch_interval_secs;
            if every > 0 {
                tasks.spawn(crate::transport::reload::watch_files(
                    Arc::clone(tls),
                    std::time::Duration::from_secs(every),
                    shutdown_rx.clone(),
                ));
            }
        }
        tasks.spawn(Arc::clone(&mqtt).kick_on_shutdown(shutdown_rx.clone()));
        tasks.spawn(crate::mqtt::sweep_keep_alive(
            Arc::clone(&mqtt),
            shutdown_rx.clone(),
        ));
        tasks.spawn(crate::mqtt::sys::run(mqtt, shutdown_rx.clone()));
        // The first check runs before any client can publish.
        core.limits.alarms.check();
        tasks.spawn(Arc::clone(&core.limits.alarms).run(shutdown_rx.clone()));
        let [mqtt_addr, amqp_addr, mqtts_addr, amqps_addr, mqtt_ws_addr, mqtt_wss_addr] =
            bound_addrs;
        Ok(RunningBroker {
            mqtt_addr,
            amqp_addr,
            mqtts_addr,
            amqps_addr,
            mqtt_ws_addr,
            mqtt_wss_addr,
            tls,
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

    /// The bound MQTT-over-TLS address, if that listener is on.
    pub fn mqtts_addr(&self) -> Option<SocketAddr> {
        self.mqtts_addr
    }

    /// The bound AMQP-over-TLS address, if that listener is on.
    pub fn amqps_addr(&self) -> Option<SocketAddr> {
        self.amqps_addr
    }

    /// The bound MQTT-over-WebSocket address, if that listener is on.
    pub fn mqtt_ws_addr(&self) -> Option<SocketAddr> {
        self.mqtt_ws_addr
    }

    /// The bound MQTT-over-secure-WebSocket address, if that listener is on.
    pub fn mqtt_wss_addr(&self) -> Option<SocketAddr> {
        self.mqtt_wss_addr
    }

    /// Re-reads the TLS certificate, key, CA and CRL files (what SIGHUP does): new connections
    /// get them, established ones stay up. A no-op without TLS listeners; on error the previous
    /// certificates stay in use and the error is returned.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// The routing core (for tests and embedding).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Stops accepting, asks every connection to close, waits for the listeners to stop, then
    /// lets the queues take in the last acks and writes out the store, so a clean stop loses
    /// no settlement (a restart does not redeliver what was acknowledged).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.core.close_store().await;
    }
}

/// Serves MQTT on accepted sockets, behind a TLS handshake when `tls` is set.
fn mqtt_serve(mqtt: &Arc<crate::mqtt::Mqtt>, tls: Option<Arc<TlsAcceptor>>) -> Serve {
    let mqtt = Arc::clone(mqtt);
    Arc::new(move |stream, peer, shutdown| -> ConnectionFuture {
        let mqtt = Arc::clone(&mqtt);
        // One box per variant, sized to it: a single async block holding both would make
        // every plain connection pay for the TLS stream's state (README, Benchmarks).
        match tls.clone() {
            None => Box::pin(crate::mqtt::serve(stream, peer, None, mqtt, shutdown)),
            Some(tls) => Box::pin(async move {
                if let Some((stream, info)) = tls.accept(stream, peer, "mqtt").await {
                    crate::mqtt::serve(stream, peer, Some(info), mqtt, shutdown).await;
                }
            }),
        }
    })
}

/// Serves MQTT over WebSocket on accepted sockets (over TLS when `tls` is set): TLS handshake,
/// then the WebSocket upgrade, both on the connection's task with timeouts.
fn mqtt_ws_serve(
    mqtt: &Arc<crate::mqtt::Mqtt>,
    tls: Option<Arc<TlsAcceptor>>,
    config: &Config,
) -> Serve {
    let mqtt = Arc::clone(mqtt);
    let path: Arc<str> = config.mqtt_ws_path.as_str().into();
    // Room for the largest accepted packet plus its fixed header.
    let max_message = config.mqtt.max_packet_size.saturating_add(8);
    let timeout = std::time::Duration::from_secs(config.mqtt.connect_timeout_secs);
    Arc::new(move |stream, peer, shutdown| {
        let mqtt = Arc::clone(&mqtt);
        let tls = tls.clone();
        let path = Arc::clone(&path);
        Box::pin(async move {
            use crate::transport::ws;
            match tls {
                None => {
                    if let Some(s) = ws::accept(stream, peer, &path, max_message, timeout).await {
                        crate::mqtt::serve(s, peer, None, mqtt, shutdown).await;
                    }
                }
                Some(tls) => {
                    let Some((stream, info)) = tls.accept(stream, peer, "mqtt-ws").await else {
                        return;
                    };
                    if let Some(s) = ws::accept(stream, peer, &path, max_message, timeout).await {
                        crate::mqtt::serve(s, peer, Some(info), mqtt, shutdown).await;
                    }
                }
            }
        })
    })
}

/// Serves AMQP on accepted sockets, behind a TLS handshake when `tls` is set. With
/// `over_limit`, the sockets were accepted above `max_connections` and are refused at
/// connection.open.
fn amqp_serve(
    amqp: &Arc<crate::amqp::Amqp>,
    tls: Option<Arc<TlsAcceptor>>,
    over_limit: bool,
) -> Serve {
    let amqp = Arc::clone(amqp);
    Arc::new(move |stream, peer, shutdown| -> ConnectionFuture {
        let amqp = Arc::clone(&amqp);
        let limit = over_limit.then(|| amqp.core.limits.connections.max());
        // One box per variant, sized to it (see `mqtt_serve`).
        match tls.clone() {
            None => Box::pin(crate::amqp::serve(
                stream, peer, None, amqp, shutdown, limit,
            )),
            Some(tls) => Box::pin(async move {
                if let Some((stream, info)) = tls.accept(stream, peer, "amqp").await {
                    crate::amqp::serve(stream, peer, Some(info), amqp, shutdown, limit).await;
                }
            }),
        }
    })
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
    let mut signals = Signals::install()?;
    let source = config.source.clone();
    let broker = RunningBroker::start(config).await?;
    while let Signal::Reload = signals.wait().await {
        // As Mosquitto, SIGHUP re-reads the access and ACL files (the access file is also
        // re-read at a login after it changed) and the TLS files.
        tracing::info!("SIGHUP: reloading users, permissions and ACLs");
        broker.core().auth.reload();
        tracing::info!("SIGHUP: users, permissions and ACLs reloaded");
        crate::limits::reload::from_file(source.as_deref(), &broker.core().limits);
        match &broker.tls {
            Some(tls) => crate::transport::reload::reload_now(tls, "SIGHUP"),
            None => tracing::info!("SIGHUP: no TLS listener, no certificates to reload"),
        }
    }
    tracing::info!("shutting down");
    broker.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM (stop) and SIGHUP (reload TLS certificates, users, permissions and
/// ACLs), installed before the listeners start.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

/// What a signal asks for.
enum Signal {
    Stop,
    Reload,
}

impl Signals {
    fn install() -> Result<Signals, ServerError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).map_err(ServerError::Signal)?,
                int: signal(SignalKind::interrupt()).map_err(ServerError::Signal)?,
                hup: signal(SignalKind::hangup()).map_err(ServerError::Signal)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn wait(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Signal::Stop,
                _ = self.int.recv() => Signal::Stop,
                _ = self.hup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}

/// Starts serving one accepted socket on its own task.
type Serve =
    Arc<dyn Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> ConnectionFuture + Send + Sync>;

/// A listener's way to serve a socket, and to refuse one above `max_connections` (if it has
/// one; see `accept_loop`).
type Serves = (Serve, Option<Serve>);

/// One connection's whole life, run as one task.
type ConnectionFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Accepts sockets and spawns `serve` for each one under `max_connections`. Above it a socket
/// is closed at once, unless the listener has a `refuse` path (AMQP) and few refusals are in
/// flight: then `refuse` tells the client why (see `Connections::try_refusal`).
async fn accept_loop(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    serve: Serve,
    refuse: Option<Serve>,
    slots: Arc<crate::limits::Connections>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // `max_connections`: refused before any handshake, so idle sockets cannot
                    // pile up past the limit (the refusal is logged once per episode).
                    let Some(slot) = slots.try_open() else {
                        tracing::debug!(%peer, "connection refused: max_connections reached");
                        if let (Some(refuse), Some(ticket)) = (&refuse, slots.try_refusal()) {
                            let _ = stream.set_nodelay(true);
                            let refusal = refuse(stream, peer, shutdown.clone());
                            connections.spawn(async move {
                                refusal.await;
                                drop(ticket);
                            });
                        }
                        continue;
                    };
                    // Small packets (PUBACK, PINGRESP) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let connection = serve(stream, peer, shutdown.clone());
                    connections.spawn(async move {
                        connection.await;
                        drop(slot);
                    });
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
