//! How NATS and JetStream failures become [`LogError`]s.
//!
//! The backend answers with the trait's own error type, so callers (ingest, the store
//! writer) see the same kinds whatever the log: a server that cannot be reached, a
//! JetStream API error or a timeout is [`LogError::Unavailable`] (retry later), a request
//! the log refuses is [`LogError::Invalid`], and a message over the server's `max_payload`
//! is [`LogError::TooLarge`]. Messages name the stream or consumer involved.

use async_nats::jetstream::{self, ErrorCode};
use ingot_log::LogError;

/// A failure to reach or use the server, about `what`.
pub(crate) fn unavailable(what: &str, error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("nats: {what}: {error}"))
}

/// The JetStream API error code inside an async-nats error kind, if there is one.
pub(crate) fn api_code(error: Option<&jetstream::Error>) -> Option<ErrorCode> {
    error.map(jetstream::Error::error_code)
}

/// Whether `code` says the stream or the consumer does not exist.
pub(crate) fn is_not_found(code: Option<ErrorCode>) -> bool {
    matches!(
        code,
        Some(ErrorCode::STREAM_NOT_FOUND) | Some(ErrorCode::CONSUMER_NOT_FOUND)
    )
}

#[cfg(test)]
mod tests {
    use ingot_core::error::{ErrorExt, ErrorKind};

    use super::*;

    #[test]
    fn failures_are_retryable_and_name_what_failed() {
        let error = unavailable("append to stream INGOT_events_0", "timed out");
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.to_string().contains("INGOT_events_0"), "{error}");
        assert!(is_not_found(Some(ErrorCode::STREAM_NOT_FOUND)));
        assert!(is_not_found(Some(ErrorCode::CONSUMER_NOT_FOUND)));
        assert!(!is_not_found(Some(ErrorCode::STREAM_NAME_EXIST)));
        assert!(!is_not_found(None));
    }
}
