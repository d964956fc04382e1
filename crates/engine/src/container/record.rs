//! The persisted description of one container: what the user asked for (Config, HostConfig)
//! and what happened to it (State). Serialized as JSON into the metadata DB.

use bollard_stubs::models::{ContainerConfig, HostConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Set by an explicit stop/kill so restart policies do not bring the container back.
    pub stopped_by_user: bool,
    /// Frozen by `pause` (running stays true, as dockerd's State).
    #[serde(default)]
    pub paused: bool,
    /// As of the last health status change; None without a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<bollard_stubs::models::Health>,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_at: None,
            finished_at: None,
            stopped_by_user: false,
            paused: false,
            health: None,
        }
    }
}

impl State {
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Restarting)
    }

    /// dockerd's StateString: "paused" for a frozen running container, else the status.
    pub fn state_str(&self) -> &'static str {
        if self.paused && self.status == Status::Running {
            "paused"
        } else {
            self.status.as_str()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading '/'; the API adds it where Docker shows it.
    pub name: String,
    pub created: DateTime<Utc>,
    pub path: String,
    pub args: Vec<String>,
    /// The merged config (image defaults + request), as `docker inspect` shows it.
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The image as the user named it (`busybox`), shown by `ps`.
    pub image_name: String,
    /// `sha256:<hex>` of the image config.
    pub image_id: String,
    pub state: State,
    pub restart_count: i64,
    pub log_path: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Endpoints, published ports and the namespace (see `crate::network`).
    #[serde(default)]
    pub network: crate::network::ContainerNetwork,
    /// Volumes, binds and tmpfs mounts, in the order they are mounted (see `crate::volume`).
    #[serde(default)]
    pub mounts: Vec<crate::volume::MountPoint>,
    /// Variables the process gets that are never persisted nor shown (a build's `env=`
    /// secrets): in memory only, gone with the daemon.
    #[serde(skip)]
    pub transient_env: Vec<String>,
}

fn ago(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s < 120 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s < 7200 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else if s < 14 * 86400 {
        format!("{} days", s / 86400)
    } else if s < 60 * 86400 {
        format!("{} weeks", s / (7 * 86400))
    } else if s < 365 * 86400 {
        format!("{} months", s / (30 * 86400))
    } else {
        format!("{} years", s / (365 * 86400))
    }
}

impl ContainerRecord {
    /// The human `Status` column of `docker ps`: "Up 3 seconds", "Exited (0) 2 minutes ago".
    pub fn status_text(&self, now: DateTime<Utc>) -> String {
        let st = &self.state;
        match st.status {
            Status::Running if st.paused => {
                format!("Up {} (Paused)", ago(now - st.started_at.unwrap_or(now)))
            }
            Status::Running => {
                let up = format!("Up {}", ago(now - st.started_at.unwrap_or(now)));
                match super::health::status_str(self) {
                    "none" => up,
                    "starting" => format!("{up} (health: starting)"),
                    s => format!("{up} ({s})"),
                }
            }
            Status::Restarting => format!(
                "Restarting ({}) {} ago",
                st.exit_code,
                ago(now - st.finished_at.unwrap_or(now))
            ),
            Status::Exited if st.finished_at.is_some() => format!(
                "Exited ({}) {} ago",
                st.exit_code,
                ago(now - st.finished_at.unwrap_or(now))
            ),
            Status::Created | Status::Exited => "Created".into(),
            Status::Removing => "Removal In Progress".into(),
            Status::Dead => "Dead".into(),
        }
    }

    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_matches_docker() {
        let now = Utc::now();
        let mut r = ContainerRecord {
            id: "a".into(),
            name: "n".into(),
            created: now,
            path: "true".into(),
            args: vec![],
            config: Default::default(),
            host_config: Default::default(),
            image_name: "busybox".into(),
            image_id: String::new(),
            state: State::default(),
            restart_count: 0,
            log_path: String::new(),
            log_max_size: 0,
            log_max_files: 1,
            network: Default::default(),
            mounts: Vec::new(),
            transient_env: Vec::new(),
        };
        assert_eq!(r.status_text(now), "Created");
        r.state.status = Status::Running;
        r.state.started_at = Some(now - chrono::Duration::seconds(3));
        assert_eq!(r.status_text(now), "Up 3 seconds");
        r.state.paused = true;
        assert_eq!(r.status_text(now), "Up 3 seconds (Paused)");
        assert_eq!(r.state.state_str(), "paused");
        r.state.paused = false;
        r.state.health = Some(bollard_stubs::models::Health {
            status: Some(bollard_stubs::models::HealthStatusEnum::STARTING),
            ..Default::default()
        });
        assert_eq!(r.status_text(now), "Up 3 seconds (health: starting)");
        r.state.health.as_mut().unwrap().status =
            Some(bollard_stubs::models::HealthStatusEnum::UNHEALTHY);
        assert_eq!(r.status_text(now), "Up 3 seconds (unhealthy)");
        r.state.health = None;
        r.state.status = Status::Exited;
        r.state.exit_code = 137;
        r.state.finished_at = Some(now - chrono::Duration::seconds(125));
        assert_eq!(r.status_text(now), "Exited (137) 2 minutes ago");
    }
}
