//! OCI runtime spec generation from Docker-like options, with Docker's
//! secure defaults (moby `oci/defaults.go` + `daemon/oci_linux.go`).
//!
//! The spec is assembled as OCI JSON and then parsed into
//! `oci_spec::runtime::Spec`: the JSON shape is the OCI document itself,
//! which keeps this readable next to the spec and lets oci-spec validate
//! every field (capability names, rlimit types, seccomp actions).

mod devices;
pub(crate) mod propagation;
mod seccomp;

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{Mount, Spec};
use serde_json::{json, Value};

pub use crate::user::ResolvedUser;
use devices::host_devices;

/// Default `/dev/shm` size, as Docker.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup { name: String },
    #[error("reading {path} in the container's rootfs: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("invalid rlimit {0:?}")]
    Rlimit(String),
    /// A `shared`/`rshared` bind whose source is not on a shared mount (Docker's wording).
    #[error("path {path} is mounted on {mount_point} but it is not a shared mount")]
    NotSharedMount { path: String, mount_point: String },
    /// A `slave`/`rslave` bind whose source is on a private mount (Docker's wording).
    #[error("path {path} is mounted on {mount_point} but it is not a shared or slave mount")]
    NotSharedOrSlaveMount { path: String, mount_point: String },
    #[error("{path}: {source}")]
    MountSource {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid runtime spec: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// cgroup limits, with Docker's HostConfig meanings.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub memory: Option<i64>,
    /// Memory + swap; -1 is unlimited. Unset with `memory` set means
    /// twice `memory`, as Docker does.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// `--cpus` in billionths of a CPU, turned into quota over a 100 ms period.
    pub nano_cpus: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A fresh, empty network namespace (the engine configures it by path
    /// normally; this is for `none`).
    #[default]
    NewNamespace,
    Host,
    /// Join an existing namespace, e.g. `/run/berth/netns/<id>`.
    Path(PathBuf),
}

#[derive(Debug, Clone)]
pub struct SpecOptions {
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub domainname: String,
    pub tty: bool,
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// `NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    pub seccomp_unconfined: bool,
    pub resources: Resources,
    pub network: NetworkMode,
    /// Mounts the engine supplies (hosts, hostname, resolv.conf, volumes,
    /// binds, tmpfs), parents first. One at a default mount's destination
    /// replaces it. A bind's propagation option (`rprivate`, `rslave`,
    /// `rshared`, …) is applied by the shim; `shared`/`slave` ones need
    /// their source on a shared (or slave) mount, as with Docker.
    pub extra_mounts: Vec<Mount>,
    /// `/berth/<id>`; always set so libcontainer never invents one.
    pub cgroups_path: String,
    pub sysctls: HashMap<String, String>,
    /// Bytes; 0 means [`DEFAULT_SHM_SIZE`].
    pub shm_size: u64,
    pub oom_score_adj: Option<i32>,
    /// (`nofile` or `RLIMIT_NOFILE`, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
}

impl Default for SpecOptions {
    fn default() -> Self {
        SpecOptions {
            id: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            user: ResolvedUser::default(),
            hostname: String::new(),
            domainname: String::new(),
            tty: false,
            rootfs: PathBuf::new(),
            readonly_rootfs: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            no_new_privileges: false,
            seccomp_unconfined: false,
            resources: Resources::default(),
            network: NetworkMode::NewNamespace,
            extra_mounts: Vec::new(),
            cgroups_path: String::new(),
            sysctls: HashMap::new(),
            shm_size: DEFAULT_SHM_SIZE,
            oom_score_adj: None,
            rlimits: Vec::new(),
        }
    }
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability up to CAP_CHECKPOINT_RESTORE (Linux 5.9), which is
/// what `ALL` and `--privileged` grant.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// "net_admin" / "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "all" -> "ALL".
fn normalize_cap(c: &str) -> Result<String, SpecError> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(full))
    }
}

/// The capability bounding set of this process (the daemon's equals the
/// shim's): `ALL` can only grant what we hold, or capset(2) fails with
/// EPERM (seen in sandboxes that drop e.g. CAP_SYS_RESOURCE).
fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// `ALL_CAPS` is in kernel numbering order, so the index is the cap number.
fn all_caps_within(bounding: u64) -> impl Iterator<Item = String> {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(move |(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
}

/// moby's `caps.TweakCapabilities`: `ALL` in add wins, then `ALL` in
/// drop (keeping only the adds), else defaults minus drops plus adds.
pub fn effective_caps(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, SpecError> {
    tweak_caps(cap_add, cap_drop, privileged, host_bounding_set())
}

fn tweak_caps(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    bounding: u64,
) -> Result<Vec<String>, SpecError> {
    if privileged {
        return Ok(all_caps_within(bounding).collect());
    }
    let add = cap_add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = cap_drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>, _>>()?;
    let all = |s: &String| s == "ALL";
    let mut caps: Vec<String> = if add.iter().any(all) {
        all_caps_within(bounding)
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(all) {
        add
    } else {
        let mut v: Vec<String> = DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        v.extend(add);
        v
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

fn rlimit_name(n: &str) -> Result<String, SpecError> {
    let up = n.trim().to_ascii_uppercase();
    let full = if up.starts_with("RLIMIT_") {
        up
    } else {
        format!("RLIMIT_{up}")
    };
    if full.len() <= "RLIMIT_".len() {
        return Err(SpecError::Rlimit(n.to_string()));
    }
    Ok(full)
}

fn default_mounts(o: &SpecOptions) -> Vec<Value> {
    let shm = if o.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        o.shm_size
    };
    // --privileged makes /sys and the cgroup tree writable, unless the
    // whole rootfs is read-only.
    let sys_ro = if o.privileged && !o.readonly_rootfs {
        "rw"
    } else {
        "ro"
    };
    vec![
        json!({"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]}),
        json!({"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}),
        json!({"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]}),
        json!({"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev",sys_ro]}),
        json!({"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":[sys_ro,"nosuid","noexec","nodev"]}),
        json!({"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}),
        json!({"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777",format!("size={shm}")]}),
    ]
}

fn device_rule(
    allow: bool,
    typ: &str,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Value {
    let mut v = json!({"allow": allow, "access": access});
    if !typ.is_empty() {
        v["type"] = json!(typ);
    }
    if let Some(m) = major {
        v["major"] = json!(m);
    }
    if let Some(m) = minor {
        v["minor"] = json!(m);
    }
    v
}

/// Device cgroup rules: deny everything, then allow the standard nodes.
fn default_device_rules() -> Vec<Value> {
    vec![
        device_rule(false, "", None, None, "rwm"),
        // mknod of any node is allowed (opening it still is not), as runc.
        device_rule(true, "c", None, None, "m"),
        device_rule(true, "b", None, None, "m"),
        device_rule(true, "c", Some(1), Some(3), "rwm"), // null
        device_rule(true, "c", Some(1), Some(5), "rwm"), // zero
        device_rule(true, "c", Some(1), Some(7), "rwm"), // full
        device_rule(true, "c", Some(1), Some(8), "rwm"), // random
        device_rule(true, "c", Some(1), Some(9), "rwm"), // urandom
        device_rule(true, "c", Some(5), Some(0), "rwm"), // tty
        device_rule(true, "c", Some(5), Some(1), "rwm"), // console
        device_rule(true, "c", Some(5), Some(2), "rwm"), // ptmx
        device_rule(true, "c", Some(136), None, "rwm"),  // pts
        device_rule(false, "c", Some(10), Some(229), "rwm"), // fuse
    ]
}

fn resources_json(o: &SpecOptions) -> Value {
    let r = &o.resources;
    let mut res = serde_json::Map::new();
    res.insert(
        "devices".into(),
        if o.privileged {
            json!([device_rule(true, "", None, None, "rwm")])
        } else {
            Value::Array(default_device_rules())
        },
    );

    let mut mem = serde_json::Map::new();
    if let Some(m) = r.memory.filter(|m| *m > 0) {
        mem.insert("limit".into(), json!(m));
        let swap = match r.memory_swap {
            Some(s) if s != 0 => s,
            _ => m * 2,
        };
        mem.insert("swap".into(), json!(swap));
    } else if let Some(s) = r.memory_swap.filter(|s| *s != 0) {
        mem.insert("swap".into(), json!(s));
    }
    if let Some(m) = r.memory_reservation.filter(|m| *m > 0) {
        mem.insert("reservation".into(), json!(m));
    }
    if !mem.is_empty() {
        res.insert("memory".into(), Value::Object(mem));
    }

    let mut cpu = serde_json::Map::new();
    if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
        let period: u64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(n * period as i64 / 1_000_000_000));
    }
    if let Some(q) = r.cpu_quota.filter(|q| *q != 0) {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = r.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(c) = r.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p != 0) {
        res.insert("pids".into(), json!({"limit": p}));
    }
    if let Some(w) = r.blkio_weight.filter(|w| *w > 0) {
        res.insert("blockIO".into(), json!({"weight": w}));
    }
    Value::Object(res)
}

/// Builds the OCI runtime spec for one container.
pub fn generate(o: &SpecOptions) -> Result<Spec, SpecError> {
    let caps = effective_caps(&o.cap_add, &o.cap_drop, o.privileged)?;

    let mut env = o.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH_ENV.to_string());
    }

    let mut process = json!({
        "terminal": o.tty,
        "user": {"uid": o.user.uid, "gid": o.user.gid},
        "args": o.args,
        "env": env,
        "cwd": if o.cwd.is_empty() { "/" } else { o.cwd.as_str() },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": [],
        },
    });
    // Only ever emit `true`: libcontainer 0.7 keys its seccomp ordering on
    // the field's *presence* (`Some(false)` makes it load the filter after
    // dropping CAP_SYS_ADMIN and without NNP, which fails with EACCES).
    if o.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if !o.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(o.user.additional_gids);
    }
    if let Some(adj) = o.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }
    if !o.rlimits.is_empty() {
        let rl = o
            .rlimits
            .iter()
            .map(|(n, soft, hard)| Ok(json!({"type": rlimit_name(n)?, "soft": soft, "hard": hard})))
            .collect::<Result<Vec<_>, SpecError>>()?;
        process["rlimits"] = Value::Array(rl);
    }

    let extra: Vec<Value> = o
        .extra_mounts
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let overridden: Vec<&str> = extra
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    let mut mounts: Vec<Value> = default_mounts(o)
        .into_iter()
        .filter(|m| {
            m["destination"]
                .as_str()
                .is_some_and(|d| !overridden.contains(&d))
        })
        .collect();
    mounts.extend(extra.iter().cloned());

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &o.network {
        NetworkMode::NewNamespace => namespaces.push(json!({"type": "network"})),
        NetworkMode::Host => {}
        NetworkMode::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources_json(o),
        "cgroupsPath": o.cgroups_path,
        "sysctl": o.sysctls,
    });
    if let Some(p) = propagation::check_binds(&o.extra_mounts, propagation::own_mountinfo)? {
        linux["rootfsPropagation"] = json!(p);
    }
    if o.privileged {
        linux["devices"] = Value::Array(host_devices());
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        if !o.seccomp_unconfined {
            linux["seccomp"] = seccomp::default_seccomp(&caps)?;
        }
    }

    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    if !o.hostname.is_empty() {
        spec["hostname"] = json!(o.hostname);
    }
    if !o.domainname.is_empty() {
        spec["domainname"] = json!(o.domainname);
    }
    Ok(serde_json::from_value(spec)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability, LinuxNamespaceType};

    fn opts() -> SpecOptions {
        SpecOptions {
            id: "abc".into(),
            args: vec!["sh".into()],
            rootfs: "/tmp/rootfs".into(),
            cgroups_path: "/berth/abc".into(),
            hostname: "abc".into(),
            ..Default::default()
        }
    }

    fn caps_of(s: &Spec) -> Vec<Capability> {
        let mut v: Vec<_> = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .clone()
            .unwrap()
            .into_iter()
            .collect();
        v.sort_by_key(|c| c.to_string());
        v
    }

    #[test]
    fn defaults_match_docker() {
        let s = generate(&opts()).unwrap();
        assert_eq!(caps_of(&s).len(), DEFAULT_CAPS.len());
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.env().as_ref().unwrap()[0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
        assert!(p
            .capabilities()
            .as_ref()
            .unwrap()
            .inheritable()
            .as_ref()
            .unwrap()
            .is_empty());
        let l = s.linux().as_ref().unwrap();
        assert_eq!(
            l.cgroups_path().as_ref().unwrap().to_str(),
            Some("/berth/abc")
        );
        let ns: Vec<_> = l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(ns.contains(&LinuxNamespaceType::Network));
        assert!(ns.contains(&LinuxNamespaceType::Pid));
        assert!(l.seccomp().is_some());
        assert_eq!(l.masked_paths().as_ref().unwrap().len(), 12);
        assert!(l
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sysrq-trigger".to_string()));
        let mounts = s.mounts().as_ref().unwrap();
        let shm = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/dev/shm"))
            .unwrap();
        assert!(shm
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=67108864".to_string()));
        let sys = mounts
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert_eq!(s.hostname().as_deref(), Some("abc"));
    }

    #[test]
    fn cap_tweaks() {
        let c = effective_caps(&["net_admin".into()], &["CAP_CHOWN".into()], false).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".into()));
        assert!(!c.contains(&"CAP_CHOWN".into()));
        let c = effective_caps(&["KILL".into()], &["ALL".into()], false).unwrap();
        assert_eq!(c, vec!["CAP_KILL".to_string()]);
        let c = tweak_caps(&["ALL".into()], &["SYS_ADMIN".into()], false, u64::MAX).unwrap();
        assert_eq!(c.len(), ALL_CAPS.len() - 1);
        // Without CAP_SYS_RESOURCE (bit 24) in our bounding set.
        let c = tweak_caps(&[], &[], true, !(1u64 << 24)).unwrap();
        assert_eq!(c.len(), ALL_CAPS.len() - 1);
        assert!(!c.contains(&"CAP_SYS_RESOURCE".into()));
        assert!(matches!(
            effective_caps(&["FOO".into()], &[], false),
            Err(SpecError::UnknownCapability(_))
        ));
        // Every name we emit must be known to oci-spec.
        let all: Vec<String> = ALL_CAPS.iter().map(|s| s.to_string()).collect();
        assert_eq!(tweak_caps(&[], &[], true, u64::MAX).unwrap(), all);
        let mut o = opts();
        o.cap_add = all;
        assert_eq!(caps_of(&generate(&o).unwrap()).len(), ALL_CAPS.len());
    }

    #[test]
    fn privileged_drops_confinement() {
        let mut o = opts();
        o.privileged = true;
        let s = generate(&o).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_none());
        assert!(l.masked_paths().is_none());
        assert!(l.readonly_paths().is_none());
        let devs = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
        assert_eq!(devs.len(), 1);
        assert!(devs[0].allow());
        let sys = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap()
            .clone();
        assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));
        assert!(l.devices().as_ref().is_some_and(|d| !d.is_empty()));
    }

    #[test]
    fn resources_and_network() {
        let mut o = opts();
        o.resources = Resources {
            memory: Some(8 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(100),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        o.network = NetworkMode::Host;
        o.readonly_rootfs = true;
        o.seccomp_unconfined = true;
        o.rlimits = vec![("nofile".into(), 1024, 2048)];
        o.env = vec!["PATH=/bin".into()];
        let s = generate(&o).unwrap();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(8 << 20));
        assert_eq!(m.swap(), Some(16 << 20));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.period()), (Some(150_000), Some(100_000)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
        assert!(s.root().as_ref().unwrap().readonly().unwrap());
        assert!(s.linux().as_ref().unwrap().seccomp().is_none());
        let ns = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        assert_eq!(
            s.process().as_ref().unwrap().env().as_ref().unwrap(),
            &vec!["PATH=/bin".to_string()]
        );
        assert_eq!(
            s.process()
                .as_ref()
                .unwrap()
                .rlimits()
                .as_ref()
                .unwrap()
                .len(),
            1
        );

        o.network = NetworkMode::Path("/run/netns/x".into());
        let s = generate(&o).unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().as_ref().unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_ref().unwrap().to_str(), Some("/run/netns/x"));
    }

    #[test]
    fn extra_mount_overrides_default() {
        let mut o = opts();
        let m: Mount = serde_json::from_value(json!({
            "destination": "/dev/shm", "type": "bind", "source": "/tmp", "options": ["rbind"]
        }))
        .unwrap();
        o.extra_mounts = vec![m];
        let s = generate(&o).unwrap();
        let shm: Vec<_> = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|m| m.destination().to_str() == Some("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].typ().as_deref(), Some("bind"));
    }
}
