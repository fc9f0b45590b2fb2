//! The sans-IO CoAP engine: datagrams and completed jobs in, datagrams and jobs out.
//!
//! [`Engine`] owns every piece of protocol state and touches no socket, clock or task:
//! the caller passes the peer, the bytes and the time, and gets back [`Output`] — the
//! datagrams to send and the [`Job`]s to run (authentication, ingest, listing), whose
//! [`Outcome`]s it hands back to [`Engine::complete`]. The server drives it from one task
//! (`server.rs`); the fuzz target and the unit tests drive it with synthetic time.
//!
//! # Invariants
//!
//! - **A request is processed at most once.** An exchange is identified by (peer, message
//!   id). While its job runs, a duplicate gets an empty ACK (CON) or nothing (NON); once
//!   answered, a duplicate CON gets the same bytes again and a duplicate NON nothing, for
//!   `EXCHANGE_LIFETIME` / `NON_LIFETIME` or until the bounded cache forgets it (oldest
//!   first). Running jobs are never forgotten: they are tracked apart from the cache.
//! - **Acknowledged means durable.** 2.01 is only built from an [`Outcome::Created`], which
//!   the job returns after ingest's durable append.
//! - **Bounded everything.** Jobs in flight (overall and per endpoint), Block1 uploads
//!   (count and bytes), Block2 representations (bytes), observers, endpoints and the
//!   deduplication cache all have limits from [`CoapConfig`]; beyond a work limit the answer
//!   is 5.03 with Max-Age, never a queue.
//! - **Input never panics the engine.** Malformed datagrams are counted and ignored, or
//!   answered with RST when they are confirmable.
//!
//! # Design choices
//!
//! - Piggybacked responses by default; a CON request whose job outlives
//!   `separate_response_after` gets an empty ACK and later a separate CON response,
//!   retransmitted until acknowledged. NON requests get NON responses.
//! - Message ids of server-originated messages come from a per-endpoint counter starting
//!   at a random value, so they stay unique per endpoint within `EXCHANGE_LIFETIME` at any
//!   global rate. Endpoint state is a few dozen bytes and is swept when idle.
//! - Block1 uploads are keyed by (peer, path and query), must arrive in order, and are
//!   authenticated at block 0 so nobody can make the server buffer a megabyte without
//!   credentials. Block2 representations get an ETag from their content (FNV-1a), so the
//!   same bytes always carry the same ETag.
//! - Observe notifications are NON, and CON at least every `observe_con_interval` (and
//!   never two CON at once) so an observer that vanished is noticed and dropped; an RST to
//!   a notification or a GET without Observe for the same token also ends it.

mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coap_lite::Packet;
use ingot_core::error::{ErrorExt, ErrorKind};
use ingot_core::{Event, EventId, TenantId, Timestamp, format, name};
use ingot_ingest::{IngestMetrics, Protocol, RefusalReason};
use ingot_store::{Cursor, ListQuery};

use self::state::{Dedup, Due, ExchangeKey, Outgoing, Purpose, Representations};
use crate::config::CoapConfig;
use crate::error::{CoapError, RequestError};
use crate::message::{
    self, Block, Kind, Method, Params, RawHeader, Request, Response, Token, Transmit, cf, code, opt,
};
use crate::metrics::CoapMetrics;

/// The most events one CoAP listing may return (a 1000-event page is a few hundred KB,
/// fetched in Block2 blocks).
pub const MAX_LIST_LIMIT: usize = 1000;

/// The page size of `GET /events` when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// How often expired state is swept.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How long Block2 representations are kept for their remaining blocks.
const REPRESENTATION_LIFETIME: Duration = Duration::from_secs(60);

/// Identifies a job handed out in [`Output::jobs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobId(u64);

/// How a request body is encoded.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyFormat {
    /// Content-Format 50 (or none): one JSON event or an array.
    Json,
    /// Content-Format 60: one CBOR map or an array.
    Cbor,
    /// A binary Content-Format: one event carrying the bytes, its fields from the query.
    Binary {
        /// The media type (`image/jpeg`).
        media_type: &'static str,
        /// `device`, `sensor`, `kind`, `ts`, `value`, `id` from the URI query.
        meta: Params,
    },
}

/// Work the engine needs done outside it (it needs the registry, the log or the store).
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Authenticate and ingest a whole body.
    Ingest {
        /// The `token=` of the URI query.
        credentials: Option<String>,
        /// The body (reassembled from Block1 blocks if it came in blocks).
        body: Bytes,
        /// Its encoding.
        format: BodyFormat,
    },
    /// Check that these credentials may ingest (before a Block1 upload is buffered).
    Authorize {
        /// The `token=` of the URI query.
        credentials: Option<String>,
    },
    /// List a tenant's newest events.
    List {
        /// The `token=` of the URI query.
        credentials: Option<String>,
        /// The listing (its device is narrowed to the caller's own for device tokens).
        query: ListQuery,
    },
    /// The newest event of one device.
    Latest {
        /// The `token=` of the URI query.
        credentials: Option<String>,
        /// The `device=` of the URI query (optional with a device token).
        device: Option<String>,
    },
}

/// A job to run; hand its [`Outcome`] to [`Engine::complete`].
#[derive(Debug)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What to do.
    pub work: Work,
}

/// The result of a [`Job`].
#[derive(Debug)]
pub enum Outcome {
    /// [`Work::Ingest`]: the events are durable; their ids in order.
    Created(Vec<EventId>),
    /// [`Work::Authorize`]: the credentials may ingest.
    Authorized,
    /// [`Work::List`]: the listing as JSON.
    Listed(Bytes),
    /// [`Work::Latest`]: the newest event as JSON (`null` if none), and whose it is.
    Latest {
        /// The caller's tenant.
        tenant: TenantId,
        /// The device.
        device: String,
        /// The event JSON.
        body: Bytes,
    },
    /// The job failed; the error decides the response.
    Failed(RequestError),
}

/// What the engine wants done: datagrams to send and jobs to run.
#[derive(Debug, Default)]
pub struct Output {
    /// Datagrams, in order.
    pub transmits: Vec<Transmit>,
    /// Jobs to run concurrently.
    pub jobs: Vec<Job>,
}

impl Output {
    fn send(&mut self, peer: SocketAddr, bytes: Bytes) {
        self.transmits.push(Transmit { peer, bytes });
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty() && self.jobs.is_empty()
    }
}

/// The addressing of one request: where to send its response and how.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    peer: SocketAddr,
    mid: u16,
    token: Token,
    con: bool,
}

/// What to do with a job's outcome.
#[derive(Debug)]
enum Then {
    /// Answer 2.01 (echoing Block1 for the last block of an upload).
    Created { block1: Option<Block> },
    /// Start a Block1 upload with its first block and answer 2.31.
    StartUpload {
        key: String,
        block: Block,
        first: Bytes,
        format: BodyFormat,
        credentials: Option<String>,
    },
    /// Answer 2.05 with the listing (in blocks if large).
    Listing {
        resource: String,
        block2: Option<Block>,
    },
    /// Answer 2.05 with the newest event; register an observer if asked.
    Latest {
        resource: String,
        block2: Option<Block>,
        observe: bool,
    },
}

/// A request whose job is running.
#[derive(Debug)]
struct Exchange {
    ctx: Ctx,
    /// An empty ACK was sent: the response goes as a separate CON.
    acked: bool,
    started: Instant,
    then: Then,
}

/// Per-client state: small, swept when idle.
#[derive(Debug)]
struct Endpoint {
    next_mid: u16,
    in_flight: u32,
    uploads: u32,
    observers: Vec<Token>,
    last_active: Instant,
}

/// A Block1 upload in progress.
#[derive(Debug)]
struct Upload {
    body: Vec<u8>,
    format: BodyFormat,
    credentials: Option<String>,
    last: Instant,
}

/// An Observe registration.
#[derive(Debug)]
struct Observer {
    tenant: TenantId,
    device: String,
    resource: String,
    szx: u8,
    seq: u32,
    last_con: Instant,
    /// Message id of the CON notification awaiting its ACK.
    pending: Option<u16>,
    /// Message id of the last notification (an RST to it ends the observation).
    last_mid: u16,
}

/// The sizes of an engine's state (see [`Engine::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Jobs running.
    pub in_flight: usize,
    /// Answered exchanges remembered for duplicate detection.
    pub remembered_exchanges: usize,
    /// Block1 uploads in progress.
    pub uploads: usize,
    /// Bytes of Block2 representations kept.
    pub representation_bytes: usize,
    /// Observe registrations.
    pub observers: usize,
    /// The server's confirmable messages awaiting an ACK.
    pub unacknowledged: usize,
    /// Client endpoints with state.
    pub endpoints: usize,
}

/// The CoAP protocol state machine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: CoapConfig,
    metrics: CoapMetrics,
    rng: u64,
    next_job: u64,
    next_observe: u32,
    jobs: HashMap<JobId, Exchange>,
    by_exchange: HashMap<ExchangeKey, JobId>,
    separate: VecDeque<(Instant, JobId)>,
    dedup: Dedup,
    endpoints: HashMap<SocketAddr, Endpoint>,
    uploads: HashMap<(SocketAddr, String), Upload>,
    representations: Representations,
    observers: HashMap<(SocketAddr, Token), Observer>,
    watched: HashMap<TenantId, HashMap<String, Vec<(SocketAddr, Token)>>>,
    outgoing: Outgoing,
    next_housekeeping: Option<Instant>,
    next_sweep: Option<Instant>,
    last_forced_sweep: Option<Instant>,
    draining: bool,
    scratch: Vec<Due>,
    refusals: Option<IngestMetrics>,
}

impl Engine {
    /// An engine with a validated configuration; `seed` randomises message ids.
    pub fn new(config: CoapConfig, metrics: CoapMetrics, seed: u64) -> Result<Engine, CoapError> {
        config.validate().map_err(CoapError::Config)?;
        Ok(Engine {
            dedup: Dedup::new(config.dedup_capacity),
            representations: Representations::new(
                config.block2_cache_bytes,
                REPRESENTATION_LIFETIME,
            ),
            outgoing: Outgoing::new(config.max_retransmit),
            config,
            metrics,
            rng: seed | 1,
            next_job: 0,
            next_observe: 2,
            jobs: HashMap::new(),
            by_exchange: HashMap::new(),
            separate: VecDeque::new(),
            endpoints: HashMap::new(),
            uploads: HashMap::new(),
            observers: HashMap::new(),
            watched: HashMap::new(),
            next_housekeeping: None,
            next_sweep: None,
            last_forced_sweep: None,
            draining: false,
            scratch: Vec::new(),
            refusals: None,
        })
    }

    /// Counts the POST refusals the engine decides itself (unsupported Content-Format, a
    /// body over the limit, bad query parameters, overload) in ingest's refusal counters,
    /// as the HTTP adapter does; refusals after parsing are counted by ingest.
    pub fn count_refusals(&mut self, metrics: IngestMetrics) {
        self.refusals = Some(metrics);
    }

    /// Jobs handed out and not completed yet.
    pub fn in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// Current Observe registrations (the server subscribes to the live feed only while
    /// there are some).
    pub fn observer_count(&self) -> usize {
        self.observers.len()
    }

    /// The sizes of the engine's state, to check that it stays bounded.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            in_flight: self.jobs.len(),
            remembered_exchanges: self.dedup.len(),
            uploads: self.uploads.len(),
            representation_bytes: self.representations.bytes(),
            observers: self.observers.len(),
            unacknowledged: self.outgoing.len(),
            endpoints: self.endpoints.len(),
        }
    }

    /// When [`Engine::on_timer`] should run next.
    pub fn next_timer(&self) -> Option<Instant> {
        [
            self.separate.front().map(|(t, _)| *t),
            self.outgoing.next_due(),
            self.next_housekeeping,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles one received datagram.
    pub fn handle_datagram(
        &mut self,
        peer: SocketAddr,
        datagram: &[u8],
        now: Instant,
        out: &mut Output,
    ) {
        self.schedule_housekeeping(now);
        let Some(header) = RawHeader::read(datagram) else {
            self.metrics.malformed();
            return;
        };
        if header.version != 1 {
            // RFC 7252 §3: messages with an unknown version are silently ignored.
            self.metrics.malformed();
            return;
        }
        let Ok(mut packet) = Packet::from_bytes(datagram) else {
            self.reject(peer, header, out);
            return;
        };
        if message::marker_without_payload(datagram) {
            self.reject(peer, header, out);
            return;
        }
        if header.code == 0 {
            if datagram.len() != 4 {
                // An empty message is only the 4-byte header (RFC 7252 §4.1).
                self.reject(peer, header, out);
                return;
            }
            match header.kind {
                // A CoAP ping: answered with RST.
                Kind::Con => out.send(peer, message::empty(Kind::Rst, header.mid)),
                Kind::Non => self.metrics.malformed(),
                Kind::Ack => self.on_ack(peer, header.mid),
                Kind::Rst => self.on_reset(peer, header.mid),
            }
            return;
        }
        match (header.code >> 5, header.kind) {
            (0, Kind::Con | Kind::Non) => self.on_request(peer, header, &mut packet, now, out),
            // Responses: this server sends no requests, so none is expected. A CON one is
            // rejected, anything else ignored (RFC 7252 §4.2, §4.3).
            (2 | 4 | 5, Kind::Con) => out.send(peer, message::empty(Kind::Rst, header.mid)),
            (2 | 4 | 5, _) => {}
            _ => self.reject(peer, header, out),
        }
    }

    /// A message format error: RST if it is confirmable, ignored otherwise.
    fn reject(&mut self, peer: SocketAddr, header: RawHeader, out: &mut Output) {
        self.metrics.malformed();
        if header.kind == Kind::Con {
            out.send(peer, message::empty(Kind::Rst, header.mid));
        }
    }

    fn on_ack(&mut self, peer: SocketAddr, mid: u16) {
        if let Some(Purpose::Notification(token)) = self.outgoing.settle(&(peer, mid))
            && let Some(observer) = self.observers.get_mut(&(peer, token))
            && observer.pending == Some(mid)
        {
            observer.pending = None;
        }
    }

    fn on_reset(&mut self, peer: SocketAddr, mid: u16) {
        let purpose = self.outgoing.settle(&(peer, mid));
        let token = match purpose {
            Some(Purpose::Notification(token)) => Some(token),
            Some(Purpose::Response) => None,
            // An RST to a NON notification also ends the observation (RFC 7641 §3.6).
            None => self.endpoints.get(&peer).and_then(|e| {
                e.observers.iter().copied().find(|t| {
                    self.observers
                        .get(&(peer, *t))
                        .is_some_and(|o| o.last_mid == mid)
                })
            }),
        };
        if let Some(token) = token {
            self.remove_observer(peer, token);
        }
    }

    fn on_request(
        &mut self,
        peer: SocketAddr,
        header: RawHeader,
        packet: &mut Packet,
        now: Instant,
        out: &mut Output,
    ) {
        let key = (peer, header.mid);
        let con = header.kind == Kind::Con;
        if let Some(&id) = self.by_exchange.get(&key) {
            // A retransmission while the job runs: stop the client's retransmissions with
            // an empty ACK; the response follows as a separate message.
            self.metrics.duplicate();
            if con && let Some(exchange) = self.jobs.get_mut(&id) {
                exchange.acked = true;
                out.send(peer, message::empty(Kind::Ack, header.mid));
            }
            return;
        }
        if let Some(answer) = self.dedup.get(&key, now) {
            self.metrics.duplicate();
            if con && let Some(bytes) = answer {
                out.send(peer, bytes.clone());
            }
            return;
        }
        let method = Method::from_code(header.code);
        self.metrics.request(method.name());
        let ctx = Ctx {
            peer,
            mid: header.mid,
            token: Token::of(packet),
            con,
        };
        if !self.touch_endpoint(peer, now) {
            let error = RequestError::Overloaded {
                max_age: self.config.overload_max_age_secs(),
            };
            if con {
                self.reply(ctx, Response::error(&error), now, out);
            }
            return;
        }
        let payload = Bytes::from(std::mem::take(&mut packet.payload));
        let result = message::parse_request(packet)
            .and_then(|request| self.route(ctx, request, payload, now, out));
        if let Err(error) = result {
            self.reply(ctx, Response::error(&error), now, out);
        }
    }

    /// Routes a request; an error is answered by the caller.
    fn route(
        &mut self,
        ctx: Ctx,
        request: Request,
        payload: Bytes,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        let path: Vec<&str> = request
            .path
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        let not_allowed = |allowed| RequestError::MethodNotAllowed {
            method: request.method.name(),
            path: request.path_text(),
            allowed,
        };
        match (path.as_slice(), request.method) {
            (["events"], Method::Post) => {
                let result = self.post(ctx, &request, payload, now, out);
                if let (Err(error), Some(metrics)) = (&result, &self.refusals) {
                    let reason = match error.kind() {
                        ErrorKind::TooLarge => RefusalReason::too_large,
                        ErrorKind::UnsupportedMediaType => RefusalReason::media_type,
                        ErrorKind::Unavailable => RefusalReason::unavailable,
                        ErrorKind::RateLimited => RefusalReason::rate_limited,
                        _ => RefusalReason::invalid,
                    };
                    metrics.refused(Protocol::coap, reason);
                }
                result
            }
            (["events"], Method::Get) => self.list(ctx, &request, now, out),
            (["events"], _) => Err(not_allowed("GET or POST")),
            (["events", "latest"], Method::Get) => self.latest(ctx, &request, now, out),
            (["events", "latest"], _) => Err(not_allowed("GET")),
            (["health"], Method::Get) => {
                if self.draining {
                    return Err(self.shutting_down());
                }
                accept(&request, cf::TEXT, "0 (text/plain)")?;
                let response = Response::new(code::CONTENT)
                    .with_uint(opt::CONTENT_FORMAT, u32::from(cf::TEXT))
                    .with_payload(&b"ok"[..]);
                self.reply(ctx, response, now, out);
                Ok(())
            }
            (["health"], _) => Err(not_allowed("GET")),
            ([".well-known", "core"], Method::Get) => {
                accept(&request, cf::LINK_FORMAT, "40 (application/link-format)")?;
                let links = "</events>;rt=\"ingot.events\";ct=\"50 60\",\
                             </events/latest>;rt=\"ingot.event\";obs;ct=50,</health>;ct=0";
                let response = Response::new(code::CONTENT)
                    .with_uint(opt::CONTENT_FORMAT, u32::from(cf::LINK_FORMAT))
                    .with_payload(links.as_bytes().to_vec());
                self.reply(ctx, response, now, out);
                Ok(())
            }
            ([".well-known", "core"], _) => Err(not_allowed("GET")),
            _ => Err(RequestError::NotFound {
                path: request.path_text(),
            }),
        }
    }

    fn post(
        &mut self,
        ctx: Ctx,
        request: &Request,
        payload: Bytes,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        accept(request, cf::JSON, "50 (application/json)")?;
        let (credentials, params) = split_credentials(&request.query)?;
        let format = match request.content_format {
            None | Some(cf::JSON) => BodyFormat::Json,
            Some(cf::CBOR) => BodyFormat::Cbor,
            Some(n) => match cf::binary_media_type(n) {
                Some(media_type) => BodyFormat::Binary {
                    media_type,
                    meta: params.clone(),
                },
                None => return Err(RequestError::UnsupportedFormat { format: n }),
            },
        };
        if let Some((name, _)) = params.first()
            && !matches!(format, BodyFormat::Binary { .. })
        {
            let body = if format == BodyFormat::Cbor {
                "CBOR"
            } else {
                "JSON"
            };
            return Err(RequestError::query(
                name,
                format!("is not accepted with a {body} body: put the fields in the event"),
            ));
        }
        let max = self.config.max_body_bytes;
        let announced = request.size1.map(|s| s as usize);
        if let Some(size) = announced.filter(|&s| s > max) {
            self.drop_upload(ctx.peer, &request.resource_key());
            return Err(RequestError::BodyTooLarge { size, max });
        }
        let Some(block) = request.block1 else {
            if payload.len() > max {
                return Err(RequestError::BodyTooLarge {
                    size: payload.len(),
                    max,
                });
            }
            let work = Work::Ingest {
                credentials,
                body: payload,
                format,
            };
            return self.dispatch(ctx, work, Then::Created { block1: None }, now, out);
        };
        self.upload_block(ctx, request, block, payload, credentials, format, now, out)
    }

    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn upload_block(
        &mut self,
        ctx: Ctx,
        request: &Request,
        block: Block,
        payload: Bytes,
        credentials: Option<String>,
        format: BodyFormat,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        let key = request.resource_key();
        let max = self.config.max_body_bytes;
        let short_block = |block: Block, len: usize| {
            RequestError::ShortBlock(format!(
                "block {} carries {len} bytes but its size is {}: every block but the last must be full",
                block.num,
                block.size()
            ))
        };
        if block.num == 0 {
            self.drop_upload(ctx.peer, &key);
            if !block.more {
                // The whole body in one block.
                let work = Work::Ingest {
                    credentials,
                    body: payload,
                    format,
                };
                return self.dispatch(
                    ctx,
                    work,
                    Then::Created {
                        block1: Some(block),
                    },
                    now,
                    out,
                );
            }
            if payload.len() != block.size() {
                return Err(short_block(block, payload.len()));
            }
            self.upload_room(ctx.peer)?;
            let then = Then::StartUpload {
                key,
                block,
                first: payload,
                format,
                credentials: credentials.clone(),
            };
            return self.dispatch(ctx, Work::Authorize { credentials }, then, now, out);
        }
        let upload_key = (ctx.peer, key);
        let Some(upload) = self.uploads.get(&upload_key) else {
            return Err(RequestError::Incomplete(format!(
                "block {} belongs to no upload in progress: start again with block 0 (an upload expires {} s after its last block)",
                block.num,
                self.config.block_transfer_timeout.as_secs()
            )));
        };
        let offset = block.offset();
        let received = upload.body.len();
        let continue_ = Response::new(code::CONTINUE).with(opt::BLOCK1, block.encode());
        if offset < received && offset + payload.len() <= received {
            // A block received before, sent again under a new message id: acknowledge it again.
            if let Some(upload) = self.uploads.get_mut(&upload_key) {
                upload.last = now;
            }
            self.reply(ctx, continue_, now, out);
            return Ok(());
        }
        let refusal = if offset != received {
            Some(RequestError::Incomplete(format!(
                "block {} starts at byte {offset} but {received} bytes were received: blocks must arrive in order; start again with block 0",
                block.num
            )))
        } else if block.more && payload.len() != block.size() {
            Some(short_block(block, payload.len()))
        } else if received + payload.len() > max {
            Some(RequestError::BodyTooLarge {
                size: received + payload.len(),
                max,
            })
        } else {
            None
        };
        if let Some(error) = refusal {
            self.drop_upload(ctx.peer, &upload_key.1);
            return Err(error);
        }
        if block.more {
            if let Some(upload) = self.uploads.get_mut(&upload_key) {
                upload.body.extend_from_slice(&payload);
                upload.last = now;
            }
            self.reply(ctx, continue_, now, out);
            return Ok(());
        }
        // Admission is checked before the upload is consumed, so a 5.03 lets the client
        // resend the last block later.
        self.admit(ctx.peer)?;
        let Some(upload) = self.take_upload(ctx.peer, &upload_key.1) else {
            return Err(RequestError::Internal("the upload vanished".into()));
        };
        let mut body = upload.body;
        body.extend_from_slice(&payload);
        let work = Work::Ingest {
            credentials: upload.credentials,
            body: Bytes::from(body),
            format: upload.format,
        };
        self.dispatch(
            ctx,
            work,
            Then::Created {
                block1: Some(block),
            },
            now,
            out,
        )
    }

    fn list(
        &mut self,
        ctx: Ctx,
        request: &Request,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        accept(request, cf::JSON, "50 (application/json)")?;
        let (credentials, params) = split_credentials(&request.query)?;
        let query = parse_list_query(&params)?;
        let resource = request.resource_key();
        if self.serve_cached_block(ctx, request, &resource, now, out)? {
            return Ok(());
        }
        let then = Then::Listing {
            resource,
            block2: request.block2,
        };
        self.dispatch(ctx, Work::List { credentials, query }, then, now, out)
    }

    fn latest(
        &mut self,
        ctx: Ctx,
        request: &Request,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        accept(request, cf::JSON, "50 (application/json)")?;
        let (credentials, params) = split_credentials(&request.query)?;
        let mut device = None;
        for (key, value) in &params {
            match key.as_str() {
                "device" => {
                    name::validate(value).map_err(|r| RequestError::query(key, r))?;
                    device = Some(value.clone());
                }
                other => {
                    return Err(RequestError::query(
                        other,
                        "is not supported (use device, token)",
                    ));
                }
            }
        }
        let first_block = request.block2.is_none_or(|b| b.num == 0);
        let register = request.observe == Some(0) && first_block;
        if !register && first_block {
            // Observe=1, or a plain GET with the same token, ends a registration (RFC 7641
            // §3.6, §4.1); block requests for the rest of a notification do not.
            self.remove_observer(ctx.peer, ctx.token);
        }
        let resource = request.resource_key();
        if self.serve_cached_block(ctx, request, &resource, now, out)? {
            return Ok(());
        }
        let then = Then::Latest {
            resource,
            block2: request.block2,
            observe: register,
        };
        self.dispatch(
            ctx,
            Work::Latest {
                credentials,
                device,
            },
            then,
            now,
            out,
        )
    }

    /// Answers a Block2 request for a later block from the kept representation, if there
    /// is one. Returns whether it answered.
    fn serve_cached_block(
        &mut self,
        ctx: Ctx,
        request: &Request,
        resource: &str,
        now: Instant,
        out: &mut Output,
    ) -> Result<bool, RequestError> {
        let Some(block) = request.block2.filter(|b| b.num > 0) else {
            return Ok(false);
        };
        let Some(rep) = self.representations.get(ctx.peer, resource, now) else {
            return Ok(false);
        };
        let szx = block.szx.min(self.config.block_szx());
        let response = block_response(
            &rep.body,
            rep.etag,
            rep.content_format,
            block.num,
            szx,
            None,
        )?;
        self.reply(ctx, response, now, out);
        Ok(true)
    }

    /// Checks the work limits for a new job of `peer`.
    fn admit(&self, peer: SocketAddr) -> Result<(), RequestError> {
        if self.draining {
            return Err(self.shutting_down());
        }
        let busy = self.jobs.len() >= self.config.max_in_flight
            || self
                .endpoints
                .get(&peer)
                .is_some_and(|e| e.in_flight as usize >= self.config.max_in_flight_per_endpoint);
        if busy {
            return Err(RequestError::Overloaded {
                max_age: self.config.overload_max_age_secs(),
            });
        }
        Ok(())
    }

    fn shutting_down(&self) -> RequestError {
        RequestError::ShuttingDown {
            max_age: self.config.overload_max_age_secs(),
        }
    }

    /// Checks the Block1 upload limits for a new upload of `peer`.
    fn upload_room(&self, peer: SocketAddr) -> Result<(), RequestError> {
        let full = self.uploads.len() >= self.config.max_block_transfers
            || self.endpoints.get(&peer).is_some_and(|e| {
                e.uploads as usize >= self.config.max_block_transfers_per_endpoint
            });
        if full {
            return Err(RequestError::Overloaded {
                max_age: self.config.overload_max_age_secs(),
            });
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        ctx: Ctx,
        work: Work,
        then: Then,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), RequestError> {
        self.admit(ctx.peer)?;
        let id = JobId(self.next_job);
        self.next_job += 1;
        let mut acked = false;
        if ctx.con {
            if self.config.separate_response_after.is_zero() {
                acked = true;
                out.send(ctx.peer, message::empty(Kind::Ack, ctx.mid));
            } else {
                self.separate
                    .push_back((now + self.config.separate_response_after, id));
            }
        }
        self.jobs.insert(
            id,
            Exchange {
                ctx,
                acked,
                started: now,
                then,
            },
        );
        self.by_exchange.insert((ctx.peer, ctx.mid), id);
        if let Some(endpoint) = self.endpoints.get_mut(&ctx.peer) {
            endpoint.in_flight += 1;
        }
        self.metrics.set_in_flight(self.jobs.len());
        out.jobs.push(Job { id, work });
        Ok(())
    }

    /// Hands back a job's outcome; unknown ids are ignored.
    pub fn complete(&mut self, id: JobId, outcome: Outcome, now: Instant, out: &mut Output) {
        let Some(exchange) = self.jobs.remove(&id) else {
            return;
        };
        let ctx = exchange.ctx;
        self.by_exchange.remove(&(ctx.peer, ctx.mid));
        if let Some(endpoint) = self.endpoints.get_mut(&ctx.peer) {
            endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
            endpoint.last_active = now;
        }
        self.metrics.set_in_flight(self.jobs.len());
        self.metrics.observe_seconds(
            now.saturating_duration_since(exchange.started)
                .as_secs_f64(),
        );
        let response = match self.respond(ctx, exchange.then, outcome, now) {
            Ok(response) => response,
            Err(error) => {
                if error.kind() == ErrorKind::Internal {
                    tracing::error!(%error, peer = %ctx.peer, "CoAP request failed");
                }
                Response::error(&error)
            }
        };
        self.send_response(ctx, exchange.acked, response, now, out);
    }

    fn respond(
        &mut self,
        ctx: Ctx,
        then: Then,
        outcome: Outcome,
        now: Instant,
    ) -> Result<Response, RequestError> {
        match (then, outcome) {
            (_, Outcome::Failed(error)) => Err(error),
            (Then::Created { block1 }, Outcome::Created(ids)) => {
                let mut response = Response::new(code::CREATED)
                    .with_uint(opt::CONTENT_FORMAT, u32::from(cf::JSON))
                    .with_payload(ids_payload(&ids, self.config.block_size));
                if let Some(block) = block1 {
                    response = response.with(opt::BLOCK1, block.encode());
                }
                Ok(response)
            }
            (
                Then::StartUpload {
                    key,
                    block,
                    first,
                    format,
                    credentials,
                },
                Outcome::Authorized,
            ) => {
                if self.draining {
                    return Err(self.shutting_down());
                }
                self.upload_room(ctx.peer)?;
                let replaced = self.uploads.insert(
                    (ctx.peer, key),
                    Upload {
                        body: first.to_vec(),
                        format,
                        credentials,
                        last: now,
                    },
                );
                if replaced.is_none()
                    && let Some(endpoint) = self.endpoints.get_mut(&ctx.peer)
                {
                    endpoint.uploads += 1;
                }
                self.metrics.set_block_transfers(self.uploads.len());
                Ok(Response::new(code::CONTINUE).with(opt::BLOCK1, block.encode()))
            }
            (Then::Listing { resource, block2 }, Outcome::Listed(body)) => {
                self.content(ctx.peer, resource, body, block2, None, now)
            }
            (
                Then::Latest {
                    resource,
                    block2,
                    observe,
                },
                Outcome::Latest {
                    tenant,
                    device,
                    body,
                },
            ) => {
                let szx = block2.map_or(self.config.block_szx(), |b| {
                    b.szx.min(self.config.block_szx())
                });
                let seq = if observe && !self.draining {
                    self.register_observer(ctx, tenant, device, resource.clone(), szx, now)
                } else {
                    None
                };
                self.content(ctx.peer, resource, body, block2, seq, now)
            }
            (_, outcome) => Err(RequestError::Internal(format!(
                "a job's outcome does not fit its request: {outcome:?}"
            ))),
        }
    }

    /// A 2.05 response with `body`, the requested block of it if it does not fit one.
    fn content(
        &mut self,
        peer: SocketAddr,
        resource: String,
        body: Bytes,
        block2: Option<Block>,
        observe: Option<u32>,
        now: Instant,
    ) -> Result<Response, RequestError> {
        let szx = block2.map_or(self.config.block_szx(), |b| {
            b.szx.min(self.config.block_szx())
        });
        let num = block2.map_or(0, |b| b.num);
        if num == 0 && body.len() <= 16 << szx {
            let mut response =
                Response::new(code::CONTENT).with_uint(opt::CONTENT_FORMAT, u32::from(cf::JSON));
            if let Some(seq) = observe {
                response = response.with_uint(opt::OBSERVE, seq);
            }
            return Ok(response.with_payload(body));
        }
        let etag = etag(&body);
        let response = block_response(&body, etag, cf::JSON, num, szx, observe)?;
        self.representations
            .insert(peer, resource, body, etag, cf::JSON, now);
        Ok(response)
    }

    /// Sends the final response of an exchange and remembers it for duplicates.
    fn send_response(
        &mut self,
        ctx: Ctx,
        acked: bool,
        response: Response,
        now: Instant,
        out: &mut Output,
    ) {
        self.metrics.response(code::name(response.code));
        if ctx.con && !acked {
            let bytes = frame(Kind::Ack, ctx.mid, ctx.token, &response);
            out.send(ctx.peer, bytes.clone());
            self.dedup.insert(
                (ctx.peer, ctx.mid),
                Some(bytes),
                now + self.config.exchange_lifetime,
            );
        } else if ctx.con {
            let mid = self.next_mid(ctx.peer);
            let bytes = frame(Kind::Con, mid, ctx.token, &response);
            out.send(ctx.peer, bytes.clone());
            let timeout = self.first_timeout();
            self.outgoing
                .track((ctx.peer, mid), bytes, Purpose::Response, timeout, now);
            self.dedup.insert(
                (ctx.peer, ctx.mid),
                Some(message::empty(Kind::Ack, ctx.mid)),
                now + self.config.exchange_lifetime,
            );
        } else {
            let mid = self.next_mid(ctx.peer);
            out.send(ctx.peer, frame(Kind::Non, mid, ctx.token, &response));
            self.dedup
                .insert((ctx.peer, ctx.mid), None, now + self.config.non_lifetime);
        }
    }

    /// Answers a request at once (piggybacked on the ACK, or NON).
    fn reply(&mut self, ctx: Ctx, response: Response, now: Instant, out: &mut Output) {
        self.send_response(ctx, false, response, now, out);
    }

    fn register_observer(
        &mut self,
        ctx: Ctx,
        tenant: TenantId,
        device: String,
        resource: String,
        szx: u8,
        now: Instant,
    ) -> Option<u32> {
        let key = (ctx.peer, ctx.token);
        self.remove_observer(ctx.peer, ctx.token);
        let endpoint_full = self
            .endpoints
            .get(&ctx.peer)
            .is_none_or(|e| e.observers.len() >= self.config.max_observers_per_endpoint);
        if self.observers.len() >= self.config.max_observers || endpoint_full {
            // Not added to the list: the response goes without Observe (RFC 7641 §4.1).
            return None;
        }
        let seq = self.next_observe & 0xFF_FFFF;
        self.next_observe = self.next_observe.wrapping_add(1);
        self.watched
            .entry(tenant)
            .or_default()
            .entry(device.clone())
            .or_default()
            .push(key);
        self.observers.insert(
            key,
            Observer {
                tenant,
                device,
                resource,
                szx,
                seq,
                last_con: now,
                pending: None,
                last_mid: 0,
            },
        );
        if let Some(endpoint) = self.endpoints.get_mut(&ctx.peer) {
            endpoint.observers.push(ctx.token);
        }
        self.metrics.set_observers(self.observers.len());
        Some(seq)
    }

    fn remove_observer(&mut self, peer: SocketAddr, token: Token) {
        let Some(observer) = self.observers.remove(&(peer, token)) else {
            return;
        };
        if let Some(devices) = self.watched.get_mut(&observer.tenant) {
            if let Some(keys) = devices.get_mut(&observer.device) {
                keys.retain(|k| *k != (peer, token));
                if keys.is_empty() {
                    devices.remove(&observer.device);
                }
            }
            if devices.is_empty() {
                self.watched.remove(&observer.tenant);
            }
        }
        if let Some(mid) = observer.pending {
            self.outgoing.settle(&(peer, mid));
        }
        if let Some(endpoint) = self.endpoints.get_mut(&peer) {
            endpoint.observers.retain(|t| *t != token);
        }
        self.metrics.set_observers(self.observers.len());
    }

    /// Notifies the observers of `event`'s device.
    pub fn notify(&mut self, event: &Event, now: Instant, out: &mut Output) {
        let Some(keys) = self
            .watched
            .get(&event.tenant)
            .and_then(|devices| devices.get(event.device.as_str()))
        else {
            return;
        };
        let keys = keys.clone();
        let body = match serde_json::to_vec(event) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::error!(%error, "cannot serialise an event for its observers");
                return;
            }
        };
        for (peer, token) in keys {
            self.notify_one(peer, token, body.clone(), now, out);
        }
    }

    fn notify_one(
        &mut self,
        peer: SocketAddr,
        token: Token,
        body: Bytes,
        now: Instant,
        out: &mut Output,
    ) {
        let Some(observer) = self.observers.get_mut(&(peer, token)) else {
            return;
        };
        observer.seq = (observer.seq + 1) & 0xFF_FFFF;
        let seq = observer.seq;
        let con = observer.pending.is_none()
            && now.saturating_duration_since(observer.last_con) >= self.config.observe_con_interval;
        let resource = observer.resource.clone();
        let szx = observer.szx;
        let block2 = Some(Block {
            num: 0,
            more: false,
            szx,
        });
        let response = match self.content(peer, resource, body, block2, Some(seq), now) {
            Ok(response) => response,
            Err(error) => Response::error(&error),
        };
        let mid = self.next_mid(peer);
        let kind = if con { Kind::Con } else { Kind::Non };
        let bytes = frame(kind, mid, token, &response);
        if con {
            let timeout = self.first_timeout();
            self.outgoing.track(
                (peer, mid),
                bytes.clone(),
                Purpose::Notification(token),
                timeout,
                now,
            );
        }
        if let Some(observer) = self.observers.get_mut(&(peer, token)) {
            observer.last_mid = mid;
            if con {
                observer.pending = Some(mid);
                observer.last_con = now;
            }
        }
        self.metrics.notification();
        out.send(peer, bytes);
    }

    /// Runs what is due at `now`: separate-response ACKs, retransmissions, expiry.
    pub fn on_timer(&mut self, now: Instant, out: &mut Output) {
        while let Some(&(due, id)) = self.separate.front() {
            if due > now {
                break;
            }
            self.separate.pop_front();
            if let Some(exchange) = self.jobs.get_mut(&id)
                && !exchange.acked
            {
                exchange.acked = true;
                out.send(
                    exchange.ctx.peer,
                    message::empty(Kind::Ack, exchange.ctx.mid),
                );
            }
        }
        let mut due = std::mem::take(&mut self.scratch);
        self.outgoing.due(now, &mut due);
        for item in due.drain(..) {
            match item {
                Due::Resend(peer, bytes) => {
                    self.metrics.retransmission();
                    out.send(peer, bytes);
                }
                Due::GaveUp(peer, Purpose::Notification(token)) => {
                    // The observer never acknowledged: it is gone (RFC 7641 §4.5).
                    self.remove_observer(peer, token);
                }
                Due::GaveUp(_, Purpose::Response) => {}
            }
        }
        self.scratch = due;
        if self.next_housekeeping.is_some_and(|t| t <= now) {
            self.next_housekeeping = Some(now + HOUSEKEEPING);
            self.housekeeping(now);
        }
    }

    fn schedule_housekeeping(&mut self, now: Instant) {
        if self.next_housekeeping.is_none() {
            self.next_housekeeping = Some(now + HOUSEKEEPING);
        }
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_interval());
        }
    }

    fn sweep_interval(&self) -> Duration {
        (self.config.exchange_lifetime / 4).max(HOUSEKEEPING)
    }

    fn housekeeping(&mut self, now: Instant) {
        self.dedup.expire(now);
        self.representations.expire(now);
        let timeout = self.config.block_transfer_timeout;
        let expired: Vec<(SocketAddr, String)> = self
            .uploads
            .iter()
            .filter(|(_, u)| now.saturating_duration_since(u.last) >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for (peer, key) in expired {
            self.drop_upload(peer, &key);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = Some(now + self.sweep_interval());
            self.sweep_endpoints(now);
        }
    }

    /// Forgets endpoints with nothing in progress that have been quiet for an exchange
    /// lifetime (their message ids can no longer be confused).
    fn sweep_endpoints(&mut self, now: Instant) {
        let lifetime = self.config.exchange_lifetime;
        self.endpoints.retain(|_, e| {
            e.in_flight > 0
                || e.uploads > 0
                || !e.observers.is_empty()
                || now.saturating_duration_since(e.last_active) < lifetime
        });
        self.metrics.set_endpoints(self.endpoints.len());
    }

    /// Marks `peer` active, creating its state; false if the endpoint table is full.
    fn touch_endpoint(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if let Some(endpoint) = self.endpoints.get_mut(&peer) {
            endpoint.last_active = now;
            return true;
        }
        if self.endpoints.len() >= self.config.max_endpoints {
            let recently = self
                .last_forced_sweep
                .is_some_and(|t| now.saturating_duration_since(t) < HOUSEKEEPING);
            if !recently {
                self.last_forced_sweep = Some(now);
                self.sweep_endpoints(now);
            }
            if self.endpoints.len() >= self.config.max_endpoints {
                return false;
            }
        }
        let next_mid = self.random() as u16;
        self.endpoints.insert(
            peer,
            Endpoint {
                next_mid,
                in_flight: 0,
                uploads: 0,
                observers: Vec::new(),
                last_active: now,
            },
        );
        self.metrics.set_endpoints(self.endpoints.len());
        true
    }

    fn next_mid(&mut self, peer: SocketAddr) -> u16 {
        match self.endpoints.get_mut(&peer) {
            Some(endpoint) => {
                endpoint.next_mid = endpoint.next_mid.wrapping_add(1);
                endpoint.next_mid
            }
            // Only reachable for a peer swept meanwhile; a random id is as good as any.
            None => self.random() as u16,
        }
    }

    fn drop_upload(&mut self, peer: SocketAddr, key: &str) {
        self.take_upload(peer, key);
    }

    fn take_upload(&mut self, peer: SocketAddr, key: &str) -> Option<Upload> {
        let upload = self.uploads.remove(&(peer, key.to_owned()))?;
        if let Some(endpoint) = self.endpoints.get_mut(&peer) {
            endpoint.uploads = endpoint.uploads.saturating_sub(1);
        }
        self.metrics.set_block_transfers(self.uploads.len());
        Some(upload)
    }

    /// The first retransmission timeout: `ACK_TIMEOUT` times a random factor in [1, 1.5).
    fn first_timeout(&mut self) -> Duration {
        let factor = 1.0 + (self.random() % 1000) as f64 / 2000.0;
        self.config.ack_timeout.mul_f64(factor)
    }

    /// xorshift64*: message ids and timeouts only need to be unpredictable-ish, not secret.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Stops taking new work: new requests get 5.03, observers get a last 5.03 notification
    /// and are dropped, uploads are dropped. Running jobs still complete.
    pub fn begin_shutdown(&mut self, out: &mut Output) {
        self.draining = true;
        let keys: Vec<(SocketAddr, Token)> = self.observers.keys().copied().collect();
        let response = Response::error(&self.shutting_down());
        for (peer, token) in keys {
            let mid = self.next_mid(peer);
            out.send(peer, frame(Kind::Non, mid, token, &response));
            self.remove_observer(peer, token);
        }
        let uploads: Vec<(SocketAddr, String)> = self.uploads.keys().cloned().collect();
        for (peer, key) in uploads {
            self.drop_upload(peer, &key);
        }
    }
}

/// Checks the Accept option against what a resource answers in.
fn accept(request: &Request, format: u16, offered: &'static str) -> Result<(), RequestError> {
    match request.accept {
        Some(accept) if accept != format => Err(RequestError::NotAcceptable { accept, offered }),
        _ => Ok(()),
    }
}

/// Takes `token=` out of the query.
fn split_credentials(query: &[(String, String)]) -> Result<(Option<String>, Params), RequestError> {
    let mut credentials = None;
    let mut rest = Vec::new();
    for (key, value) in query {
        if key == "token" {
            if credentials.is_some() {
                return Err(RequestError::query("token", "is given more than once"));
            }
            credentials = Some(value.clone());
        } else {
            rest.push((key.clone(), value.clone()));
        }
    }
    Ok((credentials, rest))
}

fn parse_time(name: &str, text: &str) -> Result<Timestamp, RequestError> {
    if let Ok(n) = text.parse::<f64>() {
        return format::number_ts(n)
            .ok_or_else(|| RequestError::query(name, "is not a valid Unix time"));
    }
    Timestamp::parse_rfc3339(text)
        .map_err(|e| RequestError::query(name, format!("is not a valid time: {e}")))
}

/// The parameters of `GET /events`, as the HTTP listing reads them (with a smaller page).
pub(crate) fn parse_list_query(params: &[(String, String)]) -> Result<ListQuery, RequestError> {
    let mut query = ListQuery {
        limit: DEFAULT_LIST_LIMIT,
        ..ListQuery::default()
    };
    for (key, value) in params {
        let checked_name = || -> Result<Option<String>, RequestError> {
            if value.is_empty() {
                return Ok(None);
            }
            name::validate(value).map_err(|r| RequestError::query(key, r))?;
            Ok(Some(value.clone()))
        };
        match key.as_str() {
            "device" => query.device = checked_name()?,
            "sensor" => query.sensor = checked_name()?,
            "kind" => query.kind = checked_name()?,
            "from" if !value.is_empty() => query.from = Some(parse_time(key, value)?),
            "to" if !value.is_empty() => query.to = Some(parse_time(key, value)?),
            "from" | "to" => {}
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        RequestError::query(
                            key,
                            format!("must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                        )
                    })?;
            }
            "cursor" if !value.is_empty() => {
                query.cursor = Some(Cursor::decode(value).ok_or_else(|| {
                    RequestError::query(key, "is not a cursor this server returned")
                })?);
            }
            "cursor" => {}
            other => {
                return Err(RequestError::query(
                    other,
                    "is not supported (use device, sensor, kind, from, to, limit, cursor, token)",
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from >= to
    {
        return Err(RequestError::query("from", "must be earlier than `to`"));
    }
    Ok(query)
}

/// The 2.01 payload: `{"ids":[...]}`, or `{"count":N,"first":..,"last":..}` when the ids
/// would not fit one block.
fn ids_payload(ids: &[EventId], block_size: usize) -> Vec<u8> {
    let all: Vec<&str> = ids.iter().map(EventId::as_str).collect();
    let full = serde_json::json!({ "ids": all }).to_string();
    if full.len() <= block_size {
        return full.into_bytes();
    }
    serde_json::json!({
        "count": ids.len(),
        "first": all.first(),
        "last": all.last(),
    })
    .to_string()
    .into_bytes()
}

/// One Block2 block of a representation.
fn block_response(
    body: &Bytes,
    etag: [u8; 8],
    content_format: u16,
    num: u32,
    szx: u8,
    observe: Option<u32>,
) -> Result<Response, RequestError> {
    let size = 16usize << szx;
    let offset = (num as usize).saturating_mul(size);
    if offset >= body.len() && !(num == 0 && body.is_empty()) {
        return Err(RequestError::BadBlock(format!(
            "block {num} of {size} bytes is past the end of the {}-byte representation",
            body.len()
        )));
    }
    let end = (offset + size).min(body.len());
    let more = end < body.len();
    let mut response = Response::new(code::CONTENT)
        .with_uint(opt::CONTENT_FORMAT, u32::from(content_format))
        .with(opt::ETAG, etag.to_vec())
        .with(opt::BLOCK2, Block { num, more, szx }.encode());
    if num == 0 {
        response = response.with_uint(opt::SIZE2, u32::try_from(body.len()).unwrap_or(u32::MAX));
        if let Some(seq) = observe {
            response = response.with_uint(opt::OBSERVE, seq);
        }
    }
    Ok(response.with_payload(body.slice(offset..end)))
}

/// A content-derived ETag (FNV-1a, 64 bits): the same bytes always get the same tag.
fn etag(body: &[u8]) -> [u8; 8] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.to_be_bytes()
}

/// Frames a response; one that cannot be framed becomes a bare 5.00.
fn frame(kind: Kind, mid: u16, token: Token, response: &Response) -> Bytes {
    message::encode(kind, mid, token, response).unwrap_or_else(|| {
        tracing::error!(code = response.code, "a CoAP response could not be framed");
        message::encode(
            kind,
            mid,
            token,
            &Response::new(code::INTERNAL_SERVER_ERROR),
        )
        .unwrap_or_else(|| message::empty(kind, mid))
    })
}
