//! `berth daemon`: dockerd's flags, the engine, the API socket, clean SIGTERM.

use anyhow::{bail, Context, Result};
use berth_engine::{Engine, EngineConfig};
use clap::Parser;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Debug)]
#[command(
    name = "berth daemon",
    about = "Run the Berth engine (serves the Docker Engine API)"
)]
struct DaemonArgs {
    /// Socket to listen on (dockerd's -H)
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: Vec<String>,
    /// Root of persistent state: images, containers, the metadata DB
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Root of runtime state: shim sockets, runtime state
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// debug, info, warn, error, fatal
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
    /// Size cap of the builder's cache ("2GB", "500m", docker's size syntax; 0: no cap).
    /// Default: 10% of the data root's filesystem, at most 20GB
    #[arg(long, value_parser = parse_cache_size)]
    builder_cache_max_size: Option<u64>,
    /// Registry to reach over plain HTTP or unverified TLS: host[:port] or a CIDR
    /// (127.0.0.0/8 and ::1 always are)
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// Mirror (https://host[:port]) tried before Docker Hub for its pulls
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// Layers a pull downloads at once
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent_downloads: u16,
    /// Layers a push uploads at once
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent_uploads: u16,
}

fn parse_cache_size(s: &str) -> std::result::Result<u64, String> {
    berth_engine::container::create::parse_size(s).ok_or_else(|| format!("invalid size: '{s}'"))
}

pub fn main(args: Vec<OsString>) -> i32 {
    let parsed = match DaemonArgs::try_parse_from(
        std::iter::once(OsString::from("berth daemon")).chain(args.into_iter().skip(2)),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let level = match parsed.log_level.as_str() {
        "fatal" => "error",
        l => l,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: cannot start runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(parsed)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}

fn socket_path(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => bail!("unsupported host {host:?}: only unix:///path sockets are served"),
    }
}

async fn bind(path: &std::path::Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!("another daemon is already serving {}", path.display());
        }
        tokio::fs::remove_file(path).await?;
    }
    let l =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

async fn run(args: DaemonArgs) -> Result<()> {
    let host = args.host.last().cloned().unwrap_or_default();
    let sock = socket_path(&host)?;
    let cache_cap = args
        .builder_cache_max_size
        .unwrap_or_else(|| berth_engine::build::default_cache_cap(&args.data_root));
    let cfg = EngineConfig {
        data_root: args.data_root,
        exec_root: args.exec_root,
        self_exe: std::env::current_exe().context("cannot find the berth binary")?,
        builder_cache_max_size: Some(cache_cap),
        registry: berth_engine::registry::RegistryOptions {
            insecure: args.insecure_registries,
            mirrors: args.registry_mirrors,
            max_concurrent_downloads: args.max_concurrent_downloads.into(),
            max_concurrent_uploads: args.max_concurrent_uploads.into(),
        },
    };
    // Bad registry flags stop the daemon before it listens, as dockerd's do.
    cfg.registry.client_config()?;
    let listener = bind(&sock).await?;
    let engine = Engine::open(cfg.clone())
        .await
        .context("cannot open the engine")?;
    tokio::fs::write(
        cfg.exec_root.join("berth.pid"),
        std::process::id().to_string(),
    )
    .await?;
    tracing::info!(socket = %sock.display(), data_root = %cfg.data_root.display(), "API listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = tokio::spawn(berth_api::serve(engine.clone(), listener, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down; containers keep running"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down; containers keep running"),
    }
    engine.begin_shutdown();
    let _ = stop_tx.send(());
    // Long-lived streams (attach, logs -f, wait) would hold a graceful shutdown forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    engine.close_networks().await;
    let _ = tokio::fs::remove_file(&sock).await;
    let _ = tokio::fs::remove_file(cfg.exec_root.join("berth.pid")).await;
    Ok(())
}
