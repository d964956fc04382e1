//! `POST /containers/create`: validate the request, merge it with the image's defaults the way
//! dockerd does, and register the container. Nothing runs yet.

use super::{ContainerRecord, Handle, State};
use crate::error::{EngineError, Result};
use crate::{names, Engine};
use bollard_stubs::models::{
    ContainerConfig, ContainerCreateBody, HostConfig, HostConfigLogConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use serde_json::Value;
use std::collections::HashMap;

pub const DEFAULT_LOG_MAX_SIZE: u64 = 20 * 1024 * 1024;
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

fn string_map(v: Option<&Value>) -> HashMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn object_keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// Sets `var` (`K=V`) in `env`, replacing a variable of the same name: the later wins, in
/// the later one's place, as dockerd merges environments.
pub(crate) fn set_env(env: &mut Vec<String>, var: String) {
    let key = env_key(&var);
    env.retain(|x| env_key(x) != key);
    env.push(var);
}

/// Parses Docker's size strings ("10m", "1.5g", "512k", "100") into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// The image defaults dockerd copies into a new container (`merge` in moby's daemon).
fn merge_image_config(cfg: &mut ContainerConfig, image: &Value) {
    if cfg.user.as_deref().unwrap_or("").is_empty() {
        cfg.user = image
            .get("User")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let mut ports = object_keys(image.get("ExposedPorts"));
    for p in cfg.exposed_ports.take().unwrap_or_default() {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if !ports.is_empty() {
        cfg.exposed_ports = Some(ports);
    }
    let mut env = strings(image.get("Env")).unwrap_or_default();
    for e in cfg.env.take().unwrap_or_default() {
        set_env(&mut env, e);
    }
    cfg.env = Some(env);
    let mut labels = string_map(image.get("Labels"));
    labels.extend(cfg.labels.take().unwrap_or_default());
    cfg.labels = Some(labels);
    if cfg.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if cfg.cmd.as_ref().is_none_or(Vec::is_empty) {
            cfg.cmd = strings(image.get("Cmd"));
        }
        if cfg.entrypoint.is_none() {
            cfg.entrypoint = strings(image.get("Entrypoint"));
        }
    }
    if cfg.entrypoint.as_deref() == Some(&[String::new()][..]) {
        cfg.entrypoint = None;
    }
    if cfg.working_dir.as_deref().unwrap_or("").is_empty() {
        cfg.working_dir = image
            .get("WorkingDir")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let mut vols = object_keys(image.get("Volumes"));
    for v in cfg.volumes.take().unwrap_or_default() {
        if !vols.contains(&v) {
            vols.push(v);
        }
    }
    if !vols.is_empty() {
        cfg.volumes = Some(vols);
    }
    if cfg.stop_signal.as_deref().unwrap_or("").is_empty() {
        cfg.stop_signal = image
            .get("StopSignal")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    super::health::merge_image_healthcheck(&mut cfg.healthcheck, image.get("Healthcheck"));
    if cfg.on_build.is_none() {
        cfg.on_build = strings(image.get("OnBuild"));
    }
    if cfg.shell.is_none() {
        cfg.shell = strings(image.get("Shell"));
    }
}

fn validate_host_config(hc: &mut HostConfig) -> Result<(u64, u32)> {
    let policy = hc.restart_policy.get_or_insert_with(RestartPolicy::default);
    let name = policy.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
    if name == RestartPolicyNameEnum::EMPTY {
        policy.name = Some(RestartPolicyNameEnum::NO);
    }
    let retries = policy.maximum_retry_count.unwrap_or(0);
    if retries < 0 {
        return Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count cannot be negative".into(),
        ));
    }
    if retries > 0 && name != RestartPolicyNameEnum::ON_FAILURE {
        return Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        ));
    }
    policy.maximum_retry_count = Some(retries);
    let restarts = !matches!(
        policy.name,
        Some(RestartPolicyNameEnum::NO) | Some(RestartPolicyNameEnum::EMPTY) | None
    );
    if hc.auto_remove.unwrap_or(false) && restarts {
        return Err(EngineError::InvalidArgument(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    if let Some(m) = hc.memory {
        if m > 0 && m < MIN_MEMORY {
            return Err(EngineError::InvalidArgument(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
    }
    if hc.nano_cpus.unwrap_or(0) > 0
        && (hc.cpu_quota.unwrap_or(0) > 0 || hc.cpu_period.unwrap_or(0) > 0)
    {
        return Err(EngineError::InvalidArgument(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    if hc.nano_cpus.unwrap_or(0) < 0 || hc.pids_limit.unwrap_or(0) < -1 && hc.pids_limit != Some(0)
    {
        return Err(EngineError::InvalidArgument(
            "invalid resource value".into(),
        ));
    }
    if matches!(
        hc.network_mode.as_deref(),
        None | Some("") | Some("default")
    ) {
        hc.network_mode = Some("bridge".into());
    }
    let log = hc
        .log_config
        .get_or_insert_with(HostConfigLogConfig::default);
    match log.typ.as_deref().unwrap_or("") {
        "" | "json-file" => log.typ = Some("json-file".into()),
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "logger: no log driver named '{other}' is registered"
            )))
        }
    }
    let opts = log.config.get_or_insert_with(HashMap::new);
    let max_size = match opts.get("max-size") {
        Some(s) => parse_size(s).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid value for max-size: {s}"))
        })?,
        None => DEFAULT_LOG_MAX_SIZE,
    };
    let max_files = match opts.get("max-file") {
        Some(s) => s.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid value for max-file: {s}"))
        })?,
        None => DEFAULT_LOG_MAX_FILES,
    };
    for k in opts.keys() {
        if !matches!(
            k.as_str(),
            "max-size" | "max-file" | "compress" | "labels" | "env" | "tag"
        ) {
            return Err(EngineError::InvalidArgument(format!(
                "unknown log opt '{k}' for json-file log driver"
            )));
        }
    }
    if hc.shm_size.unwrap_or(0) == 0 {
        hc.shm_size = Some(64 * 1024 * 1024);
    }
    hc.console_size.get_or_insert_with(|| vec![0, 0]);
    hc.ipc_mode.get_or_insert_with(|| "private".into());
    Ok((max_size, max_files))
}

impl Engine {
    /// Gives a created container's process variables that are never persisted nor shown in
    /// inspect (a build's `env=` secrets); they live in memory until the container goes.
    pub(crate) fn set_transient_env(&self, id: &str, vars: Vec<String>) -> Result<()> {
        self.containers.find(id)?.update(|r| r.transient_env = vars);
        Ok(())
    }

    pub async fn create_container(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<(String, Vec<String>)> {
        let image_ref = body
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                EngineError::InvalidArgument(
                    "config cannot be empty in order to create a container".into(),
                )
            })?;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !names::valid_name(n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.trim_start_matches('/').to_string()
            }
            None => loop {
                let n = names::random_name();
                if self.containers.name_owner(&n).is_none() {
                    break n;
                }
            },
        };
        if let Some(owner) = self.containers.name_owner(&name) {
            return Err(super::name_conflict(&name, &owner));
        }
        let image = self.image_by_name(&image_ref).await?;
        let image_cfg = serde_json::to_value(&image.config.config)
            .ok()
            .filter(Value::is_object)
            .unwrap_or(Value::Null);

        let mut hc = body.host_config.clone().unwrap_or_default();
        let (log_max_size, log_max_files) = validate_host_config(&mut hc)?;

        let mut cfg = to_container_config(&body);
        super::health::validate(cfg.healthcheck.as_ref())?;
        merge_image_config(&mut cfg, &image_cfg);
        let network = self.plan_networks(&mut hc, &cfg, body.networking_config.as_ref())?;
        let mut argv: Vec<String> = cfg.entrypoint.clone().unwrap_or_default();
        argv.extend(cfg.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::InvalidArgument("no command specified".into()));
        }
        let id = names::random_id();
        if let Some(other) = hc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
        {
            // dockerd: the container shares the other's hostname with its namespace.
            cfg.hostname = self.containers.find(other)?.snapshot().config.hostname;
        }
        if cfg.hostname.as_deref().unwrap_or("").is_empty() {
            cfg.hostname = Some(if hc.network_mode.as_deref() == Some("host") {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_default()
            } else {
                id[..12].to_string()
            });
        }
        cfg.image = Some(image_ref.clone());
        // Held until the container is registered, so no volume it names can be removed
        // before it counts as a user.
        let volumes_lock = self.volumes.lock.lock().await;
        let (mounts, new_volumes) = self.plan_mounts(&hc, &cfg).await?;
        let dir = self.container_dir(&id);
        let rec = ContainerRecord {
            id: id.clone(),
            name,
            created: chrono::Utc::now(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config: cfg,
            host_config: hc,
            image_name: image_ref,
            image_id: image.id.to_string(),
            state: State::default(),
            restart_count: 0,
            log_path: dir.join("container.log").to_string_lossy().into_owned(),
            log_max_size,
            log_max_files,
            network,
            mounts,
            transient_env: Vec::new(),
        };
        let handle = Handle::new(rec);
        if let Err(e) = self.containers.insert(handle.clone()) {
            self.forget_new_volumes(&new_volumes).await;
            return Err(e);
        }
        drop(volumes_lock);
        let made = async {
            for sub in ["upper", "work", "rootfs"] {
                tokio::fs::create_dir_all(dir.join(sub)).await?;
            }
            self.persist(&handle)
        }
        .await;
        if let Err(e) = made {
            self.containers.remove(&id);
            let _ = tokio::fs::remove_dir_all(&dir).await;
            let _g = self.volumes.lock.lock().await;
            self.forget_new_volumes(&new_volumes).await;
            return Err(e);
        }
        self.emit_container(&handle.snapshot(), "create", &[]);
        tracing::info!(container = %id, "created");
        Ok((id, Vec::new()))
    }
}

/// The container-config half of the create body (ContainerCreateBody flattens both halves).
fn to_container_config(b: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        hostname: b.hostname.clone(),
        domainname: b.domainname.clone(),
        user: b.user.clone(),
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        exposed_ports: b.exposed_ports.clone(),
        tty: b.tty,
        open_stdin: b.open_stdin,
        stdin_once: b.stdin_once,
        env: b.env.clone(),
        cmd: b.cmd.clone(),
        healthcheck: b.healthcheck.clone(),
        args_escaped: b.args_escaped,
        image: b.image.clone(),
        volumes: b.volumes.clone(),
        working_dir: b.working_dir.clone(),
        entrypoint: b.entrypoint.clone(),
        network_disabled: b.network_disabled,
        on_build: b.on_build.clone(),
        labels: b.labels.clone(),
        stop_signal: b.stop_signal.clone(),
        stop_timeout: b.stop_timeout,
        shell: b.shell.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("20MB"), Some(20 << 20));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn merge_follows_dockerd() {
        let image =
            json!({"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"WorkingDir":"/w","Labels":{"l":"i"}});
        let mut c = ContainerConfig {
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.env.unwrap(), vec!["PATH=/bin", "A=2"]);
        assert_eq!(c.cmd.unwrap(), vec!["sh"]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));

        // An explicit entrypoint drops the image's Cmd; [""] clears the entrypoint.
        let image = json!({"Entrypoint":["/e"],"Cmd":["x"]});
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["/mine".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.entrypoint.unwrap(), vec!["/mine"]);
        assert!(c.cmd.is_none());
        let mut c = ContainerConfig {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert!(c.entrypoint.is_none());
        assert_eq!(c.cmd.unwrap(), vec!["ls"]);
    }

    #[test]
    fn host_config_rules() {
        let mut hc = HostConfig {
            auto_remove: Some(true),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc).is_err());
        let mut hc = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc).is_err());
        let mut hc = HostConfig::default();
        let (size, files) = validate_host_config(&mut hc).unwrap();
        assert_eq!((size, files), (DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILES));
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
    }
}
