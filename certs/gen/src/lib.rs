//! Development and test certificates for ferromq's TLS listeners, made with rcgen. Owns the
//! set of files the tests and the README rely on (names and subjects below); never meant for
//! production use. The binary writes them into `certs/`; tests call [`generate`] into a
//! temporary directory when they need fresh ones (hot reload).
//!
//! Files written (PEM; keys are PKCS#8 ECDSA P-256):
//! - `ca.pem` / `ca.key`: the development CA ("ferromq dev CA"), which also signs `crl.pem`.
//! - `server.pem` / `server.key`: SAN `localhost` and `127.0.0.1`, CN `localhost`.
//! - `client.pem` / `client.key`: CN `device-1`, SAN email `device-1@example.com`, SAN DNS
//!   `device-1.example.com`, O `ferromq dev`.
//! - `client2.pem` / `client2.key`: CN `device-2` (a second valid identity).
//! - `client-expired.pem` / `.key`: CN `device-expired`, validity ended yesterday.
//! - `client-revoked.pem` / `.key`: CN `device-revoked`, listed in `crl.pem`.
//! - `crl.pem`: the CA's revocation list (revokes `client-revoked.pem`).
//! - `crl-empty.pem`: a revocation list of the same CA that revokes nothing (reload tests).
//! - `wrong-ca.pem` / `wrong-ca.key`: an unrelated CA ("ferromq wrong CA").
//! - `wrong-ca-client.pem` / `.key`: CN `device-1` again, signed by the wrong CA.
//! - `wrong-ca-server.pem` / `.key`: a server certificate (localhost) from the wrong CA, for
//!   hot-reload tests that swap the server certificate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Validity of the long-lived certificates: ten years from generation.
const VALID_DAYS: i64 = 3650;

/// Errors while generating or writing the certificates.
#[derive(Debug)]
pub enum Error {
    /// rcgen refused the parameters.
    Rcgen(rcgen::Error),
    /// A file could not be written.
    Io(std::io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Rcgen(e) => write!(f, "certificate generation failed: {e}"),
            Error::Io(e) => write!(f, "cannot write certificate files: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Rcgen(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// A certificate with its key, ready to sign others.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Writes the whole set (see the module docs) into `dir`, creating it if needed.
pub fn generate(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    let now = OffsetDateTime::now_utc();
    let ca = ca("ferromq dev CA", now)?;
    write(dir, "ca", &ca)?;
    let server = leaf(&ca, server_params(now, 10)?)?;
    write(dir, "server", &server)?;
    let client = leaf(&ca, client_params("device-1", now, 20, true)?)?;
    write(dir, "client", &client)?;
    let client2 = leaf(&ca, client_params("device-2", now, 21, false)?)?;
    write(dir, "client2", &client2)?;
    let mut expired = client_params("device-expired", now, 30, false)?;
    expired.not_before = now - Duration::days(30);
    expired.not_after = now - Duration::days(1);
    write(dir, "client-expired", &leaf(&ca, expired)?)?;
    let revoked_serial = 40;
    let revoked = leaf(
        &ca,
        client_params("device-revoked", now, revoked_serial, false)?,
    )?;
    write(dir, "client-revoked", &revoked)?;
    let crl = |number: u64, revoked: Vec<RevokedCertParams>| {
        CertificateRevocationListParams {
            this_update: now - Duration::days(1),
            next_update: now + Duration::days(VALID_DAYS),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&ca.cert, &ca.key)
    };
    let revoked_entry = RevokedCertParams {
        serial_number: SerialNumber::from(revoked_serial),
        revocation_time: now - Duration::hours(1),
        reason_code: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    };
    std::fs::write(dir.join("crl-empty.pem"), crl(1, Vec::new())?.pem()?)?;
    let crl = crl(2, vec![revoked_entry])?;
    std::fs::write(dir.join("crl.pem"), crl.pem()?)?;

    let wrong = self::ca("ferromq wrong CA", now)?;
    write(dir, "wrong-ca", &wrong)?;
    write(
        dir,
        "wrong-ca-client",
        &leaf(&wrong, client_params("device-1", now, 50, false)?)?,
    )?;
    write(
        dir,
        "wrong-ca-server",
        &leaf(&wrong, server_params(now, 51)?)?,
    )?;
    Ok(())
}

fn ca(name: &str, now: OffsetDateTime) -> Result<Issued, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // CrlSign: webpki checks the issuer may sign CRLs before it trusts crl.pem.
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from(1u64));
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(VALID_DAYS);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Issued { cert, key })
}

fn server_params(now: OffsetDateTime, serial: u64) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.distinguished_name = dn("localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_defaults(&mut params, now, serial);
    Ok(params)
}

fn client_params(
    cn: &str,
    now: OffsetDateTime,
    serial: u64,
    with_sans: bool,
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ferromq dev");
    if with_sans {
        params.subject_alt_names = vec![
            SanType::Rfc822Name(format!("{cn}@example.com").try_into()?),
            SanType::DnsName(format!("{cn}.example.com").try_into()?),
        ];
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_defaults(&mut params, now, serial);
    Ok(params)
}

fn leaf_defaults(params: &mut CertificateParams, now: OffsetDateTime, serial: u64) {
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // OpenSSL's X509_STRICT (Python 3.13's default context) wants the authority key id.
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(VALID_DAYS);
}

fn leaf(issuer: &Issued, params: CertificateParams) -> Result<Issued, Error> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key)?;
    Ok(Issued { cert, key })
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn write(dir: &Path, name: &str, issued: &Issued) -> Result<(), Error> {
    std::fs::write(dir.join(format!("{name}.pem")), issued.cert.pem())?;
    std::fs::write(dir.join(format!("{name}.key")), issued.key.serialize_pem())?;
    Ok(())
}
