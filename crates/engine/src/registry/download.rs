//! One layer blob fetched into the content store: at most N at once, streamed through the
//! store's hashing writer (nothing is kept unless it hashes to the digest the manifest names),
//! stopped together with the others of its pull on the first failure or when the client goes.

use super::progress::{JsonMessage, LayerProgress, ProgressSink};
use super::pull::{cancelled, is_foreign, lock};
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_distribution::{BlobDownload, DistributionError, Repository};
use berth_image::oci::Descriptor;
use berth_image::Rollback;
use berth_store::{Digest, LayerRecord, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The downloads of one pull: stopped together, the first failure being the one reported.
#[derive(Default)]
pub(super) struct Failure {
    cancel: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Failure {
    pub(super) fn fail(&self, e: &EngineError) {
        lock(&self.first).get_or_insert_with(|| e.to_string());
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The error to report: the first failure, else `e`.
    pub(super) fn error(&self, e: EngineError) -> EngineError {
        match lock(&self.first).clone() {
            Some(first) => EngineError::Internal(first),
            None => e,
        }
    }
}

/// One layer blob to fetch into the content store.
pub(super) struct Download {
    pub engine: Arc<Engine>,
    pub repo: Arc<Repository>,
    pub desc: Descriptor,
    pub sink: ProgressSink,
    pub slots: Arc<Semaphore>,
    pub failure: Arc<Failure>,
    pub rb: Arc<Mutex<Rollback>>,
    /// The layer to extract from the bytes as they arrive, when this blob is one.
    pub extract: Option<StreamedLayer>,
}

/// What the content store says of a stored download: its size.
type Stored = std::result::Result<u64, StoreError>;

/// A layer extracted while its blob downloads (a tee into the extractor), instead of from the
/// stored blob after the download: the two overlap, which halves a large layer's pull.
/// Extraction needs only the parent's chain id, never the parent's files.
pub(super) struct StreamedLayer {
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    /// Where the extracted layer's record goes, by chain id, for the in-order commit.
    pub done: Arc<Mutex<HashMap<Digest, LayerRecord>>>,
}

impl Download {
    pub(super) async fn run(self) -> Result<()> {
        let digest = self.desc.digest.clone();
        let id = digest.short().to_string();
        if self.engine.images.content().contains(&digest) {
            self.sink
                .send(JsonMessage::layer("Download complete", id))
                .await;
            return Ok(());
        }
        let _slot = self
            .sink
            .take_slot(&self.slots, &id)
            .await
            .map_err(EngineError::internal)?;
        if self.failure.cancelled() || self.sink.is_closed() {
            return Err(cancelled());
        }
        let size = self.desc.size.max(0) as u64;
        let dl = self
            .repo
            .get_blob(&digest, Some(size))
            .await
            .map_err(|e| self.blob_error(e))?;
        let total = if size > 0 {
            size
        } else {
            dl.total.unwrap_or(0)
        };
        let reader = BlobReader {
            dl,
            rt: tokio::runtime::Handle::current(),
            buf: Bytes::new(),
            received: 0,
            progress: LayerProgress::new(self.sink.clone(), &id, "Downloading", total),
            failure: self.failure.clone(),
            error: None,
        };
        let (res, reader, extracted) = match &self.extract {
            Some(x) => self.store_and_extract(reader, x).await?,
            None => {
                let (res, reader) = self.store(reader).await?;
                (res, reader, Ok(()))
            }
        };
        // A failed extraction explains a store that failed on the pipe; the download's own
        // error or a digest mismatch explains a failed extraction.
        let res = match (res, extracted) {
            (Ok(_), Err(e)) => {
                // Stored, but it is not the layer the config names: it goes with the pull.
                lock(&self.rb).blob(digest);
                return Err(e);
            }
            (Err(se), Err(e))
                if reader.error.is_none() && !matches!(se, StoreError::DigestMismatch { .. }) =>
            {
                return Err(e)
            }
            (res, _) => res,
        };
        match res {
            Ok(_) => {
                lock(&self.rb).blob(digest.clone());
                if reader.resumed() > 0 {
                    tracing::info!(%digest, resumed = reader.resumed(), "download resumed");
                }
                self.sink
                    .send(JsonMessage::layer("Download complete", id))
                    .await;
                Ok(())
            }
            Err(StoreError::DigestMismatch { .. }) => Err(EngineError::Internal(format!(
                "filesystem layer verification failed for digest {digest}"
            ))),
            Err(e) => Err(match reader.error {
                Some(de) => self.blob_error(de),
                None if reader.failure.cancelled() || self.sink.is_closed() => cancelled(),
                None => EngineError::Internal(format!("writing layer {digest}: {e}")),
            }),
        }
    }

    /// Streams the download into the content store, which keeps it only if it hashes to the
    /// digest. Synced once for the whole image, before the commit names it.
    async fn store<R: Read + Send + 'static>(&self, mut reader: R) -> Result<(Stored, R)> {
        let content = self.engine.images.content().clone();
        let expected = self.desc.digest.clone();
        tokio::task::spawn_blocking(move || {
            let res = content.put_verified_unsynced(&mut reader, &expected);
            (res, reader)
        })
        .await
        .map_err(EngineError::internal)
    }

    /// `store`, with every byte also written into a pipe the layer's extractor reads. The
    /// extracted layer is rolled back with the pull if the blob turns out not to hash right.
    async fn store_and_extract(
        &self,
        reader: BlobReader,
        x: &StreamedLayer,
    ) -> Result<(Stored, BlobReader, Result<()>)> {
        let (extractor_end, tee_end) = std::io::pipe().map_err(EngineError::internal)?;
        let images = self.engine.images.clone();
        let blob = self.desc.digest.clone();
        let (parent, diff_id) = (x.parent.clone(), x.diff_id.clone());
        let extractor = tokio::task::spawn_blocking(move || {
            let mut local = Rollback::new();
            let res = images.extract_layer_stream(
                parent.as_ref(),
                extractor_end,
                &blob,
                Some(&diff_id),
                true,
                &mut |_| {},
                &mut local,
            );
            (res, local)
        });
        let tee = Tee {
            inner: reader,
            out: tee_end,
        };
        let (res, Tee { inner: reader, .. }) = self.store(tee).await?;
        // The pipe's writing end went with the tee: the extractor has seen the end.
        let (xres, mut local) = extractor.await.map_err(EngineError::internal)?;
        lock(&self.rb).absorb(&mut local);
        let extracted = match xres {
            Ok(rec) => {
                lock(&x.done).insert(rec.chain_id.clone(), rec);
                Ok(())
            }
            Err(e) => Err(EngineError::Internal(format!(
                "failed to register layer {}: {e}",
                self.desc.digest
            ))),
        };
        Ok((res, reader, extracted))
    }

    fn blob_error(&self, e: DistributionError) -> EngineError {
        if is_foreign(&self.desc.media_type) && e.is_not_found() {
            return EngineError::Internal(format!(
                "layer {} is a foreign layer, to be downloaded from {}: foreign layers are not supported",
                self.desc.digest,
                self.desc.urls.join(", ")
            ));
        }
        EngineError::Internal(e.to_string())
    }
}

/// The download, and a copy of every byte into the extractor's pipe. When the extractor stops
/// reading (it failed), the download stops too: its error is the one reported.
struct Tee {
    inner: BlobReader,
    out: std::io::PipeWriter,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A download as a blocking reader for the content store (which hashes while it writes).
struct BlobReader {
    dl: BlobDownload,
    rt: tokio::runtime::Handle,
    buf: Bytes,
    received: u64,
    progress: LayerProgress,
    failure: Arc<Failure>,
    /// The registry client's error, kept to report it as it is.
    error: Option<DistributionError>,
}

impl BlobReader {
    fn resumed(&self) -> u32 {
        self.dl.resumed()
    }
}

impl Read for BlobReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if self.failure.cancelled() || self.progress.sink().is_closed() {
                return Err(std::io::Error::other("cancelled"));
            }
            match self.rt.block_on(self.dl.next_chunk()) {
                Ok(Some(b)) => {
                    self.received += b.len() as u64;
                    self.progress.update(self.received);
                    self.buf = b;
                }
                Ok(None) => {
                    let id = self.progress.id().to_string();
                    self.progress
                        .sink()
                        .send_blocking(JsonMessage::layer("Verifying Checksum", id));
                    return Ok(0);
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}
