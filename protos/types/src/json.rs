//! Mesos' JSON mapping for the generated messages.
//!
//! Mesos serializes protobuf messages to JSON with the proto field names, enum
//! values by name, `bytes` as standard base64 and every number (including
//! 64-bit integers) as a JSON number, omitting unset fields. Parsing accepts
//! field names or their lowerCamelCase form, and ignores unknown fields (a
//! newer master may add some).
//!
//! The conversion goes through `prost-reflect`'s dynamic messages, driven by
//! the same descriptors that generated the Rust types, so the two encodings
//! can never disagree about names or numbers.

use std::sync::LazyLock;

use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(crate::MESOS_DESCRIPTOR_SET).ok());

/// Why a JSON document could not become (or come from) a message.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The message type is not in the compiled descriptor set.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The JSON did not match the message schema.
    #[error("invalid JSON for `{type_name}`")]
    Invalid {
        /// The protobuf type that was being parsed.
        type_name: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The converted message could not be re-encoded (required field missing, ...).
    #[error("message `{type_name}` does not round-trip")]
    Protobuf {
        /// The protobuf type.
        type_name: String,
        /// What prost said.
        #[source]
        source: prost::DecodeError,
    },
}

fn descriptor(name: &str) -> Result<MessageDescriptor, JsonError> {
    POOL.as_ref()
        .and_then(|p| p.get_message_by_name(name))
        .ok_or_else(|| JsonError::UnknownType(name.to_owned()))
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .use_enum_numbers(false)
        .skip_default_fields(true)
}

/// Serializes `msg` to Mesos JSON.
pub fn to_json<M: Message + Name>(msg: &M) -> Result<Vec<u8>, JsonError> {
    let value = to_json_value(msg)?;
    Ok(serde_json::to_vec(&value).unwrap_or_default())
}

/// Serializes `msg` to a Mesos JSON value.
pub fn to_json_value<M: Message + Name>(msg: &M) -> Result<serde_json::Value, JsonError> {
    let name = M::full_name();
    let desc = descriptor(&name)?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|source| JsonError::Protobuf { type_name: name.clone(), source })?;
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &serialize_options())
        .map_err(|source| JsonError::Invalid { type_name: name, source })
}

/// Parses Mesos JSON into `M`.
pub fn from_json<M: Message + Name + Default>(bytes: &[u8]) -> Result<M, JsonError> {
    let name = M::full_name();
    let desc = descriptor(&name)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic = DynamicMessage::deserialize_with_options(desc, &mut de, &options)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|source| JsonError::Invalid { type_name: name.clone(), source })?;
    M::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|source| JsonError::Protobuf { type_name: name, source })
}

/// Parses a Mesos JSON value into `M`.
pub fn from_json_value<M: Message + Name + Default>(
    value: &serde_json::Value,
) -> Result<M, JsonError> {
    from_json(&serde_json::to_vec(value).unwrap_or_default())
}
