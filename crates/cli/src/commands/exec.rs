//! `berth exec`: run a command in a running container, as `docker exec`.

use crate::client::{anyhow_api, status};
use crate::commands::run_opts::{env_entry, read_kv_file, Ctx};
use crate::stream::{self, isatty, term_size, RawTerminal, StreamEnd};
use anyhow::Result;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::Docker;
use bollard_stubs::models::ExecConfig;
use clap::{ArgAction, Args};

const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", action = ArgAction::Append)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", action = ArgAction::Append)]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn env_of(a: &ExecArgs) -> Result<Vec<String>> {
    let ctx = Ctx {
        console_size: None,
        lookup_env: None,
    };
    let mut env = Vec::new();
    for file in &a.env_file {
        for line in read_kv_file(file)? {
            env.extend(env_entry(&ctx, &line)?);
        }
    }
    for e in &a.env {
        env.extend(env_entry(&ctx, e)?);
    }
    Ok(env)
}

pub async fn cmd_exec(docker: &Docker, a: ExecArgs) -> Result<i32> {
    if a.tty && a.interactive && !a.detach && !isatty(0) {
        return Err(status(1, "the input device is not a TTY"));
    }
    let detach_keys =
        stream::parse_detach_keys(a.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))
            .map_err(|e| anyhow::anyhow!(e))?;
    let attach = !a.detach;
    let console_size = (a.tty)
        .then(|| term_size(1).or_else(|| term_size(0)))
        .flatten()
        .map(|(h, w)| vec![h as usize, w as usize]);
    let cfg = ExecConfig {
        attach_stdin: Some(a.interactive && attach),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        console_size,
        detach_keys: a.detach_keys.clone(),
        tty: Some(a.tty),
        env: Some(env_of(&a)?),
        cmd: Some(a.command.clone()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
    };
    let id = docker
        .create_exec(&a.container, cfg)
        .await
        .map_err(anyhow_api)?
        .id;
    let opts = StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        output_capacity: None,
    };
    let started = docker
        .start_exec(&id, Some(opts))
        .await
        .map_err(anyhow_api)?;
    let StartExecResults::Attached { output, input } = started else {
        return Ok(0);
    };
    let raw = (a.tty && a.interactive && isatty(0)).then(RawTerminal::enable);
    let resize =
        (a.tty && isatty(1)).then(|| stream::monitor_tty_size(docker.clone(), id.clone(), true));
    let stdin_rx = a.interactive.then(stream::spawn_stdin_reader);
    let end = stream::pump(
        bollard::container::AttachContainerResults { output, input },
        stdin_rx,
        detach_keys,
    )
    .await;
    if let Some(t) = resize {
        t.abort();
    }
    drop(raw);
    if end? == StreamEnd::Detached {
        return Ok(0);
    }
    let info = docker.inspect_exec(&id).await.map_err(anyhow_api)?;
    Ok(info.exit_code.unwrap_or(0) as i32)
}
