//! The sink's side of one publishing connection, sans-IO: it answers the
//! handshake, `connect`, `releaseStream`/`FCPublish`, `createStream` and
//! `publish` the way a platform does, acknowledges what it receives, and
//! reports media messages (as scanned by [`Scanner`]) to its owner.

use antenne_rtmp::amf0::Amf0Value;
use antenne_rtmp::chunk::ChunkEncoder;
use antenne_rtmp::handshake::{HandshakeProgress, ServerHandshake, PACKET_SIZE};
use antenne_rtmp::message::{control, csid, type_id, user_control, Command, Status};
use bytes::BytesMut;

use crate::scan::{Msg, ScanError, Scanner};

/// Chunk size the sink writes with.
const OUT_CHUNK_SIZE: u32 = 4096;
/// Window acknowledgement size announced to the peer.
const WINDOW: u32 = 2_500_000;
/// The stream id handed out by `createStream`.
const STREAM_ID: u32 = 1;

/// What the owner of a [`Session`] hears about.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// `publish` was accepted; `name` is the stream name without `?query`.
    Published { name: &'a str },
    /// The peer ended the publication (FCUnpublish, deleteStream, closeStream).
    Unpublished,
    /// An audio (8), video (9), data (18) or aggregate (22) message after
    /// `publish`.
    Media {
        type_id: u8,
        len: u32,
        head: &'a [u8],
        tail: u64,
    },
}

/// One connection, from the sink's side.
#[derive(Debug)]
pub struct Session {
    handshake: Option<(Box<ServerHandshake>, BytesMut)>,
    scanner: Scanner,
    enc: ChunkEncoder,
    out: BytesMut,
    peer_window: u32,
    acked: u64,
    connected: bool,
    publishing: bool,
}

impl Session {
    pub fn new(random: [u8; PACKET_SIZE]) -> Self {
        Self {
            handshake: Some((Box::new(ServerHandshake::new(random)), BytesMut::new())),
            scanner: Scanner::new(),
            enc: ChunkEncoder::new(),
            out: BytesMut::new(),
            peer_window: 0,
            acked: 0,
            connected: false,
            publishing: false,
        }
    }

    #[cfg(test)]
    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// Bytes to send to the peer (empty when there are none); the caller
    /// sends and clears them.
    pub fn output(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Feeds received bytes. `on_event` hears about publication and media.
    /// An error means the connection must be closed.
    pub fn feed<F>(&mut self, data: &[u8], mut on_event: F) -> Result<(), ScanError>
    where
        F: FnMut(Event<'_>),
    {
        let mut rest_owned = None;
        let data = if let Some((hs, buf)) = &mut self.handshake {
            buf.extend_from_slice(data);
            let (progress, used) = hs
                .feed(buf, &mut self.out)
                .map_err(|e| ScanError(format!("handshake: {e}")))?;
            match progress {
                HandshakeProgress::NeedMore => {
                    let _ = buf.split_to(used);
                    return Ok(());
                }
                HandshakeProgress::Done { .. } => {
                    rest_owned = Some(buf.split_off(used));
                    self.handshake = None;
                }
            }
            rest_owned.as_deref().unwrap_or(&[])
        } else {
            data
        };
        let Self {
            scanner,
            enc,
            out,
            peer_window,
            connected,
            publishing,
            ..
        } = self;
        let mut ctl = Ctl {
            enc,
            out,
            peer_window,
            connected,
            publishing,
        };
        scanner.feed(data, |m| ctl.on_message(m, &mut on_event))?;
        drop(rest_owned);
        // Acknowledge once a window's worth has arrived since the last one.
        let received = self.scanner.bytes_in();
        if self.peer_window > 0 && received - self.acked >= self.peer_window as u64 {
            self.acked = received;
            self.control(
                type_id::ACKNOWLEDGEMENT,
                &control::u32_body(received as u32),
            );
        }
        Ok(())
    }

    fn control(&mut self, type_id: u8, body: &[u8]) {
        self.enc
            .encode_into(csid::PROTOCOL_CONTROL, 0, type_id, 0, body, &mut self.out);
    }
}

/// The parts of a [`Session`] message handling needs (the scanner is
/// borrowed by the scan itself).
struct Ctl<'s> {
    enc: &'s mut ChunkEncoder,
    out: &'s mut BytesMut,
    peer_window: &'s mut u32,
    connected: &'s mut bool,
    publishing: &'s mut bool,
}

impl Ctl<'_> {
    fn control(&mut self, type_id: u8, body: &[u8]) {
        self.enc
            .encode_into(csid::PROTOCOL_CONTROL, 0, type_id, 0, body, self.out);
    }

    fn command(&mut self, stream_id: u32, cmd: Command) {
        let body = cmd.encode();
        self.enc.encode_into(
            csid::COMMAND,
            0,
            type_id::COMMAND_AMF0,
            stream_id,
            &body,
            self.out,
        );
    }

    fn result(&mut self, txn: f64, object: Amf0Value, arg: Amf0Value) {
        self.command(0, Command::new("_result", txn, object, vec![arg]));
    }

    fn on_message<F>(&mut self, m: &Msg<'_>, on_event: &mut F) -> Result<(), ScanError>
    where
        F: FnMut(Event<'_>),
    {
        let body = m.body.unwrap_or(&[]);
        match m.type_id {
            type_id::WINDOW_ACK_SIZE => {
                if let Some(b) = body.get(..4) {
                    *self.peer_window = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            type_id::USER_CONTROL
                if body.get(..2) == Some(&user_control::PING_REQUEST.to_be_bytes()[..]) =>
            {
                let v = body
                    .get(2..6)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                self.control(
                    type_id::USER_CONTROL,
                    &control::user_control(user_control::PING_RESPONSE, v),
                );
            }
            type_id::COMMAND_AMF0 => {
                let cmd = Command::decode(body)
                    .map_err(|e| ScanError(format!("undecodable command: {e}")))?;
                self.on_command(cmd, on_event)?;
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::AGGREGATE
                if *self.publishing =>
            {
                on_event(Event::Media {
                    type_id: m.type_id,
                    len: m.len,
                    head: m.head,
                    tail: m.tail,
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn on_command<F>(&mut self, cmd: Command, on_event: &mut F) -> Result<(), ScanError>
    where
        F: FnMut(Event<'_>),
    {
        match cmd.name.as_str() {
            "connect" => {
                if *self.connected {
                    return Err(ScanError("second connect".into()));
                }
                *self.connected = true;
                self.control(type_id::WINDOW_ACK_SIZE, &control::u32_body(WINDOW));
                self.control(
                    type_id::SET_PEER_BANDWIDTH,
                    &control::set_peer_bandwidth(WINDOW, 2),
                );
                self.control(type_id::SET_CHUNK_SIZE, &control::u32_body(OUT_CHUNK_SIZE));
                self.enc.set_chunk_size(OUT_CHUNK_SIZE);
                self.result(
                    cmd.transaction_id,
                    Amf0Value::object([
                        ("fmsVer", Amf0Value::string("FMS/3,0,1,123")),
                        ("capabilities", Amf0Value::Number(31.0)),
                    ]),
                    Amf0Value::object([
                        ("level", Amf0Value::string("status")),
                        ("code", Amf0Value::string("NetConnection.Connect.Success")),
                        ("description", Amf0Value::string("Connection succeeded.")),
                        ("objectEncoding", Amf0Value::Number(0.0)),
                    ]),
                );
            }
            _ if !*self.connected => {
                return Err(ScanError(format!(
                    "command {:?} before connect",
                    cmd.name.chars().take(40).collect::<String>()
                )));
            }
            "releaseStream" | "FCPublish" => {
                self.result(cmd.transaction_id, Amf0Value::Null, Amf0Value::Undefined);
            }
            "createStream" => {
                self.result(
                    cmd.transaction_id,
                    Amf0Value::Null,
                    Amf0Value::Number(STREAM_ID as f64),
                );
            }
            "publish" => {
                if *self.publishing {
                    return Err(ScanError("second publish".into()));
                }
                let name = cmd.first_string_arg().unwrap_or("");
                let name = name.split('?').next().unwrap_or("").to_owned();
                if name.is_empty() {
                    return Err(ScanError("publish without a stream name".into()));
                }
                *self.publishing = true;
                self.control(
                    type_id::USER_CONTROL,
                    &control::user_control(user_control::STREAM_BEGIN, STREAM_ID),
                );
                let status = Status {
                    level: "status".into(),
                    code: "NetStream.Publish.Start".into(),
                    description: "Publishing.".into(),
                };
                self.command(
                    STREAM_ID,
                    Command::new("onStatus", 0.0, Amf0Value::Null, vec![status.to_amf0()]),
                );
                on_event(Event::Published { name: &name });
            }
            "FCUnpublish" | "deleteStream" | "closeStream" if *self.publishing => {
                *self.publishing = false;
                on_event(Event::Unpublished);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use antenne_rtmp::client::{ClientEvent, ClientSession, PublishTarget};
    use bytes::Bytes;

    #[derive(Debug, PartialEq)]
    enum Got {
        Published(String),
        Unpublished,
        Media(u8, u32, Vec<u8>, u64),
    }

    fn pump(c: &mut ClientSession, s: &mut Session, got: &mut Vec<Got>) {
        for _ in 0..20 {
            let mut moved = false;
            if let Some(b) = c.take_output() {
                s.feed(&b, |e| got.push(owned(e))).expect("sink accepts");
                moved = true;
            }
            let out = s.output();
            if !out.is_empty() {
                let b = out.split();
                c.feed(&b).expect("client accepts sink output");
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn owned(e: Event<'_>) -> Got {
        match e {
            Event::Published { name } => Got::Published(name.into()),
            Event::Unpublished => Got::Unpublished,
            Event::Media {
                type_id,
                len,
                head,
                tail,
            } => Got::Media(type_id, len, head.to_vec(), tail),
        }
    }

    #[test]
    fn antennes_client_publishes_to_the_sink() {
        let mut c = ClientSession::new(
            PublishTarget {
                app: "live".into(),
                tc_url: "rtmp://127.0.0.1:1935/live".into(),
                stream_name: "k1?x=y".into(),
            },
            [3; PACKET_SIZE],
        );
        let mut s = Session::new([5; PACKET_SIZE]);
        let mut got = Vec::new();
        pump(&mut c, &mut s, &mut got);
        assert_eq!(c.poll_event(), Some(ClientEvent::Published));
        assert!(s.is_publishing());
        assert_eq!(got, vec![Got::Published("k1".into())]);
        got.clear();

        let frame: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        let mut parts = Vec::new();
        c.media_parts(true, 0, &Bytes::from(frame.clone()), &mut parts);
        c.media_parts(false, 0, &Bytes::from_static(&[0xaf, 1, 9]), &mut parts);
        for p in parts {
            s.feed(&p, |e| got.push(owned(e))).expect("media");
        }
        assert_eq!(
            got,
            vec![
                Got::Media(9, 30_000, frame[..2].to_vec(), crate::scan::tail_of(&frame)),
                Got::Media(8, 3, vec![0xaf, 1], 0xaf0109),
            ]
        );
        got.clear();
        c.unpublish();
        pump(&mut c, &mut s, &mut got);
        assert_eq!(got, vec![Got::Unpublished]);
    }

    #[test]
    fn pings_are_answered_and_windows_acknowledged() {
        let mut s = Session::new([5; PACKET_SIZE]);
        let mut hs = vec![3u8];
        hs.extend_from_slice(&[0; 2 * PACKET_SIZE]);
        s.feed(&hs, |_| {}).expect("handshake");
        s.output().clear();
        let mut enc = ChunkEncoder::new();
        let mut b = BytesMut::new();
        enc.encode_into(2, 0, 5, 0, &control::u32_body(1000), &mut b);
        enc.encode_into(
            2,
            0,
            4,
            0,
            &control::user_control(user_control::PING_REQUEST, 77),
            &mut b,
        );
        s.feed(&b, |_| {}).expect("control");
        let mut sc = Scanner::new();
        let mut seen = Vec::new();
        sc.feed(s.output(), |m| {
            seen.push((m.type_id, m.body.map(<[u8]>::to_vec)));
            Ok(())
        })
        .expect("our own output scans");
        assert_eq!(
            seen,
            vec![(
                4,
                Some(control::user_control(user_control::PING_RESPONSE, 77).to_vec())
            )]
        );
        s.output().clear();
        // 1000 bytes later: an acknowledgement.
        let mut b = BytesMut::new();
        enc.encode_into(2, 0, 18, 0, &[0u8; 1000], &mut b);
        s.feed(&b, |_| {}).expect("data");
        assert!(!s.output().is_empty());
    }

    #[test]
    fn garbage_after_the_handshake_closes_the_connection() {
        let mut s = Session::new([5; PACKET_SIZE]);
        let mut hs = vec![3u8];
        hs.extend_from_slice(&[0; 2 * PACKET_SIZE]);
        s.feed(&hs, |_| {}).expect("handshake");
        // A command before connect.
        let mut enc = ChunkEncoder::new();
        let mut b = BytesMut::new();
        let cmd = Command::new("publish", 1.0, Amf0Value::Null, vec![]);
        enc.encode_into(3, 0, 20, 0, &cmd.encode(), &mut b);
        assert!(s.feed(&b, |_| {}).is_err());
        // Undecodable command.
        let mut s = Session::new([5; PACKET_SIZE]);
        s.feed(&hs, |_| {}).expect("handshake");
        let mut b = BytesMut::new();
        enc.encode_into(3, 0, 20, 0, &[0x02, 0xff], &mut b);
        assert!(s.feed(&b, |_| {}).is_err());
    }
}
