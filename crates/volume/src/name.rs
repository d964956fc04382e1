//! Volume names: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+` for named ones, 64 hex digits for
//! anonymous ones.

use rand::Rng;

/// Whether `name` is a valid `local` volume name (two characters at least, as Docker).
pub fn valid(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() >= 2
        && first.is_ascii_alphanumeric()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `Ok` for a valid name, else Docker's error for it: a one-character name gets the local
/// driver's "too short" text, anything else the "invalid characters" one.
pub fn validate(name: &str) -> crate::Result<()> {
    if valid(name) {
        Ok(())
    } else if name.len() == 1 {
        Err(crate::VolumeError::Invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )))
    } else {
        Err(invalid_name_error(name))
    }
}

/// Docker's error for an invalid name (400).
pub fn invalid_name_error(name: &str) -> crate::VolumeError {
    crate::VolumeError::Invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

/// A fresh anonymous volume name: 64 random hex digits, as dockerd.
pub fn anonymous() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rule() {
        for ok in ["ab", "vol", "my_vol.1-x", "0a", "A.", "a--"] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "", "a", "_a", ".a", "-a", "bad@name", "a/b", "/abs", "./rel", "a b", "é1",
        ] {
            assert!(!valid(bad), "{bad}");
        }
    }

    #[test]
    fn errors_as_dockerd() {
        assert_eq!(
            validate("a").unwrap_err().to_string(),
            "create a: volume name is too short, names should be at least two alphanumeric characters"
        );
        assert_eq!(
            validate("bad@name").unwrap_err().to_string(),
            "create bad@name: \"bad@name\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert!(validate("vol").is_ok());
    }

    #[test]
    fn anonymous_names_are_64_hex_and_valid() {
        let a = anonymous();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(valid(&a));
        assert_ne!(a, anonymous());
    }
}
