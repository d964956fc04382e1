//! `GET /distribution/{name}/json`: what the registry has under a reference, without pulling.

use super::registry_error;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_distribution::{Access, Credentials};
use berth_image::oci::{self, Index, Manifest, Platform};
use berth_image::{ImageConfig, Reference};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct DistributionInspect {
    #[serde(rename = "Descriptor")]
    pub descriptor: InspectDescriptor,
    #[serde(rename = "Platforms")]
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectDescriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

impl Engine {
    pub async fn distribution_inspect(
        &self,
        name: &str,
        creds: Credentials,
    ) -> Result<DistributionInspect> {
        let r = Reference::parse_normalized(name)?.with_default_tag();
        let repo = self
            .registry
            .repository(r.domain(), r.path(), creds, Access::Pull);
        let by = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, t) => t.unwrap_or("latest").to_string(),
        };
        let m = repo.get_manifest(&by).await.map_err(registry_error)?;
        let descriptor = InspectDescriptor {
            media_type: m.media_type.clone(),
            digest: m.digest.to_string(),
            size: m.bytes.len() as u64,
        };
        let bad = |e: serde_json::Error| {
            EngineError::Internal(format!("invalid manifest from the registry: {e}"))
        };
        let platforms = match m.media_type.as_str() {
            oci::OCI_INDEX | oci::DOCKER_MANIFEST_LIST => {
                let idx: Index = serde_json::from_slice(&m.bytes).map_err(bad)?;
                idx.manifests
                    .into_iter()
                    .filter_map(|d| d.platform)
                    .collect()
            }
            _ => {
                let man: Manifest = serde_json::from_slice(&m.bytes).map_err(bad)?;
                let cfg = repo
                    .get_blob_bytes(&man.config.digest, MAX_CONFIG_BYTES)
                    .await
                    .map_err(registry_error)?;
                let cfg = ImageConfig::from_bytes(&cfg).map_err(bad)?;
                vec![Platform {
                    architecture: cfg.architecture,
                    os: cfg.os,
                    variant: cfg.variant,
                    os_version: None,
                }]
            }
        };
        Ok(DistributionInspect {
            descriptor,
            platforms,
        })
    }
}
