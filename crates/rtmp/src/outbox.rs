//! What both session sides share: the chunk encoder and the bytes waiting
//! to be sent, acknowledgements of what the peer sent, answers to pings.

use bytes::{Bytes, BytesMut};

use crate::chunk::ChunkEncoder;
use crate::message::{control, csid, type_id, user_control, Command};

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) encoder: ChunkEncoder,
    pub(crate) out: BytesMut,
    /// Window acknowledgement size the peer asked for.
    peer_window: Option<u32>,
    /// Bytes received when we last acknowledged.
    acked: u64,
}

impl Outbox {
    pub(crate) fn control(&mut self, type_id: u8, body: &[u8]) {
        self.encoder
            .encode_into(csid::PROTOCOL_CONTROL, 0, type_id, 0, body, &mut self.out);
    }

    pub(crate) fn command(&mut self, stream_id: u32, cmd: Command) {
        let body = cmd.encode();
        self.encoder.encode_into(
            csid::COMMAND,
            0,
            type_id::COMMAND_AMF0,
            stream_id,
            &body,
            &mut self.out,
        );
    }

    pub(crate) fn take(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    pub(crate) fn set_peer_window(&mut self, size: u32) {
        self.peer_window = Some(size);
    }

    /// Acknowledges once a window's worth has arrived since the last one.
    pub(crate) fn acknowledge(&mut self, received: u64) {
        if let Some(window) = self.peer_window.filter(|w| *w > 0) {
            if received - self.acked >= window as u64 {
                self.acked = received;
                // The sequence number wraps at 32 bits by definition.
                self.control(
                    type_id::ACKNOWLEDGEMENT,
                    &control::u32_body(received as u32),
                );
            }
        }
    }

    /// Answers a ping request with the timestamp it carried.
    pub(crate) fn answer_ping(&mut self, data: &[u8]) {
        let value = data
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0);
        self.control(
            type_id::USER_CONTROL,
            &control::user_control(user_control::PING_RESPONSE, value),
        );
    }
}
