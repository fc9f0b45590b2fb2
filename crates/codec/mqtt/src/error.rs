//! Why a packet could not be decoded or encoded.

use ingot_core::error::{ErrorExt, ErrorKind};

use crate::ReasonCode;

/// Why bytes from the wire are not an acceptable packet.
///
/// Each variant maps to the MQTT 5 reason code a server closes the connection with
/// ([`DecodeError::reason_code`]); an MQTT 3.1.1 peer is simply disconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not follow the packet grammar (reason code 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well-formed, but breaks a rule of the protocol (reason code 0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The packet is larger than the receiver accepts (reason code 0x95). Detected from the
    /// fixed header alone, before the body is buffered.
    #[error("the packet is {size} bytes, more than the maximum packet size of {max}")]
    TooLarge {
        /// The whole packet's size, fixed header included.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A CONNECT for a protocol other than MQTT 3.1.1 (level 4) or 5 (level 5)
    /// (reason code 0x84, return code 0x01).
    #[error(
        "unsupported protocol level {level}: this codec speaks MQTT 3.1.1 (level 4) and MQTT 5 (level 5)"
    )]
    UnsupportedVersion {
        /// The protocol level the CONNECT named.
        level: u8,
    },
}

impl DecodeError {
    /// The MQTT 5 reason code to close the connection with.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedVersion { .. } => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

impl ErrorExt for DecodeError {
    fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::TooLarge { .. } => ErrorKind::TooLarge,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// Why a packet could not be encoded. Nothing is written when encoding fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field longer than the 65,535 bytes its length prefix can say.
    #[error("{what} is {len} bytes, more than the 65535 an MQTT string or binary field holds")]
    FieldTooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The packet's body is longer than MQTT's maximum remaining length (268,435,455).
    #[error("the packet body is {0} bytes, more than MQTT's maximum of 268435455")]
    PacketTooLarge(usize),
    /// The packet cannot be expressed in this protocol version or with these values.
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

impl ErrorExt for EncodeError {
    fn kind(&self) -> ErrorKind {
        match self {
            EncodeError::FieldTooLong { .. } | EncodeError::PacketTooLarge(_) => {
                ErrorKind::TooLarge
            }
            EncodeError::Invalid(_) => ErrorKind::InvalidInput,
        }
    }
}
