//! Stages and steps: each instruction of the stages the target needs, on top of the image the
//! previous step gave, printed as the legacy builder prints it. Stages that do not read each
//! other build at once (stages.rs).

use super::cache;
use super::cache_from;
use super::context::{self, Context, CopyMode, TarWriter};
use super::options::{BuildEvent, BuildOptions};
use super::reproducible;
use crate::error::{EngineError, Result};
use crate::{Engine, LogOptions, WaitCondition};
use berth_build::dockerfile::{
    Command, Dockerfile, Healthcheck, Heredoc, Instruction, Kind, Warning,
};
use berth_build::expand::{expand_word, expand_words};
use berth_image::config::{ContainerConfig, History};
use berth_image::{CommitRequest, Image};
use berth_store::inroot::{mkdir_all_in_root, open_in_root, open_root};
use berth_store::ImageRecord;
use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use rustix::fs::OFlags;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

mod config;
mod copy;
mod fetch;
mod mounts;
mod run;
mod stages;

use config::{command_argv, go_q, go_v, healthcheck, healthcheck_override_note};
use copy::LayerWrite;
use run::run_script;
pub(super) use stages::Build;

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// A container ID for a step that needs no container (see `finish_step`).
fn phantom_container_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

fn stage_name(i: &Instruction) -> Option<&str> {
    match &i.kind {
        Kind::From { name, .. } => name.as_deref(),
        _ => None,
    }
}

/// Which stages to build, in order: the target and what it reads (`FROM <stage>`,
/// `COPY --from=<stage>`), nothing else.
pub(super) fn plan(df: &Dockerfile, target: Option<&str>) -> Result<Vec<usize>> {
    let last = df
        .stages
        .len()
        .checked_sub(1)
        .ok_or_else(|| bad("the Dockerfile (Dockerfile) cannot be empty"))?;
    let target = match target.filter(|t| !t.is_empty()) {
        None => last,
        Some(t) => df
            .stages
            .iter()
            .position(|s| stage_name(&s.from) == Some(&t.to_lowercase()))
            .ok_or_else(|| bad(format!("failed to reach build target {t} in Dockerfile")))?,
    };
    let find = |name: &str, before: usize| -> Option<usize> {
        let lower = name.to_lowercase();
        df.stages[..before]
            .iter()
            .position(|s| stage_name(&s.from) == Some(&lower))
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    };
    let mut need = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut need[i], true) {
            continue;
        }
        let s = &df.stages[i];
        if let Kind::From { image, .. } = &s.from.kind {
            if let Some(j) = find(image, i) {
                todo.push(j);
            }
        }
        for ins in &s.instructions {
            for (k, v) in &ins.flags {
                let from = match (k.as_str(), v.as_deref()) {
                    ("from", Some(f)) => Some(f),
                    ("mount", Some(m)) => mounts::mount_from(m),
                    _ => None,
                };
                if let Some(j) = from.and_then(|f| find(f, i)) {
                    todo.push(j);
                }
            }
        }
    }
    Ok((0..=target).filter(|i| need[*i]).collect())
}

/// The state of the stage being built.
struct Stage {
    image: Image,
    config: ContainerConfig,
    author: String,
    /// Declared ARGs with a value, in declaration order.
    args: Vec<(String, String)>,
    /// The predefined proxy args given a value with --build-arg: every RUN sees them,
    /// declared or not.
    proxies: Vec<(String, String)>,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl Stage {
    /// What a word is expanded with (dockerd: the config's env, then the allowed build args,
    /// the proxy ones included).
    fn vars(&self) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = self.proxies.iter().cloned().collect();
        m.extend(self.args.iter().cloned());
        for e in &self.config.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn shell(&self) -> Vec<String> {
        shell_or_default(&self.config.shell)
    }

    fn nop(&self, text: &str) -> String {
        format!("{} #(nop) {text}", self.shell().join(" "))
    }

    /// Build args a RUN sees: declared ones and the proxy ones, not shadowed by ENV, sorted
    /// (dockerd's order).
    fn run_args(&self) -> Vec<(String, String)> {
        let env: HashSet<&str> = self
            .config
            .env
            .iter()
            .map(|e| e.split('=').next().unwrap_or(e))
            .collect();
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in self.proxies.iter().chain(&self.args) {
            if !env.contains(k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
        m.into_iter().collect()
    }

    /// Whether a RUN's history (and cache key) names this build arg: a proxy arg only when
    /// the stage declared it (dockerd's IsReferencedOrNotBuiltin).
    fn arg_in_history(&self, k: &str) -> bool {
        !is_proxy_arg(k) || self.args.iter().any(|(n, _)| n == k)
    }
}

/// One stage of a build, run as its own task.
pub(super) struct Builder {
    pub engine: Arc<Engine>,
    pub opts: Arc<BuildOptions>,
    pub ctx: Arc<Context>,
    pub df: Arc<Dockerfile>,
    /// What the stages of the build share: their images, output, failures, steps in flight.
    build: Arc<stages::Shared>,
    /// This stage's position among the planned stages.
    order: usize,
    /// The number of the step last announced.
    step: usize,
    used_args: HashSet<String>,
}

/// What one step turns into.
enum Outcome {
    /// A config-only image: history text, new config.
    Config(String, Box<ContainerConfig>),
    /// A new layer written on the host: history text, the expanded instruction, the digest
    /// of what it reads, and the writer.
    Layer(String, String, LayerWrite),
    Run(mounts::RunPlan),
}

impl Builder {
    async fn say(&self, s: impl Into<String>) {
        self.say_line(s.into());
    }

    async fn announce(&mut self, original: &str) {
        self.step += 1;
        let line = format!("Step {}/{} : {original}\n", self.step, self.build.total);
        self.say(line).await;
    }

    async fn base_image(&mut self, name: &str, index: usize) -> Result<Image> {
        let lower = name.to_lowercase();
        let planned = self.build.stages.iter().copied().enumerate();
        for (order, j) in planned.filter(|(_, j)| *j < index) {
            if stage_name(&self.df.stages[j].from) == Some(&lower) || name == j.to_string() {
                return self.stage_image(order, name).await;
            }
        }
        if lower == "scratch" {
            return Ok(scratch());
        }
        // `--pull` asks for a fresh base (a FROM, not a COPY --from); otherwise a base that is
        // not here is pulled, as dockerd's legacy builder does.
        if !(self.opts.pull && index != usize::MAX) {
            match self.engine.image_by_name(name).await {
                // An image id names nothing a registry has.
                Err(EngineError::NotFound(_))
                    if !berth_image::reference::is_full_id(name)
                        && !name.starts_with("sha256:") => {}
                found => return found,
            }
        }
        self.pull_base(name).await
    }

    /// Pulls a base image, its progress messages going into the build's stream.
    async fn pull_base(&self, name: &str) -> Result<Image> {
        use crate::registry::{ProgressSink, PullRequest};
        let reference = berth_image::Reference::parse_normalized(name)?.with_default_tag();
        let req = PullRequest {
            creds: self.opts.registry_auths.for_domain(reference.domain()),
            reference,
            platform: self.opts.platform.clone(),
        };
        let (sink, mut rx) = ProgressSink::channel(256);
        let pull = async move {
            let res = self.engine.pull_image(req, &sink).await;
            drop(sink);
            res
        };
        let forward = async {
            while let Some(m) = rx.recv().await {
                self.say_event(BuildEvent::Progress(m));
            }
        };
        let (res, ()) = tokio::join!(pull, forward);
        res
    }

    async fn run_stage(
        &mut self,
        index: usize,
        globals: &HashMap<String, String>,
        is_target: bool,
    ) -> Result<Image> {
        let stage = self.df.stages[index].clone();
        self.announce(&stage.from.original).await;
        let Kind::From { image, .. } = &stage.from.kind else {
            return Err(bad("a stage must start with FROM"));
        };
        let name = expand(image, self.df.directives.escape, globals)?;
        let base = self.base_image(&name, index).await?;
        let id_line = if base.layers.is_empty() && base.config.history.is_empty() {
            " ---> \n".to_string()
        } else {
            format!(" ---> {}\n", short(base.id.as_str()))
        };
        self.say(id_line).await;
        let mut config = base.config.config.clone().unwrap_or_default();
        let triggers = std::mem::take(&mut config.on_build);
        // dockerd's dispatchFrom: a base without PATH builds with (and keeps) the default one.
        if !config.env.iter().any(|e| e.starts_with("PATH=")) {
            config
                .env
                .push(berth_runtime::spec::DEFAULT_PATH_ENV.to_string());
        }
        let mut st = Stage {
            author: base.config.author.clone().unwrap_or_default(),
            image: base,
            config,
            args: Vec::new(),
            proxies: proxy_args(&self.opts),
            cmd_set: false,
        };
        if !triggers.is_empty() {
            self.say(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ))
            .await;
            for t in &triggers {
                let df = berth_build::dockerfile::parse(&format!("FROM scratch\n{t}\n"))
                    .map_err(|e| bad(format!("invalid ONBUILD trigger {t:?}: {}", e.message)))?;
                for ins in df.stages.into_iter().flat_map(|s| s.instructions) {
                    self.step_in(&mut st, &ins, globals).await?;
                }
            }
        }
        for ins in &stage.instructions {
            self.announce(&ins.original).await;
            self.step_in(&mut st, ins, globals).await?;
        }
        if is_target {
            // dockerd 20.10 adds one `LABEL k=v` step per --label, sorted, to the target.
            let mut labels: Vec<(String, String)> = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            for (k, v) in labels {
                let text = format!("LABEL {k}={v}");
                self.announce(&text).await;
                st.config.labels.insert(k, v);
                let created_by = st.nop(&format!(" {text}"));
                let cfg = st.config.clone();
                self.finish_step(&mut st, Outcome::Config(created_by, Box::new(cfg)))
                    .await?;
            }
        }
        Ok(st.image)
    }

    async fn step_in(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        globals: &HashMap<String, String>,
    ) -> Result<()> {
        self.check_cancelled()?;
        let outcome = self.dispatch(st, ins, globals).await?;
        self.finish_step(st, outcome).await
    }

    /// Looks the step up in the cache, else executes it; prints the resulting image.
    async fn finish_step(&mut self, st: &mut Stage, outcome: Outcome) -> Result<()> {
        let parent = st.image.id.to_string();
        let (text, digest) = match &outcome {
            Outcome::Config(t, c) => (
                t.clone(),
                serde_json::to_string(c).map_err(EngineError::internal)?,
            ),
            Outcome::Layer(t, expanded, _) => (t.clone(), expanded.clone()),
            Outcome::Run(plan) => (
                self.run_created_by(st, &plan.argv),
                self.run_flags_digest(plan).await?,
            ),
        };
        let key = cache::key(&parent, &text, &digest);
        let key = reproducible::cache_key(key, &self.opts);
        let claim = loop {
            if self.opts.no_cache {
                break None;
            }
            let mut hit = self.engine.cache_lookup(&key).await?;
            // --cache-from compares history texts: only for steps whose key is their text.
            if hit.is_none()
                && !self.opts.cache_from.is_empty()
                && (digest.is_empty() || !matches!(outcome, Outcome::Run(_)))
            {
                let config = if let Outcome::Config(_, c) = &outcome {
                    c
                } else {
                    &st.config
                };
                let step = cache_from::FromStep {
                    parent: &st.image,
                    created_by: &text,
                    config,
                    author: &st.author,
                    key: &key,
                };
                let mut sources = self.build.cache_from.lock().await;
                hit = self.engine.cache_from_lookup(&mut sources, step).await?;
            }
            if let Some(img) = hit {
                self.reuse_step(&key);
                self.adopt(st, img).await;
                return Ok(());
            }
            // Another stage executing the same step has it cached once done.
            if let Some(claim) = self.claim_step(&key).await? {
                break Some(claim);
            }
        };
        // dockerd runs metadata steps and WORKDIR in a container it creates (never starts)
        // and removes; Berth writes their result directly, and prints the same lines.
        let phantom = match &outcome {
            Outcome::Config(..) | Outcome::Layer(_, _, LayerWrite::Mkdir(_)) => {
                let id = phantom_container_id();
                self.say(format!(" ---> Running in {}\n", short(&id))).await;
                Some(id)
            }
            _ => None,
        };
        let img = match outcome {
            Outcome::Config(text, cfg) => {
                st.config = *cfg;
                self.commit_config(st, text).await?
            }
            Outcome::Layer(text, _, write) => self.commit_write(st, text, write).await?,
            Outcome::Run(plan) => self.run_step(st, plan, text).await?,
        };
        if let Some(id) = phantom.filter(|_| self.opts.remove || self.opts.force_remove) {
            self.say(format!("Removing intermediate container {}\n", short(&id)))
                .await;
        }
        let img = self.engine.reproducible_image(img, &self.opts).await?;
        self.engine.cache_store(&key, &parent, img.id.as_str())?;
        if let Some(claim) = claim {
            claim.ran();
        }
        self.adopt(st, img).await;
        Ok(())
    }

    async fn adopt(&self, st: &mut Stage, img: Image) {
        st.config = img.config.config.clone().unwrap_or_default();
        st.image = img;
        self.say(format!(" ---> {}\n", short(st.image.id.as_str())))
            .await;
    }

    async fn dispatch(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        globals: &HashMap<String, String>,
    ) -> Result<Outcome> {
        let esc = self.df.directives.escape;
        let vars = st.vars();
        let ex = |w: &str| expand(w, esc, &vars);
        let mut cfg = Box::new(st.config.clone());
        let sh = st.shell().join(" ");
        let nop = |t: String| format!("{sh} #(nop) {t}");
        Ok(match &ins.kind {
            Kind::From { .. } => return Err(bad("unexpected FROM")),
            Kind::Arg(list) => {
                let mut text = Vec::new();
                for (k, default) in list {
                    self.used_args.insert(k.clone());
                    let v = match build_arg(&self.opts, k) {
                        Some(Some(v)) => Some(v),
                        _ => match default {
                            Some(d) => Some(ex(d)?),
                            None => globals.get(k).cloned(),
                        },
                    };
                    st.args.retain(|(n, _)| n != k);
                    if let Some(v) = v {
                        st.args.push((k.clone(), v));
                    }
                    // History shows the Dockerfile's default, not a --build-arg value.
                    text.push(match default {
                        Some(d) => format!("{k}={}", ex(d)?),
                        None => k.clone(),
                    });
                }
                Outcome::Config(nop(format!(" ARG {}", text.join(" "))), cfg)
            }
            Kind::Env(pairs) => {
                // dockerd expands the whole instruction before applying it: `ENV X=1 Y=$X`
                // gives Y the X from before this line.
                let mut text = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (ex(k)?, ex(v)?);
                    crate::container::create::set_env(&mut cfg.env, format!("{k}={v}"));
                    text.push(format!("{k}={v}"));
                }
                Outcome::Config(nop(format!(" ENV {}", text.join(" "))), cfg)
            }
            Kind::Label(pairs) => {
                let mut text = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (ex(k)?, ex(v)?);
                    text.push(format!("{k}={v}"));
                    cfg.labels.insert(k, v);
                }
                Outcome::Config(nop(format!(" LABEL {}", text.join(" "))), cfg)
            }
            Kind::Maintainer(m) => {
                st.author = m.clone();
                Outcome::Config(nop(format!(" MAINTAINER {m}")), cfg)
            }
            Kind::Cmd(c) => {
                cfg.cmd = Some(command_argv(c, st));
                st.cmd_set = true;
                let t = go_q(cfg.cmd.as_deref().unwrap_or_default());
                Outcome::Config(nop(format!(" CMD {t}")), cfg)
            }
            Kind::Entrypoint(c) => {
                cfg.entrypoint = Some(command_argv(c, st));
                if !st.cmd_set {
                    cfg.cmd = None;
                }
                let t = go_q(cfg.entrypoint.as_deref().unwrap_or_default());
                Outcome::Config(nop(format!(" ENTRYPOINT {t}")), cfg)
            }
            Kind::Shell(v) => {
                // dockerd's nop comment already runs under the new shell.
                cfg.shell = v.clone();
                let text = format!(
                    "{} #(nop)  SHELL {}",
                    shell_or_default(v).join(" "),
                    go_v(v)
                );
                Outcome::Config(text, cfg)
            }
            Kind::Expose(ports) => {
                let mut text = Vec::new();
                for p in ports {
                    for p in words(p, esc, &vars)? {
                        for key in port_keys(&p)? {
                            cfg.exposed_ports.insert(key, serde_json::json!({}));
                        }
                        text.push(p);
                    }
                }
                // dockerd's history has the ports as written, sorted as its parser leaves them.
                text.sort();
                Outcome::Config(nop(format!(" EXPOSE {}", text.join(" "))), cfg)
            }
            Kind::Volume(list) => {
                let mut text = Vec::new();
                for v in list {
                    let v = ex(v)?;
                    if v.is_empty() {
                        return Err(bad("VOLUME specified can not be an empty string"));
                    }
                    text.push(v.clone());
                    cfg.volumes.insert(v, serde_json::json!({}));
                }
                Outcome::Config(nop(format!(" VOLUME {}", go_v(&text))), cfg)
            }
            Kind::User(u) => {
                cfg.user = ex(u)?;
                Outcome::Config(nop(format!(" USER {}", cfg.user)), cfg)
            }
            Kind::Stopsignal(s) => {
                cfg.stop_signal = ex(s)?;
                Outcome::Config(nop(format!(" STOPSIGNAL {}", cfg.stop_signal)), cfg)
            }
            Kind::Onbuild(inner) => {
                cfg.on_build.push(inner.original.clone());
                Outcome::Config(nop(format!(" ONBUILD {}", inner.original)), cfg)
            }
            Kind::Healthcheck(h) => {
                if let Some(note) = healthcheck_override_note(st.config.healthcheck.as_ref()) {
                    self.say(note).await;
                }
                let mut v = healthcheck(h, &ins.flags)?;
                // The history text is taken before the parent's fields are merged in.
                let text = format!(" HEALTHCHECK {v}");
                if let Some(prev) = &st.config.healthcheck {
                    config::inherit_healthcheck(&mut v, prev);
                }
                cfg.healthcheck = Some(v);
                Outcome::Config(nop(text), cfg)
            }
            Kind::Workdir(w) => {
                let w = ex(w)?;
                let dir = if w.starts_with('/') {
                    w
                } else {
                    let base = if cfg.working_dir.is_empty() {
                        "/".to_string()
                    } else {
                        cfg.working_dir.clone()
                    };
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                let dir = format!("/{}", context::clean(&dir).unwrap_or_default());
                cfg.working_dir = dir.clone();
                st.config = *cfg;
                let text = st.nop(&format!("WORKDIR {dir}"));
                Outcome::Layer(text.clone(), text, LayerWrite::Mkdir(dir))
            }
            Kind::Run { command, heredocs } => {
                let argv = match command {
                    Command::Exec(v) => v.clone(),
                    Command::Shell(s) => {
                        let mut a = st.shell();
                        a.push(run_script(s, heredocs));
                        a
                    }
                };
                Outcome::Run(mounts::run_plan(argv, &ins.flags, esc, &vars)?)
            }
            Kind::Copy {
                sources,
                dest,
                heredocs,
            } => {
                self.copy(st, ins, "COPY", sources, dest, heredocs, false)
                    .await?
            }
            Kind::Add {
                sources,
                dest,
                heredocs,
            } => {
                self.copy(st, ins, "ADD", sources, dest, heredocs, true)
                    .await?
            }
        })
    }

    async fn commit_config(&self, st: &Stage, created_by: String) -> Result<Image> {
        let images = self.engine.images.clone();
        let parent = st.image.clone();
        let cfg = st.config.clone();
        let author = st.author.clone();
        tokio::task::spawn_blocking(move || -> Result<Image> {
            let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let mut config = parent.config.clone();
            config.created = Some(created.clone());
            config.author = Some(author).filter(|a| !a.is_empty());
            config.config = Some(cfg);
            config.history.push(History {
                created: Some(created),
                created_by: Some(created_by),
                empty_layer: true,
                ..Default::default()
            });
            let bytes = serde_json::to_vec(&config).map_err(EngineError::internal)?;
            let id = images.content().put_bytes(&bytes)?;
            let record = ImageRecord {
                id: id.clone(),
                layers: parent.layers.clone(),
                manifest_digest: None,
                size: parent.size,
                added_at: chrono::Utc::now().timestamp(),
            };
            images.db().transaction(|tx| tx.put_image(&record))?;
            Ok(images.resolve(id.as_str())?)
        })
        .await
        .map_err(EngineError::internal)?
    }

    fn commit_request(&self, st: &Stage, created_by: String, container: &str) -> CommitRequest {
        CommitRequest {
            config: st.config.clone(),
            author: st.author.clone(),
            comment: String::new(),
            created_by,
            container_id: container.to_string(),
            container_config: serde_json::to_value(&st.config).unwrap_or_default(),
            reference: None,
            // One syncfs when the build ends (build_image) rather than one per step.
            defer_sync: true,
            upper: None,
        }
    }
}

/// The config's shell, or dockerd's default when it sets none.
fn shell_or_default(shell: &[String]) -> Vec<String> {
    if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    }
}

/// `ExposedPorts` keys for one EXPOSE word (nat.ParsePortSpecs): `80` → `80/tcp`,
/// `53/UDP` → `53/udp`, a range `8000-8002` → one key per port.
fn port_keys(word: &str) -> Result<Vec<String>> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (word, "tcp".to_string()),
    };
    let invalid = || bad(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
        None => (ports.parse::<u16>(), ports.parse::<u16>()),
    };
    let (lo, hi) = (lo.map_err(|_| invalid())?, hi.map_err(|_| invalid())?);
    if hi < lo {
        return Err(invalid());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// The parser's warnings, worded as dockerd prints them before the first step.
fn parse_warnings(df: &Dockerfile) -> Option<String> {
    if df.warnings.is_empty() {
        return None;
    }
    let mut text = String::new();
    for w in &df.warnings {
        match w {
            Warning::EmptyContinuationLine { text: line, .. } => text.push_str(&format!(
                "[WARNING]: Empty continuation line found in:\n    {line}\n"
            )),
        }
    }
    text.push_str("[WARNING]: Empty continuation lines will become errors in a future release.\n");
    Some(text)
}

fn build_arg(opts: &BuildOptions, name: &str) -> Option<Option<String>> {
    opts.build_args
        .get(name)
        .map(|v| v.clone().or_else(|| std::env::var(name).ok()))
}

/// dockerd's predefined build args: usable without an ARG, never "not consumed", kept out of
/// the image config and of history. Only these spellings (`Http_Proxy` is an ordinary arg).
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn is_proxy_arg(k: &str) -> bool {
    PROXY_ARGS.contains(&k)
}

/// The proxy args --build-arg gives a value.
fn proxy_args(opts: &BuildOptions) -> Vec<(String, String)> {
    PROXY_ARGS
        .iter()
        .filter_map(|k| Some((k.to_string(), build_arg(opts, k)??)))
        .collect()
}

fn expand(w: &str, esc: char, vars: &HashMap<String, String>) -> Result<String> {
    expand_word(w, esc, &|k| vars.get(k).cloned()).map_err(bad)
}

fn words(w: &str, esc: char, vars: &HashMap<String, String>) -> Result<Vec<String>> {
    expand_words(w, esc, &|k| vars.get(k).cloned()).map_err(bad)
}

/// The empty base of `FROM scratch`.
fn scratch() -> Image {
    Image {
        id: berth_store::Digest::from_sha256_bytes(b"scratch"),
        config: berth_image::config::ImageConfig {
            architecture: berth_image::config::host_architecture().to_string(),
            os: "linux".to_string(),
            config: Some(ContainerConfig {
                env: vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ],
                ..Default::default()
            }),
            ..Default::default()
        },
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        layers: Vec::new(),
        size: 0,
        added_at: 0,
        manifest_digest: None,
    }
}

/// A throwaway overlay of `lowers` under `tmp`: its directory (removed on drop, once the
/// caller has unmounted), the upper and the mount point.
pub(super) fn scratch_overlay(
    lowers: &[PathBuf],
    tmp: &Path,
    prefix: &str,
) -> Result<(tempfile::TempDir, PathBuf, PathBuf)> {
    std::fs::create_dir_all(tmp)?;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(tmp)?;
    let (upper, work, mnt) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("mnt"),
    );
    for d in [&upper, &work, &mnt] {
        std::fs::create_dir_all(d)?;
    }
    berth_store::overlay::mount_rootfs(lowers, &upper, &work, &mnt)?;
    Ok((dir, upper, mnt))
}

/// Writes `upper` (with its `changes`) as one layer on `parent`, its times clamped to `epoch`.
fn commit_upper(
    images: &berth_image::ImageService,
    parent: &Image,
    upper: &Path,
    changes: &[berth_store::upper::Change],
    req: CommitRequest,
    tmp: &Path,
    epoch: Option<i64>,
) -> Result<Image> {
    std::fs::create_dir_all(tmp)?;
    let file = tempfile::tempfile_in(tmp)?;
    let mut file = berth_store::upper::write_layer(upper, changes, file)?;
    file.seek(SeekFrom::Start(0))?;
    if let Some(e) = epoch {
        // SOURCE_DATE_EPOCH: the same context gives the same layer digest.
        reproducible::clamp_layer(&mut file, e)?;
    }
    Ok(images.commit_layer(parent, file, req)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_keeps_only_needed_stages() {
        let df = berth_build::dockerfile::parse(
            "FROM busybox AS a\nFROM busybox AS b\nRUN x\nFROM busybox\nCOPY --from=a /x /x\n",
        )
        .unwrap();
        assert_eq!(plan(&df, None).unwrap(), vec![0, 2]);
        assert_eq!(plan(&df, Some("b")).unwrap(), vec![1]);
        assert!(plan(&df, Some("zz")).is_err());
        let df = berth_build::dockerfile::parse(
            "FROM busybox AS a\nFROM busybox AS b\nFROM busybox\nRUN --mount=target=/x,from=b true\n",
        )
        .unwrap();
        assert_eq!(plan(&df, None).unwrap(), vec![1, 2]);
    }

    #[test]
    fn proxy_args_reach_run_but_not_history_unless_declared() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut st = Stage {
            image: scratch(),
            config: ContainerConfig {
                env: vec!["no_proxy=env".into()],
                ..Default::default()
            },
            author: String::new(),
            args: vec![pair("A", "1")],
            proxies: vec![
                pair("https_proxy", "s"),
                pair("HTTP_PROXY", "p"),
                pair("no_proxy", "l"),
            ],
            cmd_set: false,
        };
        assert_eq!(
            st.run_args(),
            [
                pair("A", "1"),
                pair("HTTP_PROXY", "p"),
                pair("https_proxy", "s")
            ]
        );
        assert_eq!(st.vars().get("no_proxy").map(String::as_str), Some("env"));
        assert!(st.arg_in_history("A") && !st.arg_in_history("HTTP_PROXY"));
        st.args.push(pair("HTTP_PROXY", "declared"));
        assert!(st.arg_in_history("HTTP_PROXY"));
        assert!(is_proxy_arg("all_proxy") && !is_proxy_arg("Http_Proxy"));
    }

    #[test]
    fn empty_continuation_warning_is_dockerds() {
        let df = berth_build::dockerfile::parse("FROM a\nRUN x \\\n\n y\n").unwrap();
        assert_eq!(
            parse_warnings(&df).as_deref(),
            Some(
                "[WARNING]: Empty continuation line found in:\n    RUN x  y\n\
                 [WARNING]: Empty continuation lines will become errors in a future release.\n"
            )
        );
        let df = berth_build::dockerfile::parse("FROM a\nRUN x\n").unwrap();
        assert_eq!(parse_warnings(&df), None);
    }
}
