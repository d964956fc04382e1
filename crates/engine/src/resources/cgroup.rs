//! A container's cgroup (`/berth/<id>`, set as the spec's `cgroupsPath`), read and written
//! directly through cgroupfs. The daemon only touches files here, never libcontainer: on v1
//! each controller has its own hierarchy (`/sys/fs/cgroup/<controller>/berth/<id>`), on v2
//! there is one directory (`/sys/fs/cgroup/berth/<id>`).

use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    /// `root` is the cgroupfs mount; `rel` the container's path below each controller.
    V1 {
        root: PathBuf,
        rel: String,
    },
    V2 {
        dir: PathBuf,
    },
}

/// Whether the host mounts the unified hierarchy at the cgroup root (pure v2).
pub fn is_v2(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

impl Cgroup {
    pub fn for_container(id: &str) -> Self {
        Self::under(Path::new(ROOT), id)
    }

    pub fn under(root: &Path, id: &str) -> Self {
        let rel = format!("berth/{id}");
        if is_v2(root) {
            Cgroup::V2 {
                dir: root.join(rel),
            }
        } else {
            Cgroup::V1 {
                root: root.to_path_buf(),
                rel,
            }
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Cgroup::V2 { .. })
    }

    /// The file `name` of `controller` (v1) or of the unified directory (v2).
    pub fn file(&self, controller: &str, name: &str) -> PathBuf {
        match self {
            Cgroup::V1 { root, rel } => root.join(controller).join(rel).join(name),
            Cgroup::V2 { dir } => dir.join(name),
        }
    }

    pub fn read(&self, controller: &str, name: &str) -> io::Result<String> {
        std::fs::read_to_string(self.file(controller, name))
    }

    /// A single-number file; `max` (v2's "unlimited") reads as None.
    pub fn read_u64(&self, controller: &str, name: &str) -> Option<u64> {
        self.read(controller, name).ok().and_then(|s| parse_u64(&s))
    }

    pub fn write(&self, controller: &str, name: &str, value: &str) -> io::Result<()> {
        let path = self.file(controller, name);
        std::fs::write(&path, value).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("writing {value:?} to {}: {e}", path.display()),
            )
        })
    }

    /// Every process in the container's cgroup, exec'd ones included.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let text = match self {
            // Every v1 controller holds all the container's processes; pids is always there.
            Cgroup::V1 { .. } => self
                .read("pids", "cgroup.procs")
                .or_else(|_| self.read("memory", "cgroup.procs"))?,
            Cgroup::V2 { .. } => self.read("", "cgroup.procs")?,
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    pub fn exists(&self) -> bool {
        match self {
            Cgroup::V1 { .. } => self.file("pids", "").exists() || self.file("memory", "").exists(),
            Cgroup::V2 { dir } => dir.exists(),
        }
    }
}

pub fn parse_u64(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat) as pairs.
pub fn flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = Cgroup::under(tmp.path(), "abc");
        assert_eq!(
            cg.file("memory", "memory.stat"),
            tmp.path().join("memory/berth/abc/memory.stat")
        );
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let cg = Cgroup::under(tmp.path(), "abc");
        assert!(cg.is_v2());
        assert_eq!(
            cg.file("memory", "memory.stat"),
            tmp.path().join("berth/abc/memory.stat")
        );
    }

    #[test]
    fn keyed_files() {
        let t = "cache 4096\nrss 8192\ntotal_inactive_file 100\n";
        assert_eq!(keyed(t, "rss"), Some(8192));
        assert_eq!(keyed(t, "missing"), None);
        assert_eq!(flat_keyed(t).len(), 3);
        assert_eq!(parse_u64("max\n"), None);
        assert_eq!(parse_u64("42\n"), Some(42));
    }
}
