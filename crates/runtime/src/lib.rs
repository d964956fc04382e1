//! Berth's container runtime layer: OCI runtime spec generation with Docker's
//! defaults, user and executable resolution inside a rootfs, and the
//! per-container monitor process (`berth shim`) that drives libcontainer.
//!
//! The daemon never calls libcontainer itself (it clones with raw `clone3`
//! and deadlocks in multi-threaded processes); it talks to the shim over
//! the JSON protocol in [`protocol`].

pub mod exec_check;
pub mod exit;
pub mod health;
mod inroot;
pub mod jsonlog;
pub mod protocol;
pub mod shim;
pub mod spec;
pub mod user;

pub use exit::{read_exit_file, ExitStatus};
pub use shim::{shim_main, ShimConfig};
pub use spec::{generate, NetworkMode, Resources, SpecError, SpecOptions};
pub use user::{resolve_user, ResolvedUser};
