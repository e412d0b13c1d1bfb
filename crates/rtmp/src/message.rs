//! RTMP messages above the chunk layer: protocol control, user control,
//! AMF0 commands and data, audio and video.

use bytes::{BufMut, Bytes, BytesMut};

use crate::amf0::{self, Amf0Error, Amf0Value};
use crate::chunk::RawMessage;

/// Message type ids.
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids antenne writes on.
pub mod csid {
    pub const PROTOCOL_CONTROL: u32 = 2;
    pub const COMMAND: u32 = 3;
    pub const AUDIO: u32 = 4;
    pub const DATA: u32 = 5;
    pub const VIDEO: u32 = 6;
}

/// User control event types.
pub mod user_control {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// Most AMF0 values one command may decode into, nested ones included. A
/// `connect` from OBS or ffmpeg holds about twenty; the bound keeps a
/// command of a million 1-byte nulls from becoming 32 MiB of values.
pub const MAX_COMMAND_VALUES: usize = 1024;

/// An AMF0 command: `connect`, `createStream`, `publish`, `_result`,
/// `onStatus`, …
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    /// The command object (often `Null`).
    pub object: Amf0Value,
    pub args: Vec<Amf0Value>,
}

/// Why a message could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("malformed AMF0 in {what}: {source}")]
    Amf0 {
        what: &'static str,
        #[source]
        source: Amf0Error,
    },
    #[error("command message without a name")]
    CommandWithoutName,
    #[error("AMF3 commands are not supported")]
    Amf3NotSupported,
    #[error("control message of type {type_id} is {len} bytes long, too short")]
    ShortControl { type_id: u8, len: usize },
}

impl Command {
    pub fn new(name: &str, transaction_id: f64, object: Amf0Value, args: Vec<Amf0Value>) -> Self {
        Self {
            name: name.to_owned(),
            transaction_id,
            object,
            args,
        }
    }

    /// Parses an AMF0 command body (at most [`MAX_COMMAND_VALUES`] values).
    pub fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let mut values = amf0::decode_all_bounded(payload, MAX_COMMAND_VALUES)
            .map_err(|source| MessageError::Amf0 {
                what: "command",
                source,
            })?
            .into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(MessageError::CommandWithoutName),
        };
        let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Self {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::new();
        amf0::encode(&Amf0Value::String(self.name.clone()), &mut out);
        amf0::encode(&Amf0Value::Number(self.transaction_id), &mut out);
        amf0::encode(&self.object, &mut out);
        for a in &self.args {
            amf0::encode(a, &mut out);
        }
        out
    }

    /// The first argument as a string (`publish`'s stream name,
    /// `releaseStream`'s name, …).
    pub fn first_string_arg(&self) -> Option<&str> {
        self.args.first().and_then(|v| v.as_str())
    }
}

/// The status object of an `onStatus` (or `_error`) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub level: String,
    pub code: String,
    pub description: String,
}

impl Status {
    /// Reads `level`, `code` and `description` from the first object among
    /// a command's object and arguments.
    pub fn from_command(cmd: &Command) -> Option<Status> {
        std::iter::once(&cmd.object)
            .chain(cmd.args.iter())
            .find(|v| v.properties().is_some())
            .map(|info| {
                let field = |k| {
                    info.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                Status {
                    level: field("level"),
                    code: field("code"),
                    description: field("description"),
                }
            })
    }

    pub fn is_error(&self) -> bool {
        self.level == "error"
    }

    pub fn to_amf0(&self) -> Amf0Value {
        Amf0Value::object([
            ("level", Amf0Value::string(self.level.clone())),
            ("code", Amf0Value::string(self.code.clone())),
            ("description", Amf0Value::string(self.description.clone())),
        ])
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort(u32),
    Acknowledgement(u32),
    UserControl {
        event: u16,
        data: Bytes,
    },
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit: u8,
    },
    Audio(Bytes),
    Video(Bytes),
    /// An AMF0 data message (`@setDataFrame`, `onMetaData`, …), raw.
    Data(Bytes),
    Command(Command),
    /// Anything else (aggregate, AMF3 data, shared objects): ignored.
    Other(u8),
}

fn be_u32(p: &[u8], type_id: u8) -> Result<u32, MessageError> {
    p.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(MessageError::ShortControl {
            type_id,
            len: p.len(),
        })
}

impl Message {
    pub fn decode(raw: &RawMessage) -> Result<Message, MessageError> {
        let p = &raw.payload;
        Ok(match raw.type_id {
            type_id::SET_CHUNK_SIZE => Message::SetChunkSize(be_u32(p, raw.type_id)?),
            type_id::ABORT => Message::Abort(be_u32(p, raw.type_id)?),
            type_id::ACKNOWLEDGEMENT => Message::Acknowledgement(be_u32(p, raw.type_id)?),
            type_id::WINDOW_ACK_SIZE => Message::WindowAckSize(be_u32(p, raw.type_id)?),
            type_id::SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: be_u32(p, raw.type_id)?,
                limit: p.get(4).copied().unwrap_or(2),
            },
            type_id::USER_CONTROL => {
                if p.len() < 2 {
                    return Err(MessageError::ShortControl {
                        type_id: raw.type_id,
                        len: p.len(),
                    });
                }
                Message::UserControl {
                    event: u16::from_be_bytes([p[0], p[1]]),
                    data: p.slice(2..),
                }
            }
            type_id::AUDIO => Message::Audio(p.clone()),
            type_id::VIDEO => Message::Video(p.clone()),
            type_id::DATA_AMF0 => Message::Data(p.clone()),
            type_id::COMMAND_AMF0 => Message::Command(Command::decode(p)?),
            type_id::COMMAND_AMF3 => {
                // AMF3 command messages start with a zero byte then AMF0.
                match p.split_first() {
                    Some((0, rest)) => Message::Command(Command::decode(rest)?),
                    _ => return Err(MessageError::Amf3NotSupported),
                }
            }
            other => Message::Other(other),
        })
    }
}

/// Encoders for the control messages antenne sends.
pub mod control {
    use super::*;

    pub fn u32_body(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    pub fn set_peer_bandwidth(size: u32, limit: u8) -> [u8; 5] {
        let b = size.to_be_bytes();
        [b[0], b[1], b[2], b[3], limit]
    }

    pub fn user_control(event: u16, value: u32) -> [u8; 6] {
        let e = event.to_be_bytes();
        let v = value.to_be_bytes();
        [e[0], e[1], v[0], v[1], v[2], v[3]]
    }

    /// The body of a data message `@setDataFrame` + `onMetaData` + values,
    /// built from the body that starts at `onMetaData`.
    pub fn set_data_frame(on_metadata_body: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(16 + on_metadata_body.len());
        amf0::encode(&Amf0Value::string("@setDataFrame"), &mut out);
        out.put_slice(on_metadata_body);
        out.freeze()
    }
}

/// Splits a data message into its handler name and the body that follows
/// `@setDataFrame` (if present): returns (name, body starting at the name).
pub fn strip_set_data_frame(payload: &Bytes) -> Result<(String, Bytes), MessageError> {
    let err = |source| MessageError::Amf0 {
        what: "data message",
        source,
    };
    let (first, used) = amf0::decode_one(payload).map_err(err)?;
    let (name, body) = match first.as_str() {
        Some("@setDataFrame") => {
            let rest = payload.slice(used..);
            let (second, _) = amf0::decode_one(&rest).map_err(err)?;
            (second.as_str().unwrap_or("").to_owned(), rest)
        }
        Some(name) => (name.to_owned(), payload.clone()),
        None => (String::new(), payload.clone()),
    };
    Ok((name, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips() {
        let cmd = Command::new(
            "publish",
            5.0,
            Amf0Value::Null,
            vec![Amf0Value::string("key"), Amf0Value::string("live")],
        );
        let bytes = cmd.encode();
        assert_eq!(Command::decode(&bytes).expect("decodes"), cmd);
        assert_eq!(cmd.first_string_arg(), Some("key"));
    }

    #[test]
    fn reads_the_status_of_on_status() {
        let cmd = Command::new(
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![Status {
                level: "error".into(),
                code: "NetStream.Publish.BadName".into(),
                description: "bad key".into(),
            }
            .to_amf0()],
        );
        let st = Status::from_command(&cmd).expect("has a status");
        assert!(st.is_error());
        assert_eq!(st.code, "NetStream.Publish.BadName");
    }

    #[test]
    fn strips_set_data_frame() {
        let mut body = BytesMut::new();
        amf0::encode(&Amf0Value::string("onMetaData"), &mut body);
        amf0::encode(
            &Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
            &mut body,
        );
        let body = body.freeze();
        let wrapped = control::set_data_frame(&body);
        let (name, stripped) = strip_set_data_frame(&wrapped).expect("decodes");
        assert_eq!(name, "onMetaData");
        assert_eq!(stripped, body);
        let (name, same) = strip_set_data_frame(&body).expect("decodes");
        assert_eq!(name, "onMetaData");
        assert_eq!(same, body);
    }

    #[test]
    fn refuses_a_command_of_a_million_nulls_before_decoding_them_all() {
        let mut body = Command::new("connect", 1.0, Amf0Value::Null, vec![]).encode();
        body.extend_from_slice(&vec![0x05u8; 1_000_000]);
        assert_eq!(
            Command::decode(&body),
            Err(MessageError::Amf0 {
                what: "command",
                source: Amf0Error::TooManyValues(MAX_COMMAND_VALUES)
            })
        );
    }

    #[test]
    fn short_control_messages_are_errors_not_panics() {
        let raw = RawMessage {
            csid: 2,
            timestamp: 0,
            type_id: type_id::WINDOW_ACK_SIZE,
            stream_id: 0,
            payload: Bytes::from_static(&[1, 2]),
        };
        assert!(Message::decode(&raw).is_err());
    }
}
