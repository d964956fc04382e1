//! Registry commands: pull, push, login, logout, as docker CLI 28 runs them. Pull and push
//! draw the daemon's progress stream with [`crate::progress`]; credentials come from
//! [`crate::credentials`].

use crate::client::{api_request, collect_body, http_status, status, ApiResponse};
use crate::commands::build::query::{encode, Query};
use crate::credentials::{
    convert_to_hostname, registry_auth_header, AuthConfig, ConfigFile, Stored, INDEX_SERVER,
};
use crate::progress::{self, Decoder, Renderer};
use crate::stream::{isatty, term_size};
use anyhow::Result;
use berth_image::Reference;
use bollard::Docker;
use clap::Args;
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image verification (content trust is not supported: always skipped)
    #[arg(long = "disable-content-trust", hide = true, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub disable_content_trust: bool,
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image signing (content trust is not supported: always skipped)
    #[arg(long = "disable-content-trust", hide = true, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// Where a progress stream is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sink {
    Stdout,
    /// `run`'s pull draws on stderr, its stdout being the container's.
    Stderr,
    /// `-q`: drawn nowhere, errors still reported.
    Discard,
}

/// Parses a reference as docker's `reference.ParseNormalizedNamed`, with its error text.
pub fn parse_reference(name: &str) -> Result<Reference> {
    Reference::parse_normalized(name).map_err(|e| status(1, e.to_string()))
}

/// `getAPITagFromNamedRef`: the digest if pinned, else the tag.
fn api_tag(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.as_str().to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => String::new(),
    }
}

fn config_file() -> ConfigFile {
    let cfg = ConfigFile::load_default();
    if let Some(w) = cfg.load_warning() {
        eprintln!("{w}");
    }
    cfg
}

/// `X-Registry-Auth` for the registry of `r`, from the stored credentials.
fn auth_header_for(r: &Reference) -> (&'static str, String) {
    let auth = config_file().resolve(r.domain());
    ("x-registry-auth", registry_auth_header(&auth))
}

/// Draws a progress stream to `sink` until it ends; an in-band error ends it as an error
/// (its message printed as is, exit status 1). `on_aux` sees the `aux` messages.
pub async fn show_progress(
    resp: ApiResponse,
    sink: Sink,
    mut on_aux: impl FnMut(&serde_json::Value),
) -> Result<()> {
    use http_body_util::BodyExt;
    let (out, fd): (Box<dyn Write + Send>, i32) = match sink {
        Sink::Stdout => (Box::new(std::io::stdout()), 1),
        Sink::Stderr => (Box::new(std::io::stderr()), 2),
        Sink::Discard => (Box::new(std::io::sink()), -1),
    };
    let terminal = fd >= 0 && isatty(fd);
    let width = term_size(fd).map_or(200, |(_, cols)| cols as usize);
    let mut renderer = Renderer::new(out, terminal, width);
    let mut decoder = Decoder::default();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!("progress stream: {e}");
            status(1, "unexpected EOF")
        })?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let messages = decoder.push(data).map_err(|e| status(1, e.0))?;
        for m in messages {
            if let Some(aux) = &m.aux {
                on_aux(aux);
            }
            renderer.render(&m).map_err(|e| status(1, e.message))?;
        }
    }
    decoder.finish().map_err(|e| status(1, e.0))
}

/// `POST /images/create?fromImage=…&tag=…` with the stored credentials, drawn to `sink`.
pub async fn pull(
    docker: &Docker,
    r: &Reference,
    all_tags: bool,
    platform: Option<&str>,
    sink: Sink,
) -> Result<()> {
    let mut q = Query::new();
    q.insert("fromImage", vec![r.repository()]);
    if !all_tags {
        q.insert("tag", vec![api_tag(r)]);
    }
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        q.insert("platform", vec![p.to_lowercase()]);
    }
    let path = format!("/images/create?{}", encode(&q));
    let resp = api_request(docker, "POST", &path, &[auth_header_for(r)], None).await?;
    show_progress(resp, sink, |_| {}).await
}

/// `name` without a tag gets `latest` (announced unless quiet), as docker's pull and push do;
/// `-a` wants a bare name.
fn default_tag(name: &str, all_tags: bool, quiet: bool) -> Result<Reference> {
    let r = parse_reference(name)?;
    let name_only = r.tag().is_none() && r.digest().is_none();
    if all_tags && !name_only {
        return Err(status(1, "tag can't be used with --all-tags/-a"));
    }
    if !all_tags && name_only {
        if !quiet {
            println!("Using default tag: latest");
        }
        return Ok(r.with_default_tag());
    }
    Ok(r)
}

pub async fn cmd_pull(docker: &Docker, a: PullArgs) -> Result<i32> {
    let r = default_tag(&a.name, a.all_tags, a.quiet)?;
    let sink = if a.quiet { Sink::Discard } else { Sink::Stdout };
    pull(docker, &r, a.all_tags, a.platform.as_deref(), sink).await?;
    println!("{}", r.full());
    Ok(0)
}

pub async fn cmd_push(docker: &Docker, a: PushArgs) -> Result<i32> {
    let r = default_tag(&a.name, a.all_tags, a.quiet)?;
    if r.digest().is_some() {
        return Err(status(1, "cannot push a digest reference"));
    }
    let mut q = Query::new();
    if let Some(t) = r.tag().filter(|_| !a.all_tags) {
        q.insert("tag", vec![t.to_string()]);
    }
    let mut path = format!("/images/{}/push", r.familiar_repository());
    if !q.is_empty() {
        path = format!("{path}?{}", encode(&q));
    }
    let resp = api_request(docker, "POST", &path, &[auth_header_for(&r)], None).await?;
    let sink = if a.quiet { Sink::Discard } else { Sink::Stdout };
    let mut notes = Vec::new();
    let shown = show_progress(resp, sink, |aux| notes.extend(push_note(aux))).await;
    if shown.is_ok() && a.quiet {
        println!("{}", r.full());
    }
    for n in notes {
        print!("{}", progress::note(isatty(1), &n));
    }
    shown.map(|_| 0)
}

/// The notes docker prints after a push whose `aux` says not everything was pushed.
fn push_note(aux: &serde_json::Value) -> Option<String> {
    let flag = |k: &str| aux.get(k).and_then(serde_json::Value::as_bool) == Some(true);
    let digest = |k: &str| {
        aux.pointer(&format!("/{k}/digest"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if flag("manifestPushedInsteadOfIndex") {
        return Some(format!(
            "Not all multiplatform-content is present and only the available single-platform image was pushed\n\x1b[31m{}\x1b[0m -> \x1b[32m{}\x1b[0m",
            digest("originalIndex"),
            digest("selectedManifest")
        ));
    }
    if flag("contentMissing") {
        return Some(
            "You're trying to push a manifest list/index which \n\
             references multiple platform specific manifests, but not all of them are available locally\n\
             or available to the remote repository.\n\n\
             Make sure you have all the referenced content and try again.\n\n\
             You can also push only a single platform specific manifest directly.\n\
             Example: docker push docker.io/library/whalesay:latest@sha256:..."
                .to_string(),
        );
    }
    None
}

// ---------- login / logout ----------

const REGISTER_SUGGEST: &str = "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.";
const PAT_SUGGEST: &str = "You can log in with your password or a Personal Access Token (PAT). Using a limited-scope PAT grants better security and is required for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/";

/// The login flags once checked (docker's `verifyLoginOptions`), the password read from
/// stdin when asked.
#[derive(Debug, PartialEq)]
pub struct LoginInput {
    pub user: String,
    pub password: String,
    /// `host[:port]`, or Docker Hub's key.
    pub server: String,
}

/// Checks the flags; `read_stdin` gives the whole of stdin for `--password-stdin`; warnings
/// go to `warn`.
pub fn login_input(
    a: &LoginArgs,
    read_stdin: impl FnOnce() -> std::io::Result<String>,
    warn: &mut dyn Write,
) -> Result<LoginInput> {
    let user = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if a.password_stdin && !password.is_empty() {
        return Err(status(
            1,
            "conflicting options: cannot specify both --password and --password-stdin",
        ));
    }
    if a.password_stdin && user.is_empty() {
        return Err(status(
            1,
            "the --password-stdin option requires --username to be set",
        ));
    }
    if !password.is_empty() {
        let _ = writeln!(
            warn,
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
        );
    }
    if a.password_stdin {
        let text = read_stdin()?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        password = text.strip_suffix('\r').unwrap_or(text).to_string();
    }
    let server = match a.server.as_deref() {
        Some(s) if !s.is_empty() && s != "docker.io" => s,
        _ => INDEX_SERVER,
    };
    let server = if server == INDEX_SERVER {
        server.to_string()
    } else {
        convert_to_hostname(server)
    };
    Ok(LoginInput {
        user,
        password,
        server,
    })
}

/// `POST /auth`'s answer.
#[derive(Debug, Default, serde::Deserialize)]
struct AuthReply {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "IdentityToken", default)]
    identity_token: Option<String>,
}

async fn post_auth(docker: &Docker, auth: &AuthConfig) -> Result<AuthReply> {
    let body = serde_json::to_vec(auth)?;
    let headers = [("content-type", "application/json".to_string())];
    let resp = api_request(docker, "POST", "/auth", &headers, Some(body)).await?;
    let body = collect_body(resp).await?;
    Ok(serde_json::from_slice(&body).unwrap_or_default())
}

fn is_unauthorized(e: &anyhow::Error) -> bool {
    e.downcast_ref::<bollard::errors::Error>()
        .and_then(http_status)
        == Some(401)
}

/// Keeps what `/auth` accepted: an identity token instead of the password when it gave one.
fn keep_credentials(cfg: &mut ConfigFile, mut auth: AuthConfig, reply: &AuthReply) -> Result<()> {
    if let Some(token) = reply.identity_token.as_deref().filter(|t| !t.is_empty()) {
        auth.password.clear();
        auth.identitytoken = token.to_string();
    }
    match cfg.store(&auth) {
        Ok(Stored::Written {
            plain_password: true,
        }) => eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n",
            cfg.path().display()
        ),
        Ok(_) => {}
        Err(e) => return Err(status(1, format!("Error saving credentials: {e}"))),
    }
    Ok(())
}

/// Tries the stored credentials; `None` when they did not do (docker then prompts).
async fn login_with_stored(
    docker: &Docker,
    cfg: &mut ConfigFile,
    auth: &AuthConfig,
) -> Result<Option<String>> {
    let mut err = std::io::stderr();
    let _ = write!(err, "Authenticating with existing credentials...");
    if !auth.username.is_empty() {
        let _ = write!(err, " [Username: {}]", auth.username);
    }
    let note = progress::note(
        isatty(2),
        "To login with a different account, run 'docker logout' followed by 'docker login'",
    );
    let _ = write!(err, "\n{note}\n\n");
    match post_auth(docker, auth).await {
        Ok(reply) => {
            keep_credentials(cfg, auth.clone(), &reply)?;
            Ok(Some(reply.status))
        }
        Err(e) if is_unauthorized(&e) => {
            eprintln!("Stored credentials invalid or expired");
            Ok(None)
        }
        Err(e) => {
            eprintln!(
                "Login did not succeed, error: {}",
                crate::client::error_message(&e)
            );
            Ok(None)
        }
    }
}

/// Turns terminal echo off on stdin until dropped.
struct NoEcho(Option<nix::sys::termios::Termios>);

impl NoEcho {
    fn new() -> NoEcho {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let Ok(saved) = tcgetattr(fd) else {
            return NoEcho(None);
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(fd, SetArg::TCSANOW, &quiet);
        NoEcho(Some(saved))
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
            let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t);
        }
    }
}

/// Shows `prompt` and reads one line, trimmed (docker's `prompt.ReadInput`).
fn read_input(input: &mut dyn BufRead, out: &mut dyn Write, prompt: &str) -> Result<String> {
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// docker's `PromptUserForCredentials`: asks for what the flags left out.
pub fn prompt_credentials(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    user: &str,
    password: &str,
    default_user: &str,
    server: &str,
) -> Result<AuthConfig> {
    let mut user = user.trim().to_string();
    if user.is_empty() {
        if server == INDEX_SERVER {
            let _ = writeln!(out, "{REGISTER_SUGGEST}");
            if hints_enabled() {
                let _ = writeln!(out, "{PAT_SUGGEST}\n");
            }
        }
        let default_user = default_user.trim();
        let prompt = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = read_input(input, out, &prompt)?;
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(status(1, "Error: Non-null Username Required"));
        }
    }
    let mut password = password.to_string();
    if password.trim().is_empty() {
        let echo_off = NoEcho::new();
        password = read_input(input, out, "Password: ")?;
        drop(echo_off);
        let _ = writeln!(out);
        if password.is_empty() {
            return Err(status(1, "Error: Password Required"));
        }
    }
    Ok(AuthConfig {
        username: user,
        password,
        serveraddress: server.to_string(),
        ..Default::default()
    })
}

fn hints_enabled() -> bool {
    match std::env::var("DOCKER_CLI_HINTS") {
        Ok(v) if !v.is_empty() => {
            !matches!(v.as_str(), "0" | "f" | "F" | "false" | "FALSE" | "False")
        }
        _ => true,
    }
}

pub async fn cmd_login(docker: &Docker, a: LoginArgs) -> Result<i32> {
    let input = login_input(
        &a,
        || std::io::read_to_string(std::io::stdin()),
        &mut std::io::stderr(),
    )?;
    let mut cfg = config_file();
    // Stored credentials are tried only when the flags name no one.
    let mut stored = AuthConfig {
        serveraddress: input.server.clone(),
        ..Default::default()
    };
    let mut usable = false;
    if input.user.is_empty() && input.password.is_empty() {
        if let Ok(ac) = cfg.get(&input.server) {
            usable = !ac.username.is_empty() && !ac.password.is_empty();
            stored = AuthConfig {
                serveraddress: input.server.clone(),
                identitytoken: String::new(),
                ..ac
            };
        }
    }
    let mut msg = None;
    if usable {
        msg = login_with_stored(docker, &mut cfg, &stored).await?;
    }
    let msg = match msg {
        Some(m) => m,
        None => {
            if (input.user.is_empty() || input.password.is_empty()) && !isatty(0) {
                return Err(status(
                    1,
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
            let auth = prompt_credentials(
                &mut std::io::stdin().lock(),
                &mut std::io::stdout(),
                &input.user,
                &input.password,
                &stored.username,
                &input.server,
            )?;
            let reply = post_auth(docker, &auth).await?;
            keep_credentials(&mut cfg, auth, &reply)?;
            reply.status
        }
    };
    if !msg.is_empty() {
        println!("{msg}");
    }
    Ok(0)
}

pub async fn cmd_logout(a: LogoutArgs) -> Result<i32> {
    let server = a.server.filter(|s| !s.is_empty());
    let (hostname, candidates) = match server {
        None => (INDEX_SERVER.to_string(), vec![INDEX_SERVER.to_string()]),
        Some(s) => {
            let host = convert_to_hostname(&s);
            // Older clients kept keys in these forms too.
            let all = vec![
                s,
                host.clone(),
                format!("http://{host}"),
                format!("https://{host}"),
            ];
            (host, all)
        }
    };
    println!("Removing login credentials for {hostname}");
    let mut cfg = config_file();
    let mut errs = std::collections::BTreeMap::new();
    for key in &candidates {
        if let Err(e) = cfg.erase(key) {
            errs.insert(key.clone(), e.to_string());
        }
    }
    // docker counts distinct failures against all tries: a repeated key never warns.
    if errs.len() == candidates.len() {
        eprintln!("WARNING: could not erase credentials:");
        for (k, v) in errs {
            eprintln!("{k}: {v}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{parse_args, try_parse_args};

    fn login(args: &[&str], stdin: &str) -> (Result<LoginInput>, String) {
        let a: LoginArgs = parse_args(args);
        let mut warn = Vec::new();
        let r = login_input(&a, || Ok(stdin.to_string()), &mut warn);
        (r, String::from_utf8(warn).unwrap())
    }

    fn err_text(r: Result<LoginInput>) -> String {
        crate::client::error_message(&r.unwrap_err())
    }

    #[test]
    fn login_flags_like_docker() {
        let (r, w) = login(&["-u", "u", "-p", "secret", "127.0.0.1:5161"], "");
        assert_eq!(
            r.unwrap(),
            LoginInput {
                user: "u".into(),
                password: "secret".into(),
                server: "127.0.0.1:5161".into()
            }
        );
        assert_eq!(
            w,
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        );
        let (r, w) = login(
            &["-u", "u", "--password-stdin", "http://127.0.0.1:5161/v2/"],
            "s3\r\n",
        );
        let r = r.unwrap();
        assert_eq!(
            (r.password.as_str(), r.server.as_str()),
            ("s3", "127.0.0.1:5161")
        );
        assert!(w.is_empty());
        let (r, _) = login(&[], "");
        assert_eq!(r.unwrap().server, INDEX_SERVER);
        assert_eq!(login(&["docker.io"], "").0.unwrap().server, INDEX_SERVER);
        let (r, w) = login(&["-u", "u", "-p", "x", "--password-stdin"], "");
        assert_eq!(
            err_text(r),
            "conflicting options: cannot specify both --password and --password-stdin"
        );
        assert!(w.is_empty());
        assert_eq!(
            err_text(login(&["--password-stdin"], "").0),
            "the --password-stdin option requires --username to be set"
        );
        assert!(try_parse_args::<LoginArgs>(&["a", "b"]).is_err());
        assert!(try_parse_args::<LogoutArgs>(&["a", "b"]).is_err());
    }

    fn prompt(
        typed: &str,
        user: &str,
        password: &str,
        default_user: &str,
        server: &str,
    ) -> (Result<AuthConfig>, String) {
        let mut input = std::io::Cursor::new(typed.as_bytes().to_vec());
        let mut out = Vec::new();
        let r = prompt_credentials(&mut input, &mut out, user, password, default_user, server);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn login_prompts_like_docker() {
        let (r, out) = prompt("u\nsecret\n", "", "", "", "127.0.0.1:5161");
        assert_eq!(out, "Username: Password: \n");
        let r = r.unwrap();
        assert_eq!(
            (
                r.username.as_str(),
                r.password.as_str(),
                r.serveraddress.as_str()
            ),
            ("u", "secret", "127.0.0.1:5161")
        );
        let (r, out) = prompt("\npw\n", "", "", "old", "r");
        assert_eq!(out, "Username (old): Password: \n");
        assert_eq!(r.unwrap().username, "old");
        let (r, _) = prompt("\n", "", "", "", "r");
        assert_eq!(
            crate::client::error_message(&r.unwrap_err()),
            "Error: Non-null Username Required"
        );
        let (r, _) = prompt("\n", "u", "", "", "r");
        assert_eq!(
            crate::client::error_message(&r.unwrap_err()),
            "Error: Password Required"
        );
        // -u and -p: no questions.
        let (r, out) = prompt("", "u", "p", "", "r");
        assert!(out.is_empty());
        assert_eq!(r.unwrap().password, "p");
        // Docker Hub gets docker's suggestion first.
        let (_, out) = prompt("u\np\n", "", "", "", INDEX_SERVER);
        assert!(out.starts_with(REGISTER_SUGGEST));
    }

    #[test]
    fn pull_and_push_names_like_docker() {
        let r = default_tag("busybox", false, true).unwrap();
        assert_eq!(r.repository(), "docker.io/library/busybox");
        assert_eq!(api_tag(&r), "latest");
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        let r = default_tag("127.0.0.1:5160/bb", true, true).unwrap();
        assert_eq!(
            (r.full().as_str(), api_tag(&r).as_str()),
            ("127.0.0.1:5160/bb", "")
        );
        let pinned = format!("me/app:1@sha256:{}", "a".repeat(64));
        let r = default_tag(&pinned, false, true).unwrap();
        assert_eq!(api_tag(&r), format!("sha256:{}", "a".repeat(64)));
        assert_eq!(r.familiar_repository(), "me/app");
        let msg = |name: &str, all| {
            crate::client::error_message(&default_tag(name, all, true).unwrap_err())
        };
        assert_eq!(msg("bb:1", true), "tag can't be used with --all-tags/-a");
        assert_eq!(
            msg("UPPER", false),
            "invalid reference format: repository name (library/UPPER) must be lowercase"
        );
        assert_eq!(msg("a b", false), "invalid reference format");
        let a: PullArgs = parse_args(&["-a", "-q", "--platform", "linux/amd64", "x"]);
        assert!(a.all_tags && a.quiet && a.disable_content_trust);
        let a: PushArgs = parse_args(&["--disable-content-trust=false", "x"]);
        assert!(!a.disable_content_trust);
    }

    #[test]
    fn push_notes() {
        assert_eq!(
            push_note(&serde_json::json!({"Tag":"latest","Digest":"sha256:x","Size":1})),
            None
        );
        let n = push_note(&serde_json::json!({"manifestPushedInsteadOfIndex": true,
            "originalIndex": {"digest": "sha256:i"}, "selectedManifest": {"digest": "sha256:m"}}))
        .unwrap();
        assert!(n.ends_with("\x1b[31msha256:i\x1b[0m -> \x1b[32msha256:m\x1b[0m"));
        assert!(push_note(&serde_json::json!({"contentMissing": true})).is_some());
    }
}
