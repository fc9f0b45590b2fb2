//! One client connection: the CONNECT handshake, then one task looping over the socket,
//! the ingest pipeline, the session's queue and the timers.
//!
//! # The loop
//!
//! One task owns the connection; nothing else touches its socket. Each turn it waits for
//! whichever comes first: bytes from the client, the oldest ingest batch becoming
//! durable, room in the socket for buffered output, messages queued for the session, a
//! takeover, the server shutting down, or the keep-alive deadline.
//!
//! # Durable acknowledgements, batched
//!
//! Every PUBLISH decoded from one read of the socket joins one batch. A batch's telemetry
//! publishes are ingested together by one `Ingest::ingest` call — one log append, shared
//! by the log's group commit with other connections' batches — and the batch enters an
//! ordered pipeline of futures. The loop keeps reading while batches are in flight, up to
//! `receive_maximum` publishes, so a pipelining client is never stalled by one fsync. When
//! a batch completes, in arrival order, each of its publishes is routed to subscribers and
//! acknowledged: PUBACK / PUBREC go out only after `ingest` returned Ok, in the order the
//! publishes came (MQTT §4.6). Publishes to other topics ride the same pipeline (as
//! ready futures), so their acknowledgements keep that order too.
//!
//! # Memory
//!
//! An idle connection costs its task (about 1.4 KB: the handshake's large futures and the
//! connection state are boxed, so they do not size the task for its whole life), its
//! state (about 0.5 KB, the will boxed apart), a read buffer of a few KB, an empty write
//! buffer, and its session. Buffers grown by a burst are given back once idle.
//!
//! # Closing
//!
//! Whatever ends the connection (DISCONNECT, a protocol error, a refusal under MQTT
//! 3.1.1, keep-alive, takeover, shutdown, a dead socket), reading stops, the pipeline is
//! drained — every publish being ingested completes, is routed, and its acknowledgement
//! written — then an MQTT 5 client gets a DISCONNECT with the reason, the output is
//! flushed (bounded by [`FLUSH_WAIT`]), the session is released, and the will is
//! published when the close was not a clean DISCONNECT (nor a server shutdown).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use ingot_auth::Identity;
use ingot_codec_mqtt::{
    Ack, ConnAck, Connect, DecodeError, Disconnect, MAX_PACKET_SIZE, Packet, Properties, Publish,
    QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter, UnsubAck, Unsubscribe,
    Version, Will, check, packet_type, parse, topic,
};
use ingot_core::Draft;
use ingot_core::error::ErrorExt as _;
use ingot_ingest::{IngestError, Protocol, RefusalReason};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;

use crate::acl::Principal;
use crate::broker::{
    Broker, Delivery, Incoming, Inflight, Message, NewSubscription, Session, Tenant,
};
use crate::metrics::Drop;
use crate::telemetry::{self, Refusal, TopicKind};
use crate::will::{check_will, schedule_will};

/// How long a closing connection may take to write its last packets.
const FLUSH_WAIT: Duration = Duration::from_secs(3);
/// Spare room kept in the read buffer before each read.
const READ_RESERVE: usize = 2048;
/// An idle read or write buffer larger than this is given back.
const IDLE_BUFFER_MAX: usize = 64 << 10;
/// Reason strings are cut to this many bytes.
const REASON_MAX: usize = 1024;

/// Why the connection is closing.
#[derive(Debug)]
enum Close {
    /// The client sent DISCONNECT; `will` if it asked for its will anyway (0x04).
    ClientDisconnect { will: bool },
    /// The socket closed or failed without DISCONNECT.
    Lost,
    /// The server closes: protocol error, refusal, keep-alive, slow consumer...
    Server(ReasonCode, String),
    /// Another connection took the session over.
    TakenOver,
    /// The server shuts down.
    Shutdown,
}

impl Close {
    fn publishes_will(&self) -> bool {
        match self {
            Close::ClientDisconnect { will } => *will,
            Close::Shutdown => false,
            Close::Lost | Close::Server(..) | Close::TakenOver => true,
        }
    }

    /// The MQTT 5 DISCONNECT the server sends, if any.
    fn goodbye(&self) -> Option<(ReasonCode, &str)> {
        match self {
            Close::ClientDisconnect { .. } | Close::Lost => None,
            Close::Server(code, reason) => Some((*code, reason)),
            Close::TakenOver => Some((
                ReasonCode::SESSION_TAKEN_OVER,
                "another connection took this session over",
            )),
            Close::Shutdown => Some((
                ReasonCode::SERVER_SHUTTING_DOWN,
                "the server is shutting down; reconnect later",
            )),
        }
    }
}

/// One publish waiting in the pipeline.
struct Item {
    pkid: u16,
    qos: QoS,
    received: Instant,
    what: What,
}

enum What {
    /// Route when its turn comes; acknowledge success.
    Route(Arc<Message>),
    /// Route and acknowledge once its events are durable.
    Telemetry(Arc<Message>),
    /// Refused before ingest.
    Refused(Refusal),
}

/// Publishes of one read, and the drafts of its telemetry publishes.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    telemetry: Vec<Arc<Message>>,
    drafts: Vec<Draft>,
}

/// A completed batch: its items and one result per telemetry publish, in order.
struct Done {
    items: Vec<Item>,
    results: Vec<Result<(), Refusal>>,
}

type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// Serves one accepted connection until it closes.
pub(crate) async fn run<S>(stream: S, peer: std::net::SocketAddr, broker: Arc<Broker>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut inbuf = BytesMut::with_capacity(READ_RESERVE);
    let max_packet = broker.config.max_packet_size as usize;
    let wait = Duration::from_secs(broker.config.connect_timeout_secs);
    // The handshake's futures are boxed: they are large and short-lived, and inline they
    // would size every connection's task for its whole life (10k idle connections).
    let first = tokio::select! {
        r = tokio::time::timeout(wait, Box::pin(read_connect(&mut rd, &mut inbuf, max_packet))) => r,
        _ = broker.shutdown.cancelled() => return,
    };
    let connect = match first {
        Ok(Ok(c)) => c,
        Ok(Err(ConnectFail::Decode(DecodeError::UnsupportedVersion { level }))) => {
            tracing::debug!(%peer, level, "refused: unsupported MQTT version");
            broker
                .metrics
                .refused(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
            // Answered in the 3.1.1 format, which older clients understand.
            let mut out = BytesMut::new();
            let ack = Packet::ConnAck(ConnAck {
                session_present: false,
                code: ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
                properties: Properties::default(),
            });
            if ack.encode(Version::V311, &mut out).is_ok() {
                let _ = tokio::time::timeout(FLUSH_WAIT, wr.write_all(&out)).await;
            }
            return;
        }
        Ok(Err(ConnectFail::Decode(e))) => {
            tracing::debug!(%peer, error = %e, "refused: bad CONNECT");
            broker.metrics.refused(e.reason_code());
            return;
        }
        Ok(Err(ConnectFail::NotConnect)) => {
            tracing::debug!(%peer, "refused: the first packet is not CONNECT");
            broker.metrics.refused(ReasonCode::PROTOCOL_ERROR);
            return;
        }
        Ok(Err(ConnectFail::Io)) => return,
        Err(_) => {
            tracing::debug!(%peer, "closed: no CONNECT within the connect timeout");
            return;
        }
    };
    broker.metrics.packet_in(packet_type::CONNECT);
    let version = connect.version;
    let conn = match Box::pin(accept(*connect, &broker, rd, wr, inbuf, peer)).await {
        Ok(conn) => conn,
        Err((mut wr, code, reason)) => {
            tracing::debug!(%peer, ?code, %reason, "connection refused");
            broker.metrics.refused(code);
            let mut properties = Properties::default();
            if version == Version::V5 {
                properties.reason_string = Some(truncate(reason));
            }
            let mut out = BytesMut::new();
            let ack = Packet::ConnAck(ConnAck {
                session_present: false,
                code,
                properties,
            });
            if ack.encode(version, &mut out).is_ok() {
                broker.metrics.packet_out(packet_type::CONNACK);
                let _ = tokio::time::timeout(FLUSH_WAIT, async {
                    wr.write_all(&out).await?;
                    wr.shutdown().await
                })
                .await;
            }
            return;
        }
    };
    conn.serve().await;
}

enum ConnectFail {
    Decode(DecodeError),
    NotConnect,
    Io,
}

async fn read_connect<S: AsyncRead>(
    rd: &mut ReadHalf<S>,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Box<Connect>, ConnectFail> {
    loop {
        if let Some(header) = check(buf, max_packet).map_err(ConnectFail::Decode)? {
            if header.packet_type() != packet_type::CONNECT {
                return Err(ConnectFail::NotConnect);
            }
            let mut frame = buf.split_to(header.packet_len()).freeze();
            let body = frame.split_off(header.header_len);
            return match parse(&header, body, Version::V5).map_err(ConnectFail::Decode)? {
                Packet::Connect(c) => Ok(c),
                _ => Err(ConnectFail::NotConnect),
            };
        }
        if let Some(&first) = buf.first()
            && first >> 4 != packet_type::CONNECT
        {
            return Err(ConnectFail::NotConnect);
        }
        buf.reserve(READ_RESERVE);
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(ConnectFail::Io),
            Ok(_) => {}
        }
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > REASON_MAX {
        let mut at = REASON_MAX;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
    text
}

/// A client identifier for an MQTT 5 client that sent none: random, then the connection
/// id, so it is unique in this process even without an OS random source.
fn assigned_client_id(conn_id: u64) -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    format!("ingot-{:016x}-{conn_id:x}", u64::from_le_bytes(bytes))
}

type Refused<S> = (WriteHalf<S>, ReasonCode, String);

/// Authenticates, authorises and attaches the session; writes CONNACK on success.
async fn accept<S>(
    c: Connect,
    broker: &Arc<Broker>,
    rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    inbuf: BytesMut,
    peer: std::net::SocketAddr,
) -> Result<Box<Conn<S>>, Refused<S>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = &broker.config;
    let v5 = c.version == Version::V5;
    let ingest_metrics = broker.deps.ingest.metrics();
    if c.properties.authentication_method.is_some() {
        return Err((
            wr,
            ReasonCode::BAD_AUTHENTICATION_METHOD,
            "extended authentication is not supported: send the device token or API key as the password".into(),
        ));
    }
    let password = match &c.password {
        None => None,
        Some(p) => match std::str::from_utf8(p) {
            Ok(p) => Some(p),
            Err(_) => {
                ingest_metrics.refused(Protocol::mqtt, RefusalReason::unauthenticated);
                return Err((
                    wr,
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    "the password must be a device token or an API key".into(),
                ));
            }
        },
    };
    let identity = match broker.deps.auth.authenticate(password).await {
        Ok(identity) => identity,
        Err(e) => {
            let (code, reason) = match (e.kind(), password) {
                (ingot_core::ErrorKind::Unauthenticated, None) => (
                    ReasonCode::NOT_AUTHORIZED,
                    "credentials required: user name = device name, password = device token (or an API key)".to_owned(),
                ),
                (ingot_core::ErrorKind::Unauthenticated, Some(_)) => (
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                    "invalid credentials: the token or key is unknown, revoked or deleted".to_owned(),
                ),
                _ => {
                    tracing::warn!(error = %e, "MQTT authentication failed");
                    (
                        ReasonCode::SERVER_UNAVAILABLE,
                        "credentials cannot be checked now; retry later".to_owned(),
                    )
                }
            };
            ingest_metrics.refused(Protocol::mqtt, RefusalReason::unauthenticated);
            return Err((wr, code, reason));
        }
    };
    let principal = match Principal::new(identity, c.username.as_deref()) {
        Ok(p) => Arc::new(p),
        Err((code, reason)) => {
            ingest_metrics.refused(Protocol::mqtt, RefusalReason::unauthenticated);
            return Err((wr, code, reason));
        }
    };
    let conn_id = broker.next_id();
    let mut client_id = c.client_id;
    let mut assigned = None;
    if client_id.is_empty() {
        if !v5 && !c.clean_start {
            return Err((
                wr,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
                "an empty client id needs clean session".into(),
            ));
        }
        client_id = assigned_client_id(conn_id);
        assigned = Some(client_id.clone());
    }
    if let Some(will) = &c.will
        && let Err(r) = check_will(will, &principal, broker)
    {
        return Err((wr, r.code, r.message));
    }
    let max_expiry = config.max_session_expiry_secs;
    let asked_expiry = if v5 {
        c.properties.session_expiry_interval.unwrap_or(0)
    } else if c.clean_start {
        0
    } else {
        u32::MAX
    };
    let session_expiry = asked_expiry.min(max_expiry);
    let mut keep_alive = c.keep_alive;
    let mut server_keep_alive = None;
    let max_ka = config.max_keep_alive_secs;
    if v5 && max_ka > 0 && (keep_alive == 0 || keep_alive > max_ka) {
        keep_alive = max_ka;
        server_keep_alive = Some(max_ka);
    }

    let tenant = broker.tenant(principal.identity.tenant());
    let kick = CancellationToken::new();
    let (session, present) = match broker
        .attach(
            &tenant,
            &principal.owner,
            &client_id,
            c.clean_start,
            conn_id,
            &kick,
        )
        .await
    {
        Ok(s) => s,
        Err(code) => {
            let reason = if code == ReasonCode::QUOTA_EXCEEDED {
                "too many sessions for this tenant".into()
            } else {
                "the session is busy with another connection; retry".into()
            };
            return Err((wr, code, reason));
        }
    };

    let mut properties = Properties::default();
    if v5 {
        properties.receive_maximum = Some(config.receive_maximum);
        properties.maximum_packet_size = Some(config.max_packet_size);
        if config.max_topic_alias > 0 {
            properties.topic_alias_maximum = Some(config.max_topic_alias);
        }
        properties.assigned_client_identifier = assigned;
        if session_expiry != asked_expiry {
            properties.session_expiry_interval = Some(session_expiry);
        }
        properties.server_keep_alive = server_keep_alive;
    }
    let send_quota = usize::from(if v5 {
        c.properties
            .receive_maximum
            .unwrap_or(u16::MAX)
            .min(config.max_inflight)
    } else {
        config.max_inflight
    });
    let quota_used = session.lock().incoming.len();
    let mut conn = Box::new(Conn {
        broker: broker.clone(),
        tenant,
        session,
        principal,
        conn_id,
        version: c.version,
        peer,
        rd,
        wr,
        inbuf,
        out: BytesMut::new(),
        kick,
        keep_alive: (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500)),
        last_packet: Instant::now(),
        send_quota,
        client_max_packet: c
            .properties
            .maximum_packet_size
            .map_or(MAX_PACKET_SIZE, |m| m as usize),
        send_reasons: c.properties.request_problem_information != Some(0),
        aliases: Vec::new(),
        pipeline: FuturesOrdered::new(),
        in_pipeline: 0,
        quota_used,
        batch: Batch::default(),
        will: c.will.map(Box::new),
        session_expiry,
        connect_expiry_zero: asked_expiry == 0,
        closing: None,
        socket_ok: true,
        needs_flush: false,
    });
    conn.send(Packet::ConnAck(ConnAck {
        session_present: present,
        code: ReasonCode::SUCCESS,
        properties,
    }));
    tracing::debug!(
        peer = %conn.peer,
        client_id = conn.session.client_id(),
        version = ?conn.version,
        resumed = present,
        "MQTT client connected"
    );
    Ok(conn)
}

/// A connected client.
struct Conn<S> {
    broker: Arc<Broker>,
    tenant: Arc<Tenant>,
    session: Arc<Session>,
    principal: Arc<Principal>,
    conn_id: u64,
    version: Version,
    peer: std::net::SocketAddr,
    rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    inbuf: BytesMut,
    out: BytesMut,
    kick: CancellationToken,
    /// 1.5 × the keep-alive.
    keep_alive: Option<Duration>,
    last_packet: Instant,
    /// QoS 1/2 messages this client accepts unacknowledged.
    send_quota: usize,
    client_max_packet: usize,
    /// Whether acknowledgements may carry reason strings (Request Problem Information).
    send_reasons: bool,
    aliases: Vec<Option<String>>,
    pipeline: FuturesOrdered<Pending>,
    /// Publishes in the pipeline (all QoS).
    in_pipeline: usize,
    /// QoS 1/2 publishes not yet completed (the client's side of Receive Maximum).
    quota_used: usize,
    batch: Batch,
    will: Option<Box<Will>>,
    session_expiry: u32,
    connect_expiry_zero: bool,
    closing: Option<Close>,
    socket_ok: bool,
    needs_flush: bool,
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn serve(mut self: Box<Self>) {
        self.resend_inflight();
        self.on_bytes();
        self.pull();
        let far = Duration::from_secs(86_400 * 365);
        let mut keep_alive = pin!(tokio::time::sleep(self.keep_alive.unwrap_or(far)));
        let max_write = self.broker.config.max_write_buffer;
        let receive_maximum = usize::from(self.broker.config.receive_maximum);
        loop {
            if self.closing.is_some() && self.pipeline.is_empty() {
                break;
            }
            if self.inbuf.capacity() - self.inbuf.len() < READ_RESERVE / 2 {
                self.inbuf.reserve(READ_RESERVE);
            }
            let open = self.closing.is_none();
            let can_read = open
                && self.socket_ok
                && self.in_pipeline < receive_maximum
                && self.out.len() < max_write;
            let can_pull = open && self.out.len() < max_write;
            let want_write = self.socket_ok && !self.out.is_empty();
            let want_flush = self.socket_ok && self.needs_flush && self.out.is_empty();
            let busy = !self.pipeline.is_empty();
            let timed = open && self.keep_alive.is_some();
            tokio::select! {
                biased;
                Some(done) = self.pipeline.next(), if busy => self.complete(done),
                io = async {
                    if want_write {
                        self.wr.write_buf(&mut self.out).await.map(Some)
                    } else {
                        self.wr.flush().await.map(|()| None)
                    }
                }, if want_write || want_flush => match io {
                    Ok(Some(n)) if n > 0 => {
                        self.needs_flush = true;
                        if self.out.is_empty() && self.out.capacity() > IDLE_BUFFER_MAX {
                            self.out = BytesMut::new();
                        }
                    }
                    Ok(None) => self.needs_flush = false,
                    _ => self.socket_failed(),
                },
                read = self.rd.read_buf(&mut self.inbuf), if can_read => match read {
                    Ok(n) if n > 0 => self.on_bytes(),
                    Ok(_) => self.close(Close::Lost),
                    Err(_) => self.socket_failed(),
                },
                _ = self.session.wake.notified(), if can_pull => self.pull(),
                _ = self.kick.cancelled(), if open => self.close(Close::TakenOver),
                _ = self.broker.shutdown.cancelled(), if open => self.close(Close::Shutdown),
                _ = &mut keep_alive, if timed => {
                    let limit = self.keep_alive.unwrap_or(far);
                    let deadline = self.last_packet + limit;
                    if Instant::now() >= deadline {
                        self.close(Close::Server(
                            ReasonCode::KEEP_ALIVE_TIMEOUT,
                            "no packet within 1.5 times the keep-alive".into(),
                        ));
                    } else {
                        keep_alive.as_mut().reset(tokio::time::Instant::from_std(deadline));
                    }
                }
            }
        }
        self.finish().await;
    }

    fn close(&mut self, why: Close) {
        if self.closing.is_none() {
            self.closing = Some(why);
        }
    }

    fn socket_failed(&mut self) {
        self.socket_ok = false;
        self.out.clear();
        self.close(Close::Lost);
    }

    /// Decodes every whole packet in the read buffer, then starts its batch.
    fn on_bytes(&mut self) {
        let max_packet = self.broker.config.max_packet_size as usize;
        while self.closing.is_none() {
            match check(&self.inbuf, max_packet) {
                Ok(None) => break,
                Ok(Some(header)) => {
                    let mut frame = self.inbuf.split_to(header.packet_len()).freeze();
                    let body = frame.split_off(header.header_len);
                    match parse(&header, body, self.version) {
                        Ok(packet) => self.on_packet(packet),
                        Err(e) => self.decode_failed(&e),
                    }
                }
                Err(e) => self.decode_failed(&e),
            }
        }
        self.start_batch();
        self.pull();
        if self.inbuf.is_empty() && self.inbuf.capacity() > IDLE_BUFFER_MAX {
            self.inbuf = BytesMut::with_capacity(READ_RESERVE);
        }
    }

    fn decode_failed(&mut self, e: &DecodeError) {
        tracing::debug!(peer = %self.peer, error = %e, "closing: bad packet");
        self.broker.metrics.refused(e.reason_code());
        self.close(Close::Server(e.reason_code(), e.to_string()));
    }

    fn protocol_error(&mut self, reason: &str) {
        self.broker.metrics.refused(ReasonCode::PROTOCOL_ERROR);
        self.close(Close::Server(ReasonCode::PROTOCOL_ERROR, reason.to_owned()));
    }

    fn on_packet(&mut self, packet: Packet) {
        self.last_packet = Instant::now();
        self.broker.metrics.packet_in(packet.packet_type());
        match packet {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(a) => {
                let mut st = self.session.lock();
                if let Some(at) = st
                    .inflight
                    .iter()
                    .position(|i| i.pkid == a.pkid && i.delivery.qos == QoS::AtLeastOnce)
                {
                    st.inflight.remove(at);
                }
            }
            Packet::PubRec(a) => {
                let found = {
                    let mut st = self.session.lock();
                    match st.inflight.iter().position(|i| {
                        i.pkid == a.pkid && i.delivery.qos == QoS::ExactlyOnce && !i.released
                    }) {
                        Some(at) if a.reason.is_error() => {
                            st.inflight.remove(at);
                            None
                        }
                        Some(at) => {
                            if let Some(i) = st.inflight.get_mut(at) {
                                i.released = true;
                            }
                            Some(true)
                        }
                        None => Some(false),
                    }
                };
                match found {
                    Some(true) => self.send(Packet::PubRel(Ack::new(a.pkid))),
                    Some(false) => self.send(Packet::PubRel(Ack {
                        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                        ..Ack::new(a.pkid)
                    })),
                    None => {}
                }
            }
            Packet::PubRel(a) => {
                let released = {
                    let mut st = self.session.lock();
                    match st.incoming.get(&a.pkid) {
                        Some(Incoming::AwaitingRelease) => {
                            st.incoming.remove(&a.pkid);
                            true
                        }
                        _ => false,
                    }
                };
                if released {
                    self.quota_used = self.quota_used.saturating_sub(1);
                    self.send(Packet::PubComp(Ack::new(a.pkid)));
                } else {
                    self.send(Packet::PubComp(Ack {
                        reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                        ..Ack::new(a.pkid)
                    }));
                }
            }
            Packet::PubComp(a) => {
                let mut st = self.session.lock();
                if let Some(at) = st
                    .inflight
                    .iter()
                    .position(|i| i.pkid == a.pkid && i.released)
                {
                    st.inflight.remove(at);
                }
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq => self.send(Packet::PingResp),
            Packet::Disconnect(d) => {
                if let Some(expiry) = d.properties.session_expiry_interval {
                    if self.connect_expiry_zero && expiry != 0 {
                        return self.protocol_error(
                            "DISCONNECT may not set a session expiry when CONNECT had none",
                        );
                    }
                    self.session_expiry = expiry.min(self.broker.config.max_session_expiry_secs);
                }
                let will = d.reason == ReasonCode::DISCONNECT_WITH_WILL;
                self.close(Close::ClientDisconnect { will });
            }
            Packet::Connect(_) => self.protocol_error("a second CONNECT"),
            Packet::Auth(_) => self.protocol_error("AUTH without an authentication method"),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.protocol_error("a packet only servers send")
            }
        }
    }

    fn on_publish(&mut self, mut p: Publish) {
        let v5 = self.version == Version::V5;
        let received = Instant::now();
        self.broker.metrics.publish_in(p.qos);
        if let Some(alias) = p.properties.topic_alias.take() {
            let max = self.broker.config.max_topic_alias;
            if !v5 || alias == 0 || alias > max {
                self.broker.metrics.refused(ReasonCode::TOPIC_ALIAS_INVALID);
                return self.close(Close::Server(
                    ReasonCode::TOPIC_ALIAS_INVALID,
                    format!("topic alias {alias} is not between 1 and {max}"),
                ));
            }
            let slot = usize::from(alias);
            if self.aliases.len() <= slot {
                self.aliases.resize(slot + 1, None);
            }
            if p.topic.is_empty() {
                match self.aliases.get(slot).cloned().flatten() {
                    Some(t) => p.topic = t,
                    None => {
                        return self.protocol_error("a topic alias that was never set");
                    }
                }
            } else if let Some(s) = self.aliases.get_mut(slot) {
                *s = Some(p.topic.clone());
            }
        }
        if p.topic.is_empty() {
            return self.protocol_error("a PUBLISH without a topic");
        }
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                if !self.take_quota(v5) {
                    return;
                }
            }
            QoS::ExactlyOnce => {
                let seen = {
                    let mut st = self.session.lock();
                    match st.incoming.get(&p.pkid).copied() {
                        None => {
                            st.incoming.insert(p.pkid, Incoming::Pipeline);
                            None
                        }
                        Some(state) => Some(state),
                    }
                };
                match seen {
                    // A redelivery of a publish already durable: acknowledge again only.
                    Some(Incoming::AwaitingRelease) => {
                        return self.send(Packet::PubRec(Ack::new(p.pkid)));
                    }
                    // Still being ingested: its PUBREC will come.
                    Some(Incoming::Pipeline) => return,
                    None => {
                        if !self.take_quota(v5) {
                            self.session.lock().incoming.remove(&p.pkid);
                            return;
                        }
                    }
                }
            }
        }
        let now = Instant::now();
        let mut properties = p.properties;
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|s| now + Duration::from_secs(u64::from(s)));
        properties.subscription_identifiers.clear();
        let msg = Arc::new(Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            from_session: self.session.id,
        });
        let what = match self.admit(&msg) {
            Err(r) => What::Refused(r),
            Ok(None) => What::Route(msg),
            Ok(Some(drafts)) => {
                let limit = self.broker.deps.ingest.limits().max_batch_events;
                if self.batch.drafts.len() + drafts.len() > limit {
                    self.start_batch();
                }
                self.batch.drafts.extend(drafts);
                self.batch.telemetry.push(msg.clone());
                What::Telemetry(msg)
            }
        };
        if let What::Refused(r) = &what
            && !v5
        {
            // MQTT 3.1.1 can only refuse by closing: read nothing more.
            tracing::debug!(peer = %self.peer, reason = %r.message, "closing: publish refused");
            self.close(Close::Server(r.code, r.message.clone()));
        }
        self.in_pipeline += 1;
        self.batch.items.push(Item {
            pkid: p.pkid,
            qos: p.qos,
            received,
            what,
        });
    }

    /// Counts a QoS 1/2 publish against Receive Maximum (MQTT 5 enforces it).
    fn take_quota(&mut self, v5: bool) -> bool {
        if v5 && self.quota_used >= usize::from(self.broker.config.receive_maximum) {
            self.broker
                .metrics
                .refused(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
            self.close(Close::Server(
                ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
                "more unacknowledged QoS 1/2 publishes than the Receive Maximum".into(),
            ));
            return false;
        }
        self.quota_used += 1;
        true
    }

    /// Checks a publish: `Ok(None)` to route, `Ok(Some(drafts))` to ingest then route.
    fn admit(&self, msg: &Message) -> Result<Option<Vec<Draft>>, Refusal> {
        let ingest = &self.broker.deps.ingest;
        topic::validate_name(&msg.topic)
            .map_err(|m| Refusal::new(ReasonCode::TOPIC_NAME_INVALID, RefusalReason::invalid, m))?;
        let kind = telemetry::classify(&msg.topic);
        let is_telemetry = !matches!(kind, Ok(TopicKind::Plain));
        let count = |r: Refusal| {
            if is_telemetry {
                ingest.metrics().refused(Protocol::mqtt, r.reason);
            }
            r
        };
        self.principal.may_publish(&msg.topic).map_err(|m| {
            count(Refusal::new(
                ReasonCode::NOT_AUTHORIZED,
                RefusalReason::forbidden,
                m,
            ))
        })?;
        match kind {
            Err(m) => Err(count(Refusal::new(
                ReasonCode::TOPIC_NAME_INVALID,
                RefusalReason::invalid,
                m,
            ))),
            Ok(TopicKind::Plain) => Ok(None),
            // An empty retained publish clears the retained message; nothing to ingest.
            Ok(TopicKind::Telemetry { .. }) if msg.retain && msg.payload.is_empty() => Ok(None),
            Ok(TopicKind::Telemetry { device, sensor }) => telemetry::drafts(
                &msg.payload,
                &msg.properties,
                device,
                sensor,
                ingest.limits(),
            )
            .map(Some)
            .map_err(count),
        }
    }

    /// Moves the batch being assembled into the pipeline.
    fn start_batch(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let Batch {
            items,
            telemetry,
            drafts,
        } = std::mem::take(&mut self.batch);
        let pending: Pending = if telemetry.is_empty() {
            Box::pin(std::future::ready(Done {
                items,
                results: Vec::new(),
            }))
        } else {
            let broker = self.broker.clone();
            let principal = self.principal.clone();
            Box::pin(async move {
                let results = ingest_batch(&broker, &principal.identity, telemetry, drafts).await;
                Done { items, results }
            })
        };
        self.pipeline.push_back(pending);
    }

    /// Routes and acknowledges a completed batch, in order.
    fn complete(&mut self, done: Done) {
        let v5 = self.version == Version::V5;
        let mut results = done.results.into_iter();
        for item in done.items {
            self.in_pipeline = self.in_pipeline.saturating_sub(1);
            let outcome = match item.what {
                What::Route(msg) => {
                    self.broker.route(&self.tenant, &msg);
                    Ok(())
                }
                What::Telemetry(msg) => match results.next() {
                    Some(Ok(())) => {
                        self.broker.route(&self.tenant, &msg);
                        Ok(())
                    }
                    Some(Err(r)) => Err(r),
                    None => Err(Refusal::new(
                        ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
                        RefusalReason::unavailable,
                        "internal error: no ingest result",
                    )),
                },
                What::Refused(r) => Err(r),
            };
            if let Err(r) = &outcome {
                self.broker.metrics.refused(r.code);
            }
            let latency = item.received.elapsed().as_secs_f64();
            match (item.qos, outcome) {
                (QoS::AtMostOnce, Ok(())) => {}
                (QoS::AtMostOnce, Err(r)) => self.close(Close::Server(r.code, r.message)),
                (QoS::AtLeastOnce, Ok(())) => {
                    self.quota_used = self.quota_used.saturating_sub(1);
                    self.send(Packet::PubAck(Ack::new(item.pkid)));
                    self.broker.metrics.acked(latency);
                }
                (QoS::ExactlyOnce, Ok(())) => {
                    self.session
                        .lock()
                        .incoming
                        .insert(item.pkid, Incoming::AwaitingRelease);
                    self.send(Packet::PubRec(Ack::new(item.pkid)));
                    self.broker.metrics.acked(latency);
                }
                (qos, Err(r)) => {
                    self.quota_used = self.quota_used.saturating_sub(1);
                    if qos == QoS::ExactlyOnce {
                        self.session.lock().incoming.remove(&item.pkid);
                    }
                    if v5 {
                        let ack = Ack {
                            pkid: item.pkid,
                            reason: r.code,
                            properties: self.reason(r.message),
                        };
                        self.send(if qos == QoS::AtLeastOnce {
                            Packet::PubAck(ack)
                        } else {
                            Packet::PubRec(ack)
                        });
                    } else {
                        self.close(Close::Server(r.code, r.message));
                    }
                }
            }
        }
        self.pull();
    }

    fn reason(&self, message: String) -> Properties {
        Properties {
            reason_string: self.send_reasons.then(|| truncate(message)),
            ..Properties::default()
        }
    }

    fn on_subscribe(&mut self, s: Subscribe) {
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        for f in &s.filters {
            let code = self.subscribe_one(f, sub_id, &mut retained);
            if code.is_error() {
                self.broker.metrics.refused(code);
            }
            codes.push(code);
        }
        self.send(Packet::SubAck(SubAck {
            pkid: s.pkid,
            properties: Properties::default(),
            codes,
        }));
        for (messages, options) in retained {
            self.broker
                .queue_retained(&self.session, messages, options, sub_id);
        }
        self.pull();
    }

    fn subscribe_one(
        &mut self,
        f: &SubscribeFilter,
        sub_id: Option<u32>,
        retained: &mut Vec<(Vec<Arc<Message>>, ingot_codec_mqtt::SubscriptionOptions)>,
    ) -> ReasonCode {
        let (group, filter) = match topic::split_shared(&f.filter) {
            Ok(Some((g, inner))) => (Some(g), inner),
            Ok(None) => (None, f.filter.as_str()),
            Err(_) => return ReasonCode::TOPIC_FILTER_INVALID,
        };
        if topic::validate_filter(filter).is_err() {
            return ReasonCode::TOPIC_FILTER_INVALID;
        }
        if group.is_some() && f.options.no_local {
            self.protocol_error("No Local on a shared subscription");
            return ReasonCode::PROTOCOL_ERROR;
        }
        if self.principal.may_subscribe(filter).is_err() {
            return ReasonCode::NOT_AUTHORIZED;
        }
        let full = {
            let st = self.session.lock();
            !st.subscriptions.contains_key(&f.filter)
                && st.subscriptions.len() >= self.broker.config.max_subscriptions
        };
        if full {
            return ReasonCode::QUOTA_EXCEEDED;
        }
        let existed = self.broker.subscribe(
            &self.tenant,
            &self.session,
            NewSubscription {
                full_filter: &f.filter,
                group,
                filter,
                options: f.options,
                sub_id,
            },
        );
        let send_retained = group.is_none()
            && match f.options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        if send_retained {
            let messages = self.broker.retained_matching(&self.tenant, filter);
            if !messages.is_empty() {
                retained.push((messages, f.options));
            }
        }
        ReasonCode(f.options.qos.as_u8())
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let codes = u
            .filters
            .iter()
            .map(|f| {
                let valid = match topic::split_shared(f) {
                    Ok(Some((_, inner))) => topic::validate_filter(inner).is_ok(),
                    Ok(None) => topic::validate_filter(f).is_ok(),
                    Err(_) => false,
                };
                if !valid {
                    ReasonCode::TOPIC_FILTER_INVALID
                } else if self.broker.unsubscribe(&self.tenant, &self.session, f) {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        self.send(Packet::UnsubAck(UnsubAck {
            pkid: u.pkid,
            properties: Properties::default(),
            codes,
        }));
    }

    /// Encodes `packet` into the output; a packet larger than the client accepts goes
    /// without its reason string and user properties, or not at all.
    fn send(&mut self, packet: Packet) {
        let kind = packet.packet_type();
        match encode_within(&packet, self.version, &mut self.out, self.client_max_packet) {
            Ok(true) => self.broker.metrics.packet_out(kind),
            Ok(false) => {
                let mut bare = packet;
                strip_properties(&mut bare);
                if let Ok(true) =
                    encode_within(&bare, self.version, &mut self.out, self.client_max_packet)
                {
                    self.broker.metrics.packet_out(kind);
                }
            }
            Err(e) => tracing::warn!(error = %e, packet = packet_type::name(kind), "cannot encode"),
        }
    }

    /// Resends what a resumed session had in flight: PUBLISH with DUP, or PUBREL.
    fn resend_inflight(&mut self) {
        let st = self.session.lock();
        let now = Instant::now();
        for i in &st.inflight {
            if i.released {
                let _ = Packet::PubRel(Ack::new(i.pkid)).encode(self.version, &mut self.out);
                self.broker.metrics.packet_out(packet_type::PUBREL);
            } else if encode_delivery(
                &i.delivery,
                i.pkid,
                true,
                self.version,
                now,
                &mut self.out,
                self.client_max_packet,
            ) {
                self.broker.metrics.packet_out(packet_type::PUBLISH);
            }
        }
    }

    /// Moves queued messages to the output, within the client's quota and the buffer.
    fn pull(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let max_write = self.broker.config.max_write_buffer;
        let now = Instant::now();
        let mut st = self.session.lock();
        if st.overflowed {
            st.overflowed = false;
            drop(st);
            self.broker.metrics.refused(ReasonCode::QUOTA_EXCEEDED);
            return self.close(Close::Server(
                ReasonCode::QUOTA_EXCEEDED,
                "too many messages waiting for this client (slow consumer)".into(),
            ));
        }
        while self.out.len() < max_write {
            let Some(front) = st.queue.front() else { break };
            if front.qos != QoS::AtMostOnce && st.inflight.len() >= self.send_quota {
                break;
            }
            let Some(delivery) = st.queue.pop_front() else {
                break;
            };
            if delivery.msg.expired(now) {
                self.broker.metrics.dropped(Drop::Expired);
                continue;
            }
            let pkid = if delivery.qos == QoS::AtMostOnce {
                0
            } else {
                st.next_pkid()
            };
            if !encode_delivery(
                &delivery,
                pkid,
                false,
                self.version,
                now,
                &mut self.out,
                self.client_max_packet,
            ) {
                self.broker.metrics.dropped(Drop::TooLarge);
                continue;
            }
            self.broker.metrics.packet_out(packet_type::PUBLISH);
            if delivery.qos != QoS::AtMostOnce {
                st.inflight.push_back(Inflight {
                    pkid,
                    delivery,
                    released: false,
                });
            }
        }
    }

    /// Drains the pipeline's last acknowledgements, says goodbye, releases the session
    /// and publishes the will.
    async fn finish(mut self: Box<Self>) {
        let close = self.closing.take().unwrap_or(Close::Lost);
        if self.socket_ok
            && self.version == Version::V5
            && let Some((code, reason)) = close.goodbye()
        {
            let properties = Properties {
                reason_string: Some(reason.to_owned()),
                ..Properties::default()
            };
            self.send(Packet::Disconnect(Disconnect {
                reason: code,
                properties,
            }));
        }
        if self.socket_ok {
            let (wr, out) = (&mut self.wr, &mut self.out);
            let _ = tokio::time::timeout(FLUSH_WAIT, async {
                wr.write_all_buf(out).await?;
                wr.shutdown().await
            })
            .await;
        }
        tracing::debug!(
            peer = %self.peer,
            client_id = self.session.client_id(),
            reason = ?close,
            "MQTT client disconnected"
        );
        let expiry = Duration::from_secs(u64::from(self.session_expiry));
        let generation = self
            .broker
            .detach(&self.tenant, &self.session, self.conn_id, expiry);
        if close.publishes_will()
            && let Some(will) = self.will.take()
        {
            let delay = will
                .properties
                .will_delay_interval
                .unwrap_or(0)
                .min(self.session_expiry);
            schedule_will(
                self.broker.clone(),
                self.tenant.clone(),
                self.session.clone(),
                self.principal.clone(),
                *will,
                Duration::from_secs(u64::from(delay)),
                generation,
            );
        }
    }
}

/// Encodes a packet if it fits `max`; `Ok(false)` (nothing written) if it does not.
fn encode_within(
    packet: &Packet,
    version: Version,
    out: &mut BytesMut,
    max: usize,
) -> Result<bool, ingot_codec_mqtt::EncodeError> {
    let before = out.len();
    let size = packet.encode(version, out)?;
    if size > max {
        out.truncate(before);
        return Ok(false);
    }
    Ok(true)
}

fn strip_properties(packet: &mut Packet) {
    let properties = match packet {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            &mut a.properties
        }
        Packet::SubAck(s) => &mut s.properties,
        Packet::UnsubAck(u) => &mut u.properties,
        Packet::Disconnect(d) => &mut d.properties,
        Packet::ConnAck(c) => &mut c.properties,
        _ => return,
    };
    properties.reason_string = None;
    properties.user_properties.clear();
}

/// Encodes one delivery as a PUBLISH; false (nothing written) if it is too large.
fn encode_delivery(
    d: &Delivery,
    pkid: u16,
    dup: bool,
    version: Version,
    now: Instant,
    out: &mut BytesMut,
    max: usize,
) -> bool {
    let mut properties = Properties::default();
    if version == Version::V5 {
        properties = d.msg.properties.clone();
        properties.subscription_identifiers = d.sub_ids.clone();
        properties.message_expiry_interval = d.msg.remaining_secs(now);
    }
    let publish = Packet::Publish(Publish {
        dup,
        qos: d.qos,
        retain: d.retain,
        topic: d.msg.topic.clone(),
        pkid,
        properties,
        payload: d.msg.payload.clone(),
    });
    matches!(encode_within(&publish, version, out, max), Ok(true))
}

/// Ingests a batch's telemetry in one call; if the batch is refused for its content,
/// each publish is ingested alone so only the bad ones are refused.
async fn ingest_batch(
    broker: &Broker,
    identity: &Identity,
    messages: Vec<Arc<Message>>,
    drafts: Vec<Draft>,
) -> Vec<Result<(), Refusal>> {
    let ingest = &broker.deps.ingest;
    let n = messages.len();
    let refusal = |e: &IngestError| Refusal::of_kind(e.kind(), e.to_string());
    match ingest.ingest(identity, Protocol::mqtt, drafts).await {
        Ok(_) => vec![Ok(()); n],
        Err(e) if n > 1 && !e.is_retryable() => {
            let mut results = Vec::with_capacity(n);
            for msg in messages {
                let drafts = match telemetry::classify(&msg.topic) {
                    Ok(TopicKind::Telemetry { device, sensor }) => telemetry::drafts(
                        &msg.payload,
                        &msg.properties,
                        device,
                        sensor,
                        ingest.limits(),
                    ),
                    _ => Err(refusal(&e)),
                };
                results.push(match drafts {
                    Ok(d) => ingest
                        .ingest(identity, Protocol::mqtt, d)
                        .await
                        .map(|_| ())
                        .map_err(|e| refusal(&e)),
                    Err(r) => Err(r),
                });
            }
            results
        }
        Err(e) => {
            tracing::warn!(error = %e, "MQTT telemetry refused by ingest");
            vec![Err(refusal(&e)); n]
        }
    }
}
