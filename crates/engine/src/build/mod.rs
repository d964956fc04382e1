//! `POST /build`: Docker's legacy ("classic") builder, over berth-build's Dockerfile frontend.
//! The context arrives as a tar; each stage the target needs is built instruction by
//! instruction: metadata instructions give a new image config, RUN runs a container from the
//! current image and commits its changes, COPY/ADD write files into a new layer; every step's
//! result is cached by (parent image, expanded instruction, content of what it read).

mod cache;
mod context;
mod executor;
pub mod options;

pub use options::{BuildEvent, BuildOptions};

use crate::container::inspect::Filters;
use crate::error::Result;
use crate::Engine;
use std::sync::Arc;
use tokio::sync::mpsc;

impl Engine {
    /// Starts a build from a context tar (plain or compressed, already spooled to `context`).
    /// The channel carries the progress stream as the legacy builder writes it and ends with
    /// `Aux` (the image ID) then nothing, or with `Error`. Bad requests (an invalid tag, a
    /// context that is not a tar, a missing Dockerfile, a Dockerfile syntax error) are
    /// reported as `Err` before anything is streamed.
    pub async fn build_image(
        self: &Arc<Self>,
        opts: BuildOptions,
        context: std::fs::File,
    ) -> Result<mpsc::Receiver<BuildEvent>> {
        todo!("{opts:?} {context:?}")
    }

    /// POST /build/prune: removes build cache records (all with `all`, else those not used
    /// in the last `until`/`keep-storage` sense dockerd's classic builder has: everything
    /// unused); returns the removed cache IDs and the bytes freed.
    pub async fn prune_build_cache(
        &self,
        filters: &Filters,
        all: bool,
    ) -> Result<(Vec<String>, u64)> {
        todo!("{filters:?} {all}")
    }
}
