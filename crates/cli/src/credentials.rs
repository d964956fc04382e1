//! Registry credentials as the docker CLI keeps them: the `auths` of config.json, a default
//! credential helper (`credsStore`) and per-registry ones (`credHelpers`), speaking the
//! `docker-credential-<name> get|store|erase|list` protocol; and the `X-Registry-Auth` /
//! `X-Registry-Config` headers built from them.

use crate::docker_config;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The key of Docker Hub's credentials.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";
/// A helper's Username meaning "Secret is an identity token".
const TOKEN_USERNAME: &str = "<token>";
const NOT_FOUND: &str = "credentials not found in native keychain";

/// moby's `registry.AuthConfig`, in its JSON field order (empty fields left out, as Go's
/// `omitempty` does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serveraddress: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identitytoken: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registrytoken: String,
}

/// `X-Registry-Auth`: base64url (with padding) of the JSON AuthConfig; `{}` when anonymous.
pub fn registry_auth_header(auth: &AuthConfig) -> String {
    URL_SAFE.encode(serde_json::to_vec(auth).unwrap_or_else(|_| b"{}".to_vec()))
}

/// `X-Registry-Config` (build): every stored credential, keyed by registry.
pub fn registry_config_header(all: &BTreeMap<String, AuthConfig>) -> String {
    URL_SAFE.encode(serde_json::to_vec(all).unwrap_or_else(|_| b"{}".to_vec()))
}

/// The credentials key of the registry at `domain` (a reference's domain): Docker Hub's is
/// [`INDEX_SERVER`], any other registry's is its `host[:port]`.
pub fn key_for_domain(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => INDEX_SERVER,
        d => d,
    }
}

/// `credentials.ConvertToHostname`: `https://host:5000/v2/` → `host:5000`.
pub fn convert_to_hostname(address: &str) -> String {
    let rest = match address.split_once("://") {
        Some((_, rest)) if !rest.is_empty() => rest,
        _ => address,
    };
    rest.split('/').next().unwrap_or_default().to_string()
}

/// A credential helper's or the config file's failure, in docker's wording.
#[derive(Debug, PartialEq)]
pub struct CredentialsError(pub String);

impl std::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CredentialsError {}

type CredResult<T> = Result<T, CredentialsError>;

/// Where one registry's credentials live.
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    /// `auths` of config.json, in plain text.
    File,
    /// `docker-credential-<name>`.
    Helper(String),
}

/// What a store did when asked to keep credentials.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// Nothing changed.
    Unchanged,
    /// Written; `plain_password` when a password (not a token) sits unencrypted in the file.
    Written { plain_password: bool },
}

/// The docker CLI's config file, as far as credentials go; every other key is kept as read.
pub struct ConfigFile {
    path: PathBuf,
    /// The file's document, to write back with its other keys.
    doc: Map<String, Value>,
    /// `auths` decoded: `auth` split into username and password, keyed by server.
    auths: BTreeMap<String, AuthConfig>,
    /// The file exists but could not be read as JSON: never overwritten.
    unreadable: Option<String>,
    /// `PATH` for finding helpers, when not the process's own (tests).
    helper_path: Option<std::ffi::OsString>,
}

impl ConfigFile {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn load_default() -> ConfigFile {
        let dir = docker_config::config_dir().unwrap_or_else(|| PathBuf::from(".docker"));
        Self::load(&dir)
    }

    pub fn load(dir: &Path) -> ConfigFile {
        let path = dir.join("config.json");
        let mut cfg = ConfigFile {
            path,
            doc: Map::new(),
            auths: BTreeMap::new(),
            unreadable: None,
            helper_path: None,
        };
        let text = match std::fs::read(&cfg.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return cfg,
            Err(e) => {
                cfg.unreadable = Some(format!(
                    "{}: {}",
                    cfg.path.display(),
                    crate::io_err_text(&e)
                ));
                return cfg;
            }
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return cfg;
        }
        match serde_json::from_slice::<Map<String, Value>>(&text) {
            Ok(doc) => cfg.doc = doc,
            Err(e) => {
                cfg.unreadable = Some(format!("{}: {e}", cfg.path.display()));
                return cfg;
            }
        }
        if let Some(Value::Object(auths)) = cfg.doc.get("auths") {
            for (server, entry) in auths {
                let mut ac: AuthConfig = serde_json::from_value(entry.clone()).unwrap_or_default();
                if !ac.auth.is_empty() {
                    let (user, pass) = decode_auth(&ac.auth).unwrap_or_default();
                    ac.username = user;
                    ac.password = pass;
                }
                ac.auth.clear();
                ac.serveraddress = server.clone();
                cfg.auths.insert(server.clone(), ac);
            }
        }
        cfg
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A warning for a config file that could not be read (docker prints one and goes on).
    pub fn load_warning(&self) -> Option<String> {
        self.unreadable
            .as_ref()
            .map(|e| format!("WARNING: Error loading config file: {e}"))
    }

    fn str_key(&self, key: &str) -> Option<&str> {
        self.doc.get(key)?.as_str().filter(|s| !s.is_empty())
    }

    /// `GetCredentialsStore`: the registry's own helper, else the default one, else the file.
    pub fn store_for(&self, server: &str) -> Store {
        let own = self
            .doc
            .get("credHelpers")
            .and_then(|h| h.get(server))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match own.or_else(|| self.str_key("credsStore")) {
            Some(helper) => Store::Helper(helper.to_string()),
            None => Store::File,
        }
    }

    /// The file's entry for `server`, or one whose key names the same host (keys written by
    /// old clients as `https://host/v1/`).
    fn file_get(&self, server: &str) -> AuthConfig {
        if let Some(ac) = self.auths.get(server) {
            return ac.clone();
        }
        self.auths
            .iter()
            .find(|(k, _)| convert_to_hostname(k) == server)
            .map(|(_, ac)| ac.clone())
            .unwrap_or_default()
    }

    /// `GetAuthConfig`: the stored credentials for `server` (empty when there are none).
    pub fn get(&self, server: &str) -> CredResult<AuthConfig> {
        match self.store_for(server) {
            Store::File => Ok(self.file_get(server)),
            Store::Helper(h) => {
                let mut ac = self.file_get(server);
                let creds = self.helper_get(&h, server)?;
                ac.username = creds.username;
                ac.password = creds.password;
                ac.identitytoken = creds.identitytoken;
                ac.serveraddress = creds.serveraddress;
                Ok(ac)
            }
        }
    }

    /// The credentials to send for a registry; a failing helper means anonymous, as in docker.
    pub fn resolve(&self, domain: &str) -> AuthConfig {
        let key = key_for_domain(domain);
        match self.get(key) {
            Ok(ac) => ac,
            Err(e) => {
                tracing::debug!("credentials for {key}: {e}");
                AuthConfig::default()
            }
        }
    }

    /// `GetAllCredentials`: the default store's (file or helper `list`), then each
    /// registry's own helper on top.
    pub fn all(&self) -> CredResult<BTreeMap<String, AuthConfig>> {
        let mut all = BTreeMap::new();
        match self.str_key("credsStore") {
            None => all.extend(self.auths.clone()),
            Some(helper) => {
                for server in self.helper_list(helper)?.into_keys() {
                    let mut ac = self.auths.get(&server).cloned().unwrap_or_default();
                    let creds = self.helper_get(helper, &server)?;
                    ac.username = creds.username;
                    ac.password = creds.password;
                    ac.identitytoken = creds.identitytoken;
                    if ac.serveraddress.is_empty() {
                        ac.serveraddress = creds.serveraddress;
                    }
                    all.insert(server, ac);
                }
            }
        }
        let own: Vec<String> = self
            .doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for server in own {
            match self.get(&server) {
                Ok(ac) => {
                    all.insert(server, ac);
                }
                Err(e) => tracing::warn!("Failed to get credentials for registry: {server}: {e}"),
            }
        }
        Ok(all)
    }

    /// Keeps `auth` (its `serveraddress` is the key) in the registry's store.
    pub fn store(&mut self, auth: &AuthConfig) -> CredResult<Stored> {
        match self.store_for(&auth.serveraddress) {
            Store::File => self.file_store(auth.clone()),
            Store::Helper(h) => {
                let (user, secret) = if auth.identitytoken.is_empty() {
                    (auth.username.as_str(), auth.password.as_str())
                } else {
                    (TOKEN_USERNAME, auth.identitytoken.as_str())
                };
                let req = serde_json::json!({
                    "ServerURL": auth.serveraddress, "Username": user, "Secret": secret,
                });
                run_helper(self.helper_path.as_deref(), &h, "store", &req.to_string())
                    .map_err(|e| CredentialsError(format!("error storing credentials - {e}")))?;
                // The file keeps only what a helper does not (the email), as docker does.
                let mut rest = auth.clone();
                rest.username.clear();
                rest.password.clear();
                rest.identitytoken.clear();
                self.file_store(rest)?;
                Ok(Stored::Written {
                    plain_password: false,
                })
            }
        }
    }

    fn file_store(&mut self, auth: AuthConfig) -> CredResult<Stored> {
        if self.auths.get(&auth.serveraddress) == Some(&auth) {
            return Ok(Stored::Unchanged);
        }
        let plain_password = !auth.password.is_empty();
        self.auths.insert(auth.serveraddress.clone(), auth);
        self.save()?;
        Ok(Stored::Written { plain_password })
    }

    /// Forgets `server`'s credentials; absent ones are no error for the file (a helper may
    /// say "not found").
    pub fn erase(&mut self, server: &str) -> CredResult<()> {
        if let Store::Helper(h) = self.store_for(server) {
            run_helper(self.helper_path.as_deref(), &h, "erase", server)
                .map_err(|e| CredentialsError(format!("error erasing credentials - {e}")))?;
        }
        if self.auths.remove(server).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// `PATH` for the helpers of this config (tests point it at fake helpers).
    #[cfg(test)]
    pub(crate) fn set_helper_path(&mut self, path: std::ffi::OsString) {
        self.helper_path = Some(path);
    }

    /// `client.Get`: the helper's credentials for `server`; none (not an error) when it has none.
    fn helper_get(&self, helper: &str, server: &str) -> CredResult<AuthConfig> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Reply {
            #[serde(default)]
            username: String,
            #[serde(default)]
            secret: String,
        }
        let out = match run_helper(self.helper_path.as_deref(), helper, "get", server) {
            Ok(out) => out,
            Err(e) if e.ends_with(&format!("out: `{NOT_FOUND}`")) => {
                return Ok(AuthConfig::default())
            }
            Err(e) => return Err(CredentialsError(format!("error getting credentials - {e}"))),
        };
        let reply: Reply = serde_json::from_str(&out).map_err(|e| {
            CredentialsError(format!(
                "error getting credentials - err: {e}, out: `{out}`"
            ))
        })?;
        let mut ac = AuthConfig {
            serveraddress: server.to_string(),
            ..Default::default()
        };
        if reply.username == TOKEN_USERNAME {
            ac.identitytoken = reply.secret;
        } else {
            ac.username = reply.username;
            ac.password = reply.secret;
        }
        Ok(ac)
    }

    /// `client.List`: server → username.
    fn helper_list(&self, helper: &str) -> CredResult<HashMap<String, String>> {
        let out = run_helper(self.helper_path.as_deref(), helper, "list", "unused")
            .map_err(|e| CredentialsError(format!("error listing credentials - {e}")))?;
        serde_json::from_str(&out).map_err(|e| {
            CredentialsError(format!(
                "error listing credentials - err: {e}, out: `{out}`"
            ))
        })
    }

    /// Writes the file back (mode 0600, through a temp file and a rename) with `auths` in
    /// docker's form and every other key as it was.
    fn save(&mut self) -> CredResult<()> {
        if let Some(e) = &self.unreadable {
            return Err(CredentialsError(format!(
                "refusing to overwrite the unreadable config file {e}"
            )));
        }
        let mut auths = Map::new();
        for (server, ac) in &self.auths {
            let mut entry = ac.clone();
            entry.auth = encode_auth(&entry.username, &entry.password);
            entry.username.clear();
            entry.password.clear();
            entry.serveraddress.clear();
            auths.insert(
                server.clone(),
                serde_json::to_value(entry).unwrap_or_default(),
            );
        }
        // docker writes `auths` first.
        let mut doc = Map::new();
        doc.insert("auths".into(), Value::Object(auths));
        for (k, v) in std::mem::take(&mut self.doc) {
            if k != "auths" {
                doc.insert(k, v);
            }
        }
        self.doc = doc;
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        self.doc
            .serialize(&mut ser)
            .map_err(|e| CredentialsError(e.to_string()))?;
        write_private(&self.path, &text).map_err(|e| {
            CredentialsError(format!(
                "{}: {}",
                self.path.display(),
                crate::io_err_text(&e)
            ))
        })
    }
}

/// Replaces `path` with `bytes`, readable by its owner only. A symlinked config file is
/// written where the link points, as docker does.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".config.json.berth-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn encode_auth(user: &str, pass: &str) -> String {
    if user.is_empty() && pass.is_empty() {
        return String::new();
    }
    STANDARD.encode(format!("{user}:{pass}"))
}

/// `auth` = base64("user:password"); None when it is not that.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(auth.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.trim_matches('\0').to_string()))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout, or docker's
/// "err: …, out: `…`" text.
fn run_helper(
    path_env: Option<&std::ffi::OsStr>,
    helper: &str,
    action: &str,
    input: &str,
) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    // The name comes from the config file: it names a program on PATH, never a path.
    if helper.contains('/') || helper.contains('\0') {
        return Err(format!(
            "err: invalid credential helper name {program:?}, out: ``"
        ));
    }
    let mut cmd = Command::new(&program);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let child = cmd
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "err: exec: \"{program}\": executable file not found in $PATH, out: ``"
            ))
        }
        Err(e) => return Err(format!("err: {}, out: ``", crate::io_err_text(&e))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is its own business.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("err: {}, out: ``", crate::io_err_text(&e)))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(text)
    } else {
        let code = out.status.code().unwrap_or(-1);
        Err(format!("err: exit status {code}, out: `{text}`"))
    }
}

#[cfg(test)]
mod tests;
