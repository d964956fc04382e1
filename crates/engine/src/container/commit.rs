//! `docker commit`: the container's upper dir becomes a layer on top of its image, with the
//! container's config (plus the request's overrides and `--change`s) as the image config.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::changes::apply_change;
use berth_image::{CommitRequest, ContainerConfig};
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

/// Query and body of POST /commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    pub pause: bool,
    pub changes: Vec<String>,
    /// The request body: config fields that override the container's.
    pub config: Option<serde_json::Value>,
}

/// dockerd's `merge(userConf, imageConf)`: what the request left unset comes from the
/// container's config.
fn merge(user: &mut ContainerConfig, from: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = from.user.clone();
    }
    for (k, v) in &from.exposed_ports {
        user.exposed_ports
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    if user.env.is_empty() {
        user.env = from.env.clone();
    } else {
        for e in &from.env {
            let key = e.split('=').next().unwrap_or(e);
            if !user.env.iter().any(|u| u.split('=').next() == Some(key)) {
                user.env.push(e.clone());
            }
        }
    }
    for (k, v) in &from.labels {
        user.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = from.cmd.clone();
            user.args_escaped = from.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = from.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = from.healthcheck.clone();
    }
    if user.working_dir.is_empty() {
        user.working_dir = from.working_dir.clone();
    }
    for (k, v) in &from.volumes {
        user.volumes.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.stop_signal.is_empty() {
        user.stop_signal = from.stop_signal.clone();
    }
    // Hostname, Image, Tty… are the container's too, as dockerd's committed config shows.
    for (k, v) in &from.extra {
        user.extra.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

impl Engine {
    /// POST /commit. Returns the new image's id ("sha256:…").
    pub async fn commit_container(self: &Arc<Self>, opts: CommitOptions) -> Result<String> {
        let h = self.find_container(&opts.container)?;
        let rec = h.snapshot();
        if opts.repo.is_empty() && !opts.tag.is_empty() {
            return Err(bad("invalid reference format: tag without a repository"));
        }
        let reference = match (opts.repo.as_str(), opts.tag.as_str()) {
            ("", _) => None,
            (r, "") => Some(r.to_string()),
            (r, t) => Some(format!("{r}:{t}")),
        };
        // Everything that can be refused is checked before the layer is written.
        let mut config: ContainerConfig = match &opts.config {
            None | Some(serde_json::Value::Null) => ContainerConfig::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(bad)?,
        };
        for ch in &opts.changes {
            apply_change(&mut config, ch)?;
        }
        let container_config = serde_json::to_value(&rec.config).map_err(EngineError::internal)?;
        let from: ContainerConfig =
            serde_json::from_value(container_config.clone()).map_err(EngineError::internal)?;
        merge(&mut config, &from);
        if let Some(r) = &reference {
            berth_image::Reference::parse_normalized(r)
                .map_err(|e| bad(format!("invalid reference format: {e}")))?;
        }

        // dockerd freezes a running container so the layer is a consistent snapshot.
        let paused_here = opts.pause
            && rec.state.is_running()
            && !rec.state.paused
            && self.pause(&rec.id).await.is_ok();
        let image = self
            .commit_layer(&rec, config, container_config, &opts, reference.clone())
            .await;
        if paused_here {
            if let Err(e) = self.unpause(&rec.id).await {
                tracing::warn!(container = %rec.id, "unpause after commit: {e}");
            }
        }
        let image = image?;
        let id = image.id.to_string();
        let mut attrs = vec![("comment", opts.comment.clone()), ("imageID", id.clone())];
        if let Some(r) = &reference {
            attrs.push(("imageRef", r.clone()));
        }
        self.emit_container(&rec, "commit", &attrs);
        Ok(id)
    }

    /// Writes the upper dir as one layer on top of the container's image.
    async fn commit_layer(
        &self,
        rec: &super::ContainerRecord,
        config: ContainerConfig,
        container_config: serde_json::Value,
        opts: &CommitOptions,
        reference: Option<String>,
    ) -> Result<berth_image::Image> {
        let parent = self.image_by_name(&rec.image_id).await?;
        let changes = self.upper_changes(&rec.id, &rec.image_id).await?;
        let upper = self.container_dir(&rec.id).join("upper");
        let tmp_dir = self.cfg.data_root.join("tmp");
        let images = self.images.clone();
        let req = CommitRequest {
            config,
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            created_by: rec.config.cmd.clone().unwrap_or_default().join(" "),
            container_id: rec.id.clone(),
            container_config,
            reference,
            defer_sync: false,
            upper: None,
        };
        tokio::task::spawn_blocking(move || -> Result<berth_image::Image> {
            std::fs::create_dir_all(&tmp_dir)?;
            let file = tempfile::tempfile_in(&tmp_dir)?;
            let mut file = berth_store::upper::write_layer(&upper, &changes, file)?;
            file.seek(SeekFrom::Start(0))?;
            Ok(images.commit_layer(&parent, file, req)?)
        })
        .await
        .map_err(EngineError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wins_and_gaps_come_from_the_container() {
        let mut user = ContainerConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let from = ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            env: vec!["A=0".into(), "PATH=/bin".into()],
            working_dir: "/w".into(),
            ..Default::default()
        };
        merge(&mut user, &from);
        assert_eq!(user.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));
        assert_eq!(user.env, vec!["A=1".to_string(), "PATH=/bin".to_string()]);
        assert_eq!(user.working_dir, "/w");
    }
}
