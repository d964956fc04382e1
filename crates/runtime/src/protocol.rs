//! The shim's control protocol on `<state_dir>/shim.sock`.
//!
//! Each connection carries ONE request: a JSON line ending in `\n`. The
//! reply is one JSON line; for `attach` it is followed by output frames
//! (Docker's multiplexed format) and the client's further bytes are the
//! container's stdin. Plain serde types, so the engine's async client can
//! speak it without depending on the shim's internals.

use serde::{Deserialize, Serialize};

pub use crate::exit::ExitStatus;

/// Socket file name inside the state dir.
pub const SOCKET_NAME: &str = "shim.sock";
/// Frame stream ids (Docker's attach multiplexing).
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
pub const FRAME_HEADER_LEN: usize = 8;
/// Longest request line the shim accepts.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    Start,
    Kill {
        signal: i32,
    },
    Resize {
        height: u16,
        width: u16,
    },
    State,
    Wait,
    /// One-shot: the full health state (`health::HealthState`).
    Health,
    /// Kept open: the health state now, then a line per status change.
    HealthWatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkReply {
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReply {
    pub pid: i32,
    pub status: Status,
}

/// Any reply line, for clients that read one without knowing its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Error(ErrorReply),
    Ok(OkReply),
    State(StateReply),
    Exit(ExitStatus),
}

/// The launch handshake line `berth shim` prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LaunchReply {
    Started { pid: i32 },
    Failed { error: String },
}

/// Encodes one output frame: `[stream,0,0,0,len BE u32] payload`.
pub fn encode_frame(stream: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Parses a frame header into (stream, payload length).
pub fn decode_frame_header(h: &[u8; FRAME_HEADER_LEN]) -> (u8, u32) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
}

/// Serializes a request as its wire line (with the trailing `\n`).
pub fn request_line(r: &Request) -> String {
    // Serializing these plain enums cannot fail.
    let mut s = serde_json::to_string(r).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        assert_eq!(request_line(&Request::Start), "{\"op\":\"start\"}\n");
        let r: Request = serde_json::from_str(r#"{"op":"attach","stdout":true}"#).unwrap();
        assert_eq!(
            r,
            Request::Attach {
                stdin: false,
                stdout: true,
                stderr: false
            }
        );
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(r, Request::Kill { signal: 9 });
        let s = serde_json::to_string(&StateReply {
            pid: 4,
            status: Status::Running,
        })
        .unwrap();
        assert_eq!(s, r#"{"pid":4,"status":"running"}"#);
        let rep: Reply = serde_json::from_str(r#"{"ok":true}"#).unwrap();
        assert_eq!(rep, Reply::Ok(OkReply { ok: true }));
        let rep: Reply =
            serde_json::from_str(r#"{"exit_code":3,"oom_killed":false,"finished_at":"x"}"#)
                .unwrap();
        assert!(matches!(rep, Reply::Exit(_)));
        let l: LaunchReply = serde_json::from_str(r#"{"pid":42}"#).unwrap();
        assert_eq!(l, LaunchReply::Started { pid: 42 });
    }

    #[test]
    fn frames() {
        let mut v = Vec::new();
        encode_frame(STREAM_STDERR, b"hi", &mut v);
        assert_eq!(v, [2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let h: [u8; 8] = v[..8].try_into().unwrap();
        assert_eq!(decode_frame_header(&h), (2, 2));
    }
}
