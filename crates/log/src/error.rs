use ingot_core::error::{ErrorExt, ErrorKind};

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading or writing a file failed.
    #[error("log io failed at {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A frame that was fsynced earlier fails its checksum (not a torn tail: that is repaired
    /// silently on recovery).
    #[error("log corrupt at {path} byte {at}: {reason}")]
    Corrupt {
        /// The segment file.
        path: String,
        /// Byte offset in the file.
        at: u64,
        /// What was wrong.
        reason: String,
    },
    /// A caller error: empty batch, bad topic name, seek out of range...
    #[error("invalid log request: {0}")]
    Invalid(String),
    /// The log was closed.
    #[error("log closed")]
    Closed,
    /// The backend (e.g. a remote engine) is unreachable or refused for now.
    #[error("log unavailable: {0}")]
    Unavailable(String),
}

impl ErrorExt for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::Invalid(_) => ErrorKind::InvalidInput,
            LogError::Closed | LogError::Unavailable(_) => ErrorKind::Unavailable,
            LogError::Io { .. } | LogError::Corrupt { .. } => ErrorKind::Internal,
        }
    }
}
