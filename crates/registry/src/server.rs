//! Starting the registry: storage and lock, auth, the listener (plain or TLS), the
//! connections (HTTP/1.1 keep-alive, or HTTP/2 by ALPN over TLS) and the sweep of abandoned
//! uploads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::api::{router, AppState};
use crate::auth::{Auth, Htpasswd, TokenService};
use crate::error::RegistryError;
use crate::storage::{RootLock, Storage};
use crate::token::TokenSigner;
use crate::uploads::Uploads;

/// Upload sessions nobody wrote to for this long are removed.
pub const DEFAULT_UPLOAD_TTL: Duration = Duration::from_secs(3600);
/// A request body (upload) that sends nothing for this long fails.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A client must send its request headers within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub root: PathBuf,
    pub htpasswd: Option<PathBuf>,
    /// Token auth through the server's own `/token` (needs `htpasswd`).
    pub token: bool,
    pub tls: Option<TlsFiles>,
    pub upload_ttl: Duration,
}

impl ServeOptions {
    pub fn new(root: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            root: root.into(),
            htpasswd: None,
            token: false,
            tls: None,
            upload_ttl: DEFAULT_UPLOAD_TTL,
        }
    }
}

/// A registry serving in the background of the current tokio runtime; dropping it stops it.
pub struct RunningRegistry {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningRegistry {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes the connections and releases the root's lock.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Serves until `shutdown` of a clone of the stop signal, or forever.
    pub async fn wait(mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// A handle that stops the server (for signal handlers).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Opens the root (taking its lock), loads auth and TLS, binds `addr` and serves.
pub async fn start(opts: ServeOptions, addr: SocketAddr) -> Result<RunningRegistry, RegistryError> {
    let lock = RootLock::acquire(&opts.root)?;
    let storage = Arc::new(Storage::open(&opts.root)?);
    clean_store_temp(&storage);
    let (auth, tokens) = load_auth(&opts)?;
    let tls = opts.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| RegistryError::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = Arc::new(AppState {
        uploads: Uploads::new(&storage.uploads_dir),
        storage,
        auth,
        tokens,
        scheme,
        addr,
        body_idle_timeout: BODY_IDLE_TIMEOUT,
    });
    let (stop, stopped) = watch::channel(false);
    let app = router(Arc::clone(&state));
    let ttl = opts.upload_ttl;
    let task = tokio::spawn(async move {
        // The lock lives as long as the server.
        let _lock = lock;
        let sweeper = tokio::spawn(sweep_uploads(Arc::clone(&state), ttl));
        accept_loop(listener, app, tls, stopped).await;
        sweeper.abort();
    });
    tracing::info!(
        "berth registry serving {scheme}://{addr}/v2/ from {}",
        opts.root.display()
    );
    Ok(RunningRegistry {
        addr,
        stop,
        task: Some(task),
    })
}

fn load_auth(opts: &ServeOptions) -> Result<(Auth, Option<TokenService>), RegistryError> {
    let users = opts
        .htpasswd
        .as_deref()
        .map(Htpasswd::load)
        .transpose()?
        .map(Arc::new);
    match (users, opts.token) {
        (None, false) => Ok((Auth::Open, None)),
        (Some(users), false) => Ok((Auth::Basic(users), None)),
        (Some(users), true) => {
            let signer = Arc::new(TokenSigner::load_or_create(&opts.root)?);
            let service = TokenService {
                users,
                signer: Arc::clone(&signer),
            };
            Ok((Auth::Token(signer), Some(service)))
        }
        (None, true) => Err(RegistryError::Config(
            "--token needs --htpasswd (the users the token service authenticates)".into(),
        )),
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, RegistryError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| RegistryError::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(RegistryError::Tls(format!(
            "{}: no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| RegistryError::Tls(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RegistryError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The content store's temp files are only ever in use while a write runs; with the root's
/// lock held, what is left there is from a crash.
fn clean_store_temp(storage: &Storage) {
    let tmp = storage.root.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

async fn sweep_uploads(state: Arc<AppState>, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        tokio::time::sleep(every).await;
        let st = Arc::clone(&state);
        let removed = tokio::task::spawn_blocking(move || st.uploads.purge_abandoned(ttl)).await;
        for id in removed.unwrap_or_default() {
            tracing::info!("removed abandoned upload {id}");
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, app.clone(), tls.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(stream: TcpStream, app: Router, tls: Option<TlsAcceptor>) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .adaptive_window(true);
    let service = TowerToHyperService::new(app);
    let result = match tls {
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => builder.serve_connection(TokioIo::new(s), service).await,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake: {e}");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!("connection: {e}");
    }
}
