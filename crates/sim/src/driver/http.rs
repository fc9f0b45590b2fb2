//! The HTTP/1.1 client: one keep-alive connection per task, one request in flight on it
//! (HTTP/1.1 answers in order and pipelining is not something servers reward).
//!
//! A minimal client rather than a general one: requests are a pre-formatted head
//! (method, path, `Host`, `Authorization`, `Content-Type`) plus `Content-Length` and the
//! body, written with one call; responses are parsed with `httparse` and their body read
//! by `Content-Length` or chunked framing, then dropped. No TLS, no redirects, no
//! compression — a load generator's job is to send, and to measure the answer, not to
//! browse. A 2xx answer acknowledges the request's events; any other status counts as
//! an error with its code (`http 401`). A broken connection is re-established.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BytesMut};
use ingot_core::Timestamp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::mqtt::short_io;
use super::{Plan, Shared, tcp_connect};
use crate::pacing::Next;
use crate::scenario::Message;

/// Reconnection attempts after a lost connection.
const RECONNECTS: u32 = 5;
/// The largest response head read.
const MAX_HEAD: usize = 64 << 10;

/// How a request went.
enum Outcome {
    /// The status, and whether the connection may be reused.
    Answered(u16, bool),
    /// The connection broke (or timed out); the reason.
    Broken(String),
}

/// Percent-encodes a query component (everything but unreserved characters and `:`).
fn push_query_value(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The head of a request up to and including `Content-Length: `.
fn head(
    path: &str,
    authority: &str,
    token: Option<&str>,
    content_type: &str,
    meta: &[(&'static str, String)],
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("POST ");
    out.push_str(path);
    for (i, (key, value)) in meta.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        push_query_value(&mut out, value);
    }
    let _ = write!(
        out,
        " HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ingot-sim\r\n"
    );
    if let Some(token) = token {
        let _ = write!(out, "Authorization: Bearer {token}\r\n");
    }
    let _ = write!(out, "Content-Type: {content_type}\r\nContent-Length: ");
    out.into_bytes()
}

/// The length of a complete chunked body at the start of `buf`, if it is all there.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let bad = || "bad chunk size".to_owned();
        let line = std::str::from_utf8(&buf[at..at + eol]).map_err(|_| bad())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        at += eol + 2;
        if size == 0 {
            // Trailers (if any) end with an empty line.
            loop {
                let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

/// Reads one response off the connection.
async fn read_response(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<(u16, bool), String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.unwrap_or(0);
                let mut length = None;
                let mut chunked = false;
                let mut close = response.version == Some(0);
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<usize>().ok());
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = h.value.eq_ignore_ascii_case(b"chunked");
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    }
                }
                if (100..200).contains(&status) {
                    buf.advance(head_len);
                    continue;
                }
                let body_len = loop {
                    let body = &buf[head_len..];
                    let complete = if chunked {
                        chunked_len(body)?
                    } else if let Some(n) = length {
                        (body.len() >= n).then_some(n)
                    } else {
                        // Delimited by the end of the connection.
                        None
                    };
                    if let Some(n) = complete {
                        break n;
                    }
                    buf.reserve(8192);
                    let n = stream.read_buf(buf).await.map_err(|e| short_io(&e))?;
                    if n == 0 {
                        if !chunked && length.is_none() {
                            break buf.len() - head_len;
                        }
                        return Err("connection closed in a response".into());
                    }
                };
                buf.advance(head_len + body_len);
                let reusable = !close && (chunked || length.is_some());
                return Ok((status, reusable));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err("response head too large".into());
                }
                buf.reserve(8192);
                let n = stream.read_buf(buf).await.map_err(|e| short_io(&e))?;
                if n == 0 {
                    return Err("connection closed by the server".into());
                }
            }
            Err(e) => return Err(format!("bad response: {e}")),
        }
    }
}

/// Sends one request and reads its answer.
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    head: &[u8],
    message: &Message,
) -> Outcome {
    out.clear();
    out.extend_from_slice(head);
    let _ = std::io::Write::write_fmt(out, format_args!("{}\r\n\r\n", message.body.len()));
    out.extend_from_slice(&message.body);
    if let Err(e) = stream.write_all(out).await {
        return Outcome::Broken(short_io(&e));
    }
    match read_response(stream, buf).await {
        Ok((status, reusable)) => Outcome::Answered(status, reusable),
        Err(reason) => Outcome::Broken(reason),
    }
}

/// The worker of one connection.
pub(crate) async fn worker(mut plan: Plan, mut shared: Shared) {
    let run = shared.run.clone();
    let c = &run.config;
    let (connects, index) = (shared.connects.clone(), plan.index);
    let connect = || async {
        let _permit = connects.acquire().await;
        tokio::time::timeout(
            c.timeout,
            tcp_connect(run.target.addr, index, run.connections),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| short_io(&e))
    };
    let mut stream = match connect().await {
        Ok(stream) => {
            let _ = plan.ready.send(Ok(())).await;
            Some(stream)
        }
        Err(reason) => {
            let _ = plan.ready.send(Err(reason)).await;
            return;
        }
    };
    let Some(start) = shared.started().await else {
        return;
    };
    let mut pacer = plan.pacer(&run, start);
    let content_type = if c.batch > 1 {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let heads: Vec<Vec<u8>> = plan
        .source
        .slots
        .iter()
        .map(|s| {
            head(
                &run.target.path,
                &run.target.authority,
                s.token.as_deref(),
                content_type,
                &[],
            )
        })
        .collect();
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    let mut attempts = 0;
    loop {
        let now = Instant::now();
        if shared.stop.is_cancelled() {
            pacer.stop();
        }
        let scheduled = match pacer.next(now) {
            Next::Done => break,
            Next::At(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = shared.stop.cancelled() => {}
                }
                continue;
            }
            Next::Now(scheduled) => scheduled,
        };
        if plan.source.exhausted() {
            break;
        }
        let Some(conn) = stream.as_mut() else { break };
        let (slot, events) = plan.source.next_request(Timestamp::now());
        let message = &plan.source.request;
        let binary_head;
        let head_bytes: &[u8] = match message.binary {
            Some(media_type) => {
                let token = plan.source.slots[slot].token.as_deref();
                binary_head = head(
                    &run.target.path,
                    &run.target.authority,
                    token,
                    media_type,
                    &message.meta,
                );
                &binary_head
            }
            None => &heads[slot],
        };
        pacer.advance();
        let sent_at = Instant::now();
        plan.recorder.sent(
            events,
            sent_at,
            scheduled.map(|s| sent_at.saturating_duration_since(s)),
        );
        let outcome = tokio::time::timeout(
            c.timeout,
            exchange(conn, &mut buf, &mut out, head_bytes, message),
        )
        .await
        .unwrap_or_else(|_| Outcome::Broken("timeout".into()));
        let done = Instant::now();
        let reason = match outcome {
            Outcome::Answered(status, reusable) => {
                if (200..300).contains(&status) {
                    plan.recorder
                        .acked(events, done, done.saturating_duration_since(sent_at));
                } else {
                    plan.recorder.error(&format!("http {status}"), events);
                }
                plan.recorder.tick(done);
                if reusable {
                    attempts = 0;
                    continue;
                }
                None
            }
            Outcome::Broken(reason) => {
                plan.recorder.error(
                    &if reason == "timeout" {
                        "timeout".to_owned()
                    } else {
                        format!("http {reason}")
                    },
                    events,
                );
                Some(reason)
            }
        };
        // The connection cannot be reused: open another.
        buf.clear();
        if reason.is_some() {
            attempts += 1;
            if attempts > RECONNECTS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts))).await;
        }
        match connect().await {
            Ok(s) => stream = Some(s),
            Err(reason) => {
                shared.stats.connect_error(&format!("reconnect: {reason}"));
                break;
            }
        }
    }
    plan.recorder.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_credentials_and_metadata() {
        let h = head(
            "/api/v1/events",
            "127.0.0.1:8080",
            Some("idt_x"),
            "image/jpeg",
            &[
                ("kind", "motion".into()),
                ("ts", "2026-01-01T00:00:00.000Z".into()),
                ("odd", "a b&c".into()),
            ],
        );
        let text = String::from_utf8(h).unwrap();
        assert!(text.starts_with(
            "POST /api/v1/events?kind=motion&ts=2026-01-01T00:00:00.000Z&odd=a%20b%26c HTTP/1.1\r\n"
        ));
        assert!(text.contains("Authorization: Bearer idt_x\r\n"));
        assert!(text.ends_with("Content-Type: image/jpeg\r\nContent-Length: "));
    }

    #[test]
    fn chunked_bodies_are_measured() {
        assert_eq!(chunked_len(b"5\r\nhello\r\n0\r\n\r\nNEXT"), Ok(Some(15)));
        assert_eq!(chunked_len(b"5\r\nhello\r\n0\r\n"), Ok(None));
        assert_eq!(chunked_len(b"5\r\nhel"), Ok(None));
        assert_eq!(chunked_len(b"0;x=y\r\nT: 1\r\n\r\n"), Ok(Some(15)));
        assert!(chunked_len(b"zz\r\n").is_err());
    }
}
