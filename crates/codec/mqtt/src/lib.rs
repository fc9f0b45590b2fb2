//! Ingot's MQTT codec: framing, decoding and encoding of MQTT 3.1.1 and 5.0 packets, for
//! the broker (`ingot-adapter-mqtt`) and for clients (the simulator) alike.
//!
//! # Design
//!
//! Sans-IO, in the style of mini-redis's `frame.rs`: the codec never touches a socket.
//! A reader appends bytes to a buffer and asks [`check`] whether a whole packet is there —
//! a look at the fixed header only, no copy, no allocation — then hands the frame to
//! [`parse`]. [`decode`] does both on a `BytesMut`. Binary fields (payloads, passwords,
//! correlation data) are slices of the frame (`Bytes`), so a PUBLISH's payload is never
//! copied by the codec. Encoding ([`Packet::encode`]) measures a packet with the same code
//! that writes it, so the remaining length always agrees with the body.
//!
//! The codec is role-neutral: every packet type decodes and encodes in both versions, so a
//! server decodes CONNECT/PUBLISH/SUBSCRIBE and a client CONNACK/SUBACK with the same code.
//! Which packets are allowed in which state (e.g. CONNECT first) is the caller's protocol
//! logic, not the codec's.
//!
//! # Invariants
//!
//! - Decoding never panics and never reads past its input, whatever the bytes; this is
//!   property-tested here and fuzzed (`fuzz/`, target `decode`).
//! - A packet larger than the caller's maximum is refused from its fixed header
//!   ([`DecodeError::TooLarge`]) before its body is buffered.
//! - For every packet `p` this codec accepts, `parse(encode(p)) == p` in both versions
//!   (for the fields the version can express).
//! - Each [`DecodeError`] names the violated rule and maps to the MQTT 5 reason code the
//!   connection should be closed with (0x81 malformed, 0x82 protocol error, 0x95 too
//!   large, 0x84 unsupported version).
//!
//! # Why our own codec
//!
//! See `docs/decisions/0003-mqtt-codec.md`: no maintained crate decodes client packets of
//! both versions strictly, with zero-copy payloads and a size check before buffering, at
//! a dependency weight we want in the simulator too.

mod error;
mod packet;
mod properties;
pub mod topic;
mod types;
mod wire;

pub use error::{DecodeError, EncodeError};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, FrameHeader, Packet, Publish, RetainHandling, SubAck,
    Subscribe, SubscribeFilter, SubscriptionOptions, UnsubAck, Unsubscribe, Will, check, decode,
    packet_type, parse,
};
pub use properties::{Properties, PropertyContext};
pub use types::{QoS, ReasonCode, Version};
pub use wire::MAX_VARINT;

/// The largest packet MQTT can express: a 5-byte fixed header and the largest body.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_VARINT as usize;

#[cfg(test)]
mod tests;
