//! Client side of an RTMP connection that plays (antenne pulling a stream
//! from another server, e.g. the streamer's nginx-rtmp), sans-IO.
//!
//! The sequence is the one ffmpeg and librtmp use, which nginx-rtmp, SRS and
//! MediaMTX serve: handshake, Set Chunk Size, `connect`, Window Ack Size,
//! `createStream`, `play` (live, from now), then Set Buffer Length (user
//! control 3) for the new stream. The server answers `NetStream.Play.Start`
//! (nginx-rtmp also `NetStream.Play.Reset` before it), then sends metadata,
//! audio and video. The session answers pings, acknowledges what it
//! receives once a window's worth arrived, and reports the media and the
//! server's verdicts as [`PlayerEvent`]s.
//!
//! Invariants: the server is untrusted input. The chunk decoder runs with
//! the limits a publisher gets after its key is checked
//! ([`DecoderLimits::MEDIA`]); commands are decoded with the bounded AMF0
//! decoder; nothing here panics on input. Media bodies stay opaque [`Bytes`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::amf0::Amf0Value;
use crate::chunk::{ChunkDecoder, DecoderLimits};
use crate::client::OUTBOUND_CHUNK_SIZE;
use crate::handshake::{ClientHandshake, HandshakeProgress, PACKET_SIZE};
use crate::message::{
    control, strip_set_data_frame, type_id, user_control, Command, Message, Status,
};
use crate::outbox::Outbox;
use crate::server::SessionError;

/// What to play, and where.
#[derive(Debug, Clone)]
pub struct PlayTarget {
    /// Application path, e.g. `live`.
    pub app: String,
    /// The URL the server sees in `connect`: `rtmp://host[:port]/app`.
    pub tc_url: String,
    /// Stream name (on nginx-rtmp, the name the publisher used).
    pub stream_name: String,
}

/// What the server said or sent.
#[derive(Debug, Clone, PartialEq)]
pub enum PlayerEvent {
    /// `NetStream.Play.Start`: the server accepted; media follows when a
    /// publisher is live there.
    Playing,
    /// The server refused `connect`, `createStream` or `play`.
    Rejected(Status),
    /// `onMetaData`; `body` starts at `onMetaData` (any `@setDataFrame`
    /// wrapper removed).
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
    /// The publisher at the source stopped (`NetStream.Play.UnpublishNotify`,
    /// `NetStream.Play.Stop`, or Stream EOF); the connection stays and media
    /// may come again (`NetStream.Play.PublishNotify`).
    SourceStopped,
    /// After playing started the server sent an error status or `close`.
    StreamFailed(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Connecting,
    CreatingStream,
    Starting,
    Playing,
}

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 2.0;
const TXN_PLAY: f64 = 3.0;

/// Window acknowledgement size antenne announces (what ffmpeg announces).
pub const PLAYER_WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Buffer length announced with Set Buffer Length (ffmpeg's default, ms).
pub const PLAYER_BUFFER_MS: u32 = 3000;

/// Client side of one playing connection.
#[derive(Debug)]
pub struct PlayerSession {
    target: PlayTarget,
    stage: Stage,
    handshake: ClientHandshake,
    hs_buf: BytesMut,
    decoder: ChunkDecoder,
    outbox: Outbox,
    events: VecDeque<PlayerEvent>,
    stream_id: u32,
}

impl PlayerSession {
    /// A session that plays `target`; take its output at once (C0 C1).
    pub fn new(target: PlayTarget, random: [u8; PACKET_SIZE]) -> Self {
        let mut handshake = ClientHandshake::new(random);
        let mut outbox = Outbox::default();
        outbox.out.extend_from_slice(&handshake.start());
        Self {
            target,
            stage: Stage::Handshake,
            handshake,
            hs_buf: BytesMut::new(),
            decoder: ChunkDecoder::new(DecoderLimits::MEDIA),
            outbox,
            events: VecDeque::new(),
            stream_id: 0,
        }
    }

    /// True once `NetStream.Play.Start` arrived.
    pub fn is_playing(&self) -> bool {
        self.stage == Stage::Playing
    }

    /// Bytes to send, if any (handshake, commands, acknowledgements).
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.outbox.take()
    }

    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// Bytes received from the server so far (after the handshake).
    pub fn bytes_in(&self) -> u64 {
        self.decoder.bytes_in()
    }

    /// Feeds bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), SessionError> {
        if self.stage == Stage::Handshake {
            self.hs_buf.extend_from_slice(data);
            match self.handshake.feed(&self.hs_buf, &mut self.outbox.out)? {
                HandshakeProgress::NeedMore => return Ok(()),
                HandshakeProgress::Done { consumed } => {
                    let rest = self.hs_buf.split_off(consumed);
                    self.hs_buf = BytesMut::new();
                    self.decoder.push(&rest);
                    self.start_connect();
                }
            }
        } else {
            self.decoder.push(data);
        }
        while let Some(raw) = self.decoder.next_message()? {
            // Media keeps its timestamp, which `Message` does not carry.
            match raw.type_id {
                type_id::AUDIO if self.stage == Stage::Playing => {
                    self.events.push_back(PlayerEvent::Audio {
                        timestamp: raw.timestamp,
                        payload: raw.payload,
                    });
                }
                type_id::VIDEO if self.stage == Stage::Playing => {
                    self.events.push_back(PlayerEvent::Video {
                        timestamp: raw.timestamp,
                        payload: raw.payload,
                    });
                }
                type_id::AUDIO | type_id::VIDEO => {}
                _ => {
                    let msg = Message::decode(&raw)?;
                    self.handle(msg);
                }
            }
        }
        self.outbox.acknowledge(self.decoder.bytes_in());
        Ok(())
    }

    fn start_connect(&mut self) {
        self.outbox.control(
            type_id::SET_CHUNK_SIZE,
            &control::u32_body(OUTBOUND_CHUNK_SIZE),
        );
        self.outbox.encoder.set_chunk_size(OUTBOUND_CHUNK_SIZE);
        let object = Amf0Value::object([
            ("app", Amf0Value::string(self.target.app.clone())),
            ("flashVer", Amf0Value::string("LNX 9,0,124,2")),
            ("tcUrl", Amf0Value::string(self.target.tc_url.clone())),
            ("fpad", Amf0Value::Boolean(false)),
            ("capabilities", Amf0Value::Number(15.0)),
            ("audioCodecs", Amf0Value::Number(4071.0)),
            ("videoCodecs", Amf0Value::Number(252.0)),
            ("videoFunction", Amf0Value::Number(1.0)),
        ]);
        self.outbox
            .command(0, Command::new("connect", TXN_CONNECT, object, vec![]));
        self.stage = Stage::Connecting;
    }

    fn handle(&mut self, msg: Message) {
        match msg {
            Message::WindowAckSize(size) => self.outbox.set_peer_window(size),
            Message::UserControl { event, data } => match event {
                user_control::PING_REQUEST => self.outbox.answer_ping(&data),
                user_control::STREAM_EOF if self.stage == Stage::Playing => {
                    self.events.push_back(PlayerEvent::SourceStopped);
                }
                _ => {}
            },
            Message::Command(cmd) => self.handle_command(cmd),
            Message::Data(payload) if self.stage == Stage::Playing => {
                // `|RtmpSampleAccess` and other handlers are not the stream's.
                if let Ok((name, body)) = strip_set_data_frame(&payload) {
                    if name == "onMetaData" {
                        self.events.push_back(PlayerEvent::Metadata { body });
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        match (cmd.name.as_str(), self.stage) {
            ("_result", Stage::Connecting) if cmd.transaction_id == TXN_CONNECT => {
                self.outbox.control(
                    type_id::WINDOW_ACK_SIZE,
                    &control::u32_body(PLAYER_WINDOW_ACK_SIZE),
                );
                self.outbox.command(
                    0,
                    Command::new("createStream", TXN_CREATE_STREAM, Amf0Value::Null, vec![]),
                );
                self.stage = Stage::CreatingStream;
            }
            ("_result", Stage::CreatingStream) if cmd.transaction_id == TXN_CREATE_STREAM => {
                self.stream_id = cmd
                    .args
                    .first()
                    .and_then(|v| v.as_number())
                    .filter(|n| n.is_finite() && *n >= 0.0 && *n <= u32::MAX as f64)
                    .map(|n| n as u32)
                    .unwrap_or(1);
                // Start -2: live if there is one, else recorded; nginx-rtmp
                // and ffmpeg use it. The duration -1: all of it.
                self.outbox.command(
                    self.stream_id,
                    Command::new(
                        "play",
                        TXN_PLAY,
                        Amf0Value::Null,
                        vec![
                            Amf0Value::string(self.target.stream_name.clone()),
                            Amf0Value::Number(-2.0),
                            Amf0Value::Number(-1.0),
                        ],
                    ),
                );
                self.outbox.control(
                    type_id::USER_CONTROL,
                    &set_buffer_length(self.stream_id, PLAYER_BUFFER_MS),
                );
                self.stage = Stage::Starting;
            }
            ("_error", Stage::Connecting | Stage::CreatingStream | Stage::Starting) => {
                let what = if cmd.transaction_id == TXN_CONNECT {
                    "connect"
                } else if cmd.transaction_id == TXN_CREATE_STREAM {
                    "createStream"
                } else {
                    "play"
                };
                let status = Status::from_command(&cmd).unwrap_or(Status {
                    level: "error".into(),
                    code: "_error".into(),
                    description: format!("server refused {what}"),
                });
                self.events.push_back(PlayerEvent::Rejected(status));
            }
            ("onStatus", stage) => {
                let Some(status) = Status::from_command(&cmd) else {
                    return;
                };
                match status.code.as_str() {
                    "NetStream.Play.Start" if stage == Stage::Starting => {
                        self.stage = Stage::Playing;
                        self.events.push_back(PlayerEvent::Playing);
                    }
                    "NetStream.Play.UnpublishNotify" | "NetStream.Play.Stop"
                        if stage == Stage::Playing =>
                    {
                        self.events.push_back(PlayerEvent::SourceStopped);
                    }
                    _ if status.is_error() => {
                        if stage == Stage::Playing {
                            self.events.push_back(PlayerEvent::StreamFailed(status));
                        } else {
                            self.events.push_back(PlayerEvent::Rejected(status));
                        }
                    }
                    _ => {}
                }
            }
            ("close", _) => {
                self.events.push_back(PlayerEvent::StreamFailed(Status {
                    level: "error".into(),
                    code: "NetConnection.Connect.Closed".into(),
                    description: "server closed the connection".into(),
                }));
            }
            _ => {}
        }
    }
}

/// User control Set Buffer Length: event 3, stream id, buffer in ms.
fn set_buffer_length(stream_id: u32, ms: u32) -> [u8; 10] {
    let mut b = [0u8; 10];
    b[..2].copy_from_slice(&user_control::SET_BUFFER_LENGTH.to_be_bytes());
    b[2..6].copy_from_slice(&stream_id.to_be_bytes());
    b[6..].copy_from_slice(&ms.to_be_bytes());
    b
}

#[cfg(test)]
mod tests;
