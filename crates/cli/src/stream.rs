//! The CLI side of hijacked attach streams: stdin forwarding with half-close and client-side
//! detach keys, output copying, raw terminal mode, TTY resize and signal proxying.

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::Docker;
use futures_util::StreamExt;
use std::io::Write;
use std::os::fd::BorrowedFd;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

pub fn isatty(fd: i32) -> bool {
    unsafe { libc::isatty(fd) == 1 }
}

/// The terminal size (rows, cols) of `fd`, if it is a terminal.
pub fn term_size(fd: i32) -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && (ws.ws_row > 0 || ws.ws_col > 0) {
        Some((ws.ws_row, ws.ws_col))
    } else {
        None
    }
}

/// Puts stdin in raw mode until dropped.
pub struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    pub fn enable() -> RawTerminal {
        use nix::sys::termios::*;
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        let saved = match tcgetattr(fd) {
            Ok(t) => t,
            Err(_) => return RawTerminal { saved: None },
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = self.saved.take() {
            let fd = unsafe { BorrowedFd::borrow_raw(0) };
            let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t);
        }
    }
}

/// Reads stdin on a plain thread (so the runtime never waits on it at exit).
/// Yields chunks; `None` is EOF.
pub fn spawn_stdin_reader() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = unsafe { libc::read(0, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                let _ = tx.blocking_send(None);
                return;
            }
            if n == 0 {
                let _ = tx.blocking_send(None);
                return;
            }
            if tx.blocking_send(Some(buf[..n as usize].to_vec())).is_err() {
                return;
            }
        }
    });
    rx
}

pub use berth_units::detach_keys::parse as parse_detach_keys;
use berth_units::detach_keys::Matcher;

#[derive(Debug, PartialEq)]
pub enum StreamEnd {
    /// The output stream ended (the container's streams closed)
    Done,
    /// The user typed the detach keys
    Detached,
}

fn write_output(item: LogOutput) {
    match item {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&message);
            let _ = e.flush();
        }
        LogOutput::StdOut { message }
        | LogOutput::Console { message }
        | LogOutput::StdIn { message } => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&message);
            let _ = o.flush();
        }
    }
}

/// Copies the attach output to our stdout/stderr and (optionally) our stdin to the
/// container, half-closing on EOF; returns when the output ends or the user detaches.
pub async fn pump(
    results: AttachContainerResults,
    stdin: Option<mpsc::Receiver<Option<Vec<u8>>>>,
    detach_keys: Vec<u8>,
) -> anyhow::Result<StreamEnd> {
    let AttachContainerResults {
        mut output,
        mut input,
    } = results;
    let (det_tx, mut det_rx) = mpsc::channel::<()>(1);
    let input_task = stdin.map(|mut rx| {
        tokio::spawn(async move {
            let mut proxy = Matcher::new(detach_keys);
            while let Some(msg) = rx.recv().await {
                match msg {
                    Some(chunk) => {
                        let fed = proxy.feed(&chunk);
                        let (fwd, detached) = (fed.forward, fed.detached);
                        if !fwd.is_empty()
                            && (input.write_all(&fwd).await.is_err()
                                || input.flush().await.is_err())
                        {
                            return;
                        }
                        if detached {
                            let _ = det_tx.send(()).await;
                            return;
                        }
                    }
                    None => break,
                }
            }
            let _ = input.shutdown().await;
            // keep the write half alive until the output ends
            std::future::pending::<()>().await;
        })
    });
    let result = loop {
        tokio::select! {
            item = output.next() => match item {
                Some(Ok(item)) => write_output(item),
                Some(Err(e)) => {
                    tracing::debug!("attach stream error: {e}");
                    break Ok(StreamEnd::Done);
                }
                None => break Ok(StreamEnd::Done),
            },
            Some(()) = det_rx.recv() => break Ok(StreamEnd::Detached),
        }
    };
    if let Some(t) = input_task {
        t.abort();
    }
    result
}

/// Sends the current terminal size, retrying as the docker CLI does, then follows SIGWINCH.
/// Returns the watcher task (abort it when done).
pub fn monitor_tty_size(docker: Docker, id: String, exec: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let resize = |docker: Docker, id: String| async move {
            if let Some((h, w)) = term_size(1).or_else(|| term_size(0)) {
                if exec {
                    let opts = bollard::exec::ResizeExecOptions {
                        height: h,
                        width: w,
                    };
                    return docker.resize_exec(&id, opts).await.is_ok();
                }
                let opts = bollard::query_parameters::ResizeContainerTTYOptions {
                    h: h as i32,
                    w: w as i32,
                };
                docker.resize_container_tty(&id, opts).await.is_ok()
            } else {
                true
            }
        };
        let mut delay = 10u64;
        for _ in 0..10 {
            if resize(docker.clone(), id.clone()).await {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            delay = (delay * 2).min(100);
        }
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(docker.clone(), id.clone()).await;
        }
    })
}

/// Forwards the usual terminating signals to the container (`--sig-proxy`).
pub fn proxy_signals(docker: Docker, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = mpsc::channel::<&'static str>(8);
        for (k, name) in kinds {
            if let Ok(mut s) = signal(k) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(name).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let opts = bollard::query_parameters::KillContainerOptions {
                signal: name.to_string(),
            };
            if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                tracing::debug!("error sending signal: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-%%").is_err());
        let mut p = Matcher::new(vec![16, 17]);
        let mut feed = |c: &[u8]| {
            let f = p.feed(c);
            (f.forward, f.detached)
        };
        assert_eq!(feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(feed(&[16]), (vec![], false));
        assert_eq!(feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(feed(&[b'y', 16, 17, b'z']), (vec![b'y'], true));
        let mut p = Matcher::new(vec![16, 17]);
        let f = p.feed(&[16, 16, 17]);
        assert_eq!((f.forward, f.detached), (vec![16], true));
    }
}

/// The outcome of `POST /containers/{id}/wait`: the exit code, or an error message.
pub type WaitOutcome = Result<i64, String>;

/// Issues `POST /containers/{id}/wait?condition=…` and returns once the daemon has answered
/// with its headers (so the wait is registered before we start the container, as the docker
/// CLI guarantees); the handle resolves to the exit status. bollard's wait stream cannot
/// separate "headers received" from "result received", so on UNIX sockets this speaks the
/// same API request directly.
pub async fn wait_registered(
    docker: &Docker,
    id: &str,
    condition: &str,
) -> anyhow::Result<tokio::task::JoinHandle<WaitOutcome>> {
    let host = crate::client::current_host();
    let Some(path) = host.strip_prefix("unix://").map(str::to_string) else {
        return Ok(spawn_bollard_wait(
            docker.clone(),
            id.to_string(),
            condition.to_string(),
        ));
    };
    use tokio::io::AsyncReadExt;
    let mut sock = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|_| crate::client::status(1, crate::client::cannot_connect(&host)))?;
    let v = docker.client_version();
    let req = format!(
        "POST /v{}/containers/{}/wait?condition={} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        v, id, condition
    );
    sock.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            anyhow::bail!("unexpected EOF from the daemon while waiting for the container");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let mut rest = buf[header_end..].to_vec();
    async fn read_body(
        mut sock: tokio::net::UnixStream,
        mut rest: Vec<u8>,
        chunked: bool,
    ) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let _ = sock.read_to_end(&mut rest).await;
        if chunked {
            dechunk(&rest)
        } else {
            rest
        }
    }
    if !(200..300).contains(&status) {
        let body = read_body(sock, std::mem::take(&mut rest), chunked).await;
        let msg = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(anyhow::Error::new(
            bollard::errors::Error::DockerResponseServerError {
                status_code: status,
                message: msg,
            },
        ));
    }
    Ok(tokio::spawn(async move {
        let body = read_body(sock, rest, chunked).await;
        let text = String::from_utf8_lossy(&body);
        let start = text.find('{');
        let v: Option<serde_json::Value> = start.and_then(|s| {
            serde_json::Deserializer::from_str(&text[s..])
                .into_iter::<serde_json::Value>()
                .next()?
                .ok()
        });
        match v {
            Some(v) => {
                if let Some(msg) = v
                    .get("Error")
                    .and_then(|e| e.get("Message"))
                    .and_then(|m| m.as_str())
                {
                    if !msg.is_empty() {
                        return Err(msg.to_string());
                    }
                }
                Ok(v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(0))
            }
            None => Err("unexpected EOF".to_string()),
        }
    }))
}

pub(crate) fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(le) = b[i..].windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size_line = String::from_utf8_lossy(&b[i..i + le]).to_string();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        i += le + 2;
        if size == 0 {
            break;
        }
        let end = (i + size).min(b.len());
        out.extend_from_slice(&b[i..end]);
        i = end + 2;
    }
    out
}

fn spawn_bollard_wait(
    docker: Docker,
    id: String,
    condition: String,
) -> tokio::task::JoinHandle<WaitOutcome> {
    tokio::spawn(async move {
        let opts = bollard::query_parameters::WaitContainerOptions { condition };
        let mut s = docker.wait_container(&id, Some(opts));
        match s.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { error, code })) => {
                if error.is_empty() {
                    Ok(code)
                } else {
                    Err(error)
                }
            }
            Some(Err(e)) => Err(crate::client::api_error_message(&e)),
            None => Err("unexpected EOF".into()),
        }
    })
}

#[cfg(test)]
mod wait_tests {
    #[test]
    fn dechunks() {
        let b = b"19\r\n{\"StatusCode\":3,\"Error\":n\r\n5\r\null}\n\r\n0\r\n\r\n";
        assert_eq!(
            super::dechunk(b),
            b"{\"StatusCode\":3,\"Error\":null}\n".to_vec()
        );
    }
}
