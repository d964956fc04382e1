//! Network namespaces pinned to files, so they outlive the process that made them (the daemon
//! creates a container's namespace, configures it, and only then starts the container in it).

use std::path::Path;

use crate::error::Result;

/// Creates a new network namespace pinned at `path` (a bind mount of the namespace over an
/// empty file) with its loopback interface up.
pub fn create(path: &Path) -> Result<()> {
    let _ = path;
    unimplemented!("netns::create")
}

/// Unpins and deletes `path`; a missing path is not an error. The namespace itself dies when
/// nothing else (a process, a socket) holds it.
pub fn remove(path: &Path) -> Result<()> {
    let _ = path;
    unimplemented!("netns::remove")
}

/// Runs `f` on a new thread that has joined the namespace at `ns` (a pin file or
/// `/proc/<pid>/ns/net`) and returns its result. Sockets `f` opens stay in that namespace.
pub fn run_in<T, F>(ns: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let _ = (ns, f);
    unimplemented!("netns::run_in")
}
