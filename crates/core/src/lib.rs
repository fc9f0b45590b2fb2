//! Ingot's event model, shared by every other crate.
//!
//! - [`event::Event`] is the canonical event every protocol produces and every store keeps.
//! - [`format`] maps what devices send (the canonical document, the collector format, flat
//!   telemetry documents, binary payloads) onto [`event::Draft`]s, with errors that name the
//!   field path and the reason.
//! - [`record`] is the compact binary encoding of an event inside the durable log.
//! - [`id::IdGenerator`] hands out time-ordered event ids; [`time::Timestamp`] is the one
//!   clock type (microseconds since the Unix epoch, RFC 3339 on the wire).
//! - [`error::ErrorKind`] is what every error enum of the workspace maps to, so the API can
//!   choose a status and sinks can choose to retry without knowing each crate's errors.
//!
//! This crate does no IO.

pub mod error;
pub mod event;
pub mod format;
pub mod id;
pub mod limits;
pub mod name;
pub mod record;
pub mod time;

pub use error::ErrorKind;
pub use event::{Draft, Event, JsonText, Payload, TenantId};
pub use id::{EventId, IdGenerator};
pub use limits::Limits;
pub use time::Timestamp;
