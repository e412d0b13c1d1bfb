//! Client side of an RTMP connection that publishes (antenne towards a
//! platform), sans-IO.
//!
//! It speaks the sequence CDNs expect from OBS: handshake, Set Chunk Size,
//! `connect` (with `tcUrl`), `releaseStream`, `FCPublish`, `createStream`,
//! `publish`; then media. It answers pings and acknowledges what it
//! receives, and reports the platform's verdict as [`ClientEvent`]s.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::amf0::Amf0Value;
use crate::chunk::{ChunkDecoder, DecoderLimits};
use crate::chunked::ChunkedPayload;
use crate::handshake::{ClientHandshake, HandshakeProgress, PACKET_SIZE};
use crate::message::{control, csid, type_id, user_control, Command, Message, Status};
use crate::outbox::Outbox;
use crate::server::SessionError;

/// Where and what to publish.
#[derive(Debug, Clone)]
pub struct PublishTarget {
    /// Application path, e.g. `live2` or `app/sub?token=x`.
    pub app: String,
    /// The URL the server sees in `connect`: `rtmp://host[:port]/app`.
    pub tc_url: String,
    /// Stream name (usually the stream key).
    pub stream_name: String,
}

/// What the platform said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `NetStream.Publish.Start`: media may flow.
    Published,
    /// The platform refused `connect` or `publish` (bad key, bad app…).
    Rejected(Status),
    /// After publishing started, the platform sent an error status or
    /// closed the stream.
    StreamFailed(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Connecting,
    CreatingStream,
    Publishing,
    Published,
}

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 4.0;
const TXN_PUBLISH: f64 = 5.0;

/// Chunk size antenne writes with, as OBS does.
pub const OUTBOUND_CHUNK_SIZE: u32 = 4096;

/// Lays out an audio or video payload once for every [`ClientSession`]:
/// on the chunk stream and with the chunk size they all use, so each
/// connection adds only its own message header
/// ([`ClientSession::media_chunked`]).
pub fn prepare_media(video: bool, payload: Bytes) -> ChunkedPayload {
    let cs = if video { csid::VIDEO } else { csid::AUDIO };
    ChunkedPayload::new(cs, OUTBOUND_CHUNK_SIZE, payload)
}

/// Client side of one publishing connection.
#[derive(Debug)]
pub struct ClientSession {
    target: PublishTarget,
    stage: Stage,
    handshake: ClientHandshake,
    hs_buf: BytesMut,
    decoder: ChunkDecoder,
    outbox: Outbox,
    events: VecDeque<ClientEvent>,
    stream_id: u32,
    next_txn: f64,
}

impl ClientSession {
    pub fn new(target: PublishTarget, random: [u8; PACKET_SIZE]) -> Self {
        let mut handshake = ClientHandshake::new(random);
        let mut outbox = Outbox::default();
        outbox.out.extend_from_slice(&handshake.start());
        Self {
            target,
            stage: Stage::Handshake,
            handshake,
            hs_buf: BytesMut::new(),
            // Servers send little; small limits are plenty.
            decoder: ChunkDecoder::new(DecoderLimits {
                max_message_size: 1024 * 1024,
                max_chunk_streams: 64,
                max_buffered: 2 * 1024 * 1024,
            }),
            outbox,
            events: VecDeque::new(),
            stream_id: 0,
            next_txn: 6.0,
        }
    }

    /// True once `NetStream.Publish.Start` arrived.
    pub fn is_published(&self) -> bool {
        self.stage == Stage::Published
    }

    /// Bytes to send, if any (handshake, commands, acknowledgements).
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.outbox.take()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
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
            let msg = Message::decode(&raw)?;
            self.handle(msg);
        }
        self.outbox.acknowledge(self.decoder.bytes_in());
        Ok(())
    }

    fn send_control(&mut self, type_id: u8, body: &[u8]) {
        self.outbox.control(type_id, body);
    }

    fn send_command(&mut self, stream_id: u32, cmd: Command) {
        self.outbox.command(stream_id, cmd);
    }

    fn start_connect(&mut self) {
        self.send_control(
            type_id::SET_CHUNK_SIZE,
            &control::u32_body(OUTBOUND_CHUNK_SIZE),
        );
        self.outbox.encoder.set_chunk_size(OUTBOUND_CHUNK_SIZE);
        let object = Amf0Value::object([
            ("app", Amf0Value::string(self.target.app.clone())),
            ("type", Amf0Value::string("nonprivate")),
            (
                "flashVer",
                Amf0Value::string("FMLE/3.0 (compatible; antenne)"),
            ),
            ("swfUrl", Amf0Value::string(self.target.tc_url.clone())),
            ("tcUrl", Amf0Value::string(self.target.tc_url.clone())),
        ]);
        self.send_command(0, Command::new("connect", TXN_CONNECT, object, vec![]));
        self.stage = Stage::Connecting;
    }

    fn handle(&mut self, msg: Message) {
        match msg {
            Message::WindowAckSize(size) => self.outbox.set_peer_window(size),
            Message::UserControl { event, data } if event == user_control::PING_REQUEST => {
                self.outbox.answer_ping(&data);
            }
            Message::Command(cmd) => self.handle_command(cmd),
            _ => {}
        }
    }

    fn handle_command(&mut self, cmd: Command) {
        let name = self.target.stream_name.clone();
        match (cmd.name.as_str(), self.stage) {
            ("_result", Stage::Connecting) if cmd.transaction_id == TXN_CONNECT => {
                let arg = Amf0Value::string(name);
                self.send_command(
                    0,
                    Command::new("releaseStream", 2.0, Amf0Value::Null, vec![arg.clone()]),
                );
                self.send_command(
                    0,
                    Command::new("FCPublish", 3.0, Amf0Value::Null, vec![arg]),
                );
                self.send_command(
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
                    .map(|n| n as u32)
                    .unwrap_or(1);
                self.send_command(
                    self.stream_id,
                    Command::new(
                        "publish",
                        TXN_PUBLISH,
                        Amf0Value::Null,
                        vec![Amf0Value::string(name), Amf0Value::string("live")],
                    ),
                );
                self.stage = Stage::Publishing;
            }
            ("_error", Stage::Connecting | Stage::CreatingStream | Stage::Publishing)
                if cmd.transaction_id == TXN_CONNECT
                    || cmd.transaction_id == TXN_CREATE_STREAM
                    || cmd.transaction_id == TXN_PUBLISH =>
            {
                let status = Status::from_command(&cmd).unwrap_or(Status {
                    level: "error".into(),
                    code: "_error".into(),
                    description: format!("server refused {}", describe_txn(cmd.transaction_id)),
                });
                self.events.push_back(ClientEvent::Rejected(status));
            }
            ("onStatus", stage) => {
                let Some(status) = Status::from_command(&cmd) else {
                    return;
                };
                if status.code == "NetStream.Publish.Start" && stage == Stage::Publishing {
                    self.stage = Stage::Published;
                    self.events.push_back(ClientEvent::Published);
                } else if status.is_error() || status.code == "NetStream.Publish.Stop" {
                    if stage == Stage::Published {
                        self.events.push_back(ClientEvent::StreamFailed(status));
                    } else {
                        self.events.push_back(ClientEvent::Rejected(status));
                    }
                }
            }
            ("close", _) => {
                self.events.push_back(ClientEvent::StreamFailed(Status {
                    level: "error".into(),
                    code: "NetConnection.Connect.Closed".into(),
                    description: "server closed the connection".into(),
                }));
            }
            _ => {}
        }
    }

    /// Encodes an audio or video message (shared payload, no copy) into
    /// `out`, after any pending protocol output.
    pub fn media_parts(
        &mut self,
        video: bool,
        timestamp: u32,
        payload: &Bytes,
        out: &mut Vec<Bytes>,
    ) {
        if let Some(pending) = self.take_output() {
            out.push(pending);
        }
        let (cs, ty) = if video {
            (csid::VIDEO, type_id::VIDEO)
        } else {
            (csid::AUDIO, type_id::AUDIO)
        };
        self.outbox
            .encoder
            .encode_parts(cs, timestamp, ty, self.stream_id, payload, out);
    }

    /// Encodes an audio or video message laid out beforehand by
    /// [`prepare_media`]: one type-0 header, then the shared layout.
    pub fn media_chunked(
        &mut self,
        video: bool,
        timestamp: u32,
        payload: &ChunkedPayload,
        out: &mut Vec<Bytes>,
    ) {
        if let Some(pending) = self.take_output() {
            out.push(pending);
        }
        let ty = if video {
            type_id::VIDEO
        } else {
            type_id::AUDIO
        };
        self.outbox
            .encoder
            .encode_chunked(timestamp, ty, self.stream_id, payload, out);
    }

    /// Encodes metadata (`body` starts at `onMetaData`) wrapped in
    /// `@setDataFrame`, as a publisher sends it.
    pub fn metadata_parts(&mut self, timestamp: u32, body: &[u8], out: &mut Vec<Bytes>) {
        if let Some(pending) = self.take_output() {
            out.push(pending);
        }
        let payload = control::set_data_frame(body);
        self.outbox.encoder.encode_parts(
            csid::DATA,
            timestamp,
            type_id::DATA_AMF0,
            self.stream_id,
            &payload,
            out,
        );
    }

    /// Ends the publication cleanly: FCUnpublish then deleteStream. Take
    /// the output and send it before closing.
    pub fn unpublish(&mut self) {
        let name = Amf0Value::string(self.target.stream_name.clone());
        let txn = self.next_txn;
        self.next_txn += 2.0;
        self.send_command(
            0,
            Command::new("FCUnpublish", txn, Amf0Value::Null, vec![name]),
        );
        let stream = Amf0Value::Number(self.stream_id as f64);
        self.send_command(
            0,
            Command::new("deleteStream", txn + 1.0, Amf0Value::Null, vec![stream]),
        );
    }
}

fn describe_txn(txn: f64) -> &'static str {
    if txn == TXN_CONNECT {
        "connect"
    } else if txn == TXN_CREATE_STREAM {
        "createStream"
    } else {
        "publish"
    }
}
