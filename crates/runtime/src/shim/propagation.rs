//! Per-mount propagation, applied between libcontainer's create and start.
//!
//! libcontainer 0.7 mounts with open_tree/move_mount and ignores a mount's
//! propagation options: a bind just inherits the state of the container's
//! `/` (made rslave, or rshared with `rootfsPropagation: shared`), so
//! Docker's default `rprivate` bind would still receive the host's mounts.
//! runc applies `mount("", dest, "", MS_PRIVATE|MS_REC…)` after each
//! mount; we do the same from a child that joins the init's mount
//! namespace, before any of the container's own code has run. Joining it
//! makes the container's root the child's `/`, so each destination
//! (symlinks included) resolves inside that root, where libcontainer's
//! in-root resolution put the mount.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::{clone, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::ShimError;
use crate::spec::propagation::{propagations, PropagationKind};

/// (destination in the container, flags), in the spec's (parents-first)
/// order, so a child mount's own setting wins over its parent's `r…`.
pub(crate) type Plan = Vec<(PathBuf, MsFlags)>;

/// What libcontainer gives every mount: the propagation of the container's
/// `/`, applied recursively.
fn rootfs_kind(spec: &Spec) -> PropagationKind {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        Some("shared" | "rshared") => PropagationKind::Shared,
        Some("private" | "rprivate") => PropagationKind::Private,
        _ => PropagationKind::Slave,
    }
}

/// The propagation changes libcontainer left undone. Empty (and then no
/// child is forked) when every mount asks for what its `/` already gave.
pub(crate) fn plan(spec: &Spec) -> Plan {
    let given = rootfs_kind(spec);
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| propagations(m).any(|p| p.kind != given))
        .flat_map(|m| propagations(m).map(move |p| (m.destination().clone(), p.ms_flags())))
        .collect()
}

/// Applies `plan` inside the mount namespace of `init`.
///
/// From a `CLONE_VM|CLONE_VFORK` child (as posix_spawn does): no copy of
/// the shim's page tables, and we resume as soon as it has exited. The
/// child makes raw system calls only, on strings prepared here, and
/// reports a failure through `failure`, which it shares with us.
pub(crate) fn apply(init: Pid, plan: &Plan) -> Result<(), ShimError> {
    if plan.is_empty() {
        return Ok(());
    }
    let ns: OwnedFd = File::open(format!("/proc/{init}/ns/mnt"))
        .map_err(super::sys_err("opening the container's mount namespace"))?
        .into();
    let dests = plan
        .iter()
        .map(|(d, _)| CString::new(d.as_os_str().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ShimError::Create("NUL byte in a mount destination".into()))?;
    // (index into plan, or None for setns; errno)
    let mut failure: Option<(Option<usize>, Errno)> = None;
    let mut stack = vec![0u8; CHILD_STACK];
    let child = {
        let failure = &mut failure;
        let ns = ns.as_raw_fd();
        let child_main = Box::new(move || {
            // SAFETY: setns and mount read only the arguments given.
            if unsafe { libc::setns(ns, libc::CLONE_NEWNS) } != 0 {
                *failure = Some((None, Errno::last()));
                return 1;
            }
            for (i, (dest, (_, flags))) in dests.iter().zip(plan).enumerate() {
                let rc = unsafe {
                    libc::mount(
                        std::ptr::null(),
                        dest.as_ptr(),
                        std::ptr::null(),
                        flags.bits(),
                        std::ptr::null(),
                    )
                };
                if rc != 0 {
                    *failure = Some((Some(i), Errno::last()));
                    return 1;
                }
            }
            0
        });
        // SAFETY: the shim is single-threaded and, with CLONE_VFORK, does
        // not run again until the child (which only makes system calls on
        // memory that outlives it) has exited.
        unsafe {
            clone(
                child_main,
                &mut stack,
                CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
                Some(libc::SIGCHLD),
            )
        }
        .map_err(super::nix_err("clone"))?
    };
    while let Err(Errno::EINTR) = waitpid(child, None) {}
    match failure {
        None => Ok(()),
        Some((None, e)) => Err(ShimError::Create(format!(
            "joining the container's mount namespace: {e}"
        ))),
        Some((Some(i), e)) => Err(ShimError::Create(format!(
            "setting propagation {:?} of mount {}: {e}",
            plan[i].1,
            plan[i].0.display()
        ))),
    }
}

/// Two system calls deep; 64 KiB leaves room for libc's wrappers.
const CHILD_STACK: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(rootfs_propagation: Option<&str>, mounts: serde_json::Value) -> Spec {
        let mut linux = json!({});
        if let Some(p) = rootfs_propagation {
            linux["rootfsPropagation"] = json!(p);
        }
        serde_json::from_value(json!({
            "ociVersion": "1.2.0", "root": {"path": "/r"}, "mounts": mounts, "linux": linux,
        }))
        .unwrap()
    }

    #[test]
    fn plans_only_what_libcontainer_did_not_give() {
        let mounts = json!([
            {"type": "bind", "source": "/a", "destination": "/a", "options": ["rbind", "rprivate"]},
            {"type": "bind", "source": "/b", "destination": "/b", "options": ["rbind", "rslave", "ro"]},
            {"type": "bind", "source": "/c", "destination": "/c", "options": ["bind", "shared"]},
            {"type": "tmpfs", "source": "tmpfs", "destination": "/t", "options": ["size=1m"]},
        ]);
        let p = plan(&spec(None, mounts.clone()));
        assert_eq!(
            p,
            vec![
                ("/a".into(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
                ("/c".into(), MsFlags::MS_SHARED),
            ]
        );
        let p = plan(&spec(Some("shared"), mounts));
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], ("/b".into(), MsFlags::MS_SLAVE | MsFlags::MS_REC));

        let slaves = json!([
            {"type": "bind", "source": "/b", "destination": "/b", "options": ["rbind", "rslave"]},
        ]);
        assert!(plan(&spec(Some("slave"), slaves)).is_empty());
    }
}
