//! The shim's own diagnostics, appended to `<state_dir>/shim.log`.
//!
//! A plain file rather than a tracing subscriber: the shim must stay tiny
//! and must not add locks that libcontainer's cloned children could
//! inherit held.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use chrono::{SecondsFormat, Utc};

#[derive(Clone)]
pub(crate) struct ShimLog(Option<Rc<File>>);

impl ShimLog {
    pub(crate) fn open(path: &Path) -> Self {
        ShimLog(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
                .map(Rc::new),
        )
    }

    fn line(&self, level: &str, msg: &str) {
        if let Some(f) = &self.0 {
            let t = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            let _ = (&**f).write_all(format!("{t} {level} {msg}\n").as_bytes());
        }
    }

    pub(crate) fn info(&self, msg: &str) {
        self.line("INFO", msg);
    }

    pub(crate) fn error(&self, msg: &str) {
        self.line("ERROR", msg);
    }
}
