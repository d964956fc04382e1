//! Docker's `json-file` log format with size-based rotation.
//!
//! One JSON object per line of output:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-28T13:45:01.123456789Z"}`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

/// Lines longer than this are split into several entries (Docker's 16 KiB
/// buffer), the pieces written without a trailing `\n`.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

pub struct JsonLogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Incomplete line per stream, waiting for its `\n`.
    partial: [Vec<u8>; 2],
}

impl JsonLogWriter {
    /// Opens (appending to) `path`. `max_size` 0 = unlimited; `max_files`
    /// counts the live file too, so 1 means "truncate when full".
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Feeds raw output; complete lines are written at once.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> io::Result<()> {
        let idx = stream as usize;
        while !data.is_empty() {
            let room = MAX_LINE - self.partial[idx].len();
            let window = &data[..data.len().min(room)];
            if let Some(nl) = window.iter().position(|b| *b == b'\n') {
                let mut line = std::mem::take(&mut self.partial[idx]);
                line.extend_from_slice(&window[..=nl]);
                self.emit(stream, &line)?;
                data = &data[nl + 1..];
            } else {
                self.partial[idx].extend_from_slice(window);
                data = &data[window.len()..];
                if self.partial[idx].len() >= MAX_LINE {
                    let line = std::mem::take(&mut self.partial[idx]);
                    self.emit(stream, &line)?;
                }
            }
        }
        Ok(())
    }

    /// Writes any final partial lines (without `\n`), e.g. at exit.
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.emit(stream, &line)?;
            }
        }
        self.file.flush()
    }

    fn emit(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        // Invalid UTF-8 becomes U+FFFD, as Go's encoder does for Docker.
        let text = String::from_utf8_lossy(line);
        let mut buf = serde_json::to_vec(&Entry {
            log: &text,
            stream: stream.as_str(),
            time: &time,
        })?;
        buf.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    /// container.log -> .1 -> .2 ...; the oldest beyond max_files goes.
    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let last = self.max_files - 1;
        match fs::remove_file(self.rotated(last)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..last).rev() {
            match fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, self.rotated(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn entries(p: &Path) -> Vec<Value> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_partial_and_streams() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("container.log");
        let mut w = JsonLogWriter::open(&p, 0, 1).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.flush_partial().unwrap();
        let e = entries(&p);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0]["log"].as_str(), e[0]["stream"].as_str()),
            (Some("oops\n"), Some("stderr"))
        );
        assert_eq!(e[1]["log"], "hello\n");
        assert_eq!(e[2]["log"], "wor");
        let t = e[0]["time"].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.len() == "2026-11-28T13:45:01.123456789Z".len(),
            "{t}"
        );
    }

    #[test]
    fn long_lines_split() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = JsonLogWriter::open(&p, 0, 1).unwrap();
        let mut data = vec![b'a'; MAX_LINE * 2 + 10];
        data.push(b'\n');
        w.write(Stream::Stdout, &data).unwrap();
        let e = entries(&p);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0]["log"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(
            e[2]["log"].as_str().unwrap(),
            format!("{}\n", "a".repeat(10))
        );
    }

    #[test]
    fn rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = JsonLogWriter::open(&p, 300, 3).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&p).unwrap().len() <= 300);
        assert!(d.path().join("c.log.1").exists());
        assert!(d.path().join("c.log.2").exists());
        assert!(!d.path().join("c.log.3").exists());
        let last = entries(&p);
        assert_eq!(last.last().unwrap()["log"], "line 19\n");

        let p = d.path().join("t.log");
        let mut w = JsonLogWriter::open(&p, 200, 1).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&p).unwrap().len() <= 200);
        assert!(!d.path().join("t.log.1").exists());
    }
}
