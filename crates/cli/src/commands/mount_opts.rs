//! `-v/--volume`, `--mount`, `--volumes-from` and `--volume-driver` turned into the create body
//! as the docker CLI 28.2 does it: compose's `loader.ParseVolume` decides what a `-v` spec is,
//! `opts.MountOpt` parses `--mount`, and `container/opts.go` places the results.

use crate::output::go_quote;
use bollard::models::{
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountImageOptions, MountTmpfsOptions,
    MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig,
};
use std::collections::HashMap;
use std::path::Path;

/// Where the `-v` specs go: bind or named-volume specs to `HostConfig.Binds` (verbatim, but a
/// relative `./` host path made absolute), container-path-only specs to `Config.Volumes`.
#[derive(Debug, Default, PartialEq)]
pub struct VolumeSpecs {
    pub binds: Vec<String>,
    pub anonymous: Vec<String>,
}

/// `-v` values as `container/opts.go` sorts them. Duplicates collapse, as in docker's map.
pub fn split_volume_specs(specs: &[String], cwd: &Path) -> Result<VolumeSpecs, String> {
    let mut out = VolumeSpecs::default();
    for spec in specs {
        let parsed = parse_volume_spec(spec)?;
        if parsed.source.is_empty() {
            push_unique(&mut out.anonymous, spec.clone());
            continue;
        }
        let mut bind = spec.clone();
        if parsed.is_bind {
            if let Some((host, target)) = spec.split_once(':') {
                if !host.starts_with('/') && host.starts_with('.') {
                    bind = format!("{}:{target}", go_abs(cwd, host));
                }
            }
        }
        push_unique(&mut out.binds, bind);
    }
    Ok(out)
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// What `loader.ParseVolume` learns from a `-v` spec that matters for the create body.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedVolume {
    pub source: String,
    pub target: String,
    pub is_bind: bool,
}

/// compose's `loader.ParseVolume`, including its Windows drive-letter rule (a single letter
/// before a colon stays in the section: `c:/x` is one section), which is why `a:b` is an
/// anonymous volume named "a:b" to the docker CLI.
pub fn parse_volume_spec(spec: &str) -> Result<ParsedVolume, String> {
    let mut v = ParsedVolume::default();
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            v.target = spec.to_string();
            return Ok(v);
        }
        _ => {}
    }
    let mut buf = String::new();
    for c in spec.chars().map(Some).chain([None]) {
        let mut chars = buf.chars();
        let drive = c == Some(':')
            && matches!((chars.next(), chars.next()), (Some(l), None) if l.is_alphabetic());
        match c {
            _ if drive => buf.push(':'),
            Some(':') | None => {
                fill_section(&buf, c.is_none(), &mut v)
                    .map_err(|e| format!("invalid spec: {spec}: {e}"))?;
                buf.clear();
            }
            Some(ch) => buf.push(ch),
        }
    }
    v.is_bind = !v.source.is_empty() && is_file_path(&v.source);
    Ok(v)
}

fn fill_section(buf: &str, at_end: bool, v: &mut ParsedVolume) -> Result<(), &'static str> {
    if buf.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() && at_end {
        v.target = buf.to_string();
    } else if v.source.is_empty() {
        v.source = buf.to_string();
    } else if v.target.is_empty() {
        v.target = buf.to_string();
    } else if !at_end {
        return Err("too many colons");
    }
    // The last section holds the mode ("ro", "nocopy", propagation…); the daemon checks it.
    Ok(())
}

fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) {
        return true;
    }
    let mut chars = source.chars();
    let first = chars.next();
    if chars.clone().next().is_none() {
        return false;
    }
    source.starts_with("\\\\")
        || (first.is_some_and(char::is_alphabetic) && chars.next() == Some(':'))
}

/// Go's `filepath.Abs` against `cwd` (join, then `Clean`).
pub fn go_abs(cwd: &Path, p: &str) -> String {
    if p.starts_with('/') {
        go_clean(p)
    } else {
        go_clean(&format!("{}/{p}", cwd.display()))
    }
}

/// Go's `path.Clean` for absolute paths.
fn go_clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `encoding/csv` reading one record, with its error texts ("parse error on line 1,
/// column N: …"; columns are 1-based byte positions).
pub(crate) fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let line = s.split(['\n', '\r']).next().unwrap_or("");
    if line.is_empty() {
        return Err("EOF".into());
    }
    let err = |col: usize, what: &str| format!("parse error on line 1, column {col}: {what}");
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if bytes.get(i) == Some(&b'"') {
            // Quoted: `""` is a quote; the closing quote must end the field.
            let mut j = i + 1;
            loop {
                match line[j..].find('"') {
                    None => {
                        return Err(err(
                            line.len() + 1,
                            "extraneous or missing \" in quoted-field",
                        ))
                    }
                    Some(k) => {
                        field.push_str(&line[j..j + k]);
                        let q = j + k;
                        match bytes.get(q + 1) {
                            Some(b'"') => {
                                field.push('"');
                                j = q + 2;
                            }
                            Some(b',') | None => {
                                i = q + 1;
                                break;
                            }
                            Some(_) => {
                                return Err(err(q + 1, "extraneous or missing \" in quoted-field"))
                            }
                        }
                    }
                }
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |k| i + k);
            if let Some(q) = line[i..end].find('"') {
                return Err(err(i + q + 1, "bare \" in non-quoted-field"));
            }
            field.push_str(&line[i..end]);
            i = end;
        }
        fields.push(field);
        if i >= line.len() {
            return Ok(fields);
        }
        i += 1; // the comma
        if i == line.len() {
            fields.push(String::new());
            return Ok(fields);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A `--mount` value as the CLI holds it before sending: type and propagation are still free
/// text (the daemon, not the CLI, rejects unknown ones).
#[derive(Debug, Default)]
struct RawMount {
    typ: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    bind: Option<RawBind>,
    volume: Option<MountVolumeOptions>,
    tmpfs: Option<MountTmpfsOptions>,
    image_subpath: Option<String>,
}

#[derive(Debug, Default)]
struct RawBind {
    propagation: String,
    non_recursive: bool,
    create_mountpoint: bool,
    read_only_non_recursive: bool,
    read_only_force_recursive: bool,
}

impl RawMount {
    fn bind(&mut self) -> &mut RawBind {
        self.bind.get_or_insert_with(RawBind::default)
    }
    /// docker's `volumeOptions()`: any `volume-*` key brings an (empty) DriverConfig along.
    fn volume(&mut self) -> &mut MountVolumeOptions {
        self.volume.get_or_insert_with(|| MountVolumeOptions {
            driver_config: Some(MountVolumeOptionsDriverConfig::default()),
            ..Default::default()
        })
    }
    fn driver(&mut self) -> &mut MountVolumeOptionsDriverConfig {
        self.volume()
            .driver_config
            .get_or_insert_with(Default::default)
    }
    fn tmpfs(&mut self) -> &mut MountTmpfsOptions {
        self.tmpfs.get_or_insert_with(Default::default)
    }
}

/// docker's `setValueOnMap`: `k=v` (or `k`, an empty value); an empty key is ignored.
fn set_on_map(map: &mut Option<HashMap<String, String>>, item: &str) {
    let (k, v) = item.split_once('=').unwrap_or((item, ""));
    if !k.is_empty() {
        map.get_or_insert_with(HashMap::new)
            .insert(k.to_string(), v.to_string());
    }
}

/// One `--mount` value (`opts.MountOpt.Set` of docker CLI 28.2), with its error texts. One
/// addition: `bind-create-src[=bool]` of later CLIs (BindOptions.CreateMountpoint).
pub fn parse_mount(value: &str, cwd: &Path) -> Result<Mount, String> {
    let mut m = RawMount {
        typ: "volume".into(),
        ..Default::default()
    };
    for field in csv_fields(value)? {
        let (raw_key, val) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field.as_str(), None),
        };
        let key = raw_key.to_lowercase();
        let bool_value = |k: &str| -> Result<bool, String> {
            match val {
                None => Ok(true),
                Some(v) => go_parse_bool(v).ok_or_else(|| format!("invalid value for {k}: {v}")),
            }
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => m.volume().no_copy = Some(true),
                "bind-nonrecursive" => m.bind().non_recursive = true,
                "bind-create-src" => m.bind().create_mountpoint = true,
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let invalid = || format!("invalid value for {key}: {val}");
        match key.as_str() {
            "type" => m.typ = val.to_lowercase(),
            "source" | "src" => {
                m.source = if !val.starts_with('/') && val.starts_with('.') {
                    go_abs(cwd, val)
                } else {
                    val.to_string()
                }
            }
            "target" | "dst" | "destination" => m.target = val.to_string(),
            "readonly" | "ro" => m.read_only = bool_value(&key)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => m.bind().propagation = val.to_lowercase(),
            "bind-nonrecursive" => m.bind().non_recursive = bool_value(&key)?,
            "bind-create-src" => m.bind().create_mountpoint = bool_value(&key)?,
            "bind-recursive" => match val {
                "enabled" => {
                    m.bind();
                }
                "disabled" => m.bind().non_recursive = true,
                "writable" => m.bind().read_only_non_recursive = true,
                "readonly" => m.bind().read_only_force_recursive = true,
                _ => {
                    return Err(format!(
                        "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    ))
                }
            },
            "volume-subpath" => m.volume().subpath = Some(val.to_string()),
            "volume-nocopy" => m.volume().no_copy = Some(bool_value(&key)?),
            "volume-label" => set_on_map(&mut m.volume().labels, val),
            "volume-driver" => m.driver().name = Some(val.to_string()),
            "volume-opt" => set_on_map(&mut m.driver().options, val),
            "image-subpath" => m.image_subpath = Some(val.to_string()),
            "tmpfs-size" => {
                let n = super::run_opts::ram_in_bytes(val).map_err(|_| invalid())?;
                m.tmpfs().size_bytes = Some(n);
            }
            "tmpfs-mode" => {
                // Go's ParseUint(val, 8, 32): no sign allowed, unlike from_str_radix.
                let mode = u32::from_str_radix(val, 8)
                    .ok()
                    .filter(|_| !val.starts_with('+'))
                    .ok_or_else(invalid)?;
                m.tmpfs().mode = Some(i64::from(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    validate(&m)?;
    to_api(m)
}

/// The CLI's checks after reading every field, in its order.
fn validate(m: &RawMount) -> Result<(), String> {
    if m.typ.is_empty() {
        return Err("type is required".into());
    }
    if m.target.is_empty() {
        return Err("target is required".into());
    }
    let mixed = |kind: &str| format!("cannot mix '{kind}-*' options with mount type '{}'", m.typ);
    if m.volume.is_some() && m.typ != "volume" {
        return Err(mixed("volume"));
    }
    if m.bind.is_some() && m.typ != "bind" {
        return Err(mixed("bind"));
    }
    if m.tmpfs.is_some() && m.typ != "tmpfs" {
        return Err(mixed("tmpfs"));
    }
    let needs = |opt: &str, what: &str| {
        format!("option 'bind-recursive={opt}' requires '{what}' to be specified in conjunction")
    };
    if let Some(b) = &m.bind {
        if b.read_only_non_recursive && !m.read_only {
            return Err(needs("writable", "readonly"));
        }
        if b.read_only_force_recursive {
            if !m.read_only {
                return Err(needs("readonly", "readonly"));
            }
            if b.propagation != "rprivate" {
                return Err(needs("readonly", "bind-propagation=rprivate"));
            }
        }
    }
    Ok(())
}

/// The create body's Mount. Go's `omitempty` drops false, zero and empty values; a type or
/// propagation the API types cannot hold fails with the daemon's own answer to it.
fn to_api(m: RawMount) -> Result<Mount, String> {
    let daemon = |what: &str| {
        format!(
            "Error response from daemon: invalid mount config for type {}: {what}",
            go_quote(&m.typ)
        )
    };
    let typ = match m.typ.as_str() {
        "bind" => MountType::BIND,
        "volume" => MountType::VOLUME,
        "tmpfs" => MountType::TMPFS,
        "npipe" => MountType::NPIPE,
        "cluster" => MountType::CLUSTER,
        "image" => MountType::IMAGE,
        _ => return Err(daemon("mount type unknown")),
    };
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    let yes = |b: bool| b.then_some(true);
    let bind_options = match m.bind {
        None => None,
        Some(b) => Some(MountBindOptions {
            propagation: match b.propagation.as_str() {
                "" => None,
                "private" => Some(MountBindOptionsPropagationEnum::PRIVATE),
                "rprivate" => Some(MountBindOptionsPropagationEnum::RPRIVATE),
                "shared" => Some(MountBindOptionsPropagationEnum::SHARED),
                "rshared" => Some(MountBindOptionsPropagationEnum::RSHARED),
                "slave" => Some(MountBindOptionsPropagationEnum::SLAVE),
                "rslave" => Some(MountBindOptionsPropagationEnum::RSLAVE),
                other => return Err(daemon(&format!("invalid propagation mode: {other}"))),
            },
            non_recursive: yes(b.non_recursive),
            create_mountpoint: yes(b.create_mountpoint),
            read_only_non_recursive: yes(b.read_only_non_recursive),
            read_only_force_recursive: yes(b.read_only_force_recursive),
        }),
    };
    let volume_options = m.volume.map(|mut v| {
        v.no_copy = v.no_copy.filter(|b| *b);
        v.subpath = v.subpath.and_then(nonempty);
        v.driver_config = v.driver_config.map(|mut d| {
            d.name = d.name.and_then(nonempty);
            d.options = d.options.filter(|o| !o.is_empty());
            d
        });
        v
    });
    let tmpfs_options = m.tmpfs.map(|mut t| {
        t.size_bytes = t.size_bytes.filter(|n| *n != 0);
        t.mode = t.mode.filter(|n| *n != 0);
        t
    });
    Ok(Mount {
        target: Some(m.target),
        source: nonempty(m.source),
        typ: Some(typ),
        read_only: yes(m.read_only),
        consistency: nonempty(m.consistency),
        bind_options,
        volume_options,
        image_options: m
            .image_subpath
            .and_then(nonempty)
            .map(|s| MountImageOptions { subpath: Some(s) }),
        tmpfs_options,
    })
}

/// Every `--mount` value, failing as the flag parser does on the first bad one.
pub fn parse_mounts(values: &[String], cwd: &Path) -> Result<Vec<Mount>, String> {
    values
        .iter()
        .map(|v| {
            parse_mount(v, cwd).map_err(|e| {
                if e.starts_with("Error response from daemon") {
                    e
                } else {
                    format!("invalid argument {} for \"--mount\" flag: {e}", go_quote(v))
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn cwd() -> &'static Path {
        Path::new("/tmp")
    }

    fn specs(v: &[&str]) -> Result<VolumeSpecs, String> {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        split_volume_specs(&v, cwd())
    }

    fn mount(v: &str) -> Value {
        serde_json::to_value(parse_mount(v, cwd()).unwrap()).unwrap()
    }

    fn mount_err(v: &str) -> String {
        parse_mounts(&[v.to_string()], cwd()).unwrap_err()
    }

    #[test]
    fn volume_specs_sorted_as_docker() {
        let s = specs(&[
            "/data",
            "data:/d",
            "/h:/c:ro,rshared",
            "/x/",
            "a:b:c:d",
            "rel:/x",
            "/a:rel",
            "/a:/b:bogus",
            "~/h:/z",
            "a:b",
            "a",
            "/data",
        ])
        .unwrap();
        assert_eq!(s.anonymous, vec!["/data", "/x/", "a:b", "a"]);
        assert_eq!(
            s.binds,
            vec![
                "data:/d",
                "/h:/c:ro,rshared",
                "a:b:c:d",
                "rel:/x",
                "/a:rel",
                "/a:/b:bogus",
                "~/h:/z"
            ]
        );
    }

    #[test]
    fn relative_bind_sources_made_absolute() {
        let s = specs(&["./rel:/x", ".:/x", "../up:/y", "./a/../b/:/z:ro"]).unwrap();
        assert_eq!(
            s.binds,
            vec!["/tmp/rel:/x", "/tmp:/x", "/up:/y", "/tmp/b:/z:ro"]
        );
    }

    #[test]
    fn volume_spec_errors() {
        assert_eq!(specs(&[""]).unwrap_err(), "invalid empty volume spec");
        assert_eq!(
            specs(&[":/x"]).unwrap_err(),
            "invalid spec: :/x: empty section between colons"
        );
        assert_eq!(
            specs(&["ab:cd:ef:gh"]).unwrap_err(),
            "invalid spec: ab:cd:ef:gh: too many colons"
        );
        assert_eq!(
            specs(&["/a::/b"]).unwrap_err(),
            "invalid spec: /a::/b: empty section between colons"
        );
    }

    #[test]
    fn parse_volume_spec_types() {
        let p = parse_volume_spec("c:/x:/y").unwrap();
        assert_eq!(
            (p.source.as_str(), p.target.as_str(), p.is_bind),
            ("c:/x", "/y", true)
        );
        let p = parse_volume_spec("name:/y").unwrap();
        assert!(!p.is_bind);
        let p = parse_volume_spec("/y").unwrap();
        assert_eq!((p.source.as_str(), p.target.as_str()), ("", "/y"));
    }

    #[test]
    fn volume_mount_with_every_option() {
        assert_eq!(
            mount("type=volume,src=v,dst=/d,ro,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs,volume-driver=local,volume-subpath=sub"),
            json!({"Type": "volume", "Source": "v", "Target": "/d", "ReadOnly": true,
                   "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}, "Subpath": "sub",
                                     "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}})
        );
        assert_eq!(mount("dst=/v"), json!({"Type": "volume", "Target": "/v"}));
        assert_eq!(
            mount("dst=/v,type=Volume,target=/w"),
            json!({"Type": "volume", "Target": "/w"})
        );
        assert_eq!(
            mount("type=volume,dst=/v,volume-nocopy=false"),
            json!({"Type": "volume", "Target": "/v", "VolumeOptions": {"DriverConfig": {}}})
        );
        assert_eq!(
            mount("type=volume,dst=/v,volume-label=a,volume-label==b,volume-opt=o=1=2"),
            json!({"Type": "volume", "Target": "/v", "VolumeOptions": {
                "Labels": {"a": ""}, "DriverConfig": {"Options": {"o": "1=2"}}}})
        );
        assert_eq!(
            mount("type=volume,dst=/v,volume-subpath=,volume-driver=,volume-opt="),
            json!({"Type": "volume", "Target": "/v", "VolumeOptions": {"DriverConfig": {}}})
        );
        assert_eq!(
            mount("type=volume,src=/abs,dst=/t,consistency=Cached"),
            json!({"Type": "volume", "Source": "/abs", "Target": "/t", "Consistency": "cached"})
        );
        assert_eq!(
            mount(r#"type=volume,"src=a,b",dst=/v"#),
            json!({"Type": "volume", "Source": "a,b", "Target": "/v"})
        );
        assert_eq!(
            mount("TYPE=BIND,SRC=/a,DST=/b"),
            json!({"Type": "bind", "Source": "/a", "Target": "/b"})
        );
        assert_eq!(mount("type=volume,dst= /v")["Target"], " /v");
    }

    #[test]
    fn readonly_values() {
        for (v, ro) in [
            ("ro", true),
            ("readonly", true),
            ("ro=TRUE", true),
            ("ro=t", true),
            ("ro=1", true),
            ("readonly=0", false),
            ("ro=1,ro=false", false),
        ] {
            let m = mount(&format!("type=volume,dst=/v,{v}"));
            assert_eq!(m.get("ReadOnly").is_some(), ro, "{v}");
        }
    }

    #[test]
    fn bind_mounts() {
        assert_eq!(
            mount("type=bind,src=./a,target=/b,readonly=false,bind-propagation=rshared"),
            json!({"Type": "bind", "Source": "/tmp/a", "Target": "/b",
                   "BindOptions": {"Propagation": "rshared"}})
        );
        assert_eq!(
            mount("type=bind,src=.hidden,dst=/b")["Source"],
            "/tmp/.hidden"
        );
        assert_eq!(mount("type=bind,src=..,dst=/b")["Source"], "/");
        assert_eq!(mount("type=bind,src=~/x,dst=/b")["Source"], "~/x");
        let nonrec = json!({"NonRecursive": true});
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-recursive=disabled")["BindOptions"],
            nonrec
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-nonrecursive")["BindOptions"],
            nonrec
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-nonrecursive=false")["BindOptions"],
            json!({})
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-propagation=")["BindOptions"],
            json!({})
        );
        assert!(mount("type=bind,src=/a,dst=/b,bind-recursive=enabled")
            .get("BindOptions")
            .is_some());
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-recursive=readonly,ro,bind-propagation=rprivate"),
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true,
                   "BindOptions": {"Propagation": "rprivate", "ReadOnlyForceRecursive": true}})
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-recursive=writable,ro")["BindOptions"],
            json!({"ReadOnlyNonRecursive": true})
        );
        assert_eq!(
            mount("type=bind,src=/a,dst=/b,bind-create-src")["BindOptions"],
            json!({"CreateMountpoint": true})
        );
        assert_eq!(
            mount("type=bind,dst=/b"),
            json!({"Type": "bind", "Target": "/b"})
        );
    }

    #[test]
    fn tmpfs_and_other_types() {
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770"),
            json!({"Type": "tmpfs", "Target": "/t",
                   "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}})
        );
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=1.5g")["TmpfsOptions"]["SizeBytes"],
            1610612736
        );
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=10 k")["TmpfsOptions"]["SizeBytes"],
            10240
        );
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=100")["TmpfsOptions"]["SizeBytes"],
            100
        );
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=0")["TmpfsOptions"],
            json!({})
        );
        assert_eq!(
            mount("type=tmpfs,src=x,dst=/t"),
            json!({"Type": "tmpfs", "Source": "x", "Target": "/t"})
        );
        assert_eq!(
            mount("type=image,src=busybox,dst=/i,image-subpath=/bin"),
            json!({"Type": "image", "Source": "busybox", "Target": "/i",
                   "ImageOptions": {"Subpath": "/bin"}})
        );
        assert_eq!(mount("type=npipe,src=x,dst=/y")["Type"], "npipe");
        assert_eq!(mount("type=cluster,src=x,dst=/y")["Type"], "cluster");
    }

    #[test]
    fn mount_errors_as_docker_prints_them() {
        let flag = |v: &str, e: &str| {
            format!("invalid argument {} for \"--mount\" flag: {e}", go_quote(v))
        };
        for (v, e) in [
            ("", "EOF"),
            ("src=v", "target is required"),
            ("type=,dst=/v", "type is required"),
            ("type=volume,dst=/v,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
            ("BOGUS=1", "unexpected key 'bogus' in 'BOGUS=1'"),
            ("type=volume,dst=/v,BOGUS", "invalid field 'BOGUS' must be a key=value pair"),
            ("type=volume,dst=/v,,", "invalid field '' must be a key=value pair"),
            ("type=volume,=x,dst=/v", "unexpected key '' in '=x'"),
            ("type=volume, dst=/v", "unexpected key ' dst' in ' dst=/v'"),
            (
                "type=bind,src=/a,dst=/b,volume-nocopy",
                "cannot mix 'volume-*' options with mount type 'bind'",
            ),
            (
                "type=volume,dst=/b,bind-propagation=shared",
                "cannot mix 'bind-*' options with mount type 'volume'",
            ),
            (
                "type=volume,dst=/b,tmpfs-size=1",
                "cannot mix 'tmpfs-*' options with mount type 'volume'",
            ),
            ("type=volume,dst=/v,ro=maybe", "invalid value for ro: maybe"),
            ("type=volume,dst=/v,RO=maybe", "invalid value for ro: maybe"),
            ("type=volume,dst=/v,ro=", "invalid value for ro: "),
            ("type=volume,dst=/v,ro=yes", "invalid value for ro: yes"),
            ("type=volume,dst=/v,volume-nocopy=x", "invalid value for volume-nocopy: x"),
            (
                "type=bind,src=/a,dst=/b,bind-nonrecursive=x",
                "invalid value for bind-nonrecursive: x",
            ),
            ("type=tmpfs,dst=/t,tmpfs-size=x", "invalid value for tmpfs-size: x"),
            ("type=tmpfs,dst=/t,tmpfs-size=-1", "invalid value for tmpfs-size: -1"),
            ("type=tmpfs,dst=/t,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
            ("type=tmpfs,dst=/t,tmpfs-mode=0o700", "invalid value for tmpfs-mode: 0o700"),
            ("type=tmpfs,dst=/t,tmpfs-mode=+7", "invalid value for tmpfs-mode: +7"),
            ("type=tmpfs,dst=/t,tmpfs-mode=", "invalid value for tmpfs-mode: "),
            (
                "type=tmpfs,dst=/t,tmpfs-mode=777777777777",
                "invalid value for tmpfs-mode: 777777777777",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=bogus",
                "invalid value for bind-recursive: bogus (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=writable",
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=readonly,bind-propagation=rprivate",
                "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction",
            ),
            (
                "type=bind,src=/a,dst=/b,bind-recursive=readonly,ro",
                "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
            ),
            (
                r#"type=volume,src="a,dst=/v"#,
                "parse error on line 1, column 17: bare \" in non-quoted-field",
            ),
            (
                r#"type=volume,"dst=/v"x"#,
                "parse error on line 1, column 20: extraneous or missing \" in quoted-field",
            ),
            (
                r#"type=volume,"dst=/v"#,
                "parse error on line 1, column 20: extraneous or missing \" in quoted-field",
            ),
            (
                r#"type=volume,"d""st"=/v"#,
                "parse error on line 1, column 19: extraneous or missing \" in quoted-field",
            ),
        ] {
            assert_eq!(mount_err(v), flag(v, e), "{v}");
        }
    }

    #[test]
    fn values_only_the_daemon_rejects() {
        assert_eq!(
            mount_err("type=foo,dst=/v"),
            "Error response from daemon: invalid mount config for type \"foo\": mount type unknown"
        );
        assert_eq!(
            mount_err("type=bind,src=/a,dst=/b,bind-propagation=BOGUS"),
            "Error response from daemon: invalid mount config for type \"bind\": invalid propagation mode: bogus"
        );
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_fields(r#""a""b",c"#).unwrap(), vec!["a\"b", "c"]);
        assert_eq!(csv_fields("a,").unwrap(), vec!["a", ""]);
        assert_eq!(csv_fields(r#"a,"""#).unwrap(), vec!["a", ""]);
    }
}
