//! What a build is asked for (the query of `POST /build`) and what it reports.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
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
}

/// One message of the progress stream (`{"stream":…}`, `{"aux":{"ID":…}}`,
/// `{"errorDetail":{"message":…},"error":…}`).
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    Stream(String),
    Aux(serde_json::Value),
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
