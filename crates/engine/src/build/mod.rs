//! `POST /build`: Docker's legacy ("classic") builder, over berth-build's Dockerfile frontend.
//! The context arrives as a tar; each stage the target needs is built instruction by
//! instruction: metadata instructions give a new image config, RUN runs a container from the
//! current image and commits its changes, COPY/ADD write files into a new layer; every step's
//! result is cached by (parent image, expanded instruction, content of what it read).

mod cache;
mod cache_from;
mod context;
mod executor;
pub mod options;
mod reproducible;
mod synced;

pub use cache::{default_cache_cap, CacheEntry, PruneOptions};
pub use options::{BuildEvent, BuildOptions};
pub use synced::{EntryKind, KeptContext, ManifestEntry, SyncAnswer};

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::Reference;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What is refused before the context is read: the tags to give the result.
fn check_request(opts: &BuildOptions) -> Result<Vec<Reference>> {
    let mut tags = Vec::new();
    for t in &opts.tags {
        let r = Reference::parse_normalized(t)
            .ok()
            .filter(|r| r.digest().is_none())
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("invalid reference format: {t}"))
            })?;
        tags.push(r.with_default_tag());
    }
    reproducible::epoch_of(opts)?;
    if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
        check_platform(p)?;
    }
    Ok(tags)
}

/// `--platform`: the builder runs steps on this machine, so it builds for its platform only
/// (`linux`, `linux/<arch>`, `linux/<arch>/<variant>`; `x86_64`/`aarch64` spelled either way).
fn check_platform(p: &str) -> Result<()> {
    let host = berth_image::config::host_architecture();
    let lower = p.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let os = parts.next().unwrap_or("");
    let arch = match parts.next() {
        Some("x86_64" | "x86-64") => Some("amd64"),
        Some("aarch64") => Some("arm64"),
        other => other,
    };
    if os == "linux" && arch.is_none_or(|a| a == host) && parts.count() <= 1 {
        return Ok(());
    }
    Err(EngineError::InvalidArgument(format!(
        "platform {p} is not supported: this builder runs each step on this machine and builds for linux/{host} only"
    )))
}

impl Engine {
    /// Compares a client's context manifest with the context kept for `key`: the session to
    /// build with and the paths the build's upload must hold.
    pub async fn compare_build_context(
        &self,
        key: &str,
        manifest: Vec<ManifestEntry>,
    ) -> Result<SyncAnswer> {
        let root = self.cfg.data_root.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || synced::compare(&root, &key, manifest))
            .await
            .map_err(EngineError::internal)?
    }

    /// The build contexts kept for Berth's CLI (for `system df`).
    pub async fn kept_build_contexts(&self) -> Result<Vec<KeptContext>> {
        let root = self.cfg.data_root.clone();
        tokio::task::spawn_blocking(move || synced::kept_contexts(&root))
            .await
            .map_err(EngineError::internal)
    }

    /// Starts a build from a context tar (plain or compressed), extracted as it is read from
    /// `context` (a blocking reader: the request body, or a downloaded remote context).
    /// The channel carries the progress stream as the legacy builder writes it and ends with
    /// `Aux` (the image ID) then nothing, or with `Error`. Bad requests (an invalid tag, a
    /// context that is not a tar, a missing Dockerfile, a Dockerfile syntax error) are
    /// reported as `Err` before anything is streamed.
    pub async fn build_image(
        self: &Arc<Self>,
        opts: BuildOptions,
        mut context: impl std::io::Read + Send + 'static,
    ) -> Result<mpsc::Receiver<BuildEvent>> {
        let tags = match check_request(&opts) {
            Ok(tags) => tags,
            Err(e) => {
                tokio::task::spawn_blocking(move || context::drain(&mut context))
                    .await
                    .map_err(EngineError::internal)?;
                return Err(e);
            }
        };
        let tmp = self.cfg.data_root.join("tmp");
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            opts.dockerfile.clone()
        };
        let (kept, stream) = match &opts.context_session {
            Some(s) => (
                Some(synced::open(&self.cfg.data_root, s, context).await?),
                None,
            ),
            None => (None, Some(context)),
        };
        let (ctx, df) = tokio::task::spawn_blocking(move || -> Result<_> {
            let ctx = match (kept, stream) {
                (Some(ctx), _) => ctx,
                (None, Some(stream)) => context::Context::extract(stream, &tmp)?,
                (None, None) => return Err(EngineError::internal("no build context")),
            };
            let text = ctx.dockerfile(&name)?;
            ctx.drop_ignored_build_files(&name)?;
            let df = berth_build::dockerfile::parse(&text).map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "dockerfile parse error line {}: {}",
                    e.line, e.message
                ))
            })?;
            Ok((ctx, df))
        })
        .await
        .map_err(EngineError::internal)??;
        let stages = executor::plan(&df, opts.target.as_deref())?;
        let (tx, rx) = mpsc::channel(256);
        let quiet = opts.quiet;
        let builder = executor::Build::new(self.clone(), opts, ctx, df, stages, tx.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            match builder.run().await {
                Ok(img) => {
                    let id = img.id.to_string();
                    let _ = tx
                        .send(BuildEvent::Aux(serde_json::json!({ "ID": id })))
                        .await;
                    let say = |s: String| BuildEvent::Stream(s);
                    if quiet {
                        let _ = tx.send(say(format!("{id}\n"))).await;
                    } else {
                        let _ = tx
                            .send(say(format!("Successfully built {}\n", img.id.short())))
                            .await;
                    }
                    for t in &tags {
                        if let Err(e) = engine.tag_image(&id, &t.full()).await {
                            let _ = tx.send(BuildEvent::error(&e)).await;
                            return;
                        }
                        if !quiet {
                            let _ = tx
                                .send(say(format!("Successfully tagged {}\n", t.familiar())))
                                .await;
                        }
                    }
                    // The steps' layers were stored unsynced: one syncfs for all of them,
                    // once the client has its answer (the window a power loss could tear
                    // a layer in is the flush's, not the kernel's 30 s writeback).
                    let root = engine.cfg.data_root.clone();
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = std::fs::File::open(&root)
                            .and_then(|f| rustix::fs::syncfs(f).map_err(Into::into))
                        {
                            tracing::warn!("build: syncfs: {e}");
                        }
                    });
                    // build-cache hook: the size cap, once the result is tagged (a tagged
                    // image's layers are not the cache's to evict).
                    if let Err(e) = engine.enforce_build_cache_cap().await {
                        tracing::warn!("build cache size cap: {e}");
                    }
                }
                Err(e) => {
                    tracing::info!("build failed: {e}");
                    let _ = tx.send(BuildEvent::error(&e)).await;
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_platform_is_built() {
        let host = berth_image::config::host_architecture();
        for ok in [
            "linux",
            &format!("linux/{host}"),
            &format!("Linux/{host}/v2"),
        ] {
            assert!(check_platform(ok).is_ok(), "{ok}");
        }
        if host == "amd64" {
            assert!(check_platform("linux/x86_64").is_ok());
        }
        for bad in [
            "windows",
            "linux/s390x_nope",
            "linux/amd64/v2/x",
            "darwin/arm64",
        ] {
            let e = check_platform(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("platform {bad} is not supported")),
                "{e}"
            );
        }
    }
}
