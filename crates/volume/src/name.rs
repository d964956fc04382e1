//! Volume names: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+` for named ones, 64 hex digits for
//! anonymous ones.

/// Whether `name` is a valid `local` volume name (two characters at least, as Docker).
pub fn valid(name: &str) -> bool {
    todo!("{name}")
}

/// Docker's error for an invalid name (400).
pub fn invalid_name_error(name: &str) -> crate::VolumeError {
    crate::VolumeError::Invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

/// A fresh anonymous volume name: 64 random hex digits, as dockerd.
pub fn anonymous() -> String {
    todo!()
}
