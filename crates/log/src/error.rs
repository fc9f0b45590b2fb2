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
    /// A batch larger than one frame may hold.
    #[error("log batch of {bytes} bytes exceeds the limit of {limit} bytes per append")]
    TooLarge {
        /// The encoded size of the batch.
        bytes: u64,
        /// The most one append may hold.
        limit: u64,
    },
    /// A partition refuses appends after a failure that left its durability unknown (a failed
    /// fsync, a failed segment roll); reopening the log recovers it from what is on disk.
    #[error(
        "log partition {topic}/{partition} failed earlier and refuses appends until the log is reopened: {reason}"
    )]
    Failed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The first failure.
        reason: String,
    },
    /// The log was closed.
    #[error("log closed")]
    Closed,
    /// The backend (e.g. a remote engine) is unreachable or refused for now.
    #[error("log unavailable: {0}")]
    Unavailable(String),
}

impl LogError {
    /// An [`LogError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// A [`LogError::Corrupt`] at byte `at` of `path`.
    pub(crate) fn corrupt(path: &std::path::Path, at: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: path.display().to_string(),
            at,
            reason: reason.into(),
        }
    }
}

impl ErrorExt for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::Invalid(_) => ErrorKind::InvalidInput,
            LogError::TooLarge { .. } => ErrorKind::TooLarge,
            LogError::Closed | LogError::Unavailable(_) => ErrorKind::Unavailable,
            LogError::Io { .. } | LogError::Corrupt { .. } | LogError::Failed { .. } => {
                ErrorKind::Internal
            }
        }
    }
}
