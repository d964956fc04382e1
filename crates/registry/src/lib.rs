//! berth-registry: `berth registry serve` — an OCI distribution-spec v1.1 registry (pull, push
//! monolithic/chunked/resumable, cross-repository mount, tags and catalog with pagination,
//! deletes, referrers, content verification, htpasswd basic auth and token auth, TLS) — and
//! `berth registry gc`, which removes blobs no manifest reaches.

use std::ffi::OsString;

/// `berth registry <serve|gc> …`; `args` is the whole command line (`berth registry …`).
/// Returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let _ = args;
    eprintln!("berth registry: not implemented yet");
    1
}
