//! Errors of the CoAP endpoint: why [`serve`](crate::serve) stopped ([`CoapError`]) and why
//! one request was refused ([`RequestError`], which chooses the response code and writes
//! the diagnostic payload), plus [`CborError`] for CBOR bodies.

use ingot_auth::AuthError;
use ingot_core::error::{ErrorExt, ErrorKind};
use ingot_core::format::{BodyError, FieldError};
use ingot_ingest::IngestError;
use ingot_store::StoreError;

use crate::config::ConfigErrors;
use crate::message::code;

/// Why the CoAP endpoint could not run.
#[derive(Debug, thiserror::Error)]
pub enum CoapError {
    /// The `[coap]` configuration is invalid.
    #[error("invalid CoAP configuration: {0}")]
    Config(ConfigErrors),
    /// The socket failed in a way the server cannot continue from.
    #[error("the CoAP socket failed: {0}")]
    Socket(#[source] std::io::Error),
}

impl ErrorExt for CoapError {
    fn kind(&self) -> ErrorKind {
        match self {
            CoapError::Config(_) => ErrorKind::InvalidInput,
            CoapError::Socket(_) => ErrorKind::Unavailable,
        }
    }
}

/// Why a CBOR body was refused. Nothing of a refused body is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// The bytes are not one well-formed CBOR item.
    #[error("malformed CBOR{}: {message}", at.map(|b| format!(" at byte {b}")).unwrap_or_default())]
    Malformed {
        /// Offset of the problem, when the decoder knows it.
        at: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Bytes follow the first CBOR item.
    #[error("malformed CBOR: {count} bytes follow the first item (send one map or one array)")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// The body is neither a map nor an array of maps.
    #[error("the CBOR body must be a map (one event) or an array of maps")]
    NotEvents,
    /// One element has no JSON equivalent or is not a valid event.
    #[error("event {index}: {error}")]
    Invalid {
        /// 0-based position of the element in the batch.
        index: usize,
        /// The field and what is wrong with it.
        error: FieldError,
    },
    /// One element is larger than `max_event_bytes` (measured as JSON).
    #[error("event {index} is {size} bytes as JSON, more than the limit of {max}")]
    EventTooLarge {
        /// 0-based position of the element.
        index: usize,
        /// Its size as JSON text.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More elements than `max_batch_events`.
    #[error("the batch has more than {max} events")]
    TooManyEvents {
        /// The limit.
        max: usize,
    },
    /// The body is larger than `max_body_bytes`.
    #[error("the body is {size} bytes, more than the limit of {max}")]
    BodyTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An empty array.
    #[error("the body contains no events")]
    Empty,
}

impl ErrorExt for CborError {
    fn kind(&self) -> ErrorKind {
        match self {
            CborError::EventTooLarge { .. }
            | CborError::TooManyEvents { .. }
            | CborError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Why one request was refused; decides the response code and the diagnostic payload.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No resource at this path.
    #[error("no resource at `/{path}`: use /events, /events/latest or /health")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The resource does not support the method.
    #[error("{method} is not allowed on `/{path}`: use {allowed}")]
    MethodNotAllowed {
        /// The method used.
        method: &'static str,
        /// The path.
        path: String,
        /// What is allowed there.
        allowed: &'static str,
    },
    /// A critical option this server does not understand, or an option with a bad value.
    #[error("option {number} ({name}): {reason}")]
    BadOption {
        /// The option number.
        number: u16,
        /// Its name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The request asks for a proxy.
    #[error("this server is not a proxy: Proxy-Uri and Proxy-Scheme are not supported")]
    Proxying,
    /// The Accept option names a format this resource cannot answer in.
    #[error("Accept {accept} cannot be served: this resource answers in {offered}")]
    NotAcceptable {
        /// The Content-Format asked for.
        accept: u16,
        /// What the resource answers in.
        offered: &'static str,
    },
    /// The request body's Content-Format is not accepted.
    #[error(
        "Content-Format {format} is not accepted: send 50 (application/json: one event or an array), \
         60 (application/cbor: one map or an array), or a binary format (21 image/gif, 22 image/jpeg, \
         23 image/png, 42 application/octet-stream) with the metadata in the URI query"
    )]
    UnsupportedFormat {
        /// The Content-Format number.
        format: u16,
    },
    /// A URI-Query parameter is wrong.
    #[error("query parameter `{name}` {reason}")]
    Query {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Block1 upload would exceed the largest body.
    #[error("the body is {size} bytes or more, more than the limit of {max}")]
    BodyTooLarge {
        /// The size known so far (Size1, or the bytes received).
        size: usize,
        /// The limit (also sent as Size1).
        max: usize,
    },
    /// A block-wise transfer went wrong (out of order, expired, malformed blocks).
    #[error("{0}")]
    Incomplete(String),
    /// A block option is out of range (a Block2 block past the end).
    #[error("{0}")]
    BadBlock(String),
    /// A Block1 block whose payload does not match its size.
    #[error("{0}")]
    ShortBlock(String),
    /// Reading needs credentials.
    #[error(
        "missing credentials: add `token=<API key or device token>` to the URI query (for example coap://host/events?token=...)"
    )]
    MissingCredentials,
    /// Credentials that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too much work in progress: retry after Max-Age.
    #[error("the server is busy: retry after {max_age} s")]
    Overloaded {
        /// Seconds (also sent as Max-Age).
        max_age: u32,
    },
    /// The server is shutting down.
    #[error("the server is shutting down: retry after {max_age} s (another replica may answer)")]
    ShuttingDown {
        /// Seconds (also sent as Max-Age).
        max_age: u32,
    },
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A JSON body was refused.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A CBOR body was refused.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Ingest refused the events.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug (a job that panicked, a response that could not be encoded).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ErrorExt for RequestError {
    fn kind(&self) -> ErrorKind {
        match self {
            RequestError::NotFound { .. } => ErrorKind::NotFound,
            RequestError::MethodNotAllowed { .. }
            | RequestError::BadOption { .. }
            | RequestError::Proxying
            | RequestError::NotAcceptable { .. }
            | RequestError::Query { .. }
            | RequestError::Incomplete(_)
            | RequestError::BadBlock(_)
            | RequestError::ShortBlock(_) => ErrorKind::InvalidInput,
            RequestError::UnsupportedFormat { .. } => ErrorKind::UnsupportedMediaType,
            RequestError::BodyTooLarge { .. } => ErrorKind::TooLarge,
            RequestError::MissingCredentials => ErrorKind::Unauthenticated,
            RequestError::Forbidden(_) => ErrorKind::PermissionDenied,
            RequestError::Overloaded { .. } | RequestError::ShuttingDown { .. } => {
                ErrorKind::Unavailable
            }
            RequestError::Auth(e) => e.kind(),
            RequestError::Body(e) => e.kind(),
            RequestError::Cbor(e) => e.kind(),
            RequestError::Ingest(e) => e.kind(),
            RequestError::Store(e) => e.kind(),
            RequestError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl RequestError {
    /// A 4.00 naming the query parameter at fault.
    pub(crate) fn query(name: &str, reason: impl Into<String>) -> RequestError {
        RequestError::Query {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    /// The CoAP response code (RFC 7252 §5.9, RFC 7959 §2.9).
    pub fn code(&self) -> u8 {
        match self {
            RequestError::MethodNotAllowed { .. } => code::METHOD_NOT_ALLOWED,
            RequestError::BadOption { .. } | RequestError::BadBlock(_) => code::BAD_OPTION,
            RequestError::Proxying => code::PROXYING_NOT_SUPPORTED,
            RequestError::NotAcceptable { .. } => code::NOT_ACCEPTABLE,
            RequestError::Incomplete(_) => code::REQUEST_ENTITY_INCOMPLETE,
            other => match other.kind() {
                ErrorKind::InvalidInput => code::BAD_REQUEST,
                ErrorKind::Unauthenticated => code::UNAUTHORIZED,
                ErrorKind::PermissionDenied => code::FORBIDDEN,
                ErrorKind::NotFound => code::NOT_FOUND,
                ErrorKind::AlreadyExists => code::CONFLICT,
                ErrorKind::TooLarge => code::REQUEST_ENTITY_TOO_LARGE,
                ErrorKind::UnsupportedMediaType => code::UNSUPPORTED_CONTENT_FORMAT,
                ErrorKind::RateLimited => code::TOO_MANY_REQUESTS,
                ErrorKind::Unavailable => code::SERVICE_UNAVAILABLE,
                ErrorKind::Internal => code::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The human-readable diagnostic payload (RFC 7252 §5.5.2): the same messages the HTTP
    /// API gives, except where HTTP's wording does not fit CoAP (credentials travel in the
    /// URI query). Internal errors show no detail.
    pub fn diagnostic(&self) -> String {
        match self {
            RequestError::Auth(AuthError::Missing) => RequestError::MissingCredentials.to_string(),
            RequestError::Internal(_) => "internal error".to_owned(),
            other if other.kind() == ErrorKind::Internal => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Max-Age for 5.03 answers.
    pub(crate) fn max_age(&self) -> Option<u32> {
        match self {
            RequestError::Overloaded { max_age } | RequestError::ShuttingDown { max_age } => {
                Some(*max_age)
            }
            // RFC 8516: Max-Age tells a rate-limited client when to try again.
            RequestError::Ingest(e) if e.kind() == ErrorKind::RateLimited => e
                .retry_after()
                .map(|d| u32::try_from(d.as_millis().div_ceil(1000).max(1)).unwrap_or(u32::MAX)),
            other if other.kind() == ErrorKind::Unavailable => Some(1),
            _ => None,
        }
    }

    /// Size1 for 4.13 answers: the largest body the server accepts.
    pub(crate) fn size1(&self) -> Option<usize> {
        match self {
            RequestError::BodyTooLarge { max, .. }
            | RequestError::Cbor(CborError::BodyTooLarge { max, .. })
            | RequestError::Body(BodyError::BodyTooLarge { max, .. })
            | RequestError::Ingest(IngestError::Body(BodyError::BodyTooLarge { max, .. })) => {
                Some(*max)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_kind_and_the_protocol() {
        let cases: [(RequestError, &str); 9] = [
            (RequestError::query("limit", "is bad"), "4.00"),
            (RequestError::MissingCredentials, "4.01"),
            (
                RequestError::BadOption {
                    number: 9,
                    name: "OSCORE",
                    reason: "x".into(),
                },
                "4.02",
            ),
            (RequestError::NotFound { path: "x".into() }, "4.04"),
            (
                RequestError::MethodNotAllowed {
                    method: "PUT",
                    path: "events".into(),
                    allowed: "POST",
                },
                "4.05",
            ),
            (
                RequestError::NotAcceptable {
                    accept: 60,
                    offered: "50",
                },
                "4.06",
            ),
            (RequestError::BodyTooLarge { size: 10, max: 5 }, "4.13"),
            (RequestError::UnsupportedFormat { format: 0 }, "4.15"),
            (RequestError::Overloaded { max_age: 2 }, "5.03"),
        ];
        for (error, expected) in cases {
            assert_eq!(code::name(error.code()), expected, "{error}");
        }
        assert_eq!(
            RequestError::BodyTooLarge { size: 10, max: 5 }.size1(),
            Some(5)
        );
        assert_eq!(RequestError::Overloaded { max_age: 2 }.max_age(), Some(2));
    }

    #[test]
    fn diagnostics_speak_coap_and_hide_internals() {
        let missing = RequestError::Auth(AuthError::Missing).diagnostic();
        assert!(missing.contains("token="), "{missing}");
        assert!(!missing.contains("Authorization"), "{missing}");
        let internal = RequestError::Internal("secret detail".into()).diagnostic();
        assert_eq!(internal, "internal error");
    }
}
