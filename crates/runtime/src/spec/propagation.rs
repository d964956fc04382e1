//! Mount propagation: the options of a mount (`rprivate`, `rshared`, …),
//! Docker's checks of a bind's source (moby `ensureShared` /
//! `ensureSharedOrSlave`) and the matching `linux.rootfsPropagation`.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::SpecError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationKind {
    Private,
    Shared,
    Slave,
    Unbindable,
}

/// One propagation option of a mount, e.g. `rslave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    pub kind: PropagationKind,
    pub recursive: bool,
}

impl Propagation {
    pub fn parse(option: &str) -> Option<Propagation> {
        let (recursive, base) = match option.strip_prefix('r') {
            Some(b @ ("private" | "shared" | "slave" | "unbindable")) => (true, b),
            _ => (false, option),
        };
        let kind = match base {
            "private" => PropagationKind::Private,
            "shared" => PropagationKind::Shared,
            "slave" => PropagationKind::Slave,
            "unbindable" => PropagationKind::Unbindable,
            _ => return None,
        };
        Some(Propagation { kind, recursive })
    }

    /// The `mount(2)` flags that change a mount point to this propagation.
    pub fn ms_flags(self) -> MsFlags {
        let kind = match self.kind {
            PropagationKind::Private => MsFlags::MS_PRIVATE,
            PropagationKind::Shared => MsFlags::MS_SHARED,
            PropagationKind::Slave => MsFlags::MS_SLAVE,
            PropagationKind::Unbindable => MsFlags::MS_UNBINDABLE,
        };
        if self.recursive {
            kind | MsFlags::MS_REC
        } else {
            kind
        }
    }
}

/// The propagation options of a mount, in order.
pub fn propagations(m: &Mount) -> impl Iterator<Item = Propagation> + '_ {
    m.options()
        .iter()
        .flatten()
        .filter_map(|o| Propagation::parse(o))
}

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// One line of `/proc/<pid>/mountinfo`, reduced to what the checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    mount_point: PathBuf,
    shared: bool,
    slave: bool,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let mount_point = fields.nth(4)?;
            // Optional fields sit between the mount options and "-".
            let optional: Vec<&str> = fields.skip(1).take_while(|f| *f != "-").collect();
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                shared: optional.iter().any(|f| f.starts_with("shared:")),
                slave: optional.iter().any(|f| f.starts_with("master:")),
            })
        })
        .collect()
}

/// The mount holding `path`: the longest mount point above it, the topmost
/// of those stacked there.
fn mount_of<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    entries
        .iter()
        .filter(|e| path.starts_with(&e.mount_point))
        .fold(None, |best: Option<&MountEntry>, e| match best {
            Some(b) if b.mount_point.as_os_str().len() > e.mount_point.as_os_str().len() => Some(b),
            _ => Some(e),
        })
}

/// What a bind's propagation asks of the mount its source sits on.
fn check_source(
    source: &Path,
    want: PropagationKind,
    entries: &[MountEntry],
) -> Result<(), SpecError> {
    let resolved = std::fs::canonicalize(source).map_err(|e| SpecError::MountSource {
        path: source.display().to_string(),
        source: e,
    })?;
    let (shared, slave, mount_point) = match mount_of(entries, &resolved) {
        Some(e) => (e.shared, e.slave, e.mount_point.display().to_string()),
        None => (false, false, String::new()),
    };
    let path = source.display().to_string();
    match want {
        PropagationKind::Shared if !shared => Err(SpecError::NotSharedMount { path, mount_point }),
        PropagationKind::Slave if !shared && !slave => {
            Err(SpecError::NotSharedOrSlaveMount { path, mount_point })
        }
        _ => Ok(()),
    }
}

/// Checks every bind that asks for shared or slave propagation, as Docker
/// does, and returns the `linux.rootfsPropagation` those need: `shared`
/// wins over `slave`. (libcontainer knows only the unprefixed names and
/// always applies them recursively to the container's `/`.)
///
/// `mountinfo` is read only when some bind needs it.
pub(crate) fn check_binds(
    mounts: &[Mount],
    mountinfo: impl FnOnce() -> std::io::Result<String>,
) -> Result<Option<&'static str>, SpecError> {
    let wanted: Vec<(&Mount, PropagationKind)> = mounts
        .iter()
        .filter(|m| is_bind(m))
        .flat_map(|m| propagations(m).map(move |p| (m, p.kind)))
        .filter(|(_, k)| matches!(k, PropagationKind::Shared | PropagationKind::Slave))
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    let text = mountinfo().map_err(|e| SpecError::MountSource {
        path: "/proc/thread-self/mountinfo".into(),
        source: e,
    })?;
    let entries = parse_mountinfo(&text);
    for (m, kind) in &wanted {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        check_source(source, *kind, &entries)?;
    }
    Ok(Some(
        if wanted.iter().any(|(_, k)| *k == PropagationKind::Shared) {
            "shared"
        } else {
            "slave"
        },
    ))
}

/// This thread's mount table: a test thread may be in its own namespace.
pub(crate) fn own_mountinfo() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/thread-self/mountinfo")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /srv rw,relatime - tmpfs tmpfs rw
31 30 0:41 / /srv/shared rw shared:7 - tmpfs tmpfs rw
32 30 0:42 / /srv/slave rw master:7 - tmpfs tmpfs rw
33 30 0:43 / /srv/with\\040space rw shared:9 master:7 - tmpfs tmpfs rw
";

    fn bind(source: &Path, opts: &[&str]) -> Mount {
        serde_json::from_value(json!({
            "type": "bind", "source": source, "destination": "/d", "options": opts,
        }))
        .unwrap()
    }

    #[test]
    fn parses_options() {
        let p = Propagation::parse("rslave").unwrap();
        assert_eq!(p.kind, PropagationKind::Slave);
        assert!(p.recursive);
        assert_eq!(p.ms_flags(), MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert!(!Propagation::parse("shared").unwrap().recursive);
        assert_eq!(Propagation::parse("rbind"), None);
        assert_eq!(Propagation::parse("ro"), None);
    }

    #[test]
    fn finds_the_mount_of_a_path() {
        let e = parse_mountinfo(MOUNTINFO);
        assert_eq!(e.len(), 5);
        let m = |p: &str| mount_of(&e, Path::new(p)).unwrap().mount_point.clone();
        assert_eq!(m("/srv/shared/x/y"), PathBuf::from("/srv/shared"));
        assert_eq!(m("/srv/sharedx"), PathBuf::from("/srv"));
        assert_eq!(m("/etc"), PathBuf::from("/"));
        assert_eq!(m("/srv/with space/a"), PathBuf::from("/srv/with space"));
        let sp = mount_of(&e, Path::new("/srv/with space")).unwrap();
        assert!(sp.shared && sp.slave);
        assert!(mount_of(&e, Path::new("/srv/slave")).unwrap().slave);
    }

    #[test]
    fn docker_source_checks() {
        let e = parse_mountinfo(MOUNTINFO);
        // Real paths are canonicalized: "/" exists everywhere.
        let err = check_source(Path::new("/"), PropagationKind::Shared, &e[1..]).unwrap_err();
        assert!(matches!(err, SpecError::NotSharedMount { .. }));
        assert!(check_source(Path::new("/"), PropagationKind::Shared, &e).is_ok());
        let private = vec![MountEntry {
            mount_point: "/".into(),
            shared: false,
            slave: false,
        }];
        let err = check_source(Path::new("/"), PropagationKind::Slave, &private).unwrap_err();
        assert_eq!(
            err.to_string(),
            "path / is mounted on / but it is not a shared or slave mount"
        );
        let err = check_source(Path::new("/"), PropagationKind::Shared, &private).unwrap_err();
        assert_eq!(
            err.to_string(),
            "path / is mounted on / but it is not a shared mount"
        );
        assert!(check_source(Path::new("/"), PropagationKind::Private, &private).is_ok());
        assert!(matches!(
            check_source(Path::new("/nonexistent/berth"), PropagationKind::Slave, &e),
            Err(SpecError::MountSource { .. })
        ));
    }

    #[test]
    fn rootfs_propagation_follows_the_binds() {
        let root = Path::new("/");
        let info = || Ok(MOUNTINFO.to_string());
        let unread = || -> std::io::Result<String> { panic!("mountinfo read") };
        let private = [bind(root, &["rbind", "rprivate"])];
        assert_eq!(check_binds(&private, unread).unwrap(), None);
        let slave = [bind(root, &["rbind", "rslave"])];
        assert_eq!(check_binds(&slave, info).unwrap(), Some("slave"));
        let both = [bind(root, &["rbind", "rslave"]), bind(root, &["shared"])];
        assert_eq!(check_binds(&both, info).unwrap(), Some("shared"));
        // tmpfs propagation options are not Docker's to check.
        let tmpfs: Mount = serde_json::from_value(json!({
            "type": "tmpfs", "source": "tmpfs", "destination": "/t", "options": ["rshared"],
        }))
        .unwrap();
        assert_eq!(check_binds(&[tmpfs], unread).unwrap(), None);
    }
}
