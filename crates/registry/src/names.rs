//! The distribution-spec's grammar for repository names, tags and digests. Everything that
//! reaches the database or a response header went through here first; nothing derived from a
//! name ever becomes a path (blobs are stored by digest hex, uploads by our own UUIDs).

use berth_image::reference::{valid_path_component, valid_tag};
use berth_store::Digest;

use crate::error::{ApiError, Code};

/// distribution's limit on a repository name's total length.
const NAME_MAX: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && name.split('/').all(valid_path_component)
}

pub fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(Code::NameInvalid).with_detail(serde_json::json!({ "name": name })))
    }
}

/// A digest in a URL or a query: only `sha256:<64 lowercase hex>` is stored; anything else is
/// `DIGEST_INVALID` (another algorithm's digest can never name our content).
pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|_| {
        ApiError::new(Code::DigestInvalid).with_message(format!(
            "invalid digest {s:?}: only sha256 digests are supported"
        ))
    })
}

/// A manifest reference: a digest when it has the digest's `:`, otherwise a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ApiError> {
        if s.contains(':') {
            return parse_digest(s).map(Reference::Digest);
        }
        if valid_tag(s) {
            Ok(Reference::Tag(s.to_string()))
        } else {
            Err(ApiError::new(Code::TagInvalid)
                .with_message("invalid tag")
                .with_detail(serde_json::json!({ "tag": s })))
        }
    }
}

/// Upload session ids are ours: a UUID's 36 characters of lowercase hex and dashes.
pub fn valid_upload_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/busybox",
            "a.b_c__d---e/f0",
            "x/y/z",
            "0",
            "my-app/v1.2",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "A",
            "a//b",
            "/a",
            "a/",
            "..",
            "a/../b",
            "a/./b",
            ".a",
            "a.",
            "a..b",
            "a___b",
            "a_-b",
            "a%2fb",
            "a b",
            "a\\b",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn references() {
        let d = Digest::from_sha256_bytes(b"x");
        assert_eq!(
            Reference::parse(d.as_str()).unwrap(),
            Reference::Digest(d.clone())
        );
        assert_eq!(Reference::parse("v1").unwrap(), Reference::Tag("v1".into()));
        assert_eq!(
            Reference::parse("sha256:00").unwrap_err().code(),
            Code::DigestInvalid
        );
        assert_eq!(Reference::parse("..").unwrap_err().code(), Code::TagInvalid);
    }

    #[test]
    fn upload_ids() {
        assert!(valid_upload_id("0123abcd-0123-4567-89ab-cdef01234567"));
        assert!(!valid_upload_id("../../../../etc/passwd-aaaaaaaaaaaaaa"));
        assert!(!valid_upload_id("0123ABCD-0123-4567-89ab-cdef01234567"));
    }
}
