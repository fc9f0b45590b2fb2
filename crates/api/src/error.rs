//! JSON errors with the status chosen from the error's kind.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingot_auth::AuthError;
use ingot_core::ErrorKind;
use ingot_core::error::ErrorExt;
use ingot_core::format::BodyError;
use ingot_ingest::IngestError;
use ingot_store::StoreError;
use serde_json::{Map, Value, json};

/// An error response: `{"error": {"code", "message", ...details}}`.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
    /// With [`ErrorKind::RateLimited`]: when to try again.
    retry_after: Option<std::time::Duration>,
    /// A status other than the kind's (408 for a body that never arrived).
    status: Option<StatusCode>,
    pub(crate) details: Map<String, Value>,
}

impl ApiError {
    /// An error of `kind` with a message for the client.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            retry_after: None,
            status: None,
            details: Map::new(),
        }
    }

    /// A 400 naming the query parameter at fault.
    pub fn param(name: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("query parameter `{name}` {reason}"),
        )
        .with("parameter", name)
    }

    /// Adds a detail field (`line`, `column`, `index`, `field`, ...).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Answers with `status` instead of the kind's.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        self.kind_status()
    }

    fn kind_status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if self.kind == ErrorKind::Internal {
            // The details stay in the server's log, not in the response.
            tracing::error!(error = %self.message, "internal error");
            "internal error".to_owned()
        } else {
            self.message
        };
        let mut body = Map::new();
        body.insert("code".into(), self.kind.code().into());
        body.insert("message".into(), message.into());
        if self.kind != ErrorKind::Internal {
            body.extend(self.details);
        }
        let mut response = (status, Json(json!({ "error": body }))).into_response();
        let headers = response.headers_mut();
        match self.kind {
            ErrorKind::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ErrorKind::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ErrorKind::RateLimited => {
                // Whole seconds, rounded up: a client waiting that long will fit.
                let seconds = self
                    .retry_after
                    .map_or(1, |d| d.as_millis().div_ceil(1000).max(1));
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        let error = ApiError::new(e.kind(), e.to_string());
        match e {
            BodyError::Syntax { line, column, .. } => {
                error.with("line", line).with("column", column)
            }
            BodyError::Invalid {
                index,
                line,
                error: field,
            } => error
                .with("index", index)
                .with("line", line)
                .with("field", field.path),
            BodyError::EventTooLarge {
                index, line, max, ..
            } => error
                .with("index", index)
                .with("line", line)
                .with("limit", max),
            BodyError::TooManyEvents { max } | BodyError::BodyTooLarge { max, .. } => {
                error.with("limit", max)
            }
            BodyError::Empty => error,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        match e {
            IngestError::Body(body) => body.into(),
            IngestError::MissingDevice { index } => {
                ApiError::new(ErrorKind::InvalidInput, e.to_string())
                    .with("index", index)
                    .with("field", "device")
            }
            IngestError::WrongDevice { index, .. } => {
                ApiError::new(ErrorKind::PermissionDenied, e.to_string())
                    .with("index", index)
                    .with("field", "device")
            }
            IngestError::RateLimited { .. } => {
                let retry_after = e.retry_after();
                let mut error = ApiError::new(ErrorKind::RateLimited, e.to_string());
                if let Some(wait) = retry_after {
                    error = error.with(
                        "retry_after_ms",
                        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    );
                }
                error.retry_after = retry_after;
                error
            }
            other => ApiError::new(other.kind(), other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}
