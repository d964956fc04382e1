//! `unpack_into`: `docker cp` uploads into an existing directory.

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::extract::{check_archive_paths, unpack_into, UnpackOptions};
use crate::inroot::open_in_root;

fn entry(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(kind);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = entries.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

fn dir_fd(p: &Path) -> OwnedFd {
    rustix::fs::open(
        p,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap()
}

fn unpack(dest: &Path, bytes: &[u8], opts: &UnpackOptions) -> Result<(), crate::StoreError> {
    unpack_into(&mut tar::Archive::new(bytes), dir_fd(dest), opts)
}

#[test]
fn lands_next_to_existing_files_confined_and_literal() {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("ctr/tmp");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("keep"), b"k").unwrap();
    let a = archive(&[
        entry("./", tar::EntryType::Directory, "", b""),
        entry("/abs", tar::EntryType::Regular, "", b"abs"),
        entry("sub/f", tar::EntryType::Regular, "", b"f"),
        entry(".wh.x", tar::EntryType::Regular, "", b"w"),
    ]);
    unpack(&dest, &a, &UnpackOptions::default()).unwrap();
    assert_eq!(std::fs::read(dest.join("keep")).unwrap(), b"k");
    assert_eq!(std::fs::read(dest.join("abs")).unwrap(), b"abs");
    assert_eq!(std::fs::read(dest.join("sub/f")).unwrap(), b"f");
    // Whiteout names are plain files in a cp upload.
    assert_eq!(std::fs::read(dest.join(".wh.x")).unwrap(), b"w");
}

#[test]
fn symlink_escapes_and_dotdot_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let link = archive(&[
        entry(
            "evil",
            tar::EntryType::Symlink,
            &outside.to_string_lossy(),
            b"",
        ),
        entry("evil/x", tar::EntryType::Regular, "", b"x"),
    ]);
    assert!(unpack(&dest, &link, &UnpackOptions::default()).is_err());
    assert!(!outside.join("x").exists());
    let rel = archive(&[
        entry("up", tar::EntryType::Symlink, "../outside", b""),
        entry("up/y", tar::EntryType::Regular, "", b"y"),
    ]);
    assert!(unpack(&dest, &rel, &UnpackOptions::default()).is_err());
    assert!(!outside.join("y").exists());
    let dotdot = archive(&[entry("../outside/z", tar::EntryType::Regular, "", b"z")]);
    assert!(check_archive_paths(&mut tar::Archive::new(&dotdot[..])).is_err());
    assert!(unpack(&dest, &dotdot, &UnpackOptions::default()).is_err());
    assert!(!outside.join("z").exists());
    let hard = archive(&[entry("h", tar::EntryType::Link, "../outside/secret", b"")]);
    assert!(check_archive_paths(&mut tar::Archive::new(&hard[..])).is_err());
}

#[test]
fn no_overwrite_dir_non_dir_and_chown() {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("dest");
    std::fs::create_dir_all(dest.join("d")).unwrap();
    std::fs::write(dest.join("f"), b"f").unwrap();
    let strict = UnpackOptions {
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    };
    let a = archive(&[entry("d", tar::EntryType::Regular, "", b"x")]);
    assert!(unpack(&dest, &a, &strict).is_err());
    assert!(dest.join("d").is_dir());
    let a = archive(&[entry("f", tar::EntryType::Directory, "", b"")]);
    assert!(unpack(&dest, &a, &strict).is_err());
    assert!(dest.join("f").is_file());
    if rustix::process::geteuid().is_root() {
        let owned = UnpackOptions {
            chown: Some((7, 8)),
            ..Default::default()
        };
        let a = archive(&[entry("o", tar::EntryType::Regular, "", b"o")]);
        unpack(&dest, &a, &owned).unwrap();
        let root = crate::inroot::open_root(&dest).unwrap();
        let fd = open_in_root(&root, "/o", rustix::fs::OFlags::RDONLY).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        assert_eq!((st.st_uid, st.st_gid), (7, 8));
    }
}
