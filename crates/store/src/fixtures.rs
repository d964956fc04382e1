//! In-memory tar builder for tests (also used by other crates' tests).
//!
//! Names are written into the header verbatim, so tests can build the
//! malicious archives (`../x`, `/etc/passwd`) that `tar::Builder` refuses.

use std::io::Write;

/// Builds a tar archive in memory, one entry per call.
#[derive(Default)]
pub struct TarBuilder {
    out: Vec<u8>,
}

impl TarBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let name = &mut h.as_gnu_mut().expect("gnu header").name;
        let n = path.len().min(name.len());
        name[..n].copy_from_slice(&path.as_bytes()[..n]);
        h
    }

    fn push(mut self, mut h: tar::Header, data: &[u8]) -> Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        let h = Self::header(tar::EntryType::Directory, path, mode, 0);
        self.push(h, &[])
    }

    pub fn file(self, path: &str, data: &[u8], mode: u32) -> Self {
        let h = Self::header(tar::EntryType::Regular, path, mode, data.len() as u64);
        self.push(h, data)
    }

    /// A regular file with explicit owner.
    pub fn file_owned(self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, path, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, path, target)
    }

    fn link(self, kind: tar::EntryType, path: &str, target: &str) -> Self {
        let mut h = Self::header(kind, path, 0o777, 0);
        let ln = &mut h.as_gnu_mut().expect("gnu header").linkname;
        let n = target.len().min(ln.len());
        ln[..n].copy_from_slice(&target.as_bytes()[..n]);
        self.push(h, &[])
    }

    pub fn device(self, path: &str, kind: tar::EntryType, major: u32, minor: u32) -> Self {
        let mut h = Self::header(kind, path, 0o666, 0);
        let _ = h.set_device_major(major);
        let _ = h.set_device_minor(minor);
        self.push(h, &[])
    }

    /// A PAX extended header carrying `records` for the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (k, v) in records {
            // "<len> <key>=<value>\n" where len counts itself.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + rest.to_string().len();
            if len.to_string().len() != rest.to_string().len() {
                len += 1;
            }
            let _ = write!(body, "{len} {k}=");
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let h = Self::header(tar::EntryType::XHeader, "pax", 0o644, body.len() as u64);
        self.push(h, &body)
    }

    /// The archive with its two end-of-archive zero blocks.
    pub fn build(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }

    pub fn build_gzip(self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&self.build());
        gz.finish().unwrap_or_default()
    }

    pub fn build_zstd(self) -> Vec<u8> {
        zstd::encode_all(&self.build()[..], 3).unwrap_or_default()
    }
}
