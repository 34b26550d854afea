//! The identity a verified client certificate carries: its subject CN, its whole subject, or
//! its first e-mail / DNS / URI subject alternative name (RabbitMQ's `ssl_cert_login_from`,
//! Mosquitto's `use_identity_as_username`). Parses only certificates rustls has already
//! verified; never decides trust.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::config::IdentitySource;

/// The identity of `cert_der` taken from `source`; `None` if the certificate does not parse
/// or lacks that field.
pub fn from_certificate(cert_der: &[u8], source: IdentitySource) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    match source {
        IdentitySource::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        IdentitySource::DistinguishedName => Some(rfc4514(&cert)),
        IdentitySource::SanEmail => first_san(&cert, |n| match n {
            GeneralName::RFC822Name(s) => Some(s),
            _ => None,
        }),
        IdentitySource::SanDns => first_san(&cert, |n| match n {
            GeneralName::DNSName(s) => Some(s),
            _ => None,
        }),
        IdentitySource::SanUri => first_san(&cert, |n| match n {
            GeneralName::URI(s) => Some(s),
            _ => None,
        }),
    }
}

fn first_san<'a>(
    cert: &'a X509Certificate<'a>,
    pick: impl Fn(&GeneralName<'a>) -> Option<&'a str>,
) -> Option<String> {
    let san = cert.subject_alternative_name().ok()??;
    san.value
        .general_names
        .iter()
        .find_map(pick)
        .map(str::to_owned)
}

/// The subject as RFC 4514 writes it: RDNs last-to-first, `,`-separated, short attribute
/// names where known (`CN`, `O`, ...), dotted OIDs otherwise; `,`, `+`, `"`, `\`, `<`, `>`,
/// `;` escaped.
fn rfc4514(cert: &X509Certificate<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut out = Vec::new();
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type();
                let name = x509_parser::objects::oid2abbrev(oid, registry)
                    .map(str::to_owned)
                    .unwrap_or_else(|_| oid.to_id_string());
                let value = atv.as_str().unwrap_or("");
                format!("{name}={}", escape(value))
            })
            .collect();
        out.push(parts.join("+"));
    }
    out.join(",")
}

fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    use super::*;

    /// The committed development client certificate (see certs/README.md).
    fn client_cert() -> CertificateDer<'static> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/client.pem");
        CertificateDer::from_pem_file(path).expect("certs/client.pem")
    }

    #[test]
    fn each_source_reads_its_field() {
        let der = client_cert();
        let id = |s| from_certificate(&der, s);
        assert_eq!(id(IdentitySource::CommonName).as_deref(), Some("device-1"));
        assert_eq!(
            id(IdentitySource::DistinguishedName).as_deref(),
            Some("O=ferromq dev,CN=device-1")
        );
        assert_eq!(
            id(IdentitySource::SanEmail).as_deref(),
            Some("device-1@example.com")
        );
        assert_eq!(
            id(IdentitySource::SanDns).as_deref(),
            Some("device-1.example.com")
        );
        assert_eq!(id(IdentitySource::SanUri), None);
    }

    #[test]
    fn garbage_has_no_identity() {
        assert_eq!(
            from_certificate(b"\x30\x03\x02\x01", IdentitySource::CommonName),
            None
        );
    }

    #[test]
    fn rfc4514_escapes_specials() {
        assert_eq!(escape("a,b+c\\"), "a\\,b\\+c\\\\");
    }
}
