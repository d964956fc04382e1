//! Healthchecks as dockerd defines them, shared by the shim (which runs the probes and keeps
//! the state) and the daemon (which only hears about status changes and shows the state).
//!
//! The state machine is dockerd's `handleProbeResult`: a passing probe makes the container
//! healthy and clears the failing streak; a failing one adds to the streak (except while the
//! container is still `starting` inside its start period) and `retries` failures in a row
//! make it unhealthy. The last five results are kept, each output cut to 4096 bytes.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// dockerd's `maxLogEntries`.
pub const MAX_LOG_ENTRIES: usize = 5;
/// dockerd's `maxOutputLen`.
pub const MAX_OUTPUT_LEN: usize = 4096;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;

/// What the shim needs to run probes: defaults already applied by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// The probe's argv inside the container: the CMD arguments, or the container's shell
    /// followed by the CMD-SHELL string.
    pub argv: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    pub start_interval_ns: u64,
    pub retries: u32,
    /// Results of earlier runs of the container, kept across restarts as dockerd does.
    #[serde(default)]
    pub log: Vec<ProbeResult>,
}

impl HealthConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout_ns)
    }
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period_ns)
    }
    pub fn start_interval(&self) -> Duration {
        Duration::from_nanos(self.start_interval_ns)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe run; times are RFC 3339 with nanoseconds, as dockerd shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// The shim's health state: what `health` replies and `healthwatch` pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: HealthStatus,
    pub failing_streak: i64,
    /// Oldest first.
    pub log: Vec<ProbeResult>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

impl HealthState {
    /// Records a probe result; returns whether the status changed (dockerd emits a
    /// `health_status` event exactly then). `in_start_period`: the probe started within the
    /// start period after the container started.
    pub fn record(&mut self, result: ProbeResult, in_start_period: bool, retries: u32) -> bool {
        let old = self.status;
        let passed = result.exit_code == 0;
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.log.drain(..self.log.len() + 1 - MAX_LOG_ENTRIES);
        }
        self.log.push(result);
        if passed {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= i64::from(retries.max(1)) {
                self.status = HealthStatus::Unhealthy;
            }
        }
        old != self.status
    }
}

/// Keeps the first [`MAX_OUTPUT_LEN`] bytes of a probe's output and notes whether more came.
#[derive(Debug, Default)]
pub struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    /// The output as dockerd's `limitedBuffer.String()`: "..." marks a cut.
    pub fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Go's `time.Duration.String()`, for messages that must read like dockerd's
/// ("Health check exceeded timeout (1.5s)").
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    fn frac(v: u128, unit: u128, suffix: &str) -> String {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            return format!("{whole}{suffix}");
        }
        let width = unit.to_string().len() - 1;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let (h, m) = (mins / 60, mins % 60);
    let mut s = String::new();
    if h > 0 {
        s.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        s.push_str(&format!("{m}m"));
    }
    s.push_str(&frac(secs_ns, 1_000_000_000, "s"));
    s
}

pub use berth_units::parse_go_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn res(code: i64) -> ProbeResult {
        ProbeResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn follows_dockerd_state_machine() {
        let mut h = HealthState::default();
        // Failures inside the start period while starting do not count.
        assert!(!h.record(res(1), true, 2));
        assert_eq!(h.failing_streak, 0);
        assert!(!h.record(res(1), false, 2));
        assert_eq!(h.failing_streak, 1);
        assert!(h.record(res(1), false, 2));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(h.record(res(0), false, 2));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        // Once healthy, the start period no longer shields failures.
        assert!(!h.record(res(1), true, 2));
        assert_eq!(h.failing_streak, 1);
        for _ in 0..10 {
            h.record(res(3), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    }

    #[test]
    fn output_is_capped_like_dockerd() {
        let mut o = LimitedOutput::default();
        o.push(&[b'a'; 4000]);
        o.push(&[b'b'; 200]);
        let s = o.into_string();
        assert_eq!(s.len(), MAX_OUTPUT_LEN + 3);
        assert!(s.ends_with("bb..."));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(parse_go_duration("1x"), None);
    }
}
