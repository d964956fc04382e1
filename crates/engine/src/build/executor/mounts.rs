//! `RUN --mount=…` and `RUN --network=…`: BuildKit's RUN flags, carried out with the engine's
//! ordinary container mounts (HostConfig `Mounts`). Nothing mounted reaches the committed layer:
//! the container's upper only sees what is written outside the mounts (the mount point
//! directory itself may appear in it, as with BuildKit). A secret's mount point is the
//! exception: the stubs the runtime made for it are removed before the commit
//! ([`remove_stubs`]), as BuildKit removes them, so not even its name reaches the image.

use super::*;
use bollard_stubs::models::{Mount, MountTmpfsOptions, MountType};
use rustix::fs::OFlags;
use sha2::Digest as _;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

/// What a RUN step runs, and with what around it.
pub(super) struct RunPlan {
    pub argv: Vec<String>,
    pub mounts: Vec<RunMount>,
    /// `--network`: None keeps the build's own network mode.
    pub network: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum RunMount {
    Cache {
        target: String,
        id: String,
        sharing: Sharing,
        mode: u32,
        uid: u32,
        gid: u32,
        read_only: bool,
    },
    Bind {
        target: String,
        /// A stage or image whose root is the source; None: the build context.
        from: Option<String>,
        source: String,
        rw: bool,
    },
    Tmpfs {
        target: String,
        size: Option<i64>,
    },
    /// `type=secret`: a value the build was given (`BuildOptions::secrets`), as a read-only
    /// file at `target`, as the variable `env`, or both. Holds no value, only where it goes.
    Secret {
        id: String,
        /// None when only `env` was asked for.
        target: Option<String>,
        env: Option<String>,
        required: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
}

impl RunMount {
    /// What of this mount a RUN's cache key holds. A secret is keyed on where it goes, never
    /// on its value (BuildKit's rule: a changed secret does not invalidate the cache).
    fn key_text(&self) -> String {
        match self {
            RunMount::Secret {
                id, target, env, ..
            } => format!("secret id={id:?} target={target:?} env={env:?}"),
            m => format!("{m:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sharing {
    Shared,
    Private,
    Locked,
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool> {
    match v.map(|s| s.to_ascii_lowercase()).as_deref() {
        // Go's strconv.ParseBool, as BuildKit reads these.
        None | Some("true") | Some("1") | Some("t") => Ok(true),
        Some("false") | Some("0") | Some("f") => Ok(false),
        Some(o) => Err(bad(format!("invalid value for {key}: {o}"))),
    }
}

fn parse_id(key: &str, v: Option<&str>) -> Result<u32> {
    v.and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("invalid value for {key}: {}", v.unwrap_or(""))))
}

/// go-units' RAMInBytes: a number with an optional binary unit (`64m`, `1GiB`, `512k`).
fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let n = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let v: f64 = t[..n].parse().ok()?;
    let mult: f64 = match t[n..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some((v * mult) as i64)
}

/// One `--mount` value (already expanded), as BuildKit's `ParseMount` reads it: CSV of
/// `key=value` or bare boolean keys; `type` defaults to bind.
pub(super) fn parse_mount(spec: &str) -> Result<RunMount> {
    let mut kv: Vec<(String, Option<String>)> = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        kv.push((k, v));
    }
    let get = |names: &[&str]| -> Option<String> {
        kv.iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone().unwrap_or_default())
    };
    let typ = get(&["type"])
        .unwrap_or_else(|| "bind".into())
        .to_ascii_lowercase();
    match typ.as_str() {
        "ssh" => {
            return Err(bad(
                "RUN --mount=type=ssh is not supported: Berth's builder has no ssh agent forwarding; pass the credentials as a build secret instead (berth build --secret id=ID,src=PATH and RUN --mount=type=secret,id=ID)",
            ));
        }
        "secret" => return parse_secret(&kv),
        "bind" | "cache" | "tmpfs" => {}
        o => return Err(bad(format!("unsupported mount type {o:?}"))),
    }
    let allowed: &[&str] = match typ.as_str() {
        "bind" => &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "rw",
            "readwrite",
            "ro",
            "readonly",
        ],
        "cache" => &[
            "type",
            "target",
            "dst",
            "destination",
            "id",
            "sharing",
            "mode",
            "uid",
            "gid",
            "ro",
            "readonly",
            "rw",
            "readwrite",
            "from",
            "source",
            "src",
        ],
        _ => &["type", "target", "dst", "destination", "size"],
    };
    for (k, v) in &kv {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "unexpected key '{k}' in '{k}={}'",
                v.as_deref().unwrap_or("")
            )));
        }
    }
    let target = get(&["target", "dst", "destination"])
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("mount target must be specified"))?;
    let flag = |names: &[&str]| -> Result<Option<bool>> {
        match kv.iter().rev().find(|(k, _)| names.contains(&k.as_str())) {
            None => Ok(None),
            Some((k, v)) => parse_bool(k, v.as_deref()).map(Some),
        }
    };
    let rw = flag(&["rw", "readwrite"])?;
    let ro = flag(&["ro", "readonly"])?;
    Ok(match typ.as_str() {
        "bind" => RunMount::Bind {
            target,
            from: get(&["from"]).filter(|f| !f.is_empty()),
            source: get(&["source", "src"]).unwrap_or_default(),
            rw: rw.unwrap_or(false) && ro != Some(true),
        },
        "cache" => {
            if get(&["from"]).is_some() || get(&["source", "src"]).is_some() {
                return Err(bad(
                    "RUN --mount=type=cache,from=… (seeding a cache from a stage) is not supported by the classic builder yet",
                ));
            }
            let sharing = match get(&["sharing"]).as_deref() {
                None | Some("shared") => Sharing::Shared,
                Some("private") => Sharing::Private,
                Some("locked") => Sharing::Locked,
                Some(o) => return Err(bad(format!("unsupported sharing value \"{o}\""))),
            };
            let mode = match get(&["mode"]) {
                None => 0o755,
                Some(m) => u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid value for mode: {m}")))?,
            };
            let uid = get(&["uid"]);
            let gid = get(&["gid"]);
            RunMount::Cache {
                id: get(&["id"])
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| target.clone()),
                target,
                sharing,
                mode,
                uid: uid.map_or(Ok(0), |v| parse_id("uid", Some(&v)))?,
                gid: gid.map_or(Ok(0), |v| parse_id("gid", Some(&v)))?,
                read_only: ro == Some(true) || rw == Some(false),
            }
        }
        _ => RunMount::Tmpfs {
            target,
            size: match get(&["size"]) {
                None => None,
                Some(s) => Some(
                    ram_in_bytes(&s).ok_or_else(|| bad(format!("invalid value for size: {s}")))?,
                ),
            },
        },
    })
}

/// Go's `path.Base`: the last element of a slash path ("." for an empty one).
fn base_name(p: &str) -> &str {
    match p.trim_end_matches('/') {
        "" if p.is_empty() => ".",
        "" => "/",
        t => t.rsplit('/').next().unwrap_or(t),
    }
}

/// `type=secret` (dockerfile2llb's dispatchSecret): the id is `id`, or `source`, or the
/// target's base name; without `env` the file goes to `/run/secrets/<id>` unless a target is
/// given; a missing secret is skipped unless `required`.
fn parse_secret(kv: &[(String, Option<String>)]) -> Result<RunMount> {
    const ALLOWED: &[&str] = &[
        "type",
        "id",
        "source",
        "src",
        "target",
        "dst",
        "destination",
        "env",
        "required",
        "mode",
        "uid",
        "gid",
        // Accepted by BuildKit and meaningless here: a secret is always read-only.
        "ro",
        "readonly",
        "rw",
        "readwrite",
    ];
    let mut id = None;
    let mut source = None;
    let mut target = None;
    let mut env = None;
    let mut required = false;
    let (mut mode, mut uid, mut gid) = (0o400, 0, 0);
    for (k, v) in kv {
        let val = || v.clone().unwrap_or_default();
        match k.as_str() {
            "id" => id = Some(val()),
            "source" | "src" => source = Some(val()),
            "target" | "dst" | "destination" => target = Some(val()).filter(|t| !t.is_empty()),
            "env" => env = Some(val()).filter(|e| !e.is_empty()),
            "required" => required = parse_bool(k, v.as_deref())?,
            "mode" => {
                mode = u32::from_str_radix(&val(), 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid value for mode: {}", val())))?
            }
            "uid" => uid = parse_id(k, v.as_deref())?,
            "gid" => gid = parse_id(k, v.as_deref())?,
            "from" => return Err(bad("secret mount should not have a from")),
            "sharing" => return Err(bad("secret mount should not define sharing")),
            k if ALLOWED.contains(&k) => {}
            k => {
                return Err(bad(format!(
                    "unexpected key '{k}' in '{k}={}'",
                    v.as_deref().unwrap_or("")
                )))
            }
        }
    }
    let (id, source) = (
        id.filter(|i| !i.is_empty()),
        source.filter(|s| !s.is_empty()),
    );
    if id.is_some() && source.is_some() {
        return Err(bad("both source and id can't be set"));
    }
    let id = match (id.or(source), &target) {
        (Some(id), _) => id,
        (None, Some(t)) => base_name(t).to_string(),
        (None, None) => return Err(bad("invalid secret mount. one of source, target required")),
    };
    // A relative target is taken from the root, as BuildKit's executor mounts it.
    let target = match target {
        Some(t) => match context::clean(&t).filter(|c| !c.is_empty()) {
            Some(c) => Some(format!("/{c}")),
            None => return Err(bad(format!("invalid secret target {t:?}"))),
        },
        None if env.is_none() => Some(format!("/run/secrets/{}", base_name(&id))),
        None => None,
    };
    Ok(RunMount::Secret {
        id,
        target,
        env,
        required,
        mode,
        uid,
        gid,
    })
}

/// The `from=` of a `--mount` value (unexpanded): a stage the RUN needs built first.
pub(super) fn mount_from(spec: &str) -> Option<&str> {
    spec.split(',')
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("from"))
        .map(|(_, v)| v)
}

/// `--network=`: BuildKit's three modes.
pub(super) fn parse_network(v: &str) -> Result<Option<String>> {
    match v {
        "default" | "" => Ok(None),
        "none" | "host" => Ok(Some(v.to_string())),
        o => Err(bad(format!("unsupported network mode \"{o}\""))),
    }
}

/// The RUN flags of `ins`, values expanded with the stage's variables.
pub(super) fn run_plan(
    argv: Vec<String>,
    flags: &[(String, Option<String>)],
    esc: char,
    vars: &HashMap<String, String>,
) -> Result<RunPlan> {
    let mut plan = RunPlan {
        argv,
        mounts: Vec::new(),
        network: None,
    };
    for (k, v) in flags {
        let v = expand(v.as_deref().unwrap_or(""), esc, vars)?;
        match k.as_str() {
            "mount" => plan.mounts.push(parse_mount(&v)?),
            "network" => plan.network = parse_network(&v)?,
            "security" if v == "sandbox" => {}
            "security" => {
                return Err(bad(format!(
                    "RUN --security={v} is not supported by the classic builder"
                )))
            }
            o => return Err(bad(format!("unknown flag: {o}"))),
        }
    }
    Ok(plan)
}

/// A cache mount's directory under the data root: one per id, kept across builds.
pub(super) fn cache_dir(data_root: &Path, id: &str) -> PathBuf {
    let h = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    data_root.join("build-mounts").join("cache").join(&h[..32])
}

/// `sharing=locked` (and `private`, which the serial classic builder treats the same way):
/// one RUN at a time holds the directory, across concurrent builds.
fn cache_lock(dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let mut m = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.entry(dir.to_path_buf()).or_default().clone()
}

/// What a RUN's mounts hold while it runs; dropping it unmounts the bind roots, releases
/// the cache locks and unmounts and removes the secrets' directory.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<Mount>,
    /// `NAME=value` of the secrets given as variables (`env=`), for this RUN only.
    pub env: Vec<String>,
    /// Where secret files were mounted: the stubs to remove before the commit.
    pub stubs: Vec<String>,
    roots: Vec<tempfile::TempDir>,
    _locks: Vec<tokio::sync::OwnedMutexGuard<()>>,
    _secrets: Option<SecretDir>,
}

/// A private tmpfs under the exec root (mode 0700) with one RUN's secret files, so a value
/// is never written to a disk; unmounted and removed when the step ends, however it ends.
struct SecretDir(tempfile::TempDir);

impl SecretDir {
    fn new(exec_root: &Path, bytes: usize, files: usize) -> Result<SecretDir> {
        use rustix::mount::MountFlags;
        use std::os::unix::fs::PermissionsExt;
        let parent = exec_root.join("build-secrets");
        std::fs::create_dir_all(&parent)?;
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700))?;
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&parent)?;
        // Whole pages per file, and one spare.
        let size = (bytes.div_ceil(4096) + files + 1) * 4096;
        let data = std::ffi::CString::new(format!("mode=0700,size={size},nr_inodes={}", files + 8))
            .map_err(EngineError::internal)?;
        rustix::mount::mount(
            "tmpfs",
            dir.path(),
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            data.as_c_str(),
        )
        .map_err(std::io::Error::from)?;
        Ok(SecretDir(dir))
    }

    /// Writes the `n`th secret file, owned and moded as the mount asks.
    fn write(&self, n: usize, value: &[u8], mode: u32, uid: u32, gid: u32) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = self.0.path().join(n.to_string());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(value)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(path)
    }
}

impl Drop for SecretDir {
    fn drop(&mut self) {
        // The TempDir then removes the (empty) mount point.
        if let Err(e) = berth_store::overlay::unmount(self.0.path()) {
            tracing::warn!(path = %self.0.path().display(), "build: unmount a RUN's secrets: {e}");
        }
    }
}

/// A secret exposed as a variable must be text without NUL (an environment entry).
fn env_value(id: &str, value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec())
        .ok()
        .filter(|v| !v.contains('\0'))
        .ok_or_else(|| {
            bad(format!(
                "secret {id} cannot be exposed with env=: its value is not text (UTF-8 without NUL bytes)"
            ))
        })
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for r in &self.roots {
            let mnt = r.path().join("mnt");
            if let Err(e) = berth_store::overlay::unmount(&mnt) {
                tracing::warn!(path = %mnt.display(), "build: unmount a RUN bind root: {e}");
            }
        }
    }
}

fn bind(source: &Path, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountType::BIND),
        source: Some(source.to_string_lossy().into_owned()),
        target: Some(target.to_string()),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// A root made of `lowers` (base first) with a throwaway upper: what a bind mount reads,
/// and where an `rw` bind's writes go to be discarded.
fn overlay_root(lowers: &[PathBuf], tmp: &Path) -> Result<tempfile::TempDir> {
    Ok(scratch_overlay(lowers, tmp, "build-bind-")?.0)
}

impl Builder {
    /// The cache-key part of a RUN's flags: each mount as given, plus what a bind mount reads
    /// (the context's files, or the image it comes from).
    pub(super) async fn run_flags_digest(&mut self, plan: &RunPlan) -> Result<String> {
        let mut h = sha2::Sha256::new();
        if let Some(n) = &plan.network {
            h.update(format!("network={n}\0").as_bytes());
        }
        for m in &plan.mounts {
            h.update(format!("{}\0", m.key_text()).as_bytes());
            if let RunMount::Bind { from, source, .. } = m {
                match from {
                    Some(f) => {
                        let img = self.base_image(f, usize::MAX).await?;
                        h.update(img.id.as_str().as_bytes());
                    }
                    None => {
                        let (root, known) = (self.ctx.root().to_path_buf(), self.ctx.known());
                        let source = source.clone();
                        let d = tokio::task::spawn_blocking(move || {
                            context::tree_digest(&root, &source, &known)
                        })
                        .await
                        .map_err(EngineError::internal)??;
                        h.update(d.as_bytes());
                    }
                }
            }
        }
        if plan.mounts.is_empty() && plan.network.is_none() {
            return Ok(String::new());
        }
        Ok(hex::encode(h.finalize()))
    }

    /// Makes every mount's source ready (cache directories, bind roots) for the container.
    pub(super) async fn prepare_mounts(&mut self, plan: &RunPlan) -> Result<Prepared> {
        let mut out = Prepared::default();
        let data_root = self.engine.cfg.data_root.clone();
        let tmp = data_root.join("tmp");
        for m in &plan.mounts {
            match m {
                RunMount::Secret {
                    id,
                    target,
                    env,
                    required,
                    mode,
                    uid,
                    gid,
                } => {
                    let Some(value) = self.opts.secrets.get(id) else {
                        if *required {
                            return Err(bad(format!(
                                "secret {id} not found: the RUN mounts it with required=true but the build was given no secret {id:?} (berth build --secret id={id},src=PATH)"
                            )));
                        }
                        continue;
                    };
                    if let Some(target) = target {
                        if out._secrets.is_none() {
                            let (bytes, files) = self.secret_files(plan);
                            out._secrets =
                                Some(SecretDir::new(&self.engine.cfg.exec_root, bytes, files)?);
                        }
                        if let Some(dir) = &out._secrets {
                            let file = dir.write(out.stubs.len(), value, *mode, *uid, *gid)?;
                            out.mounts.push(bind(&file, target, true));
                            out.stubs.push(target.clone());
                        }
                    }
                    if let Some(var) = env {
                        out.env.push(format!("{var}={}", env_value(id, value)?));
                    }
                }
                RunMount::Cache {
                    target,
                    id,
                    sharing,
                    mode,
                    uid,
                    gid,
                    read_only,
                } => {
                    let dir = cache_dir(&data_root, id);
                    if !dir.exists() {
                        create_cache_dir(&dir, *mode, *uid, *gid)?;
                    }
                    if *sharing != Sharing::Shared {
                        out._locks.push(cache_lock(&dir).lock_owned().await);
                    }
                    out.mounts.push(bind(&dir, target, *read_only));
                }
                RunMount::Tmpfs { target, size } => out.mounts.push(Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some(target.clone()),
                    tmpfs_options: size.map(|s| MountTmpfsOptions {
                        size_bytes: Some(s),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                RunMount::Bind {
                    target,
                    from,
                    source,
                    rw,
                } => {
                    let lowers = match from {
                        Some(f) => {
                            let img = self.base_image(f, usize::MAX).await?;
                            self.engine.images.layer_dirs(&img)?
                        }
                        None => vec![self.ctx.root().to_path_buf()],
                    };
                    let (tmp, source, confined) = (tmp.clone(), source.clone(), from.is_none());
                    let (root, src) = tokio::task::spawn_blocking(move || -> Result<_> {
                        let root = overlay_root(&lowers, &tmp)?;
                        let mnt = root.path().join("mnt");
                        let rel = match context::clean(&source) {
                            Some(r) => r,
                            None if confined => {
                                return Err(bad(format!(
                                    "forbidden path outside the build context: {source} ()"
                                )))
                            }
                            None => String::new(),
                        };
                        let src = if rel.is_empty() {
                            Ok(mnt.clone())
                        } else {
                            context::source_path(&mnt, &rel)
                        };
                        if src.is_err() {
                            let _ = berth_store::overlay::unmount(&mnt);
                        }
                        Ok((root, src?))
                    })
                    .await
                    .map_err(EngineError::internal)??;
                    out.roots.push(root);
                    out.mounts.push(bind(&src, target, !rw));
                }
            }
        }
        Ok(out)
    }
}

impl Builder {
    /// The size and number of the secret files `plan` will mount (those the build was given).
    fn secret_files(&self, plan: &RunPlan) -> (usize, usize) {
        plan.mounts
            .iter()
            .filter_map(|m| match m {
                RunMount::Secret {
                    id,
                    target: Some(_),
                    ..
                } => self.opts.secrets.get(id),
                _ => None,
            })
            .fold((0, 0), |(b, n), v| (b + v.len(), n + 1))
    }
}

/// BuildKit's mount-stub cleaner, for the secrets' mount points: the runtime made each
/// missing target (an empty file, and the directories above it) in the container's `upper`;
/// those still empty and in no image layer (`lowers`) are removed, deepest first, so no trace
/// of the secret is committed. A parent keeps its times, as BuildKit keeps them. Only literal
/// paths are looked at (no symlink is followed), so a target reached through a symlink of the
/// image keeps its stub.
pub(super) fn remove_stubs(upper: &Path, lowers: &[PathBuf], targets: &[String]) -> Result<()> {
    for t in targets {
        // Targets are clean absolute paths (parse_secret).
        let mut comps: Vec<&str> = t.split('/').filter(|c| !c.is_empty()).collect();
        while let Some((name, parents)) = comps.split_last() {
            if lowers.iter().any(|l| in_layer(l, parents, name)) {
                break;
            }
            let Ok(dir) = open_beneath(upper, parents) else {
                break;
            };
            if !remove_if_stub(&dir, name)? {
                break;
            }
            comps.pop();
        }
    }
    Ok(())
}

/// The directory `comps` below `root`, refusing any symlink on the way.
fn open_beneath(root: &Path, comps: &[&str]) -> std::result::Result<OwnedFd, rustix::io::Errno> {
    use rustix::fs::{Mode, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = rustix::fs::open(root, flags, Mode::empty())?;
    if comps.is_empty() {
        return Ok(root);
    }
    rustix::fs::openat2(
        &root,
        comps.join("/"),
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
}

/// Whether a layer has an entry at `parents/name`; when it cannot tell, it says yes (the
/// stub is then kept, which is the safe side).
fn in_layer(layer: &Path, parents: &[&str], name: &str) -> bool {
    use rustix::io::Errno;
    let absent = |e: Errno| e == Errno::NOENT || e == Errno::NOTDIR;
    match open_beneath(layer, parents) {
        Ok(dir) => match rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => true,
            Err(e) => !absent(e),
        },
        Err(e) => !absent(e),
    }
}

/// Removes `name` from `dir` if it is an empty file or directory; says whether it did.
fn remove_if_stub(dir: &OwnedFd, name: &str) -> Result<bool> {
    use rustix::fs::{AtFlags, FileType, Timespec, Timestamps};
    let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return Ok(false);
    };
    let is_dir = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => true,
        FileType::RegularFile if st.st_size == 0 => false,
        _ => return Ok(false),
    };
    if is_dir {
        let sub = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        let mut entries = rustix::fs::Dir::read_from(&sub).map_err(std::io::Error::from)?;
        while let Some(e) = entries.read() {
            let e = e.map_err(std::io::Error::from)?;
            if !matches!(e.file_name().to_bytes(), b"." | b"..") {
                return Ok(false);
            }
        }
    }
    let parent = rustix::fs::fstat(dir).map_err(std::io::Error::from)?;
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    rustix::fs::unlinkat(dir, name, flags).map_err(std::io::Error::from)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: parent.st_atime as _,
            tv_nsec: parent.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: parent.st_mtime as _,
            tv_nsec: parent.st_mtime_nsec as _,
        },
    };
    rustix::fs::futimens(dir, &times).map_err(std::io::Error::from)?;
    Ok(true)
}

fn create_cache_dir(dir: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    // Made aside and renamed, so a half-set-up directory is never used.
    let staging = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(parent)?;
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::chown(staging.path(), Some(uid), Some(gid))?;
    let path = staging.keep();
    if let Err(e) = std::fs::rename(&path, dir) {
        let _ = std::fs::remove_dir(&path);
        if !dir.exists() {
            return Err(e.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_as_buildkit() {
        assert_eq!(
            parse_mount("type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1,gid=2").unwrap(),
            RunMount::Cache {
                target: "/c".into(),
                id: "x".into(),
                sharing: Sharing::Locked,
                mode: 0o700,
                uid: 1,
                gid: 2,
                read_only: false,
            }
        );
        assert_eq!(
            parse_mount("target=/src,rw").unwrap(),
            RunMount::Bind {
                target: "/src".into(),
                from: None,
                source: String::new(),
                rw: true,
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,size=1m").unwrap(),
            RunMount::Tmpfs {
                target: "/t".into(),
                size: Some(1 << 20),
            }
        );
        let e = parse_mount("type=ssh").unwrap_err().to_string();
        assert!(
            e.contains("RUN --mount=type=ssh is not supported") && e.contains("ssh agent"),
            "{e}"
        );
        assert!(parse_mount("type=cache").is_err());
        assert!(parse_mount("type=tmpfs,target=/t,bogus=1").is_err());
        assert!(parse_network("bridge").is_err());
    }

    fn secret(
        id: &str,
        target: Option<&str>,
        env: Option<&str>,
        required: bool,
        (mode, uid, gid): (u32, u32, u32),
    ) -> RunMount {
        RunMount::Secret {
            id: id.into(),
            target: target.map(Into::into),
            env: env.map(Into::into),
            required,
            mode,
            uid,
            gid,
        }
    }

    #[test]
    fn secret_mounts_parse_as_buildkit() {
        let plain = (0o400, 0, 0);
        // The default target is /run/secrets/<id>; the id may come from source= or target=.
        assert_eq!(
            parse_mount("type=secret,id=tok").unwrap(),
            secret("tok", Some("/run/secrets/tok"), None, false, plain)
        );
        assert_eq!(
            parse_mount("type=secret,src=a/b").unwrap(),
            secret("a/b", Some("/run/secrets/b"), None, false, plain)
        );
        assert_eq!(
            parse_mount("type=secret,dst=/etc/tok.conf,required").unwrap(),
            secret("tok.conf", Some("/etc/tok.conf"), None, true, plain)
        );
        assert_eq!(
            parse_mount("TYPE=Secret,id=t,target=rel/x,required=false,mode=0440,uid=1,gid=2")
                .unwrap(),
            secret("t", Some("/rel/x"), None, false, (0o440, 1, 2))
        );
        // env= alone gives no file; with a target, both.
        assert_eq!(
            parse_mount("type=secret,id=t,env=TOKEN,required=true").unwrap(),
            secret("t", None, Some("TOKEN"), true, plain)
        );
        assert_eq!(
            parse_mount("type=secret,id=t,env=TOKEN,target=/t").unwrap(),
            secret("t", Some("/t"), Some("TOKEN"), false, plain)
        );
        for (spec, msg) in [
            (
                "type=secret",
                "invalid secret mount. one of source, target required",
            ),
            (
                "type=secret,id=a,source=b",
                "both source and id can't be set",
            ),
            (
                "type=secret,id=a,from=s",
                "secret mount should not have a from",
            ),
            (
                "type=secret,id=a,sharing=locked",
                "secret mount should not define sharing",
            ),
            ("type=secret,id=a,size=1m", "unexpected key 'size'"),
            (
                "type=secret,id=a,required=maybe",
                "invalid value for required",
            ),
            ("type=secret,id=a,mode=9", "invalid value for mode"),
            ("type=secret,id=a,uid=-1", "invalid value for uid"),
            ("type=secret,id=a,target=/", "invalid secret target"),
        ] {
            let e = parse_mount(spec).unwrap_err().to_string();
            assert!(e.contains(msg), "{spec}: {e}");
        }
    }

    #[test]
    fn a_secret_is_keyed_on_where_it_goes_only() {
        let a = parse_mount("type=secret,id=t,target=/x").unwrap();
        let b = parse_mount("type=secret,id=t,target=/x,required,mode=0444").unwrap();
        assert_eq!(a.key_text(), b.key_text());
        let c = parse_mount("type=secret,id=t,target=/y").unwrap();
        assert_ne!(a.key_text(), c.key_text());
        let cache = parse_mount("type=cache,target=/c").unwrap();
        assert_eq!(cache.key_text(), format!("{cache:?}"));
    }

    #[test]
    fn stubs_go_unless_the_image_had_them_or_they_hold_something() {
        let upper = tempfile::tempdir().unwrap();
        let lower = tempfile::tempdir().unwrap();
        let u = upper.path();
        std::fs::create_dir_all(lower.path().join("etc")).unwrap();
        // Stubs of /run/secrets/a (nothing above it in the image) and of /etc/b.
        std::fs::create_dir_all(u.join("run/secrets")).unwrap();
        std::fs::write(u.join("run/secrets/a"), b"").unwrap();
        std::fs::create_dir_all(u.join("etc")).unwrap();
        std::fs::write(u.join("etc/b"), b"").unwrap();
        // A target whose directory the RUN also wrote to keeps that directory.
        std::fs::create_dir_all(u.join("s")).unwrap();
        std::fs::write(u.join("s/c"), b"").unwrap();
        std::fs::write(u.join("s/kept"), b"x").unwrap();
        // A target the RUN's own files sit under (not empty): kept.
        std::fs::create_dir_all(u.join("d/e")).unwrap();
        std::fs::write(u.join("d/e/f"), b"x").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let etc = std::fs::File::open(u.join("etc")).unwrap();
        etc.set_modified(old).unwrap();
        let lowers = vec![lower.path().to_path_buf()];
        let targets: Vec<String> = ["/run/secrets/a", "/etc/b", "/s/c", "/d/e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        remove_stubs(u, &lowers, &targets).unwrap();
        assert!(!u.join("run").exists());
        assert!(!u.join("etc/b").exists());
        // /etc was in the image: it stays, with its times.
        let m = std::fs::metadata(u.join("etc")).unwrap();
        assert_eq!(m.modified().unwrap(), old);
        assert!(!u.join("s/c").exists() && u.join("s/kept").exists());
        assert!(u.join("d/e/f").exists());
    }

    #[test]
    fn stubs_behind_symlinks_are_left_alone() {
        let upper = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("x")).unwrap();
        std::os::unix::fs::symlink(outside.path(), upper.path().join("run")).unwrap();
        remove_stubs(upper.path(), &[], &["/run/x".to_string()]).unwrap();
        assert!(outside.path().join("x").exists());
    }
}
