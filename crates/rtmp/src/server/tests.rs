//! Unit tests of [`super`] (server.rs).

use super::*;
use crate::client::{ClientEvent, ClientSession, PublishTarget};

fn client() -> ClientSession {
    ClientSession::new(
        PublishTarget {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            stream_name: "secret".into(),
        },
        [7; PACKET_SIZE],
    )
}

/// Moves bytes both ways until neither side has anything to say.
fn pump(c: &mut ClientSession, s: &mut ServerSession) {
    for _ in 0..20 {
        let mut moved = false;
        if let Some(b) = c.take_output() {
            s.feed(&b).expect("server accepts client bytes");
            moved = true;
        }
        if let Some(b) = s.take_output() {
            c.feed(&b).expect("client accepts server bytes");
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

#[test]
fn our_client_publishes_to_our_server() {
    let mut c = client();
    let mut s = ServerSession::new(ServerConfig::default(), [9; PACKET_SIZE]);
    pump(&mut c, &mut s);
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::ConnectRequested {
            app: "live".into(),
            tc_url: Some("rtmp://127.0.0.1/live".into())
        })
    );
    s.accept_connect();
    s.resume().expect("resumes");
    pump(&mut c, &mut s);
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::PublishRequested {
            stream_key: "secret".into()
        })
    );
    s.accept_publish();
    s.resume().expect("resumes");
    pump(&mut c, &mut s);
    assert_eq!(c.poll_event(), Some(ClientEvent::Published));

    let mut parts = Vec::new();
    c.metadata_parts(
        0,
        &crate::amf0::encode_all(&[Amf0Value::string("onMetaData")]),
        &mut parts,
    );
    let frame = Bytes::from(vec![0x17u8; 10_000]);
    c.media_parts(true, 40, &frame, &mut parts);
    for p in parts {
        s.feed(&p).expect("server accepts media");
    }
    assert!(matches!(s.poll_event(), Some(ServerEvent::Metadata { .. })));
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::Video {
            timestamp: 40,
            payload: frame
        })
    );
    c.unpublish();
    pump(&mut c, &mut s);
    assert_eq!(s.poll_event(), Some(ServerEvent::PublishEnded));
}

#[test]
fn a_rejected_publish_reaches_the_client_with_its_reason() {
    let mut c = client();
    let mut s = ServerSession::new(ServerConfig::default(), [9; PACKET_SIZE]);
    pump(&mut c, &mut s);
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::ConnectRequested { .. })
    ));
    s.accept_connect();
    s.resume().expect("resumes");
    pump(&mut c, &mut s);
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::PublishRequested { .. })
    ));
    s.reject_publish("NetStream.Publish.BadName", "unknown stream key");
    pump(&mut c, &mut s);
    match c.poll_event() {
        Some(ClientEvent::Rejected(st)) => {
            assert_eq!(st.code, "NetStream.Publish.BadName");
            assert_eq!(st.description, "unknown stream key");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The handshake and a `connect` to `live`, answered.
fn connected() -> (ServerSession, crate::chunk::ChunkEncoder) {
    let mut c = client();
    let mut s = ServerSession::new(ServerConfig::default(), [9; PACKET_SIZE]);
    pump(&mut c, &mut s);
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::ConnectRequested { .. })
    ));
    s.accept_connect();
    s.resume().expect("resumes");
    let mut enc = crate::chunk::ChunkEncoder::new();
    let mut set = BytesMut::new();
    enc.encode_into(
        2,
        0,
        type_id::SET_CHUNK_SIZE,
        0,
        &65536u32.to_be_bytes(),
        &mut set,
    );
    enc.set_chunk_size(65536);
    s.feed(&set).expect("set chunk size");
    (s, enc)
}

#[test]
fn before_publish_a_large_message_is_refused_from_its_header() {
    let (mut s, _) = connected();
    // Header of a 1 MiB video message, then one byte of it.
    let header = [0x06, 0, 0, 0, 0x10, 0, 0, type_id::VIDEO, 1, 0, 0, 0, 0];
    assert!(matches!(
        s.feed(&header),
        Err(SessionError::Chunk(ChunkError::MessageTooLarge { .. }))
    ));
}

#[test]
fn a_command_of_amf0_nulls_is_refused_before_its_body_is_decoded() {
    let (mut s, mut enc) = connected();
    let mut body = Command::new("createStream", 2.0, Amf0Value::Null, vec![]).encode();
    body.extend_from_slice(&vec![0x05u8; 64 * 1024]);
    let mut bytes = BytesMut::new();
    enc.encode_into(3, 0, type_id::COMMAND_AMF0, 0, &body, &mut bytes);
    // Over the command limit (64 KiB): refused from the header, and
    // the decoder never holds the body.
    assert!(matches!(
        s.feed(&bytes),
        Err(SessionError::Chunk(ChunkError::MessageTooLarge { .. }))
            | Err(SessionError::Protocol(_))
    ));
    // Under it but many values: refused by the value bound.
    let (mut s, mut enc) = connected();
    let mut body = Command::new("createStream", 2.0, Amf0Value::Null, vec![]).encode();
    body.extend_from_slice(&vec![0x05u8; 60 * 1024]);
    let mut bytes = BytesMut::new();
    enc.encode_into(3, 0, type_id::COMMAND_AMF0, 0, &body, &mut bytes);
    assert!(matches!(
        s.feed(&bytes),
        Err(SessionError::Message(MessageError::Amf0 { .. }))
    ));
}

#[test]
fn a_client_that_never_publishes_may_send_only_so_many_commands() {
    let (mut s, mut enc) = connected();
    let mut bytes = BytesMut::new();
    for i in 0..64 {
        let cmd = Command::new("createStream", 2.0 + i as f64, Amf0Value::Null, vec![]);
        enc.encode_into(3, 0, type_id::COMMAND_AMF0, 0, &cmd.encode(), &mut bytes);
    }
    assert!(matches!(
        s.feed(&bytes),
        Err(SessionError::Protocol(e)) if e.contains("commands before publishing")
    ));
}

#[test]
fn accepting_a_publish_raises_the_limits_to_media() {
    let mut c = client();
    let mut s = ServerSession::new(ServerConfig::default(), [9; PACKET_SIZE]);
    pump(&mut c, &mut s);
    s.poll_event();
    s.accept_connect();
    s.resume().expect("resumes");
    pump(&mut c, &mut s);
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::PublishRequested { .. })
    ));
    s.accept_publish();
    s.resume().expect("resumes");
    pump(&mut c, &mut s);
    let frame = Bytes::from(vec![0x17u8; 2 * 1024 * 1024]);
    let mut parts = Vec::new();
    c.media_parts(true, 0, &frame, &mut parts);
    for p in parts {
        s.feed(&p).expect("a 2 MiB keyframe is fine once published");
    }
    assert!(matches!(s.poll_event(), Some(ServerEvent::Video { .. })));
}

#[test]
fn media_before_publish_is_not_delivered_and_commands_before_connect_fail() {
    let mut s = ServerSession::new(ServerConfig::default(), [9; PACKET_SIZE]);
    let mut c = client();
    // Handshake only.
    let c0c1 = c.take_output().expect("C0C1");
    s.feed(&c0c1).expect("handshake");
    let mut enc = crate::chunk::ChunkEncoder::new();
    let mut bytes = BytesMut::from(&[0u8; PACKET_SIZE][..]);
    enc.encode_into(6, 0, type_id::VIDEO, 1, &[0x17, 1, 0], &mut bytes);
    let cmd = Command::new(
        "publish",
        2.0,
        Amf0Value::Null,
        vec![Amf0Value::string("k")],
    );
    enc.encode_into(3, 0, type_id::COMMAND_AMF0, 1, &cmd.encode(), &mut bytes);
    assert!(matches!(s.feed(&bytes), Err(SessionError::Protocol(_))));
    assert_eq!(s.poll_event(), None);
}
