//! Message parsing (message.rs): control messages, AMF0/AMF3 commands,
//! data messages, from an arbitrary type id and payload.
//!
//! Input: `[type id][payload…]`.
//!
//! Checks: no panic; a decoded command re-encodes to a command that
//! decodes the same and holds at most `MAX_COMMAND_VALUES` values; the
//! status and data-frame helpers never panic.
#![no_main]

use antenne_rtmp::amf0::Amf0Value;
use antenne_rtmp::chunk::RawMessage;
use antenne_rtmp::message::{strip_set_data_frame, Command, Message, Status, MAX_COMMAND_VALUES};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [type_id, payload @ ..] = data else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    let raw = RawMessage {
        csid: 3,
        timestamp: 0,
        type_id: *type_id,
        stream_id: 1,
        payload: payload.clone(),
    };
    if let Ok(Message::Command(cmd)) = Message::decode(&raw) {
        let values = 3 + cmd
            .args
            .iter()
            .chain([&cmd.object])
            .map(count)
            .sum::<usize>();
        assert!(values <= MAX_COMMAND_VALUES + 3, "{values} values decoded");
        let _ = cmd.first_string_arg();
        if let Some(status) = Status::from_command(&cmd) {
            let _ = status.is_error();
            let _ = status.to_amf0();
        }
        let encoded = cmd.encode();
        let again = match Command::decode(&encoded) {
            Ok(c) => c,
            Err(e) => panic!("our encoding of {cmd:?} does not decode: {e}"),
        };
        assert_eq!(again.encode(), encoded, "command round trip changed it");
    }
    // The same bytes as a data message body (`@setDataFrame`, `onMetaData`).
    if let Ok((_, body)) = strip_set_data_frame(&payload) {
        assert!(body.len() <= payload.len());
    }
});

/// Values in `v`, nested ones included.
fn count(v: &Amf0Value) -> usize {
    1 + match v {
        Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => p.iter().map(|(_, v)| count(v)).sum(),
        Amf0Value::StrictArray(items) => items.iter().map(count).sum(),
        _ => 0,
    }
}
