//! Docker's JSON progress stream (pull, push, import) rendered as the docker CLI's
//! `jsonmessage` package renders it: on a terminal one line per layer id, redrawn in place with
//! cursor movements; otherwise plain lines with the byte-count updates left out.

use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::io::Write;

/// One message of the stream (moby's `jsonmessage.JSONMessage`). Go decodes `null` as the zero
/// value, so every field tolerates it.
#[derive(Debug, Default, Deserialize)]
pub struct JsonMessage {
    #[serde(default, deserialize_with = "null_default")]
    pub stream: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(rename = "progressDetail", default)]
    pub progress: Option<JsonProgress>,
    /// The daemon's own text bar (deprecated; shown only when there is no `progressDetail`).
    #[serde(rename = "progress", default, deserialize_with = "null_default")]
    pub progress_message: String,
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub from: String,
    #[serde(default, deserialize_with = "null_default")]
    pub time: i64,
    #[serde(rename = "timeNano", default, deserialize_with = "null_default")]
    pub time_nano: i64,
    #[serde(rename = "errorDetail", default)]
    pub error: Option<JsonError>,
    /// The deprecated plain `error` string, which moby still sends next to `errorDetail`.
    #[serde(rename = "error", default, deserialize_with = "null_default")]
    pub error_message: String,
    #[serde(default)]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct JsonProgress {
    #[serde(default, deserialize_with = "null_default")]
    pub current: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub total: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub start: i64,
    #[serde(rename = "hidecounts", default, deserialize_with = "null_default")]
    pub hide_counts: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub units: String,
}

/// An error the daemon reported inside the stream, after its 200 status.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct JsonError {
    #[serde(default, deserialize_with = "null_default")]
    pub code: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonError {}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl JsonMessage {
    /// The in-band error, if this message carries one (either form).
    pub fn stream_error(&self) -> Option<JsonError> {
        match &self.error {
            Some(e) => Some(e.clone()),
            None if !self.error_message.is_empty() => Some(JsonError {
                code: 0,
                message: self.error_message.clone(),
            }),
            None => None,
        }
    }
}

/// `JSONProgress.String()`: `[=====>    ]  12.3MB/45.6MB 3s`. The bar needs a terminal wider
/// than 110 columns, the time left one wider than 50.
pub fn progress_text(p: &JsonProgress, width: usize, now_unix: i64) -> String {
    if p.current <= 0 && p.total <= 0 {
        return String::new();
    }
    let human = |n: i64| crate::output::human_size_prec(n as f64, 4);
    if p.total <= 0 {
        return if p.units.is_empty() {
            format!("{:>8}", human(p.current))
        } else {
            format!("{} {}", p.current, p.units)
        };
    }
    let percentage = ((p.current as f64 / p.total as f64 * 100.0) as i64 / 2).min(50);
    let mut text = String::new();
    if width > 110 {
        let filled = percentage.max(0) as usize;
        let spaces = (50 - percentage).max(0) as usize;
        text.push_str(&format!("[{}>{}] ", "=".repeat(filled), " ".repeat(spaces)));
    }
    if !p.hide_counts {
        let wonky = p.current > p.total;
        if p.units.is_empty() {
            if wonky {
                text.push_str(&format!("{:>8}", human(p.current)));
            } else {
                text.push_str(&format!("{:>8}/{}", human(p.current), human(p.total)));
            }
        } else if wonky {
            text.push_str(&format!("{} {}", p.current, p.units));
        } else {
            text.push_str(&format!("{}/{} {}", p.current, p.total, p.units));
        }
    }
    if p.current > 0 && p.start > 0 && percentage < 50 && width > 50 {
        let elapsed = (now_unix - p.start).max(0) as f64;
        let left = (p.total - p.current) as f64 * (elapsed / p.current as f64);
        text.push(' ');
        text.push_str(&go_seconds(left as i64));
    }
    text
}

/// Go's `time.Duration.String()` for whole seconds: "0s", "42s", "3m5s", "1h0m0s".
fn go_seconds(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// moby's RFC3339NanoFixed, used when a message carries a time.
fn fixed_time(nanos: i64) -> String {
    chrono::DateTime::from_timestamp(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
            .to_string()
    })
    .unwrap_or_default()
}

const ERASE_LINE: &str = "\x1b[2K";

/// Renders messages to `out` as the docker CLI's `DisplayJSONMessagesStream` does.
pub struct Renderer<W: Write> {
    out: W,
    terminal: bool,
    /// Terminal columns, which decide whether bars and times fit.
    width: usize,
    /// The line each layer id was first drawn on, counted from the first one.
    lines: HashMap<String, usize>,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, terminal: bool, width: usize) -> Self {
        Renderer {
            out,
            terminal,
            width,
            lines: HashMap::new(),
        }
    }

    /// Draws one message; an in-band error comes back as the `Err` (nothing drawn for it).
    /// `aux` messages are the caller's: they draw nothing.
    pub fn render(&mut self, jm: &JsonMessage) -> Result<(), JsonError> {
        if jm.aux.is_some() {
            return Ok(());
        }
        let mut diff = 0;
        if !jm.id.is_empty() && (jm.progress.is_some() || !jm.progress_message.is_empty()) {
            let count = self.lines.len();
            let line = *self.lines.entry(jm.id.clone()).or_insert_with(|| {
                if self.terminal {
                    let _ = self.out.write_all(b"\n");
                }
                count
            });
            diff = self.lines.len() - line;
            if self.terminal {
                self.cursor_up(diff);
            }
        } else {
            // A line that is not a layer's ends the block of updatable lines (as with pull -a,
            // where each tag has its own layers).
            self.lines.clear();
        }
        let shown = self.display(jm);
        if !jm.id.is_empty() && self.terminal {
            self.cursor_down(diff);
        }
        let _ = self.out.flush();
        shown
    }

    fn cursor_up(&mut self, n: usize) {
        if n > 0 {
            let _ = write!(self.out, "\x1b[{n}A");
        }
    }

    fn cursor_down(&mut self, n: usize) {
        if n > 0 {
            let _ = write!(self.out, "\x1b[{n}B");
        }
    }

    /// `JSONMessage.Display`.
    fn display(&mut self, jm: &JsonMessage) -> Result<(), JsonError> {
        if let Some(e) = jm.stream_error() {
            return Err(e);
        }
        let now = chrono::Utc::now().timestamp();
        let progress = jm
            .progress
            .as_ref()
            .map(|p| progress_text(p, self.width, now));
        let mut endl = "";
        if self.terminal && jm.stream.is_empty() && progress.is_some() {
            endl = "\r";
            let _ = write!(self.out, "{ERASE_LINE}{endl}");
        } else if progress.as_deref().is_some_and(|p| !p.is_empty()) {
            // Byte counts are for terminals only.
            return Ok(());
        }
        let mut text = String::new();
        if jm.time_nano != 0 {
            text.push_str(&fixed_time(jm.time_nano));
            text.push(' ');
        } else if jm.time != 0 {
            text.push_str(&fixed_time(jm.time.saturating_mul(1_000_000_000)));
            text.push(' ');
        }
        if !jm.id.is_empty() {
            text.push_str(&format!("{}: ", jm.id));
        }
        if !jm.from.is_empty() {
            text.push_str(&format!("(from {}) ", jm.from));
        }
        match progress {
            Some(p) if self.terminal => text.push_str(&format!("{} {p}{endl}", jm.status)),
            _ if !jm.progress_message.is_empty() => {
                text.push_str(&format!("{} {}{endl}", jm.status, jm.progress_message))
            }
            _ if !jm.stream.is_empty() => text.push_str(&format!("{}{endl}", jm.stream)),
            _ => text.push_str(&format!("{}{endl}\n", jm.status)),
        }
        let _ = self.out.write_all(text.as_bytes());
        Ok(())
    }
}

/// Splits a byte stream into JSON messages as Go's `json.Decoder` reads them back to back.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

/// The stream could not be decoded (Go's decoder error, as the docker CLI prints it).
#[derive(Debug, PartialEq)]
pub struct DecodeError(pub String);

impl Decoder {
    /// Adds bytes and returns every message now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<JsonMessage>, DecodeError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut it = serde_json::Deserializer::from_slice(&self.buf).into_iter::<JsonMessage>();
        let consumed = loop {
            let before = it.byte_offset();
            match it.next() {
                Some(Ok(m)) => out.push(m),
                Some(Err(e)) if e.is_eof() => break before,
                Some(Err(e)) => return Err(DecodeError(e.to_string())),
                None => break it.byte_offset(),
            }
        };
        self.buf.drain(..consumed);
        Ok(out)
    }

    /// At the end of the stream: anything left is a truncated message.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            Err(DecodeError("unexpected EOF".into()))
        }
    }
}

/// A line of the docker CLI's "tui" notes: ` Info -> text` (coloured on a terminal).
pub fn note(terminal: bool, text: &str) -> String {
    if terminal {
        format!("\n\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u{2192} \x1b[0m\x1b[0m\x1b[3m{text}\x1b[0m\n")
    } else {
        format!("\n Info -> {text}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker pull 127.0.0.1:5160/bb` from dockerd 20.10, recorded.
    const PULL: &str = r#"{"status":"Pulling from bb","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"3c74346abf5b"}
{"status":"Downloading","progressDetail":{"current":36445,"total":1068893},"progress":"[=\u003e                                                 ]  36.45kB/1.069MB","id":"3c74346abf5b"}
{"status":"Verifying Checksum","progressDetail":{},"id":"3c74346abf5b"}
{"status":"Download complete","progressDetail":{},"id":"3c74346abf5b"}
{"status":"Extracting","progressDetail":{"current":32768,"total":1068893},"progress":"[=\u003e                                                 ]  32.77kB/1.069MB","id":"3c74346abf5b"}
{"status":"Extracting","progressDetail":{"current":1068893,"total":1068893},"progress":"[==================================================\u003e]  1.069MB/1.069MB","id":"3c74346abf5b"}
{"status":"Pull complete","progressDetail":{},"id":"3c74346abf5b"}
{"status":"Digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2"}
{"status":"Status: Downloaded newer image for 127.0.0.1:5160/bb:latest"}
"#;

    const PUSH: &str = r#"{"status":"The push refers to repository [127.0.0.1:5160/bb]"}
{"status":"Preparing","progressDetail":{},"id":"ace83040d9a5"}
{"status":"Layer already exists","progressDetail":{},"id":"ace83040d9a5"}
{"status":"latest: digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2 size: 527"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2","Size":527}}
"#;

    fn render(stream: &str, terminal: bool, width: usize) -> (String, Option<JsonError>) {
        let mut out = Vec::new();
        let mut err = None;
        {
            let mut r = Renderer::new(&mut out, terminal, width);
            let mut dec = Decoder::default();
            // Feed in odd-sized pieces: messages straddle chunk boundaries.
            for chunk in stream.as_bytes().chunks(7) {
                for m in dec.push(chunk).unwrap() {
                    if let Err(e) = r.render(&m) {
                        err = Some(e);
                        break;
                    }
                }
                if err.is_some() {
                    break;
                }
            }
        }
        (String::from_utf8(out).unwrap(), err)
    }

    #[test]
    fn plain_lines_when_piped() {
        let (out, err) = render(PULL, false, 200);
        assert!(err.is_none());
        assert_eq!(
            out,
            "latest: Pulling from bb\n\
             3c74346abf5b: Pulling fs layer\n\
             3c74346abf5b: Verifying Checksum\n\
             3c74346abf5b: Download complete\n\
             3c74346abf5b: Pull complete\n\
             Digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2\n\
             Status: Downloaded newer image for 127.0.0.1:5160/bb:latest\n"
        );
        let (out, _) = render(PUSH, false, 200);
        assert_eq!(
            out,
            "The push refers to repository [127.0.0.1:5160/bb]\n\
             ace83040d9a5: Preparing\n\
             ace83040d9a5: Layer already exists\n\
             latest: digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2 size: 527\n"
        );
    }

    #[test]
    fn terminal_redraws_like_docker() {
        // Byte for byte what docker 28.2 wrote to a 120-column pty for the same stream
        // (minus the pty's own \r before each \n).
        let (out, _) = render(PUSH, true, 120);
        assert_eq!(
            out,
            "The push refers to repository [127.0.0.1:5160/bb]\n\
             \n\x1b[1A\x1b[2K\race83040d9a5: Preparing \r\x1b[1B\
             \x1b[1A\x1b[2K\race83040d9a5: Layer already exists \r\x1b[1B\
             latest: digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2 size: 527\n"
        );
        let (out, _) = render(PULL, true, 120);
        let bar = |n: usize| format!("[{}>{}]", "=".repeat(n), " ".repeat(50 - n));
        let expected = format!(
            "latest: Pulling from bb\n\
             \n\x1b[1A\x1b[2K\r3c74346abf5b: Pulling fs layer \r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Downloading {}  36.45kB/1.069MB\r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Verifying Checksum \r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Download complete \r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Extracting {}  32.77kB/1.069MB\r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Extracting {}  1.069MB/1.069MB\r\x1b[1B\
             \x1b[1A\x1b[2K\r3c74346abf5b: Pull complete \r\x1b[1B\
             Digest: sha256:3c1156c799a92a8d2dca88eacf525c312f6d4d6efd9d54a562396e47148e6ff2\n\
             Status: Downloaded newer image for 127.0.0.1:5160/bb:latest\n",
            bar(1),
            bar(1),
            bar(50)
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn two_layers_move_the_cursor_to_their_own_line() {
        let s = r#"{"status":"Preparing","progressDetail":{},"id":"aaa"}
{"status":"Preparing","progressDetail":{},"id":"bbb"}
{"status":"Pushing","progressDetail":{"current":500,"total":1000},"id":"aaa"}
"#;
        let (out, _) = render(s, true, 80);
        assert_eq!(
            out,
            "\n\x1b[1A\x1b[2K\raaa: Preparing \r\x1b[1B\
             \n\x1b[1A\x1b[2K\rbbb: Preparing \r\x1b[1B\
             \x1b[2A\x1b[2K\raaa: Pushing     500B/1kB\r\x1b[2B"
        );
    }

    #[test]
    fn in_band_error_stops_the_stream() {
        let s = r#"{"status":"Preparing","progressDetail":{},"id":"aaa"}
{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}
{"status":"never shown"}
"#;
        let (out, err) = render(s, false, 80);
        assert_eq!(out, "aaa: Preparing\n");
        assert_eq!(
            err.unwrap().message,
            "unauthorized: authentication required"
        );
        let only_old: JsonMessage = serde_json::from_str(r#"{"error":"boom"}"#).unwrap();
        assert_eq!(only_old.stream_error().unwrap().message, "boom");
    }

    #[test]
    fn decoder_handles_nulls_garbage_and_truncation() {
        let mut d = Decoder::default();
        let ms = d
            .push(br#"{"status":null,"id":null,"progressDetail":null}{"status":"a"}"#)
            .unwrap();
        assert_eq!(ms.len(), 2);
        assert!(ms[0].progress.is_none() && ms[0].status.is_empty());
        assert!(d.push(br#"{"status":"tru"#).unwrap().is_empty());
        assert_eq!(d.finish(), Err(DecodeError("unexpected EOF".into())));
        let mut d = Decoder::default();
        assert!(d.push(b"{]").is_err());
    }

    #[test]
    fn progress_text_like_jsonmessage() {
        let p = |current, total| JsonProgress {
            current,
            total,
            ..Default::default()
        };
        assert_eq!(progress_text(&p(0, 0), 200, 0), "");
        assert_eq!(progress_text(&p(1500, 0), 200, 0), "   1.5kB");
        assert_eq!(
            progress_text(&p(12_300_000, 45_600_000), 100, 0),
            "  12.3MB/45.6MB"
        );
        assert_eq!(progress_text(&p(2000, 1000), 100, 0), "     2kB");
        let units = JsonProgress {
            current: 3,
            total: 10,
            units: "items".into(),
            ..Default::default()
        };
        assert_eq!(progress_text(&units, 100, 0), "3/10 items");
        let timed = JsonProgress {
            current: 100,
            total: 400,
            start: 1000,
            ..Default::default()
        };
        assert_eq!(progress_text(&timed, 100, 1010), "    100B/400B 30s");
        assert_eq!(go_seconds(3725), "1h2m5s");
        assert_eq!(go_seconds(65), "1m5s");
    }
}
