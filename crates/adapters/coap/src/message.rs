//! CoAP vocabulary on top of `coap-lite`'s packet codec: codes, option numbers, content
//! formats, block values, and the request view the engine routes on.
//!
//! `coap-lite` decodes and encodes datagrams; this module reads its options strictly
//! (RFC 7252 §5.4: an unrecognised or malformed *critical* option refuses the request with
//! 4.02, an elective one is ignored) and builds responses. Block option values are decoded
//! here rather than with `coap-lite`'s `BlockValue`, whose 16-bit block number cannot hold
//! RFC 7959's 20 bits (a 1 MiB body in 16-byte blocks has 65 536 of them).

use std::net::SocketAddr;

use bytes::Bytes;
use coap_lite::{MessageClass, MessageType, Packet};

use crate::error::RequestError;

/// Response codes as their byte (`class << 5 | detail`).
pub mod code {
    /// 2.01 Created.
    pub const CREATED: u8 = 0x41;
    /// 2.05 Content.
    pub const CONTENT: u8 = 0x45;
    /// 2.31 Continue.
    pub const CONTINUE: u8 = 0x5F;
    /// 4.00 Bad Request.
    pub const BAD_REQUEST: u8 = 0x80;
    /// 4.01 Unauthorized.
    pub const UNAUTHORIZED: u8 = 0x81;
    /// 4.02 Bad Option.
    pub const BAD_OPTION: u8 = 0x82;
    /// 4.03 Forbidden.
    pub const FORBIDDEN: u8 = 0x83;
    /// 4.04 Not Found.
    pub const NOT_FOUND: u8 = 0x84;
    /// 4.05 Method Not Allowed.
    pub const METHOD_NOT_ALLOWED: u8 = 0x85;
    /// 4.06 Not Acceptable.
    pub const NOT_ACCEPTABLE: u8 = 0x86;
    /// 4.08 Request Entity Incomplete.
    pub const REQUEST_ENTITY_INCOMPLETE: u8 = 0x88;
    /// 4.09 Conflict.
    pub const CONFLICT: u8 = 0x89;
    /// 4.13 Request Entity Too Large.
    pub const REQUEST_ENTITY_TOO_LARGE: u8 = 0x8D;
    /// 4.15 Unsupported Content-Format.
    pub const UNSUPPORTED_CONTENT_FORMAT: u8 = 0x8F;
    /// 4.29 Too Many Requests (RFC 8516).
    pub const TOO_MANY_REQUESTS: u8 = 0x9D;
    /// 5.00 Internal Server Error.
    pub const INTERNAL_SERVER_ERROR: u8 = 0xA0;
    /// 5.03 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: u8 = 0xA3;
    /// 5.05 Proxying Not Supported.
    pub const PROXYING_NOT_SUPPORTED: u8 = 0xA5;

    /// The dotted name of a code (`"2.01"`), for metrics labels; `"other"` for codes this
    /// server never sends.
    pub fn name(code: u8) -> &'static str {
        match code {
            CREATED => "2.01",
            CONTENT => "2.05",
            CONTINUE => "2.31",
            BAD_REQUEST => "4.00",
            UNAUTHORIZED => "4.01",
            BAD_OPTION => "4.02",
            FORBIDDEN => "4.03",
            NOT_FOUND => "4.04",
            METHOD_NOT_ALLOWED => "4.05",
            NOT_ACCEPTABLE => "4.06",
            REQUEST_ENTITY_INCOMPLETE => "4.08",
            CONFLICT => "4.09",
            REQUEST_ENTITY_TOO_LARGE => "4.13",
            UNSUPPORTED_CONTENT_FORMAT => "4.15",
            INTERNAL_SERVER_ERROR => "5.00",
            SERVICE_UNAVAILABLE => "5.03",
            PROXYING_NOT_SUPPORTED => "5.05",
            _ => "other",
        }
    }
}

/// Option numbers (RFC 7252 §5.10, RFC 7641, RFC 7959, RFC 8613).
pub mod opt {
    /// If-Match (critical).
    pub const IF_MATCH: u16 = 1;
    /// Uri-Host (critical).
    pub const URI_HOST: u16 = 3;
    /// ETag.
    pub const ETAG: u16 = 4;
    /// If-None-Match (critical).
    pub const IF_NONE_MATCH: u16 = 5;
    /// Observe.
    pub const OBSERVE: u16 = 6;
    /// Uri-Port (critical).
    pub const URI_PORT: u16 = 7;
    /// OSCORE (critical).
    pub const OSCORE: u16 = 9;
    /// Uri-Path (critical).
    pub const URI_PATH: u16 = 11;
    /// Content-Format.
    pub const CONTENT_FORMAT: u16 = 12;
    /// Max-Age.
    pub const MAX_AGE: u16 = 14;
    /// Uri-Query (critical).
    pub const URI_QUERY: u16 = 15;
    /// Accept (critical).
    pub const ACCEPT: u16 = 17;
    /// Block2 (critical).
    pub const BLOCK2: u16 = 23;
    /// Block1 (critical).
    pub const BLOCK1: u16 = 27;
    /// Size2.
    pub const SIZE2: u16 = 28;
    /// Proxy-Uri (critical).
    pub const PROXY_URI: u16 = 35;
    /// Proxy-Scheme (critical).
    pub const PROXY_SCHEME: u16 = 39;
    /// Size1.
    pub const SIZE1: u16 = 60;
}

/// Content-Format numbers this server reads or writes.
pub mod cf {
    /// text/plain; charset=utf-8.
    pub const TEXT: u16 = 0;
    /// application/link-format.
    pub const LINK_FORMAT: u16 = 40;
    /// application/json.
    pub const JSON: u16 = 50;
    /// application/cbor.
    pub const CBOR: u16 = 60;

    /// The media type of a binary Content-Format accepted as a picture or blob.
    pub fn binary_media_type(format: u16) -> Option<&'static str> {
        match format {
            21 => Some("image/gif"),
            22 => Some("image/jpeg"),
            23 => Some("image/png"),
            42 => Some("application/octet-stream"),
            _ => None,
        }
    }
}

/// Message types (the two `T` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CON.
    Con,
    /// NON.
    Non,
    /// ACK.
    Ack,
    /// RST.
    Rst,
}

impl Kind {
    fn from_bits(first_byte: u8) -> Kind {
        match (first_byte >> 4) & 0x3 {
            0 => Kind::Con,
            1 => Kind::Non,
            2 => Kind::Ack,
            _ => Kind::Rst,
        }
    }

    fn message_type(self) -> MessageType {
        match self {
            Kind::Con => MessageType::Confirmable,
            Kind::Non => MessageType::NonConfirmable,
            Kind::Ack => MessageType::Acknowledgement,
            Kind::Rst => MessageType::Reset,
        }
    }
}

/// The fixed 4-byte header, read before (and even without) a full decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    /// Protocol version (must be 1).
    pub version: u8,
    /// Message type.
    pub kind: Kind,
    /// The code byte.
    pub code: u8,
    /// Message id.
    pub mid: u16,
}

impl RawHeader {
    /// The header of a datagram, if it has one.
    pub fn read(datagram: &[u8]) -> Option<RawHeader> {
        let [first, code, mid_hi, mid_lo, ..] = *datagram else {
            return None;
        };
        Some(RawHeader {
            version: first >> 6,
            kind: Kind::from_bits(first),
            code,
            mid: u16::from_be_bytes([mid_hi, mid_lo]),
        })
    }
}

/// Whether a datagram that decoded has a payload marker followed by nothing, a message
/// format error (RFC 7252 §3) that `coap-lite` accepts as an empty payload.
pub fn marker_without_payload(datagram: &[u8]) -> bool {
    if datagram.last() != Some(&0xFF) {
        return false;
    }
    let Some(&first) = datagram.first() else {
        return false;
    };
    let mut at = 4 + usize::from(first & 0x0F);
    while let Some(&byte) = datagram.get(at) {
        if byte == 0xFF {
            return at + 1 == datagram.len();
        }
        at += 1;
        at += match byte >> 4 {
            13 => 1,
            14 => 2,
            _ => 0,
        };
        let len = match byte & 0x0F {
            13 => match datagram.get(at) {
                Some(&ext) => {
                    at += 1;
                    usize::from(ext) + 13
                }
                None => return false,
            },
            14 => match (datagram.get(at), datagram.get(at + 1)) {
                (Some(&hi), Some(&lo)) => {
                    at += 2;
                    usize::from(u16::from_be_bytes([hi, lo])) + 269
                }
                _ => return false,
            },
            len => usize::from(len),
        };
        at += len;
    }
    false
}

/// A request token (0 to 8 bytes), kept inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    /// A token from its bytes; `None` beyond 8 bytes.
    pub fn new(bytes: &[u8]) -> Option<Token> {
        let len = bytes.len();
        let mut token = Token {
            len: u8::try_from(len).ok().filter(|&l| l <= 8)?,
            bytes: [0; 8],
        };
        token.bytes.get_mut(..len)?.copy_from_slice(bytes);
        Some(token)
    }

    /// The token of a decoded packet (`coap-lite` refuses tokens over 8 bytes).
    pub fn of(packet: &Packet) -> Token {
        Token::new(packet.get_token()).unwrap_or_default()
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(8)]
    }
}

/// A Block1 or Block2 option value (RFC 7959 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Block number (20 bits).
    pub num: u32,
    /// More blocks follow.
    pub more: bool,
    /// Size exponent: the block holds `16 << szx` bytes (0..=6; 7 is BERT, not for UDP).
    pub szx: u8,
}

impl Block {
    /// Block size in bytes.
    pub fn size(self) -> usize {
        16 << self.szx.min(6)
    }

    /// Byte offset of this block.
    pub fn offset(self) -> usize {
        (self.num as usize) << (usize::from(self.szx.min(6)) + 4)
    }

    fn decode(value: &[u8]) -> Option<Block> {
        let raw = decode_uint(value, 3)?;
        Some(Block {
            num: raw >> 4,
            more: raw & 0x8 != 0,
            szx: (raw & 0x7) as u8,
        })
    }

    /// The option value.
    pub fn encode(self) -> Vec<u8> {
        encode_uint((self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx & 0x7))
    }
}

/// Reads an unsigned option value of at most `max_len` bytes.
pub fn decode_uint(value: &[u8], max_len: usize) -> Option<u32> {
    if value.len() > max_len || value.len() > 4 {
        return None;
    }
    Some(value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// An unsigned option value in the fewest bytes (0 is the empty value).
pub fn encode_uint(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes[skip..].to_vec()
}

/// Request methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// 0.01.
    Get,
    /// 0.02.
    Post,
    /// 0.03.
    Put,
    /// 0.04.
    Delete,
    /// Anything else in class 0 (FETCH, PATCH, iPATCH, unassigned).
    Other(u8),
}

impl Method {
    /// From a request code (class 0, detail 1 to 31).
    pub fn from_code(code: u8) -> Method {
        match code {
            0x01 => Method::Get,
            0x02 => Method::Post,
            0x03 => Method::Put,
            0x04 => Method::Delete,
            other => Method::Other(other),
        }
    }

    /// The name, also the `method` metrics label.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Other(0x05) => "FETCH",
            Method::Other(0x06) => "PATCH",
            Method::Other(0x07) => "iPATCH",
            Method::Other(_) => "other",
        }
    }
}

/// URI-Query arguments, split at the first `=`, in order.
pub type Params = Vec<(String, String)>;

/// A request as the engine routes it: the options it understands, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Uri-Path segments.
    pub path: Vec<String>,
    /// Uri-Query arguments split at the first `=`, in order.
    pub query: Params,
    /// Content-Format of the payload.
    pub content_format: Option<u16>,
    /// Accept.
    pub accept: Option<u16>,
    /// Observe (0 register, 1 deregister).
    pub observe: Option<u32>,
    /// Block1 (this request carries one block of a larger body).
    pub block1: Option<Block>,
    /// Block2 (which block of the response to send, or the preferred size).
    pub block2: Option<Block>,
    /// Size1 (the announced size of the whole body).
    pub size1: Option<u32>,
}

impl Request {
    /// The path as written in diagnostics: `events/latest`.
    pub fn path_text(&self) -> String {
        self.path.join("/")
    }

    /// Identifies the target resource and its query for block-wise state: path and query,
    /// without the block options.
    pub fn resource_key(&self) -> String {
        let mut key = self.path_text();
        for (i, (k, v)) in self.query.iter().enumerate() {
            key.push(if i == 0 { '?' } else { '&' });
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }
}

fn option_name(number: u16) -> &'static str {
    match number {
        opt::IF_MATCH => "If-Match",
        opt::URI_HOST => "Uri-Host",
        opt::IF_NONE_MATCH => "If-None-Match",
        opt::URI_PORT => "Uri-Port",
        opt::OSCORE => "OSCORE",
        opt::URI_PATH => "Uri-Path",
        opt::URI_QUERY => "Uri-Query",
        opt::ACCEPT => "Accept",
        opt::BLOCK2 => "Block2",
        opt::BLOCK1 => "Block1",
        opt::PROXY_URI => "Proxy-Uri",
        opt::PROXY_SCHEME => "Proxy-Scheme",
        _ => "unrecognised",
    }
}

fn bad_option(number: u16, reason: impl Into<String>) -> RequestError {
    RequestError::BadOption {
        number,
        name: option_name(number),
        reason: reason.into(),
    }
}

/// Reads the options of a request (class 0 code) strictly.
pub fn parse_request(packet: &Packet) -> Result<Request, RequestError> {
    let mut request = Request {
        method: Method::from_code(u8::from(packet.header.code)),
        path: Vec::new(),
        query: Vec::new(),
        content_format: None,
        accept: None,
        observe: None,
        block1: None,
        block2: None,
        size1: None,
    };
    for (&number, values) in packet.options() {
        let single = || -> Result<&[u8], RequestError> {
            let mut iter = values.iter();
            match (iter.next(), iter.next()) {
                (Some(v), None) => Ok(v.as_slice()),
                _ => Err(bad_option(number, "must not be repeated")),
            }
        };
        // Elective options with a malformed value are ignored (RFC 7252 §5.4.3).
        let elective_uint = |max_len: usize| values.front().and_then(|v| decode_uint(v, max_len));
        match number {
            opt::URI_HOST | opt::URI_PORT => {
                single()?;
            }
            opt::URI_PATH => {
                for value in values {
                    let segment = std::str::from_utf8(value)
                        .map_err(|_| bad_option(number, "is not UTF-8"))?;
                    request.path.push(segment.to_owned());
                }
            }
            opt::URI_QUERY => {
                for value in values {
                    let arg = std::str::from_utf8(value)
                        .map_err(|_| bad_option(number, "is not UTF-8"))?;
                    let (k, v) = arg.split_once('=').unwrap_or((arg, ""));
                    request.query.push((k.to_owned(), v.to_owned()));
                }
            }
            opt::CONTENT_FORMAT => request.content_format = elective_uint(2).map(|v| v as u16),
            opt::ACCEPT => {
                let value = decode_uint(single()?, 2)
                    .ok_or_else(|| bad_option(number, "must be a number of at most 2 bytes"))?;
                request.accept = Some(value as u16);
            }
            opt::OBSERVE => request.observe = elective_uint(3),
            opt::SIZE1 => request.size1 = elective_uint(4),
            opt::BLOCK1 | opt::BLOCK2 => {
                let block = Block::decode(single()?)
                    .ok_or_else(|| bad_option(number, "must be a number of at most 3 bytes"))?;
                if block.szx == 7 {
                    return Err(bad_option(
                        number,
                        "SZX 7 (BERT) is only for CoAP over TCP; use blocks of 16 to 1024 bytes",
                    ));
                }
                if number == opt::BLOCK1 {
                    request.block1 = Some(block);
                } else {
                    request.block2 = Some(block);
                }
            }
            opt::PROXY_URI | opt::PROXY_SCHEME => return Err(RequestError::Proxying),
            opt::IF_MATCH | opt::IF_NONE_MATCH => {
                return Err(bad_option(number, "conditional requests are not supported"));
            }
            n if n % 2 == 1 => {
                return Err(bad_option(
                    n,
                    "is a critical option this server does not understand",
                ));
            }
            // Elective options (ETag, Max-Age, Size2, No-Response, ...) are ignored.
            _ => {}
        }
    }
    Ok(request)
}

/// A response before it is framed: code, options and payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// The code byte.
    pub code: u8,
    /// Options (number, value), any order.
    pub options: Vec<(u16, Vec<u8>)>,
    /// The payload.
    pub payload: Bytes,
}

impl Response {
    /// A response with a code and nothing else.
    pub fn new(code: u8) -> Response {
        Response {
            code,
            ..Response::default()
        }
    }

    /// Adds an option.
    pub fn with(mut self, number: u16, value: Vec<u8>) -> Response {
        self.options.push((number, value));
        self
    }

    /// Adds an unsigned option.
    pub fn with_uint(self, number: u16, value: u32) -> Response {
        self.with(number, encode_uint(value))
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: impl Into<Bytes>) -> Response {
        self.payload = payload.into();
        self
    }

    /// The error response: its code, a diagnostic payload (no Content-Format, RFC 7252
    /// §5.5.2), Max-Age for 5.03 and Size1 for 4.13.
    pub fn error(error: &RequestError) -> Response {
        let mut response = Response::new(error.code());
        if let Some(max_age) = error.max_age() {
            response = response.with_uint(opt::MAX_AGE, max_age);
        }
        if let Some(size1) = error.size1() {
            response = response.with_uint(opt::SIZE1, u32::try_from(size1).unwrap_or(u32::MAX));
        }
        response.with_payload(truncate_diagnostic(error.diagnostic()))
    }
}

/// Longest diagnostic payload: the whole response must fit one datagram of a constrained
/// network (RFC 7252 §4.6 suggests 1152 bytes of payload at most).
const MAX_DIAGNOSTIC: usize = 512;

fn truncate_diagnostic(mut text: String) -> String {
    if text.len() > MAX_DIAGNOSTIC {
        let mut cut = MAX_DIAGNOSTIC - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// The largest datagram the server writes.
const MAX_DATAGRAM: usize = 65_507;

/// Frames a message. `None` only if it cannot be framed (a payload over 64 KiB, which the
/// engine never builds).
pub fn encode(kind: Kind, mid: u16, token: Token, response: &Response) -> Option<Bytes> {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(kind.message_type());
    packet.header.code = MessageClass::from(response.code);
    packet.header.message_id = mid;
    packet.set_token(token.as_slice().to_vec());
    for (number, value) in &response.options {
        packet.add_option(coap_lite::CoapOption::from(*number), value.clone());
    }
    packet.payload = response.payload.to_vec();
    packet
        .to_bytes_with_limit(MAX_DATAGRAM)
        .ok()
        .map(Bytes::from)
}

/// An empty message (ACK or RST) echoing `mid`: 4 bytes, no token.
pub fn empty(kind: Kind, mid: u16) -> Bytes {
    let type_bits: u8 = match kind {
        Kind::Con => 0,
        Kind::Non => 1,
        Kind::Ack => 2,
        Kind::Rst => 3,
    };
    let [hi, lo] = mid.to_be_bytes();
    Bytes::copy_from_slice(&[0x40 | (type_bits << 4), 0, hi, lo])
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub peer: SocketAddr,
    /// The bytes.
    pub bytes: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(options: &[(u16, &[u8])]) -> Packet {
        let mut packet = Packet::new();
        packet.header.code = MessageClass::from(0x02);
        for (number, value) in options {
            packet.add_option(coap_lite::CoapOption::from(*number), value.to_vec());
        }
        packet
    }

    #[test]
    fn block_values_round_trip_with_20_bit_numbers() {
        for block in [
            Block {
                num: 0,
                more: false,
                szx: 0,
            },
            Block {
                num: 0,
                more: true,
                szx: 6,
            },
            Block {
                num: 1023,
                more: true,
                szx: 4,
            },
            Block {
                num: (1 << 20) - 1,
                more: false,
                szx: 6,
            },
        ] {
            assert_eq!(Block::decode(&block.encode()), Some(block));
        }
        assert_eq!(
            Block::decode(&[]),
            Some(Block {
                num: 0,
                more: false,
                szx: 0
            })
        );
        assert_eq!(Block::decode(&[1, 2, 3, 4]), None);
        let b = Block {
            num: 3,
            more: true,
            szx: 2,
        };
        assert_eq!((b.size(), b.offset()), (64, 192));
    }

    #[test]
    fn uint_options_use_the_fewest_bytes() {
        assert_eq!(encode_uint(0), Vec::<u8>::new());
        assert_eq!(encode_uint(50), vec![50]);
        assert_eq!(encode_uint(0x1_0000), vec![1, 0, 0]);
        assert_eq!(decode_uint(&[1, 0, 0], 3), Some(0x1_0000));
        assert_eq!(decode_uint(&[1, 0, 0], 2), None);
    }

    #[test]
    fn options_are_read_strictly() {
        let ok = parse_request(&request(&[
            (opt::URI_PATH, b"events"),
            (opt::URI_QUERY, b"token=abc=d"),
            (opt::URI_QUERY, b"flag"),
            (opt::CONTENT_FORMAT, &[60]),
            (opt::BLOCK1, &[0x1E]),
            (opt::ETAG, b"x"),
        ]))
        .unwrap();
        assert_eq!(ok.path, ["events"]);
        assert_eq!(
            ok.query,
            [
                ("token".into(), "abc=d".into()),
                ("flag".into(), String::new())
            ]
        );
        assert_eq!(ok.content_format, Some(60));
        assert_eq!(
            ok.block1,
            Some(Block {
                num: 1,
                more: true,
                szx: 6
            })
        );
        assert_eq!(ok.resource_key(), "events?token=abc=d&flag=");

        for (options, number) in [
            (vec![(opt::IF_MATCH, &b""[..])], opt::IF_MATCH),
            (vec![(opt::OSCORE, &b""[..])], opt::OSCORE),
            (vec![(101, &b"x"[..])], 101),
            (vec![(opt::BLOCK1, &[0x0F][..])], opt::BLOCK1),
            (vec![(opt::ACCEPT, &[1, 2, 3][..])], opt::ACCEPT),
            (
                vec![(opt::URI_HOST, &b"a"[..]), (opt::URI_HOST, &b"b"[..])],
                opt::URI_HOST,
            ),
        ] {
            match parse_request(&request(&options)) {
                Err(RequestError::BadOption { number: n, .. }) => assert_eq!(n, number),
                other => panic!("{options:?}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_request(&request(&[(opt::PROXY_URI, b"coap://x")])),
            Err(RequestError::Proxying)
        ));
        // Elective options with bad values are ignored.
        let lenient =
            parse_request(&request(&[(opt::CONTENT_FORMAT, &[1, 2, 3]), (102, b"x")])).unwrap();
        assert_eq!(lenient.content_format, None);
    }

    #[test]
    fn responses_frame_and_decode() {
        let token = Token::new(&[7, 9]).unwrap();
        assert_eq!(Token::new(&[0; 9]), None);
        let response = Response::new(code::CREATED)
            .with_uint(opt::CONTENT_FORMAT, u32::from(cf::JSON))
            .with_payload(&b"{}"[..]);
        let bytes = encode(Kind::Ack, 0x1234, token, &response).unwrap();
        let packet = Packet::from_bytes(&bytes).unwrap();
        assert_eq!(packet.header.message_id, 0x1234);
        assert_eq!(packet.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(packet.get_token(), &[7, 9]);
        assert_eq!(packet.payload, b"{}");
        assert_eq!(
            RawHeader::read(&empty(Kind::Rst, 5)),
            Some(RawHeader {
                version: 1,
                kind: Kind::Rst,
                code: 0,
                mid: 5
            })
        );
        assert!(marker_without_payload(b"\x40\x01\x00\x02\xff"));
        assert!(marker_without_payload(b"\x41\x01\x00\x02\x07\xb1\xff\xff"));
        assert!(
            !marker_without_payload(b"\x40\x01\x00\x02\xb1\xff"),
            "0xFF as an option value"
        );
        assert!(
            !marker_without_payload(b"\x40\x01\x00\x02\xff\xff"),
            "0xFF as the payload"
        );
        let long = RequestError::Forbidden("x".repeat(2000));
        assert!(Response::error(&long).payload.len() <= MAX_DIAGNOSTIC);
    }
}
