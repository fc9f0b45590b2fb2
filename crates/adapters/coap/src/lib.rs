//! Ingot's CoAP endpoint (RFC 7252 over UDP, default port 5683), for battery-powered
//! sensors and cameras.
//!
//! | resource | method | who | answer |
//! |---|---|---|---|
//! | `/events` | POST | device token, writer+ key, anyone with `--allow-anonymous` | 2.01 once durable, payload `{"ids":[...]}` |
//! | `/events?device=&limit=...` | GET | reader+ key; a device token for its own events | 2.05, the listing as JSON (Block2 when large) |
//! | `/events/latest?device=` | GET (+ Observe) | as above | 2.05, the newest event; with Observe=0 a notification per new event |
//! | `/health` | GET | anyone | 2.05 `ok` |
//! | `/.well-known/core` | GET | anyone | 2.05, link format |
//!
//! Credentials travel in the URI query (`?token=<device token or API key>`). Bodies are
//! JSON (Content-Format 50, also assumed when none is given), CBOR (60), or a binary format
//! (21, 22, 23, 42) whose event fields come from the query like the HTTP adapter's. Errors
//! carry a diagnostic payload with the same messages the HTTP API gives. `docs/coap.md`
//! describes the endpoint for users.
//!
//! # Layout
//!
//! - [`message`]: CoAP vocabulary over `coap-lite`'s codec (strict option reading, framing).
//! - [`engine`]: the sans-IO protocol state machine — deduplication, piggybacked and
//!   separate responses, Block1/Block2, Observe, back-pressure. No sockets, no clock.
//! - `worker`: runs the engine's jobs through `ingot-auth`, `ingot-ingest` (the one ingest
//!   path) and `ingot-store`. This crate owns no validation, tenancy or durability rule.
//! - `server`: [`serve`], the task that owns the socket and the engine.
//! - [`cbor`]: CBOR bodies mapped onto the same drafts as JSON bodies.
//!
//! # Guarantees
//!
//! - 2.01 is sent only after ingest returned, which is after the events are durable in
//!   the log; a retransmitted request is answered again from the deduplication state and
//!   never ingested twice.
//! - Work is bounded per endpoint and overall; beyond the bounds the answer is 5.03 with
//!   Max-Age. Memory for uploads, large responses, observers, endpoints and deduplication is
//!   bounded by [`CoapConfig`].
//! - A malformed datagram is ignored (or answered with RST if confirmable); it never stops
//!   the server. The datagram handler is fuzzed (`fuzz/`).

pub mod cbor;
mod config;
pub mod engine;
mod error;
pub mod message;
mod metrics;
mod server;
mod worker;

pub use config::{CoapConfig, ConfigErrors};
pub use error::{CborError, CoapError, RequestError};
pub use metrics::CoapMetrics;
pub use server::serve;
pub use worker::CoapDeps;
