//! Runs the engine's jobs against the rest of the server: credentials (`ingot-auth`),
//! ingest (`ingot-ingest`, the one path every protocol takes) and listing (`ingot-store`).
//!
//! Who may do what, over CoAP:
//!
//! - `POST /events`: what ingest allows (a device token writes as its device, a writer+ key
//!   for any device of its tenant, nobody without `--allow-anonymous`).
//! - `GET /events` and `GET /events/latest`: an API key of any role (reader or higher) reads
//!   its tenant; a device token reads only its own device's events (the device is implied,
//!   and naming another is 4.03). Anonymous callers read nothing, even with
//!   `--allow-anonymous`.

use std::sync::Arc;

use bytes::Bytes;
use ingot_auth::{Authenticator, Identity};
use ingot_core::error::{ErrorExt, ErrorKind};
use ingot_core::format::{self, BodyFormat as JsonFraming};
use ingot_core::{Event, EventId};
use ingot_ingest::{Ingest, Protocol, RefusalReason};
use ingot_store::{EventStore, ListQuery, Role};

use crate::cbor::parse_cbor;
use crate::engine::{BodyFormat, Outcome, Work};
use crate::error::RequestError;

/// What the CoAP endpoint needs from the rest of the server.
#[derive(Debug, Clone)]
pub struct CoapDeps {
    /// The ingest service (also the live feed Observe notifications come from).
    pub ingest: Arc<Ingest>,
    /// Credentials.
    pub auth: Arc<Authenticator>,
    /// Events, for `GET /events` and `GET /events/latest`.
    pub store: Arc<dyn EventStore>,
}

/// Executes jobs; cheap to share between tasks.
#[derive(Debug)]
pub(crate) struct Worker {
    deps: CoapDeps,
}

impl Worker {
    pub(crate) fn new(deps: CoapDeps) -> Worker {
        Worker { deps }
    }

    /// Runs one job to its outcome.
    pub(crate) async fn run(&self, work: Work) -> Outcome {
        let result = match work {
            Work::Ingest {
                credentials,
                body,
                format,
            } => self
                .ingest(credentials.as_deref(), body, format)
                .await
                .map(Outcome::Created),
            Work::Authorize { credentials } => self
                .writer(credentials.as_deref())
                .await
                .map(|_| Outcome::Authorized),
            Work::List { credentials, query } => self.list(credentials.as_deref(), query).await,
            Work::Latest {
                credentials,
                device,
            } => self.latest(credentials.as_deref(), device).await,
        };
        result.unwrap_or_else(Outcome::Failed)
    }

    fn refused(&self, reason: RefusalReason) {
        self.deps.ingest.metrics().refused(Protocol::coap, reason);
    }

    fn refused_for(&self, kind: ErrorKind) {
        self.refused(match kind {
            ErrorKind::TooLarge => RefusalReason::too_large,
            ErrorKind::PermissionDenied => RefusalReason::forbidden,
            ErrorKind::Unauthenticated => RefusalReason::unauthenticated,
            ErrorKind::UnsupportedMediaType => RefusalReason::media_type,
            ErrorKind::Unavailable | ErrorKind::Internal => RefusalReason::unavailable,
            ErrorKind::RateLimited => RefusalReason::rate_limited,
            _ => RefusalReason::invalid,
        });
    }

    async fn authenticate(&self, credentials: Option<&str>) -> Result<Identity, RequestError> {
        self.deps.auth.authenticate(credentials).await.map_err(|e| {
            self.refused(RefusalReason::unauthenticated);
            RequestError::Auth(e)
        })
    }

    /// Credentials that may ingest (checked before a Block1 upload is buffered).
    async fn writer(&self, credentials: Option<&str>) -> Result<Identity, RequestError> {
        let identity = self.authenticate(credentials).await?;
        if identity.role().is_some_and(|role| role < Role::Writer) {
            self.refused(RefusalReason::forbidden);
            return Err(RequestError::Forbidden(
                "a reader key may not ingest events; use a device token or a writer key".into(),
            ));
        }
        Ok(identity)
    }

    async fn ingest(
        &self,
        credentials: Option<&str>,
        body: Bytes,
        body_format: BodyFormat,
    ) -> Result<Vec<EventId>, RequestError> {
        let identity = self.authenticate(credentials).await?;
        let ingest = &self.deps.ingest;
        let drafts = match body_format {
            BodyFormat::Json => {
                // Parsing, refusal counting and ingest in one call, exactly as over HTTP.
                return Ok(ingest
                    .ingest_body(&identity, Protocol::coap, &body, JsonFraming::Json)
                    .await?);
            }
            BodyFormat::Cbor => parse_cbor(&body, ingest.limits()).map_err(|e| {
                self.refused_for(e.kind());
                RequestError::Cbor(e)
            })?,
            BodyFormat::Binary { media_type, meta } => {
                let mut draft = format::binary(media_type, body, ingest.limits()).map_err(|e| {
                    self.refused_for(e.kind());
                    RequestError::Body(e)
                })?;
                for (key, value) in &meta {
                    format::apply_meta(&mut draft, key, value).map_err(|e| {
                        self.refused(RefusalReason::invalid);
                        RequestError::query(key, e.reason)
                    })?;
                }
                vec![draft]
            }
        };
        Ok(ingest.ingest(&identity, Protocol::coap, drafts).await?)
    }

    /// Credentials that may read: any API key, or a device token (its own device only).
    async fn reader(&self, credentials: Option<&str>) -> Result<Identity, RequestError> {
        if credentials.is_none() {
            return Err(RequestError::MissingCredentials);
        }
        let identity = self.deps.auth.authenticate(credentials).await?;
        match identity {
            Identity::Anonymous { .. } => Err(RequestError::MissingCredentials),
            identity => Ok(identity),
        }
    }

    async fn list(
        &self,
        credentials: Option<&str>,
        mut query: ListQuery,
    ) -> Result<Outcome, RequestError> {
        let identity = self.reader(credentials).await?;
        query.device = scoped_device(&identity, query.device)?;
        let page = self
            .deps
            .store
            .list_events(identity.tenant(), &query)
            .await?;
        #[derive(serde::Serialize)]
        struct Page<'a> {
            events: &'a [Event],
            next: Option<String>,
        }
        let body = serde_json::to_vec(&Page {
            events: &page.events,
            next: page.next.as_ref().map(ingot_store::Cursor::encode),
        })
        .map_err(|e| RequestError::Internal(format!("cannot serialise a listing: {e}")))?;
        Ok(Outcome::Listed(Bytes::from(body)))
    }

    async fn latest(
        &self,
        credentials: Option<&str>,
        device: Option<String>,
    ) -> Result<Outcome, RequestError> {
        let identity = self.reader(credentials).await?;
        let Some(device) = scoped_device(&identity, device)? else {
            return Err(RequestError::query(
                "device",
                "is required with an API key: name the device to watch",
            ));
        };
        let query = ListQuery {
            device: Some(device.clone()),
            limit: 1,
            ..ListQuery::default()
        };
        let tenant = identity.tenant();
        let page = self.deps.store.list_events(tenant, &query).await?;
        let body = match page.events.first() {
            Some(event) => serde_json::to_vec(event),
            None => serde_json::to_vec(&serde_json::Value::Null),
        }
        .map_err(|e| RequestError::Internal(format!("cannot serialise an event: {e}")))?;
        Ok(Outcome::Latest {
            tenant,
            device,
            body: Bytes::from(body),
        })
    }
}

/// The device a read is limited to: a device token reads only its own.
fn scoped_device(
    identity: &Identity,
    asked: Option<String>,
) -> Result<Option<String>, RequestError> {
    match identity {
        Identity::Device { device, .. } => match asked {
            None => Ok(Some(device.clone())),
            Some(asked) if asked == *device => Ok(Some(asked)),
            Some(other) => Err(RequestError::Forbidden(format!(
                "a device token reads only its own events: this token is device `{device}`, not `{other}`"
            ))),
        },
        _ => Ok(asked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingot_core::TenantId;

    #[test]
    fn device_tokens_read_only_their_own_device() {
        let device = Identity::Device {
            tenant: TenantId(1),
            device: "probe-7".into(),
        };
        assert_eq!(
            scoped_device(&device, None).unwrap().as_deref(),
            Some("probe-7")
        );
        assert_eq!(
            scoped_device(&device, Some("probe-7".into()))
                .unwrap()
                .as_deref(),
            Some("probe-7")
        );
        let err = scoped_device(&device, Some("probe-8".into())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        let key = Identity::Key {
            tenant: TenantId(1),
            role: Role::Reader,
            key_id: "k".into(),
        };
        assert_eq!(scoped_device(&key, None).unwrap(), None);
        assert_eq!(
            scoped_device(&key, Some("x".into())).unwrap().as_deref(),
            Some("x")
        );
    }
}
