//! The player against a scripted server: bytes in, bytes out, as
//! nginx-rtmp sends them (handshake, `_result`s, `onStatus`, StreamBegin,
//! `|RtmpSampleAccess`, `onMetaData`, media).

use bytes::{Bytes, BytesMut};

use super::*;
use crate::chunk::{ChunkDecoder, ChunkEncoder, RawMessage};
use crate::handshake::ServerHandshake;
use crate::message::csid;

/// The server's side: answers the handshake, decodes what the player
/// sends, encodes what a server sends.
struct FakeServer {
    hs: Option<ServerHandshake>,
    hs_in: BytesMut,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
}

impl FakeServer {
    fn new() -> Self {
        Self {
            hs: Some(ServerHandshake::new([7u8; PACKET_SIZE])),
            hs_in: BytesMut::new(),
            decoder: ChunkDecoder::new(DecoderLimits::MEDIA),
            encoder: ChunkEncoder::new(),
        }
    }

    /// Takes the player's bytes; returns the server's handshake answer, and
    /// the messages the player sent.
    fn receive(&mut self, data: &[u8]) -> (Bytes, Vec<RawMessage>) {
        let mut out = BytesMut::new();
        if let Some(hs) = &mut self.hs {
            self.hs_in.extend_from_slice(data);
            let (progress, used) = hs.feed(&self.hs_in, &mut out).expect("handshake");
            match progress {
                HandshakeProgress::NeedMore => {
                    let _ = self.hs_in.split_to(used);
                    return (out.freeze(), vec![]);
                }
                HandshakeProgress::Done { consumed } => {
                    let rest = self.hs_in.split_off(consumed);
                    self.hs = None;
                    self.decoder.push(&rest);
                }
            }
        } else {
            self.decoder.push(data);
        }
        let mut msgs = vec![];
        while let Some(m) = self.decoder.next_message().expect("valid chunks") {
            msgs.push(m);
        }
        (out.freeze(), msgs)
    }

    fn command(&mut self, stream_id: u32, cmd: Command) -> Bytes {
        let mut out = BytesMut::new();
        self.encoder.encode_into(
            csid::COMMAND,
            0,
            type_id::COMMAND_AMF0,
            stream_id,
            &cmd.encode(),
            &mut out,
        );
        out.freeze()
    }

    fn message(&mut self, cs: u32, ts: u32, ty: u8, stream_id: u32, body: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        self.encoder
            .encode_into(cs, ts, ty, stream_id, body, &mut out);
        out.freeze()
    }
}

fn target() -> PlayTarget {
    PlayTarget {
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1:1935/live".into(),
        stream_name: "obs".into(),
    }
}

fn status(code: &str, level: &str) -> Command {
    Command::new(
        "onStatus",
        0.0,
        Amf0Value::Null,
        vec![Status {
            level: level.into(),
            code: code.into(),
            description: String::new(),
        }
        .to_amf0()],
    )
}

fn commands(msgs: &[RawMessage]) -> Vec<Command> {
    msgs.iter()
        .filter(|m| m.type_id == type_id::COMMAND_AMF0)
        .map(|m| Command::decode(&m.payload).expect("command"))
        .collect()
}

fn events(p: &mut PlayerSession) -> Vec<PlayerEvent> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

/// Runs the player up to `play`; returns the messages it sent last.
fn up_to_play(p: &mut PlayerSession, s: &mut FakeServer) -> Vec<RawMessage> {
    let c0c1 = p.take_output().expect("C0 C1");
    let (s012, _) = s.receive(&c0c1);
    p.feed(&s012).expect("handshake accepted");
    let (_, msgs) = s.receive(&p.take_output().expect("C2 and connect"));
    let cmds = commands(&msgs);
    assert_eq!(cmds[0].name, "connect");
    assert_eq!(
        cmds[0].object.get("app").and_then(|v| v.as_str()),
        Some("live")
    );
    assert_eq!(
        cmds[0].object.get("tcUrl").and_then(|v| v.as_str()),
        Some("rtmp://127.0.0.1:1935/live")
    );
    let result = s.command(0, Command::new("_result", 1.0, Amf0Value::Null, vec![]));
    p.feed(&result).expect("connect result");
    let (_, msgs) = s.receive(&p.take_output().expect("createStream"));
    assert!(msgs.iter().any(|m| m.type_id == type_id::WINDOW_ACK_SIZE));
    assert_eq!(commands(&msgs)[0].name, "createStream");
    let result = s.command(
        0,
        Command::new(
            "_result",
            2.0,
            Amf0Value::Null,
            vec![Amf0Value::Number(1.0)],
        ),
    );
    p.feed(&result).expect("createStream result");
    let (_, msgs) = s.receive(&p.take_output().expect("play"));
    msgs
}

#[test]
fn plays_a_live_stream_as_nginx_rtmp_serves_it() {
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    let msgs = up_to_play(&mut p, &mut s);
    let play = &commands(&msgs)[0];
    assert_eq!(play.name, "play");
    assert_eq!(play.first_string_arg(), Some("obs"));
    assert_eq!(msgs[0].stream_id, 1, "play goes on the created stream");
    let buffer = msgs
        .iter()
        .find(|m| m.type_id == type_id::USER_CONTROL)
        .expect("Set Buffer Length sent");
    assert_eq!(
        &buffer.payload[..],
        &[0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8],
        "event 3, stream 1, 3000 ms"
    );

    // Media before Play.Start is not the stream's.
    let early = s.message(csid::VIDEO, 0, type_id::VIDEO, 1, &[0x17, 0, 0, 0, 0]);
    p.feed(&early).expect("ignored");
    let mut bytes = BytesMut::new();
    bytes.extend_from_slice(&s.message(
        csid::PROTOCOL_CONTROL,
        0,
        type_id::USER_CONTROL,
        0,
        &control::user_control(user_control::STREAM_BEGIN, 1),
    ));
    bytes.extend_from_slice(&s.command(1, status("NetStream.Play.Reset", "status")));
    bytes.extend_from_slice(&s.command(1, status("NetStream.Play.Start", "status")));
    let mut sample = BytesMut::new();
    crate::amf0::encode(&Amf0Value::string("|RtmpSampleAccess"), &mut sample);
    crate::amf0::encode(&Amf0Value::Boolean(true), &mut sample);
    bytes.extend_from_slice(&s.message(csid::DATA, 0, type_id::DATA_AMF0, 1, &sample));
    let mut meta = BytesMut::new();
    crate::amf0::encode(&Amf0Value::string("onMetaData"), &mut meta);
    crate::amf0::encode(
        &Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
        &mut meta,
    );
    bytes.extend_from_slice(&s.message(csid::DATA, 0, type_id::DATA_AMF0, 1, &meta));
    bytes.extend_from_slice(&s.message(csid::VIDEO, 40, type_id::VIDEO, 1, &[0x17, 1, 0, 0, 0, 9]));
    bytes.extend_from_slice(&s.message(csid::AUDIO, 41, type_id::AUDIO, 1, &[0xaf, 1, 5]));
    p.feed(&bytes).expect("stream accepted");
    assert!(p.is_playing());
    assert_eq!(
        events(&mut p),
        vec![
            PlayerEvent::Playing,
            PlayerEvent::Metadata {
                body: Bytes::from(meta.to_vec())
            },
            PlayerEvent::Video {
                timestamp: 40,
                payload: Bytes::from_static(&[0x17, 1, 0, 0, 0, 9])
            },
            PlayerEvent::Audio {
                timestamp: 41,
                payload: Bytes::from_static(&[0xaf, 1, 5])
            },
        ]
    );
}

#[test]
fn a_refused_play_reaches_the_owner_with_its_reason() {
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    up_to_play(&mut p, &mut s);
    let refused = s.command(1, status("NetStream.Play.StreamNotFound", "error"));
    p.feed(&refused).expect("decoded");
    match events(&mut p).as_slice() {
        [PlayerEvent::Rejected(st)] => assert_eq!(st.code, "NetStream.Play.StreamNotFound"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!p.is_playing());
}

#[test]
fn a_refused_connect_is_a_rejection() {
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    let (s012, _) = s.receive(&p.take_output().expect("C0 C1"));
    p.feed(&s012).expect("handshake");
    s.receive(&p.take_output().expect("connect"));
    let err = s.command(
        0,
        Command::new(
            "_error",
            1.0,
            Amf0Value::Null,
            vec![Status {
                level: "error".into(),
                code: "NetConnection.Connect.Rejected".into(),
                description: "no such application".into(),
            }
            .to_amf0()],
        ),
    );
    p.feed(&err).expect("decoded");
    assert!(matches!(
        events(&mut p).as_slice(),
        [PlayerEvent::Rejected(st)] if st.code == "NetConnection.Connect.Rejected"
    ));
}

#[test]
fn reports_the_source_stopping_and_answers_pings_and_acknowledges() {
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    up_to_play(&mut p, &mut s);
    let mut bytes = BytesMut::new();
    bytes.extend_from_slice(&s.message(
        csid::PROTOCOL_CONTROL,
        0,
        type_id::WINDOW_ACK_SIZE,
        0,
        &control::u32_body(1000),
    ));
    bytes.extend_from_slice(&s.command(1, status("NetStream.Play.Start", "status")));
    bytes.extend_from_slice(&s.message(csid::VIDEO, 0, type_id::VIDEO, 1, &[0x27; 1500]));
    bytes.extend_from_slice(&s.message(
        csid::PROTOCOL_CONTROL,
        0,
        type_id::USER_CONTROL,
        0,
        &control::user_control(user_control::PING_REQUEST, 77),
    ));
    bytes.extend_from_slice(&s.command(1, status("NetStream.Play.UnpublishNotify", "status")));
    p.feed(&bytes).expect("accepted");
    let ev = events(&mut p);
    assert_eq!(ev.first(), Some(&PlayerEvent::Playing));
    assert_eq!(ev.last(), Some(&PlayerEvent::SourceStopped));
    let (_, sent) = s.receive(&p.take_output().expect("answers"));
    assert!(sent.iter().any(|m| m.type_id == type_id::ACKNOWLEDGEMENT));
    assert!(sent.iter().any(|m| m.type_id == type_id::USER_CONTROL
        && m.payload[..] == control::user_control(user_control::PING_RESPONSE, 77)));
}

#[test]
fn garbage_from_the_server_is_an_error_not_a_panic() {
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    up_to_play(&mut p, &mut s);
    // A command whose body is not AMF0.
    let bad = s.message(
        csid::COMMAND,
        0,
        type_id::COMMAND_AMF0,
        0,
        &[0xff, 0xff, 0xff],
    );
    assert!(p.feed(&bad).is_err());
    // A message larger than the media limit, refused from its header.
    let mut p = PlayerSession::new(target(), [3u8; PACKET_SIZE]);
    let mut s = FakeServer::new();
    up_to_play(&mut p, &mut s);
    let header = [0x06, 0, 0, 0, 0xff, 0xff, 0xff, type_id::VIDEO, 1, 0, 0, 0];
    let _ = s;
    assert!(p.feed(&header).is_err());
}
