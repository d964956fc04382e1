//! `RUN --mount=…` and `RUN --network=…`: BuildKit's RUN flags, carried out with the engine's
//! ordinary container mounts (HostConfig `Mounts`). Nothing mounted reaches the committed layer:
//! the container's upper only sees what is written outside the mounts (the mount point
//! directory itself may appear in it, as with BuildKit).

use super::*;
use bollard_stubs::models::{Mount, MountTmpfsOptions, MountType};
use sha2::Digest as _;
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
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sharing {
    Shared,
    Private,
    Locked,
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool> {
    match v.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
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
    let typ = get(&["type"]).unwrap_or_else(|| "bind".into());
    match typ.as_str() {
        "secret" | "ssh" => {
            let what = if typ == "ssh" {
                "SSH agent forwarding"
            } else {
                "secrets"
            };
            return Err(bad(format!(
                "RUN --mount=type={typ} needs BuildKit {what}, not supported by the classic builder yet"
            )));
        }
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

/// What a RUN's mounts hold while it runs; dropping it unmounts the bind roots and releases
/// the cache locks.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<Mount>,
    roots: Vec<tempfile::TempDir>,
    _locks: Vec<tokio::sync::OwnedMutexGuard<()>>,
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
            h.update(format!("{m:?}\0").as_bytes());
            if let RunMount::Bind { from, source, .. } = m {
                match from {
                    Some(f) => {
                        let img = self.base_image(f, usize::MAX).await?;
                        h.update(img.id.as_str().as_bytes());
                    }
                    None => {
                        let root = self.ctx.root().to_path_buf();
                        let source = source.clone();
                        let d = tokio::task::spawn_blocking(move || {
                            context::tree_digest(&root, &source)
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
        let e = parse_mount("type=secret,id=x").unwrap_err().to_string();
        assert!(e.contains("RUN --mount=type=secret needs BuildKit secrets, not supported by the classic builder yet"), "{e}");
        assert!(parse_mount("type=cache").is_err());
        assert!(parse_mount("type=tmpfs,target=/t,bogus=1").is_err());
        assert!(parse_network("bridge").is_err());
    }
}
