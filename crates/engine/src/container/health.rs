//! Healthchecks, the daemon's half: the config merge and validation at create, the shim's
//! probe settings at start, and a watcher per running container that hears only the shim's
//! status changes (the probes themselves run in the shim, so the daemon does no work per
//! probe). Status changes are persisted and published as `health_status: …` events;
//! `inspect` asks the shim for the live log.

use super::{ContainerRecord, Handle};
use crate::error::{EngineError, Result};
use crate::shim::ShimClient;
use crate::Engine;
use berth_runtime::health::{
    HealthConfig as ShimHealthConfig, HealthState, HealthStatus, ProbeResult, DEFAULT_INTERVAL,
    DEFAULT_RETRIES, DEFAULT_START_INTERVAL, DEFAULT_TIMEOUT,
};
use bollard_stubs::models::{
    ContainerInspectResponse, Health, HealthConfig, HealthStatusEnum, HealthcheckResult,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// dockerd's `containertypes.MinimumDuration`.
const MINIMUM_DURATION_NS: i64 = 1_000_000;
/// How long `inspect` waits for a shim's live health log before showing the recorded one.
const LIVE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Rejects what dockerd rejects (`verifyContainerSettings`), with its wording.
pub fn validate(hc: Option<&HealthConfig>) -> Result<()> {
    let Some(hc) = hc else { return Ok(()) };
    let fields = [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ];
    for (name, v) in fields {
        let v = v.unwrap_or(0);
        if v != 0 && v < MINIMUM_DURATION_NS {
            return Err(EngineError::InvalidArgument(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.retries.unwrap_or(0) < 0 {
        return Err(EngineError::InvalidArgument(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// moby's `merge`: no healthcheck in the request takes the image's; one given keeps its
/// set fields and takes the image's for those left empty or zero.
pub fn merge_image_healthcheck(user: &mut Option<HealthConfig>, image: Option<&Value>) {
    let Some(img) = image
        .filter(|v| v.is_object())
        .and_then(|v| serde_json::from_value::<HealthConfig>(v.clone()).ok())
    else {
        return;
    };
    let Some(u) = user else {
        *user = Some(img);
        return;
    };
    if u.test.as_ref().is_none_or(Vec::is_empty) {
        u.test = img.test;
    }
    let zero = |v: &Option<i64>| v.unwrap_or(0) == 0;
    if zero(&u.interval) {
        u.interval = img.interval;
    }
    if zero(&u.timeout) {
        u.timeout = img.timeout;
    }
    if zero(&u.start_period) {
        u.start_period = img.start_period;
    }
    if zero(&u.start_interval) {
        u.start_interval = img.start_interval;
    }
    if zero(&u.retries) {
        u.retries = img.retries;
    }
}

fn ns_or(v: Option<i64>, default: Duration) -> u64 {
    match v {
        Some(n) if n > 0 => n as u64,
        _ => default.as_nanos() as u64,
    }
}

/// What the shim runs, with dockerd's defaults; None when there is no probe to run
/// (no healthcheck, `NONE`, or an empty test).
pub fn shim_config(rec: &ContainerRecord) -> Option<ShimHealthConfig> {
    let hc = rec.config.healthcheck.as_ref()?;
    let test = hc.test.as_ref()?;
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut shell = rec
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.push(test[1..].join(" "));
            shell
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(ShimHealthConfig {
        argv,
        interval_ns: ns_or(hc.interval, DEFAULT_INTERVAL),
        timeout_ns: ns_or(hc.timeout, DEFAULT_TIMEOUT),
        start_period_ns: ns_or(hc.start_period, Duration::ZERO),
        start_interval_ns: ns_or(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: match hc.retries {
            Some(r) if r > 0 => u32::try_from(r).unwrap_or(u32::MAX),
            _ => DEFAULT_RETRIES,
        },
        log: rec
            .state
            .health
            .as_ref()
            .and_then(|h| h.log.as_ref())
            .map(|l| l.iter().filter_map(probe_result).collect())
            .unwrap_or_default(),
    })
}

fn date_string(d: &Option<bollard_stubs::models::BollardDate>) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn probe_result(r: &HealthcheckResult) -> Option<ProbeResult> {
    Some(ProbeResult {
        start: date_string(&r.start),
        end: date_string(&r.end),
        exit_code: r.exit_code?,
        output: r.output.clone().unwrap_or_default(),
    })
}

/// The health a container shows right after a start: `starting`, with an empty streak and
/// the log of earlier runs kept (as dockerd's `initHealthMonitor`).
pub fn on_start(rec: &ContainerRecord) -> Option<Health> {
    shim_config(rec)?;
    Some(Health {
        status: Some(HealthStatusEnum::STARTING),
        failing_streak: Some(0),
        log: Some(
            rec.state
                .health
                .as_ref()
                .and_then(|h| h.log.clone())
                .unwrap_or_default(),
        ),
    })
}

/// The `health` filter value and `ps` wording of a container: its status or `none`.
pub fn status_str(rec: &ContainerRecord) -> &'static str {
    match rec.state.health.as_ref().and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => "starting",
        Some(HealthStatusEnum::HEALTHY) => "healthy",
        Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
        _ => "none",
    }
}

/// Checks `ps --filter health=…` values as dockerd does.
pub fn validate_filter(values: &[String]) -> Result<()> {
    for v in values {
        if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
            return Err(EngineError::InvalidArgument(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
    }
    Ok(())
}

fn api_status(s: HealthStatus) -> HealthStatusEnum {
    match s {
        HealthStatus::Starting => HealthStatusEnum::STARTING,
        HealthStatus::Healthy => HealthStatusEnum::HEALTHY,
        HealthStatus::Unhealthy => HealthStatusEnum::UNHEALTHY,
    }
}

fn api_date(s: &str) -> Option<bollard_stubs::models::BollardDate> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

fn api_result(r: &ProbeResult) -> HealthcheckResult {
    HealthcheckResult {
        start: api_date(&r.start),
        end: api_date(&r.end),
        exit_code: Some(r.exit_code),
        output: Some(r.output.clone()),
    }
}

pub fn to_api(st: &HealthState) -> Health {
    Health {
        status: Some(api_status(st.status)),
        failing_streak: Some(st.failing_streak),
        log: Some(st.log.iter().map(api_result).collect()),
    }
}

impl Engine {
    /// Follows the shim's status changes while the container runs (after a start and after a
    /// daemon restart alike): one idle connection per container, no polling.
    pub(crate) fn watch_health(self: &Arc<Self>, h: Arc<Handle>) {
        if shim_config(&h.snapshot()).is_none() {
            return;
        }
        let engine = self.clone();
        let run = *h.starts.borrow();
        tokio::spawn(async move {
            let shim = ShimClient::new(engine.shim_dir(&h.id));
            let (sock, first) = match shim.connect(json!({"op": "healthwatch"})).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(container = %h.id, "cannot watch health: {e}");
                    return;
                }
            };
            match serde_json::from_value::<HealthState>(first) {
                Ok(st) => engine.apply_health(&h, &st, run),
                Err(e) => tracing::warn!(container = %h.id, "bad health state: {e}"),
            }
            let mut lines = tokio::io::BufReader::new(sock).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<HealthState>(&line) {
                    Ok(st) => engine.apply_health(&h, &st, run),
                    Err(e) => {
                        tracing::warn!(container = %h.id, "bad health state: {e}");
                        break;
                    }
                }
            }
        });
    }

    /// Records a state the shim pushed (at a status change, or its final state as the
    /// container exits); persists it then, and publishes status changes.
    fn apply_health(&self, h: &Handle, st: &HealthState, run: u64) {
        // A watcher outliving its run must not overwrite a newer start's state.
        if *h.starts.borrow() != run {
            return;
        }
        let new = api_status(st.status);
        let (changed, running, rec) = h.update(|r| {
            let old = r.state.health.as_ref().and_then(|x| x.status);
            r.state.health = Some(to_api(st));
            (old != Some(new), r.state.is_running(), r.clone())
        });
        if !changed && running {
            return;
        }
        if let Err(e) = self.persist(h) {
            tracing::error!(container = %h.id, "cannot persist health status: {e}");
        }
        if changed && st.status != HealthStatus::Starting {
            self.emit_container(&rec, &format!("health_status: {}", st.status.as_str()), &[]);
        }
        tracing::info!(container = %h.id, status = st.status.as_str(), "health status");
    }

    /// `inspect` with the shim's live health log for a running container (the record holds
    /// the state as of the last status change).
    pub async fn inspect_container_live(&self, key: &str) -> Result<ContainerInspectResponse> {
        let mut resp = self.inspect_container(key)?;
        let h = self.containers.find(key)?;
        let rec = h.snapshot();
        if !rec.state.is_running() || rec.state.health.is_none() {
            return Ok(resp);
        }
        let shim = ShimClient::new(self.shim_dir(&h.id));
        let live =
            tokio::time::timeout(LIVE_QUERY_TIMEOUT, shim.connect(json!({"op": "health"}))).await;
        if let Ok(Ok((_, v))) = live {
            if let (Ok(st), Some(state)) = (
                serde_json::from_value::<HealthState>(v),
                resp.state.as_mut(),
            ) {
                state.health = Some(to_api(&st));
            }
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(test: &[&str]) -> HealthConfig {
        HealthConfig {
            test: Some(test.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn validation_matches_dockerd() {
        assert!(validate(None).is_ok());
        let mut c = hc(&["CMD", "true"]);
        c.interval = Some(1_000_000);
        assert!(validate(Some(&c)).is_ok());
        c.interval = Some(999);
        let e = validate(Some(&c)).unwrap_err().to_string();
        assert!(
            e.contains("Interval in Healthcheck cannot be less than 1ms"),
            "{e}"
        );
        c.interval = Some(-5);
        assert!(validate(Some(&c)).is_err());
        c.interval = None;
        c.retries = Some(-1);
        assert!(validate(Some(&c)).is_err());
    }

    #[test]
    fn merge_takes_image_fields_left_empty() {
        let image = json!({"Test": ["CMD-SHELL", "true"], "Interval": 5, "Retries": 7});
        let mut none = None;
        merge_image_healthcheck(&mut none, Some(&image));
        assert_eq!(none.unwrap().retries, Some(7));
        let mut user = Some(HealthConfig {
            interval: Some(9),
            ..Default::default()
        });
        merge_image_healthcheck(&mut user, Some(&image));
        let u = user.unwrap();
        assert_eq!(u.test.unwrap()[0], "CMD-SHELL");
        assert_eq!((u.interval, u.retries), (Some(9), Some(7)));
    }

    fn record() -> ContainerRecord {
        serde_json::from_value(json!({
            "id": "a", "name": "n", "created": "2024-01-01T00:00:00Z", "path": "sh",
            "args": [], "config": {}, "host_config": {}, "image_name": "i", "image_id": "",
            "state": {"status": "created", "pid": 0, "exit_code": 0, "oom_killed": false,
                      "error": "", "started_at": null, "finished_at": null,
                      "stopped_by_user": false},
            "restart_count": 0, "log_path": "", "log_max_size": 0, "log_max_files": 1
        }))
        .unwrap()
    }

    /// Status changes the shim pushes become `health_status: …` events and persisted state;
    /// pushes that change nothing are neither.
    #[test]
    fn pushed_changes_emit_events_and_persist() {
        // The engine sets up its default bridge: in a namespace of its own, never the host's.
        let dir = std::env::temp_dir().join(format!("berth-health-{}", std::process::id()));
        let pin = dir.join("netns");
        berth_network::netns::create(&pin).unwrap();
        let d = dir.clone();
        let outcome = berth_network::netns::run_in(&pin, move || {
            std::panic::catch_unwind(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(pushed_changes_body(d))
            })
        });
        let _ = berth_network::netns::remove(&pin);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(p) = outcome.unwrap() {
            std::panic::resume_unwind(p);
        }
    }

    async fn pushed_changes_body(dir: std::path::PathBuf) {
        let engine = Engine::open(crate::EngineConfig {
            data_root: dir.join("data"),
            exec_root: dir.join("run"),
            self_exe: "/bin/false".into(),
            builder_cache_max_size: None,
            registry: Default::default(),
        })
        .await
        .unwrap();
        let mut rec = record();
        rec.state.status = super::super::Status::Running;
        rec.config.healthcheck = Some(hc(&["CMD", "true"]));
        rec.state.health = on_start(&rec);
        let h = Handle::new(rec);
        engine.containers.insert(h.clone()).unwrap();
        let mut st = HealthState::default();
        engine.apply_health(&h, &st, 0);
        st.log.push(ProbeResult {
            start: "2024-01-01T00:00:01Z".into(),
            end: "2024-01-01T00:00:02Z".into(),
            exit_code: 0,
            output: "ok".into(),
        });
        st.status = HealthStatus::Healthy;
        engine.apply_health(&h, &st, 0);
        engine.apply_health(&h, &st, 0);
        // A watcher of an earlier run is ignored.
        st.status = HealthStatus::Unhealthy;
        engine.apply_health(&h, &st, 7);
        let (history, _) = engine.events.subscribe();
        let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["health_status: healthy"]);
        assert_eq!(status_str(&h.snapshot()), "healthy");
        let saved = engine.db.list_containers().unwrap();
        assert!(saved[0].2.contains("\"healthy\""), "{}", saved[0].2);
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shim_config_applies_defaults_and_shell() {
        let mut rec = record();
        assert!(shim_config(&rec).is_none());
        rec.config.healthcheck = Some(hc(&["NONE"]));
        assert!(shim_config(&rec).is_none());
        rec.config.healthcheck = Some(hc(&["CMD-SHELL", "exit 0"]));
        let c = shim_config(&rec).unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "exit 0"]);
        assert_eq!((c.interval_ns, c.retries), (30_000_000_000, 3));
        rec.config.healthcheck = Some(hc(&["CMD", "true", "x"]));
        assert_eq!(shim_config(&rec).unwrap().argv, ["true", "x"]);
    }
}
