//! Layer blobs as upload streams: a stored compressed blob as it is, a plain tar gzipped on
//! the fly. The gzip level depends only on the layer's bytes (level 1, or stored blocks when
//! a sample does not compress), so the same layer always gives the same blob and a second
//! push finds it in the registry.

use super::progress::LayerProgress;
use bytes::Bytes;
use flate2::write::GzEncoder;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;

/// How much of a layer decides its compression level.
const SAMPLE_BYTES: usize = 4 << 20;
/// Compressed to more than this fraction of the sample, compression is not worth its time.
const INCOMPRESSIBLE_RATIO: f64 = 0.95;
const CHUNK: usize = 256 * 1024;

/// Level 1, or 0 (stored blocks) when `sample` does not shrink.
fn level_for(sample: &[u8]) -> flate2::Compression {
    if sample.is_empty() {
        return flate2::Compression::fast();
    }
    let mut enc = GzEncoder::new(
        Vec::with_capacity(sample.len()),
        flate2::Compression::fast(),
    );
    let compressed = enc
        .write_all(sample)
        .and_then(|_| enc.finish())
        .map(|v| v.len())
        .unwrap_or(sample.len());
    if compressed as f64 / sample.len() as f64 > INCOMPRESSIBLE_RATIO {
        flate2::Compression::none()
    } else {
        flate2::Compression::fast()
    }
}

/// Sends what is written as chunks of an upload stream.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn receiver_stream(rx: mpsc::Receiver<io::Result<Bytes>>) -> BoxStream<'static, io::Result<Bytes>> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
        .boxed()
}

/// Reads `src` until `buf` is full or the input ends.
fn fill(src: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = vec![0u8; CHUNK];
    while buf.len() < want {
        let n = src.read(&mut chunk[..CHUNK.min(want - buf.len())])?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

fn gzip_into(
    mut src: impl Read,
    out: ChannelWriter,
    progress: &mut LayerProgress,
) -> io::Result<()> {
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    fill(&mut src, &mut sample, SAMPLE_BYTES)?;
    let mut read = sample.len() as u64;
    let mut enc = GzEncoder::new(out, level_for(&sample));
    enc.write_all(&sample)?;
    progress.update(read);
    drop(sample);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])?;
        read += n as u64;
        progress.update(read);
    }
    enc.finish()?.flush()
}

/// `src` (a plain layer tar) gzip-compressed as it is read, on a blocking thread; `progress`
/// counts the tar's bytes.
pub(super) fn gzip_stream(
    src: impl Read + Send + 'static,
    mut progress: LayerProgress,
) -> BoxStream<'static, io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(4);
    let out = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
    };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = gzip_into(src, out, &mut progress) {
            // The upload sees the failure instead of a short blob.
            let _ = tx.blocking_send(Err(e));
        }
    });
    receiver_stream(rx)
}

/// A stored blob as it is, counted by `progress`.
pub(super) fn file_stream(
    file: std::fs::File,
    mut progress: LayerProgress,
) -> BoxStream<'static, io::Result<Bytes>> {
    let mut sent = 0u64;
    tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK)
        .map(move |chunk| {
            if let Ok(c) = &chunk {
                sent += c.len() as u64;
                progress.update(sent);
            }
            chunk
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::progress::ProgressSink;
    use flate2::read::GzDecoder;

    async fn collect(mut s: BoxStream<'static, io::Result<Bytes>>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    fn progress() -> LayerProgress {
        let (sink, rx) = ProgressSink::channel(1024);
        std::mem::forget(rx);
        LayerProgress::new(sink, "x", "Pushing", 0)
    }

    #[tokio::test]
    async fn same_layer_same_bytes_and_incompressible_is_stored() {
        let text = b"hello layer text ".repeat(400_000);
        let a = collect(gzip_stream(std::io::Cursor::new(text.clone()), progress())).await;
        let b = collect(gzip_stream(std::io::Cursor::new(text.clone()), progress())).await;
        assert_eq!(a, b, "deterministic");
        assert!(a.len() < text.len() / 10, "text compresses");
        let mut back = Vec::new();
        GzDecoder::new(&a[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, text);

        // Random bytes: stored blocks, only framing added.
        let mut noise = vec![0u8; 6 << 20];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        assert_eq!(
            level_for(&noise[..SAMPLE_BYTES]),
            flate2::Compression::none()
        );
        let c = collect(gzip_stream(std::io::Cursor::new(noise.clone()), progress())).await;
        assert!(c.len() >= noise.len() && c.len() < noise.len() + noise.len() / 100);
        let mut back = Vec::new();
        GzDecoder::new(&c[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, noise);
    }
}
