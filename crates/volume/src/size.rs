//! A volume's size on disk for `system df -v` (UsageData.Size).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{fstat, openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};

/// Bytes allocated under `dir`, each hard-linked inode counted once, not following symlinks
/// and not crossing into other filesystems mounted below it.
///
/// Directories themselves are not counted, as dockerd's `directory.Size`, so an empty volume
/// is 0 bytes; files count by their allocated blocks (a sparse file by what it uses).
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let fd = open_dir(CWD, dir.as_os_str())?;
    let dev = fstat(&fd)?.st_dev as u64;
    let mut seen = HashSet::new();
    walk(&fd, dev, &mut seen)
}

fn open_dir(parent: impl std::os::fd::AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn walk(dir: &OwnedFd, dev: u64, seen: &mut HashSet<u64>) -> std::io::Result<u64> {
    let mut total = 0;
    let mut entries = Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let st = match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Removed while we walk: a running container may be writing.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        if st.st_dev as u64 != dev {
            continue;
        }
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            match open_dir(dir, name) {
                Ok(sub) => total += walk(&sub, dev, seen)?,
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        } else if st.st_nlink <= 1 || seen.insert(st.st_ino as u64) {
            total += st.st_blocks as u64 * 512;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn blocks(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).unwrap().blocks() * 512
    }

    #[test]
    fn empty_is_zero() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        assert_eq!(dir_size(d.path()).unwrap(), 0);
    }

    #[test]
    fn counts_blocks_hard_links_once_and_not_symlink_targets() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let big = outside.path().join("big");
        std::fs::write(&big, vec![1u8; 1 << 20]).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let f = d.path().join("sub/f");
        std::fs::File::create(&f)
            .unwrap()
            .write_all(&[7u8; 100_000])
            .unwrap();
        std::fs::hard_link(&f, d.path().join("f2")).unwrap();
        std::os::unix::fs::symlink(&big, d.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("dirlink")).unwrap();
        let want = blocks(&f) + blocks(&d.path().join("link")) + blocks(&d.path().join("dirlink"));
        assert!(blocks(&f) >= 100_000);
        assert_eq!(dir_size(d.path()).unwrap(), want);
    }

    #[test]
    fn sparse_files_count_what_they_use() {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join("sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        assert!(dir_size(d.path()).unwrap() < 1 << 20);
    }

    #[test]
    fn does_not_cross_mount_points() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().to_path_buf();
        std::thread::spawn(move || {
            use nix::mount::MsFlags;
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .unwrap();
            let mnt = path.join("mnt");
            std::fs::create_dir(&mnt).unwrap();
            nix::mount::mount(
                Some("tmpfs"),
                &mnt,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
            std::fs::write(mnt.join("big"), vec![1u8; 1 << 20]).unwrap();
            assert_eq!(dir_size(&path).unwrap(), 0);
            // The mount itself is measured when asked for.
            assert!(dir_size(&mnt).unwrap() >= 1 << 20);
        })
        .join()
        .unwrap();
    }
}
