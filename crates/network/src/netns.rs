//! Network namespaces pinned to files, so they outlive the process that made them (the daemon
//! creates a container's namespace, configures it, and only then starts the container in it).
//!
//! Namespace changes are per thread: each operation runs on a short-lived thread of its own so
//! the daemon's runtime threads never leave the daemon's namespace.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{NetworkError, Result};

fn ns_error(path: &Path, source: impl Into<std::io::Error>) -> NetworkError {
    NetworkError::Namespace {
        path: path.to_path_buf(),
        source: source.into(),
    }
}

fn on_thread<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|e| ns_error(path, e))?
        .join()
        .map_err(|_| ns_error(path, std::io::Error::other("namespace thread panicked")))?
}

/// Creates a new network namespace pinned at `path` (a bind mount of the namespace over an
/// empty file) with its loopback interface up.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ns_error(path, e))?;
    }
    File::create(path).map_err(|e| ns_error(path, e))?;
    let pin = path.to_path_buf();
    let made = on_thread(path, move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ns_error(&pin, e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &pin,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| ns_error(&pin, e))?;
        loopback_up().map_err(|e| ns_error(&pin, e))
    });
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Sets `lo` up in the calling thread's namespace (SIOCSIFFLAGS; no netlink socket needed).
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")
        .or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0"))?;
    // SAFETY: ifreq is plain data; the ioctls only read and write it.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unpins and deletes `path`; a missing path is not an error. The namespace itself dies when
/// nothing else (a process, a socket) holds it.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(ns_error(path, e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ns_error(path, e)),
    }
}

/// Runs `f` on a new thread that has joined the namespace at `ns` (a pin file or
/// `/proc/<pid>/ns/net`) and returns its result. Sockets `f` opens stay in that namespace.
pub fn run_in<T, F>(ns: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = File::open(ns).map_err(|e| ns_error(ns, e))?;
    let path: PathBuf = ns.to_path_buf();
    on_thread(ns, move || {
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| ns_error(&path, e))?;
        Ok(f())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_ns() -> String {
        std::fs::read_link("/proc/thread-self/ns/net")
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn create_join_remove() {
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("ns/c1");
        create(&pin).unwrap();
        let host = own_ns();
        let (inside, lo_up) = run_in(&pin, || {
            let ns = own_ns();
            // A socket bound to a loopback address works only with lo up.
            let up = std::net::UdpSocket::bind("127.0.0.11:0").is_ok();
            (ns, up)
        })
        .unwrap();
        assert_ne!(inside, host, "run_in joined another namespace");
        assert!(lo_up, "loopback is up in a new namespace");
        assert_eq!(own_ns(), host, "the caller's thread stays where it was");
        remove(&pin).unwrap();
        assert!(!pin.exists());
        remove(&pin).unwrap();
        assert!(run_in(&pin, || ()).is_err());
    }
}
