//! Detach keys in the daemon: docker's syntax and the streaming matcher live in
//! `berth_units::detach_keys` (shared with the CLI); this adds dockerd's error wording.

use crate::error::{EngineError, Result};
pub use berth_units::detach_keys::{Fed, Matcher, DEFAULT};

/// Parses a detach-keys specification; an empty one means the default.
pub fn parse(spec: &str) -> Result<Vec<u8>> {
    berth_units::detach_keys::parse(spec)
        .map_err(|_| EngineError::InvalidArgument(format!("Invalid detach keys ({spec}) provided")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dockerd_wording() {
        let e = super::parse("ctrl-1").unwrap_err().to_string();
        assert!(e.contains("Invalid detach keys (ctrl-1) provided"), "{e}");
        assert_eq!(super::parse("").unwrap(), vec![16, 17]);
    }
}
