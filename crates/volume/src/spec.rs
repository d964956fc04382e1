//! What a mount request means, with Docker's rules and error wording: the `-v` strings of
//! `HostConfig.Binds`, the `--mount` objects of `HostConfig.Mounts`, the `--tmpfs` entries of
//! `HostConfig.Tmpfs`, the image's and `Config.Volumes`' anonymous volumes and
//! `--volumes-from`. Every error is `VolumeError::Invalid` (the API's 400).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }

    pub fn parse(s: &str) -> Option<Propagation> {
        Some(match s {
            "private" => Propagation::Private,
            "rprivate" => Propagation::Rprivate,
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountKind {
    /// A host path (cleaned, absolute).
    Bind {
        source: PathBuf,
        /// The `-v` form creates a missing source directory at start; `--mount` refuses a
        /// missing source at create unless `CreateMountpoint`.
        create_missing: bool,
        /// `bind-nonrecursive`: submounts of the source are not carried over.
        #[serde(default)]
        non_recursive: bool,
    },
    /// A volume; `name: None` is an anonymous one (the engine names it).
    Volume {
        name: Option<String>,
        /// "local" when not given.
        driver: String,
        #[serde(default)]
        driver_opts: HashMap<String, String>,
        #[serde(default)]
        labels: HashMap<String, String>,
        /// `nocopy` / `volume-nocopy`: no copy-up from the image.
        #[serde(default)]
        no_copy: bool,
        /// `volume-subpath`: a relative path inside the volume, without `..`.
        #[serde(default)]
        subpath: Option<String>,
    },
    /// A tmpfs with its OCI mount options, merged as dockerd does (defaults `noexec`,
    /// `nosuid`, `nodev`; later flags win; `size=`/`mode=` from `tmpfs-size`/`tmpfs-mode`).
    Tmpfs { options: Vec<String> },
}

/// One validated mount request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Absolute and cleaned; never "/".
    pub destination: String,
    pub read_only: bool,
    /// `Mode` as `docker inspect` shows it (what the user typed after the second colon for
    /// `-v`; "z" for volumes, "" for binds and tmpfs with `--mount`, as dockerd).
    pub mode: String,
    /// Binds only; `None` means Docker's default (`rprivate`).
    pub propagation: Option<Propagation>,
}

impl MountSpec {
    /// The propagation a bind gets (its own or `rprivate`); `None` for volumes and tmpfs.
    pub fn effective_propagation(&self) -> Option<Propagation> {
        match self.kind {
            MountKind::Bind { .. } => Some(self.propagation.unwrap_or(Propagation::Rprivate)),
            _ => None,
        }
    }
}

/// One `HostConfig.Binds` entry: `[source:]destination[:mode]`. A source starting with `/` is
/// a host path, otherwise a volume name (validated); modes are `ro|rw`, `z|Z`, one
/// propagation, `nocopy`, `consistent|cached|delegated`.
pub fn parse_bind(raw: &str) -> crate::Result<MountSpec> {
    todo!("{raw}")
}

/// One `HostConfig.Mounts` entry (`--mount`). A bind's source must be absolute and, unless
/// `CreateMountpoint`, exist (checked on the host now, as dockerd does at create); options
/// of another type's kind (`VolumeOptions` on a bind…) are refused.
pub fn from_api(m: &bollard_stubs::models::Mount) -> crate::Result<MountSpec> {
    todo!("{m:?}")
}

/// One `HostConfig.Tmpfs` entry (`--tmpfs /run:size=64m,mode=1777`).
pub fn parse_tmpfs(destination: &str, options: &str) -> crate::Result<MountSpec> {
    todo!("{destination} {options}")
}

/// An anonymous volume at `destination` (a key of the image's or the request's
/// `Config.Volumes`).
pub fn anonymous(destination: &str) -> crate::Result<MountSpec> {
    todo!("{destination}")
}

/// A `--volumes-from` entry `container[:ro|:rw]`: the container, and the access mode that
/// overrides the source's (`None`: as in the source container).
pub fn parse_volumes_from(raw: &str) -> crate::Result<(String, Option<bool>)> {
    todo!("{raw}")
}

/// Go's `filepath.Clean` of an absolute path.
pub fn clean_path(p: &str) -> String {
    todo!("{p}")
}
