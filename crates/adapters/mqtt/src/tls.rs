//! The TLS listener's configuration: rustls with the `ring` provider, from PEM files.
//!
//! `ring` rather than rustls's default `aws-lc-rs`: aws-lc is a large C/CMake build that
//! dominates a clean build on two cores, and nothing here needs its extras (FIPS,
//! post-quantum key exchange). See `docs/decisions/0003-mqtt-codec.md`.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::MqttError;

/// Builds the TLS server configuration from a PEM certificate chain (leaf first) and a
/// PEM private key (PKCS#8, PKCS#1 or SEC1), with TLS 1.2 and 1.3 and no client
/// certificates. Errors name the file and what is wrong with it.
pub fn tls_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, MqttError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| MqttError::TlsFile {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let pem_problem = |what: &'static str, path: &Path, problem: String| MqttError::TlsPem {
        what,
        path: path.to_owned(),
        problem,
    };
    let cert_pem = read("certificate", cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_problem("certificate", cert, format!("is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_problem(
            "certificate",
            cert,
            "holds no CERTIFICATE block".into(),
        ));
    }
    let key_pem = read("private key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        pem_problem(
            "private key",
            key,
            format!("holds no usable PRIVATE KEY block: {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = tls_server_config(&missing, &missing).unwrap_err();
        assert!(
            matches!(
                e,
                MqttError::TlsFile {
                    what: "certificate",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("missing.pem"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = tls_server_config(&empty, &empty).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }
}
