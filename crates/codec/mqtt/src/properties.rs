//! MQTT 5 properties (§2.2.2): one flat struct for every packet, checked per packet type.
//!
//! One struct instead of one per packet keeps the packet types small to write and lets a
//! server forward a PUBLISH's properties as they came. The price is paid at the edges,
//! where it belongs: decoding refuses a property that is not allowed in the packet it came
//! in (a malformed packet, §2.2.2.2) or that appears twice when it may not (a protocol
//! error), and encoding writes only the properties the packet type allows, so this codec
//! never produces a packet its peer must refuse. MQTT 3.1.1 packets have no properties;
//! encoding ignores them and decoding leaves them empty.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Counter, MAX_VARINT, Out, Reader};

/// Which packet (or part) a property list belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    /// CONNECT.
    Connect,
    /// The will properties in CONNECT's payload.
    Will,
    /// CONNACK.
    ConnAck,
    /// PUBLISH.
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    Ack,
    /// SUBSCRIBE.
    Subscribe,
    /// SUBACK.
    SubAck,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

/// The properties of an MQTT 5 packet. `None` / empty means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01 (PUBLISH, will): 0 unspecified bytes, 1 UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// 0x02 (PUBLISH, will): seconds until the message expires.
    pub message_expiry_interval: Option<u32>,
    /// 0x03 (PUBLISH, will): the payload's media type.
    pub content_type: Option<String>,
    /// 0x08 (PUBLISH, will): where a response should go.
    pub response_topic: Option<String>,
    /// 0x09 (PUBLISH, will): ties a response to its request.
    pub correlation_data: Option<Bytes>,
    /// 0x0B (PUBLISH: several; SUBSCRIBE: one): subscription identifiers, 1 to 268,435,455.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11 (CONNECT, CONNACK, DISCONNECT): seconds a session outlives its connection.
    pub session_expiry_interval: Option<u32>,
    /// 0x12 (CONNACK): the client identifier the server chose.
    pub assigned_client_identifier: Option<String>,
    /// 0x13 (CONNACK): the keep-alive the server imposes.
    pub server_keep_alive: Option<u16>,
    /// 0x15 (CONNECT, CONNACK, AUTH): extended authentication method.
    pub authentication_method: Option<String>,
    /// 0x16 (CONNECT, CONNACK, AUTH): extended authentication data.
    pub authentication_data: Option<Bytes>,
    /// 0x17 (CONNECT): 0 or 1.
    pub request_problem_information: Option<u8>,
    /// 0x18 (will): seconds to wait before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0x19 (CONNECT): 0 or 1.
    pub request_response_information: Option<u8>,
    /// 0x1A (CONNACK).
    pub response_information: Option<String>,
    /// 0x1C (CONNACK, DISCONNECT).
    pub server_reference: Option<String>,
    /// 0x1F (acks, DISCONNECT, AUTH): a human-readable reason.
    pub reason_string: Option<String>,
    /// 0x21 (CONNECT, CONNACK): most unacknowledged QoS 1/2 publishes, at least 1.
    pub receive_maximum: Option<u16>,
    /// 0x22 (CONNECT, CONNACK): highest topic alias accepted.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23 (PUBLISH).
    pub topic_alias: Option<u16>,
    /// 0x24 (CONNACK): 0 or 1.
    pub maximum_qos: Option<u8>,
    /// 0x25 (CONNACK): 0 or 1.
    pub retain_available: Option<u8>,
    /// 0x26 (every packet): name/value pairs, in order, repeats allowed.
    pub user_properties: Vec<(String, String)>,
    /// 0x27 (CONNECT, CONNACK): largest packet accepted, at least 1.
    pub maximum_packet_size: Option<u32>,
    /// 0x28 (CONNACK): 0 or 1.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 (CONNACK): 0 or 1.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A (CONNACK): 0 or 1.
    pub shared_subscription_available: Option<u8>,
}

use PropertyContext as C;

/// Whether property `id` may appear in `ctx`.
pub(crate) fn allowed(id: u32, ctx: PropertyContext) -> bool {
    match id {
        0x01..=0x03 | 0x08 | 0x09 => matches!(ctx, C::Publish | C::Will),
        0x0B => matches!(ctx, C::Publish | C::Subscribe),
        0x11 => matches!(ctx, C::Connect | C::ConnAck | C::Disconnect),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28..=0x2A => ctx == C::ConnAck,
        0x15 | 0x16 => matches!(ctx, C::Connect | C::ConnAck | C::Auth),
        0x17 | 0x19 => ctx == C::Connect,
        0x18 => ctx == C::Will,
        0x1C => matches!(ctx, C::ConnAck | C::Disconnect),
        0x1F => matches!(
            ctx,
            C::ConnAck | C::Ack | C::SubAck | C::UnsubAck | C::Disconnect | C::Auth
        ),
        0x21 | 0x22 | 0x27 => matches!(ctx, C::Connect | C::ConnAck),
        0x23 => ctx == C::Publish,
        0x26 => true,
        _ => false,
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("a property appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn flag(r: &mut Reader) -> Result<u8, DecodeError> {
    match r.u8()? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::Protocol("a 0-or-1 property has another value")),
    }
}

impl Properties {
    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Reads a property list (its length, then the properties) for `ctx`.
    pub(crate) fn decode(r: &mut Reader, ctx: PropertyContext) -> Result<Properties, DecodeError> {
        let len = r.varint()? as usize;
        let mut r = Reader::new(r.take(len)?);
        let mut p = Properties::default();
        while !r.is_empty() {
            let id = r.varint()?;
            if !allowed(id, ctx) {
                return Err(DecodeError::Malformed(
                    "a property is unknown or not allowed in this packet",
                ));
            }
            match id {
                0x01 => set_once(&mut p.payload_format_indicator, flag(&mut r)?)?,
                0x02 => set_once(&mut p.message_expiry_interval, r.u32()?)?,
                0x03 => set_once(&mut p.content_type, r.string()?)?,
                0x08 => set_once(&mut p.response_topic, r.string()?)?,
                0x09 => set_once(&mut p.correlation_data, r.binary()?)?,
                0x0B => {
                    let v = r.varint()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("a subscription identifier is 0"));
                    }
                    if ctx == C::Subscribe && !p.subscription_identifiers.is_empty() {
                        return Err(DecodeError::Protocol(
                            "SUBSCRIBE carries more than one subscription identifier",
                        ));
                    }
                    p.subscription_identifiers.push(v);
                }
                0x11 => set_once(&mut p.session_expiry_interval, r.u32()?)?,
                0x12 => set_once(&mut p.assigned_client_identifier, r.string()?)?,
                0x13 => set_once(&mut p.server_keep_alive, r.u16()?)?,
                0x15 => set_once(&mut p.authentication_method, r.string()?)?,
                0x16 => set_once(&mut p.authentication_data, r.binary()?)?,
                0x17 => set_once(&mut p.request_problem_information, flag(&mut r)?)?,
                0x18 => set_once(&mut p.will_delay_interval, r.u32()?)?,
                0x19 => set_once(&mut p.request_response_information, flag(&mut r)?)?,
                0x1A => set_once(&mut p.response_information, r.string()?)?,
                0x1C => set_once(&mut p.server_reference, r.string()?)?,
                0x1F => set_once(&mut p.reason_string, r.string()?)?,
                0x21 => {
                    let v = r.u16()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("receive maximum is 0"));
                    }
                    set_once(&mut p.receive_maximum, v)?;
                }
                0x22 => set_once(&mut p.topic_alias_maximum, r.u16()?)?,
                0x23 => set_once(&mut p.topic_alias, r.u16()?)?,
                0x24 => set_once(&mut p.maximum_qos, flag(&mut r)?)?,
                0x25 => set_once(&mut p.retain_available, flag(&mut r)?)?,
                0x26 => {
                    let name = r.string()?;
                    let value = r.string()?;
                    p.user_properties.push((name, value));
                }
                0x27 => {
                    let v = r.u32()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("maximum packet size is 0"));
                    }
                    set_once(&mut p.maximum_packet_size, v)?;
                }
                0x28 => set_once(&mut p.wildcard_subscription_available, flag(&mut r)?)?,
                0x29 => set_once(&mut p.subscription_identifier_available, flag(&mut r)?)?,
                0x2A => set_once(&mut p.shared_subscription_available, flag(&mut r)?)?,
                _ => {
                    return Err(DecodeError::Malformed("unknown property"));
                }
            }
        }
        Ok(p)
    }

    /// Writes the property list (its length, then the properties allowed in `ctx`).
    pub(crate) fn encode(
        &self,
        ctx: PropertyContext,
        out: &mut impl Out,
    ) -> Result<(), EncodeError> {
        let mut count = Counter::default();
        self.write(ctx, &mut count)?;
        if count.0 > MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge(count.0));
        }
        out.varint(count.0 as u32);
        self.write(ctx, out)
    }

    fn write(&self, ctx: PropertyContext, out: &mut impl Out) -> Result<(), EncodeError> {
        let ok = |id: u32| allowed(id, ctx);
        for (id, v) in [
            (0x01u8, self.payload_format_indicator),
            (0x17, self.request_problem_information),
            (0x19, self.request_response_information),
            (0x24, self.maximum_qos),
            (0x25, self.retain_available),
            (0x28, self.wildcard_subscription_available),
            (0x29, self.subscription_identifier_available),
            (0x2A, self.shared_subscription_available),
        ] {
            if let Some(v) = v.filter(|_| ok(u32::from(id))) {
                out.u8(id);
                out.u8(v);
            }
        }
        for (id, v) in [
            (0x02u8, self.message_expiry_interval),
            (0x11, self.session_expiry_interval),
            (0x18, self.will_delay_interval),
            (0x27, self.maximum_packet_size),
        ] {
            if let Some(v) = v.filter(|_| ok(u32::from(id))) {
                out.u8(id);
                out.u32(v);
            }
        }
        for (id, v) in [
            (0x13u8, self.server_keep_alive),
            (0x21, self.receive_maximum),
            (0x22, self.topic_alias_maximum),
            (0x23, self.topic_alias),
        ] {
            if let Some(v) = v.filter(|_| ok(u32::from(id))) {
                out.u8(id);
                out.u16(v);
            }
        }
        for (id, what, v) in [
            (0x03u8, "content type", &self.content_type),
            (0x08, "response topic", &self.response_topic),
            (
                0x12,
                "assigned client identifier",
                &self.assigned_client_identifier,
            ),
            (0x15, "authentication method", &self.authentication_method),
            (0x1A, "response information", &self.response_information),
            (0x1C, "server reference", &self.server_reference),
            (0x1F, "reason string", &self.reason_string),
        ] {
            if let Some(v) = v.as_ref().filter(|_| ok(u32::from(id))) {
                out.u8(id);
                out.string(what, v)?;
            }
        }
        for (id, what, v) in [
            (0x09u8, "correlation data", &self.correlation_data),
            (0x16, "authentication data", &self.authentication_data),
        ] {
            if let Some(v) = v.as_ref().filter(|_| ok(u32::from(id))) {
                out.u8(id);
                out.binary(what, v)?;
            }
        }
        if ok(0x0B) {
            let ids = match ctx {
                C::Subscribe => self.subscription_identifiers.get(..1).unwrap_or(&[]),
                _ => &self.subscription_identifiers[..],
            };
            for &id in ids {
                if id == 0 || id > MAX_VARINT {
                    return Err(EncodeError::Invalid(
                        "a subscription identifier must be 1 to 268435455",
                    ));
                }
                out.u8(0x0B);
                out.varint(id);
            }
        }
        for (name, value) in &self.user_properties {
            out.u8(0x26);
            out.string("user property name", name)?;
            out.string("user property value", value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    fn round_trip(p: &Properties, ctx: PropertyContext) -> Result<Properties, DecodeError> {
        let mut out = BytesMut::new();
        p.encode(ctx, &mut out).unwrap();
        let mut r = Reader::new(out.freeze());
        let back = Properties::decode(&mut r, ctx);
        assert!(r.is_empty());
        back
    }

    #[test]
    fn encoding_keeps_only_what_the_packet_allows() {
        let p = Properties {
            reason_string: Some("why".into()),
            topic_alias: Some(3),
            user_properties: vec![("a".into(), "b".into()), ("a".into(), "c".into())],
            ..Properties::default()
        };
        let back = round_trip(&p, C::Publish).unwrap();
        assert_eq!(back.reason_string, None, "no reason string in PUBLISH");
        assert_eq!(back.topic_alias, Some(3));
        assert_eq!(
            back.user_properties, p.user_properties,
            "repeats kept in order"
        );
        let back = round_trip(&p, C::Ack).unwrap();
        assert_eq!(back.reason_string.as_deref(), Some("why"));
        assert_eq!(back.topic_alias, None);
    }

    #[test]
    fn decoding_refuses_misplaced_repeated_and_out_of_range_properties() {
        // topic alias (0x23 = 3) in a PUBACK: malformed.
        let mut r = Reader::new(Bytes::from_static(&[3, 0x23, 0, 1]));
        assert!(matches!(
            Properties::decode(&mut r, C::Ack),
            Err(DecodeError::Malformed(_))
        ));
        // message expiry twice: protocol error.
        let mut r = Reader::new(Bytes::from_static(&[10, 2, 0, 0, 0, 1, 2, 0, 0, 0, 2]));
        assert!(matches!(
            Properties::decode(&mut r, C::Publish),
            Err(DecodeError::Protocol(_))
        ));
        // receive maximum 0: protocol error.
        let mut r = Reader::new(Bytes::from_static(&[3, 0x21, 0, 0]));
        assert!(matches!(
            Properties::decode(&mut r, C::Connect),
            Err(DecodeError::Protocol(_))
        ));
        // payload format indicator 2: protocol error.
        let mut r = Reader::new(Bytes::from_static(&[2, 0x01, 2]));
        assert!(matches!(
            Properties::decode(&mut r, C::Publish),
            Err(DecodeError::Protocol(_))
        ));
        // a length that runs past the packet: malformed.
        let mut r = Reader::new(Bytes::from_static(&[9, 0x01, 1]));
        assert!(matches!(
            Properties::decode(&mut r, C::Publish),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn several_subscription_identifiers_in_publish_one_in_subscribe() {
        let p = Properties {
            subscription_identifiers: vec![1, 300, 268_435_455],
            ..Properties::default()
        };
        assert_eq!(round_trip(&p, C::Publish).unwrap(), p);
        let back = round_trip(&p, C::Subscribe).unwrap();
        assert_eq!(back.subscription_identifiers, vec![1]);
        let mut r = Reader::new(Bytes::from_static(&[4, 0x0B, 1, 0x0B, 2]));
        assert!(matches!(
            Properties::decode(&mut r, C::Subscribe),
            Err(DecodeError::Protocol(_))
        ));
    }
}
