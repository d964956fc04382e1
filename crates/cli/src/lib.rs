//! `berth` command line: docker's verbs and flags over the Docker Engine API (bollard).
//!
//! Entry point: [`main_with_args`]. The `berth` binary calls it for every subcommand except
//! `daemon` and `shim`.

pub mod client;
pub mod commands;
pub mod credentials;
pub mod docker_config;
pub mod output;
pub mod progress;
pub mod stream;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use commands::build::{self as bld, BuildArgs, BuilderPruneArgs};
use commands::container::{
    self as ctr, AttachArgs, KillArgs, LogsArgs, MultiArgs, PsArgs, RenameArgs, RmArgs, StartArgs,
    StopArgs,
};
use commands::image::{
    self as img, HistoryArgs, ImagesArgs, ImportArgs, LoadArgs, RmiArgs, SaveArgs, TagArgs,
};
use commands::network::{
    self as net, ConnectArgs, CreateArgs as NetworkCreateArgs, DisconnectArgs, InspectNetworkArgs,
    LsArgs as NetworkLsArgs, PortArgs, PruneArgs as NetworkPruneArgs, RmArgs as NetworkRmArgs,
};
use commands::prune::{self as prn, ContainerPruneArgs, DfArgs, ImagePruneArgs, SystemPruneArgs};
use commands::registry::{self as reg, LoginArgs, LogoutArgs, PullArgs, PushArgs};
use commands::resources::{self as res, PauseArgs, StatsArgs, TopArgs, UpdateArgs};
use commands::run_opts::ContainerFlags;
use commands::system::{self as sys, FormatArgs, InspectArgs};
use commands::volume::{
    self as vol, CreateArgs as VolumeCreateArgs, InspectVolumeArgs, LsArgs as VolumeLsArgs,
    PruneArgs as VolumePruneArgs, RmArgs as VolumeRmArgs,
};
use std::ffi::OsString;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = false
)]
struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Location of client config files
    #[arg(long)]
    config: Option<String>,
    /// Name of the context to use to connect to the daemon
    #[arg(short = 'c', long)]
    context: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(ContainerFlags),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(ContainerFlags),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(commands::exec::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(MultiArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(commands::fs::CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(commands::fs::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commands::fs::DiffArgs),
    /// Create a new image from a container's changes
    Commit(commands::fs::CommitArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// List images
    Images(ImagesArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Authenticate to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Show the Berth version information
    Version(FormatArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(commands::events::EventsArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: VolumeCmd,
    },
    /// Manage Berth
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Manage builds
    Builder {
        #[command(subcommand)]
        cmd: BuilderCmd,
    },
}

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCmd {
    #[command(disable_help_flag = true)]
    Run(ContainerFlags),
    #[command(disable_help_flag = true)]
    Create(ContainerFlags),
    Start(StartArgs),
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    Logs(LogsArgs),
    Attach(AttachArgs),
    Exec(commands::exec::ExecArgs),
    Wait(MultiArgs),
    Stop(StopArgs),
    Kill(KillArgs),
    Restart(StopArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Stats(StatsArgs),
    Top(TopArgs),
    Pause(PauseArgs),
    Unpause(PauseArgs),
    Update(UpdateArgs),
    Rename(RenameArgs),
    Port(PortArgs),
    Inspect(TypedInspectArgs),
    Cp(commands::fs::CpArgs),
    Export(commands::fs::ExportArgs),
    Diff(commands::fs::DiffArgs),
    Commit(commands::fs::CommitArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum ImageCmd {
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Inspect(TypedInspectArgs),
    History(HistoryArgs),
    Tag(TagArgs),
    #[command(alias = "remove")]
    Rm(RmiArgs),
    Import(ImportArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Subcommand, Debug)]
enum NetworkCmd {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectNetworkArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(NetworkRmArgs),
}

#[derive(Subcommand, Debug)]
enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectVolumeArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
    /// Remove one or more volumes. You cannot remove a volume that is in use by a container.
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCmd {
    Info(FormatArgs),
    Events(commands::events::EventsArgs),
    /// Show docker disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
}

#[derive(clap::Args, Debug)]
struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

impl TypedInspectArgs {
    fn into_inspect(self) -> InspectArgs {
        InspectArgs {
            format: self.format,
            size: self.size,
            typ: None,
            names: self.names,
            verbose: false,
        }
    }
}

/// Go-style text of an I/O error ("no such file or directory").
pub fn io_err_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let d = nix::errno::Errno::from_raw(code).desc();
            let mut s = d.to_string();
            if let Some(f) = s.get_mut(0..1) {
                f.make_ascii_lowercase();
            }
            s
        }
        None => e.to_string(),
    }
}

/// Does `cmd` have an option named by `flag` (argv text without its first '-') that takes
/// its value from the next argument?
fn takes_value(cmd: &clap::Command, flag: &str) -> bool {
    let arg = match flag.strip_prefix('-') {
        Some(long) => cmd.get_arguments().find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|v| v.contains(&long))
        }),
        None if flag.chars().count() == 1 => cmd
            .get_arguments()
            .find(|a| a.get_short() == flag.chars().next()),
        None => None,
    };
    arg.is_some_and(|a| a.get_action().takes_values())
}

/// docker's report of a wrong number of arguments (cobra's `cli.ExactArgs` and friends),
/// which exits 1 where other usage errors exit 125:
/// "berth: 'berth network create' requires 1 argument", then the usage.
fn arity_error(
    root: clap::Command,
    bin: &str,
    args: &[OsString],
    e: &clap::Error,
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (ErrorKind::MissingRequiredArgument, _) => {}
        // An extra argument, not an unknown flag.
        (ErrorKind::UnknownArgument, Some(ContextValue::String(a))) if !a.starts_with('-') => {}
        _ => return None,
    }
    let mut root = root;
    root.build();
    let mut cmd = &root;
    let mut path = vec![bin.to_string()];
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy().to_string());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(flag) = a.strip_prefix('-') {
            if !a.contains('=') && takes_value(cmd, flag) {
                it.next();
            }
            continue;
        }
        match cmd.find_subcommand(&a) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
            }
            None => break,
        }
    }
    if cmd.has_subcommands() {
        return None;
    }
    let (mut min, mut max) = (0usize, Some(0usize));
    for p in cmd.get_positionals() {
        let r = p.get_num_args().unwrap_or_else(|| 1.into());
        if p.is_required_set() {
            min += r.min_values();
        }
        max = max
            .zip(Some(r.max_values()).filter(|n| *n != usize::MAX))
            .map(|(a, b)| a + b);
    }
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let (what, footer) = match max {
        Some(0) => ("accepts no arguments".to_string(), "Run"),
        Some(m) if m == min => (format!("requires {min} {}", plural(min)), "Run"),
        None => (format!("requires at least {min} {}", plural(min)), "See"),
        Some(m) if min == 0 => (format!("requires at most {m} {}", plural(m)), "See"),
        Some(m) => (
            format!("requires at least {min} and at most {m} {}", plural(m)),
            "Run",
        ),
    };
    let path = path.join(" ");
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
    Some(format!(
        "{bin}: '{path}' {what}\n\nUsage:  {usage}\n\n{footer} '{path} --help' for more information"
    ))
}

/// Runs the CLI with `args` (argv[0] included) and returns the process exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let mut cmd = Cli::command();
    let prog = args
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
        })
        .unwrap_or_else(|| "berth".into());
    if prog != "berth" {
        cmd = cmd.bin_name(&prog);
    }
    let usage_cmd = cmd.clone();
    let argv = args.clone();
    let matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if let Some(msg) = arity_error(usage_cmd, &prog, &argv, &e) {
                eprintln!("{msg}");
                return 1;
            }
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 125;
        }
    };
    if let Some(dir) = &cli.config {
        docker_config::set_config_dir(dir);
    }
    if cli.version {
        println!("Berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(sub) = cli.cmd else {
        let _ = Cli::command().print_help();
        return 0;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return 1;
        }
    };
    let choice = client::choose_host(cli.host.as_deref());
    let result = rt.block_on(dispatch(choice, sub));
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            let msg = client::error_message(&e);
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            client::exit_code_of(&e)
        }
    }
}

async fn dispatch(choice: client::HostChoice, sub: Cmd) -> anyhow::Result<i32> {
    // `version` prints the client part even without a daemon.
    if let Cmd::Version(a) = sub {
        return match client::connect(&choice).await {
            Ok(d) => sys::cmd_version(Some(&d), a).await,
            Err(e) => {
                sys::cmd_version(None, a).await?;
                Err(e)
            }
        };
    }
    // `logout` only edits the client's config file.
    if let Cmd::Logout(a) = sub {
        return reg::cmd_logout(a).await;
    }
    // `run` / `create` connection failures also exit 125.
    let is_run = matches!(
        sub,
        Cmd::Run(_)
            | Cmd::Create(_)
            | Cmd::Container {
                cmd: ContainerCmd::Run(_) | ContainerCmd::Create(_)
            }
    );
    let docker = match client::connect(&choice).await {
        Ok(d) => d,
        Err(e) if is_run => {
            return Err(client::status(
                125,
                format!("berth: {}", client::error_message(&e)),
            ));
        }
        Err(e) => return Err(e),
    };
    let d = &docker;
    match sub {
        Cmd::Run(f)
        | Cmd::Container {
            cmd: ContainerCmd::Run(f),
        } => ctr::cmd_run(d, f).await,
        Cmd::Create(f)
        | Cmd::Container {
            cmd: ContainerCmd::Create(f),
        } => ctr::cmd_create(d, f).await,
        Cmd::Start(a)
        | Cmd::Container {
            cmd: ContainerCmd::Start(a),
        } => ctr::cmd_start(d, a).await,
        Cmd::Ps(a)
        | Cmd::Container {
            cmd: ContainerCmd::Ls(a),
        } => ctr::cmd_ps(d, a).await,
        Cmd::Logs(a)
        | Cmd::Container {
            cmd: ContainerCmd::Logs(a),
        } => ctr::cmd_logs(d, a).await,
        Cmd::Attach(a)
        | Cmd::Container {
            cmd: ContainerCmd::Attach(a),
        } => ctr::cmd_attach(d, a).await,
        Cmd::Exec(a)
        | Cmd::Container {
            cmd: ContainerCmd::Exec(a),
        } => commands::exec::cmd_exec(d, a).await,
        Cmd::Wait(a)
        | Cmd::Container {
            cmd: ContainerCmd::Wait(a),
        } => ctr::cmd_wait(d, a).await,
        Cmd::Stop(a)
        | Cmd::Container {
            cmd: ContainerCmd::Stop(a),
        } => ctr::cmd_stop(d, a).await,
        Cmd::Kill(a)
        | Cmd::Container {
            cmd: ContainerCmd::Kill(a),
        } => ctr::cmd_kill(d, a).await,
        Cmd::Restart(a)
        | Cmd::Container {
            cmd: ContainerCmd::Restart(a),
        } => ctr::cmd_restart(d, a).await,
        Cmd::Rm(a)
        | Cmd::Container {
            cmd: ContainerCmd::Rm(a),
        } => ctr::cmd_rm(d, a).await,
        Cmd::Rename(a)
        | Cmd::Container {
            cmd: ContainerCmd::Rename(a),
        } => ctr::cmd_rename(d, a).await,
        Cmd::Container {
            cmd: ContainerCmd::Inspect(a),
        } => sys::cmd_inspect(d, a.into_inspect(), Some("container")).await,
        Cmd::Port(a)
        | Cmd::Container {
            cmd: ContainerCmd::Port(a),
        } => net::cmd_port(d, a).await,
        Cmd::Network { cmd } => match cmd {
            NetworkCmd::Connect(a) => net::cmd_connect(d, a).await,
            NetworkCmd::Create(a) => net::cmd_create(d, a).await,
            NetworkCmd::Disconnect(a) => net::cmd_disconnect(d, a).await,
            NetworkCmd::Inspect(a) => net::cmd_inspect(d, a).await,
            NetworkCmd::Ls(a) => net::cmd_ls(d, a).await,
            NetworkCmd::Prune(a) => net::cmd_prune(d, a).await,
            NetworkCmd::Rm(a) => net::cmd_rm(d, a).await,
        },
        Cmd::Volume { cmd } => match cmd {
            VolumeCmd::Create(a) => vol::cmd_create(d, a).await,
            VolumeCmd::Inspect(a) => vol::cmd_inspect(d, a).await,
            VolumeCmd::Ls(a) => vol::cmd_ls(d, a).await,
            VolumeCmd::Prune(a) => vol::cmd_prune(d, a).await,
            VolumeCmd::Rm(a) => vol::cmd_rm(d, a).await,
        },
        Cmd::Images(a)
        | Cmd::Image {
            cmd: ImageCmd::Ls(a),
        } => img::cmd_images(d, a).await,
        Cmd::Image {
            cmd: ImageCmd::Inspect(a),
        } => sys::cmd_inspect(d, a.into_inspect(), Some("image")).await,
        Cmd::Inspect(a) => sys::cmd_inspect(d, a, None).await,
        Cmd::History(a)
        | Cmd::Image {
            cmd: ImageCmd::History(a),
        } => img::cmd_history(d, a).await,
        Cmd::Tag(a)
        | Cmd::Image {
            cmd: ImageCmd::Tag(a),
        } => img::cmd_tag(d, a).await,
        Cmd::Rmi(a)
        | Cmd::Image {
            cmd: ImageCmd::Rm(a),
        } => img::cmd_rmi(d, a).await,
        Cmd::Import(a)
        | Cmd::Image {
            cmd: ImageCmd::Import(a),
        } => img::cmd_import(d, a).await,
        Cmd::Load(a)
        | Cmd::Image {
            cmd: ImageCmd::Load(a),
        } => img::cmd_load(d, a).await,
        Cmd::Save(a)
        | Cmd::Image {
            cmd: ImageCmd::Save(a),
        } => img::cmd_save(d, a).await,
        Cmd::Info(a)
        | Cmd::System {
            cmd: SystemCmd::Info(a),
        } => sys::cmd_info(d, a).await,
        Cmd::Events(a)
        | Cmd::System {
            cmd: SystemCmd::Events(a),
        } => commands::events::cmd_events(d, a).await,
        Cmd::Cp(a)
        | Cmd::Container {
            cmd: ContainerCmd::Cp(a),
        } => commands::fs::cmd_cp(d, a).await,
        Cmd::Export(a)
        | Cmd::Container {
            cmd: ContainerCmd::Export(a),
        } => commands::fs::cmd_export(d, a).await,
        Cmd::Diff(a)
        | Cmd::Container {
            cmd: ContainerCmd::Diff(a),
        } => commands::fs::cmd_diff(d, a).await,
        Cmd::Commit(a)
        | Cmd::Container {
            cmd: ContainerCmd::Commit(a),
        } => commands::fs::cmd_commit(d, a).await,
        Cmd::Stats(a)
        | Cmd::Container {
            cmd: ContainerCmd::Stats(a),
        } => res::cmd_stats(d, a).await,
        Cmd::Top(a)
        | Cmd::Container {
            cmd: ContainerCmd::Top(a),
        } => res::cmd_top(d, a).await,
        Cmd::Pause(a)
        | Cmd::Container {
            cmd: ContainerCmd::Pause(a),
        } => res::cmd_pause(d, a).await,
        Cmd::Unpause(a)
        | Cmd::Container {
            cmd: ContainerCmd::Unpause(a),
        } => res::cmd_unpause(d, a).await,
        Cmd::Update(a)
        | Cmd::Container {
            cmd: ContainerCmd::Update(a),
        } => res::cmd_update(d, a).await,
        Cmd::Container {
            cmd: ContainerCmd::Prune(a),
        } => prn::cmd_container_prune(d, a).await,
        Cmd::Image {
            cmd: ImageCmd::Prune(a),
        } => prn::cmd_image_prune(d, a).await,
        Cmd::System {
            cmd: SystemCmd::Df(a),
        } => prn::cmd_system_df(d, a).await,
        Cmd::System {
            cmd: SystemCmd::Prune(a),
        } => prn::cmd_system_prune(d, a).await,
        Cmd::Build(a)
        | Cmd::Image {
            cmd: ImageCmd::Build(a),
        }
        | Cmd::Builder {
            cmd: BuilderCmd::Build(a),
        } => bld::cmd_build(d, a).await,
        Cmd::Builder {
            cmd: BuilderCmd::Prune(a),
        } => bld::cmd_builder_prune(d, a).await,
        Cmd::Pull(a)
        | Cmd::Image {
            cmd: ImageCmd::Pull(a),
        } => reg::cmd_pull(d, a).await,
        Cmd::Push(a)
        | Cmd::Image {
            cmd: ImageCmd::Push(a),
        } => reg::cmd_push(d, a).await,
        Cmd::Login(a) => reg::cmd_login(d, a).await,
        Cmd::Version(_) | Cmd::Logout(_) => unreachable!(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut v = vec!["berth"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v)
    }

    #[test]
    fn cli_shapes() {
        Cli::command().debug_assert();
        let c = parse(&[
            "-H",
            "unix:///tmp/x.sock",
            "run",
            "--rm",
            "-h",
            "box",
            "busybox",
            "echo",
            "-n",
            "hi",
        ])
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///tmp/x.sock"));
        match c.cmd.unwrap() {
            Cmd::Run(f) => {
                assert!(f.rm);
                assert_eq!(f.hostname.as_deref(), Some("box"));
                assert_eq!(f.args, vec!["busybox", "echo", "-n", "hi"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["container", "ls", "-a"]).unwrap().cmd,
            Some(Cmd::Container {
                cmd: ContainerCmd::Ls(_)
            })
        ));
        assert!(matches!(
            parse(&["container", "ps"]).unwrap().cmd,
            Some(Cmd::Container {
                cmd: ContainerCmd::Ls(_)
            })
        ));
        assert!(matches!(
            parse(&["image", "ls"]).unwrap().cmd,
            Some(Cmd::Image {
                cmd: ImageCmd::Ls(_)
            })
        ));
        assert!(matches!(
            parse(&["image", "rm", "x"]).unwrap().cmd,
            Some(Cmd::Image {
                cmd: ImageCmd::Rm(_)
            })
        ));
        assert!(matches!(
            parse(&["stop", "-t", "3", "a", "b"]).unwrap().cmd,
            Some(Cmd::Stop(_))
        ));
        assert!(parse(&["run"]).is_err());
        assert!(matches!(
            parse(&["network", "list", "-q"]).unwrap().cmd,
            Some(Cmd::Network {
                cmd: NetworkCmd::Ls(_)
            })
        ));
        assert!(matches!(
            parse(&["network", "remove", "a", "b"]).unwrap().cmd,
            Some(Cmd::Network {
                cmd: NetworkCmd::Rm(_)
            })
        ));
        assert!(matches!(
            parse(&["container", "port", "c", "80/tcp"]).unwrap().cmd,
            Some(Cmd::Container {
                cmd: ContainerCmd::Port(_)
            })
        ));
        assert!(matches!(
            parse(&["volume", "list", "-q"]).unwrap().cmd,
            Some(Cmd::Volume {
                cmd: VolumeCmd::Ls(_)
            })
        ));
        assert!(matches!(
            parse(&["volume", "remove", "-f", "a", "b"]).unwrap().cmd,
            Some(Cmd::Volume {
                cmd: VolumeCmd::Rm(_)
            })
        ));
        assert!(parse(&["volume", "create", "a", "b"]).is_err());
        assert!(parse(&["volume", "rm"]).is_err());
        assert!(parse(&["volume", "prune", "x"]).is_err());
        assert!(parse(&["port", "c", "80", "81"]).is_err());
        assert!(parse(&["network", "connect", "n"]).is_err());
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("network") && help.contains("port"));
        let c = parse(&["run", "--sig-proxy=false", "-a", "stdout", "busybox"]).unwrap();
        match c.cmd.unwrap() {
            Cmd::Run(f) => assert!(!f.sig_proxy),
            _ => unreachable!(),
        }
        let c = parse(&["import", "-c", "CMD [\"sh\"]", "-m", "msg", "-", "x:1"]).unwrap();
        match c.cmd.unwrap() {
            Cmd::Import(a) => {
                assert_eq!(a.source, "-");
                assert_eq!(a.reference.as_deref(), Some("x:1"));
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn build_commands_are_registered() {
        for argv in [
            &["build", "-t", "a", "."][..],
            &["image", "build", "."],
            &["builder", "build", "-f", "-", "."],
        ] {
            match parse(argv).unwrap().cmd {
                Some(
                    Cmd::Build(a)
                    | Cmd::Image {
                        cmd: ImageCmd::Build(a),
                    }
                    | Cmd::Builder {
                        cmd: BuilderCmd::Build(a),
                    },
                ) => assert_eq!(a.context, "."),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            parse(&["builder", "prune", "-af", "--filter", "until=1h"])
                .unwrap()
                .cmd,
            Some(Cmd::Builder {
                cmd: BuilderCmd::Prune(_)
            })
        ));
        assert!(parse(&["build"]).is_err());
    }

    #[test]
    fn registry_commands_are_registered() {
        for argv in [&["pull", "-q", "x"][..], &["image", "pull", "-a", "x"]] {
            match parse(argv).unwrap().cmd {
                Some(
                    Cmd::Pull(a)
                    | Cmd::Image {
                        cmd: ImageCmd::Pull(a),
                    },
                ) => assert_eq!(a.name, "x"),
                other => panic!("{other:?}"),
            }
        }
        for argv in [&["push", "x:1"][..], &["image", "push", "-a", "x"]] {
            assert!(matches!(
                parse(argv).unwrap().cmd,
                Some(
                    Cmd::Push(_)
                        | Cmd::Image {
                            cmd: ImageCmd::Push(_)
                        }
                )
            ));
        }
        match parse(&["login", "-u", "me", "--password-stdin", "reg:5000"])
            .unwrap()
            .cmd
        {
            Some(Cmd::Login(a)) => {
                assert_eq!(a.username.as_deref(), Some("me"));
                assert!(a.password_stdin);
                assert_eq!(a.server.as_deref(), Some("reg:5000"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["logout"]).unwrap().cmd,
            Some(Cmd::Logout(_))
        ));
        assert_eq!(
            arity(&["berth", "login", "a", "b"]).unwrap().lines().next(),
            Some("berth: 'berth login' requires at most 1 argument")
        );
        assert_eq!(
            arity(&["berth", "pull"]).unwrap().lines().next(),
            Some("berth: 'berth pull' requires 1 argument")
        );
    }

    fn arity(args: &[&str]) -> Option<String> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let e = Cli::command().try_get_matches_from(&argv).unwrap_err();
        arity_error(Cli::command(), "berth", &argv, &e)
    }

    #[test]
    fn wrong_argument_counts_like_docker() {
        assert_eq!(
            arity(&["berth", "network", "create"]).unwrap(),
            "berth: 'berth network create' requires 1 argument\n\nUsage:  berth network create [OPTIONS] <NETWORK>\n\nRun 'berth network create --help' for more information"
        );
        let first = |a: &[&str]| arity(a).unwrap().lines().next().unwrap().to_string();
        assert_eq!(
            first(&[
                "berth",
                "-H",
                "unix:///x",
                "network",
                "create",
                "--ipv6",
                "a",
                "b"
            ]),
            "berth: 'berth network create' requires 1 argument"
        );
        assert_eq!(
            first(&["berth", "network", "ls", "x"]),
            "berth: 'berth network ls' accepts no arguments"
        );
        assert_eq!(
            first(&["berth", "network", "connect", "n"]),
            "berth: 'berth network connect' requires 2 arguments"
        );
        assert_eq!(
            first(&["berth", "network", "rm"]),
            "berth: 'berth network rm' requires at least 1 argument"
        );
        assert_eq!(
            first(&["berth", "port", "c", "1", "2"]),
            "berth: 'berth port' requires at least 1 and at most 2 arguments"
        );
        assert_eq!(
            first(&["berth", "container", "port"]),
            "berth: 'berth container port' requires at least 1 and at most 2 arguments"
        );
        assert_eq!(
            first(&["berth", "run"]),
            "berth: 'berth run' requires at least 1 argument"
        );
        assert!(arity(&["berth", "ps", "--bogus"]).is_none());
        assert!(arity(&["berth", "network", "ls", "--bogus"]).is_none());
        assert_eq!(
            main_with_args(vec!["berth".into(), "network".into(), "inspect".into()]),
            1
        );
    }

    #[test]
    fn usage_errors_exit_125() {
        assert_eq!(
            main_with_args(vec!["berth".into(), "ps".into(), "--bogus".into()]),
            125
        );
        assert_eq!(main_with_args(vec!["berth".into(), "--help".into()]), 0);
    }
}
