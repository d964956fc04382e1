//! Connecting to the daemon: host selection, version negotiation, starting the daemon on
//! demand, and docker's error wording.

use anyhow::{anyhow, Result};
use bollard::Docker;
use std::time::{Duration, Instant};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
pub const DAEMON_LOG: &str = "/run/berth/daemon.log";

/// An error whose text is printed as is (already in docker's wording) with an exit code.
#[derive(Debug)]
pub struct StatusError {
    pub status: String,
    pub code: i32,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status)
    }
}
impl std::error::Error for StatusError {}

pub fn status(code: i32, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(StatusError {
        status: msg.into(),
        code,
    })
}

/// The host we talk to and whether the user chose it.
#[derive(Debug, Clone)]
pub struct HostChoice {
    pub host: String,
    pub explicit: bool,
}

pub fn choose_host(flag: Option<&str>) -> HostChoice {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return HostChoice {
            host: normalize_host(h),
            explicit: true,
        };
    }
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        if !h.is_empty() {
            return HostChoice {
                host: normalize_host(&h),
                explicit: true,
            };
        }
    }
    // BERTH_DEFAULT_HOST moves the default socket (and the daemon the CLI starts) elsewhere,
    // so tests and side-by-side installs never touch /run/berth.
    let host = std::env::var("BERTH_DEFAULT_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .map(|h| normalize_host(&h))
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    HostChoice {
        host,
        explicit: false,
    }
}

fn normalize_host(h: &str) -> String {
    if h.starts_with('/') {
        format!("unix://{h}")
    } else {
        h.to_string()
    }
}

thread_local! {
    static CURRENT_HOST: std::cell::RefCell<String> = std::cell::RefCell::new(DEFAULT_HOST.to_string());
}

pub fn current_host() -> String {
    CURRENT_HOST.with(|h| h.borrow().clone())
}

pub fn cannot_connect(host: &str) -> String {
    format!("Cannot connect to the Berth daemon at {host}. Is the berth daemon running?")
}

fn raw_connect(host: &str) -> Result<Docker, bollard::errors::Error> {
    if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_unix(host, 120, bollard::API_DEFAULT_VERSION)
    }
}

async fn try_ping(host: &str) -> bool {
    match raw_connect(host) {
        Ok(d) => matches!(
            tokio::time::timeout(Duration::from_secs(5), d.ping()).await,
            Ok(Ok(_))
        ),
        Err(_) => false,
    }
}

/// Connects (starting the daemon when no host was chosen explicitly and none answers),
/// then negotiates the API version.
pub async fn connect(choice: &HostChoice) -> Result<Docker> {
    CURRENT_HOST.with(|h| *h.borrow_mut() = choice.host.clone());
    if !try_ping(&choice.host).await {
        if choice.explicit {
            return Err(status(1, cannot_connect(&choice.host)));
        }
        start_daemon(&choice.host).map_err(|e| {
            status(
                1,
                format!(
                    "{}\nfailed to start the daemon: {e}",
                    cannot_connect(&choice.host)
                ),
            )
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if try_ping(&choice.host).await {
                break;
            }
            if Instant::now() > deadline {
                return Err(status(
                    1,
                    format!(
                        "{} (the daemon did not answer; see {DAEMON_LOG})",
                        cannot_connect(&choice.host)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let docker = raw_connect(&choice.host).map_err(|_| status(1, cannot_connect(&choice.host)))?;
    match docker.clone().negotiate_version().await {
        Ok(d) => Ok(d),
        Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
            Err(status(1, format!("Error response from daemon: {message}")))
        }
        // An unparsable version: keep our default.
        Err(bollard::errors::Error::APIVersionParseError {}) => Ok(docker),
        Err(_) => Err(status(1, cannot_connect(&choice.host))),
    }
}

/// Spawns `<current exe> daemon` detached, its output appended to the daemon log.
/// `BERTH_DAEMON_ARGS` adds daemon flags (e.g. `--data-root …`), split at whitespace.
fn start_daemon(host: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all("/run/berth")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(DAEMON_LOG)?;
    let log2 = log.try_clone()?;
    let extra = std::env::var("BERTH_DAEMON_ARGS").unwrap_or_default();
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .args(["-H", host])
        .args(extra.split_whitespace())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // The daemon outlives us; do not leave a zombie if it dies while we wait.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(())
}

/// docker's wording for an error from the API client.
pub fn api_error_message(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        E::DockerStreamError { error } => error.clone(),
        E::DockerContainerWaitError { error, code } => {
            if error.is_empty() {
                format!("container exited with code {code}")
            } else {
                error.clone()
            }
        }
        E::RequestTimeoutError => "context deadline exceeded".into(),
        E::SocketNotFoundError(_) | E::HyperResponseError { .. } | E::IOError { .. } => {
            cannot_connect(&current_host())
        }
        other => other.to_string(),
    }
}

/// Formats any error the way the docker CLI prints it.
pub fn error_message(e: &anyhow::Error) -> String {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        return s.status.clone();
    }
    if let Some(b) = e.downcast_ref::<bollard::errors::Error>() {
        return api_error_message(b);
    }
    format!("{e:#}")
}

pub fn exit_code_of(e: &anyhow::Error) -> i32 {
    e.downcast_ref::<StatusError>().map(|s| s.code).unwrap_or(1)
}

/// The HTTP status of an API error, if it is one.
pub fn http_status(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    http_status(e) == Some(404)
}

pub fn anyhow_api(e: bollard::errors::Error) -> anyhow::Error {
    anyhow!(api_error_message(&e))
}

/// `GET <path>` on the daemon, returning the status and the raw body. Used where the exact
/// bytes matter (inspect prints the daemon's JSON with its key order, as docker does);
/// `None` when the host is not a UNIX socket.
pub async fn raw_get(docker: &Docker, path: &str) -> Result<Option<(u16, Vec<u8>)>> {
    raw_request(docker, "GET", path, None).await
}

/// A request with a JSON body to an endpoint bollard does not know (Berth's own); `None`
/// when the host is not a UNIX socket.
pub async fn raw_post_json(
    docker: &Docker,
    path: &str,
    body: &[u8],
) -> Result<Option<(u16, Vec<u8>)>> {
    raw_request(docker, "POST", path, Some(body)).await
}

async fn raw_request(
    docker: &Docker,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Option<(u16, Vec<u8>)>> {
    if !current_host().starts_with("unix://") {
        return Ok(None);
    }
    let headers: &[(&str, String)] = match body {
        Some(_) => &[("content-type", "application/json".to_string())],
        None => &[],
    };
    let resp = send(docker, method, path, headers, body.map(<[u8]>::to_vec)).await?;
    let code = resp.status().as_u16();
    Ok(Some((code, collect_body(resp).await?)))
}

/// A daemon response whose body is read as it arrives (progress streams).
pub type ApiResponse = hyper::Response<hyper::body::Incoming>;

/// Sends one API request (`path` without the version prefix) on a fresh connection to the
/// current host, a UNIX socket or plain TCP; the response comes back whatever its status.
/// For what bollard cannot express: progress streams with every field, headers of our own.
pub async fn send(
    docker: &Docker,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Result<ApiResponse> {
    use http_body_util::Full;
    let host = current_host();
    let (authority, unix_path) = match host.split_once("://") {
        Some(("unix", p)) => ("api.moby.localhost".to_string(), Some(p.to_string())),
        Some(("tcp" | "http", a)) => (a.trim_end_matches('/').to_string(), None),
        Some(_) => return Err(status(1, cannot_connect(&host))),
        None => ("api.moby.localhost".to_string(), Some(host.clone())),
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("/v{}{}", docker.client_version(), path))
        .header("host", authority.as_str())
        .header("user-agent", "berth-cli");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
    let refused = |_| status(1, cannot_connect(&host));
    match unix_path {
        Some(p) => {
            let io = tokio::net::UnixStream::connect(&p).await.map_err(refused)?;
            send_on(io, req).await
        }
        None => {
            let io = tokio::net::TcpStream::connect(&authority)
                .await
                .map_err(refused)?;
            send_on(io, req).await
        }
    }
}

async fn send_on<I>(
    io: I,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> Result<ApiResponse>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("daemon connection: {e}");
        }
    });
    Ok(sender.send_request(req).await?)
}

/// [`send`], with a non-2xx answer turned into bollard's server error, so that it prints as
/// docker's "Error response from daemon: …".
pub async fn api_request(
    docker: &Docker,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Result<ApiResponse> {
    let resp = send(docker, method, path, headers, body).await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status_code = resp.status().as_u16();
    let body = collect_body(resp).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    Err(anyhow::Error::new(
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        },
    ))
}

/// The whole body of a response.
pub async fn collect_body(resp: ApiResponse) -> Result<Vec<u8>> {
    use http_body_util::BodyExt;
    Ok(resp.into_body().collect().await?.to_bytes().to_vec())
}

/// Go's `json.Indent(dst, src, "", indent)`: re-indents JSON keeping the key order.
pub fn json_indent(src: &[u8], prefix_level: usize, indent: &str) -> String {
    let s = String::from_utf8_lossy(src);
    let mut out = String::with_capacity(s.len() * 2);
    let mut level = prefix_level;
    let mut in_str = false;
    let mut esc = false;
    let chars: Vec<char> = s.trim().chars().collect();
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                // empty object/array stays compact
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && (chars[j] == '}' || chars[j] == ']') {
                    out.push(c);
                    out.push(chars[j]);
                    i = j + 1;
                    continue;
                }
                out.push(c);
                level += 1;
                newline(&mut out, level);
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                newline(&mut out, level);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn indent_like_go() {
        let s = super::json_indent(br#"{"b":1,"a":{"x":[1,"y,z"],"e":{},"l":[]}}"#, 0, "    ");
        assert_eq!(
            s,
            "{\n    \"b\": 1,\n    \"a\": {\n        \"x\": [\n            1,\n            \"y,z\"\n        ],\n        \"e\": {},\n        \"l\": []\n    }\n}"
        );
    }
}
