//! Settings the docker CLI reads from its config file ($DOCKER_CONFIG/config.json, else
//! ~/.docker/config.json) that change how our commands behave.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The global `--config DIR` flag, which wins over `$DOCKER_CONFIG` as in docker.
static CONFIG_FLAG: OnceLock<PathBuf> = OnceLock::new();

/// Records `--config` (once, at start-up).
pub fn set_config_dir(dir: &str) {
    if !dir.is_empty() {
        let _ = CONFIG_FLAG.set(PathBuf::from(dir));
    }
}

/// The directory of the client's config.json: `--config`, `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(d) = CONFIG_FLAG.get() {
        return Some(d.clone());
    }
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")),
    }
}

/// `detachKeys` from the config file in `dir`, when set.
pub fn detach_keys_in(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("detachKeys")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The user's default detach keys (`--detach-keys` overrides them, as in docker).
pub fn detach_keys() -> Option<String> {
    detach_keys_in(&config_dir()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_detach_keys() {
        let dir = std::env::temp_dir().join(format!("berth-cfg-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(super::detach_keys_in(&dir), None);
        std::fs::write(
            dir.join("config.json"),
            r#"{"auths":{},"detachKeys":"ctrl-x,x"}"#,
        )
        .unwrap();
        let got = super::detach_keys_in(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.as_deref(), Some("ctrl-x,x"));
    }
}
