//! The small set of error kinds every error in the workspace maps to.

use std::fmt;

/// What kind of failure an error is, independent of which crate raised it.
///
/// The HTTP API maps a kind to a status code, the CoAP and MQTT adapters to their own codes,
/// and sinks use [`ErrorKind::is_retryable`] to decide whether to try again.
/// [`ErrorKind::Internal`] errors are logged in full but shown to users only as "internal
/// error".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request or document is malformed or violates a rule.
    InvalidInput,
    /// No credentials, or credentials that are not valid.
    Unauthenticated,
    /// Valid credentials that may not do this.
    PermissionDenied,
    /// The thing asked for does not exist (in the caller's tenant).
    NotFound,
    /// A create collided with something that already exists.
    AlreadyExists,
    /// The body, event or batch is larger than the configured limit.
    TooLarge,
    /// The body's media type is not one we accept.
    UnsupportedMediaType,
    /// Over a rate limit; retrying after a pause can succeed.
    RateLimited,
    /// A dependency is temporarily unavailable (shutting down, overloaded, disk full).
    Unavailable,
    /// A bug or an unexpected failure of the machine.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::RateLimited)
    }

    /// A stable, lowercase code for error bodies (`"invalid_input"`, ...).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Implemented by every error enum of the workspace.
pub trait ErrorExt: std::error::Error {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;

    /// Whether retrying can succeed; by default derived from the kind.
    fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }
}
