//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`),
//! translated to the OCI `linux.seccomp` form the way moby does it: rules
//! are kept or dropped by the container's capabilities, the host
//! architecture and the kernel version.

use serde::Deserialize;
use serde_json::{json, Value};

use super::SpecError;

const DEFAULT_PROFILE: &str = include_str!("../seccomp-default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    min_kernel: Option<String>,
}

/// Go's GOARCH names, which the profile's `arches` filters use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// (major, minor) of the running kernel; `None` if unparsable.
fn kernel_version() -> Option<(u32, u32)> {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_version(rel.trim())
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Builds the OCI seccomp section for a process holding `caps`
/// (`CAP_`-prefixed names).
pub(crate) fn default_seccomp(caps: &[String]) -> Result<Value, SpecError> {
    let profile: Profile = serde_json::from_str(DEFAULT_PROFILE)
        .map_err(|e| SpecError::Seccomp(format!("default profile: {e}")))?;
    let arch = go_arch();
    let kernel = kernel_version();
    let has_cap = |c: &String| caps.iter().any(|x| x == c);

    let native = native_scmp_arch();
    let mut architectures = Vec::new();
    if let Some(m) = profile.arch_map.iter().find(|m| m.architecture == native) {
        architectures.push(m.architecture.clone());
        architectures.extend(m.sub_architectures.clone().unwrap_or_default());
    }

    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let inc = &rule.includes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.iter().all(has_cap) {
            continue;
        }
        if let (Some(min), Some(k)) = (inc.min_kernel.as_deref(), kernel) {
            if parse_version(min).is_some_and(|m| k < m) {
                continue;
            }
        }
        let exc = &rule.excludes;
        if exc.arches.iter().any(|a| a == arch) || exc.caps.iter().any(has_cap) {
            continue;
        }
        let mut s = json!({ "names": rule.names, "action": rule.action });
        if let Some(e) = rule.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if let Some(args) = &rule.args {
            s["args"] = Value::Array(args.iter().map(normalize_arg).collect());
        }
        syscalls.push(s);
    }

    let mut out = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(e) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    Ok(out)
}

/// Docker writes `valueTwo: 0` on every arg; OCI treats it as optional.
fn normalize_arg(a: &Value) -> Value {
    let mut a = a.clone();
    if let Some(o) = a.as_object_mut() {
        if o.get("valueTwo").and_then(Value::as_u64) == Some(0) {
            o.remove("valueTwo");
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_with(v: &Value, action: &str) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == action)
            .flat_map(|s| s["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn caps_gate_rules() {
        let base = default_seccomp(&["CAP_CHOWN".into()]).unwrap();
        let allowed = names_with(&base, "SCMP_ACT_ALLOW");
        assert!(allowed.contains(&"read".to_string()));
        assert!(!allowed.contains(&"mount".to_string()));
        assert!(!allowed.contains(&"reboot".to_string()));
        // clone3 returns ENOSYS without CAP_SYS_ADMIN so glibc falls back.
        assert!(names_with(&base, "SCMP_ACT_ERRNO").contains(&"clone3".to_string()));
        assert_eq!(base["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(base["defaultErrnoRet"], 1);

        let admin = default_seccomp(&["CAP_SYS_ADMIN".into(), "CAP_SYS_BOOT".into()]).unwrap();
        let allowed = names_with(&admin, "SCMP_ACT_ALLOW");
        assert!(allowed.contains(&"mount".to_string()));
        assert!(allowed.contains(&"reboot".to_string()));
        assert!(!names_with(&admin, "SCMP_ACT_ERRNO").contains(&"clone3".to_string()));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn arch_filters() {
        let v = default_seccomp(&[]).unwrap();
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let allowed = names_with(&v, "SCMP_ACT_ALLOW");
        assert!(allowed.contains(&"arch_prctl".to_string()));
        assert!(!allowed.contains(&"s390_runtime_instr".to_string()));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-foo"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
    }
}
