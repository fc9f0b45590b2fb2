//! Why the MQTT endpoint could not start.
//!
//! Problems of one connection (malformed packets, bad credentials, slow consumers) are
//! never errors of the endpoint: they close that connection with a reason code, are
//! counted in [`crate::MqttMetrics`], and the server keeps serving everyone else.

use std::path::PathBuf;

use ingot_core::error::{ErrorExt, ErrorKind};

/// Why [`crate::serve`] or [`crate::tls_server_config`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The `[mqtt]` section is invalid; every problem names its key.
    #[error("invalid MQTT configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A TLS PEM file could not be read.
    #[error("cannot read the TLS {what} file {path}: {source}")]
    TlsFile {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS PEM file holds nothing usable.
    #[error("the TLS {what} file {path} {problem}")]
    TlsPem {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the certificate and key (e.g. the key does not match the certificate).
    #[error("cannot use the TLS certificate and key: {0}")]
    Tls(#[from] rustls::Error),
}

impl ErrorExt for MqttError {
    fn kind(&self) -> ErrorKind {
        match self {
            MqttError::Config(_) | MqttError::TlsPem { .. } | MqttError::Tls(_) => {
                ErrorKind::InvalidInput
            }
            MqttError::TlsFile { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    ErrorKind::InvalidInput
                }
                _ => ErrorKind::Internal,
            },
        }
    }
}
