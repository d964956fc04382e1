//! Volumes and mounts, the mechanism half: what a mount request means (`spec`), the `local`
//! driver's optional filesystem mounts (`local`), filling a new volume from the image
//! (`copy`) and volume names (`name`).
//!
//! Policy — which volumes exist, who uses them, when they are created or removed — is the
//! engine's (`berth_engine::volume`). Nothing here knows of HTTP or the metadata DB.

pub mod copy;
pub mod error;
pub mod local;
pub mod name;
pub mod spec;

pub use error::{Result, VolumeError};
pub use local::LocalOptions;
pub use spec::{MountKind, MountSpec, Propagation};
