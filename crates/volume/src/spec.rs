//! What a mount request means, with Docker's rules and error wording: the `-v` strings of
//! `HostConfig.Binds`, the `--mount` objects of `HostConfig.Mounts`, the `--tmpfs` entries of
//! `HostConfig.Tmpfs`, the image's and `Config.Volumes`' anonymous volumes and
//! `--volumes-from`. Every error is `VolumeError::Invalid` (the API's 400).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

use bollard_stubs::models::{Mount, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType};

use crate::VolumeError;

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
    let invalid_spec = || VolumeError::Invalid(format!("invalid volume specification: '{raw}'"));
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec());
    }
    let (source, target, mode) = match parts[..] {
        [target] => ("", target, ""),
        // "/foo:rw" is a destination with a mode but no source: Docker refuses it.
        [_, second] if Modes::parse(second).is_some() => return Err(invalid_spec()),
        [source, target] => (source, target, ""),
        [source, target, mode] => (source, target, mode),
        _ => return Err(invalid_spec()),
    };
    let modes = Modes::parse(mode).ok_or_else(|| invalid_mode(mode))?;
    let bind = source.starts_with('/');
    let kind_name = if bind { "bind" } else { "volume" };
    let wrap = |msg: String| {
        VolumeError::Invalid(format!(
            "invalid volume specification: '{raw}': {}",
            mount_config_text(kind_name, &msg)
        ))
    };
    let destination = validate_target(target).map_err(wrap)?;
    let kind = if bind {
        // A copy mode puts VolumeOptions on the mount in moby, which a bind refuses.
        if modes.no_copy {
            return Err(wrap(extra_field("VolumeOptions")));
        }
        MountKind::Bind {
            source: PathBuf::from(clean_path(source)),
            create_missing: true,
            non_recursive: false,
        }
    } else {
        // A propagation puts BindOptions on the mount in moby, which a volume refuses.
        if modes.propagation.is_some() {
            return Err(wrap(extra_field("BindOptions")));
        }
        let name = (!source.is_empty()).then(|| source.to_string());
        if let Some(name) = &name {
            crate::name::validate(name)?;
        }
        MountKind::Volume {
            name,
            driver: DEFAULT_DRIVER.to_string(),
            driver_opts: HashMap::new(),
            labels: HashMap::new(),
            no_copy: modes.no_copy,
            subpath: None,
        }
    };
    Ok(MountSpec {
        mode: if !bind && mode.is_empty() {
            VOLUME_MODE.to_string()
        } else {
            mode.to_string()
        },
        propagation: if bind { modes.propagation } else { None },
        kind,
        destination,
        read_only: modes.read_only,
    })
}

/// One `HostConfig.Mounts` entry (`--mount`). A bind's source must be absolute and, unless
/// `CreateMountpoint`, exist (checked on the host now, as dockerd does at create); options
/// of another type's kind (`VolumeOptions` on a bind…) are refused.
pub fn from_api(m: &Mount) -> crate::Result<MountSpec> {
    let type_name = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let err = |msg: String| VolumeError::Invalid(mount_config_text(&type_name, &msg));
    let target = m.target.as_deref().unwrap_or_default();
    if target.is_empty() {
        return Err(err(missing_field("Target")));
    }
    let destination = validate_target(target).map_err(err)?;
    let source = m.source.as_deref().unwrap_or_default();
    let read_only = m.read_only.unwrap_or(false);
    let refuse = |present: bool, field: &str| match present {
        true => Err(err(extra_field(field))),
        false => Ok(()),
    };
    let (kind, mode, propagation) = match m.typ {
        Some(MountType::BIND) => {
            refuse(m.volume_options.is_some(), "VolumeOptions")?;
            refuse(m.tmpfs_options.is_some(), "TmpfsOptions")?;
            let (kind, propagation) = api_bind(m, source).map_err(err)?;
            (kind, String::new(), propagation)
        }
        Some(MountType::VOLUME) => {
            refuse(m.bind_options.is_some(), "BindOptions")?;
            refuse(m.tmpfs_options.is_some(), "TmpfsOptions")?;
            (
                api_volume(m, source, read_only)?,
                VOLUME_MODE.to_string(),
                None,
            )
        }
        Some(MountType::TMPFS) => {
            refuse(m.bind_options.is_some(), "BindOptions")?;
            refuse(m.volume_options.is_some(), "VolumeOptions")?;
            refuse(!source.is_empty(), "Source")?;
            let data = tmpfs_api_options(m.tmpfs_options.as_ref(), read_only).map_err(err)?;
            let options = merge_tmpfs_options(&data).map_err(VolumeError::Invalid)?;
            (MountKind::Tmpfs { options }, String::new(), None)
        }
        _ => return Err(err("mount type unknown".to_string())),
    };
    Ok(MountSpec {
        kind,
        destination,
        read_only,
        mode,
        propagation,
    })
}

/// One `HostConfig.Tmpfs` entry (`--tmpfs /run:size=64m,mode=1777`).
pub fn parse_tmpfs(destination: &str, options: &str) -> crate::Result<MountSpec> {
    let destination = validate_target(destination).map_err(VolumeError::Invalid)?;
    let data: Vec<String> = match options {
        "" => Vec::new(),
        o => o.split(',').map(str::to_string).collect(),
    };
    let options = merge_tmpfs_options(&data).map_err(VolumeError::Invalid)?;
    // The merge keeps only the last of "ro"/"rw".
    let read_only = options.iter().any(|o| o == "ro");
    Ok(MountSpec {
        kind: MountKind::Tmpfs { options },
        destination,
        read_only,
        mode: String::new(),
        propagation: None,
    })
}

/// An anonymous volume at `destination` (a key of the image's or the request's
/// `Config.Volumes`).
///
/// dockerd 20.10 accepts a relative or "/" key here and fails later; Berth refuses them
/// now with the `--tmpfs` destination wording.
pub fn anonymous(destination: &str) -> crate::Result<MountSpec> {
    let destination = validate_target(destination).map_err(VolumeError::Invalid)?;
    Ok(MountSpec {
        kind: MountKind::Volume {
            name: None,
            driver: DEFAULT_DRIVER.to_string(),
            driver_opts: HashMap::new(),
            labels: HashMap::new(),
            no_copy: false,
            subpath: None,
        },
        destination,
        read_only: false,
        // `docker inspect` shows "" for these, unlike "z" for `-v /path`.
        mode: String::new(),
        propagation: None,
    })
}

/// A `--volumes-from` entry `container[:ro|:rw]`: the container, and the access mode that
/// overrides the source's (`None`: as in the source container).
///
/// As dockerd, the mode may be any bind mode without a propagation or copy mode (`ro,z`…);
/// only `ro` changes anything, since Docker never makes a read-only source mount writable:
/// the result is `Some(false)` for `ro`, else `None`.
pub fn parse_volumes_from(raw: &str) -> crate::Result<(String, Option<bool>)> {
    if raw.is_empty() {
        return Err(VolumeError::Invalid(
            "volumes-from specification cannot be an empty string".to_string(),
        ));
    }
    let (container, mode) = raw.split_once(':').unwrap_or((raw, ""));
    let modes = Modes::parse(mode).ok_or_else(|| invalid_mode(mode))?;
    if modes.propagation.is_some() || modes.no_copy {
        return Err(invalid_mode(mode));
    }
    Ok((container.to_string(), modes.read_only.then_some(false)))
}

/// Go's `filepath.Clean` of an absolute path.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            _ => out.push(part),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

const DEFAULT_DRIVER: &str = "local";
/// The `Mode` dockerd reports for a volume mount without a typed mode.
const VOLUME_MODE: &str = "z";

/// What a `-v` mode string (`ro,z,rslave`…) says, once validated as moby's
/// `linuxValidMountMode`: each kind of mode at most once, nothing unknown.
#[derive(Debug, Default)]
struct Modes {
    read_only: bool,
    propagation: Option<Propagation>,
    no_copy: bool,
}

impl Modes {
    fn parse(mode: &str) -> Option<Modes> {
        let mut modes = Modes::default();
        if mode.is_empty() {
            return Some(modes);
        }
        // rw, label, propagation, copy, consistency: one of each at most.
        let mut counts = [0u8; 5];
        for o in mode.split(',') {
            let kind = match o {
                "rw" | "ro" => {
                    modes.read_only = o == "ro";
                    0
                }
                "z" | "Z" => 1,
                "nocopy" => {
                    modes.no_copy = true;
                    3
                }
                "consistent" | "cached" | "delegated" => 4,
                _ => {
                    modes.propagation = Some(Propagation::parse(o)?);
                    2
                }
            };
            counts[kind] += 1;
            if counts[kind] > 1 {
                return None;
            }
        }
        Some(modes)
    }
}

fn invalid_mode(mode: &str) -> VolumeError {
    VolumeError::Invalid(format!("invalid mode: {mode}"))
}

fn mount_config_text(type_name: &str, msg: &str) -> String {
    format!("invalid mount config for type \"{type_name}\": {msg}")
}

fn extra_field(field: &str) -> String {
    format!("field {field} must not be specified")
}

fn missing_field(field: &str) -> String {
    format!("field {field} must not be empty")
}

fn must_be_absolute(p: &str) -> String {
    format!("invalid mount path: '{p}' mount path must be absolute")
}

/// A mount destination as moby checks it (not "/", then absolute), cleaned.
fn validate_target(target: &str) -> Result<String, String> {
    if clean_path(target) == "/" {
        return Err("invalid specification: destination can't be '/'".to_string());
    }
    if !target.starts_with('/') {
        return Err(must_be_absolute(target));
    }
    Ok(clean_path(target))
}

fn api_bind(m: &Mount, source: &str) -> Result<(MountKind, Option<Propagation>), String> {
    if source.is_empty() {
        return Err(missing_field("Source"));
    }
    if !source.starts_with('/') {
        return Err(must_be_absolute(source));
    }
    let opts = m.bind_options.clone().unwrap_or_default();
    let create_missing = opts.create_mountpoint.unwrap_or(false);
    match std::fs::metadata(source) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create_missing {
                return Err(format!("bind source path does not exist: {source}"));
            }
        }
        Err(e) => return Err(e.to_string()),
    }
    let propagation = opts
        .propagation
        .filter(|p| *p != MountBindOptionsPropagationEnum::EMPTY)
        .and_then(|p| Propagation::parse(p.as_ref()));
    let kind = MountKind::Bind {
        source: PathBuf::from(clean_path(source)),
        create_missing,
        non_recursive: opts.non_recursive.unwrap_or(false),
    };
    Ok((kind, propagation))
}

fn api_volume(m: &Mount, source: &str, read_only: bool) -> crate::Result<MountKind> {
    let err = |msg: &str| VolumeError::Invalid(mount_config_text("volume", msg));
    let opts = m.volume_options.clone().unwrap_or_default();
    let anonymous = source.is_empty();
    let subpath = opts.subpath.filter(|s| !s.is_empty());
    if let Some(sub) = &subpath {
        if anonymous {
            return Err(err("must not set Subpath when using anonymous volumes"));
        }
        if !is_local(sub) {
            return Err(err("subpath must be a relative path within the volume"));
        }
    }
    if read_only && anonymous {
        return Err(err(
            "must not set ReadOnly mode when using anonymous volumes",
        ));
    }
    let driver_config = opts.driver_config.unwrap_or_default();
    let driver = driver_config
        .name
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_DRIVER.to_string());
    // The name rule is the local driver's; another driver judges its own names.
    if !anonymous && driver == DEFAULT_DRIVER {
        crate::name::validate(source)?;
    }
    Ok(MountKind::Volume {
        name: (!anonymous).then(|| source.to_string()),
        driver,
        driver_opts: driver_config.options.unwrap_or_default(),
        labels: opts.labels.unwrap_or_default(),
        no_copy: opts.no_copy.unwrap_or(false),
        subpath: subpath.map(|s| clean_path(&s)),
    })
}

/// Go's `filepath.IsLocal` on Unix: relative, non-empty, and not escaping with `..`.
fn is_local(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') {
        return false;
    }
    let clean = clean_path(p);
    clean != ".." && !clean.starts_with("../")
}

/// moby's `ConvertTmpfsOptions`: `ReadOnly`, `Mode`, `SizeBytes` and `Options` as mount data.
fn tmpfs_api_options(
    opts: Option<&MountTmpfsOptions>,
    read_only: bool,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    if read_only {
        out.push("ro".to_string());
    }
    let Some(opts) = opts else { return Ok(out) };
    if let Some(mode) = opts.mode.filter(|m| *m != 0) {
        out.push(format!("mode={mode:o}"));
    }
    if let Some(size) = opts.size_bytes.filter(|s| *s != 0) {
        if size < 0 {
            return Err(format!("invalid tmpfs size: {size}"));
        }
        out.push(format!("size={}", tmpfs_size(size)));
    }
    for opt in opts.options.iter().flatten() {
        let (key, value) = match &opt[..] {
            [key] => (key, None),
            [key, value] => (key, Some(value)),
            _ => return Err("invalid option array length".to_string()),
        };
        if key != "exec" && key != "noexec" {
            return Err(format!("invalid option: {key}"));
        }
        out.push(match value {
            Some(v) => format!("{key}={v}"),
            None => key.clone(),
        });
    }
    Ok(out)
}

/// A byte count with the largest of g/m/k that divides it, as dockerd writes `size=`.
fn tmpfs_size(size: i64) -> String {
    for (suffix, divisor) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size % divisor == 0 {
            return format!("{}{suffix}", size / divisor);
        }
    }
    size.to_string()
}

/// The mount flags of mount(8) by name: the bits each one sets or clears. Options naming
/// the same bits collide (the later wins).
pub(crate) const MOUNT_FLAGS: &[(&str, bool, u64)] = {
    use libc::*;
    &[
        ("ro", false, MS_RDONLY),
        ("rw", true, MS_RDONLY),
        ("suid", true, MS_NOSUID),
        ("nosuid", false, MS_NOSUID),
        ("dev", true, MS_NODEV),
        ("nodev", false, MS_NODEV),
        ("exec", true, MS_NOEXEC),
        ("noexec", false, MS_NOEXEC),
        ("sync", false, MS_SYNCHRONOUS),
        ("async", true, MS_SYNCHRONOUS),
        ("dirsync", false, MS_DIRSYNC),
        ("remount", false, MS_REMOUNT),
        ("mand", false, MS_MANDLOCK),
        ("nomand", true, MS_MANDLOCK),
        ("atime", true, MS_NOATIME),
        ("noatime", false, MS_NOATIME),
        ("diratime", true, MS_NODIRATIME),
        ("nodiratime", false, MS_NODIRATIME),
        ("bind", false, MS_BIND),
        ("rbind", false, MS_BIND | MS_REC),
        ("unbindable", false, MS_UNBINDABLE),
        ("runbindable", false, MS_UNBINDABLE | MS_REC),
        ("private", false, MS_PRIVATE),
        ("rprivate", false, MS_PRIVATE | MS_REC),
        ("shared", false, MS_SHARED),
        ("rshared", false, MS_SHARED | MS_REC),
        ("slave", false, MS_SLAVE),
        ("rslave", false, MS_SLAVE | MS_REC),
        ("relatime", false, MS_RELATIME),
        ("norelatime", true, MS_RELATIME),
        ("strictatime", false, MS_STRICTATIME),
        ("nostrictatime", true, MS_STRICTATIME),
    ]
};

/// The named mount flag: (clears rather than sets, bits).
pub(crate) fn mount_flag(name: &str) -> Option<(bool, u64)> {
    MOUNT_FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, clear, bits)| (*clear, *bits))
}

/// The options every tmpfs starts from, as dockerd.
const TMPFS_DEFAULTS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];
/// The data options a tmpfs accepts (moby's `validFlags`).
const TMPFS_DATA: [&str; 8] = [
    "",
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// moby's `MergeTmpfsOptions` over the defaults: the last of a flag and its opposite wins,
/// the last value of a data option wins, each kept at the place of its last occurrence.
fn merge_tmpfs_options(data: &[String]) -> Result<Vec<String>, String> {
    let all: Vec<&str> = TMPFS_DEFAULTS
        .iter()
        .copied()
        .chain(data.iter().map(String::as_str))
        .collect();
    let mut seen_flags: Vec<u64> = Vec::new();
    let mut seen_data: Vec<&str> = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    for option in all.into_iter().rev() {
        if option == "defaults" {
            continue;
        }
        if let Some((_, bits)) = mount_flag(option) {
            if !seen_flags.contains(&bits) {
                seen_flags.push(bits);
                merged.push(option.to_string());
            }
            continue;
        }
        let Some((key, _)) = option
            .split_once('=')
            .filter(|(k, _)| TMPFS_DATA.contains(k))
        else {
            return Err(format!("invalid tmpfs option {}", go_quoted_split(option)));
        };
        if !seen_data.contains(&key) {
            seen_data.push(key);
            merged.push(option.to_string());
        }
    }
    merged.reverse();
    Ok(merged)
}

/// Go's `%q` of `strings.SplitN(option, "=", 2)`, which dockerd's tmpfs error shows.
fn go_quoted_split(option: &str) -> String {
    let parts: Vec<String> = option.splitn(2, '=').map(|p| format!("{p:?}")).collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{
        MountBindOptions, MountVolumeOptions, MountVolumeOptionsDriverConfig,
    };

    fn err(r: crate::Result<MountSpec>) -> String {
        r.expect_err("should be refused").to_string()
    }

    fn volume(name: Option<&str>, no_copy: bool) -> MountKind {
        MountKind::Volume {
            name: name.map(str::to_string),
            driver: "local".to_string(),
            driver_opts: HashMap::new(),
            labels: HashMap::new(),
            no_copy,
            subpath: None,
        }
    }

    fn bind(source: &str, create_missing: bool) -> MountKind {
        MountKind::Bind {
            source: PathBuf::from(source),
            create_missing,
            non_recursive: false,
        }
    }

    /// What `docker inspect` shows in `Mounts` (Mode, RW, Propagation) on dockerd 20.10.
    fn inspect(m: &MountSpec) -> (&str, bool, &str) {
        let prop = m.effective_propagation().map_or("", Propagation::as_str);
        (m.mode.as_str(), !m.read_only, prop)
    }

    #[test]
    fn binds_as_dockerd_shows_them() {
        let m = parse_bind("vol:/d").unwrap();
        assert_eq!(m.kind, volume(Some("vol"), false));
        assert_eq!(m.destination, "/d");
        assert_eq!(inspect(&m), ("z", true, ""));

        let m = parse_bind("/d").unwrap();
        assert_eq!(m.kind, volume(None, false));
        assert_eq!(inspect(&m), ("z", true, ""));

        let m = parse_bind("/host:/d").unwrap();
        assert_eq!(m.kind, bind("/host", true));
        assert_eq!(inspect(&m), ("", true, "rprivate"));

        let m = parse_bind("/host:/d:ro,rslave").unwrap();
        assert_eq!(inspect(&m), ("ro,rslave", false, "rslave"));
        assert_eq!(m.propagation, Some(Propagation::Rslave));

        for (raw, want) in [
            ("/h:/d:rw", ("rw", true, "rprivate")),
            ("/h:/d:Z", ("Z", true, "rprivate")),
            ("/h:/d:consistent", ("consistent", true, "rprivate")),
            ("/h:/d:", ("", true, "rprivate")),
            ("vol:/d:ro", ("ro", false, "")),
            ("vol:/d:ro,z", ("ro,z", false, "")),
            ("vol:/d:cached", ("cached", true, "")),
            ("vol:/d:delegated,ro", ("delegated,ro", false, "")),
            ("vol:/d:ro,nocopy,z", ("ro,nocopy,z", false, "")),
        ] {
            assert_eq!(inspect(&parse_bind(raw).unwrap()), want, "{raw}");
        }
        assert_eq!(
            parse_bind("vol:/d:nocopy").unwrap().kind,
            volume(Some("vol"), true)
        );
    }

    #[test]
    fn binds_are_cleaned() {
        let m = parse_bind("/h/../x/./:/d//e/").unwrap();
        assert_eq!(m.kind, bind("/x", true));
        assert_eq!(m.destination, "/d/e");
        // Whitespace is not special.
        assert_eq!(parse_bind("/h:/d e").unwrap().destination, "/d e");
    }

    #[test]
    fn bad_binds_with_dockerd_wording() {
        for raw in ["/foo:rw", "/foo:ro", "/d:ro", "a:b:c:d", "", ":/d", "vol:"] {
            assert_eq!(
                err(parse_bind(raw)),
                format!("invalid volume specification: '{raw}'")
            );
        }
        for (raw, want) in [
            ("vol:/d:rslave", "invalid volume specification: 'vol:/d:rslave': invalid mount config for type \"volume\": field BindOptions must not be specified"),
            ("/h:/d:nocopy", "invalid volume specification: '/h:/d:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified"),
            ("vol:rel", "invalid volume specification: 'vol:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
            ("rel", "invalid volume specification: 'rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
            (" /d", "invalid volume specification: ' /d': invalid mount config for type \"volume\": invalid mount path: ' /d' mount path must be absolute"),
            ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
            ("/", "invalid volume specification: '/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
            ("vol:/d:bogus", "invalid mode: bogus"),
            ("vol:/d:ro,rw", "invalid mode: ro,rw"),
            ("vol:/d:z,Z", "invalid mode: z,Z"),
            ("/h:/d:rslave,rshared", "invalid mode: rslave,rshared"),
            ("vol:/d:nocopy,nocopy", "invalid mode: nocopy,nocopy"),
            ("vol:/d:cached,delegated", "invalid mode: cached,delegated"),
            ("a:/d", "create a: volume name is too short, names should be at least two alphanumeric characters"),
            ("bad@name:/d", "create bad@name: \"bad@name\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
            ("./rel:/d", "create ./rel: \"./rel\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ] {
            assert_eq!(err(parse_bind(raw)), want, "{raw}");
        }
    }

    fn api(typ: MountType, source: Option<&str>, target: &str) -> Mount {
        Mount {
            typ: Some(typ),
            source: source.map(str::to_string),
            target: Some(target.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn api_mounts_as_dockerd_shows_them() {
        let host = tempfile::tempdir().unwrap();
        let h = host.path().to_str().unwrap();

        let m = from_api(&api(MountType::BIND, Some(h), "/d")).unwrap();
        assert_eq!(m.kind, bind(h, false));
        assert_eq!(inspect(&m), ("", true, "rprivate"));

        let mut a = api(
            MountType::BIND,
            Some(&format!(
                "{h}/../{}/",
                host.path().file_name().unwrap().to_str().unwrap()
            )),
            "/d/../e/",
        );
        a.read_only = Some(true);
        a.bind_options = Some(MountBindOptions {
            propagation: Some(MountBindOptionsPropagationEnum::RSHARED),
            non_recursive: Some(true),
            ..Default::default()
        });
        let m = from_api(&a).unwrap();
        assert_eq!(inspect(&m), ("", false, "rshared"));
        assert_eq!(m.destination, "/e");
        assert_eq!(
            m.kind,
            MountKind::Bind {
                source: PathBuf::from(h),
                create_missing: false,
                non_recursive: true
            }
        );

        let m = from_api(&api(MountType::VOLUME, Some("vol"), "/d")).unwrap();
        assert_eq!(m.kind, volume(Some("vol"), false));
        assert_eq!(inspect(&m), ("z", true, ""));

        let m = from_api(&api(MountType::VOLUME, None, "/d")).unwrap();
        assert_eq!(m.kind, volume(None, false));
        assert_eq!(inspect(&m), ("z", true, ""));

        let mut a = api(MountType::VOLUME, Some("vol"), "/d");
        a.read_only = Some(true);
        a.volume_options = Some(MountVolumeOptions {
            no_copy: Some(true),
            labels: Some(HashMap::from([("l".to_string(), "v".to_string())])),
            driver_config: Some(MountVolumeOptionsDriverConfig {
                name: None,
                options: Some(HashMap::from([("type".to_string(), "tmpfs".to_string())])),
            }),
            subpath: Some("a/./b".to_string()),
        });
        let m = from_api(&a).unwrap();
        assert_eq!(inspect(&m), ("z", false, ""));
        let MountKind::Volume {
            driver,
            driver_opts,
            labels,
            no_copy,
            subpath,
            ..
        } = m.kind
        else {
            panic!("{m:?}")
        };
        assert_eq!(driver, "local");
        assert_eq!(driver_opts["type"], "tmpfs");
        assert_eq!(labels["l"], "v");
        assert!(no_copy);
        assert_eq!(subpath.as_deref(), Some("a/b"));

        let m = from_api(&api(MountType::TMPFS, None, "/d")).unwrap();
        assert_eq!(inspect(&m), ("", true, ""));
        assert_eq!(
            m.kind,
            MountKind::Tmpfs {
                options: vec![
                    "noexec".into(),
                    "nosuid".into(),
                    "nodev".into(),
                    "rprivate".into()
                ]
            }
        );
    }

    #[test]
    fn api_tmpfs_options_as_dockerd() {
        let mut a = api(MountType::TMPFS, None, "/g");
        a.tmpfs_options = Some(MountTmpfsOptions {
            size_bytes: Some(1 << 20),
            mode: Some(0o700),
            options: None,
        });
        let m = from_api(&a).unwrap();
        // The OCI options dockerd 20.10 generated for `--mount type=tmpfs,tmpfs-size=1048576,tmpfs-mode=700`.
        assert_eq!(
            m.kind,
            MountKind::Tmpfs {
                options: ["noexec", "nosuid", "nodev", "rprivate", "mode=700", "size=1m"]
                    .map(String::from)
                    .to_vec()
            }
        );
        a.read_only = Some(true);
        a.tmpfs_options = Some(MountTmpfsOptions {
            size_bytes: Some(1000),
            mode: Some(0o1777),
            options: Some(vec![vec!["exec".to_string()]]),
        });
        let m = from_api(&a).unwrap();
        assert!(m.read_only);
        assert_eq!(
            m.kind,
            MountKind::Tmpfs {
                options: [
                    "nosuid",
                    "nodev",
                    "rprivate",
                    "ro",
                    "mode=1777",
                    "size=1000",
                    "exec"
                ]
                .map(String::from)
                .to_vec()
            }
        );
        for (opts, want) in [
            (
                vec![vec!["uid".to_string(), "1".to_string()]],
                "invalid mount config for type \"tmpfs\": invalid option: uid",
            ),
            (
                vec![vec![]],
                "invalid mount config for type \"tmpfs\": invalid option array length",
            ),
        ] {
            a.tmpfs_options = Some(MountTmpfsOptions {
                options: Some(opts),
                ..Default::default()
            });
            assert_eq!(err(from_api(&a)), want);
        }
    }

    #[test]
    fn bad_api_mounts_with_dockerd_wording() {
        let host = tempfile::tempdir().unwrap();
        let h = host.path().to_str().unwrap();
        let with = |f: &dyn Fn(&mut Mount), mut m: Mount| {
            f(&mut m);
            m
        };
        let cases: Vec<(Mount, String)> = vec![
            (api(MountType::BIND, Some("/nonexist-berth"), "/d"), "invalid mount config for type \"bind\": bind source path does not exist: /nonexist-berth".into()),
            (api(MountType::BIND, Some("rel"), "/d"), "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute".into()),
            (api(MountType::BIND, None, "/d"), "invalid mount config for type \"bind\": field Source must not be empty".into()),
            (api(MountType::BIND, Some(h), "rel"), "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute".into()),
            (api(MountType::BIND, Some(h), "/"), "invalid mount config for type \"bind\": invalid specification: destination can't be '/'".into()),
            (api(MountType::BIND, Some(h), ""), "invalid mount config for type \"bind\": field Target must not be empty".into()),
            (with(&|m| m.volume_options = Some(Default::default()), api(MountType::BIND, Some(h), "/d")), "invalid mount config for type \"bind\": field VolumeOptions must not be specified".into()),
            (with(&|m| m.tmpfs_options = Some(Default::default()), api(MountType::BIND, Some(h), "/d")), "invalid mount config for type \"bind\": field TmpfsOptions must not be specified".into()),
            (with(&|m| m.bind_options = Some(Default::default()), api(MountType::VOLUME, Some("vol"), "/d")), "invalid mount config for type \"volume\": field BindOptions must not be specified".into()),
            (with(&|m| m.tmpfs_options = Some(Default::default()), api(MountType::VOLUME, Some("vol"), "/d")), "invalid mount config for type \"volume\": field TmpfsOptions must not be specified".into()),
            (with(&|m| m.bind_options = Some(Default::default()), api(MountType::TMPFS, None, "/d")), "invalid mount config for type \"tmpfs\": field BindOptions must not be specified".into()),
            (with(&|m| m.volume_options = Some(Default::default()), api(MountType::TMPFS, None, "/d")), "invalid mount config for type \"tmpfs\": field VolumeOptions must not be specified".into()),
            (api(MountType::TMPFS, Some("x"), "/d"), "invalid mount config for type \"tmpfs\": field Source must not be specified".into()),
            (api(MountType::NPIPE, Some("x"), "/d"), "invalid mount config for type \"npipe\": mount type unknown".into()),
            (with(&|m| m.typ = None, api(MountType::BIND, None, "/d")), "invalid mount config for type \"\": mount type unknown".into()),
            (with(&|m| m.read_only = Some(true), api(MountType::VOLUME, None, "/d")), "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes".into()),
            (api(MountType::VOLUME, Some("bad@x"), "/d"), "create bad@x: \"bad@x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path".into()),
            (api(MountType::VOLUME, Some("a"), "/d"), "create a: volume name is too short, names should be at least two alphanumeric characters".into()),
            (with(&|m| m.volume_options = Some(MountVolumeOptions { subpath: Some("x".into()), ..Default::default() }), api(MountType::VOLUME, None, "/d")), "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes".into()),
            (with(&|m| m.volume_options = Some(MountVolumeOptions { subpath: Some("a/../../x".into()), ..Default::default() }), api(MountType::VOLUME, Some("vol"), "/d")), "invalid mount config for type \"volume\": subpath must be a relative path within the volume".into()),
            (with(&|m| m.volume_options = Some(MountVolumeOptions { subpath: Some("/x".into()), ..Default::default() }), api(MountType::VOLUME, Some("vol"), "/d")), "invalid mount config for type \"volume\": subpath must be a relative path within the volume".into()),
        ];
        for (m, want) in cases {
            assert_eq!(err(from_api(&m)), want, "{m:?}");
        }
    }

    #[test]
    fn create_mountpoint_allows_a_missing_bind_source() {
        let mut a = api(MountType::BIND, Some("/nonexist-berth/x"), "/d");
        a.bind_options = Some(MountBindOptions {
            create_mountpoint: Some(true),
            ..Default::default()
        });
        assert_eq!(from_api(&a).unwrap().kind, bind("/nonexist-berth/x", true));
    }

    #[test]
    fn tmpfs_options_merge_as_dockerd() {
        // The OCI options dockerd 20.10 generated for these `--tmpfs` entries.
        for (opts, want) in [
            ("", vec!["noexec", "nosuid", "nodev", "rprivate"]),
            (
                "size=64m,mode=1777,exec",
                vec![
                    "nosuid",
                    "nodev",
                    "rprivate",
                    "size=64m",
                    "mode=1777",
                    "exec",
                ],
            ),
            (
                "uid=5,ro,rw,size=1m,size=2m,nr_inodes=100",
                vec![
                    "noexec",
                    "nosuid",
                    "nodev",
                    "rprivate",
                    "uid=5",
                    "rw",
                    "size=2m",
                    "nr_inodes=100",
                ],
            ),
        ] {
            let m = parse_tmpfs("/d", opts).unwrap();
            assert_eq!(
                m.kind,
                MountKind::Tmpfs {
                    options: want.into_iter().map(String::from).collect()
                },
                "{opts}"
            );
            assert_eq!(inspect(&m), ("", true, ""));
        }
        assert!(parse_tmpfs("/d", "rw,ro").unwrap().read_only);
        assert!(!parse_tmpfs("/d", "ro,rw").unwrap().read_only);
        assert_eq!(parse_tmpfs("/d/../e/", "").unwrap().destination, "/e");
        for (dst, opts, want) in [
            ("/d", "bogus", "invalid tmpfs option [\"bogus\"]"),
            ("/d", "foo=bar", "invalid tmpfs option [\"foo\" \"bar\"]"),
            ("/d", "size=1m,", "invalid tmpfs option [\"\"]"),
            (
                "rel",
                "",
                "invalid mount path: 'rel' mount path must be absolute",
            ),
            ("/", "", "invalid specification: destination can't be '/'"),
        ] {
            assert_eq!(err(parse_tmpfs(dst, opts)), want, "{dst} {opts}");
        }
    }

    #[test]
    fn anonymous_volumes() {
        let m = anonymous("/a/../b/").unwrap();
        assert_eq!(m.kind, volume(None, false));
        assert_eq!(m.destination, "/b");
        // dockerd shows an empty Mode for `Config.Volumes` (but "z" for `-v /path`).
        assert_eq!(inspect(&m), ("", true, ""));
        assert!(anonymous("rel").is_err());
        assert!(anonymous("/").is_err());
    }

    #[test]
    fn volumes_from() {
        assert_eq!(parse_volumes_from("c").unwrap(), ("c".into(), None));
        assert_eq!(parse_volumes_from("c:rw").unwrap(), ("c".into(), None));
        assert_eq!(
            parse_volumes_from("c:ro").unwrap(),
            ("c".into(), Some(false))
        );
        assert_eq!(parse_volumes_from("c:z").unwrap(), ("c".into(), None));
        assert_eq!(
            parse_volumes_from("c:ro,z").unwrap(),
            ("c".into(), Some(false))
        );
        for (raw, want) in [
            ("", "volumes-from specification cannot be an empty string"),
            ("c:x", "invalid mode: x"),
            ("c:rslave", "invalid mode: rslave"),
            ("c:nocopy", "invalid mode: nocopy"),
            ("c:ro:rw", "invalid mode: ro:rw"),
        ] {
            assert_eq!(
                parse_volumes_from(raw).unwrap_err().to_string(),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn clean_like_go() {
        for (p, want) in [
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a//b///c", "/a/b/c"),
            ("/a/b/../../..", "/"),
            ("", "."),
            ("a/../..", ".."),
            ("a/./b/", "a/b"),
        ] {
            assert_eq!(clean_path(p), want, "{p}");
        }
    }

    #[test]
    fn spec_round_trips_through_json() {
        let m = parse_bind("/h:/d:ro,rslave").unwrap();
        let back: MountSpec = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
