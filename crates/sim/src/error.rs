//! The simulator's errors. Failures of single requests during a run are not errors of the
//! run: they are counted by code in the [`Report`](crate::report::Report).

use ingot_core::error::{ErrorExt, ErrorKind};

/// Why a simulation could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An option has a value that cannot work.
    #[error("--{option}: {reason}")]
    InvalidOption {
        /// The option, without dashes.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The target could not be parsed or resolved.
    #[error("cannot use target `{target}`: {reason}")]
    Target {
        /// The target as given.
        target: String,
        /// Why.
        reason: String,
    },
    /// No client could connect (or, for CoAP, bind) at all.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Where.
        target: String,
        /// The first failure seen.
        reason: String,
    },
    /// Creating the devices through the admin API failed.
    #[error("cannot provision device `{device}`: {reason}")]
    Provision {
        /// The device being created.
        device: String,
        /// The server's answer or the transport error.
        reason: String,
        /// The HTTP status, if the server answered.
        status: Option<u16>,
    },
    /// The admin key could not be read.
    #[error("cannot read the admin key from {path}: {source}")]
    ApiKey {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A local resource (runtime, socket) could not be set up.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl ErrorExt for SimError {
    fn kind(&self) -> ErrorKind {
        match self {
            SimError::InvalidOption { .. } | SimError::Target { .. } => ErrorKind::InvalidInput,
            SimError::Connect { .. } => ErrorKind::Unavailable,
            SimError::Provision {
                status: Some(401 | 403),
                ..
            }
            | SimError::ApiKey { .. } => ErrorKind::PermissionDenied,
            SimError::Provision {
                status: Some(400..500),
                ..
            } => ErrorKind::InvalidInput,
            SimError::Provision { .. } => ErrorKind::Unavailable,
            SimError::Io { .. } => ErrorKind::Internal,
        }
    }
}

impl SimError {
    /// An invalid option value.
    pub(crate) fn option(option: &'static str, reason: impl Into<String>) -> SimError {
        SimError::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}
