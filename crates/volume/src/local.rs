//! The `local` driver's options (`docker volume create -o type=tmpfs -o device=tmpfs -o
//! o=size=10m`): without options a volume is a plain directory; with them, the device is
//! mounted on the volume's `_data` directory while at least one container uses it (the engine
//! counts the users), as Docker's local driver does.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use crate::spec::mount_flag;
use crate::VolumeError;

/// Validated `local` driver options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// Filesystem type (`tmpfs`, `nfs`, `none` for a bind, `ext4`…).
    pub fs_type: String,
    pub device: String,
    /// The `o` option: comma-separated mount options and data (`size=10m,uid=1000`,
    /// `addr=10.0.0.1,rw`, `bind`).
    pub options: String,
}

/// The keys the local driver knows.
const VALID_KEYS: [&str; 4] = ["type", "o", "device", "size"];
/// Which keys each key needs beside it, in the order they are checked.
const REQUIRED_WITH: [(&str, &[&str]); 3] = [
    ("type", &["device"]),
    ("device", &["type"]),
    ("o", &["device", "type"]),
];

impl LocalOptions {
    /// `None` for no options (a plain directory). Unknown keys are refused with Docker's
    /// `invalid option: "key"`; `type`/`device` are required together as Docker requires.
    /// The messages lack Docker's `create <name>: ` prefix, which the caller adds.
    ///
    /// A host name in `o=addr=` is resolved at mount, not here: dockerd 20.10 accepts an
    /// unresolvable one at create.
    pub fn parse(opts: &HashMap<String, String>) -> crate::Result<Option<LocalOptions>> {
        let invalid = |msg: String| Err(VolumeError::Invalid(msg));
        let mut keys: Vec<&String> = opts.keys().collect();
        keys.sort();
        if let Some(key) = keys.iter().find(|k| !VALID_KEYS.contains(&k.as_str())) {
            return invalid(format!("invalid option: {key:?}"));
        }
        let fs_type = opts.get("type").cloned().unwrap_or_default();
        let device = opts.get("device").cloned().unwrap_or_default();
        if fs_type == "cifs" && url_has_port(&device) {
            return invalid(
                "port not allowed in CIFS device URL, include 'port' in 'o='".to_string(),
            );
        }
        if let Some(size) = opts.get("size") {
            // Berth has no quota support, as dockerd without a quota-capable filesystem.
            if ram_in_bytes(size).ok_or_else(|| invalid_size(size))? > 0 {
                return invalid("quota size requested but no quota support".to_string());
            }
        }
        for (key, needs) in REQUIRED_WITH {
            if let Some(missing) = needs
                .iter()
                .find(|n| opts.contains_key(key) && !opts.contains_key(**n))
            {
                return invalid(format!("missing required option: {missing:?}"));
            }
        }
        if fs_type.is_empty() && device.is_empty() {
            return Ok(None);
        }
        Ok(Some(LocalOptions {
            fs_type,
            device,
            options: opts.get("o").cloned().unwrap_or_default(),
        }))
    }

    /// Mounts the device on `target` (the volume's `_data`).
    pub fn mount(&self, target: &Path) -> crate::Result<()> {
        if self.device.is_empty() {
            return Err(VolumeError::Invalid(
                "missing device in volume options".to_string(),
            ));
        }
        let options = match self.fs_type.as_str() {
            "nfs" | "cifs" => resolve_addr(&self.options)?,
            _ => self.options.clone(),
        };
        let (flags, data) = split_options(&options);
        tracing::debug!(device = %self.device, fs_type = %self.fs_type, target = %target.display(), "mounting local volume");
        mount_like_mount8(&self.device, target, &self.fs_type, flags, &data).map_err(|e| {
            VolumeError::Mount {
                what: format!("{} ({})", self.device, self.fs_type),
                target: target.to_path_buf(),
                source: e.into(),
            }
        })
    }
}

/// Detaches what `LocalOptions::mount` mounted on `target` (lazily, as a busy mount must not
/// keep a container from stopping). Not mounted is not an error.
pub fn unmount(target: &Path) -> crate::Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(VolumeError::Mount {
            what: "unmount".to_string(),
            target: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// mount(8)'s split of `o`: the named flags (later ones win over earlier opposites) and the
/// rest, passed to the filesystem as data.
fn split_options(options: &str) -> (MsFlags, String) {
    let mut flags = 0u64;
    let mut data = Vec::new();
    for o in options
        .split(',')
        .filter(|o| !o.is_empty() && *o != "defaults")
    {
        match mount_flag(o) {
            Some((true, bits)) => flags &= !bits,
            Some((false, bits)) => flags |= bits,
            None => data.push(o),
        }
    }
    (MsFlags::from_bits_retain(flags), data.join(","))
}

/// moby/sys/mount's sequence: the mount with all but the propagation flags, then the
/// propagation, then a read-only remount for a read-only bind (a bind ignores `MS_RDONLY`).
fn mount_like_mount8(
    device: &str,
    target: &Path,
    fs_type: &str,
    flags: MsFlags,
    data: &str,
) -> nix::Result<()> {
    let ptypes =
        MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE;
    let oflags = flags - ptypes;
    // A device of "" or "none" without data asks for a change of flags only, as in moby.
    let remount = flags.contains(MsFlags::MS_REMOUNT) || device.is_empty() || device == "none";
    if !remount || !data.is_empty() {
        let data = (!data.is_empty()).then_some(data);
        nix::mount::mount(Some(device), target, Some(fs_type), oflags, data)?;
    }
    if flags.intersects(ptypes) {
        let pflags = ptypes | MsFlags::MS_REC | MsFlags::MS_SILENT;
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            flags & pflags,
            None::<&str>,
        )?;
    }
    if oflags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            oflags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Replaces a host name in `addr=` by its address, as dockerd: the kernel's NFS client takes
/// an address only.
fn resolve_addr(options: &str) -> crate::Result<String> {
    let Some(addr) = options.split(',').find_map(|o| o.strip_prefix("addr=")) else {
        return Ok(options.to_string());
    };
    if addr.is_empty() || addr.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(options.to_string());
    }
    let ip = lookup(addr).map_err(|e| {
        VolumeError::Invalid(format!(
            "error resolving passed in network volume address: {e}"
        ))
    })?;
    Ok(options.replacen(&format!("addr={addr}"), &format!("addr={ip}"), 1))
}

/// The first address of `host`, IPv4 first as the kernel NFS client prefers.
fn lookup(host: &str) -> std::io::Result<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs: Vec<IpAddr> = (host, 0).to_socket_addrs()?.map(|a| a.ip()).collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("lookup {host}: no such host"),
            )
        })
}

/// Whether a CIFS device (`//host:port/share`) names a port, which dockerd refuses.
fn url_has_port(device: &str) -> bool {
    let Some(rest) = device.split_once("//").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    host_port.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && !host.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit())
    })
}

fn invalid_size(size: &str) -> VolumeError {
    VolumeError::Invalid(format!("invalid size: '{size}'"))
}

/// go-units' `RAMInBytes`: a number with an optional binary unit (`10m`, `1.5GiB`, `512`).
fn ram_in_bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((num * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_as_dockerd() {
        assert_eq!(LocalOptions::parse(&opts(&[])).unwrap(), None);
        assert_eq!(LocalOptions::parse(&opts(&[("size", "0")])).unwrap(), None);
        assert_eq!(
            LocalOptions::parse(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=10m")
            ]))
            .unwrap(),
            Some(LocalOptions {
                fs_type: "tmpfs".into(),
                device: "tmpfs".into(),
                options: "size=10m".into()
            })
        );
        // dockerd 20.10's answers to `docker volume create -o …` (without its "create tv: ").
        for (o, want) in [
            (opts(&[("foo", "bar")]), "invalid option: \"foo\""),
            (
                opts(&[("type", "tmpfs")]),
                "missing required option: \"device\"",
            ),
            (
                opts(&[("device", "tmpfs")]),
                "missing required option: \"type\"",
            ),
            (
                opts(&[("o", "size=1m")]),
                "missing required option: \"device\"",
            ),
            (
                opts(&[("o", "size=1m"), ("device", "x")]),
                "missing required option: \"type\"",
            ),
            (
                opts(&[("size", "10m")]),
                "quota size requested but no quota support",
            ),
            (opts(&[("size", "ten")]), "invalid size: 'ten'"),
            (
                opts(&[("type", "cifs"), ("device", "//srv:445/share")]),
                "port not allowed in CIFS device URL, include 'port' in 'o='",
            ),
        ] {
            assert_eq!(
                LocalOptions::parse(&o).unwrap_err().to_string(),
                want,
                "{o:?}"
            );
        }
        assert!(LocalOptions::parse(&opts(&[("type", "cifs"), ("device", "//srv/share")])).is_ok());
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = split_options("ro,nosuid,size=10m,uid=1000,noexec,exec,defaults");
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(d, "size=10m,uid=1000");
        let (f, d) = split_options("bind,ro,rw");
        assert_eq!(f, MsFlags::MS_BIND);
        assert_eq!(d, "");
        assert_eq!(
            split_options("addr=10.0.0.1,nfsvers=4").1,
            "addr=10.0.0.1,nfsvers=4"
        );
    }

    #[test]
    fn nfs_addr_is_resolved() {
        assert_eq!(
            resolve_addr("addr=10.0.0.1,rw").unwrap(),
            "addr=10.0.0.1,rw"
        );
        assert_eq!(resolve_addr("rw,nfsvers=4").unwrap(), "rw,nfsvers=4");
        assert_eq!(
            resolve_addr("addr=localhost,rw").unwrap(),
            "addr=127.0.0.1,rw"
        );
        assert!(resolve_addr("addr=no-such-host.invalid").is_err());
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(ram_in_bytes("10m"), Some(10 << 20));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("512"), Some(512));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("x"), None);
    }

    /// Runs `f` on a thread with its own mount namespace, so nothing it mounts is seen on the
    /// host or outlives it.
    fn in_mount_namespace(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare");
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .expect("make / rprivate");
            f();
        })
        .join()
        .expect("test thread");
    }

    fn is_tmpfs(p: &Path) -> bool {
        nix::sys::statfs::statfs(p).unwrap().filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
    }

    #[test]
    fn tmpfs_with_size_and_uid() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_path_buf();
        in_mount_namespace(move || {
            let o = LocalOptions::parse(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=10m,uid=1000,mode=750,noexec"),
            ]))
            .unwrap()
            .unwrap();
            o.mount(&target).unwrap();
            assert!(is_tmpfs(&target));
            let st = nix::sys::statvfs::statvfs(&target).unwrap();
            assert_eq!(st.blocks() * st.fragment_size(), 10 << 20);
            let md = std::fs::metadata(&target).unwrap();
            assert_eq!((md.uid(), md.mode() & 0o7777), (1000, 0o750));
            assert!(st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC));
            unmount(&target).unwrap();
            assert!(!is_tmpfs(&target));
            // Not mounted any more: still fine.
            unmount(&target).unwrap();
        });
    }

    #[test]
    fn bind_and_read_only_bind() {
        let src = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("f"), b"host").unwrap();
        let (src_path, target) = (src.path().to_path_buf(), dir.path().to_path_buf());
        in_mount_namespace(move || {
            let dev = src_path.to_str().unwrap();
            let o = LocalOptions::parse(&opts(&[("type", "none"), ("device", dev), ("o", "bind")]))
                .unwrap()
                .unwrap();
            o.mount(&target).unwrap();
            assert_eq!(std::fs::read(target.join("f")).unwrap(), b"host");
            std::fs::write(target.join("g"), b"x").unwrap();
            assert!(src_path.join("g").exists());
            unmount(&target).unwrap();
            assert!(!target.join("f").exists());

            let o = LocalOptions::parse(&opts(&[
                ("type", "none"),
                ("device", dev),
                ("o", "bind,ro"),
            ]))
            .unwrap()
            .unwrap();
            o.mount(&target).unwrap();
            let e = std::fs::write(target.join("h"), b"x").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EROFS));
            unmount(&target).unwrap();
        });
    }

    #[test]
    fn a_failed_mount_names_device_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().to_path_buf();
        in_mount_namespace(move || {
            let o = LocalOptions {
                fs_type: "nosuchfs".into(),
                device: "x".into(),
                options: String::new(),
            };
            let e = o.mount(&target).unwrap_err().to_string();
            assert!(e.starts_with("mount x (nosuchfs) on "), "{e}");
        });
    }
}
