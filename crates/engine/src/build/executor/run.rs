//! RUN: a container from the current image, its output streamed, its changes committed.

use super::*;

impl Builder {
    /// dockerd's saved command: with any build arg in play, `|N` and the N args it names
    /// (undeclared proxy args are counted out, so `|0` can show) before the command.
    pub(super) fn run_created_by(&self, st: &Stage, argv: &[String]) -> String {
        let args = st.run_args();
        let cmd = argv.join(" ");
        if args.is_empty() {
            return cmd;
        }
        let kv: Vec<String> = args
            .iter()
            .filter(|(k, _)| st.arg_in_history(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut words = vec![format!("|{}", kv.len())];
        words.extend(kv);
        words.push(cmd);
        words.join(" ")
    }

    pub(super) async fn run_step(
        &mut self,
        st: &Stage,
        plan: mounts::RunPlan,
        created_by: String,
    ) -> Result<Image> {
        let mounts = self.prepare_mounts(&plan).await?;
        let argv = plan.argv;
        let network_mode = match plan.network {
            Some(n) => Some(n),
            None => self.opts.network_mode.clone().filter(|n| !n.is_empty()),
        };
        let e = &self.engine;
        let mut env = st.config.env.clone();
        for (k, v) in st.run_args() {
            env.push(format!("{k}={v}"));
        }
        // A secret given as a variable reaches the process only (never the container's
        // persisted config); the container still goes with the step even when intermediate
        // containers are kept (`--rm=false`): it could not run again with its secret.
        let secret_env = !mounts.env.is_empty();
        let remove = self.opts.remove || self.opts.force_remove || secret_env;
        let host_config = HostConfig {
            network_mode,
            mounts: Some(mounts.mounts.clone()).filter(|m| !m.is_empty()),
            extra_hosts: Some(self.opts.extra_hosts.clone()).filter(|h| !h.is_empty()),
            shm_size: self.opts.shm_size.filter(|s| *s > 0),
            memory: self.opts.memory.filter(|m| *m > 0),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(st.image.id.to_string()),
            cmd: Some(argv.clone()),
            entrypoint: Some(vec![String::new()]),
            env: Some(env),
            working_dir: Some(st.config.working_dir.clone()).filter(|w| !w.is_empty()),
            user: Some(st.config.user.clone()).filter(|u| !u.is_empty()),
            host_config: Some(host_config),
            ..Default::default()
        };
        let (id, _) = e.create_container(None, body).await?;
        if secret_env {
            if let Err(err) = e.set_transient_env(&id, mounts.env.clone()) {
                let _ = e.remove_container(&id, true, true).await;
                return Err(err);
            }
        }
        self.say(format!(" ---> Running in {}\n", short(&id))).await;
        let res = self.run_container(&id).await;
        let code = match res {
            Ok(c) => c,
            Err(err) => {
                let _ = e.remove_container(&id, true, true).await;
                return Err(err);
            }
        };
        if code != 0 {
            if remove {
                let _ = e.remove_container(&id, true, true).await;
            }
            return Err(EngineError::CommandFailed {
                message: format!(
                    "The command '{}' returned a non-zero code: {code}",
                    argv.join(" ")
                ),
                code,
            });
        }
        let img = match self.remove_secret_stubs(st, &id, &mounts.stubs).await {
            Ok(()) => self.commit_container(st, &id, created_by).await,
            Err(e) => Err(e),
        };
        if remove || img.is_err() {
            e.remove_container(&id, true, true).await?;
            self.say(format!("Removing intermediate container {}\n", short(&id)))
                .await;
        }
        img
    }

    /// Removes what the runtime made in the container's upper for the secrets' mount points.
    async fn remove_secret_stubs(&self, st: &Stage, id: &str, targets: &[String]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let lowers = self.engine.images.layer_dirs(&st.image)?;
        let upper = self.engine.container_dir(id).join("upper");
        let targets = targets.to_vec();
        tokio::task::spawn_blocking(move || mounts::remove_stubs(&upper, &lowers, &targets))
            .await
            .map_err(EngineError::internal)?
    }

    /// Starts the container, streams its output, returns its exit code; an error if an
    /// earlier stage fails meanwhile (the caller removes the container).
    pub(super) async fn run_container(&self, id: &str) -> Result<i64> {
        let e = &self.engine;
        self.check_cancelled()?;
        e.start_container(id).await?;
        let (_, mut logs) = e.container_logs(
            id,
            LogOptions {
                stdout: true,
                stderr: true,
                follow: true,
                ..Default::default()
            },
        )?;
        self.or_cancelled(async {
            while let Some(entry) = logs.recv().await {
                self.say(String::from_utf8_lossy(&entry.line).into_owned())
                    .await;
            }
            e.wait_container(id, WaitCondition::NotRunning).await
        })
        .await
    }

    pub(super) async fn commit_container(
        &self,
        st: &Stage,
        id: &str,
        created_by: String,
    ) -> Result<Image> {
        let e = &self.engine;
        let changes = e.upper_changes(id, st.image.id.as_str()).await?;
        let upper = e.container_dir(id).join("upper");
        let images = e.images.clone();
        let parent = st.image.clone();
        let req = self.commit_request(st, created_by, id);
        let tmp = e.cfg.data_root.join("tmp");
        let epoch = reproducible::epoch(&self.opts);
        tokio::task::spawn_blocking(move || {
            commit_upper(&images, &parent, &upper, &changes, req, &tmp, epoch)
        })
        .await
        .map_err(EngineError::internal)?
    }
}

/// The shell script of a shell-form RUN: a lone `<<EOF` runs the body as the script, other
/// heredocs stay shell heredocs (the line with its bodies is valid `sh` input).
pub(super) fn run_script(cmd: &str, heredocs: &[Heredoc]) -> String {
    if heredocs.is_empty() {
        return cmd.to_string();
    }
    let lone = cmd.trim().trim_start_matches("<<").trim_start_matches('-');
    let lone = lone.trim_matches(|c| c == '"' || c == '\'');
    if heredocs.len() == 1 && lone == heredocs[0].name {
        return heredocs[0].content.clone();
    }
    let mut s = cmd.to_string();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_heredoc_scripts() {
        let h = Heredoc {
            name: "EOF".into(),
            content: "echo a\necho b\n".into(),
            expand: true,
            strip_tabs: false,
        };
        assert_eq!(
            run_script("<<EOF", std::slice::from_ref(&h)),
            "echo a\necho b\n"
        );
        assert_eq!(
            run_script("cat <<EOF", &[h]),
            "cat <<EOF\necho a\necho b\nEOF\n"
        );
    }
}
