//! Read-only views of containers as the Docker API shapes them: inspect and list.
//! These take only the record lock, never the lifecycle lock.

use super::{ContainerRecord, Status};
use crate::error::{EngineError, Result};
use crate::Engine;
use bollard_stubs::models::*;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn rfc3339(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// bollard-stubs' date type is a String or a chrono/time value depending on its features;
/// going through JSON works for all of them.
pub fn api_date(d: &DateTime<Utc>) -> Option<BollardDate> {
    serde_json::from_value(serde_json::Value::String(rfc3339(d))).ok()
}

/// Filters of `GET /containers/json`, decoded from the JSON `filters` parameter.
pub type Filters = HashMap<String, Vec<String>>;

fn state_enum(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Restarting => ContainerStateStatusEnum::RESTARTING,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Dead => ContainerStateStatusEnum::DEAD,
    }
}

fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

fn network_name(rec: &ContainerRecord) -> String {
    rec.host_config
        .network_mode
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "bridge".into())
}

fn label_matches(labels: &HashMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(want),
    }
}

impl Engine {
    pub fn inspect_container(&self, key: &str) -> Result<ContainerInspectResponse> {
        let h = self.containers.find(key)?;
        let rec = h.snapshot();
        let dir = self.container_dir(&rec.id);
        let st = &rec.state;
        let lowers = self
            .images
            .resolve(&rec.image_id)
            .ok()
            .and_then(|img| self.images.layer_dirs(&img).ok())
            .map(|d| {
                d.iter()
                    .rev()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        let graph = HashMap::from([
            ("LowerDir".to_string(), lowers),
            (
                "UpperDir".to_string(),
                dir.join("upper").to_string_lossy().into_owned(),
            ),
            (
                "WorkDir".to_string(),
                dir.join("work").to_string_lossy().into_owned(),
            ),
            (
                "MergedDir".to_string(),
                dir.join("rootfs").to_string_lossy().into_owned(),
            ),
        ]);
        let path_of = |f: &str| dir.join(f).to_string_lossy().into_owned();
        Ok(ContainerInspectResponse {
            id: Some(rec.id.clone()),
            created: api_date(&rec.created),
            path: Some(rec.path.clone()),
            args: Some(rec.args.clone()),
            state: Some(ContainerState {
                status: Some(if st.state_str() == "paused" {
                    ContainerStateStatusEnum::PAUSED
                } else {
                    state_enum(st.status)
                }),
                running: Some(st.is_running()),
                paused: Some(st.paused),
                restarting: Some(st.status == Status::Restarting),
                oom_killed: Some(st.oom_killed),
                dead: Some(st.status == Status::Dead),
                pid: Some(st.pid),
                exit_code: Some(st.exit_code),
                error: Some(st.error.clone()),
                started_at: Some(
                    st.started_at
                        .as_ref()
                        .map(rfc3339)
                        .unwrap_or_else(|| ZERO_TIME.into()),
                ),
                finished_at: Some(
                    st.finished_at
                        .as_ref()
                        .map(rfc3339)
                        .unwrap_or_else(|| ZERO_TIME.into()),
                ),
                health: st.health.clone(),
            }),
            image: Some(rec.image_id.clone()),
            resolv_conf_path: Some(path_of("resolv.conf")),
            hostname_path: Some(path_of("hostname")),
            hosts_path: Some(path_of("hosts")),
            log_path: Some(rec.log_path.clone()),
            name: Some(format!("/{}", rec.name)),
            restart_count: Some(rec.restart_count),
            driver: Some("overlayfs".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: Some(self.execs.ids_of(&rec.id)).filter(|v| !v.is_empty()),
            host_config: Some(rec.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlayfs".into(),
                data: graph,
            }),
            mounts: Some(self.mounts_api(&rec)),
            config: Some(rec.config.clone()),
            network_settings: Some(self.network_settings(&rec)),
            ..Default::default()
        })
    }

    pub fn list_containers(
        &self,
        all: bool,
        limit: Option<usize>,
        filters: &Filters,
    ) -> Result<Vec<ContainerSummary>> {
        for key in filters.keys() {
            if !matches!(
                key.as_str(),
                "status"
                    | "name"
                    | "label"
                    | "id"
                    | "ancestor"
                    | "exited"
                    | "before"
                    | "since"
                    | "network"
                    | "volume"
                    | "health"
                    | "is-task"
                    | "publish"
                    | "expose"
            ) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{key}'"
                )));
            }
        }
        for s in filters.get("status").into_iter().flatten() {
            if !matches!(
                s.as_str(),
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            ) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
        let mut exited = Vec::new();
        for s in filters.get("exited").into_iter().flatten() {
            exited.push(s.parse::<i64>().map_err(|_| {
                EngineError::InvalidArgument(format!("invalid filter 'exited={s}'"))
            })?);
        }
        if let Some(v) = filters.get("health") {
            super::health::validate_filter(v)?;
        }
        let all = all || filters.contains_key("status") || filters.contains_key("exited");
        let mut recs: Vec<ContainerRecord> =
            self.containers.all().iter().map(|h| h.snapshot()).collect();
        recs.sort_by_key(|r| std::cmp::Reverse(r.created));
        let created_of = |key: &str| -> Result<DateTime<Utc>> {
            Ok(self.containers.find(key)?.snapshot().created)
        };
        let before = filters
            .get("before")
            .and_then(|v| v.first())
            .map(|k| created_of(k))
            .transpose()?;
        let since = filters
            .get("since")
            .and_then(|v| v.first())
            .map(|k| created_of(k))
            .transpose()?;
        let ancestors: Vec<String> = filters
            .get("ancestor")
            .into_iter()
            .flatten()
            .map(|a| {
                self.images
                    .resolve(a)
                    .map(|i| i.id.to_string())
                    .unwrap_or_else(|_| a.clone())
            })
            .collect();
        let now = Utc::now();
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            filters.get(key).is_none_or(|v| v.iter().any(|x| f(x)))
        };
        let out = recs
            .into_iter()
            .filter(|r| all || r.state.is_running())
            .filter(|r| any("status", &|s| s == r.state.state_str()))
            .filter(|r| any("name", &|s| r.name.contains(s.trim_start_matches('/'))))
            .filter(|r| any("id", &|s| r.id.starts_with(s)))
            .filter(|r| any("health", &|s| s == super::health::status_str(r)))
            .filter(|r| {
                let labels = r.config.labels.clone().unwrap_or_default();
                filters
                    .get("label")
                    .is_none_or(|v| v.iter().all(|l| label_matches(&labels, l)))
            })
            .filter(|r| {
                ancestors.is_empty()
                    || ancestors
                        .iter()
                        .any(|a| *a == r.image_id || *a == r.image_name)
            })
            .filter(|r| {
                exited.is_empty()
                    || (r.state.status == Status::Exited && exited.contains(&r.state.exit_code))
            })
            .filter(|r| {
                any("network", &|s| {
                    r.network.endpoints.iter().any(|(name, e)| {
                        name == s || (!s.is_empty() && e.network_id.starts_with(s))
                    })
                })
            })
            .filter(|r| any("volume", &|s| crate::volume::uses_volume(r, s)))
            .filter(|r| {
                any("publish", &|s| {
                    r.network.ports.iter().any(|p| {
                        crate::network::ports::port_filter_matches(s, p.host_port, &p.protocol)
                    })
                })
            })
            .filter(|r| {
                any("expose", &|s| {
                    crate::network::ports::summary_ports(r).iter().any(|p| {
                        let proto = p.typ.map(|t| t.to_string()).unwrap_or_default();
                        crate::network::ports::port_filter_matches(s, p.private_port, &proto)
                    })
                })
            })
            .filter(|r| before.is_none_or(|b| r.created < b))
            .filter(|r| since.is_none_or(|s| r.created > s))
            .take(limit.filter(|l| *l > 0).unwrap_or(usize::MAX))
            .map(|r| ContainerSummary {
                id: Some(r.id.clone()),
                names: Some(vec![format!("/{}", r.name)]),
                image: Some(r.image_name.clone()),
                image_id: Some(r.image_id.clone()),
                command: Some(
                    std::iter::once(r.path.as_str())
                        .chain(r.args.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                created: Some(r.created.timestamp()),
                ports: Some(crate::network::ports::summary_ports(&r)),
                labels: Some(r.config.labels.clone().unwrap_or_default()),
                state: Some(if r.state.state_str() == "paused" {
                    ContainerSummaryStateEnum::PAUSED
                } else {
                    summary_state(r.state.status)
                }),
                status: Some(r.status_text(now)),
                host_config: Some(ContainerSummaryHostConfig {
                    network_mode: Some(network_name(&r)),
                    ..Default::default()
                }),
                network_settings: Some(ContainerSummaryNetworkSettings {
                    networks: Some(self.endpoint_settings(&r)),
                }),
                mounts: Some(self.mounts_api(&r)),
                ..Default::default()
            })
            .collect();
        Ok(out)
    }
}
