//! berth-store: bytes on disk. Content-addressed blobs, extracted layer
//! snapshots, overlay mounts and the SQLite metadata database. This crate
//! knows nothing about Docker semantics; `berth-image` builds on it.

pub mod blobs;
pub mod compression;
pub mod db;
pub mod digest;
pub mod error;
mod extract;
pub mod fixtures;
pub mod inroot;
pub mod layers;
pub mod overlay;
pub mod pack;
#[cfg(test)]
mod unpack_tests;
pub mod upper;

pub use blobs::ContentStore;
pub use compression::Compression;
pub use db::{ImageRecord, LayerRecord, LayerSource, MetadataDb};
pub use digest::Digest;
pub use error::StoreError;
pub use extract::{
    check_archive_paths, unpack_into, unpack_into_hashed, ContentDigests, UnpackOptions,
};
pub use layers::{AppliedLayer, ExtractOptions, LayerStore};
