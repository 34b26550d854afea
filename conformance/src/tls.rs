//! TLS helpers: fresh development certificates (made by `ferromq-certs` into a temporary
//! directory), a broker with MQTTS and AMQPS on `127.0.0.1:0`, rumqttc and lapin over TLS, a
//! raw TLS client built on tokio-rustls for hand-written AMQP, and an authenticator that
//! records every login it is asked about (then decides as the built-in policy does).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromq::auth::{AccessControl, Authenticator, Credentials, Decision};
use ferromq::config::{ClientCertMode, Config, Listen};
use ferromq::RunningBroker;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;

/// A fresh directory of development certificates (see certs/README.md for the files),
/// removed when dropped.
pub fn fresh_certs() -> CertDir {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferromq-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    ferromq_certs::generate(&dir).expect("certificates generated");
    CertDir(dir)
}

/// A temporary certificate directory; derefs to its path.
#[derive(Debug)]
pub struct CertDir(PathBuf);

impl std::ops::Deref for CertDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Config with MQTTS and AMQPS on 127.0.0.1:0 using the server certificate in `certs`, the
/// development CA for clients, its CRL, and the given client-certificate mode.
pub fn config(certs: &Path, mode: ClientCertMode) -> Config {
    let mut c = Config::ephemeral();
    c.mqtt.sys_interval_secs = 0;
    let local = Listen::Addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    c.mqtts_listen = local;
    c.amqps_listen = local;
    c.tls.cert = Some(certs.join("server.pem"));
    c.tls.key = Some(certs.join("server.key"));
    c.tls.ca = Some(certs.join("ca.pem"));
    c.tls.crl = Some(certs.join("crl.pem"));
    c.tls.client_cert = mode;
    c
}

/// Starts a broker from `config` with a recording authenticator.
pub async fn broker(config: Config) -> (RunningBroker, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::new(&config));
    let b = RunningBroker::start_with_auth(config, recorder.clone())
        .await
        .expect("TLS broker starts");
    (b, recorder)
}

/// One login as the authenticator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// "mqtt" or "amqp".
    pub protocol: String,
    /// The user name it was asked about.
    pub username: Option<String>,
    /// Whether a password came with it.
    pub has_password: bool,
    /// The verified certificate identity.
    pub tls_identity: Option<String>,
}

/// Records each login, then decides as the broker's own access control would.
#[derive(Debug)]
pub struct Recorder {
    /// Logins seen, in order.
    pub logins: Mutex<Vec<Login>>,
    decides: AccessControl,
}

impl Recorder {
    /// A recorder deciding as a broker with `config` would.
    pub fn new(config: &Config) -> Recorder {
        Recorder {
            logins: Mutex::new(Vec::new()),
            decides: AccessControl::new(config),
        }
    }

    /// The logins so far.
    pub fn seen(&self) -> Vec<Login> {
        self.logins.lock().expect("not poisoned").clone()
    }
}

impl Authenticator for Recorder {
    fn authenticate(&self, c: &Credentials<'_>) -> Decision {
        self.logins.lock().expect("not poisoned").push(Login {
            protocol: c.protocol.to_string(),
            username: c.username.map(str::to_owned),
            has_password: c.password.is_some(),
            tls_identity: c.tls_identity.map(str::to_owned),
        });
        self.decides.authenticate(c)
    }
}

/// A client identity: `(cert.pem, key)` file stems in the certificate directory, e.g. "client".
pub type ClientCert<'a> = Option<&'a str>;

/// rumqttc (MQTT 3.1.1) options for the broker's MQTTS listener, trusting `ca` (a file stem
/// such as "ca" or "wrong-ca") and presenting `cert` if given.
pub fn mqtt_options(
    b: &RunningBroker,
    certs: &Path,
    ca: &str,
    cert: ClientCert<'_>,
    id: &str,
) -> MqttOptions {
    let addr = b.mqtts_addr().expect("MQTTS listener is on");
    let mut o = MqttOptions::new(id, "localhost", addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    let read = |name: String| std::fs::read(certs.join(name)).expect("certificate file");
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: read(format!("{ca}.pem")),
        alpn: None,
        client_auth: cert.map(|c| (read(format!("{c}.pem")), read(format!("{c}.key")))),
    }));
    o
}

/// How an MQTT connection attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// CONNACK with this return code; for `Success` the client stays connected.
    ConnAck(ConnectReturnCode, Option<MqttClient>),
    /// The connection failed before any CONNACK (TLS refused, socket closed), with the error.
    Failed(String),
}

/// A connected rumqttc client over TLS whose incoming packets arrive on a channel.
#[derive(Debug)]
pub struct MqttClient {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// Incoming packets, or `None` once the connection failed.
    pub events: mpsc::UnboundedReceiver<Option<Packet>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects and reports the outcome (within `WAIT`).
pub async fn mqtt_connect(options: MqttOptions) -> Outcome {
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let (err_tx, mut err_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Some(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = err_tx.send(match e {
                        // rumqttc turns a refusing CONNACK into this error.
                        rumqttc::ConnectionError::ConnectionRefused(code) => Ok(code),
                        other => Err(other.to_string()),
                    });
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let mut c = MqttClient {
        client,
        events: rx,
        task,
    };
    loop {
        match super::recv(&mut c.events, "CONNACK or failure").await {
            Some(Packet::ConnAck(ack)) => {
                let accepted = ack.code == ConnectReturnCode::Success;
                return Outcome::ConnAck(ack.code, accepted.then_some(c));
            }
            Some(_) => continue,
            None => {
                return match err_rx.recv().await {
                    Some(Ok(code)) => Outcome::ConnAck(code, None),
                    Some(Err(e)) => Outcome::Failed(e),
                    None => Outcome::Failed("event loop ended".into()),
                }
            }
        }
    }
}

/// Connects and asserts CONNACK 0; the connected client.
pub async fn mqtt_connected(options: MqttOptions) -> MqttClient {
    match mqtt_connect(options).await {
        Outcome::ConnAck(ConnectReturnCode::Success, Some(c)) => c,
        other => panic!("expected an accepted MQTTS connection, got {other:?}"),
    }
}

/// Connects and asserts the TLS handshake (or the connection) fails before CONNACK.
pub async fn mqtt_refused(options: MqttOptions) -> String {
    match mqtt_connect(options).await {
        Outcome::Failed(e) => e,
        other => panic!("expected the TLS connection to fail, got {other:?}"),
    }
}

/// A rustls 0.23 client config trusting `certs/{ca}.pem`, presenting `certs/{cert}.pem`.
pub fn client_config(certs: &Path, ca: &str, cert: ClientCert<'_>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.join(format!("{ca}.pem"))).expect("CA file") {
        roots.add(c.expect("CA certificate")).expect("CA accepted");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    match cert {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let chain = CertificateDer::pem_file_iter(certs.join(format!("{c}.pem")))
                .expect("certificate file")
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate");
            let key = PrivateKeyDer::from_pem_file(certs.join(format!("{c}.key"))).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate accepted by rustls")
        }
    }
}

/// Opens a TLS connection to `addr` with `config` (server name `localhost`).
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").expect("valid name");
    tokio::time::timeout(super::WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// lapin's TLS settings: trust `certs/{ca}.pem` and present `certs/{cert}.pem` with its key.
/// tcp-stream (under lapin) takes a client identity only as PKCS#12, so one is built here.
pub fn lapin_tls(certs: &Path, ca: &str, cert: ClientCert<'_>) -> lapin::tcp::OwnedTLSConfig {
    let cert_chain = std::fs::read_to_string(certs.join(format!("{ca}.pem"))).expect("CA file");
    let identity = cert.map(|c| {
        let leaf = CertificateDer::from_pem_file(certs.join(format!("{c}.pem"))).expect("cert");
        let key = PrivateKeyDer::from_pem_file(certs.join(format!("{c}.key"))).expect("key");
        let chain = vec![p12_keystore::Certificate::from_der(&leaf).expect("DER certificate")];
        let entry = p12_keystore::PrivateKeyChain::new(key.secret_der(), [1u8], chain);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(c, p12_keystore::KeyStoreEntry::PrivateKeyChain(entry));
        let password = "test";
        lapin::tcp::OwnedIdentity {
            der: store.writer(password).write().expect("PKCS#12 written"),
            password: password.to_string(),
        }
    });
    lapin::tcp::OwnedTLSConfig {
        identity,
        cert_chain: Some(cert_chain),
    }
}

/// Connects lapin to the broker's AMQPS listener; `query` is appended to the URI (e.g.
/// `auth_mechanism=external`), `user` is `user:password@` or empty.
pub async fn lapin_connect(
    b: &RunningBroker,
    user: &str,
    query: &str,
    tls: lapin::tcp::OwnedTLSConfig,
) -> lapin::Result<lapin::Connection> {
    let addr = b.amqps_addr().expect("AMQPS listener is on");
    let uri = format!("amqps://{user}{addr}/%2f?{query}");
    tokio::time::timeout(
        super::WAIT,
        lapin::Connection::connect_with_config(&uri, lapin::ConnectionProperties::default(), tls),
    )
    .await
    .expect("lapin connected or failed in time")
}
