//! The CoAP client: one task per UDP socket (one socket per device by default, as real
//! devices each have their own endpoint), requests built with `coap-lite`.
//!
//! # Hot path
//!
//! - **Pre-encoded requests.** CoAP puts no length before the payload, so everything up to
//!   and including the payload marker — header, token, Uri-Path, Uri-Query (the token of
//!   the credentials), Content-Format — is the same for every request of a device. It is
//!   encoded once by `coap-lite`; a request is that prefix with its message id and 4-byte
//!   token written in place, followed by the body, in a buffer of the ring slot that
//!   keeps it for retransmission.
//! - **Matching in O(1).** The token is the low 32 bits of a per-socket sequence number,
//!   so a response finds its request in the ring ([`crate::pending`]).
//!
//! # Protocol
//!
//! - Confirmable requests are retransmitted after `--ack-timeout` × a random factor in
//!   [1, 1.5), doubling (RFC 7252 §4.2), until the answer, `--max-retransmit`, or
//!   `--timeout` — whichever comes first; the last is an error (`timeout`).
//! - An empty ACK (separate response coming) stops retransmission; the confirmable
//!   response that follows is acknowledged with an empty ACK.
//! - Non-confirmable requests are not retransmitted; their answers, if the server sends
//!   any (Ingot does), are matched and measured, and the ones that never come are
//!   counted as unanswered, not as errors. They are not held back by the window: when the
//!   ring is full, the oldest is given up as unanswered.
//! - Bodies larger than `--block-size` go block-wise (RFC 7959 Block1), each block
//!   answered 2.31 Continue but the last; the latency is the whole transfer's.
//! - A 2.xx answer acknowledges the events; any other code is an error (`coap 4.01`,
//!   `coap 5.03`), as is an RST (`coap RST`).

use std::io::ErrorKind as IoErrorKind;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType};
use ingot_core::Timestamp;
use tokio::net::UdpSocket;

use super::mqtt::short_io;
use super::{Plan, Shared, udp_bind_addr};
use crate::config::Resolved;
use crate::pacing::Next;
use crate::pending::{Pending, coap_token};
use crate::rng::Rng;
use crate::scenario::Message;

/// Most datagrams sent in a row before the socket is read.
const SEND_BURST: usize = 64;
/// Receive buffer: CoAP responses fit a 1280-byte datagram; a little more is harmless.
const RECV_BUF: usize = 2048;
/// Non-confirmable requests remembered per socket for matching their answers.
const NON_RING: usize = 256;
/// Token length used for every request.
const TKL: usize = 4;

/// Content-Format numbers.
const CF_JSON: u32 = 50;

/// A request (or block-wise transfer) in flight.
#[derive(Debug, Default)]
struct Request {
    /// The datagram last sent, kept for retransmission.
    datagram: Vec<u8>,
    /// When the first datagram went out.
    sent: Option<Instant>,
    events: u64,
    /// Message id of the last transmission.
    mid: u16,
    confirmable: bool,
    /// When to retransmit next (None: not retransmitting).
    retransmit_at: Option<Instant>,
    backoff: Duration,
    retries: u32,
    /// Give up (CON: error; NON: unanswered) at this instant.
    expires: Option<Instant>,
    /// A block-wise upload: the whole body and the next block number.
    upload: Option<Upload>,
}

#[derive(Debug)]
struct Upload {
    body: Vec<u8>,
    options: Vec<(CoapOption, Vec<u8>)>,
    next_block: u32,
    szx: u8,
}

/// Encodes an unsigned option value in as few bytes as possible.
fn encode_uint(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes[skip..].to_vec()
}

/// The options of a request to `path` with `query` items and an optional Content-Format.
fn request_options(
    path: &str,
    query: &[String],
    format: Option<u32>,
) -> Vec<(CoapOption, Vec<u8>)> {
    let mut options = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        options.push((CoapOption::UriPath, segment.as_bytes().to_vec()));
    }
    if let Some(format) = format {
        options.push((CoapOption::ContentFormat, encode_uint(format)));
    }
    for item in query {
        options.push((CoapOption::UriQuery, item.as_bytes().to_vec()));
    }
    options
}

/// Encodes a POST with `options` and `payload` (mid and token zero, to be patched).
fn encode_post(
    confirmable: bool,
    options: &[(CoapOption, Vec<u8>)],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(if confirmable {
        MessageType::Confirmable
    } else {
        MessageType::NonConfirmable
    });
    packet.header.code = MessageClass::Request(RequestType::Post);
    packet.header.message_id = 0;
    packet.set_token(vec![0; TKL]);
    for (number, value) in options {
        let mut list = packet.get_option(*number).cloned().unwrap_or_default();
        list.push_back(value.clone());
        packet.set_option(*number, list);
    }
    packet.payload = payload.to_vec();
    packet.to_bytes_unlimited().map_err(|e| e.to_string())
}

/// The constant prefix of a device's JSON requests: everything up to the payload marker.
fn json_prefix(confirmable: bool, path: &str, token: Option<&str>) -> Result<Vec<u8>, String> {
    let query: Vec<String> = token.map(|t| format!("token={t}")).into_iter().collect();
    let options = request_options(path, &query, Some(CF_JSON));
    // A placeholder byte of payload makes the encoder write the marker; drop the byte.
    let mut bytes = encode_post(confirmable, &options, b"x")?;
    bytes.pop();
    Ok(bytes)
}

/// Writes message id and token into a datagram produced by [`encode_post`].
fn patch(datagram: &mut [u8], mid: u16, token: u32) {
    datagram[2..4].copy_from_slice(&mid.to_be_bytes());
    datagram[4..4 + TKL].copy_from_slice(&token.to_be_bytes());
}

/// The 2-bit message type, 4-bit token length, code, message id and token of a datagram.
struct Header<'a> {
    kind: u8,
    code: u8,
    mid: u16,
    token: &'a [u8],
}

fn read_header(datagram: &[u8]) -> Option<Header<'_>> {
    let [first, code, hi, lo, ..] = *datagram else {
        return None;
    };
    if first >> 6 != 1 {
        return None;
    }
    let tkl = usize::from(first & 0x0F);
    let token = datagram.get(4..4 + tkl)?;
    Some(Header {
        kind: (first >> 4) & 0x3,
        code,
        mid: u16::from_be_bytes([hi, lo]),
        token,
    })
}

/// `2.01` from the code byte.
fn code_name(code: u8) -> String {
    format!("{}.{:02}", code >> 5, code & 0x1F)
}

/// The socket and what the socket's task needs to send.
struct Endpoint<'a> {
    socket: UdpSocket,
    run: &'a Resolved,
    next_mid: u16,
    rng: Rng,
}

impl Endpoint<'_> {
    fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    /// The first retransmission timeout: ACK_TIMEOUT × [1, 1.5).
    fn first_backoff(&mut self) -> Duration {
        self.run
            .config
            .coap
            .ack_timeout
            .mul_f64(self.rng.range(1.0, 1.5))
    }

    async fn send(&self, datagram: &[u8]) -> Result<(), String> {
        match self.socket.send(datagram).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == IoErrorKind::ConnectionRefused => Err("port unreachable".into()),
            Err(e) => Err(short_io(&e)),
        }
    }
}

/// Binds and connects a UDP socket for worker `index` of `total`.
pub(crate) async fn socket(
    run: &Resolved,
    index: usize,
    total: usize,
) -> Result<UdpSocket, String> {
    let socket = UdpSocket::bind(udp_bind_addr(run.target.addr, index, total))
        .await
        .map_err(|e| short_io(&e))?;
    socket
        .connect(run.target.addr)
        .await
        .map_err(|e| short_io(&e))?;
    Ok(socket)
}

/// The worker of one socket.
pub(crate) async fn worker(mut plan: Plan, mut shared: Shared) {
    let run = shared.run.clone();
    let c = &run.config;
    let confirmable = c.coap.confirmable;
    let socket = {
        let _permit = shared.connects.acquire().await;
        socket(&run, plan.index, run.connections).await
    };
    let prefixes: Result<Vec<Vec<u8>>, String> = plan
        .source
        .slots
        .iter()
        .map(|s| json_prefix(confirmable, &run.target.path, s.token.as_deref()))
        .collect();
    let (socket, prefixes) = match (socket, prefixes) {
        (Ok(socket), Ok(prefixes)) => {
            let _ = plan.ready.send(Ok(())).await;
            (socket, prefixes)
        }
        (Err(reason), _) | (_, Err(reason)) => {
            let _ = plan.ready.send(Err(reason)).await;
            return;
        }
    };
    let Some(start) = shared.started().await else {
        return;
    };
    let mut pacer = plan.pacer(&run, start);
    let mut endpoint = Endpoint {
        socket,
        run: &run,
        next_mid: (plan.index as u16).wrapping_mul(7919),
        rng: Rng::new(c.scenario.seed, 0xC0A9 ^ plan.index as u64),
    };
    // Non-confirmable requests are not held back by the window (see the module docs):
    // keep enough of them to match answers at high rates.
    let ring = if confirmable {
        run.window
    } else {
        run.window.max(NON_RING)
    };
    let mut pending: Pending<Request> = Pending::new(ring);
    let mut rbuf = vec![0u8; RECV_BUF];
    let mut issuing = true;
    let mut drain_until: Option<Instant> = None;
    let mut next_timer: Option<Instant> = None;
    let mut spins = 0u32;
    loop {
        let now = Instant::now();
        let mut progress = false;
        let mut wake: Option<Instant> = None;
        if issuing {
            if shared.stop.is_cancelled() {
                pacer.stop();
            }
            let ts = Timestamp::now();
            for _ in 0..SEND_BURST {
                let scheduled = match pacer.next(now) {
                    Next::Done => {
                        issuing = false;
                        break;
                    }
                    Next::At(at) => {
                        wake = Some(at);
                        break;
                    }
                    Next::Now(scheduled) => scheduled,
                };
                if plan.source.exhausted() {
                    issuing = false;
                    break;
                }
                if !pending.has_room() {
                    if confirmable {
                        break;
                    }
                    // Non-confirmable: give up the oldest rather than wait.
                    if let Some((seq, r)) = pending.oldest() {
                        let events = r.events;
                        pending.remove(seq);
                        plan.recorder.unanswered(events);
                    }
                }
                let (slot, events) = plan.source.next_request(ts);
                let mid = endpoint.mid();
                let backoff = endpoint.first_backoff();
                let (seq, request) = pending.push();
                request.sent = Some(now);
                request.events = events;
                request.mid = mid;
                request.confirmable = confirmable;
                request.retries = 0;
                request.backoff = backoff;
                request.retransmit_at = confirmable.then_some(now + backoff);
                request.expires = Some(now + c.timeout);
                request.upload = None;
                let built = build(
                    request,
                    &plan.source.request,
                    &prefixes[slot],
                    &run,
                    plan.source.slots[slot].token.as_deref(),
                    mid,
                    coap_token(seq),
                );
                pacer.advance();
                plan.recorder.sent(
                    events,
                    now,
                    scheduled.map(|s| now.saturating_duration_since(s)),
                );
                let sent = match built {
                    Ok(()) => endpoint.send(&request.datagram).await,
                    Err(reason) => Err(reason),
                };
                if let Err(reason) = sent {
                    pending.remove(seq);
                    plan.recorder.error(&format!("coap {reason}"), events);
                } else if let Some(r) = pending.get_mut(seq) {
                    let deadline = r.retransmit_at.or(r.expires);
                    next_timer = min_instant(next_timer, deadline);
                }
                progress = true;
            }
            if !issuing {
                drain_until = Some(now + c.timeout);
            }
        }
        // Answers.
        loop {
            match endpoint.socket.try_recv(&mut rbuf) {
                Ok(n) => {
                    progress = true;
                    let at = Instant::now();
                    answer(
                        &rbuf[..n],
                        &mut endpoint,
                        &mut pending,
                        &mut plan,
                        at,
                        &mut next_timer,
                    )
                    .await;
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => break,
                // ICMP port unreachable from an earlier datagram: requests will time out.
                Err(e) if e.kind() == IoErrorKind::ConnectionRefused => {}
                Err(e) => {
                    plan.recorder.error(&format!("coap {}", short_io(&e)), 0);
                    break;
                }
            }
        }
        // Retransmissions and expiries.
        if next_timer.is_some_and(|t| t <= now) {
            next_timer = timers(&mut endpoint, &mut pending, &mut plan, now).await;
        }
        if !issuing && pending.is_empty() {
            break;
        }
        if let Some(until) = drain_until {
            if now >= until {
                let mut left = 0;
                pending.for_each_live(|_, r| left += r.events);
                plan.recorder.unanswered(left);
                break;
            }
            wake = min_instant(wake, Some(until));
        }
        wake = min_instant(wake, next_timer);
        plan.recorder.tick(now);
        if progress {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
            continue;
        }
        tokio::select! {
            r = endpoint.socket.readable() => {
                if let Err(e) = r {
                    plan.recorder.error(&format!("coap {}", short_io(&e)), 0);
                    break;
                }
            }
            () = sleep_until(wake) => {}
            () = shared.stop.cancelled(), if issuing => {}
        }
    }
    plan.recorder.flush();
}

fn min_instant(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Fills `request.datagram` with the first datagram of `message`.
fn build(
    request: &mut Request,
    message: &Message,
    prefix: &[u8],
    run: &Resolved,
    token: Option<&str>,
    mid: u16,
    tok: u32,
) -> Result<(), String> {
    let block_size = run.config.coap.block_size;
    let needs_blocks = block_size > 0 && message.body.len() > block_size;
    if message.binary.is_none() && !needs_blocks {
        request.datagram.clear();
        request.datagram.extend_from_slice(prefix);
        request.datagram.extend_from_slice(&message.body);
        patch(&mut request.datagram, mid, tok);
        return Ok(());
    }
    // Options vary per message (binary metadata) or per block: encode with coap-lite.
    let mut query: Vec<String> = message
        .meta
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(t) = token {
        query.push(format!("token={t}"));
    }
    let format = match message.binary {
        Some("image/jpeg") => 22,
        Some("image/png") => 23,
        Some("image/gif") => 21,
        Some(_) => 42,
        None => CF_JSON,
    };
    let options = request_options(&run.target.path, &query, Some(format));
    if !needs_blocks {
        request.datagram = encode_post(request.confirmable, &options, &message.body)?;
        patch(&mut request.datagram, mid, tok);
        return Ok(());
    }
    let szx = (block_size.clamp(16, 1024).ilog2() - 4) as u8;
    request.upload = Some(Upload {
        body: message.body.clone(),
        options,
        next_block: 0,
        szx,
    });
    next_block(request, mid, tok)
}

/// Encodes the next block of an upload into `request.datagram`.
fn next_block(request: &mut Request, mid: u16, tok: u32) -> Result<(), String> {
    let confirmable = request.confirmable;
    let Some(upload) = request.upload.as_mut() else {
        return Err("no upload in progress".into());
    };
    let size = 16usize << upload.szx;
    let start = upload.next_block as usize * size;
    let end = (start + size).min(upload.body.len());
    let more = end < upload.body.len();
    let mut options = upload.options.clone();
    let value = (upload.next_block << 4) | (u32::from(more) << 3) | u32::from(upload.szx);
    options.push((CoapOption::Block1, encode_uint(value)));
    if upload.next_block == 0 {
        options.push((CoapOption::Size1, encode_uint(upload.body.len() as u32)));
    }
    request.datagram = encode_post(confirmable, &options, &upload.body[start..end])?;
    patch(&mut request.datagram, mid, tok);
    upload.next_block += 1;
    Ok(())
}

/// Handles one datagram from the server.
async fn answer(
    datagram: &[u8],
    endpoint: &mut Endpoint<'_>,
    pending: &mut Pending<Request>,
    plan: &mut Plan,
    now: Instant,
    next_timer: &mut Option<Instant>,
) {
    let Some(h) = read_header(datagram) else {
        return;
    };
    const ACK: u8 = 2;
    const RST: u8 = 3;
    const CON: u8 = 0;
    if h.code == 0 {
        // Empty: an ACK (separate response coming) or an RST, matched by message id.
        let mut found = None;
        pending.for_each_live(|seq, r| {
            if r.mid == h.mid {
                found = Some(seq);
            }
        });
        let Some(seq) = found else { return };
        if h.kind == RST {
            if let Some(r) = pending.remove(seq) {
                let events = r.events;
                plan.recorder.error("coap RST", events);
            }
        } else if h.kind == ACK
            && let Some(r) = pending.get_mut(seq)
        {
            r.retransmit_at = None;
        }
        return;
    }
    if h.kind == CON {
        // A separate response: acknowledge it.
        let [hi, lo] = h.mid.to_be_bytes();
        let _ = endpoint.send(&[0x60, 0, hi, lo]).await;
    }
    let Ok(token) = <[u8; TKL]>::try_from(h.token) else {
        return;
    };
    let Some(seq) = pending.seq_of_token(u32::from_be_bytes(token)) else {
        return;
    };
    const CONTINUE: u8 = 0x5F;
    let continuing = h.code == CONTINUE
        && pending
            .get_mut(seq)
            .and_then(|r| r.upload.as_ref())
            .is_some_and(|u| (u.next_block as usize) * (16usize << u.szx) < u.body.len());
    if continuing {
        let mid = endpoint.mid();
        let backoff = endpoint.first_backoff();
        let Some(r) = pending.get_mut(seq) else {
            return;
        };
        r.mid = mid;
        r.retries = 0;
        r.backoff = backoff;
        r.retransmit_at = r.confirmable.then_some(now + backoff);
        let result = next_block(r, mid, coap_token(seq));
        let datagram = std::mem::take(&mut r.datagram);
        let sent = match result {
            Ok(()) => endpoint.send(&datagram).await,
            Err(reason) => Err(reason),
        };
        if let Some(r) = pending.get_mut(seq) {
            r.datagram = datagram;
            *next_timer = min_instant(*next_timer, r.retransmit_at);
        }
        if let Err(reason) = sent
            && let Some(r) = pending.remove(seq)
        {
            let events = r.events;
            plan.recorder.error(&format!("coap {reason}"), events);
        }
        return;
    }
    let Some(r) = pending.remove(seq) else { return };
    let (events, sent) = (r.events, r.sent);
    r.upload = None;
    if h.code >> 5 == 2 {
        if let Some(sent) = sent {
            plan.recorder
                .acked(events, now, now.saturating_duration_since(sent));
        }
    } else {
        plan.recorder
            .error(&format!("coap {}", code_name(h.code)), events);
    }
}

/// Retransmits and expires what is due; returns the next timer.
async fn timers(
    endpoint: &mut Endpoint<'_>,
    pending: &mut Pending<Request>,
    plan: &mut Plan,
    now: Instant,
) -> Option<Instant> {
    let max_retransmit = endpoint.run.config.coap.max_retransmit;
    let mut expired = Vec::new();
    let mut resend = Vec::new();
    let mut next = None;
    pending.for_each_live(|seq, r| {
        if r.expires.is_some_and(|e| e <= now) {
            expired.push(seq);
            return;
        }
        if let Some(at) = r.retransmit_at
            && at <= now
        {
            if r.retries < max_retransmit {
                r.retries += 1;
                r.backoff *= 2;
                r.retransmit_at = Some(now + r.backoff);
                resend.push(seq);
            } else {
                r.retransmit_at = None;
            }
        }
        next = min_instant(next, min_instant(r.retransmit_at, r.expires));
    });
    for seq in expired {
        if let Some(r) = pending.remove(seq) {
            let (events, confirmable) = (r.events, r.confirmable);
            r.upload = None;
            if confirmable {
                plan.recorder.error("timeout", events);
            } else {
                plan.recorder.unanswered(events);
            }
        }
    }
    for seq in resend {
        if let Some(r) = pending.get_mut(seq) {
            let datagram = std::mem::take(&mut r.datagram);
            let _ = endpoint.send(&datagram).await;
            plan.recorder.retransmit();
            if let Some(r) = pending.get_mut(seq) {
                r.datagram = datagram;
            }
        }
    }
    next
}

/// Sends one request from a fresh socket and waits for its answer (retransmitting): what
/// makes an idle endpoint known to the server. Returns the socket to keep it open.
pub(crate) async fn introduce(
    run: &Resolved,
    index: usize,
    total: usize,
    message: &Message,
    token: Option<&str>,
) -> Result<UdpSocket, String> {
    let socket = socket(run, index, total).await?;
    let prefix = json_prefix(true, &run.target.path, token)?;
    let mut datagram = prefix;
    datagram.extend_from_slice(&message.body);
    let mid = (index as u16).wrapping_mul(31).wrapping_add(1);
    patch(&mut datagram, mid, index as u32);
    let deadline = Instant::now() + run.config.timeout;
    let mut backoff = run.config.coap.ack_timeout;
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        socket.send(&datagram).await.map_err(|e| short_io(&e))?;
        let wait = backoff.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let Some(h) = read_header(&buf[..n]) else {
                    continue;
                };
                if h.code == 0 {
                    // Empty ACK: the answer follows.
                    continue;
                }
                if h.code >> 5 == 2 {
                    return Ok(socket);
                }
                return Err(format!("coap {}", code_name(h.code)));
            }
            Ok(Err(e)) => return Err(short_io(&e)),
            Err(_) if Instant::now() >= deadline => return Err("timeout".into()),
            Err(_) => backoff *= 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::LinkedList;

    use super::*;

    #[test]
    fn the_prefix_and_a_body_make_the_request_coap_lite_would_make() {
        let prefix = json_prefix(true, "/events", Some("idt_abc")).unwrap();
        let body = br#"{"device":"d","value":1}"#;
        let mut ours = prefix.clone();
        ours.extend_from_slice(body);
        patch(&mut ours, 0x1234, 0xDEAD_BEEF);
        let packet = Packet::from_bytes(&ours).unwrap();
        assert_eq!(packet.header.message_id, 0x1234);
        assert_eq!(packet.get_token(), &[0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(packet.header.get_type(), MessageType::Confirmable);
        assert_eq!(packet.header.code, MessageClass::Request(RequestType::Post));
        assert_eq!(packet.payload, body);
        let path: Vec<&[u8]> = packet
            .get_option(CoapOption::UriPath)
            .unwrap()
            .iter()
            .map(Vec::as_slice)
            .collect();
        assert_eq!(path, vec![b"events".as_slice()]);
        let query: &LinkedList<Vec<u8>> = packet.get_option(CoapOption::UriQuery).unwrap();
        assert_eq!(query.front().unwrap(), b"token=idt_abc");
        assert_eq!(
            packet
                .get_option(CoapOption::ContentFormat)
                .unwrap()
                .front()
                .unwrap(),
            &vec![50u8]
        );
        let h = read_header(&ours).unwrap();
        assert_eq!((h.kind, h.code, h.mid), (0, 0x02, 0x1234));
        assert_eq!(code_name(0x41), "2.01");
        assert_eq!(code_name(0xA3), "5.03");
    }

    #[test]
    fn uploads_are_cut_into_blocks() {
        let mut request = Request {
            confirmable: true,
            upload: Some(Upload {
                body: (0..2500u32).map(|i| i as u8).collect(),
                options: request_options("/events", &[], Some(22)),
                next_block: 0,
                szx: 6,
            }),
            ..Request::default()
        };
        let mut blocks = Vec::new();
        for i in 0..3u16 {
            next_block(&mut request, i, 7).unwrap();
            let packet = Packet::from_bytes(&request.datagram).unwrap();
            let block = packet
                .get_option(CoapOption::Block1)
                .unwrap()
                .front()
                .unwrap()
                .clone();
            blocks.push((block, packet.payload.len()));
        }
        // 1024-byte blocks: 0 (more), 1 (more), 2 (last, 452 bytes).
        assert_eq!(blocks[0], (vec![0x0E], 1024));
        assert_eq!(blocks[1], (vec![0x1E], 1024));
        assert_eq!(blocks[2], (vec![0x26], 452));
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(300), vec![1, 44]);
    }
}
