//! `/volumes`: create, list, inspect, remove and prune.

use crate::container::inspect::Filters;
use crate::error::Result;
use crate::Engine;
use bollard_stubs::models::{Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse};

impl Engine {
    /// POST /volumes/create. Creating an existing name returns that volume (dockerd's
    /// idempotency, which compose relies on) unless the driver differs.
    pub async fn create_volume(&self, req: VolumeCreateRequest) -> Result<Volume> {
        todo!("{req:?}")
    }

    /// GET /volumes/{name}.
    pub async fn inspect_volume(&self, name: &str) -> Result<Volume> {
        todo!("{name}")
    }

    /// GET /volumes, filters `dangling`, `driver`, `label`, `name`.
    pub async fn list_volumes(&self, filters: &Filters) -> Result<VolumeListResponse> {
        todo!("{filters:?}")
    }

    /// DELETE /volumes/{name}: 404 unknown, 409 in use (even with `force`, as dockerd:
    /// force only ignores a missing volume).
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        todo!("{name} {force}")
    }

    /// POST /volumes/prune: unused anonymous volumes, or every unused one with `all=true`;
    /// filters `label`, `label!`, `all`.
    pub async fn prune_volumes(&self, filters: &Filters) -> Result<VolumePruneResponse> {
        todo!("{filters:?}")
    }
}
