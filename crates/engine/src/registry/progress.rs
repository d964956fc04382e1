//! The JSON progress stream of pull and push (moby's `jsonmessage`): Docker's field names and
//! order, its status strings, and its throttling of per-layer progress.

use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// One object of the stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The text bar dockerd sent before API 1.48 (`[==>   ]  1.2MB/3.4MB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// Deprecated, but still sent beside `errorDetail` (docker-py looks for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    /// A line without an id (`Digest: …`, `Status: …`).
    pub fn status(text: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(text.into()),
            ..Default::default()
        }
    }

    /// A line about one thing (`Pulling from x` with the tag as id).
    pub fn with_id(text: impl Into<String>, id: impl Into<String>) -> JsonMessage {
        JsonMessage {
            id: Some(id.into()),
            ..Self::status(text)
        }
    }

    /// A layer's state change (`Pulling fs layer`, `Pushed`…): an empty `progressDetail`, as
    /// compose only renders lines that have one.
    pub fn layer(text: impl Into<String>, id: impl Into<String>) -> JsonMessage {
        JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            ..Self::with_id(text, id)
        }
    }

    /// `Downloading`, `Extracting`, `Pushing` with counts.
    pub fn bytes(action: &str, id: &str, current: u64, total: u64) -> JsonMessage {
        JsonMessage {
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            progress: Some(progress_bar(current, total)),
            ..Self::with_id(action, id)
        }
    }

    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }

    pub fn aux(value: serde_json::Value) -> JsonMessage {
        JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(value),
            ..Default::default()
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// go-units' HumanSize: decimal units, four significant digits (`36.45kB`, `3MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g4(v), UNITS[i])
}

/// Go's `%.4g` for 0 <= v < 1000: four significant digits, trailing zeros dropped.
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let int_digits = (v.abs().log10().floor() as i32 + 1).max(1);
    let decimals = (4 - int_digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// moby's JSONProgress.String() as the daemon renders it (width 200: bar and counts).
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let percentage = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50) as usize;
    let bar = format!(
        "[{}>{}] ",
        "=".repeat(percentage),
        " ".repeat(50 - percentage)
    );
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// Where a pull or push writes its stream. Status lines are never lost (they wait for room);
/// byte counts are dropped when the client reads slower than they come, as dockerd drops
/// intermediate progress.
#[derive(Clone)]
pub struct ProgressSink {
    tx: mpsc::Sender<JsonMessage>,
}

impl ProgressSink {
    pub fn channel(capacity: usize) -> (ProgressSink, mpsc::Receiver<JsonMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        (ProgressSink { tx }, rx)
    }

    pub async fn send(&self, m: JsonMessage) {
        let _ = self.tx.send(m).await;
    }

    /// From a blocking thread.
    pub fn send_blocking(&self, m: JsonMessage) {
        let _ = self.tx.blocking_send(m);
    }

    /// A progress update that may be dropped.
    pub fn offer(&self, m: JsonMessage) {
        let _ = self.tx.try_send(m);
    }

    /// The client went away: the operation is cancelled.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// A transfer slot (`--max-concurrent-downloads`/`-uploads`); layer `id` shows `Waiting`
    /// while all are taken, as dockerd's.
    pub async fn take_slot(
        &self,
        slots: &Arc<Semaphore>,
        id: &str,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        match slots.clone().try_acquire_owned() {
            Ok(p) => Ok(p),
            Err(_) => {
                self.send(JsonMessage::layer("Waiting", id)).await;
                slots.clone().acquire_owned().await
            }
        }
    }
}

/// Byte counts of one layer, at most one message per interval (and always the last one).
pub struct LayerProgress {
    sink: ProgressSink,
    id: String,
    action: &'static str,
    total: u64,
    last: Option<Instant>,
}

const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl LayerProgress {
    pub fn new(sink: ProgressSink, id: &str, action: &'static str, total: u64) -> Self {
        LayerProgress {
            sink,
            id: id.to_string(),
            action,
            total,
            last: None,
        }
    }

    pub fn update(&mut self, current: u64) {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|l| now.duration_since(l) >= PROGRESS_INTERVAL);
        if due || current == self.total {
            self.last = Some(now);
            self.sink.offer(JsonMessage::bytes(
                self.action,
                &self.id,
                current,
                self.total,
            ));
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn sink(&self) -> &ProgressSink {
        &self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(36445), "36.45kB");
        assert_eq!(human_size(1068893), "1.069MB");
        assert_eq!(human_size(3_000_000), "3MB");
        assert_eq!(human_size(2_140_160), "2.14MB");
        assert_eq!(human_size(360_448), "360.4kB");
    }

    #[test]
    fn bars_as_dockerd_draws_them() {
        // Strings recorded from dockerd 20.10's pull and push streams.
        assert_eq!(
            progress_bar(36445, 1068893),
            "[=>                                                 ]  36.45kB/1.069MB"
        );
        assert_eq!(
            progress_bar(107, 107),
            "[==================================================>]     107B/107B"
        );
        assert_eq!(
            progress_bar(3001856, 3000000),
            "[==================================================>]  3.002MB"
        );
        assert_eq!(
            progress_bar(1901056, 3000000),
            "[===============================>                   ]  1.901MB/3MB"
        );
    }

    #[test]
    fn messages_serialise_in_dockerds_shape() {
        let j = |m: JsonMessage| serde_json::to_string(&m).unwrap();
        assert_eq!(
            j(JsonMessage::with_id("Pulling from x/img", "1")),
            r#"{"status":"Pulling from x/img","id":"1"}"#
        );
        assert_eq!(
            j(JsonMessage::layer("Pull complete", "3c74346abf5b")),
            r#"{"status":"Pull complete","progressDetail":{},"id":"3c74346abf5b"}"#
        );
        assert_eq!(
            j(JsonMessage::bytes("Downloading", "170dc9076831", 107, 107)),
            r#"{"status":"Downloading","progressDetail":{"current":107,"total":107},"progress":"[==================================================>]     107B/107B","id":"170dc9076831"}"#
        );
        assert_eq!(
            j(JsonMessage::error("boom")),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
        assert_eq!(
            j(JsonMessage::aux(
                serde_json::json!({"Tag":"1","Digest":"sha256:x","Size":946})
            )),
            r#"{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:x","Size":946}}"#
        );
    }

    #[tokio::test]
    async fn layer_progress_is_throttled_but_ends_with_the_total() {
        let (sink, mut rx) = ProgressSink::channel(64);
        let mut p = LayerProgress::new(sink, "abc", "Downloading", 1000);
        for i in 1..=1000 {
            p.update(i);
        }
        drop(p);
        let mut got = Vec::new();
        while let Some(m) = rx.recv().await {
            got.push(m.progress_detail.and_then(|d| d.current).unwrap());
        }
        assert!(got.len() <= 3, "{got:?}");
        assert_eq!(got.first(), Some(&1));
        assert_eq!(got.last(), Some(&1000));
    }
}
