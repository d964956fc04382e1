//! The embedded DNS server: for each container on a user-defined network, UDP and TCP sockets
//! bound to 127.0.0.11:53 inside the container's namespace, served by the daemon's runtime.
//! Names the engine knows (container names, aliases, links) are answered from [`Names`];
//! everything else is forwarded to the upstream resolvers.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use crate::error::Result;

/// The engine's view of names, as seen by one container.
pub trait Names: Send + Sync + 'static {
    /// The addresses `name` (lower-case, without the trailing dot) has for `container`, from
    /// the networks it is connected to; None when the name is not one of ours.
    fn lookup(&self, container: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The name for a reverse lookup of `ip` on `container`'s networks.
    fn reverse(&self, container: &str, ip: IpAddr) -> Option<String>;
    /// Where other queries go (the container's `--dns` or the host's resolvers).
    fn upstreams(&self, container: &str) -> Vec<SocketAddr>;
}

pub struct DnsService {
    names: Arc<dyn Names>,
}

/// Serving stops when this is dropped.
pub struct DnsListener {
    _private: (),
}

impl DnsService {
    pub fn new(names: Arc<dyn Names>) -> DnsService {
        DnsService { names }
    }

    /// Binds 127.0.0.11:53 (UDP and TCP) inside `netns` and answers queries for `container`.
    pub async fn serve_in(&self, container: &str, netns: &Path) -> Result<DnsListener> {
        let _ = (container, netns, &self.names);
        unimplemented!()
    }
}
