//! `docker logs`: reads the json-file log the shim writes (with its rotated siblings) and,
//! with `follow`, keeps reading until the container stops or the client goes away.

use crate::error::Result;
use crate::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub tail: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct LogEntry {
    /// 1 stdout, 2 stderr: the stream byte of Docker's multiplexed frame.
    pub stream: u8,
    pub time: DateTime<Utc>,
    pub line: Vec<u8>,
}

#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: DateTime<Utc>,
}

fn parse(line: &[u8]) -> Option<LogEntry> {
    let j: JsonLine = serde_json::from_slice(line).ok()?;
    Some(LogEntry {
        stream: if j.stream == "stderr" { 2 } else { 1 },
        time: j.time,
        line: j.log.into_bytes(),
    })
}

/// Oldest first: container.log.N … container.log.1, container.log.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    let base = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(dir) = path.parent() {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name
                    .strip_prefix(&format!("{base}."))
                    .and_then(|n| n.parse().ok())
                {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(path.to_path_buf());
    files
}

struct Reader {
    opts: LogOptions,
    tx: mpsc::Sender<LogEntry>,
}

impl Reader {
    fn wanted(&self, e: &LogEntry) -> bool {
        (if e.stream == 2 {
            self.opts.stderr
        } else {
            self.opts.stdout
        }) && self.opts.since.is_none_or(|s| e.time >= s)
            && self.opts.until.is_none_or(|u| e.time <= u)
    }

    /// Returns false when the client has gone away.
    fn send(&self, e: LogEntry) -> bool {
        !self.wanted(&e) || self.tx.blocking_send(e).is_ok()
    }

    /// Reads complete lines; a partial last line (being written) is left for the next pass.
    fn drain(&self, r: &mut BufReader<File>, tail: Option<&mut VecDeque<LogEntry>>) -> bool {
        let mut tail = tail;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let start = r.stream_position().unwrap_or(0);
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return true,
                Ok(_) if !buf.ends_with(b"\n") => {
                    let _ = r.seek(SeekFrom::Start(start));
                    return true;
                }
                Ok(_) => {}
            }
            let Some(e) = parse(&buf) else { continue };
            match tail.as_deref_mut() {
                Some(q) => {
                    if self.wanted(&e) {
                        q.push_back(e);
                        if q.len() > self.opts.tail.unwrap_or(usize::MAX) {
                            q.pop_front();
                        }
                    }
                }
                None => {
                    if !self.send(e) {
                        return false;
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Streams log entries; also returns whether the container has a TTY (raw, unframed output).
    pub fn container_logs(
        self: &Arc<Self>,
        key: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<LogEntry>)> {
        let h = self.containers.find(key)?;
        let rec = h.snapshot();
        let (tx, rx) = mpsc::channel(256);
        let path = PathBuf::from(&rec.log_path);
        let handle = h.clone();
        tokio::task::spawn_blocking(move || {
            let reader = Reader { opts, tx };
            let mut current: Option<(BufReader<File>, u64)> = None;
            let mut tail = reader.opts.tail.map(|_| VecDeque::new());
            for f in log_files(&path) {
                let Ok(file) = File::open(&f) else { continue };
                let ino = file.metadata().map(|m| m.ino()).unwrap_or(0);
                let mut r = BufReader::new(file);
                if !reader.drain(&mut r, tail.as_mut()) {
                    return;
                }
                if f == path {
                    current = Some((r, ino));
                }
            }
            for e in tail.take().unwrap_or_default() {
                if reader.tx.blocking_send(e).is_err() {
                    return;
                }
            }
            if !reader.opts.follow {
                return;
            }
            loop {
                let running = handle.snapshot().state.is_running() && !*handle.removed.borrow();
                if let Some((r, _)) = current.as_mut() {
                    if !reader.drain(r, None) {
                        return;
                    }
                }
                // The shim rotated the file: finish the old one, continue with the new.
                let now_ino = std::fs::metadata(&path).map(|m| m.ino()).ok();
                if now_ino.is_some() && now_ino != current.as_ref().map(|c| c.1) {
                    if let Ok(file) = File::open(&path) {
                        current = Some((BufReader::new(file), now_ino.unwrap_or(0)));
                        continue;
                    }
                }
                if !running || reader.tx.is_closed() {
                    if let Some((r, _)) = current.as_mut() {
                        reader.drain(r, None);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok((rec.tty(), rx))
    }
}
