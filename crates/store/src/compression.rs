//! Detecting and undoing layer compression from the stream's magic bytes.

use std::io::{BufRead, BufReader, Read};

/// Compression of a layer archive, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for a layer archive compressed this way.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Wraps `r` in the decompressor its magic bytes call for.
pub fn decompress<'a, R: Read + 'a>(r: R) -> std::io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    // fill_buf may return fewer than 4 bytes on a short read; that only matters
    // for pathological readers and then the stream is treated as plain tar.
    let kind = Compression::detect(br.fill_buf()?);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(br),
        // Multi-member gzip is valid gzip (pigz and some registries emit it).
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
    };
    Ok((kind, out))
}

/// Wraps `r` in the decompressor an archive that ADD unpacks calls for: a layer's kinds and,
/// as dockerd's DecompressStream, bzip2 and xz. Only ADD takes these two; a layer never does
/// (OCI layers are tar, gzip or zstd), so `decompress` stays as it is.
pub fn decompress_archive<'a, R: Read + 'a>(r: R) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    let head = br.fill_buf()?;
    if head.starts_with(b"BZh") {
        // Multi-stream bzip2 is what pbzip2 writes.
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(br)));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(lzma_rust2::XzReader::new(br, true)));
    }
    decompress(br).map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_each_kind() {
        let data = b"hello layer".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, kind) in [
            (data.clone(), Compression::None),
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
        ] {
            let (k, mut r) = decompress(&bytes[..]).unwrap();
            assert_eq!(k, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn archives_also_take_bzip2_and_xz() {
        let data = b"hello archive".repeat(100);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&data).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for bytes in [data.clone(), bz.clone(), xz.clone(), zs] {
            let mut out = Vec::new();
            decompress_archive(&bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
        // A layer stays gzip, zstd or plain: bzip2 and xz pass through undecoded.
        for bytes in [bz, xz] {
            let (kind, mut r) = decompress(&bytes[..]).unwrap();
            assert_eq!(kind, Compression::None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, bytes);
        }
    }
}
