//! The fourteen control packets (fifteen with MQTT 5's AUTH): their types, how each body is
//! parsed from a frame, and how each is encoded, for both protocol versions.
//!
//! Parsing is strict where the specifications say MUST: reserved flag bits, QoS 3, a will
//! QoS without a will, a packet identifier of 0, an empty SUBSCRIBE, bytes left over after
//! the last field — each is a [`DecodeError`] naming the rule, never a panic. Reason codes
//! are always MQTT 5 codes in these types; for MQTT 3.1.1 the CONNACK return codes and
//! SUBACK failure code are mapped on the way in and out.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::types::{QoS, ReasonCode, Version};
use crate::wire::{Counter, MAX_VARINT, Out, Reader, varint_len};

/// CONNECT: the first packet of every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol version the client speaks.
    pub version: Version,
    /// The client identifier (may be empty: the server then assigns one).
    pub client_id: String,
    /// Clean start (MQTT 5) / clean session (MQTT 3.1.1).
    pub clean_start: bool,
    /// Keep-alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// The user name, if given.
    pub username: Option<String>,
    /// The password, if given.
    pub password: Option<Bytes>,
    /// The will message, if any.
    pub will: Option<Will>,
    /// CONNECT properties (MQTT 5).
    pub properties: Properties,
}

/// The message a server publishes when a client goes away without saying goodbye.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// Will properties (MQTT 5): delay, expiry, content type, ...
    pub properties: Properties,
}

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// The outcome (an MQTT 5 reason code; mapped to a return code for MQTT 3.1.1).
    pub code: ReasonCode,
    /// CONNACK properties (MQTT 5).
    pub properties: Properties,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// A redelivery.
    pub dup: bool,
    /// Its QoS.
    pub qos: QoS,
    /// Retain (from a client: store it; to a client: it is a stored message).
    pub retain: bool,
    /// The topic name; empty when MQTT 5 uses a topic alias instead.
    pub topic: String,
    /// The packet identifier; 0 for QoS 0.
    pub pkid: u16,
    /// PUBLISH properties (MQTT 5).
    pub properties: Properties,
    /// The application message.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The packet identifier acknowledged.
    pub pkid: u16,
    /// The outcome (MQTT 5; always success in MQTT 3.1.1).
    pub reason: ReasonCode,
    /// Properties (MQTT 5): a reason string and user properties.
    pub properties: Properties,
}

impl Ack {
    /// A plain successful acknowledgement of `pkid`.
    pub fn new(pkid: u16) -> Ack {
        Ack {
            pkid,
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }
}

/// What to do with retained messages when subscribing (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainHandling {
    /// Send them at every subscribe.
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not exist.
    SendIfNew = 1,
    /// Never send them.
    DoNotSend = 2,
}

/// The options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// The highest QoS the subscriber wants.
    pub qos: QoS,
    /// Do not receive one's own publishes (MQTT 5).
    pub no_local: bool,
    /// Keep the retain flag on forwarded messages (MQTT 5).
    pub retain_as_published: bool,
    /// Retained messages at subscribe time (MQTT 5).
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// MQTT 3.1.1 semantics at `qos`.
    pub fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The topic filter (possibly `$share/<group>/...`).
    pub filter: String,
    /// Its options.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet identifier.
    pub pkid: u16,
    /// Properties (MQTT 5): a subscription identifier and user properties.
    pub properties: Properties,
    /// At least one filter.
    pub filters: Vec<SubscribeFilter>,
}

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet identifier of the SUBSCRIBE.
    pub pkid: u16,
    /// Properties (MQTT 5).
    pub properties: Properties,
    /// One code per filter: the granted QoS (0, 1, 2) or a failure.
    pub codes: Vec<ReasonCode>,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The packet identifier.
    pub pkid: u16,
    /// Properties (MQTT 5): user properties.
    pub properties: Properties,
    /// At least one filter.
    pub filters: Vec<String>,
}

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet identifier of the UNSUBSCRIBE.
    pub pkid: u16,
    /// Properties (MQTT 5).
    pub properties: Properties,
    /// One code per filter (MQTT 5); empty in MQTT 3.1.1, which has none.
    pub codes: Vec<ReasonCode>,
}

/// DISCONNECT (MQTT 5 carries a reason; MQTT 3.1.1's is always success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Why.
    pub reason: ReasonCode,
    /// Properties (MQTT 5): session expiry, reason string, server reference, user properties.
    pub properties: Properties,
}

impl Disconnect {
    /// A DISCONNECT with `reason` and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: Properties::default(),
        }
    }
}

/// AUTH (MQTT 5 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Continue, re-authenticate, or success.
    pub reason: ReasonCode,
    /// Properties: method, data, reason string, user properties.
    pub properties: Properties,
}

/// A control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// 1: client → server.
    Connect(Box<Connect>),
    /// 2: server → client.
    ConnAck(ConnAck),
    /// 3: both ways.
    Publish(Publish),
    /// 4: both ways.
    PubAck(Ack),
    /// 5: both ways.
    PubRec(Ack),
    /// 6: both ways.
    PubRel(Ack),
    /// 7: both ways.
    PubComp(Ack),
    /// 8: client → server.
    Subscribe(Subscribe),
    /// 9: server → client.
    SubAck(SubAck),
    /// 10: client → server.
    Unsubscribe(Unsubscribe),
    /// 11: server → client.
    UnsubAck(UnsubAck),
    /// 12: client → server.
    PingReq,
    /// 13: server → client.
    PingResp,
    /// 14: both ways.
    Disconnect(Disconnect),
    /// 15: both ways, MQTT 5 only.
    Auth(Auth),
}

/// Packet type numbers (the high nibble of the first byte).
pub mod packet_type {
    /// CONNECT.
    pub const CONNECT: u8 = 1;
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// PUBREC.
    pub const PUBREC: u8 = 5;
    /// PUBREL.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = 7;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
    /// UNSUBSCRIBE.
    pub const UNSUBSCRIBE: u8 = 10;
    /// UNSUBACK.
    pub const UNSUBACK: u8 = 11;
    /// PINGREQ.
    pub const PINGREQ: u8 = 12;
    /// PINGRESP.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT.
    pub const DISCONNECT: u8 = 14;
    /// AUTH.
    pub const AUTH: u8 = 15;

    /// A stable lowercase name for logs and metric labels.
    pub fn name(t: u8) -> &'static str {
        match t {
            CONNECT => "connect",
            CONNACK => "connack",
            PUBLISH => "publish",
            PUBACK => "puback",
            PUBREC => "pubrec",
            PUBREL => "pubrel",
            PUBCOMP => "pubcomp",
            SUBSCRIBE => "subscribe",
            SUBACK => "suback",
            UNSUBSCRIBE => "unsubscribe",
            UNSUBACK => "unsuback",
            PINGREQ => "pingreq",
            PINGRESP => "pingresp",
            DISCONNECT => "disconnect",
            AUTH => "auth",
            _ => "reserved",
        }
    }
}

use packet_type as T;

/// What the fixed header of a complete frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The first byte: packet type (high nibble) and flags (low nibble).
    pub first_byte: u8,
    /// Length of the fixed header: 1 + the remaining-length bytes.
    pub header_len: usize,
    /// Length of the body that follows.
    pub remaining_len: usize,
}

impl FrameHeader {
    /// The packet type number (see [`packet_type`]).
    pub fn packet_type(&self) -> u8 {
        self.first_byte >> 4
    }

    /// The whole packet's size in bytes.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// Checks whether `buf` starts with a complete packet, without copying or parsing it.
///
/// `Ok(None)`: more bytes are needed. `Ok(Some(header))`: the first
/// `header.packet_len()` bytes are one packet. A remaining length longer than four bytes
/// is [`DecodeError::Malformed`]; a packet larger than `max_packet_size` is
/// [`DecodeError::TooLarge`] as soon as its fixed header is in, so nobody buffers it.
pub fn check(buf: &[u8], max_packet_size: usize) -> Result<Option<FrameHeader>, DecodeError> {
    let Some(&first_byte) = buf.first() else {
        return Ok(None);
    };
    let mut remaining_len = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining_len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let header = FrameHeader {
                first_byte,
                header_len: 2 + i,
                remaining_len,
            };
            let size = header.packet_len();
            if size > max_packet_size {
                return Err(DecodeError::TooLarge {
                    size,
                    max: max_packet_size,
                });
            }
            return Ok((buf.len() >= size).then_some(header));
        }
    }
    Err(DecodeError::Malformed(
        "the remaining length is longer than four bytes",
    ))
}

/// Parses one packet's body (the bytes after its fixed header) for a connection of
/// `version`. A CONNECT carries its own version and ignores `version`.
pub fn parse(header: &FrameHeader, body: Bytes, version: Version) -> Result<Packet, DecodeError> {
    let flags = header.first_byte & 0x0F;
    let kind = header.packet_type();
    let expected_flags = match kind {
        T::PUBLISH => flags,
        T::PUBREL | T::SUBSCRIBE | T::UNSUBSCRIBE => 0b0010,
        _ => 0,
    };
    if flags != expected_flags {
        return Err(DecodeError::Malformed(
            "reserved flags of the fixed header are wrong",
        ));
    }
    let mut r = Reader::new(body);
    let v5 = version == Version::V5;
    let packet = match kind {
        T::CONNECT => Packet::Connect(Box::new(parse_connect(&mut r)?)),
        T::CONNACK => Packet::ConnAck(parse_connack(&mut r, v5)?),
        T::PUBLISH => Packet::Publish(parse_publish(&mut r, flags, v5)?),
        T::PUBACK => Packet::PubAck(parse_ack(&mut r, v5)?),
        T::PUBREC => Packet::PubRec(parse_ack(&mut r, v5)?),
        T::PUBREL => Packet::PubRel(parse_ack(&mut r, v5)?),
        T::PUBCOMP => Packet::PubComp(parse_ack(&mut r, v5)?),
        T::SUBSCRIBE => Packet::Subscribe(parse_subscribe(&mut r, v5)?),
        T::SUBACK => Packet::SubAck(parse_suback(&mut r, v5)?),
        T::UNSUBSCRIBE => Packet::Unsubscribe(parse_unsubscribe(&mut r, v5)?),
        T::UNSUBACK => Packet::UnsubAck(parse_unsuback(&mut r, v5)?),
        T::PINGREQ => Packet::PingReq,
        T::PINGRESP => Packet::PingResp,
        T::DISCONNECT => Packet::Disconnect(parse_disconnect(&mut r, v5)?),
        T::AUTH if v5 => Packet::Auth(parse_auth(&mut r)?),
        T::AUTH => {
            return Err(DecodeError::Malformed(
                "packet type 15 is reserved in MQTT 3.1.1",
            ));
        }
        _ => return Err(DecodeError::Malformed("packet type 0 is reserved")),
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(
            "bytes are left over after the packet's last field",
        ));
    }
    Ok(packet)
}

/// Takes one packet off the front of `buf`, if a whole one is there: [`check`], then
/// [`parse`]. On error the connection is beyond repair; what `buf` holds is unspecified.
pub fn decode(
    buf: &mut BytesMut,
    version: Version,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(header) = check(buf, max_packet_size)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(header.packet_len()).freeze();
    let body = frame.split_off(header.header_len);
    parse(&header, body, version).map(Some)
}

fn pkid(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Malformed("a packet identifier is 0")),
        id => Ok(id),
    }
}

fn props(r: &mut Reader, v5: bool, ctx: PropertyContext) -> Result<Properties, DecodeError> {
    if v5 {
        Properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn parse_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let version = match (&name[..], level) {
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        _ => return Err(DecodeError::UnsupportedVersion { level }),
    };
    let v5 = version == Version::V5;
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("the reserved CONNECT flag is set"));
    }
    let clean_start = flags & 0x02 != 0;
    let has_will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !has_will && (will_qos != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or will retain is set without a will",
        ));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("the will QoS is 3"))?;
    if !v5 && has_password && !has_username {
        return Err(DecodeError::Malformed(
            "MQTT 3.1.1 does not allow a password without a user name",
        ));
    }
    let keep_alive = r.u16()?;
    let properties = props(r, v5, PropertyContext::Connect)?;
    let client_id = r.string()?;
    let will = if has_will {
        let properties = props(r, v5, PropertyContext::Will)?;
        let topic = r.string()?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(r.string()?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary()?)
    } else {
        None
    };
    Ok(Connect {
        version,
        client_id,
        clean_start,
        keep_alive,
        username,
        password,
        will,
        properties,
    })
}

fn parse_connack(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("reserved CONNACK flags are set"));
    }
    let raw = r.u8()?;
    let code = if v5 {
        ReasonCode(raw)
    } else {
        ReasonCode::from_v311_connack(raw)
            .ok_or(DecodeError::Malformed("unknown CONNACK return code"))?
    };
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        code,
        properties: props(r, v5, PropertyContext::ConnAck)?,
    })
}

fn parse_publish(r: &mut Reader, flags: u8, v5: bool) -> Result<Publish, DecodeError> {
    let qos =
        QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::Malformed("a PUBLISH has QoS 3"))?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed("a QoS 0 PUBLISH has the DUP flag"));
    }
    let topic = r.string()?;
    let pkid = if qos == QoS::AtMostOnce { 0 } else { pkid(r)? };
    let properties = props(r, v5, PropertyContext::Publish)?;
    Ok(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        pkid,
        properties,
        payload: r.rest(),
    })
}

/// MQTT 5 lets acks, DISCONNECT and AUTH end early: no reason code means success, no
/// property length means no properties.
fn parse_ack(r: &mut Reader, v5: bool) -> Result<Ack, DecodeError> {
    let pkid = pkid(r)?;
    let (reason, properties) = if v5 {
        reason_and_props(r, PropertyContext::Ack)?
    } else {
        (ReasonCode::SUCCESS, Properties::default())
    };
    Ok(Ack {
        pkid,
        reason,
        properties,
    })
}

fn reason_and_props(
    r: &mut Reader,
    ctx: PropertyContext,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::SUCCESS, Properties::default()));
    }
    let reason = ReasonCode(r.u8()?);
    if r.is_empty() {
        return Ok((reason, Properties::default()));
    }
    Ok((reason, Properties::decode(r, ctx)?))
}

fn parse_subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let pkid = pkid(r)?;
    let properties = props(r, v5, PropertyContext::Subscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let byte = r.u8()?;
        let reserved = if v5 { 0xC0 } else { 0xFC };
        if byte & reserved != 0 {
            return Err(DecodeError::Malformed(
                "reserved subscription option bits are set",
            ));
        }
        let qos = QoS::from_u8(byte & 0x03)
            .ok_or(DecodeError::Malformed("a subscription asks for QoS 3"))?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::Malformed("retain handling is 3")),
        };
        filters.push(SubscribeFilter {
            filter,
            options: SubscriptionOptions {
                qos,
                no_local: byte & 0x04 != 0,
                retain_as_published: byte & 0x08 != 0,
                retain_handling,
            },
        });
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("a SUBSCRIBE has no topic filter"));
    }
    Ok(Subscribe {
        pkid,
        properties,
        filters,
    })
}

fn parse_suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let pkid = pkid(r)?;
    let properties = props(r, v5, PropertyContext::SubAck)?;
    let mut codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = r.u8()?;
        if !v5 && !matches!(code, 0 | 1 | 2 | 0x80) {
            return Err(DecodeError::Malformed("unknown SUBACK return code"));
        }
        codes.push(ReasonCode(code));
    }
    Ok(SubAck {
        pkid,
        properties,
        codes,
    })
}

fn parse_unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let pkid = pkid(r)?;
    let properties = props(r, v5, PropertyContext::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("an UNSUBSCRIBE has no topic filter"));
    }
    Ok(Unsubscribe {
        pkid,
        properties,
        filters,
    })
}

fn parse_unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let pkid = pkid(r)?;
    let properties = props(r, v5, PropertyContext::UnsubAck)?;
    let mut codes = Vec::new();
    if v5 {
        while !r.is_empty() {
            codes.push(ReasonCode(r.u8()?));
        }
    }
    Ok(UnsubAck {
        pkid,
        properties,
        codes,
    })
}

fn parse_disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    let (reason, properties) = if v5 {
        reason_and_props(r, PropertyContext::Disconnect)?
    } else {
        (ReasonCode::SUCCESS, Properties::default())
    };
    Ok(Disconnect { reason, properties })
}

fn parse_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let (reason, properties) = reason_and_props(r, PropertyContext::Auth)?;
    Ok(Auth { reason, properties })
}

impl Packet {
    /// The packet type number (see [`packet_type`]).
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => T::CONNECT,
            Packet::ConnAck(_) => T::CONNACK,
            Packet::Publish(_) => T::PUBLISH,
            Packet::PubAck(_) => T::PUBACK,
            Packet::PubRec(_) => T::PUBREC,
            Packet::PubRel(_) => T::PUBREL,
            Packet::PubComp(_) => T::PUBCOMP,
            Packet::Subscribe(_) => T::SUBSCRIBE,
            Packet::SubAck(_) => T::SUBACK,
            Packet::Unsubscribe(_) => T::UNSUBSCRIBE,
            Packet::UnsubAck(_) => T::UNSUBACK,
            Packet::PingReq => T::PINGREQ,
            Packet::PingResp => T::PINGRESP,
            Packet::Disconnect(_) => T::DISCONNECT,
            Packet::Auth(_) => T::AUTH,
        }
    }

    fn first_byte(&self) -> u8 {
        let flags = match self {
            Packet::Publish(p) => {
                (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain)
            }
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        (self.packet_type() << 4) | flags
    }

    /// Appends the packet, encoded for `version`, to `out` and returns its size. A CONNECT
    /// is encoded for its own version. On error nothing is appended.
    ///
    /// Properties a packet type does not allow are left out, as is everything MQTT 3.1.1
    /// cannot say (properties, ack reason codes).
    pub fn encode(&self, version: Version, out: &mut BytesMut) -> Result<usize, EncodeError> {
        let version = match self {
            Packet::Connect(c) => c.version,
            _ => version,
        };
        let mut count = Counter::default();
        self.body(version, &mut count)?;
        let remaining = count.0;
        if remaining > MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge(remaining));
        }
        let size = 1 + varint_len(remaining) + remaining;
        out.reserve(size);
        out.u8(self.first_byte());
        out.varint(remaining as u32);
        let start = out.len();
        if let Err(e) = self.body(version, out) {
            out.truncate(start);
            return Err(e);
        }
        Ok(size)
    }

    fn body(&self, version: Version, out: &mut impl Out) -> Result<(), EncodeError> {
        let v5 = version == Version::V5;
        match self {
            Packet::Connect(c) => encode_connect(c, out),
            Packet::ConnAck(c) => {
                out.u8(u8::from(c.session_present));
                if v5 {
                    out.u8(c.code.0);
                    c.properties.encode(PropertyContext::ConnAck, out)
                } else {
                    out.u8(c.code.to_v311_connack());
                    Ok(())
                }
            }
            Packet::Publish(p) => {
                out.string("topic", &p.topic)?;
                if p.qos != QoS::AtMostOnce {
                    if p.pkid == 0 {
                        return Err(EncodeError::Invalid(
                            "a QoS 1 or 2 PUBLISH needs a packet identifier",
                        ));
                    }
                    out.u16(p.pkid);
                }
                if v5 {
                    p.properties.encode(PropertyContext::Publish, out)?;
                }
                out.put(&p.payload);
                Ok(())
            }
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                encode_pkid(a.pkid, out)?;
                if v5 {
                    encode_reason_and_props(a.reason, &a.properties, PropertyContext::Ack, out)?;
                }
                Ok(())
            }
            Packet::Subscribe(s) => {
                encode_pkid(s.pkid, out)?;
                if v5 {
                    s.properties.encode(PropertyContext::Subscribe, out)?;
                }
                if s.filters.is_empty() {
                    return Err(EncodeError::Invalid("a SUBSCRIBE needs a topic filter"));
                }
                for f in &s.filters {
                    out.string("topic filter", &f.filter)?;
                    let o = f.options;
                    let byte = if v5 {
                        o.qos.as_u8()
                            | (u8::from(o.no_local) << 2)
                            | (u8::from(o.retain_as_published) << 3)
                            | ((o.retain_handling as u8) << 4)
                    } else {
                        o.qos.as_u8()
                    };
                    out.u8(byte);
                }
                Ok(())
            }
            Packet::SubAck(s) => {
                encode_pkid(s.pkid, out)?;
                if v5 {
                    s.properties.encode(PropertyContext::SubAck, out)?;
                }
                for code in &s.codes {
                    let byte = match (v5, code.0) {
                        (true, c) | (false, c @ 0..=2) => c,
                        (false, _) => 0x80,
                    };
                    out.u8(byte);
                }
                Ok(())
            }
            Packet::Unsubscribe(u) => {
                encode_pkid(u.pkid, out)?;
                if v5 {
                    u.properties.encode(PropertyContext::Unsubscribe, out)?;
                }
                if u.filters.is_empty() {
                    return Err(EncodeError::Invalid("an UNSUBSCRIBE needs a topic filter"));
                }
                for f in &u.filters {
                    out.string("topic filter", f)?;
                }
                Ok(())
            }
            Packet::UnsubAck(u) => {
                encode_pkid(u.pkid, out)?;
                if v5 {
                    u.properties.encode(PropertyContext::UnsubAck, out)?;
                    for code in &u.codes {
                        out.u8(code.0);
                    }
                }
                Ok(())
            }
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => {
                if v5 {
                    encode_reason_and_props(
                        d.reason,
                        &d.properties,
                        PropertyContext::Disconnect,
                        out,
                    )?;
                }
                Ok(())
            }
            Packet::Auth(a) => {
                if !v5 {
                    return Err(EncodeError::Invalid("AUTH does not exist in MQTT 3.1.1"));
                }
                encode_reason_and_props(a.reason, &a.properties, PropertyContext::Auth, out)
            }
        }
    }
}

fn encode_pkid(pkid: u16, out: &mut impl Out) -> Result<(), EncodeError> {
    if pkid == 0 {
        return Err(EncodeError::Invalid("a packet identifier must not be 0"));
    }
    out.u16(pkid);
    Ok(())
}

/// The short forms MQTT 5 allows: nothing for success without properties, the reason
/// alone without properties.
fn encode_reason_and_props(
    reason: ReasonCode,
    properties: &Properties,
    ctx: PropertyContext,
    out: &mut impl Out,
) -> Result<(), EncodeError> {
    let mut count = Counter::default();
    properties.encode(ctx, &mut count)?;
    let has_props = count.0 > 1;
    if reason == ReasonCode::SUCCESS && !has_props {
        return Ok(());
    }
    out.u8(reason.0);
    if has_props {
        properties.encode(ctx, out)?;
    }
    Ok(())
}

fn encode_connect(c: &Connect, out: &mut impl Out) -> Result<(), EncodeError> {
    let v5 = c.version == Version::V5;
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::Invalid(
            "MQTT 3.1.1 does not allow a password without a user name",
        ));
    }
    out.string("protocol name", "MQTT")?;
    out.u8(c.version.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos.as_u8() << 3) | (u8::from(w.retain) << 5);
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    out.u8(flags);
    out.u16(c.keep_alive);
    if v5 {
        c.properties.encode(PropertyContext::Connect, out)?;
    }
    out.string("client identifier", &c.client_id)?;
    if let Some(w) = &c.will {
        if v5 {
            w.properties.encode(PropertyContext::Will, out)?;
        }
        out.string("will topic", &w.topic)?;
        out.binary("will payload", &w.payload)?;
    }
    if let Some(u) = &c.username {
        out.string("user name", u)?;
    }
    if let Some(p) = &c.password {
        out.binary("password", p)?;
    }
    Ok(())
}
