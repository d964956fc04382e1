//! The build context as the docker CLI's legacy path prepares it (cli/command/image/build.go,
//! build/context.go): a local directory walked and tarred as it is sent, honouring
//! `.dockerignore`; a tar archive or a bare Dockerfile on stdin; a URL handed to the daemon.
//!
//! A directory is walked once up front (docker's `ValidateContextDirectory`: unreadable files
//! fail before anything is sent), then its files are read while the tar streams out. Entries
//! are owned by uid/gid 0 with no user names, modes keep their permission and special bits,
//! modification times are whole seconds, symlinks stay links and files sharing an inode become
//! hard links, as go-archive's `TarWithOptions` with `ChownOpts{0, 0}` writes them.

use anyhow::{anyhow, bail, Result};
use berth_build::ignore::{DockerIgnore, MatchInfo};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Docker's default Dockerfile name; `dockerfile` is also looked for when it is absent.
pub(crate) const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// What is sent as the request body, with the Dockerfile's path inside it.
pub(crate) struct Prepared {
    pub source: Source,
    /// The `dockerfile` query parameter (empty: the daemon's default).
    pub dockerfile: String,
}

pub(crate) enum Source {
    /// A directory, tarred while it is sent.
    Dir(DirContext),
    /// A tar archive (possibly compressed) on stdin: the bytes already read, then the rest.
    StdinArchive { head: Vec<u8> },
    /// A context built in memory (a bare Dockerfile read from stdin).
    Memory(Vec<u8>),
    /// A URL the daemon fetches (`remote`); nothing is sent.
    Remote(String),
    /// What a Berth daemon asked for after comparing the directory with the copy it kept.
    Partial(DirContext, std::collections::HashSet<String>),
}

/// A walked context directory.
pub(crate) struct DirContext {
    root: PathBuf,
    entries: Vec<Entry>,
    /// A Dockerfile from stdin or from outside the context, added under a random name.
    extra: Option<ExtraDockerfile>,
}

struct Entry {
    /// The archive path, `/`-separated; directories end with `/`.
    name: PathBuf,
    path: PathBuf,
    meta: Metadata,
}

pub(crate) struct ExtraDockerfile {
    pub name: String,
    pub content: Vec<u8>,
}

/// Where a `PATH | URL | -` argument points, in docker's order of checks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ContextKind {
    Stdin,
    Local,
    Remote,
}

pub(crate) fn detect_kind(spec: &str) -> Result<ContextKind> {
    if spec == "-" {
        Ok(ContextKind::Stdin)
    } else if std::fs::metadata(spec).is_ok() {
        Ok(ContextKind::Local)
    } else if is_git_url(spec) || is_url(spec) {
        Ok(ContextKind::Remote)
    } else {
        bail!("unable to prepare context: path {spec:?} not found")
    }
}

/// urlutil.IsURL.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// urlutil.IsGitURL.
fn is_git_url(s: &str) -> bool {
    if is_url(s) {
        let path = s.split(['#', '?']).next().unwrap_or(s);
        return path.ends_with(".git");
    }
    ["git://", "github.com/", "git@"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Prepares the context named by `spec` with the `-f` value `dockerfile` (empty if not
/// given). `stdin` is read for `-` contexts and `-f -`.
pub(crate) fn prepare(spec: &str, dockerfile: &str, stdin: &mut dyn Read) -> Result<Prepared> {
    let dockerfile_from_stdin = dockerfile == "-";
    if dockerfile_from_stdin && spec == "-" {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    match detect_kind(spec)? {
        ContextKind::Stdin => from_stdin(stdin, dockerfile),
        ContextKind::Local => {
            let (root, rel) = local_dir(spec, dockerfile)
                .map_err(|e| anyhow!("unable to prepare context: {e}"))?;
            let outside = rel.starts_with("../");
            let extra_content = if dockerfile_from_stdin {
                Some(read_all(stdin)?)
            } else if outside {
                Some(std::fs::read(dockerfile).map_err(|e| {
                    anyhow!(
                        "unable to open Dockerfile: open {dockerfile}: {}",
                        crate::io_err_text(&e)
                    )
                })?)
            } else {
                None
            };
            let extra = extra_content.map(|content| ExtraDockerfile {
                name: random_dockerfile_name(),
                content,
            });
            let mut ctx = walk_context(&root, &rel, dockerfile_from_stdin)?;
            let dockerfile = match &extra {
                Some(x) => x.name.clone(),
                None => rel,
            };
            ctx.extra = extra;
            Ok(Prepared {
                source: Source::Dir(ctx),
                dockerfile,
            })
        }
        ContextKind::Remote => {
            if dockerfile_from_stdin {
                bail!("unable to prepare context: a Dockerfile on stdin needs a local directory as the context");
            }
            Ok(Prepared {
                source: Source::Remote(spec.to_string()),
                dockerfile: dockerfile.to_string(),
            })
        }
    }
}

fn read_all(r: &mut dyn Read) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

/// GetContextFromReader: an archive is sent as it is; anything else is a Dockerfile.
fn from_stdin(stdin: &mut dyn Read, dockerfile: &str) -> Result<Prepared> {
    let mut head = Vec::with_capacity(1024);
    Read::take(&mut *stdin, 1024).read_to_end(&mut head)?;
    if is_archive(&head) {
        return Ok(Prepared {
            source: Source::StdinArchive { head },
            dockerfile: dockerfile.to_string(),
        });
    }
    if !dockerfile.is_empty() {
        // `-f -` with `-` is refused earlier; any other -f names a second Dockerfile.
        bail!("unable to prepare context: ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles");
    }
    let mut content = head;
    stdin.read_to_end(&mut content)?;
    Ok(Prepared {
        source: Source::Memory(single_file_tar(DEFAULT_DOCKERFILE, 0o644, &content)?),
        dockerfile: DEFAULT_DOCKERFILE.to_string(),
    })
}

/// A compression magic number, or a valid tar header in the first block.
pub(crate) fn is_archive(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b, 0x08],
        b"BZh",
        &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGICS.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    let Some(block) = head.get(..512) else {
        return false;
    };
    if block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text = String::from_utf8_lossy(field);
    let Ok(stored) = u32::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == stored
}

/// GetContextFromLocalDir: the context's real path and the Dockerfile's path relative to it
/// (`-` for `-f -`; starting with `../` when it lies outside). `-f` is relative to the
/// current directory, not to the context.
fn local_dir(spec: &str, dockerfile: &str) -> Result<(PathBuf, String)> {
    let abs = absolute(Path::new(spec))?;
    let root = std::fs::canonicalize(&abs).map_err(|e| {
        anyhow!(
            "unable to evaluate symlinks in context path: lstat {}: {}",
            abs.display(),
            crate::io_err_text(&e)
        )
    })?;
    if !root.is_dir() {
        bail!("context must be a directory: {}", root.display());
    }
    if dockerfile == "-" {
        return Ok((root, "-".into()));
    }
    let given = if dockerfile.is_empty() {
        let default = root.join(DEFAULT_DOCKERFILE);
        let lower = root.join(DEFAULT_DOCKERFILE.to_ascii_lowercase());
        if default.symlink_metadata().is_err() && lower.symlink_metadata().is_ok() {
            lower
        } else {
            default
        }
    } else {
        absolute(Path::new(dockerfile))?
    };
    let real = std::fs::canonicalize(&given).map_err(|e| {
        anyhow!(
            "unable to evaluate symlinks in Dockerfile path: lstat {}: {}",
            given.display(),
            crate::io_err_text(&e)
        )
    })?;
    Ok((root.clone(), relative(&root, &real)))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(std::path::absolute(p)?)
}

/// filepath.Rel for two clean absolute paths, `/`-separated.
fn relative(base: &Path, target: &Path) -> String {
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".into(); b.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `.dockerfile.` and 20 random hex digits, as docker names a Dockerfile it adds.
pub(crate) fn random_dockerfile_name() -> String {
    let mut b = [0u8; 10];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n <= 0 {
            // getrandom only fails when interrupted; the time still makes a unique name.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            b.copy_from_slice(&t.to_le_bytes()[..10]);
            break;
        }
        filled += n as usize;
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(".dockerfile.{hex}")
}

/// Reads `.dockerignore` and walks the context. The Dockerfile (unless it comes from stdin)
/// and `.dockerignore` are sent even when excluded: the daemon needs them
/// (TrimBuildFilesFromExcludes adds them as exceptions).
pub(crate) fn walk_context(
    root: &Path,
    dockerfile_rel: &str,
    dockerfile_from_stdin: bool,
) -> Result<DirContext> {
    let ignore = read_dockerignore(root, dockerfile_rel, dockerfile_from_stdin)?;
    let mut entries = Vec::new();
    walk_dir(
        root,
        Path::new(""),
        &ignore,
        &MatchInfo::default(),
        &mut entries,
    )
    .map_err(|e| anyhow!("error checking context: {e}"))?;
    Ok(DirContext {
        root: root.to_path_buf(),
        entries,
        extra: None,
    })
}

fn read_dockerignore(
    root: &Path,
    dockerfile_rel: &str,
    dockerfile_from_stdin: bool,
) -> Result<DockerIgnore> {
    let mut text = match std::fs::read(root.join(".dockerignore")) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DockerIgnore::default()),
        Err(e) => bail!(
            "open {}: {}",
            root.join(".dockerignore").display(),
            crate::io_err_text(&e)
        ),
    };
    let parsed = DockerIgnore::parse(&text).map_err(|e| anyhow!("error checking context: {e}"))?;
    let mut keep = vec![".dockerignore"];
    if !dockerfile_from_stdin {
        keep.push(dockerfile_rel);
    }
    let mut changed = false;
    for k in keep {
        if parsed.excludes(k) {
            text.push_str(&format!("\n!{k}"));
            changed = true;
        }
    }
    if !changed {
        return Ok(parsed);
    }
    DockerIgnore::parse(&text).map_err(|e| anyhow!("error checking context: {e}"))
}

/// One directory of the walk, entries in byte order of their names (Go's WalkDir). An
/// excluded directory is not sent, but is entered when an exception may re-include
/// something below it.
fn walk_dir(
    dir: &Path,
    rel: &Path,
    ignore: &DockerIgnore,
    parent: &MatchInfo,
    out: &mut Vec<Entry>,
) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => anyhow!("can't stat '{}'", dir.display()),
        _ => anyhow!("{}: {}", dir.display(), crate::io_err_text(&e)),
    })?;
    let mut names = Vec::new();
    for e in rd {
        names.push(e?.file_name());
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel_path = rel.join(&name);
        let rel_str = rel_path.to_string_lossy();
        let meta = match path.symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                "file ('{}') not found or excluded by .dockerignore",
                path.display()
            ),
            Err(_) => bail!("can't stat '{}'", path.display()),
        };
        let (excluded, info) = ignore.excludes_with_parent(&rel_str, parent);
        if excluded {
            if meta.is_dir() && ignore.may_include_below(&rel_str) {
                walk_dir(&path, &rel_path, ignore, &info, out)?;
            }
            continue;
        }
        let ft = meta.file_type();
        if ft.is_socket() {
            continue;
        }
        if ft.is_file() {
            File::open(&path)
                .map_err(|_| anyhow!("no permission to read from '{}'", path.display()))?;
        }
        let is_dir = meta.is_dir();
        let mut name = rel_path.clone().into_os_string();
        if is_dir {
            name.push("/");
        }
        out.push(Entry {
            name: PathBuf::from(name),
            path: path.clone(),
            meta,
        });
        if is_dir {
            walk_dir(&path, &rel_path, ignore, &info, out)?;
        }
    }
    Ok(())
}

/// An entry's archive name as a manifest path (no trailing `/`).
fn manifest_path(name: &Path) -> String {
    name.to_string_lossy().trim_end_matches('/').to_string()
}

fn base_header(meta: &Metadata) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    zero_devices(&mut h);
    h
}

/// Go's tar writer fills the device fields of every entry ("0000000"), the tar crate leaves
/// them blank.
fn zero_devices(h: &mut tar::Header) {
    let _ = h.set_device_major(0);
    let _ = h.set_device_minor(0);
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn new_file_header(mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(now_secs());
    h.set_size(size);
    zero_devices(&mut h);
    h
}

/// A tar holding one regular file (a Dockerfile read from stdin).
pub(crate) fn single_file_tar(name: &str, mode: u32, content: &[u8]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = new_file_header(mode, content.len() as u64);
    b.append_data(&mut h, name, content)?;
    Ok(b.into_inner()?)
}

/// One path of the manifest a Berth daemon compares with the context it kept from the last
/// build of this directory (the engine's `build::ManifestEntry`).
#[derive(Debug, serde::Serialize)]
pub(crate) struct ManifestEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: u32,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub link: String,
    pub racy: bool,
}

/// A file modified this recently may change again within the file system's timestamp
/// granularity without its mtime moving: it is always sent ("racy git").
const RACY_NS: i64 = 2_000_000_000;

impl DirContext {
    /// The directory the context is.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the context can be sent as a difference: a Dockerfile from stdin or from
    /// outside the context changes the tar, so it is sent whole then.
    pub(crate) fn can_sync(&self) -> bool {
        self.extra.is_none()
    }

    /// The context's files, directories and symlinks as the tar would hold them (devices and
    /// fifos are not part of a kept context).
    pub(crate) fn manifest(&self) -> io::Result<Vec<ManifestEntry>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let mut out = Vec::new();
        for e in &self.entries {
            let ft = e.meta.file_type();
            let (kind, link) = if ft.is_dir() {
                ("dir", String::new())
            } else if ft.is_symlink() {
                let l = std::fs::read_link(&e.path)?;
                ("symlink", l.to_string_lossy().into_owned())
            } else if ft.is_file() {
                ("file", String::new())
            } else {
                continue;
            };
            let mtime = e.meta.mtime() * 1_000_000_000 + e.meta.mtime_nsec();
            out.push(ManifestEntry {
                path: manifest_path(&e.name),
                kind,
                mode: e.meta.mode() & 0o7777,
                size: if ft.is_file() { e.meta.len() } else { 0 },
                mtime,
                link,
                racy: now - mtime < RACY_NS,
            });
        }
        Ok(out)
    }

    /// Writes the context as a tar to `w`, reading the files as it goes.
    pub(crate) fn write_tar<W: Write>(&self, w: W) -> io::Result<W> {
        self.write_entries(w, None)
    }

    /// A tar of the paths a Berth daemon asked for (`need`), each file whole (no hard links
    /// to files it may not be given).
    pub(crate) fn write_tar_of<W: Write>(
        &self,
        w: W,
        need: &std::collections::HashSet<String>,
    ) -> io::Result<W> {
        self.write_entries(w, Some(need))
    }

    fn write_entries<W: Write>(
        &self,
        w: W,
        only: Option<&std::collections::HashSet<String>>,
    ) -> io::Result<W> {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        let mut seen_inodes: std::collections::HashMap<(u64, u64), PathBuf> =
            std::collections::HashMap::new();
        let mut ignore_replaced = false;
        for e in &self.entries {
            if only.is_some_and(|n| !n.contains(&manifest_path(&e.name))) {
                continue;
            }
            let ft = e.meta.file_type();
            let mut h = base_header(&e.meta);
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, &e.name, io::empty())?;
            } else if ft.is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = std::fs::read_link(&e.path)?;
                b.append_link(&mut h, &e.name, target)?;
            } else if ft.is_file() {
                if e.meta.nlink() > 1 && only.is_none() {
                    let key = (e.meta.dev(), e.meta.ino());
                    if let Some(first) = seen_inodes.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        b.append_link(&mut h, &e.name, first)?;
                        continue;
                    }
                    seen_inodes.insert(key, e.name.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                if let (Some(x), true) = (&self.extra, e.name == Path::new(".dockerignore")) {
                    let mut content = std::fs::read(&e.path)?;
                    content.extend_from_slice(format!("\n{}\n", x.name).as_bytes());
                    h.set_size(content.len() as u64);
                    b.append_data(&mut h, &e.name, content.as_slice())?;
                    ignore_replaced = true;
                    continue;
                }
                let size = e.meta.len();
                h.set_size(size);
                // A file that shrank while being sent is padded, one that grew is cut:
                // the header's size is already written.
                let data = File::open(&e.path)?
                    .take(size)
                    .chain(io::repeat(0))
                    .take(size);
                b.append_data(&mut h, &e.name, data)?;
            } else if only.is_none() {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                h.set_entry_type(kind);
                if !ft.is_fifo() {
                    let rdev = e.meta.rdev();
                    h.set_device_major(libc::major(rdev))?;
                    h.set_device_minor(libc::minor(rdev))?;
                }
                b.append_data(&mut h, &e.name, io::empty())?;
            }
        }
        if let Some(x) = self.extra.as_ref().filter(|_| only.is_none()) {
            if !ignore_replaced {
                // The daemon must not copy the added Dockerfile or .dockerignore into the image.
                let content = format!(".dockerignore\n{}\n", x.name);
                let mut h = new_file_header(0o600, content.len() as u64);
                b.append_data(&mut h, ".dockerignore", content.as_bytes())?;
            }
            let mut h = new_file_header(0o600, x.content.len() as u64);
            b.append_data(&mut h, &x.name, x.content.as_slice())?;
        }
        b.into_inner()
    }
}
