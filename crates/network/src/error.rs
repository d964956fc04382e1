use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nftables: {0}")]
    Firewall(String),
    #[error("network namespace {}: {source}", path.display())]
    Namespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Docker's wording, which users and tools grep for.
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    #[error("dns: {0}")]
    Dns(String),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: String },
    /// No free subnet or address.
    #[error("{0}")]
    Exhausted(String),
    #[error("sysctl {key}: {source}")]
    Sysctl {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, NetworkError>;
