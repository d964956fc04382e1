//! The exit record the shim leaves behind in `<state_dir>/exit.json`.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const EXIT_FILE: &str = "exit.json";

/// How the container's init ended. Also the reply to the `wait` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit status, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, UTC.
    pub finished_at: String,
}

/// Reads `<state_dir>/exit.json`; `None` if absent or unreadable (the
/// container has not exited, or the shim died before recording it).
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Writes exit.json atomically (temp file, fsync, rename) so a daemon
/// reading it after a crash never sees half a document.
pub fn write_exit_file(state_dir: &Path, st: &ExitStatus) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(state_dir)?;
    serde_json::to_writer(&mut tmp, st)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(state_dir.join(EXIT_FILE))
        .map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_exit_file(d.path()).is_none());
        let st = ExitStatus {
            exit_code: 137,
            oom_killed: true,
            finished_at: "2026-11-28T13:45:01.123456789Z".into(),
        };
        write_exit_file(d.path(), &st).unwrap();
        assert_eq!(read_exit_file(d.path()), Some(st));
    }
}
