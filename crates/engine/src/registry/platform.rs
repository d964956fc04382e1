//! Choosing the image of a manifest list / OCI index: linux and the host's architecture (and
//! variant), or what `platform=os/arch[/variant]` asks for, normalised as containerd does.

use crate::error::{EngineError, Result};
use berth_image::oci::{Descriptor, Platform};

/// A wanted platform, normalised (`aarch64` → `arm64`, arm64's `v8` → no variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// Given by the client (`--platform`): a single-platform image must then match it.
    pub explicit: bool,
}

impl std::fmt::Display for Wanted {
    /// `linux/arm64`, `linux/arm/v7`, as dockerd's errors print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant
        .filter(|v| !v.is_empty())
        .map(|v| v.to_ascii_lowercase());
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => {
            // amd64's only baseline is v1: a v1 entry is the plain one.
            ("amd64".into(), variant.filter(|v| v != "v1"))
        }
        "i386" | "386" => ("386".into(), None),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "v8" && v != "8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") => "v7".into(),
                Some("5") => "v5".into(),
                Some("6") => "v6".into(),
                Some("8") => "v8".into(),
                Some(v) => v.to_string(),
            }),
        ),
        _ => (arch, variant),
    }
}

/// The variant of the host's CPU where it matters (arm), from /proc/cpuinfo.
fn host_variant(arch: &str) -> Option<String> {
    if arch != "arm" {
        return None;
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let v = info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "CPU architecture").then(|| v.trim().to_string())
    })?;
    Some(format!("v{}", v.trim_start_matches('v')))
}

impl Wanted {
    pub fn host() -> Wanted {
        let arch = berth_image::config::host_architecture();
        let (architecture, variant) = normalize_arch(arch, host_variant(arch).as_deref());
        Wanted {
            os: "linux".into(),
            architecture,
            variant,
            explicit: false,
        }
    }

    /// `os[/arch[/variant]]` (the `platform` parameter); empty means the host.
    pub fn parse(s: &str) -> Result<Wanted> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Wanted::host());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let invalid = || {
            EngineError::InvalidArgument(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        let os = parts[0].to_ascii_lowercase();
        let host = Wanted::host();
        let (architecture, variant) = match parts.len() {
            1 => (host.architecture, host.variant),
            2 => normalize_arch(parts[1], None),
            _ => normalize_arch(parts[1], Some(parts[2])),
        };
        Ok(Wanted {
            os,
            architecture,
            variant,
            explicit: true,
        })
    }

    /// How well `p` fits: None when it does not, higher is better.
    fn score(&self, p: &Platform) -> Option<u8> {
        if p.os.to_ascii_lowercase() != self.os {
            return None;
        }
        let (arch, variant) = normalize_arch(&p.architecture, p.variant.as_deref());
        if arch != self.architecture {
            return None;
        }
        match (&self.variant, &variant) {
            (a, b) if a == b => Some(2),
            // No variant asked for: an entry with one still runs (amd64 v2/v3 on a v1 host is
            // a guess, but better than nothing when it is the only entry).
            (None, Some(_)) => Some(1),
            // arm: an older variant runs on a newer CPU.
            (Some(want), Some(have)) if arch == "arm" && have < want => Some(1),
            (Some(_), None) if arch == "arm" => Some(1),
            _ => None,
        }
    }

    /// Does an image config's platform fit (a single-platform image pulled with
    /// `--platform`)?
    pub fn matches(&self, p: &Platform) -> bool {
        self.score(p).is_some()
    }

    /// The index entry to pull: the best fit, the first among equals.
    pub fn choose<'a>(&self, entries: &'a [Descriptor]) -> Result<&'a Descriptor> {
        let mut best: Option<(&Descriptor, u8)> = None;
        for d in entries {
            let Some(p) = &d.platform else { continue };
            if let Some(s) = self.score(p) {
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((d, s));
                }
            }
        }
        best.map(|(d, _)| d).ok_or_else(|| {
            EngineError::NotFound(format!(
                "no matching manifest for {self} in the manifest list entries"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::Digest;

    fn entry(arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
                os_version: None,
            }),
            ..Descriptor::new(
                berth_image::oci::OCI_MANIFEST,
                Digest::from_sha256_bytes(format!("{arch}{variant:?}").as_bytes()),
                1,
            )
        }
    }

    #[test]
    fn parses_and_normalises() {
        let w = Wanted::parse("linux/aarch64/v8").unwrap();
        assert_eq!((w.os.as_str(), w.architecture.as_str()), ("linux", "arm64"));
        assert_eq!(w.variant, None);
        assert!(w.explicit);
        assert_eq!(
            Wanted::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Wanted::parse("linux/s390x").unwrap().to_string(),
            "linux/s390x"
        );
        assert_eq!(Wanted::parse("").unwrap(), Wanted::host());
        assert!(Wanted::parse("linux/").is_err());
        assert!(Wanted::parse("a/b/c/d").is_err());
    }

    #[test]
    fn chooses_the_right_entry() {
        let entries = vec![
            entry("arm64", Some("v8")),
            entry("amd64", None),
            entry("arm", Some("v6")),
            entry("arm", Some("v7")),
            Descriptor::new("x", Digest::from_sha256_bytes(b"att"), 1),
        ];
        let pick = |p: &str| {
            Wanted::parse(p)
                .unwrap()
                .choose(&entries)
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/arm64").unwrap(), entries[0].digest);
        assert_eq!(pick("linux/amd64").unwrap(), entries[1].digest);
        assert_eq!(pick("linux/arm/v7").unwrap(), entries[3].digest);
        assert_eq!(pick("linux/arm/v6").unwrap(), entries[2].digest);
        let err = pick("linux/s390x").unwrap_err().to_string();
        assert_eq!(
            err,
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        // Only an arm64 entry: an amd64 host must not take it.
        let only_arm = vec![entry("arm64", None)];
        assert!(Wanted::parse("linux/amd64")
            .unwrap()
            .choose(&only_arm)
            .is_err());
    }
}
