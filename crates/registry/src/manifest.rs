//! What the registry needs to know of a manifest: its media type, the content it references
//! (checked on PUT, followed by gc), its `subject` and what the referrers API reports of it.

use std::collections::BTreeMap;

use berth_store::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// The spec's floor for what a registry accepts, and our ceiling.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Index,
}

/// A manifest that passed validation.
#[derive(Debug)]
pub struct Manifest {
    pub media_type: String,
    /// Blobs the repository must hold (config and layers; foreign layers with `urls` are
    /// fetched elsewhere and not required).
    pub blobs: Vec<Digest>,
    /// Manifests the repository must hold (an index's entries).
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid).with_message(msg)
}

/// The media type without parameters (`; charset=…`), when the client sent one.
pub fn bare_media_type(content_type: Option<&str>) -> Option<&str> {
    let t = content_type?.split(';').next()?.trim();
    (!t.is_empty()).then_some(t)
}

/// Validates a manifest pushed with `content_type`.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Manifest, ApiError> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|e| invalid(format!("manifest invalid: {e}")))?;
    let header_type = bare_media_type(content_type);
    if header_type.is_some_and(|t| DOCKER_SCHEMA1.contains(&t))
        || raw
            .media_type
            .as_deref()
            .is_some_and(|t| DOCKER_SCHEMA1.contains(&t))
        || raw.schema_version == Some(1)
    {
        return Err(invalid("Docker image manifest schema 1 is not supported"));
    }
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let media_type = media_type(&raw, header_type)?;
    let kind = match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        _ => Kind::Image,
    };
    let subject = raw.subject.as_ref().map(descriptor_digest).transpose()?;
    let mut m = Manifest {
        media_type,
        blobs: Vec::new(),
        children: Vec::new(),
        subject,
        artifact_type: raw.artifact_type.clone().filter(|t| !t.is_empty()),
        annotations: raw.annotations.clone().filter(|a| !a.is_empty()),
    };
    match kind {
        Kind::Image => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| invalid("an image manifest needs a config"))?;
            m.blobs.push(descriptor_digest(config)?);
            for l in raw.layers.as_deref().unwrap_or_default() {
                let d = descriptor_digest(l)?;
                if l.urls.is_empty() {
                    m.blobs.push(d);
                }
            }
            // The referrers API's artifactType of an image manifest defaults to its config's.
            if m.artifact_type.is_none() {
                m.artifact_type = Some(config.media_type.clone()).filter(|t| !t.is_empty());
            }
        }
        Kind::Index => {
            let entries = raw
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("an index needs a manifests list"))?;
            for e in entries {
                m.children.push(descriptor_digest(e)?);
            }
        }
    }
    Ok(m)
}

/// The body's `mediaType` wins; the header must agree with it when both are manifest types.
/// A body without one takes the header's, or is recognised by its shape.
fn media_type(raw: &RawManifest, header: Option<&str>) -> Result<String, ApiError> {
    let known = |t: &str| {
        [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ]
        .contains(&t)
    };
    match (raw.media_type.as_deref(), header) {
        (Some(body), Some(h)) if known(h) && body != h => Err(invalid(format!(
            "mediaType {body:?} does not match Content-Type {h:?}"
        ))),
        (Some(body), _) if known(body) => Ok(body.to_string()),
        (Some(body), _) => Err(invalid(format!("unsupported manifest media type {body:?}"))),
        (None, Some(h)) if known(h) => Ok(h.to_string()),
        (None, _) if raw.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        (None, _) if raw.config.is_some() => Ok(OCI_MANIFEST.to_string()),
        (None, _) => Err(invalid("cannot tell the manifest's type")),
    }
}

fn descriptor_digest(d: &RawDescriptor) -> Result<Digest, ApiError> {
    if d.size < 0 {
        return Err(invalid(format!(
            "descriptor {} has a negative size",
            d.digest
        )));
    }
    if d.media_type.is_empty() {
        return Err(invalid(format!("descriptor {} has no mediaType", d.digest)));
    }
    Digest::parse(&d.digest).map_err(|_| {
        invalid(format!(
            "descriptor digest {:?} is not a sha256 digest",
            d.digest
        ))
    })
}

/// Everything a stored manifest reaches, whatever its type (gc follows these): config,
/// layers, index entries. Unparseable content references nothing.
pub fn references(body: &[u8]) -> (Vec<Digest>, Vec<Digest>) {
    let Ok(raw) = serde_json::from_slice::<RawManifest>(body) else {
        return (Vec::new(), Vec::new());
    };
    let digest = |d: &RawDescriptor| Digest::parse(&d.digest).ok();
    let blobs = raw
        .config
        .iter()
        .chain(raw.layers.iter().flatten())
        .filter_map(digest)
        .collect();
    let children = raw.manifests.iter().flatten().filter_map(digest).collect();
    (blobs, children)
}

/// One entry of a referrers answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Digest::from_sha256_bytes(s.as_bytes()).to_string()
    }

    #[test]
    fn image_manifest_references() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d("c"), "size": 1},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d("l"), "size": 2},
                {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d("f"), "size": 3, "urls": ["https://x"]}
            ]
        })
        .to_string();
        let m = parse(body.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        let (blobs, children) = references(body.as_bytes());
        assert_eq!(blobs.len(), 3);
        assert!(children.is_empty());
    }

    #[test]
    fn rejects() {
        let cases: &[(&str, Option<&str>)] = &[
            ("not json", None),
            (r#"{"schemaVersion":1}"#, None),
            (r#"{"schemaVersion":2}"#, None),
            (
                r#"{"schemaVersion":2,"mediaType":"text/plain","config":{}}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":1}}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
                None,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                Some(DOCKER_MANIFEST_LIST),
            ),
        ];
        for (body, ct) in cases {
            let e = parse(body.as_bytes(), *ct).unwrap_err();
            assert_eq!(e.code(), Code::ManifestInvalid, "{body}");
        }
    }

    #[test]
    fn index_by_shape_and_subject() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d("m"), "size": 5}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d("s"), "size": 5},
            "artifactType": "application/x-sig"
        })
        .to_string();
        let m = parse(body.as_bytes(), Some("application/json")).unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
        assert_eq!(m.children.len(), 1);
        assert_eq!(m.subject.unwrap().to_string(), d("s"));
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-sig"));
    }
}
