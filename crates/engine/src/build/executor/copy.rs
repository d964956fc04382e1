//! COPY, ADD and WORKDIR: files written into a fresh upper over the parent's layers.

use super::*;
use berth_build::ignore::DockerIgnore;

/// What a layer step writes into the mounted root.
pub(super) enum LayerWrite {
    Mkdir(String),
    Copy(Box<CopyWrite>),
}

/// A COPY/ADD whose digest is known; its tar is written when the step runs.
pub(super) struct CopyWrite {
    input: CopyInput,
    chown: Option<String>,
}

/// The flags of a COPY/ADD that shape its tar.
pub(super) struct CopyFlags {
    pub chmod: Option<u32>,
    pub is_add: bool,
    pub exclude: Option<DockerIgnore>,
    pub parents: bool,
}

/// A source that is not a path: a heredoc or a download.
pub(super) struct Inline {
    name: String,
    body: InlineBody,
    mtime: u64,
}

enum InlineBody {
    Text(String),
    Download(fetch::Download),
}

impl Inline {
    fn heredoc(name: &str, body: String) -> Inline {
        Inline {
            name: name.to_string(),
            body: InlineBody::Text(body),
            mtime: 0,
        }
    }
}

impl Builder {
    /// ADD <url>: the download (verified against `--checksum`), named after the URL.
    async fn download(&self, url: &str, checksum: Option<&str>) -> Result<Inline> {
        let d = fetch::fetch(url, &self.engine.cfg.data_root.join("tmp")).await?;
        if let Some(want) = checksum {
            if !want.starts_with("sha256:") {
                return Err(bad(format!("unsupported digest algorithm in {want}")));
            }
            if want != d.digest {
                return Err(bad(format!(
                    "digest mismatch for {url}: expected {want}, got {}",
                    d.digest
                )));
            }
        }
        Ok(Inline {
            name: fetch::download_name(&d.url)?,
            mtime: d.last_modified.unwrap_or(0).max(0) as u64,
            body: InlineBody::Download(d),
        })
    }
}

/// Everything a COPY/ADD reads: enough to take its digest first and, only on a cache
/// miss, to write its tar.
pub(super) struct CopyInput {
    /// `--from`: the image's ID and layers; None: the build context.
    from: Option<(String, Vec<PathBuf>)>,
    ctx_root: PathBuf,
    known: context::KnownDigests,
    srcs: Vec<String>,
    inline: Vec<Inline>,
    dest: String,
    /// The layers of the image the step writes on.
    lowers: Vec<PathBuf>,
    flags: CopyFlags,
    tmp: PathBuf,
}

impl CopyInput {
    /// Lays the sources out (`write`: into a tar) and digests them.
    fn plan(&self, write: bool) -> Result<(CopyPlan, &'static str, String)> {
        let known = match self.from {
            Some(_) => context::KnownDigests::default(),
            None => self.known.clone(),
        };
        let plan = |root: &Path, from_id: Option<&str>| {
            plan_copy(
                root,
                from_id.is_none(),
                &self.srcs,
                &self.inline,
                &self.dest,
                &self.lowers,
                &self.flags,
                &self.tmp,
                from_id,
                write,
                known.clone(),
            )
        };
        match &self.from {
            Some((id, from_lowers)) => {
                with_image_root(from_lowers, &self.tmp, |root| plan(root, Some(id)))
            }
            None => plan(&self.ctx_root, None),
        }
    }
}

pub(super) struct CopyPlan {
    /// None when only the digest was taken.
    tar: Option<std::fs::File>,
    dest_dir: String,
    /// Local archives ADD unpacks into `dest_dir`.
    archives: Vec<PathBuf>,
}

impl Builder {
    /// COPY/ADD/WORKDIR: the parent's layers and a fresh upper mounted for the write; the
    /// upper becomes the new layer.
    pub(super) async fn commit_write(
        &self,
        st: &Stage,
        text: String,
        write: LayerWrite,
    ) -> Result<Image> {
        let images = self.engine.images.clone();
        let parent = st.image.clone();
        let req = self.commit_request(st, text, "");
        let tmp = self.engine.cfg.data_root.join("tmp");
        let epoch = reproducible::epoch(&self.opts);
        tokio::task::spawn_blocking(move || -> Result<Image> {
            let lowers = images.layer_dirs(&parent)?;
            let (_dir, upper, mnt) = scratch_overlay(&lowers, &tmp, "build-layer-")?;
            let res = open_root(&mnt)
                .map_err(EngineError::from)
                .and_then(|root| apply(&root, write));
            if let Err(e) = berth_store::overlay::unmount(&mnt) {
                tracing::warn!(path = %mnt.display(), "build: unmount: {e}");
            }
            res?;
            let changes = berth_store::upper::changes(&upper, &lowers, &|_| false)?;
            // The scratch upper is the layer, byte for byte, unless SOURCE_DATE_EPOCH
            // rewrites the tar's times: then it is extracted from the tar as usual.
            let req = CommitRequest {
                upper: epoch.is_none().then(|| upper.clone()),
                ..req
            };
            commit_upper(&images, &parent, &upper, &changes, req, &tmp, epoch)
        })
        .await
        .map_err(EngineError::internal)?
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        name: &str,
        sources: &[String],
        dest: &str,
        heredocs: &[Heredoc],
        is_add: bool,
    ) -> Result<Outcome> {
        let esc = self.df.directives.escape;
        let vars = st.vars();
        let flag = |f: &str| -> Result<Option<String>> {
            ins.flags
                .iter()
                .find(|(k, _)| k == f)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| expand(v, esc, &vars))
                .transpose()
        };
        let chown = flag("chown")?.filter(|c| !c.is_empty());
        let chmod = flag("chmod")?
            .filter(|c| !c.is_empty())
            .map(|c| {
                u32::from_str_radix(&c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid chmod parameter: {c}")))
            })
            .transpose()?;
        let from = flag("from")?;
        let checksum = flag("checksum")?.filter(|c| !c.is_empty());
        let parents = match ins.flags.iter().rev().find(|(k, _)| k == "parents") {
            None => false,
            Some((_, None)) => true,
            Some((_, Some(v))) => v == "true",
        };
        let mut exclude = Vec::new();
        for (k, v) in &ins.flags {
            if k == "exclude" {
                exclude.push(expand(v.as_deref().unwrap_or(""), esc, &vars)?);
            }
        }
        let exclude = if exclude.is_empty() {
            None
        } else {
            Some(DockerIgnore::parse(&exclude.join("\n")).map_err(|e| {
                bad(format!(
                    "{name} failed: --exclude {}: {}",
                    e.pattern, e.message
                ))
            })?)
        };
        let mut srcs = Vec::new();
        let mut urls = Vec::new();
        for s in sources {
            let s = expand(s, esc, &vars)?;
            let is_url = s.starts_with("http://") || s.starts_with("https://");
            if is_url && is_add {
                urls.push(s);
            } else if is_url {
                return Err(bad(format!(
                    "{name} failed: source can't be a URL for COPY"
                )));
            } else if s.contains("://") || s.starts_with("git@") {
                return Err(bad(format!(
                    "{name} failed: source {s}: only http(s) URLs can be added by this engine's builder"
                )));
            } else {
                srcs.push(s);
            }
        }
        if checksum.is_some() && (urls.is_empty() || !srcs.is_empty()) {
            return Err(bad(format!(
                "{name} failed: checksum can't be specified for non-HTTP(S) sources"
            )));
        }
        let mut dest = expand(dest, esc, &vars)?;
        // The history names the destination as written (dockerd's `in <dest> `).
        let written_dest = dest.clone();
        if !dest.starts_with('/') {
            let wd = if st.config.working_dir.is_empty() {
                "/"
            } else {
                st.config.working_dir.as_str()
            };
            let keep_slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
            dest = format!("{}/{dest}", wd.trim_end_matches('/'));
            if keep_slash && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let from_image = match &from {
            Some(f) => Some(self.base_image(f, usize::MAX).await?),
            None => None,
        };
        let lowers = self.engine.images.layer_dirs(&st.image)?;
        let tmp = self.engine.cfg.data_root.join("tmp");
        let from_lowers = match &from_image {
            Some(img) => Some((img.id.to_string(), self.engine.images.layer_dirs(img)?)),
            None => None,
        };
        let mut inline: Vec<Inline> = heredocs
            .iter()
            .map(|h| {
                let body = if h.expand {
                    expand_heredoc(&h.content, esc, &vars)
                } else {
                    h.content.clone()
                };
                Inline::heredoc(&h.name, body)
            })
            .collect();
        for u in &urls {
            inline.push(
                self.download(u, checksum.as_deref())
                    .await
                    .map_err(|e| match e {
                        EngineError::InvalidArgument(m) => {
                            EngineError::InvalidArgument(format!("{name} failed: {m}"))
                        }
                        e => e,
                    })?,
            );
        }
        let input = CopyInput {
            from: from_lowers,
            ctx_root: self.ctx.root().to_path_buf(),
            known: self.ctx.known(),
            srcs,
            inline,
            dest,
            lowers,
            flags: CopyFlags {
                chmod,
                is_add,
                exclude,
                parents,
            },
            tmp,
        };
        let (input, _, kind, digest) = tokio::task::spawn_blocking(move || {
            input
                .plan(false)
                .map(|(plan, kind, digest)| (input, plan, kind, digest))
        })
        .await
        .map_err(EngineError::internal)??;
        let mut flags = String::new();
        for (k, v) in &ins.flags {
            flags.push_str(&format!("--{k}={} ", v.as_deref().unwrap_or("")));
        }
        let text = st.nop(&format!("{name} {flags}{kind}:{digest} in {written_dest} "));
        let write = LayerWrite::Copy(Box::new(CopyWrite { input, chown }));
        Ok(Outcome::Layer(text.clone(), text, write))
    }
}

/// A heredoc body with `$VAR`s expanded line by line (quotes in the body are kept).
pub(super) fn expand_heredoc(body: &str, esc: char, vars: &HashMap<String, String>) -> String {
    body.split_inclusive('\n')
        .map(|line| {
            let (text, nl) = match line.strip_suffix('\n') {
                Some(t) => (t, "\n"),
                None => (line, ""),
            };
            let protected = text.replace('"', "\u{1}").replace('\'', "\u{2}");
            let out = expand_word(&protected, esc, &|k| vars.get(k).cloned())
                .unwrap_or_else(|_| protected.clone());
            format!("{}{nl}", out.replace('\u{1}', "\"").replace('\u{2}', "'"))
        })
        .collect()
}

/// Mounts an image's layers (with a throwaway upper) for reading, e.g. `COPY --from`.
pub(super) fn with_image_root<T>(
    lowers: &[PathBuf],
    tmp: &Path,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let (_dir, _, mnt) = scratch_overlay(lowers, tmp, "build-from-")?;
    let res = f(&mnt);
    if let Err(e) = berth_store::overlay::unmount(&mnt) {
        tracing::warn!(path = %mnt.display(), "build: unmount: {e}");
    }
    res
}

/// Whether `path` is a directory in the image made of `lowers` (base first).
pub(super) fn dir_in_layers(lowers: &[PathBuf], path: &str) -> bool {
    let rel = context::clean(path).unwrap_or_default();
    if rel.is_empty() {
        return true;
    }
    for l in lowers.iter().rev() {
        if let Ok(md) = std::fs::metadata(l.join(&rel)) {
            return md.is_dir();
        }
        if let Ok(md) = std::fs::symlink_metadata(l.join(&rel)) {
            // A whiteout (0/0 char device) or a symlink: not a directory we can see here.
            let _ = md;
            return false;
        }
    }
    false
}

pub(super) fn parent_and_base(p: &str) -> (String, String) {
    let p = p.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some((d, b)) => (
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            },
            b.to_string(),
        ),
        None => ("/".into(), p.to_string()),
    }
}

/// Lays the sources out for the destination as dockerd's COPY does: several sources or a
/// trailing `/` make the destination a directory; a directory source copies its contents;
/// a single file onto a path that is not an existing directory becomes that path.
#[allow(clippy::too_many_arguments)]
pub(super) fn plan_copy(
    root: &Path,
    confined: bool,
    srcs: &[String],
    inline: &[Inline],
    dest: &str,
    lowers: &[PathBuf],
    flags: &CopyFlags,
    tmp: &Path,
    from_id: Option<&str>,
    write: bool,
    known: context::KnownDigests,
) -> Result<(CopyPlan, &'static str, String)> {
    let is_add = flags.is_add;
    let name = if is_add { "ADD" } else { "COPY" };
    // dockerd prefixes what goes wrong while finding the sources, and only that.
    let failed = |e: EngineError| match e {
        EngineError::InvalidArgument(m) => {
            EngineError::InvalidArgument(format!("{name} failed: {m}"))
        }
        e => e,
    };
    let paths = copy_sources(root, confined, srcs, flags).map_err(failed)?;
    if paths.is_empty() && inline.is_empty() {
        return Err(failed(bad("no source files were specified")));
    }
    let count = paths.len() + inline.len();
    let dir_dest = dest.ends_with('/') || dest.ends_with("/.");
    if count > 1 && !dir_dest {
        return Err(bad(format!(
            "When using {name} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let mut w = TarWriter::new(
        tmp,
        CopyMode {
            chmod: flags.chmod,
            exclude: flags.exclude.clone(),
        },
        write,
        known,
    )?;
    if let Some(id) = from_id {
        w.note(id);
    }
    let mut archives = Vec::new();
    let mut kind = if count > 1 { "multi" } else { "file" };
    let dest_trim = if dest == "/" {
        "/"
    } else {
        dest.trim_end_matches("/.").trim_end_matches('/')
    };
    // A directory or an archive always lands in (or as) the destination directory.
    let dir_like = |src: &Source| -> Result<bool> {
        Ok(std::fs::metadata(&src.host)?.is_dir() || (is_add && context::is_archive(&src.host)))
    };
    let single_file_target = count == 1
        && !flags.parents
        && !dir_dest
        && !dir_in_layers(lowers, dest_trim)
        && match paths.first() {
            Some(src) => !dir_like(src)?,
            None => true,
        };
    let dest_dir = if single_file_target {
        parent_and_base(dest_trim).0
    } else {
        dest_trim.to_string()
    };
    for Source { rel, kept, host } in &paths {
        let md = std::fs::metadata(host)?;
        let base = rel.rsplit('/').next().unwrap_or(rel).to_string();
        if flags.parents && !(is_add && md.is_file() && context::is_archive(host)) {
            w.add(host, kept)?;
        } else if md.is_dir() {
            if count == 1 {
                kind = "dir";
            }
            w.add(host, "")?;
        } else if is_add && context::is_archive(host) {
            w.note(&base);
            w.note_content(host)?;
            archives.push(host.clone());
        } else if single_file_target {
            w.add(host, &parent_and_base(dest_trim).1)?;
        } else {
            w.add(host, &base)?;
        }
    }
    for i in inline.iter() {
        let target = if single_file_target {
            parent_and_base(dest_trim).1
        } else {
            i.name.clone()
        };
        match &i.body {
            InlineBody::Text(t) => w.add_bytes(&target, t.as_bytes())?,
            InlineBody::Download(d) => {
                w.note(&d.digest);
                // Read once per pass (digest, then tar): rewound each time.
                let mut file = &d.file;
                file.seek(SeekFrom::Start(0))?;
                w.add_stream(&target, file, d.len, 0o600, i.mtime)?
            }
        }
    }
    let (tar, digest) = w.finish()?;
    Ok((
        CopyPlan {
            tar,
            dest_dir,
            archives,
        },
        kind,
        digest,
    ))
}

/// One source path of a COPY/ADD.
pub(super) struct Source {
    /// The path in the context (or image).
    rel: String,
    /// Its name under the destination (`--parents` keeps directories).
    kept: String,
    /// Where it is on the host, symlinks resolved inside the root.
    host: PathBuf,
}

/// The sources' paths, their globs expanded and `--exclude` applied.
fn copy_sources(
    root: &Path,
    confined: bool,
    srcs: &[String],
    flags: &CopyFlags,
) -> Result<Vec<Source>> {
    let mut paths = Vec::new();
    for s in srcs {
        // `--parents` keeps the path below a `/./` pivot, or the whole path.
        let pivot = match s.split_once("/./") {
            Some((p, _)) if flags.parents => context::clean(p).unwrap_or_default(),
            _ => String::new(),
        };
        for rel in context::expand_source(root, s, confined)? {
            // Matched against the context path and, as BuildKit's per-source copy does, the
            // name the source itself has.
            let base = rel.rsplit('/').next().unwrap_or(&rel);
            if flags
                .exclude
                .as_ref()
                .is_some_and(|x| x.excludes(&rel) || x.excludes(base))
            {
                continue;
            }
            let kept = rel
                .strip_prefix(&pivot)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(&rel)
                .to_string();
            let host = context::source_path(root, &rel)?;
            paths.push(Source { rel, kept, host });
        }
    }
    Ok(paths)
}

/// Looks a user (and group) up in the root's /etc/passwd and /etc/group.
pub(super) fn resolve_chown(root: &OwnedFd, spec: &str) -> Result<(u32, u32)> {
    let read = |p: &str| -> String {
        open_in_root(root, p, OFlags::RDONLY)
            .ok()
            .and_then(|fd| {
                let mut s = String::new();
                std::fs::File::from(fd)
                    .read_to_string(&mut s)
                    .ok()
                    .map(|_| s)
            })
            .unwrap_or_default()
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, gid_field: bool| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| {
                let id = f[2].parse().unwrap_or(0);
                let gid = if gid_field {
                    f[3].parse().unwrap_or(0)
                } else {
                    id
                };
                (id, gid)
            })
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("/etc/passwd", user, true).ok_or_else(|| {
            bad(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g, false)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    bad(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// Performs a layer step's write inside the mounted root.
pub(super) fn apply(root: &OwnedFd, write: LayerWrite) -> Result<()> {
    match write {
        LayerWrite::Mkdir(dir) => {
            mkdir_all_in_root(root, &dir, false).map_err(std::io::Error::from)?;
            Ok(())
        }
        LayerWrite::Copy(copy) => {
            let CopyWrite { input, chown } = *copy;
            let (plan, ..) = input.plan(true)?;
            let mut tar = plan
                .tar
                .ok_or_else(|| EngineError::Internal("COPY: no tar was written".into()))?;
            let chown = chown
                .as_deref()
                .map(|c| resolve_chown(root, c))
                .transpose()?;
            let existed = open_in_root(root, &plan.dest_dir, OFlags::PATH).is_ok();
            let resolved =
                mkdir_all_in_root(root, &plan.dest_dir, false).map_err(std::io::Error::from)?;
            if let (Some((uid, gid)), false) = (chown, existed) {
                // dockerd's fixPermissions: a destination the copy created is the new owner's.
                let dir = open_in_root(root, &resolved, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(std::io::Error::from)?;
                rustix::fs::fchown(
                    &dir,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )
                .map_err(std::io::Error::from)?;
            }
            let open_dest = || {
                open_in_root(root, &resolved, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(|e| bad(format!("destination {}: {e}", plan.dest_dir)))
            };
            let opts = berth_store::UnpackOptions {
                chown,
                ..Default::default()
            };
            tar.seek(SeekFrom::Start(0))?;
            berth_store::unpack_into(&mut tar::Archive::new(&mut tar), open_dest()?, &opts)
                .map_err(bad)?;
            for a in &plan.archives {
                let check = std::fs::File::open(a)?;
                let s = berth_store::compression::decompress_archive(check).map_err(bad)?;
                berth_store::check_archive_paths(&mut tar::Archive::new(s)).map_err(bad)?;
                let f = std::fs::File::open(a)?;
                let s = berth_store::compression::decompress_archive(f).map_err(bad)?;
                berth_store::unpack_into(
                    &mut tar::Archive::new(s),
                    open_dest()?,
                    &berth_store::UnpackOptions::default(),
                )
                .map_err(bad)?;
            }
            Ok(())
        }
    }
}
