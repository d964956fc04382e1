//! berth-image: Docker image semantics over berth-store — references, image
//! configs, import, save/load, tags and removal. Synchronous; the async
//! engine calls it from blocking threads.

pub mod changes;
mod commit;
pub mod config;
pub mod error;
mod ingest;
mod load;
pub mod oci;
mod pulled;
pub mod reference;
mod save;
mod service;

pub use berth_store::Digest;
pub use commit::CommitRequest;
pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use error::ImageError;
pub use ingest::Rollback;
pub use pulled::PulledImage;
pub use reference::Reference;
pub use service::{DeleteItem, HistoryEntry, Image, ImageService, ImportOptions, LoadedImage};

#[cfg(test)]
mod service_tests;
