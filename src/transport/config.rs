//! TLS settings: the `[tls]` table of the config file and the `--tls-*` flags. Owns parsing
//! of the client-certificate mode and of where a certificate's identity comes from; loading
//! the files is `tls.rs`'s job.

use std::path::PathBuf;

use serde::Deserialize;

/// TLS settings shared by the MQTTS and AMQPS listeners (`[tls]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain, PEM (leaf first); `--tls-cert`.
    pub cert: Option<PathBuf>,
    /// Server private key, PEM (PKCS#8, PKCS#1 or SEC1); `--tls-key`.
    pub key: Option<PathBuf>,
    /// CA certificates that client certificates must chain to, PEM; `--tls-ca`.
    pub ca: Option<PathBuf>,
    /// Certificate revocation lists, PEM (one file, any number of CRLs); `--tls-crl`.
    pub crl: Option<PathBuf>,
    /// Whether clients present certificates; `--tls-client-cert`.
    pub client_cert: ClientCertMode,
    /// Which part of a verified client certificate is the user name; `--tls-identity`.
    pub identity: IdentitySource,
    /// MQTT over TLS: the certificate identity replaces the CONNECT user name and the password
    /// is ignored; a client without a certificate is refused (Mosquitto's
    /// `use_identity_as_username`); `--mqtt-identity-as-username`.
    pub mqtt_identity_as_username: bool,
    /// Seconds between checks of the certificate files for changes (a reload when they
    /// change); 0 turns the check off (SIGHUP still reloads).
    pub watch_interval_secs: u64,
    /// Seconds a client may take to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            ca: None,
            crl: None,
            client_cert: ClientCertMode::None,
            identity: IdentitySource::CommonName,
            mqtt_identity_as_username: false,
            watch_interval_secs: 5,
            handshake_timeout_secs: 10,
        }
    }
}

/// Whether the TLS listeners ask for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertMode {
    /// No certificate is requested (`none`).
    None,
    /// A certificate is requested; one that is sent must verify (`optional`).
    Optional,
    /// A verified certificate is required to complete the handshake (`required`).
    Required,
}

impl std::str::FromStr for ClientCertMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(ClientCertMode::None),
            "optional" => Ok(ClientCertMode::Optional),
            "required" => Ok(ClientCertMode::Required),
            _ => Err(format!(
                "invalid client certificate mode {s:?} (want none, optional or required)"
            )),
        }
    }
}

/// Where the user name of a verified client certificate comes from (RabbitMQ's
/// `ssl_cert_login_from`; Mosquitto uses the common name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// The subject's CN (`common_name` or `cn`).
    CommonName,
    /// The whole subject in RFC 4514 form, e.g. `O=ferromq dev,CN=device-1`
    /// (`distinguished_name` or `dn`).
    DistinguishedName,
    /// The first e-mail subject alternative name (`san_email`).
    SanEmail,
    /// The first DNS subject alternative name (`san_dns`).
    SanDns,
    /// The first URI subject alternative name (`san_uri`).
    SanUri,
}

impl std::str::FromStr for IdentitySource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cn" | "common_name" => Ok(IdentitySource::CommonName),
            "dn" | "distinguished_name" => Ok(IdentitySource::DistinguishedName),
            "san_email" => Ok(IdentitySource::SanEmail),
            "san_dns" => Ok(IdentitySource::SanDns),
            "san_uri" => Ok(IdentitySource::SanUri),
            _ => Err(format!(
                "invalid identity source {s:?} (want common_name, distinguished_name, san_email, san_dns or san_uri)"
            )),
        }
    }
}

/// Deserializes through `FromStr`, so the file and the flags accept the same spellings.
macro_rules! deserialize_from_str {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
deserialize_from_str!(ClientCertMode);
deserialize_from_str!(IdentitySource);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_sources_parse() {
        assert_eq!("REQUIRED".parse(), Ok(ClientCertMode::Required));
        assert_eq!("none".parse(), Ok(ClientCertMode::None));
        assert!("maybe".parse::<ClientCertMode>().is_err());
        assert_eq!("cn".parse(), Ok(IdentitySource::CommonName));
        assert_eq!("san_email".parse(), Ok(IdentitySource::SanEmail));
        assert!("subject".parse::<IdentitySource>().is_err());
    }

    #[test]
    fn table_parses_with_defaults() {
        let c: TlsConfig =
            toml::from_str("cert = \"s.pem\"\nclient_cert = \"optional\"\nidentity = \"dn\"\n")
                .unwrap();
        assert_eq!(c.cert, Some(PathBuf::from("s.pem")));
        assert_eq!(c.client_cert, ClientCertMode::Optional);
        assert_eq!(c.identity, IdentitySource::DistinguishedName);
        assert_eq!(c.watch_interval_secs, 5);
        assert!(toml::from_str::<TlsConfig>("certs = \"x\"").is_err());
    }
}
