//! `berth build` (also `image build`, `builder build`) as `DOCKER_BUILDKIT=0 docker build`,
//! and `berth builder prune`.
//!
//! The context is prepared as the docker CLI's legacy path does (see [`context`]), sent as a
//! streamed tar to `POST /build` with the query docker sends (see [`query`]), and the JSON
//! stream is printed as docker prints it. Docker's "legacy builder is deprecated" warning is
//! not printed: this is Berth's builder, not a legacy one. Two additions of our own: build
//! secrets (`--secret`, see [`secrets`]), and on a terminal each step's elapsed time.

mod context;
pub(crate) mod query;
mod secrets;

use crate::client::{anyhow_api, status};
use crate::commands::container::parse_filters;
use crate::output::human_size_prec;
use crate::stream::isatty;
use anyhow::{anyhow, Result};
use bollard::query_parameters as qp;
use bollard::Docker;
use bytes::Bytes;
use clap::{ArgAction, Args};
use context::{Prepared, Source};
use futures_util::StreamExt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Args, Debug, Default)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", action = ArgAction::Append)]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", action = ArgAction::Append)]
    pub build_arg: Vec<String>,
    /// Set metadata for an image
    #[arg(long, action = ArgAction::Append)]
    pub label: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub pull: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub force_rm: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host", action = ArgAction::Append)]
    pub add_host: Vec<String>,
    /// Size of "/dev/shm"
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", default_value_t = 0)]
    pub cpu_shares: i64,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", default_value_t = 0)]
    pub cpu_period: i64,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", default_value_t = 0)]
    pub cpu_quota: i64,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Set the parent cgroup for the "RUN" instructions during build
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Container isolation technology
    #[arg(long)]
    pub isolation: Option<String>,
    /// Security options
    #[arg(long = "security-opt", action = ArgAction::Append)]
    pub security_opt: Vec<String>,
    /// Squash newly built layers into a single new layer
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true")]
    pub squash: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", action = ArgAction::Append)]
    pub cache_from: Vec<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")
    #[arg(long, action = ArgAction::Append)]
    pub secret: Vec<String>,
    /// Skip image verification (content trust is not implemented; accepted for scripts)
    #[arg(long = "disable-content-trust", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true")]
    pub disable_content_trust: bool,
    /// PATH | URL | -
    #[arg(value_name = "PATH | URL | -")]
    pub context: String,
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// A flag error as the docker CLI reports it: exit status 125 and the usage hint.
pub(crate) fn usage_error(msg: &str) -> anyhow::Error {
    status(
        125,
        format!("{msg}\n\nUsage:  berth build [OPTIONS] PATH | URL | -\n\nRun 'berth build --help' for more information"),
    )
}

/// Where the build's output goes: stdout, or with `-q` two buffers as docker keeps them, the
/// upload progress and the daemon's output; both are printed to stderr when the build fails,
/// and on success the daemon's (then just the image ID) is printed.
struct Out {
    quiet: bool,
    progress: Mutex<String>,
    build: Mutex<String>,
}

impl Out {
    fn new(quiet: bool) -> Out {
        Out {
            quiet,
            progress: Mutex::new(String::new()),
            build: Mutex::new(String::new()),
        }
    }

    fn write_to(&self, buf: &Mutex<String>, s: &str) {
        if self.quiet {
            if let Ok(mut b) = buf.lock() {
                b.push_str(s);
            }
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    fn progress(&self, s: &str) {
        self.write_to(&self.progress, s);
    }

    fn build(&self, s: &str) {
        self.write_to(&self.build, s);
    }

    fn take(buf: &Mutex<String>) -> String {
        buf.lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }

    /// With `-q`, what was held back, for the report of a failure.
    fn held(&self) -> String {
        Self::take(&self.progress) + &Self::take(&self.build)
    }
}

/// docker's upload progress line once the whole context is sent (not a terminal's live
/// updates), with its padding and line ending.
fn sending_line(bytes: u64) -> String {
    format!(
        "Sending build context to Docker daemon {:>8}\r\r\n",
        human_size_prec(bytes as f64, 4)
    )
}

type Chunk = std::result::Result<Bytes, std::io::Error>;

/// An `io::Write` that hands 64 KiB chunks to the request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    sent: Arc<AtomicU64>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        let n = chunk.len() as u64;
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "request closed"))?;
        self.sent.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

/// The request body: the context produced on a blocking thread, and the line docker prints
/// when it is all sent. A failure to read the context is kept in `failed` for the report.
fn body_stream(
    source: Source,
    out: Arc<Out>,
    failed: Arc<Mutex<Option<String>>>,
) -> impl futures_util::Stream<Item = Chunk> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let sent = Arc::new(AtomicU64::new(0));
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        sent: sent.clone(),
    };
    std::thread::spawn(move || {
        let result = produce(source, writer);
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                if let Ok(mut f) = failed.lock() {
                    *f = Some(e.to_string());
                }
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    futures_util::stream::unfold((rx, Some(out), sent), |(mut rx, out, sent)| async move {
        match rx.recv().await {
            Some(item) => Some((item, (rx, out, sent))),
            None => {
                if let Some(o) = out {
                    o.progress(&sending_line(sent.load(Ordering::Relaxed)));
                }
                None
            }
        }
    })
}

fn produce(source: Source, mut w: ChannelWriter) -> std::io::Result<()> {
    match source {
        Source::Dir(ctx) => {
            w = ctx.write_tar(w)?;
        }
        Source::StdinArchive { head } => {
            w.write_all(&head)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
        }
        Source::Memory(bytes) => w.write_all(&bytes)?,
        Source::Remote(_) => {}
        Source::Partial(ctx, need) => {
            w = ctx.write_tar_of(w, &need)?;
        }
    }
    w.flush()
}

/// The exit status docker uses for a failed build: the failing RUN's (the daemon's JSON
/// error carries it as `code`, which bollard drops; the classic builder's message for it,
/// "The command '…' returned a non-zero code: N", is the only one with a code), else 1.
fn exit_code_of_message(msg: &str) -> i32 {
    const MARK: &str = "returned a non-zero code: ";
    msg.rfind(MARK)
        .map(|i| &msg[i + MARK.len()..])
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or("")
        })
        .and_then(|n| n.parse::<i32>().ok())
        .filter(|n| *n != 0)
        .unwrap_or(1)
}

/// On a terminal, each step's elapsed time, printed when the next step starts or the build
/// ends (the "steps with live output and timings"); docker prints none.
#[derive(Default)]
struct StepTimer {
    started: Option<std::time::Instant>,
}

impl StepTimer {
    /// The line to print before `text`: the previous step's time when `text` starts a step.
    fn before(&mut self, text: &str) -> Option<String> {
        if !is_step_line(text) {
            return None;
        }
        let done = self.finish();
        self.started = Some(std::time::Instant::now());
        done
    }

    /// The running step's time, once.
    fn finish(&mut self) -> Option<String> {
        self.started.take().map(|t| step_time_line(t.elapsed()))
    }
}

/// The legacy builder's `Step N/M : …` line.
fn is_step_line(text: &str) -> bool {
    let Some((counts, _)) = text.strip_prefix("Step ").and_then(|r| r.split_once(" : ")) else {
        return false;
    };
    counts.split_once('/').is_some_and(|(n, m)| {
        [n, m]
            .iter()
            .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// In the style of the builder's own step lines (` ---> <id>`).
fn step_time_line(d: std::time::Duration) -> String {
    format!(" ---> Done in {:.1}s\n", d.as_secs_f64())
}

/// One non-error message of the stream, as jsonmessage.Display prints it on a non-terminal.
fn display(info: &bollard::models::BuildInfo) -> Option<String> {
    if let Some(s) = &info.stream {
        return Some(s.clone());
    }
    // Progress bars are not shown when the output is not a terminal.
    if info
        .progress_detail
        .as_ref()
        .is_some_and(|p| p.current.is_some() || p.total.is_some())
    {
        return None;
    }
    let status = info.status.as_deref()?;
    Some(match info.id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => format!("{id}: {status}\n"),
        None => format!("{status}\n"),
    })
}

/// A Berth daemon found its kept copy of the context changed under this build (another build
/// of the same directory, or damage): it dropped the copy, and the build starts over once,
/// comparing against nothing, so everything is sent and kept again.
#[derive(Debug)]
struct KeptContextChanged;

impl std::fmt::Display for KeptContextChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the daemon's copy of the build context changed during the build")
    }
}

impl std::error::Error for KeptContextChanged {}

pub async fn cmd_build(docker: &Docker, a: BuildArgs) -> Result<i32> {
    // BERTH_BUILD_SYNC=0 sends the whole context every time, as the docker CLI does.
    let sync = std::env::var("BERTH_BUILD_SYNC").map_or(true, |v| v != "0");
    match build_once(docker, &a, sync).await {
        Err(e) if e.downcast_ref::<KeptContextChanged>().is_some() => {
            build_once(docker, &a, true).await
        }
        r => r,
    }
}

/// Asks a Berth daemon which paths of the context it lacks (`POST /build/context`): the
/// session and the paths, or None when the daemon cannot keep contexts (dockerd) and the
/// whole context is sent.
async fn compare_context(
    docker: &Docker,
    ctx: &context::DirContext,
) -> Result<Option<(String, std::collections::HashSet<String>)>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        session: String,
        need: Vec<String>,
    }
    let manifest = ctx.manifest()?;
    let body = serde_json::to_vec(&serde_json::json!({ "entries": manifest }))?;
    let key = ctx.root().to_string_lossy().into_owned();
    let path = format!(
        "/build/context?{}",
        query::encode(&[("key", vec![key])].into_iter().collect())
    );
    match crate::client::raw_post_json(docker, &path, &body).await? {
        Some((200, b)) => {
            let a: Answer = serde_json::from_slice(&b)?;
            Ok(Some((a.session, a.need.into_iter().collect())))
        }
        _ => Ok(None),
    }
}

async fn build_once(docker: &Docker, a: &BuildArgs, sync: bool) -> Result<i32> {
    if let Some(f) = &a.iidfile {
        // No stale ID is left behind when this build fails.
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("Removing image ID file: {e}")),
        }
    }
    let dockerfile = a.file.clone().unwrap_or_default();
    let spec = a.context.clone();
    let Prepared { source, dockerfile } = tokio::task::spawn_blocking(move || {
        context::prepare(&spec, &dockerfile, &mut std::io::stdin().lock())
    })
    .await??;
    let remote = match &source {
        Source::Remote(url) => Some(url.clone()),
        _ => None,
    };
    let mut session = None;
    let source = match source {
        Source::Dir(ctx) if sync && ctx.can_sync() => match compare_context(docker, &ctx).await? {
            Some((s, need)) => {
                session = Some(s);
                Source::Partial(ctx, need)
            }
            None => Source::Dir(ctx),
        },
        s => s,
    };
    let mut pairs =
        query::build_query(a, &dockerfile, remote.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(s) = &session {
        pairs.insert("berthsession", vec![s.clone()]);
    }
    let query = query::encode(&pairs);
    let secrets = secrets::header_value(&secrets::load(&a.secret, |k| {
        std::env::var_os(k).map(std::os::unix::ffi::OsStringExt::into_vec)
    })?)?;
    // As docker's legacy builder: every stored credential, so the daemon can pull bases
    // from private registries.
    let registry_config = match crate::credentials::ConfigFile::load_default().all() {
        Ok(all) => crate::credentials::registry_config_header(&all),
        Err(e) => {
            tracing::debug!("registry credentials for the build: {e}");
            "e30=".to_string()
        }
    };
    let out = Arc::new(Out::new(a.quiet));
    let failed = Arc::new(Mutex::new(None));
    let body = if remote.is_some() {
        bollard::body_full(Bytes::new())
    } else {
        bollard::body_try_stream(body_stream(source, out.clone(), failed.clone()))
    };
    let d = docker
        .clone()
        .with_timeout(std::time::Duration::from_secs(24 * 3600))
        .with_request_modifier(move |mut req| {
            let uri = query::with_query(&req.uri().to_string(), &query);
            if let Ok(u) = uri.parse() {
                *req.uri_mut() = u;
            }
            // As docker: a tar body, and the stored registry credentials.
            let headers = req.headers_mut();
            if let Ok(v) = "application/x-tar".parse() {
                headers.insert("content-type", v);
            }
            if let Ok(mut v) = hyper::header::HeaderValue::from_str(&registry_config) {
                v.set_sensitive(true);
                headers.insert("x-registry-config", v);
            }
            if let Some(Ok(v)) = secrets.as_deref().map(str::parse) {
                headers.insert(secrets::HEADER, v);
                if let Some(v) = headers.get_mut(secrets::HEADER) {
                    v.set_sensitive(true);
                }
            }
            req
        });
    let opts = qp::BuildImageOptions {
        dockerfile,
        version: qp::BuilderVersion::BuilderV1,
        ..Default::default()
    };
    let mut image_id = String::new();
    // As pull and load decide: nothing extra when the output is not a terminal.
    let mut timer = (!a.quiet && isatty(1)).then(StepTimer::default);
    let finish_step = |timer: &mut Option<StepTimer>| {
        if let Some(line) = timer.as_mut().and_then(StepTimer::finish) {
            out.build(&line);
        }
    };
    let mut stream = d.build_image(opts, None, Some(body));
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(e) => {
                if session.is_some() && crate::client::http_status(&e) == Some(409) {
                    return Err(KeptContextChanged.into());
                }
                finish_step(&mut timer);
                if a.quiet {
                    eprint!("{}", out.held());
                }
                return Err(build_error(e, &failed));
            }
        };
        if let Some(id) = info.aux.as_ref().and_then(|x| x.id.clone()) {
            finish_step(&mut timer);
            image_id = id;
            continue;
        }
        if let Some(text) = display(&info) {
            if let Some(line) = timer.as_mut().and_then(|t| t.before(&text)) {
                out.build(&line);
            }
            out.build(&text);
        }
    }
    finish_step(&mut timer);
    if a.quiet {
        // With `q=1` the daemon's only output is the image ID.
        image_id = Out::take(&out.build);
        print!("{image_id}");
        let _ = std::io::stdout().flush();
    }
    if let Some(f) = &a.iidfile {
        if image_id.is_empty() {
            return Err(anyhow!(
                "Server did not provide an image ID. Cannot write {f}"
            ));
        }
        std::fs::write(f, &image_id)?;
    }
    Ok(0)
}

fn build_error(e: bollard::errors::Error, failed: &Mutex<Option<String>>) -> anyhow::Error {
    if let bollard::errors::Error::DockerStreamError { error } = &e {
        return status(exit_code_of_message(error), error.clone());
    }
    // A context that could not be read aborts the upload; that is the error to show.
    if let Some(msg) = failed.lock().ok().and_then(|mut f| f.take()) {
        return anyhow!("error checking context: {msg}");
    }
    anyhow_api(e)
}

const PRUNE_WARNING: &str =
    "WARNING! This will remove all dangling build cache. Are you sure you want to continue?";
const PRUNE_ALL_WARNING: &str =
    "WARNING! This will remove all build cache. Are you sure you want to continue?";

/// docker's prompt.Confirm: the question and "[y/N]" on one line; yes only for "y"/"Y".
fn confirm_line(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    matches!(line.trim(), "y" | "Y")
}

/// The text docker prints for a build cache prune report (empty when nothing went).
fn prune_report(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let mut s = String::from("Deleted build cache objects:\n");
    for id in ids {
        s.push_str(id);
        s.push('\n');
    }
    s
}

pub async fn cmd_builder_prune(docker: &Docker, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        PRUNE_ALL_WARNING
    } else {
        PRUNE_WARNING
    };
    // A declined prompt is a cancellation, which docker reports with status 0 and no text.
    if !a.force && !confirm_line(warning) {
        return Ok(0);
    }
    let filters = parse_filters(&a.filter)?;
    let r = docker
        .prune_build(Some(qp::PruneBuildOptions {
            all: a.all.then_some(true),
            filters: (!filters.is_empty()).then_some(filters),
            ..Default::default()
        }))
        .await
        .map_err(anyhow_api)?;
    let text = prune_report(&r.caches_deleted.unwrap_or_default());
    if !text.is_empty() {
        println!("{text}");
    }
    println!(
        "Total reclaimed space: {}",
        human_size_prec(r.space_reclaimed.unwrap_or(0) as f64, 4)
    );
    Ok(0)
}

#[cfg(test)]
mod tests;
