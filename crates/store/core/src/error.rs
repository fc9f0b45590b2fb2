use ingot_core::error::{ErrorExt, ErrorKind};

/// Why a store or registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create collided with an existing name.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What collided, e.g. `device probe-7`.
        what: String,
    },
    /// A query the backend cannot run as asked.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The backend is unreachable or busy for now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend failed.
    #[error("store backend failed: {0}")]
    Backend(String),
}

impl ErrorExt for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            StoreError::InvalidQuery(_) => ErrorKind::InvalidInput,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::Backend(_) => ErrorKind::Internal,
        }
    }
}
