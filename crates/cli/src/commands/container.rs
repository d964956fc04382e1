//! Container commands: create, run, start, ps, logs, attach, wait, stop, kill, restart, rm, rename.

use crate::client::{anyhow_api, api_error_message, is_not_found, status};
use crate::commands::run_opts::{
    build_create, dns_warnings, familiar_with_tag, ContainerFlags, Ctx,
};
use crate::output::{self, Format};
use crate::stream::{self, isatty, RawTerminal, StreamEnd};
use anyhow::Result;
use bollard::query_parameters as qp;
use bollard::Docker;
use clap::{ArgAction, Args};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// docker's `toStatusError`: exit 127 / 126 / 125 depending on the message.
pub fn to_status_error(msg: &str, cmd: &str) -> anyhow::Error {
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") || msg.contains("is a directory") {
            126
        } else {
            125
        };
    status(
        code,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
}

fn ctx_for(f: &ContainerFlags) -> Ctx {
    Ctx {
        console_size: if f.tty && isatty(1) {
            stream::term_size(1)
        } else {
            None
        },
        lookup_env: None,
    }
}

/// Pulls an image for `run`/`create` with the stored credentials, drawing progress on stderr
/// (stdout belongs to the container), as the docker CLI does.
pub async fn pull_image(
    docker: &Docker,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<()> {
    use crate::commands::registry::{self, Sink};
    let r = registry::parse_reference(image)?.with_default_tag();
    let sink = if quiet { Sink::Discard } else { Sink::Stderr };
    registry::pull(docker, &r, false, platform, sink).await
}

/// `POST /containers/create`, pulling the image on a 404 as the docker CLI does.
async fn create_container(
    docker: &Docker,
    f: &ContainerFlags,
    cmd: &str,
) -> Result<(String, bollard::models::ContainerCreateBody)> {
    let (body, name) = build_create(f, &ctx_for(f), cmd == "run")
        .map_err(|e| to_status_error(&format!("{e:#}"), cmd))?;
    for w in dns_warnings(f) {
        eprintln!("{w}");
    }
    let image = f.args[0].clone();
    let opts = qp::CreateContainerOptions {
        name: name.clone(),
        platform: f.platform.clone().unwrap_or_default(),
    };
    let pull = f.pull.as_str();
    if !matches!(pull, "missing" | "never" | "always") {
        return Err(to_status_error(
            &format!("invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""),
            cmd,
        ));
    }
    // From here on docker's `createContainer`: `run` reports its errors as status errors
    // (125, with the usage hint), `create` prints them as they are and exits 1.
    let fail = |msg: String| {
        if cmd == "run" {
            to_status_error(&msg, cmd)
        } else {
            status(1, msg)
        }
    };
    let pull_failed = |e: anyhow::Error| fail(crate::client::error_message(&e));
    // Checked before anything is created, as docker's `newCIDFile` does.
    if let Some(path) = f
        .cidfile
        .as_deref()
        .filter(|p| std::path::Path::new(p).exists())
    {
        return Err(fail(format!(
            "container ID file found, make sure the other container isn't running or delete {path}"
        )));
    }
    if pull == "always" {
        pull_image(docker, &image, f.platform.as_deref(), f.quiet)
            .await
            .map_err(pull_failed)?;
    }
    let resp = match docker
        .create_container(Some(opts.clone()), body.clone())
        .await
    {
        Ok(r) => r,
        Err(e) if is_not_found(&e) && pull == "missing" && is_image_missing(&e) => {
            // Only the container ID goes to stdout; -q silences the rest.
            if !f.quiet {
                eprintln!(
                    "Unable to find image '{}' locally",
                    familiar_with_tag(&image)
                );
            }
            pull_image(docker, &image, f.platform.as_deref(), f.quiet)
                .await
                .map_err(pull_failed)?;
            docker
                .create_container(Some(opts), body.clone())
                .await
                .map_err(|e| fail(api_error_message(&e)))?
        }
        Err(e) => return Err(fail(api_error_message(&e))),
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(path) = &f.cidfile {
        std::fs::write(path, &resp.id)
            .map_err(|e| fail(format!("failed to write the container ID to the file: {e}")))?;
    }
    Ok((resp.id, body))
}

fn is_image_missing(e: &bollard::errors::Error) -> bool {
    // A 404 from create means the image is missing (a missing network is also 404, but it
    // says "network").
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            let m = message.to_ascii_lowercase();
            !m.contains("network")
        }
        _ => false,
    }
}

pub async fn cmd_create(docker: &Docker, f: ContainerFlags) -> Result<i32> {
    let (id, _) = create_container(docker, &f, "create").await?;
    println!("{id}");
    Ok(0)
}

/// Streams of one attached container, shared by run / start -a / attach.
struct AttachPlan {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    detach_keys: Option<String>,
    sig_proxy: bool,
}

async fn open_attach(
    docker: &Docker,
    id: &str,
    p: &AttachPlan,
) -> Result<bollard::container::AttachContainerResults> {
    let opts = qp::AttachContainerOptions {
        detach_keys: p.detach_keys.clone(),
        logs: false,
        stream: true,
        stdin: p.stdin,
        stdout: p.stdout,
        stderr: p.stderr,
    };
    docker
        .attach_container(id, Some(opts))
        .await
        .map_err(anyhow_api)
}

fn detach_bytes(keys: &Option<String>) -> Result<Vec<u8>> {
    stream::parse_detach_keys(keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))
        .map_err(|e| anyhow::anyhow!(e))
}

/// Streams an attached session until the output ends or the user detaches, keeping the
/// container's TTY size in step with ours and forwarding signals and stdin as `plan` says.
async fn run_session(
    docker: &Docker,
    id: &str,
    plan: &AttachPlan,
    attach: bollard::container::AttachContainerResults,
    detach_keys: Vec<u8>,
    raw: Option<RawTerminal>,
) -> Result<StreamEnd> {
    let resize = (plan.tty && isatty(1))
        .then(|| stream::monitor_tty_size(docker.clone(), id.to_string(), false));
    let sigs = plan
        .sig_proxy
        .then(|| stream::proxy_signals(docker.clone(), id.to_string()));
    let stdin_rx = plan.stdin.then(stream::spawn_stdin_reader);
    let end = stream::pump(attach, stdin_rx, detach_keys).await;
    for task in [resize, sigs].into_iter().flatten() {
        task.abort();
    }
    drop(raw);
    end
}

/// What a wait outcome means as an exit code (docker's `waitExitOrRemoved`).
async fn wait_status(h: tokio::task::JoinHandle<stream::WaitOutcome>) -> i32 {
    match h.await {
        Ok(Ok(code)) => code as i32,
        Ok(Err(msg)) => {
            eprintln!("Error waiting for container: {msg}");
            125
        }
        Err(_) => 125,
    }
}

pub async fn cmd_run(docker: &Docker, mut f: ContainerFlags) -> Result<i32> {
    f.detach_keys = f.detach_keys.or_else(crate::docker_config::detach_keys);
    let stdin_is_tty = isatty(0);
    if f.interactive
        && f.tty
        && !f.detach
        && !stdin_is_tty
        && (f.attach.is_empty() || f.attach.iter().any(|a| a.eq_ignore_ascii_case("stdin")))
    {
        return Err(status(1, "the input device is not a TTY"));
    }
    let detach_keys =
        detach_bytes(&f.detach_keys).map_err(|e| to_status_error(&e.to_string(), "run"))?;
    let (id, body) = create_container(docker, &f, "run").await?;
    let plan = AttachPlan {
        stdin: body.attach_stdin == Some(true),
        stdout: body.attach_stdout == Some(true),
        stderr: body.attach_stderr == Some(true),
        tty: f.tty,
        detach_keys: f.detach_keys.clone(),
        sig_proxy: f.sig_proxy && !f.tty,
    };
    let attached = plan.stdin || plan.stdout || plan.stderr;
    let mut attach = None;
    let mut raw = None;
    if attached {
        attach = Some(
            open_attach(docker, &id, &plan)
                .await
                .map_err(|e| to_status_error(&crate::client::error_message(&e), "run"))?,
        );
        if plan.tty && plan.stdin && stdin_is_tty {
            raw = Some(RawTerminal::enable());
        }
    }
    let condition = if f.rm { "removed" } else { "next-exit" };
    let waiter = stream::wait_registered(docker, &id, condition).await;
    let waiter = match waiter {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::debug!("wait: {e}");
            None
        }
    };
    let detached = !plan.stdout && !plan.stderr;
    if detached {
        println!("{id}");
    }
    if let Err(e) = docker
        .start_container(&id, None::<qp::StartContainerOptions>)
        .await
    {
        drop(attach);
        drop(raw);
        if f.rm {
            if let Some(w) = waiter {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), w).await;
            }
        }
        return Err(to_status_error(&api_error_message(&e), "run"));
    }
    if detached {
        return Ok(0);
    }
    let Some(attach) = attach.take() else {
        return Ok(0);
    };
    let end = run_session(docker, &id, &plan, attach, detach_keys, raw).await;
    match end {
        Ok(StreamEnd::Detached) => {
            return Ok(0);
        }
        Ok(StreamEnd::Done) => {}
        Err(e) => return Err(e),
    }
    Ok(match waiter {
        Some(w) => wait_status(w).await,
        None => {
            let i = docker
                .inspect_container(&id, None::<qp::InspectContainerOptions>)
                .await;
            i.ok()
                .and_then(|i| i.state)
                .and_then(|s| s.exit_code)
                .unwrap_or(125) as i32
        }
    })
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn cmd_start(docker: &Docker, mut a: StartArgs) -> Result<i32> {
    a.detach_keys = a.detach_keys.or_else(crate::docker_config::detach_keys);
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(status(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let c = docker
            .inspect_container(name, None::<qp::InspectContainerOptions>)
            .await
            .map_err(anyhow_api)?;
        let cfg = c.config.clone().unwrap_or_default();
        let id = c.id.clone().unwrap_or_else(|| name.clone());
        let tty = cfg.tty == Some(true);
        let plan = AttachPlan {
            stdin: a.interactive && cfg.open_stdin == Some(true),
            stdout: true,
            stderr: true,
            tty,
            detach_keys: a.detach_keys.clone(),
            sig_proxy: !tty,
        };
        let detach_keys = detach_bytes(&a.detach_keys)?;
        let attach = open_attach(docker, &id, &plan).await?;
        let raw = if plan.tty && plan.stdin && isatty(0) {
            Some(RawTerminal::enable())
        } else {
            None
        };
        let auto_remove = c.host_config.and_then(|h| h.auto_remove).unwrap_or(false);
        let waiter = stream::wait_registered(
            docker,
            &id,
            if auto_remove { "removed" } else { "next-exit" },
        )
        .await
        .ok();
        if let Err(e) = docker
            .start_container(&id, None::<qp::StartContainerOptions>)
            .await
        {
            drop(raw);
            return Err(anyhow_api(e));
        }
        let end = run_session(docker, &id, &plan, attach, detach_keys, raw).await;
        if end? == StreamEnd::Detached {
            return Ok(0);
        }
        return Ok(match waiter {
            Some(w) => wait_status(w).await,
            None => 0,
        });
    }
    let names = a.containers.clone();
    Ok(for_each(&names, |n| {
        let d = docker.clone();
        async move {
            d.start_container(&n, None::<qp::StartContainerOptions>)
                .await
        }
    })
    .await)
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

pub async fn cmd_attach(docker: &Docker, mut a: AttachArgs) -> Result<i32> {
    a.detach_keys = a.detach_keys.or_else(crate::docker_config::detach_keys);
    let c = docker
        .inspect_container(&a.container, None::<qp::InspectContainerOptions>)
        .await
        .map_err(anyhow_api)?;
    let st = c.state.clone().unwrap_or_default();
    if st.running != Some(true) {
        return Err(status(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if st.paused == Some(true) {
        return Err(status(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if st.restarting == Some(true) {
        return Err(status(
            1,
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    let cfg = c.config.clone().unwrap_or_default();
    let id = c.id.clone().unwrap_or_else(|| a.container.clone());
    let tty = cfg.tty == Some(true);
    let plan = AttachPlan {
        stdin: !a.no_stdin && cfg.open_stdin == Some(true),
        stdout: true,
        stderr: true,
        tty,
        detach_keys: a.detach_keys.clone(),
        sig_proxy: a.sig_proxy && !tty,
    };
    if plan.tty && plan.stdin && !isatty(0) {
        return Err(status(1, "the input device is not a TTY"));
    }
    let detach_keys = detach_bytes(&a.detach_keys)?;
    let waiter = stream::wait_registered(docker, &id, "not-running")
        .await
        .ok();
    let attach = open_attach(docker, &id, &plan).await?;
    let raw = if plan.tty && plan.stdin && isatty(0) {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let end = run_session(docker, &id, &plan, attach, detach_keys, raw).await;
    if end? == StreamEnd::Detached {
        // docker attach reports the detach as its error (run and start -a exit 0).
        return Err(status(1, "read escape sequence"));
    }
    Ok(match waiter {
        Some(w) => wait_status(w).await,
        None => 0,
    })
}

// ---------- ps ----------

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i32,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub fn parse_filters(f: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for x in f {
        let (k, v) = x
            .split_once('=')
            .ok_or_else(|| status(125, format!("invalid argument \"{x}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)")))?;
        m.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(m)
}

fn labels_string(l: &Value) -> String {
    let mut v: Vec<String> = match l {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect(),
        _ => vec![],
    };
    v.sort();
    v.join(",")
}

/// The docker CLI's container "context" for `ps --format`.
pub fn ps_context(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str())
                .map(|n| n.trim_start_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = if trunc {
        names.into_iter().filter(|n| !n.contains('/')).collect()
    } else {
        names
    };
    let mut image = c["Image"].as_str().unwrap_or("").to_string();
    if trunc
        && (image.starts_with("sha256:")
            || (image.len() == 64 && image.chars().all(|x| x.is_ascii_hexdigit())))
    {
        image = output::short_id(&image);
    }
    let mut command = c["Command"].as_str().unwrap_or("").to_string();
    if trunc {
        command = output::ellipsis(&command, 20);
    }
    let created = c["Created"].as_i64().unwrap_or(0);
    let size = match (c["SizeRw"].as_i64(), c["SizeRootFs"].as_i64()) {
        (rw, Some(v)) if v > 0 => format!(
            "{} (virtual {})",
            output::human_size(rw.unwrap_or(0) as f64),
            output::human_size(v as f64)
        ),
        (rw, _) => output::human_size(rw.unwrap_or(0) as f64),
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = m["Name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .or(m["Source"].as_str())
                        .unwrap_or("");
                    if trunc {
                        output::ellipsis(name, 15)
                    } else {
                        name.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let local_volumes = c["Mounts"]
        .as_array()
        .map(|a| a.iter().filter(|m| m["Driver"] == "local").count())
        .unwrap_or(0);
    json!({
        "Command": output::go_quote(&command),
        "CreatedAt": output::go_time_string(created),
        "ID": if trunc { output::short_id(id) } else { id.to_string() },
        "Image": image,
        "Labels": labels_string(&c["Labels"]),
        "LocalVolumes": local_volumes.to_string(),
        "Mounts": mounts.join(","),
        "Names": names.join(","),
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "Ports": crate::commands::network::displayable_ports(&c["Ports"]),
        "RunningFor": output::time_ago(created),
        "Size": size,
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
    })
}

fn ps_headers() -> Value {
    json!({
        "Command": "COMMAND", "CreatedAt": "CREATED AT", "ID": "CONTAINER ID", "Image": "IMAGE",
        "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES", "Mounts": "MOUNTS", "Names": "NAMES",
        "Networks": "NETWORKS", "Ports": "PORTS", "RunningFor": "CREATED", "Size": "SIZE",
        "State": "STATE", "Status": "STATUS", "Platform": "PLATFORM",
    })
}

pub async fn cmd_ps(docker: &Docker, a: PsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    let mut limit = a.last;
    if a.latest {
        limit = 1;
    }
    let size = a.size
        || a.format
            .as_deref()
            .map(|f| f.contains(".Size"))
            .unwrap_or(false);
    let opts = qp::ListContainersOptions {
        all: a.all || limit > 0,
        limit: if limit > 0 { Some(limit) } else { None },
        size,
        filters: if filters.is_empty() {
            None
        } else {
            Some(filters)
        },
    };
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(anyhow_api)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| ps_context(&serde_json::to_value(c).unwrap_or(Value::Null), !a.no_trunc))
        .collect();
    let mut default =
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
            .to_string();
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    let format = if a.quiet {
        if a.format.is_some() {
            eprintln!(
                "WARNING: Ignoring custom format, because both --format and --quiet are set."
            );
        }
        Format::Raw("{{.ID}}".into())
    } else {
        Format::parse(a.format.as_deref(), &default)
    };
    output::print_out(&output::render_list(&format, &rows, &ps_headers())?);
    Ok(0)
}

// ---------- logs ----------

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// A Go duration ("1h30m", "10m", "2.5s") in seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    berth_units::parse_go_duration_ns(s).map(|ns| ns as f64 / 1e9)
}

/// docker's `timetypes.GetTimestamp`, in Unix seconds.
pub fn parse_timestamp(value: &str, now: i64) -> Result<i64> {
    let now = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    berth_units::parse_timestamp(value, now)
        .map(|t| t.timestamp())
        .ok_or_else(|| anyhow::anyhow!("failed to parse value as time or duration: \"{value}\""))
}

pub async fn cmd_logs(docker: &Docker, a: LogsArgs) -> Result<i32> {
    let c = docker
        .inspect_container(&a.container, None::<qp::InspectContainerOptions>)
        .await
        .map_err(anyhow_api)?;
    let id = c.id.clone().unwrap_or_else(|| a.container.clone());
    let now = chrono::Utc::now().timestamp();
    let since = a
        .since
        .as_deref()
        .map(|s| parse_timestamp(s, now))
        .transpose()?
        .unwrap_or(0);
    let until = a
        .until
        .as_deref()
        .map(|s| parse_timestamp(s, now))
        .transpose()?
        .unwrap_or(0);
    let opts = qp::LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        since: since as i32,
        until: until as i32,
        timestamps: a.timestamps,
        tail: a.tail.clone(),
    };
    let _ = a.details;
    let mut s = docker.logs(&id, Some(opts));
    while let Some(item) = s.next().await {
        match item {
            Ok(bollard::container::LogOutput::StdErr { message }) => {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(&message);
                let _ = e.flush();
            }
            Ok(other) => {
                let mut o = std::io::stdout().lock();
                if o.write_all(&other.into_bytes()).is_err() {
                    return Ok(0);
                }
                let _ = o.flush();
            }
            Err(e) => return Err(anyhow_api(e)),
        }
    }
    Ok(0)
}

// ---------- wait / stop / kill / restart / rm / rename ----------

#[derive(Args, Debug)]
pub struct MultiArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn cmd_wait(docker: &Docker, a: MultiArgs) -> Result<i32> {
    let mut failed = false;
    for c in &a.containers {
        let opts = qp::WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut s = docker.wait_container(c, Some(opts));
        match s.next().await {
            Some(Ok(r)) => println!("{}", r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                println!("{code}")
            }
            Some(Err(e)) => {
                eprintln!("{}", api_error_message(&e));
                failed = true;
            }
            None => {
                eprintln!("unexpected EOF");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i32>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn with_stop_timeout(docker: &Docker, t: Option<i32>) -> Docker {
    let secs = match t {
        Some(t) if t < 0 => 365 * 86400,
        Some(t) => t as u64 + 120,
        None => 600,
    };
    docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(secs))
}

async fn for_each<F, Fut>(names: &[String], f: F) -> i32
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    // The docker CLI runs these in parallel and prints in argument order.
    let results = futures_util::future::join_all(names.iter().map(|n| f(n.clone()))).await;
    let mut failed = false;
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", api_error_message(&e));
                failed = true;
            }
        }
    }
    if failed {
        1
    } else {
        0
    }
}

pub async fn cmd_stop(docker: &Docker, a: StopArgs) -> Result<i32> {
    let d = with_stop_timeout(docker, a.timeout);
    let (sig, t) = (a.signal.clone(), a.timeout);
    Ok(for_each(&a.containers, |n| {
        let d = d.clone();
        let opts = qp::StopContainerOptions {
            signal: sig.clone(),
            t,
        };
        async move { d.stop_container(&n, Some(opts)).await }
    })
    .await)
}

pub async fn cmd_restart(docker: &Docker, a: StopArgs) -> Result<i32> {
    let d = with_stop_timeout(docker, a.timeout);
    let (sig, t) = (a.signal.clone(), a.timeout);
    Ok(for_each(&a.containers, |n| {
        let d = d.clone();
        let opts = qp::RestartContainerOptions {
            signal: sig.clone(),
            t,
        };
        async move { d.restart_container(&n, Some(opts)).await }
    })
    .await)
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn cmd_kill(docker: &Docker, a: KillArgs) -> Result<i32> {
    let sig = a.signal.clone();
    Ok(for_each(&a.containers, |n| {
        let d = docker.clone();
        let opts = sig.clone().map(|s| qp::KillContainerOptions { signal: s });
        async move { d.kill_container(&n, opts).await }
    })
    .await)
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub async fn cmd_rm(docker: &Docker, a: RmArgs) -> Result<i32> {
    let opts = qp::RemoveContainerOptions {
        v: a.volumes,
        force: a.force,
        link: a.link,
    };
    let names: Vec<String> = a
        .containers
        .iter()
        .map(|c| c.trim_matches('/').to_string())
        .collect();
    let d = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(600));
    Ok(for_each(&names, |n| {
        let d = d.clone();
        let opts = opts.clone();
        async move { d.remove_container(&n, Some(opts)).await }
    })
    .await)
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub async fn cmd_rename(docker: &Docker, a: RenameArgs) -> Result<i32> {
    let new = a.new_name.trim().to_string();
    if new.is_empty() || new.trim_start_matches('/').is_empty() {
        return Err(status(1, "Error: neither old nor new names may be empty"));
    }
    docker
        .rename_container(&a.container, qp::RenameContainerOptions { name: new })
        .await
        .map_err(|e| {
            status(
                1,
                format!(
                    "{}\nError: failed to rename container named {}",
                    api_error_message(&e),
                    a.container
                ),
            )
        })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let e = to_status_error(
            "Error response from daemon: exec: \"nope\": executable file not found in $PATH",
            "run",
        );
        assert_eq!(crate::client::exit_code_of(&e), 127);
        let e = to_status_error("Error response from daemon: permission denied", "run");
        assert_eq!(crate::client::exit_code_of(&e), 126);
        let e = to_status_error("Error response from daemon: boom", "run");
        assert_eq!(crate::client::exit_code_of(&e), 125);
        assert!(
            crate::client::error_message(&e).starts_with("berth: Error response from daemon: boom")
        );
    }

    #[test]
    fn ps_context_formatting() {
        let now = chrono::Utc::now().timestamp();
        let c = json!({
            "Id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Names": ["/web"], "Image": "busybox", "Command": "sleep 1000000000000000",
            "Created": now - 5, "State": "running", "Status": "Up 5 seconds",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                      {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                      {"PrivatePort": 443, "Type": "tcp"}],
            "Labels": {"b": "2", "a": "1"},
        });
        let ctx = ps_context(&c, true);
        assert_eq!(ctx["ID"], "0123456789ab");
        assert_eq!(ctx["Command"], "\"sleep 1000000000000…\"");
        assert_eq!(ctx["Names"], "web");
        assert_eq!(ctx["RunningFor"], "5 seconds ago");
        assert_eq!(ctx["Labels"], "a=1,b=2");
        assert_eq!(
            ctx["Ports"],
            "443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        let out = output::render_list(
            &Format::parse(None, "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"),
            &[ctx],
            &ps_headers(),
        )
        .unwrap();
        let mut lines = out.lines();
        assert!(lines.next().unwrap().starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS"));
        assert!(lines.next().unwrap().starts_with(
            "0123456789ab   busybox   \"sleep 1000000000000…\"   5 seconds ago   Up 5 seconds   "
        ));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("10m", 1000).unwrap(), 400);
        assert_eq!(parse_timestamp("1h30m", 10000).unwrap(), 10000 - 5400);
        assert_eq!(
            parse_timestamp("2013-01-02T13:23:37Z", 0).unwrap(),
            1357133017
        );
        assert_eq!(parse_timestamp("1700000000", 0).unwrap(), 1700000000);
        assert_eq!(parse_timestamp("1700000000.5", 0).unwrap(), 1700000000);
        assert!(parse_timestamp("yesterday", 0).is_err());
    }

    #[test]
    fn filters() {
        let f = parse_filters(&[
            "status=exited".into(),
            "label=a=b".into(),
            "status=created".into(),
        ])
        .unwrap();
        assert_eq!(f["status"], vec!["exited", "created"]);
        assert_eq!(f["label"], vec!["a=b"]);
        assert!(parse_filters(&["bad".into()]).is_err());
    }
}
