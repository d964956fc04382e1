//! What a build is asked for (the query of `POST /build`) and what it reports.

use std::collections::HashMap;

/// The request header that carries `BuildOptions::secrets` on `POST /build` (the classic
/// API has no field for them): base64 of a JSON object, id -> base64 of the value.
pub const SECRETS_HEADER: &str = "X-Berth-Build-Secrets";

/// The most secret bytes one build may carry, all secrets together. BuildKit allows 500 KB
/// per secret, but the header that carries them grows to about 16/9 of their size (base64
/// twice) and hyper refuses a request head over ~408 KiB: 128 KiB keeps the header near
/// 230 KB, with room left for the query and the other headers.
pub const MAX_SECRETS_BYTES: usize = 128 * 1024;

#[derive(Clone, Default)]
pub struct BuildOptions {
    /// `t`, repeatable: references to tag the result with.
    pub tags: Vec<String>,
    /// Path of the Dockerfile inside the context (`dockerfile`, default "Dockerfile").
    pub dockerfile: String,
    /// `buildargs`: a value of None means "take it from the daemon's environment" as docker
    /// does for `--build-arg NAME` without a value.
    pub build_args: HashMap<String, Option<String>>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `rm` (default true): remove intermediate containers after a successful step.
    pub remove: bool,
    /// `forcerm`: remove them even when the step failed.
    pub force_remove: bool,
    pub pull: bool,
    /// `networkmode` for RUN steps (bridge, host, none, or a network name).
    pub network_mode: Option<String>,
    /// `extrahosts` ("host:ip" list).
    pub extra_hosts: Vec<String>,
    pub shm_size: Option<i64>,
    pub memory: Option<i64>,
    /// `q`: only the final image ID is streamed.
    pub quiet: bool,
    pub platform: Option<String>,
    /// `cachefrom`: images whose history may satisfy cache lookups.
    pub cache_from: Vec<String>,
    /// Secrets a `RUN --mount=type=secret` may read, by id (Berth's CLI sends them; the
    /// classic API has no channel for them). Never written to a layer, history or cache key.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `berthsession`: the body holds only what a context comparison asked for, applied to
    /// the context kept for that client (see `Engine::compare_build_context`).
    pub context_session: Option<String>,
    /// `X-Registry-Config`: credentials for the registries base images are pulled from.
    pub registry_auths: crate::registry::RegistryAuths,
}

/// Written out by hand so that a `{:?}` of the options never prints a secret's value.
impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut secret_ids: Vec<&String> = self.secrets.keys().collect();
        secret_ids.sort();
        f.debug_struct("BuildOptions")
            .field("tags", &self.tags)
            .field("dockerfile", &self.dockerfile)
            .field("build_args", &self.build_args)
            .field("labels", &self.labels)
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .field("remove", &self.remove)
            .field("force_remove", &self.force_remove)
            .field("pull", &self.pull)
            .field("network_mode", &self.network_mode)
            .field("extra_hosts", &self.extra_hosts)
            .field("shm_size", &self.shm_size)
            .field("memory", &self.memory)
            .field("quiet", &self.quiet)
            .field("platform", &self.platform)
            .field("cache_from", &self.cache_from)
            .field("secrets", &secret_ids)
            .finish()
    }
}

/// One message of the progress stream (`{"stream":…}`, `{"aux":{"ID":…}}`,
/// `{"errorDetail":{"message":…},"error":…}`).
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    Stream(String),
    Aux(serde_json::Value),
    /// A message of a base image's pull, passed on as dockerd's legacy builder does.
    Progress(crate::registry::JsonMessage),
    /// The failure, with the failing RUN's exit code when there is one.
    Error {
        message: String,
        code: Option<i64>,
    },
}

impl BuildEvent {
    pub(crate) fn error(e: &crate::EngineError) -> BuildEvent {
        BuildEvent::Error {
            message: e.to_string(),
            code: match e {
                crate::EngineError::CommandFailed { code, .. } => Some(*code),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_secret_ids_not_values() {
        let mut o = BuildOptions::default();
        o.secrets.insert("tok".into(), b"s3cr3t-value".to_vec());
        let text = format!("{o:?}");
        assert!(text.contains("\"tok\""), "{text}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("115, 51"),
            "{text}"
        );
    }
}
