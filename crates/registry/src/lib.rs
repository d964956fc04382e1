//! berth-registry: `berth registry serve` — an OCI distribution-spec v1.1 registry (pull, push
//! monolithic/chunked/resumable, cross-repository mount, tags and catalog with pagination,
//! deletes, referrers, content verification, htpasswd basic auth and token auth, TLS) — and
//! `berth registry gc`, which removes blobs no manifest reaches.

mod api;
mod auth;
mod db;
mod error;
mod gc;
mod manifest;
mod names;
mod server;
mod storage;
mod token;
mod uploads;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use error::RegistryError;
pub use gc::{gc, GcReport};
pub use server::{start, RunningRegistry, ServeOptions, TlsFiles, DEFAULT_UPLOAD_TTL};

#[derive(Parser, Debug)]
#[command(
    name = "berth registry",
    about = "Run an OCI distribution registry, or collect its garbage"
)]
struct RegistryArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve an OCI distribution-spec v1.1 registry (the Docker Registry HTTP API v2)
    Serve(ServeArgs),
    /// Remove blobs no manifest references, and abandoned uploads (not while a server runs)
    Gc(GcArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (host:port; ":5000" listens on all interfaces)
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: String,
    /// Where the registry keeps its content
    #[arg(long, default_value = "/var/lib/berth/registry")]
    root: PathBuf,
    /// Apache htpasswd file (bcrypt entries, `htpasswd -B`): basic auth for every request
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Token auth: the server is its own token service at /token (needs --htpasswd)
    #[arg(long, requires = "htpasswd")]
    token: bool,
    /// TLS certificate chain (PEM): serve HTTPS
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Remove upload sessions idle for this many seconds
    #[arg(long, default_value_t = DEFAULT_UPLOAD_TTL.as_secs(), hide = true)]
    upload_ttl: u64,
    /// debug, info, warn, error, fatal
    #[arg(short = 'l', long, default_value = "info")]
    log_level: String,
}

#[derive(clap::Args, Debug)]
struct GcArgs {
    /// The registry's root (as given to `serve`)
    #[arg(long, default_value = "/var/lib/berth/registry")]
    root: PathBuf,
    /// Print what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
}

/// `berth registry <serve|gc> …`; `args` is the whole command line (`berth registry …`).
/// Returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let parsed = match RegistryArgs::try_parse_from(
        std::iter::once(OsString::from("berth registry")).chain(args.into_iter().skip(2)),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let result = match parsed.command {
        Command::Serve(a) => run_serve(a),
        Command::Gc(a) => run_gc(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth registry: {e:#}");
            1
        }
    }
}

fn init_logging(level: &str) {
    let level = if level == "fatal" { "error" } else { level };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run_serve(a: ServeArgs) -> anyhow::Result<()> {
    init_logging(&a.log_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr = resolve_addr(&a.addr).await?;
        let opts = ServeOptions {
            root: a.root,
            htpasswd: a.htpasswd,
            token: a.token,
            tls: match (a.tls_cert, a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                _ => None,
            },
            upload_ttl: std::time::Duration::from_secs(a.upload_ttl.max(1)),
        };
        let server = start(opts, addr).await?;
        let stop = server.stopper();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("stopping");
            let _ = stop.send(true);
        });
        server.wait().await;
        anyhow::Ok(())
    })
}

/// `host:port`, `[v6]:port`, a name to resolve, or `:port` for every interface.
async fn resolve_addr(s: &str) -> anyhow::Result<SocketAddr> {
    let s = match s.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => s.to_string(),
    };
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let found = tokio::net::lookup_host(s.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("--addr {s}: {e}"))?
        .next();
    found.ok_or_else(|| anyhow::anyhow!("--addr {s}: no address"))
}

fn run_gc(a: GcArgs) -> anyhow::Result<()> {
    let report = gc(&a.root, a.dry_run)?;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for (d, size) in &report.blobs {
        println!("{verb} blob {d} ({size} bytes)");
    }
    for id in &report.uploads {
        println!("{verb} upload {id}");
    }
    println!(
        "{verb} {} blobs ({} bytes) and {} uploads; {} blobs kept",
        report.blobs.len(),
        report.bytes(),
        report.uploads.len(),
        report.kept
    );
    Ok(())
}
