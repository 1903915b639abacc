//! The two content types the Mesos v1 HTTP APIs speak.

use std::fmt;
use std::str::FromStr;

use drover_protos::json::{self, JsonError};
use drover_protos::{Message, Name};

/// `application/x-protobuf` or `application/json`, for both requests and the
/// streamed responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentType {
    /// Binary protobuf (the default: smaller and cheaper to parse).
    #[default]
    Protobuf,
    /// Mesos' JSON mapping.
    Json,
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Protobuf bytes that do not form the message.
    #[error("invalid protobuf message")]
    Protobuf(#[source] drover_protos::prost::DecodeError),
    /// JSON that does not form the message.
    #[error("invalid JSON message")]
    Json(#[source] JsonError),
}

impl ContentType {
    /// The MIME type sent in `Content-Type` and `Accept`.
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Protobuf => "application/x-protobuf",
            ContentType::Json => "application/json",
        }
    }

    /// Parses a `Content-Type` header value (parameters are ignored).
    pub fn from_mime(value: &str) -> Option<Self> {
        let base = value.split(';').next().unwrap_or("").trim();
        match base {
            "application/x-protobuf" => Some(ContentType::Protobuf),
            "application/json" => Some(ContentType::Json),
            _ => None,
        }
    }

    /// Encodes a message in this content type.
    pub fn encode<M: Message + Name>(self, msg: &M) -> Vec<u8> {
        match self {
            ContentType::Protobuf => msg.encode_to_vec(),
            // Serializing a message that was built from the same descriptors
            // cannot fail; fall back to an empty object rather than panic.
            ContentType::Json => json::to_json(msg).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// Decodes a message in this content type.
    pub fn decode<M: Message + Name + Default>(self, bytes: &[u8]) -> Result<M, DecodeError> {
        match self {
            ContentType::Protobuf => M::decode(bytes).map_err(DecodeError::Protobuf),
            ContentType::Json => json::from_json(bytes).map_err(DecodeError::Json),
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContentType::Protobuf => "protobuf",
            ContentType::Json => "json",
        })
    }
}

impl FromStr for ContentType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "protobuf" | "application/x-protobuf" => Ok(ContentType::Protobuf),
            "json" | "application/json" => Ok(ContentType::Json),
            other => Err(format!("unknown content type `{other}` (expected `protobuf` or `json`)")),
        }
    }
}
