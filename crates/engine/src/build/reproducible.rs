//! Reproducible builds: with `SOURCE_DATE_EPOCH` (the build arg BuildKit reads, or the
//! daemon's environment as the reproducible-builds.org convention has it) two builds of the
//! same context give the same image ID.
//!
//! What varies between two otherwise equal builds, and what is done about it:
//! - layer tar entries' mtimes: clamped to the epoch (files older than it keep theirs, as
//!   BuildKit's `rewrite-timestamp` does); the entries are already in a fixed order (the layer
//!   writer walks directories sorted by name) and carry no atime/ctime;
//! - the image config's `created` and the step's history `created`: set to the epoch;
//! - the intermediate container's ID the classic builder records as `container`: dropped.
//!
//! The cache key of a step includes the epoch, so a reproducible build never reuses a step
//! stamped with another time (nor an ordinary build a stamped one).

use super::options::BuildOptions;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::Image;
use berth_store::ImageRecord;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};

pub(super) const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The build's epoch: the build arg (a bare `--build-arg SOURCE_DATE_EPOCH` reads the
/// daemon's environment, as other valueless build args do), else the daemon's environment.
pub(super) fn epoch_of(opts: &BuildOptions) -> Result<Option<i64>> {
    let raw = match opts.build_args.get(SOURCE_DATE_EPOCH) {
        Some(Some(v)) => Some(v.clone()),
        _ => std::env::var(SOURCE_DATE_EPOCH).ok(),
    };
    match raw.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| EngineError::InvalidArgument(format!("invalid SOURCE_DATE_EPOCH: {v}"))),
    }
}

/// The epoch of a build whose options were checked by [`epoch_of`] already.
pub(super) fn epoch(opts: &BuildOptions) -> Option<i64> {
    epoch_of(opts).ok().flatten()
}

/// Build args the builder itself consumes (no "not consumed" warning for them).
pub(super) fn is_builder_arg(name: &str) -> bool {
    name == SOURCE_DATE_EPOCH
}

/// A step's cache key, set apart for a reproducible build.
pub(super) fn cache_key(key: String, opts: &BuildOptions) -> String {
    match epoch(opts) {
        None => key,
        Some(e) => {
            let mut h = Sha256::new();
            h.update(key.as_bytes());
            h.update(format!("\0{SOURCE_DATE_EPOCH}={e}").as_bytes());
            hex::encode(h.finalize())
        }
    }
}

fn rfc3339(epoch: i64) -> Result<String> {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid SOURCE_DATE_EPOCH: {epoch}")))
}

/// Clamps the mtime of every entry of the uncompressed layer tar in `file` to `epoch`, in
/// place, and rewinds it. Only the headers' mtime and checksum change, so names, order and
/// contents stay byte for byte.
pub(super) fn clamp_layer(file: &mut std::fs::File, epoch: i64) -> Result<()> {
    let epoch = epoch.max(0) as u64;
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    let mut block = [0u8; 512];
    while pos + 512 <= len {
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut block)?;
        if block.iter().all(|b| *b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size().map_err(EngineError::from)?;
        if matches!(
            header.entry_type(),
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader
        ) {
            // PAX records can carry their own mtime; our layer writer never emits them.
            return Err(EngineError::Internal(
                "reproducible build: PAX headers in a layer are not normalised".into(),
            ));
        }
        if header.mtime().map_err(EngineError::from)? > epoch {
            let mut h = header.clone();
            h.set_mtime(epoch);
            h.set_cksum();
            file.seek(SeekFrom::Start(pos))?;
            file.write_all(h.as_bytes())?;
        }
        pos += 512 + size.div_ceil(512) * 512;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(())
}

impl Engine {
    /// The step's image with the reproducible build's timestamps (itself for an ordinary
    /// build): its config rewritten and stored, the unstamped image record replaced.
    pub(super) async fn reproducible_image(
        &self,
        img: Image,
        opts: &BuildOptions,
    ) -> Result<Image> {
        let Some(epoch) = epoch(opts) else {
            return Ok(img);
        };
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || -> Result<Image> {
            let created = rfc3339(epoch)?;
            let mut config = img.config.clone();
            config.created = Some(created.clone());
            if let Some(h) = config.history.last_mut() {
                h.created = Some(created);
            }
            config.extra.remove("container");
            let bytes = serde_json::to_vec(&config).map_err(EngineError::internal)?;
            let id = images.content().put_bytes(&bytes)?;
            if id == img.id {
                return Ok(img);
            }
            let record = ImageRecord {
                id: id.clone(),
                layers: img.layers.clone(),
                manifest_digest: None,
                size: img.size,
                added_at: chrono::Utc::now().timestamp(),
            };
            images.db().transaction(|tx| tx.put_image(&record))?;
            // The unstamped image was made by this step alone and nothing refers to it yet;
            // its layers stay with the new record.
            if let Err(e) = images.remove(img.id.as_str(), true, true, &|_| None) {
                tracing::warn!(image = %img.id, "reproducible build: drop unstamped image: {e}");
            }
            Ok(images.resolve(id.as_str())?)
        })
        .await
        .map_err(EngineError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(mtime: u64) -> std::fs::File {
        let mut b = tar::Builder::new(tempfile::tempfile().unwrap());
        for (name, data) in [("a", &b"one"[..]), ("b/c", &b"two two"[..])] {
            let mut h = tar::Header::new_gnu();
            h.set_path(name).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn mtimes(f: &mut std::fs::File) -> Vec<u64> {
        f.seek(SeekFrom::Start(0)).unwrap();
        tar::Archive::new(f)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mtime().unwrap())
            .collect()
    }

    #[test]
    fn clamps_newer_mtimes_only() {
        let mut new = layer(2_000_000_000);
        clamp_layer(&mut new, 1_700_000_000).unwrap();
        assert_eq!(mtimes(&mut new), vec![1_700_000_000; 2]);
        let mut old = layer(5);
        clamp_layer(&mut old, 1_700_000_000).unwrap();
        assert_eq!(mtimes(&mut old), vec![5; 2]);
    }

    #[test]
    fn two_layers_written_at_different_times_become_identical() {
        let (mut a, mut b) = (layer(1_800_000_000), layer(1_900_000_000));
        clamp_layer(&mut a, 1_700_000_000).unwrap();
        clamp_layer(&mut b, 1_700_000_000).unwrap();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.read_to_end(&mut x).unwrap();
        b.read_to_end(&mut y).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn epoch_from_build_arg_and_cache_key() {
        let mut o = BuildOptions::default();
        let plain = cache_key("k".into(), &o);
        assert_eq!(plain, "k");
        o.build_args
            .insert(SOURCE_DATE_EPOCH.into(), Some("1700000000".into()));
        assert_eq!(epoch_of(&o).unwrap(), Some(1_700_000_000));
        assert_ne!(cache_key("k".into(), &o), "k");
        o.build_args
            .insert(SOURCE_DATE_EPOCH.into(), Some("yesterday".into()));
        assert!(epoch_of(&o).is_err());
    }
}
