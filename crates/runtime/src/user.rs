//! `--user` resolution against the image's `/etc/passwd` and `/etc/group`,
//! following runc's `GetExecUser` rules (which Docker relies on).

use std::path::Path;

use crate::inroot::read_in_root;
use crate::spec::SpecError;

/// Numeric credentials for the container's process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            // Malformed lines are skipped, as libc does.
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn read(rootfs: &Path, path: &str) -> Result<String, SpecError> {
    read_in_root(rootfs, path)
        .map(Option::unwrap_or_default)
        .map_err(|source| SpecError::Io {
            path: path.to_string(),
            source,
        })
}

/// Resolves Docker's `--user` forms: `""`, `name`, `uid`, `uid:gid`,
/// `name:group`, `uid:group`. Missing passwd/group files are fine for
/// numeric ids; unknown names are errors worded as Docker words them.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, SpecError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let passwd = parse_passwd(&read(rootfs, "/etc/passwd")?);

    let mut out = ResolvedUser::default();
    let mut matched_name: Option<String> = None;
    if !user_arg.is_empty() {
        match user_arg.parse::<u32>() {
            Ok(uid) => {
                out.uid = uid;
                if let Some(e) = passwd.iter().find(|e| e.uid == uid) {
                    out.gid = e.gid;
                    matched_name = Some(e.name.clone());
                }
            }
            Err(_) => {
                let e = passwd.iter().find(|e| e.name == user_arg).ok_or_else(|| {
                    SpecError::UnknownUser {
                        name: user_arg.to_string(),
                    }
                })?;
                out.uid = e.uid;
                out.gid = e.gid;
                matched_name = Some(e.name.clone());
            }
        }
    } else if let Some(e) = passwd.iter().find(|e| e.uid == 0) {
        // Default user is root; take root's primary group from the image.
        out.gid = e.gid;
        matched_name = Some(e.name.clone());
    }

    if group_arg.is_empty() && matched_name.is_none() {
        return Ok(out);
    }
    let groups = parse_group(&read(rootfs, "/etc/group")?);
    if !group_arg.is_empty() {
        out.gid = match group_arg.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                groups
                    .iter()
                    .find(|g| g.name == group_arg)
                    .ok_or_else(|| SpecError::UnknownGroup {
                        name: group_arg.to_string(),
                    })?
                    .gid
            }
        };
    } else if let Some(name) = matched_name {
        // Supplementary groups only when the group was not given explicitly
        // (runc semantics): every group listing the user as a member.
        let mut gids: Vec<u32> = groups
            .iter()
            .filter(|g| g.members.contains(&name))
            .map(|g| g.gid)
            .filter(|gid| *gid != out.gid)
            .collect();
        gids.dedup();
        out.additional_gids = gids;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:alice,root\nalice:x:1000:\naudio:x:29:alice\nnogroup:x:65534:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn default_is_root_with_groups() {
        let d = rootfs();
        let u = resolve_user(d.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (0, 0, vec![10]));
    }

    #[test]
    fn by_name_gets_supplementary_groups() {
        let d = rootfs();
        let u = resolve_user(d.path(), "alice").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![10, 29]);
    }

    #[test]
    fn numeric_and_groups() {
        let d = rootfs();
        assert_eq!(resolve_user(d.path(), "1000").unwrap().gid, 1000);
        let u = resolve_user(d.path(), "4242:4343").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
        let u = resolve_user(d.path(), "1000:nogroup").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 65534));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user(d.path(), "nobody:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 10));
    }

    #[test]
    fn unknown_names_use_docker_wording() {
        let d = rootfs();
        let e = resolve_user(d.path(), "bob").unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to find user bob: no matching entries in passwd file"
        );
        let e = resolve_user(d.path(), "alice:nope")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unable to find group nope"), "{e}");
    }

    #[test]
    fn missing_files_numeric_ok() {
        let d = tempfile::tempdir().unwrap();
        let u = resolve_user(d.path(), "12:34").unwrap();
        assert_eq!((u.uid, u.gid), (12, 34));
        assert!(resolve_user(d.path(), "alice").is_err());
    }

    #[test]
    fn symlink_cannot_escape_rootfs() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        // Absolute link: must resolve to <rootfs>/hostpasswd, not the host's.
        fs::write(d.path().join("hostpasswd"), "evil:x:7:7::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/hostpasswd", d.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(d.path(), "evil").unwrap().uid, 7);
        fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", d.path().join("etc/passwd"))
            .unwrap();
        // The host has a "root" entry, the rootfs has none; ".." is clamped.
        assert!(resolve_user(d.path(), "root").is_err());
    }
}
