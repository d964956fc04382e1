//! Bringing a layer archive in: blob first, then the extracted dir; and
//! undoing exactly what one failed operation created.

use std::io::{Read, Seek, SeekFrom};

use berth_store::{Compression, Digest, ExtractOptions, LayerRecord, LayerStore};

use crate::error::ImageError;
use crate::service::ImageService;

/// Files one import/load/pull created, removed again if it fails before the DB commit.
/// Anything a DB record names by then is left alone.
#[derive(Default)]
pub struct Rollback {
    blobs: Vec<Digest>,
    layers: Vec<Digest>,
    armed: bool,
}

impl Rollback {
    pub fn new() -> Self {
        Rollback {
            armed: true,
            ..Default::default()
        }
    }

    /// A blob this operation stored.
    pub fn blob(&mut self, d: Digest) {
        self.blobs.push(d);
    }

    /// A layer directory (chain id) this operation extracted.
    pub fn layer(&mut self, chain_id: Digest) {
        self.layers.push(chain_id);
    }

    /// Takes over what `other` recorded (work done on another thread), leaving it empty.
    pub fn absorb(&mut self, other: &mut Rollback) {
        self.blobs.append(&mut other.blobs);
        self.layers.append(&mut other.layers);
        other.armed = false;
    }

    /// Everything is now referenced by the DB: keep it.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    pub fn run(&mut self, svc: &ImageService) {
        self.run_except(svc, &|_| false);
    }

    /// `run`, keeping the blobs and layers `keep` names: what a concurrent operation (another
    /// pull of the same layer) relies on although this one created it.
    pub fn run_except(&mut self, svc: &ImageService, keep: &dyn Fn(&Digest) -> bool) {
        if !self.armed {
            return;
        }
        self.armed = false;
        for l in self.layers.drain(..).rev() {
            if keep(&l) {
                continue;
            }
            if matches!(svc.db().get_layer(&l), Ok(None)) {
                if let Err(e) = svc.layers().remove(&l) {
                    tracing::warn!(chain_id = %l, error = %e, "rollback: could not remove layer");
                }
            }
        }
        for b in self.blobs.drain(..) {
            if keep(&b) {
                continue;
            }
            let used = svc
                .db()
                .transaction(|tx| tx.blob_in_use(&b))
                .unwrap_or(true);
            // Configs and manifests are never layer blobs; an image record
            // naming them would have been committed with disarm().
            if !used {
                let _ = svc.content().remove(&b);
            }
        }
    }
}

impl ImageService {
    /// Stores `src` as a blob (verified against `expected_blob` if given),
    /// extracts it on top of `parent` and checks its diff id.
    pub(crate) fn ingest_layer(
        &self,
        parent: Option<&Digest>,
        src: impl Read,
        expected_blob: Option<&Digest>,
        expected_diff: Option<&Digest>,
        defer_sync: bool,
        rb: &mut Rollback,
    ) -> Result<LayerRecord, ImageError> {
        let blob = match expected_blob {
            Some(d) if self.content().contains(d) => d.clone(),
            Some(d) => {
                self.content().put_verified(src, d)?;
                rb.blob(d.clone());
                d.clone()
            }
            None => {
                let (d, _) = if defer_sync {
                    self.content().put_unsynced(src)?
                } else {
                    self.content().put(src)?
                };
                // put() of content we already had is harmless to roll back
                // only if no layer uses it; Rollback checks that.
                rb.blob(d.clone());
                d
            }
        };
        self.extract_layer_blob(parent, &blob, expected_diff, defer_sync, &mut |_| {}, rb)
    }

    /// Extracts the stored blob `blob` (plain, gzip or zstd tar) on top of `parent` and checks
    /// its diff id against `expected_diff`. `progress` is told how many bytes of the blob were
    /// read so far. The layer directory goes to `rb` when this call created it.
    pub fn extract_layer_blob(
        &self,
        parent: Option<&Digest>,
        blob: &Digest,
        expected_diff: Option<&Digest>,
        defer_sync: bool,
        progress: &mut dyn FnMut(u64),
        rb: &mut Rollback,
    ) -> Result<LayerRecord, ImageError> {
        let f = self.content().open_blob(blob)?;
        self.extract_layer_stream(parent, f, blob, expected_diff, defer_sync, progress, rb)
    }

    /// `extract_layer_blob` from the blob's bytes as they arrive (a download still under
    /// way), so that a pull extracts while it downloads. The caller must make sure that what
    /// came through hashes to `blob` (the content store does as it stores the same bytes)
    /// and roll the layer back when it does not.
    #[allow(clippy::too_many_arguments)]
    pub fn extract_layer_stream(
        &self,
        parent: Option<&Digest>,
        mut src: impl Read,
        blob: &Digest,
        expected_diff: Option<&Digest>,
        defer_sync: bool,
        progress: &mut dyn FnMut(u64),
        rb: &mut Rollback,
    ) -> Result<LayerRecord, ImageError> {
        let mut head = [0u8; 4];
        let n = read_up_to(&mut src, &mut head)?;
        let compression = Compression::detect(&head[..n]);
        let f = std::io::Cursor::new(head).take(n as u64).chain(src);
        let opts = ExtractOptions {
            defer_sync,
            ..self.extract_options.clone()
        };
        let counted = CountingReader {
            inner: f,
            count: 0,
            progress,
        };
        let applied = self.layers().apply(parent, counted, &opts)?;
        if !applied.already_existed {
            rb.layers.push(applied.chain_id.clone());
        }
        if let Some(exp) = expected_diff {
            if exp != &applied.diff_id {
                return Err(ImageError::InvalidArchive(format!(
                    "layer diff id mismatch: config says {exp}, archive has {}",
                    applied.diff_id
                )));
            }
        }
        debug_assert_eq!(
            applied.chain_id,
            LayerStore::chain_id(parent, &applied.diff_id)
        );
        Ok(LayerRecord {
            chain_id: applied.chain_id,
            diff_id: applied.diff_id,
            parent: parent.cloned(),
            blob: Some(blob.clone()),
            blob_media_type: compression.oci_layer_media_type().to_string(),
            size: applied.size,
        })
    }

    /// `ingest_layer` for a layer tar (uncompressed, so its digest is its diff id) whose
    /// content `upper` already holds: the upper is adopted as the layer directory; the tar is
    /// extracted only when the upper carries what a lower layer cannot.
    pub(crate) fn ingest_upper(
        &self,
        parent: Option<&Digest>,
        mut src: impl Read + Seek,
        upper: &std::path::Path,
        rb: &mut Rollback,
    ) -> Result<LayerRecord, ImageError> {
        let (blob, size) = self.content().put_unsynced(&mut src)?;
        rb.blob(blob.clone());
        let Some(applied) = self.layers().adopt(parent, upper, &blob, size)? else {
            src.seek(SeekFrom::Start(0))?;
            return self.ingest_layer(parent, src, Some(&blob), None, true, rb);
        };
        if !applied.already_existed {
            rb.layers.push(applied.chain_id.clone());
        }
        Ok(LayerRecord {
            chain_id: applied.chain_id,
            diff_id: applied.diff_id,
            parent: parent.cloned(),
            blob: Some(blob),
            blob_media_type: Compression::None.oci_layer_media_type().to_string(),
            size: applied.size,
        })
    }

    /// The existing record when this chain is already extracted and known.
    pub fn known_layer(&self, chain: &Digest) -> Result<Option<LayerRecord>, ImageError> {
        match self.db().get_layer(chain)? {
            Some(rec) if self.layers().exists(chain) => Ok(Some(rec)),
            _ => Ok(None),
        }
    }
}

/// Counts what is read through it, for progress reports.
struct CountingReader<'a, R> {
    inner: R,
    count: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        (self.progress)(self.count);
        Ok(n)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
