//! Server side of an RTMP connection (what OBS and ffmpeg publish to),
//! sans-IO: feed received bytes, poll [`ServerEvent`]s, take bytes to send.
//!
//! The session answers the protocol chatter itself (acknowledgements,
//! pings, `releaseStream`, `FCPublish`, `createStream`, refusing `play`)
//! and leaves the two decisions that need policy to its owner: accept or
//! reject `connect` (the application name) and `publish` (the stream key).
//!
//! Until a publication is accepted the peer is unauthenticated, so the
//! session holds it to what commands need ([`ServerConfig::pre_publish`]);
//! [`ServerSession::accept_publish`] raises the limits to what media needs
//! ([`ServerConfig::media`]). Whether a message may be decoded at all (its
//! type in this state, a command's size) is decided from its header before
//! its body is decoded.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::amf0::Amf0Value;
use crate::chunk::{ChunkDecoder, ChunkError, DecoderLimits, RawMessage};
use crate::handshake::{HandshakeError, HandshakeProgress, ServerHandshake, PACKET_SIZE};
use crate::message::{
    control, strip_set_data_frame, type_id, user_control, Command, Message, MessageError, Status,
};
use crate::outbox::Outbox;

/// What the owner of a [`ServerSession`] must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client asked to connect to `app`; answer with
    /// [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`].
    ConnectRequested {
        app: String,
        tc_url: Option<String>,
    },
    /// The client asked to publish; `stream_key` is the stream name without
    /// any `?query`. Answer with `accept_publish` or `reject_publish`.
    PublishRequested {
        stream_key: String,
    },
    /// Stream metadata; `body` starts at `onMetaData` (AMF0), with any
    /// `@setDataFrame` wrapper removed.
    Metadata {
        body: Bytes,
    },
    Audio {
        timestamp: u32,
        payload: Bytes,
    },
    Video {
        timestamp: u32,
        payload: Bytes,
    },
    /// The client ended its publication (FCUnpublish, deleteStream or
    /// closeStream).
    PublishEnded,
    /// The client asked to play, which antenne does not serve; it was told
    /// so.
    PlayRefused {
        stream: String,
    },
}

/// Why the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("invalid chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    #[error("invalid message: {0}")]
    Message(#[from] MessageError),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// Settings of the server side.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Chunk size announced to the client for our messages.
    pub chunk_size: u32,
    /// Window acknowledgement size announced to the client.
    pub window_ack_size: u32,
    /// Chunk stream limits until a publication is accepted.
    pub pre_publish: DecoderLimits,
    /// Chunk stream limits once a publication is accepted (they stay after
    /// it ends: the key was checked).
    pub media: DecoderLimits,
    /// Largest command (AMF0 or AMF3) accepted in any state, checked
    /// before its body is decoded.
    pub max_command_size: usize,
    /// Most commands a client may send before its first accepted publish
    /// (OBS and ffmpeg send five or six: `connect`, `releaseStream`,
    /// `FCPublish`, `createStream`, `publish`); each may cost an answer.
    pub max_commands_before_publish: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            pre_publish: DecoderLimits::COMMANDS,
            media: DecoderLimits::MEDIA,
            max_command_size: 64 * 1024,
            max_commands_before_publish: 64,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Handshake(Box<ServerHandshake>, BytesMut),
    Chunks,
}

/// The publishing stream id we hand out in `createStream`.
const STREAM_ID: u32 = 1;

/// Server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    phase: Phase,
    decoder: ChunkDecoder,
    outbox: Outbox,
    events: VecDeque<ServerEvent>,
    connect_txn: Option<f64>,
    connected: bool,
    publish_txn: Option<f64>,
    publishing: bool,
    /// Whether a publish was ever accepted (the key was checked).
    published: bool,
    /// Commands received before the first accepted publish.
    commands: u32,
}

impl ServerSession {
    pub fn new(config: ServerConfig, random: [u8; PACKET_SIZE]) -> Self {
        Self {
            config,
            phase: Phase::Handshake(Box::new(ServerHandshake::new(random)), BytesMut::new()),
            decoder: ChunkDecoder::new(config.pre_publish),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            connect_txn: None,
            connected: false,
            publish_txn: None,
            publishing: false,
            published: false,
            commands: 0,
        }
    }

    /// Whether a publication is accepted and running.
    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// Feeds bytes received from the client.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), SessionError> {
        if let Phase::Handshake(hs, buf) = &mut self.phase {
            buf.extend_from_slice(data);
            let (progress, used) = hs.feed(buf, &mut self.outbox.out)?;
            match progress {
                HandshakeProgress::NeedMore => {
                    let _ = buf.split_to(used);
                    return Ok(());
                }
                HandshakeProgress::Done { .. } => {
                    let rest = buf.split_off(used);
                    self.phase = Phase::Chunks;
                    self.decoder.push(&rest);
                }
            }
        } else {
            self.decoder.push(data);
        }
        // Stop at a decision the owner must take (connect, publish): what
        // follows is decoded by `resume` once it has answered.
        while !self.awaiting_decision() {
            let Some(raw) = self.decoder.next_message()? else {
                break;
            };
            if !self.admit(&raw)? {
                continue;
            }
            let msg = Message::decode(&raw)?;
            self.handle(raw.timestamp, msg)?;
        }
        self.outbox.acknowledge(self.decoder.bytes_in());
        Ok(())
    }

    /// Goes on decoding buffered bytes after the owner answered a
    /// `ConnectRequested` or `PublishRequested`.
    pub fn resume(&mut self) -> Result<(), SessionError> {
        self.feed(&[])
    }

    /// Whether `raw` may be decoded now, from its header alone: `Ok(false)`
    /// skips what this state ignores (media before a publication, types we
    /// do not serve), an error refuses what is never allowed (a command
    /// larger than any real one).
    fn admit(&mut self, raw: &RawMessage) -> Result<bool, SessionError> {
        Ok(match raw.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                if raw.payload.len() > self.config.max_command_size {
                    return Err(SessionError::Protocol(format!(
                        "command of {} bytes exceeds the limit of {} bytes",
                        raw.payload.len(),
                        self.config.max_command_size
                    )));
                }
                if !self.published && self.commands >= self.config.max_commands_before_publish {
                    return Err(SessionError::Protocol(format!(
                        "more than {} commands before publishing",
                        self.config.max_commands_before_publish
                    )));
                }
                self.commands += 1;
                true
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 => self.publishing,
            type_id::SET_CHUNK_SIZE..=type_id::SET_PEER_BANDWIDTH => true,
            _ => false,
        })
    }

    fn awaiting_decision(&self) -> bool {
        self.connect_txn.is_some() || self.publish_txn.is_some()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Whether events wait to be polled.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Bytes to send to the client, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.outbox.take()
    }

    fn send_control(&mut self, type_id: u8, body: &[u8]) {
        self.outbox.control(type_id, body);
    }

    fn send_command(&mut self, stream_id: u32, cmd: Command) {
        self.outbox.command(stream_id, cmd);
    }

    fn on_status(&mut self, status: Status) {
        self.send_command(
            STREAM_ID,
            Command::new("onStatus", 0.0, Amf0Value::Null, vec![status.to_amf0()]),
        );
    }

    fn handle(&mut self, timestamp: u32, msg: Message) -> Result<(), SessionError> {
        match msg {
            Message::WindowAckSize(size) => self.outbox.set_peer_window(size),
            Message::UserControl { event, data } if event == user_control::PING_REQUEST => {
                self.outbox.answer_ping(&data);
            }
            Message::Command(cmd) => self.handle_command(cmd)?,
            Message::Data(payload) if self.publishing => {
                if let Ok((name, body)) = strip_set_data_frame(&payload) {
                    if name == "onMetaData" {
                        self.events.push_back(ServerEvent::Metadata { body });
                    }
                }
            }
            Message::Audio(payload) if self.publishing => {
                self.events
                    .push_back(ServerEvent::Audio { timestamp, payload });
            }
            Message::Video(payload) if self.publishing => {
                self.events
                    .push_back(ServerEvent::Video { timestamp, payload });
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_command(&mut self, cmd: Command) -> Result<(), SessionError> {
        match cmd.name.as_str() {
            "connect" => {
                if self.connected || self.connect_txn.is_some() {
                    return Err(SessionError::Protocol(
                        "second connect on one connection".into(),
                    ));
                }
                let app = cmd
                    .object
                    .get("app")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_owned();
                let tc_url = cmd
                    .object
                    .get("tcUrl")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                self.connect_txn = Some(cmd.transaction_id);
                self.events
                    .push_back(ServerEvent::ConnectRequested { app, tc_url });
            }
            _ if !self.connected => {
                return Err(SessionError::Protocol(format!(
                    "command {:?} before connect was accepted",
                    truncate(&cmd.name)
                )));
            }
            "releaseStream" | "FCPublish" => {
                self.send_command(
                    0,
                    Command::new(
                        "_result",
                        cmd.transaction_id,
                        Amf0Value::Null,
                        vec![Amf0Value::Undefined],
                    ),
                );
            }
            "createStream" => {
                self.send_command(
                    0,
                    Command::new(
                        "_result",
                        cmd.transaction_id,
                        Amf0Value::Null,
                        vec![Amf0Value::Number(STREAM_ID as f64)],
                    ),
                );
            }
            "publish" => {
                if self.publishing || self.publish_txn.is_some() {
                    return Err(SessionError::Protocol(
                        "second publish on one connection".into(),
                    ));
                }
                let name = cmd.first_string_arg().unwrap_or("");
                let stream_key = name.split('?').next().unwrap_or("").to_owned();
                self.publish_txn = Some(cmd.transaction_id);
                self.events
                    .push_back(ServerEvent::PublishRequested { stream_key });
            }
            "FCUnpublish" | "deleteStream" | "closeStream" if self.publishing => {
                self.publishing = false;
                self.events.push_back(ServerEvent::PublishEnded);
            }
            "play" => {
                let stream = cmd.first_string_arg().unwrap_or("").to_owned();
                self.on_status(Status {
                    level: "error".into(),
                    code: "NetStream.Play.Failed".into(),
                    description: "antenne does not serve playback".into(),
                });
                self.events.push_back(ServerEvent::PlayRefused { stream });
            }
            _ => {}
        }
        Ok(())
    }

    /// Accepts the pending `connect`.
    pub fn accept_connect(&mut self) {
        let Some(txn) = self.connect_txn.take() else {
            return;
        };
        self.connected = true;
        self.send_control(
            type_id::WINDOW_ACK_SIZE,
            &control::u32_body(self.config.window_ack_size),
        );
        self.send_control(
            type_id::SET_PEER_BANDWIDTH,
            &control::set_peer_bandwidth(self.config.window_ack_size, 2),
        );
        self.send_control(
            type_id::SET_CHUNK_SIZE,
            &control::u32_body(self.config.chunk_size),
        );
        self.outbox.encoder.set_chunk_size(self.config.chunk_size);
        self.send_command(
            0,
            Command::new(
                "_result",
                txn,
                Amf0Value::object([
                    ("fmsVer", Amf0Value::string("FMS/3,0,1,123")),
                    ("capabilities", Amf0Value::Number(31.0)),
                ]),
                vec![Amf0Value::object([
                    ("level", Amf0Value::string("status")),
                    ("code", Amf0Value::string("NetConnection.Connect.Success")),
                    ("description", Amf0Value::string("Connection succeeded.")),
                    ("objectEncoding", Amf0Value::Number(0.0)),
                ])],
            ),
        );
    }

    /// Rejects the pending `connect`; the owner closes the connection after
    /// sending the output.
    pub fn reject_connect(&mut self, description: &str) {
        let Some(txn) = self.connect_txn.take() else {
            return;
        };
        self.send_command(
            0,
            Command::new(
                "_error",
                txn,
                Amf0Value::Null,
                vec![Status {
                    level: "error".into(),
                    code: "NetConnection.Connect.Rejected".into(),
                    description: description.into(),
                }
                .to_amf0()],
            ),
        );
    }

    /// Accepts the pending `publish`: media events follow.
    pub fn accept_publish(&mut self) {
        if self.publish_txn.take().is_none() {
            return;
        }
        self.publishing = true;
        self.published = true;
        self.decoder.set_limits(self.config.media);
        self.send_control(
            type_id::USER_CONTROL,
            &control::user_control(user_control::STREAM_BEGIN, STREAM_ID),
        );
        self.on_status(Status {
            level: "status".into(),
            code: "NetStream.Publish.Start".into(),
            description: "Publishing.".into(),
        });
    }

    /// Rejects the pending `publish` with an error status such as
    /// `NetStream.Publish.BadName`; the owner closes the connection after
    /// sending the output.
    pub fn reject_publish(&mut self, code: &str, description: &str) {
        if self.publish_txn.take().is_none() {
            return;
        }
        self.on_status(Status {
            level: "error".into(),
            code: code.into(),
            description: description.into(),
        });
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
