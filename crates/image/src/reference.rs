//! Docker image references (the grammar of distribution/reference).

use std::fmt;

use berth_store::Digest;

use crate::error::ImageError;

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const INVALID_FORMAT: &str = "invalid reference format";

/// A normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(msg: &str) -> ImageError {
    ImageError::InvalidReference(msg.to_string())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`: one `/`-separated component of a repository
/// path (the registry server checks names with it too).
pub fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host(:port)?` where host is dot-separated DNS labels or `[ipv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("", Some(p)),
            None if after.is_empty() => ("", None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if !d.starts_with('[') {
        for label in host.split('.') {
            let b = label.as_bytes();
            if b.is_empty()
                || !b[0].is_ascii_alphanumeric()
                || !b[b.len() - 1].is_ascii_alphanumeric()
                || !b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
            {
                return false;
            }
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// True for a bare 64-hex image id.
pub fn is_full_id(s: &str) -> bool {
    berth_store::digest::is_sha256_hex(s)
}

/// Docker's splitDockerDomain (the variant that treats an uppercase first
/// component as a path, so "UPPER/case" reports a lowercase error).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

impl Reference {
    /// Parses a user-supplied reference as Docker does: "busybox" becomes
    /// "docker.io/library/busybox". No tag is implied.
    pub fn parse_normalized(s: &str) -> Result<Reference, ImageError> {
        if is_full_id(s) {
            return Err(ImageError::InvalidReference(format!(
                "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or("");
        let remote = remote.split('@').next().unwrap_or("");
        if remote.to_lowercase() != remote {
            return Err(ImageError::InvalidReference(format!(
                "{INVALID_FORMAT}: repository name ({remote}) must be lowercase"
            )));
        }
        Self::parse_full(&domain, &remainder)
    }

    /// Parses `remainder` (path[:tag][@digest]) under an already split domain.
    fn parse_full(domain: &str, remainder: &str) -> Result<Reference, ImageError> {
        if remainder.is_empty() {
            return Err(invalid(INVALID_FORMAT));
        }
        let (name_tag, digest) = match remainder.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|_| invalid(INVALID_FORMAT))?;
                (n, Some(digest))
            }
            None => (remainder, None),
        };
        // The tag follows the last ':' unless a '/' comes after it (a port).
        let (path, tag) = match name_tag.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(INVALID_FORMAT));
            }
        }
        if !valid_domain(domain) || path.is_empty() || !path.split('/').all(valid_path_component) {
            if path.to_lowercase() != path {
                return Err(ImageError::InvalidReference(format!(
                    "{INVALID_FORMAT}: repository name must be lowercase"
                )));
            }
            return Err(invalid(INVALID_FORMAT));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ImageError::InvalidReference(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Adds the "latest" tag when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".to_string());
        }
        self
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The same repository pinned to `digest`, without a tag (`repo@sha256:…`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The bare repository, no tag, no digest (`docker pull -a`'s reference).
    pub fn without_tag(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// "docker.io/library/busybox"
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// "busybox", "me/app", "localhost:5000/a/b"
    pub fn familiar_repository(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.repository();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }

    /// "docker.io/library/busybox:latest"
    pub fn full(&self) -> String {
        format!("{}{}", self.repository(), self.suffix())
    }

    /// "busybox:latest"
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_repository(), self.suffix())
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    fn err(s: &str) -> String {
        Reference::parse_normalized(s).unwrap_err().to_string()
    }

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes() {
        let r = p("busybox");
        assert_eq!(r.full(), "docker.io/library/busybox");
        assert_eq!(r.tag(), None);
        let r = r.with_default_tag();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.repository(), "docker.io/library/busybox");
        assert_eq!(r.familiar_repository(), "busybox");

        let r = p("localhost:5000/a/b:1");
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "a/b", Some("1"))
        );
        assert_eq!(r.familiar(), "localhost:5000/a/b:1");
        assert_eq!(p("localhost/a").domain(), "localhost");
        assert_eq!(p("localhost:5000/a").tag(), None);

        assert_eq!(p("me/app:1").familiar(), "me/app:1");
        assert_eq!(p("me/app:1").full(), "docker.io/me/app:1");
        assert_eq!(p("index.docker.io/library/busybox").familiar(), "busybox");
        assert_eq!(
            p("docker.io/library/busybox:1.36").familiar(),
            "busybox:1.36"
        );
        assert_eq!(p("docker.io/library/a/b").familiar(), "library/a/b");
        assert_eq!(p("quay.io/x/y:z").familiar(), "quay.io/x/y:z");
        assert_eq!(p("[::1]:5000/x").domain(), "[::1]:5000");
        assert_eq!(p("a_b.c__d-e---f").path(), "library/a_b.c__d-e---f");

        let r = p(&format!("a@sha256:{HEX}"));
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.tag(), None);
        assert_eq!(r.clone().with_default_tag().tag(), None);
        assert_eq!(r.familiar(), format!("a@sha256:{HEX}"));
        let r = p(&format!("a:1@sha256:{HEX}"));
        assert_eq!(r.full(), format!("docker.io/library/a:1@sha256:{HEX}"));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            err("UPPER"),
            "invalid reference format: repository name (library/UPPER) must be lowercase"
        );
        assert_eq!(
            err("UPPER/case"),
            "invalid reference format: repository name (UPPER/case) must be lowercase"
        );
        assert_eq!(err("a@sha256:zz"), "invalid reference format");
        assert_eq!(
            err(HEX),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        for bad in [
            "",
            ":",
            "a:",
            "a::b",
            "-a",
            "a-",
            "a..b",
            "a/",
            "/a",
            "a:b/c:d",
            "a:-tag",
            "a@",
            "a b",
            "a___b",
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse_normalized(bad).is_err(), "{bad:?}");
        }
        assert!(Reference::parse_normalized(&format!("x/{}", "a".repeat(260))).is_err());
    }
}
