//! Stream encodings shared by attach, logs and the JSON progress replies.

use bytes::{BufMut, Bytes, BytesMut};

pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
pub const RAW: &str = "application/vnd.docker.raw-stream";

/// Docker's 8-byte frame header: stream, three zero bytes, big-endian payload length.
pub fn frame(stream: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u8(stream);
    b.put_bytes(0, 3);
    b.put_u32(payload.len() as u32);
    b.put_slice(payload);
    b.freeze()
}

/// One object of the JSON message stream (pull/load/import progress), `\r\n` terminated.
pub fn json_line(v: &serde_json::Value) -> Bytes {
    let mut s = v.to_string();
    s.push_str("\r\n");
    Bytes::from(s)
}
