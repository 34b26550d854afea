//! The TLS acceptor: loads the server certificate, key, client CA and CRLs into a rustls
//! `ServerConfig` (TLS 1.2 and 1.3 only, ring provider) and keeps it behind a lock so a reload
//! swaps it for new connections while established ones keep the config they started with.
//! Runs each handshake with a timeout on the connection's own task, never in the accept loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::config::{ClientCertMode, TlsConfig};
use super::TlsInfo;

/// Errors loading the TLS material. At start-up they stop the broker; on reload they are
/// logged and the previous certificates stay in use.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A required setting is missing.
    #[error("TLS listener configured but {0} is not set")]
    Missing(&'static str),
    /// A file could not be read or holds no usable PEM item of the expected kind.
    #[error("cannot load {what} from {path}: {reason}")]
    File {
        /// "certificate", "private key", "CA certificates" or "CRL".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (e.g. key does not match certificate).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (bad CA or CRL).
    #[error("invalid client CA or CRL: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The reloadable TLS acceptor shared by the MQTTS and AMQPS listeners.
pub struct TlsAcceptor {
    settings: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Loads the files named in `settings`; fails if any is missing or invalid.
    pub fn load(settings: &TlsConfig) -> Result<Arc<TlsAcceptor>, TlsError> {
        let config = build(settings)?;
        Ok(Arc::new(TlsAcceptor {
            settings: settings.clone(),
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Re-reads the certificate, key, CA and CRL files. New connections use them from now on;
    /// established connections are untouched. On error the previous config stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.settings)?;
        *self.current.write() = Arc::new(config);
        Ok(())
    }

    /// The files this acceptor reads (for the change watcher).
    pub fn files(&self) -> Vec<PathBuf> {
        let s = &self.settings;
        [&s.cert, &s.key, &s.ca, &s.crl]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Runs the server handshake on `tcp` within the configured timeout. `None` (after a log
    /// line naming the peer and the reason) when it fails or times out.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        protocol: &'static str,
    ) -> Option<(TlsStream<TcpStream>, TlsInfo)> {
        let config = Arc::clone(&self.current.read());
        let timeout = Duration::from_secs(self.settings.handshake_timeout_secs);
        let handshake = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::warn!(%peer, protocol, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::warn!(%peer, protocol, "TLS handshake not completed within {}s", timeout.as_secs());
                return None;
            }
        };
        let (_, session) = stream.get_ref();
        // rustls only completes the handshake with a certificate that verified against the CA
        // and CRLs, so the leaf here is trusted.
        let identity = session.peer_certificates().and_then(|chain| {
            let leaf = chain.first()?;
            let id = super::identity::from_certificate(leaf, self.settings.identity);
            if id.is_none() {
                tracing::warn!(%peer, protocol, source = ?self.settings.identity,
                    "verified client certificate has no identity of the configured kind");
            }
            id
        });
        tracing::debug!(%peer, protocol, version = ?session.protocol_version(), identity = ?identity, "TLS handshake done");
        Some((stream, TlsInfo { identity }))
    }
}

/// Builds a `ServerConfig` from the files (TLS 1.2 and 1.3 only; older versions are not even
/// implemented by rustls).
fn build(s: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_path = s.cert.as_deref().ok_or(TlsError::Missing("--tls-cert"))?;
    let key_path = s.key.as_deref().ok_or(TlsError::Missing("--tls-key"))?;
    let chain = certificates(cert_path, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::File {
        what: "private key",
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match s.client_cert {
        ClientCertMode::None => builder.with_no_client_auth(),
        mode => {
            let ca_path = s.ca.as_deref().ok_or(TlsError::Missing("--tls-ca"))?;
            let mut roots = RootCertStore::empty();
            for ca in certificates(ca_path, "CA certificates")? {
                roots.add(ca).map_err(|e| TlsError::File {
                    what: "CA certificates",
                    path: ca_path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if let Some(crl_path) = s.crl.as_deref() {
                // Only the client's own certificate is checked against the CRLs, and a
                // certificate whose issuer published no CRL passes: the CRL file lists what
                // is revoked, it is not a whitelist of issuers.
                verifier = verifier
                    .with_crls(crls(crl_path)?)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status();
            }
            if mode == ClientCertMode::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    Ok(builder.with_single_cert(chain, key)?)
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        what: "CRL",
        path: path.to_path_buf(),
        reason,
    };
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if crls.is_empty() {
        return Err(err("no PEM X509 CRL in the file".into()));
    }
    Ok(crls)
}
