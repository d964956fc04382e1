//! Pre-flight check that the container's command exists and is executable,
//! so `docker run` can fail with the messages (and CLI exit codes 126/127)
//! users and scripts expect, before a container is even created.

use std::path::{Path, PathBuf};

use rustix::fs::{fstat, FileType, OFlags};

use crate::inroot::open_in_root;

/// PATH used when the image does not set one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The Display strings contain exactly what the docker CLI greps for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecCheckError {
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotInPath(String),
    #[error("exec: \"{0}\": stat {0}: no such file or directory")]
    NoSuchFile(String),
    #[error("exec: \"{0}\": permission denied")]
    PermissionDenied(String),
    #[error("exec: no command specified")]
    Empty,
}

enum Probe {
    Executable,
    NotExecutable,
    Missing,
}

fn probe(rootfs: &Path, path: &Path) -> Probe {
    // O_PATH is enough for fstat and needs no read permission.
    let fd = match open_in_root(rootfs, path, OFlags::PATH) {
        Ok(fd) => fd,
        Err(_) => return Probe::Missing,
    };
    match fstat(&fd) {
        Ok(st) => {
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft == FileType::RegularFile && st.st_mode & 0o111 != 0 {
                Probe::Executable
            } else {
                Probe::NotExecutable
            }
        }
        Err(_) => Probe::Missing,
    }
}

fn join_cwd(cwd: &str, p: &str) -> PathBuf {
    let base = if cwd.is_empty() { "/" } else { cwd };
    Path::new(base).join(p)
}

/// Checks `arg0` the way the container's `execve` will see it: names
/// without a slash are searched in `path_env` (or [`DEFAULT_PATH`]),
/// others are taken relative to `cwd`. Symlinks resolve inside `rootfs`.
pub fn check_executable(
    rootfs: &Path,
    arg0: &str,
    path_env: Option<&str>,
    cwd: &str,
) -> Result<(), ExecCheckError> {
    resolve_executable(rootfs, arg0, path_env, cwd).map(|_| ())
}

/// Like [`check_executable`], returning the path (inside `rootfs`) that
/// `execve` should be given.
pub fn resolve_executable(
    rootfs: &Path,
    arg0: &str,
    path_env: Option<&str>,
    cwd: &str,
) -> Result<PathBuf, ExecCheckError> {
    if arg0.is_empty() {
        return Err(ExecCheckError::Empty);
    }
    if arg0.contains('/') {
        let full = join_cwd(cwd, arg0);
        return match probe(rootfs, &full) {
            Probe::Executable => Ok(full),
            Probe::NotExecutable => Err(ExecCheckError::PermissionDenied(arg0.to_string())),
            Probe::Missing => Err(ExecCheckError::NoSuchFile(arg0.to_string())),
        };
    }
    let path = path_env.unwrap_or(DEFAULT_PATH);
    // Like Go's exec.LookPath: the first *executable* match wins and
    // non-executable candidates are skipped.
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = join_cwd(cwd, dir).join(arg0);
        if let Probe::Executable = probe(rootfs, &candidate) {
            return Ok(candidate);
        }
    }
    Err(ExecCheckError::NotInPath(arg0.to_string()))
}

impl ExecCheckError {
    /// The exit code dockerd reports when this stops a process from
    /// starting: 126 when it cannot be invoked, 127 when it is missing.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecCheckError::PermissionDenied(_) | ExecCheckError::Empty => 126,
            _ => 127,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::create_dir_all(r.join("app")).unwrap();
        fs::write(r.join("bin/busybox"), b"\x7fELF").unwrap();
        fs::set_permissions(r.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
        // Absolute symlink, as `busybox --install -s` makes: only valid in-root.
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        fs::write(r.join("etc/hosts"), b"").unwrap();
        fs::write(r.join("app/run.sh"), b"#!/bin/sh").unwrap();
        fs::set_permissions(r.join("app/run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn path_search_and_symlinks_in_root() {
        let d = rootfs();
        assert_eq!(check_executable(d.path(), "sh", None, "/"), Ok(()));
        assert_eq!(check_executable(d.path(), "/bin/sh", None, "/"), Ok(()));
        assert_eq!(check_executable(d.path(), "./run.sh", None, "/app"), Ok(()));
        assert_eq!(
            check_executable(d.path(), "run.sh", Some("/app"), "/"),
            Ok(())
        );
    }

    #[test]
    fn resolves_the_path_to_exec() {
        let d = rootfs();
        assert_eq!(
            resolve_executable(d.path(), "sh", None, "/"),
            Ok(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            resolve_executable(d.path(), "./run.sh", None, "/app"),
            Ok(PathBuf::from("/app/./run.sh"))
        );
        assert_eq!(ExecCheckError::NotInPath("x".into()).exit_code(), 127);
        assert_eq!(
            ExecCheckError::PermissionDenied("x".into()).exit_code(),
            126
        );
    }

    #[test]
    fn docker_cli_messages() {
        let d = rootfs();
        assert_eq!(
            check_executable(d.path(), "foo", None, "/")
                .unwrap_err()
                .to_string(),
            "exec: \"foo\": executable file not found in $PATH"
        );
        assert_eq!(
            check_executable(d.path(), "/nope", None, "/")
                .unwrap_err()
                .to_string(),
            "exec: \"/nope\": stat /nope: no such file or directory"
        );
        assert_eq!(
            check_executable(d.path(), "/etc", None, "/")
                .unwrap_err()
                .to_string(),
            "exec: \"/etc\": permission denied"
        );
        assert!(check_executable(d.path(), "/etc/hosts", None, "/")
            .unwrap_err()
            .to_string()
            .contains("permission denied"));
        // Non-executable files in PATH are skipped, not reported.
        assert_eq!(
            check_executable(d.path(), "hosts", Some("/etc"), "/"),
            Err(ExecCheckError::NotInPath("hosts".into()))
        );
    }
}
