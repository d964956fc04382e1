//! Stages and steps: each instruction of the stages the target needs, in order, on top of the
//! image the previous step gave, printed as the legacy builder prints it.

use super::cache;
use super::context::{self, Context, CopyMode, TarWriter};
use super::options::{BuildEvent, BuildOptions};
use super::reproducible;
use crate::error::{EngineError, Result};
use crate::{Engine, LogOptions, WaitCondition};
use berth_build::dockerfile::{Command, Dockerfile, Healthcheck, Heredoc, Instruction, Kind};
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

fn bad(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidArgument(e.to_string())
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Go's `%q` of a string slice, which the legacy builder's history texts use:
/// `["sh" "-c" "x"]`.
fn go_q(v: &[String]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| serde_json::Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", parts.join(" "))
}

/// Go's `%v` of a string slice: `[a b]`.
fn go_v(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
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
            if let Some((_, Some(from))) = ins.flags.iter().find(|(k, _)| k == "from") {
                if let Some(j) = find(from, i) {
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
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl Stage {
    fn vars(&self) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = self.args.iter().cloned().collect();
        for e in &self.config.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn shell(&self) -> Vec<String> {
        if self.config.shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            self.config.shell.clone()
        }
    }

    fn nop(&self, text: &str) -> String {
        format!("{} #(nop) {text}", self.shell().join(" "))
    }

    /// Build args a RUN sees: declared ones not shadowed by ENV, sorted (dockerd's order).
    fn run_args(&self) -> Vec<(String, String)> {
        let env: HashSet<&str> = self
            .config
            .env
            .iter()
            .map(|e| e.split('=').next().unwrap_or(e))
            .collect();
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &self.args {
            if !env.contains(k.as_str()) {
                m.insert(k.clone(), v.clone());
            }
        }
        m.into_iter().collect()
    }
}

pub(super) struct Builder {
    pub engine: Arc<Engine>,
    pub opts: BuildOptions,
    pub ctx: Context,
    pub df: Dockerfile,
    pub stages: Vec<usize>,
    pub tx: mpsc::Sender<BuildEvent>,
    step: usize,
    total: usize,
    built: HashMap<usize, Image>,
    used_args: HashSet<String>,
}

/// What one step turns into.
enum Outcome {
    /// Nothing new (ARG): the current image stays.
    Same,
    /// A config-only image: history text, new config.
    Config(String, Box<ContainerConfig>),
    /// A new layer written on the host: history text, the expanded instruction, the digest
    /// of what it reads, and the writer.
    Layer(String, String, LayerWrite),
    Run(Vec<String>),
}

/// What a layer step writes into the mounted root.
enum LayerWrite {
    Mkdir(String),
    Copy(CopyPlan),
}

struct CopyPlan {
    tar: std::fs::File,
    dest_dir: String,
    chown: Option<String>,
    /// Local archives ADD unpacks into `dest_dir`.
    archives: Vec<PathBuf>,
}

impl Builder {
    pub(super) fn new(
        engine: Arc<Engine>,
        opts: BuildOptions,
        ctx: Context,
        df: Dockerfile,
        stages: Vec<usize>,
        tx: mpsc::Sender<BuildEvent>,
    ) -> Builder {
        let total = stages
            .iter()
            .map(|i| 1 + df.stages[*i].instructions.len())
            .sum::<usize>()
            + usize::from(!opts.labels.is_empty());
        Builder {
            engine,
            opts,
            ctx,
            df,
            stages,
            tx,
            step: 0,
            total,
            built: HashMap::new(),
            used_args: HashSet::new(),
        }
    }

    async fn say(&self, s: impl Into<String>) {
        if !self.opts.quiet {
            let _ = self.tx.send(BuildEvent::Stream(s.into())).await;
        }
    }

    async fn announce(&mut self, original: &str) {
        self.step += 1;
        let line = format!("Step {}/{} : {original}\n", self.step, self.total);
        self.say(line).await;
    }

    fn build_arg(&self, name: &str) -> Option<Option<String>> {
        self.opts
            .build_args
            .get(name)
            .map(|v| v.clone().or_else(|| std::env::var(name).ok()))
    }

    fn global_vars(&mut self) -> Result<HashMap<String, String>> {
        let mut m = HashMap::new();
        for ins in &self.df.global_args {
            if let Kind::Arg(list) = &ins.kind {
                for (k, default) in list {
                    self.used_args.insert(k.clone());
                    let vars = m.clone();
                    let v = match self.build_arg(k) {
                        Some(Some(v)) => Some(v),
                        _ => default
                            .as_deref()
                            .map(|d| expand(d, self.df.directives.escape, &vars))
                            .transpose()?,
                    };
                    if let Some(v) = v {
                        m.insert(k.clone(), v);
                    }
                }
            }
        }
        Ok(m)
    }

    /// Runs every planned stage; returns the target's image.
    pub(super) async fn run(mut self) -> Result<Image> {
        let globals = self.global_vars()?;
        let stages = self.stages.clone();
        let mut last = None;
        for (n, i) in stages.iter().enumerate() {
            let img = self.run_stage(*i, &globals, n + 1 == stages.len()).await?;
            self.built.insert(*i, img.clone());
            last = Some(img);
        }
        let img = last.ok_or_else(|| bad("no stage to build"))?;
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !is_proxy_arg(k))
            .filter(|k| !reproducible::is_builder_arg(k)) // build-cache hook
            .collect();
        if !unused.is_empty() {
            let mut u: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            u.sort();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                u.join(" ")
            ))
            .await;
        }
        Ok(img)
    }

    async fn base_image(&mut self, name: &str, index: usize) -> Result<Image> {
        let lower = name.to_lowercase();
        for j in self.stages.iter().copied().filter(|j| *j < index) {
            if stage_name(&self.df.stages[j].from) == Some(&lower) || name == j.to_string() {
                return self
                    .built
                    .get(&j)
                    .cloned()
                    .ok_or_else(|| bad(format!("stage {name} was not built")));
            }
        }
        if lower == "scratch" {
            return Ok(scratch());
        }
        self.engine.image_by_name(name).await.map_err(|e| match e {
            EngineError::NotFound(_) => EngineError::NotFound(format!(
                "pull access denied for {name}, repository does not exist or may require 'docker login': this engine does not pull during builds; load the image first"
            )),
            e => e,
        })
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
        let mut st = Stage {
            author: base.config.author.clone().unwrap_or_default(),
            image: base,
            config,
            args: Vec::new(),
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
        if is_target && !self.opts.labels.is_empty() {
            let mut labels: Vec<(String, String)> = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let text = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
                .collect::<Vec<_>>()
                .join(" ");
            self.announce(&format!("LABEL {text}")).await;
            for (k, v) in labels {
                st.config.labels.insert(k, v);
            }
            let created_by = st.nop(&format!(" LABEL {text}"));
            let cfg = st.config.clone();
            self.finish_step(&mut st, Outcome::Config(created_by, Box::new(cfg)))
                .await?;
        }
        Ok(st.image)
    }

    async fn step_in(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        globals: &HashMap<String, String>,
    ) -> Result<()> {
        let outcome = self.dispatch(st, ins, globals).await?;
        self.finish_step(st, outcome).await
    }

    /// Looks the step up in the cache, else executes it; prints the resulting image.
    async fn finish_step(&mut self, st: &mut Stage, outcome: Outcome) -> Result<()> {
        let parent = st.image.id.to_string();
        let (text, digest) = match &outcome {
            Outcome::Same => {
                self.say(format!(" ---> {}\n", short(&parent))).await;
                return Ok(());
            }
            Outcome::Config(t, c) => (
                t.clone(),
                serde_json::to_string(c).map_err(EngineError::internal)?,
            ),
            Outcome::Layer(t, expanded, _) => (t.clone(), expanded.clone()),
            Outcome::Run(argv) => (self.run_created_by(st, argv), String::new()),
        };
        let key = cache::key(&parent, &text, &digest);
        let key = reproducible::cache_key(key, &self.opts); // build-cache hook
        if !self.opts.no_cache {
            if let Some(img) = self.engine.cache_lookup(&key).await? {
                self.say(" ---> Using cache\n").await;
                self.adopt(st, img).await;
                return Ok(());
            }
        }
        let img = match outcome {
            Outcome::Same => unreachable!("handled above"),
            Outcome::Config(text, cfg) => {
                st.config = *cfg;
                self.commit_config(st, text).await?
            }
            Outcome::Layer(text, _, write) => self.commit_write(st, text, write).await?,
            Outcome::Run(argv) => self.run_step(st, argv, text).await?,
        };
        let img = self.engine.reproducible_image(img, &self.opts).await?; // build-cache hook
        self.engine.cache_store(&key, &parent, img.id.as_str())?;
        self.adopt(st, img).await;
        Ok(())
    }

    async fn adopt(&self, st: &mut Stage, img: Image) {
        st.config = img.config.config.clone().unwrap_or_default();
        st.image = img;
        self.say(format!(" ---> {}\n", short(st.image.id.as_str())))
            .await;
    }

    fn run_created_by(&self, st: &Stage, argv: &[String]) -> String {
        let args = st.run_args();
        let cmd = argv.join(" ");
        if args.is_empty() {
            return cmd;
        }
        let kv: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("|{} {} {cmd}", args.len(), kv.join(" "))
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
                for (k, default) in list {
                    self.used_args.insert(k.clone());
                    let v = match self.build_arg(k) {
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
                }
                Outcome::Same
            }
            Kind::Env(pairs) => {
                let mut text = Vec::new();
                let mut vars = vars.clone();
                for (k, v) in pairs {
                    let k = expand(k, esc, &vars)?;
                    let v = expand(v, esc, &vars)?;
                    cfg.env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    cfg.env.push(format!("{k}={v}"));
                    vars.insert(k.clone(), v.clone());
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
                cfg.shell = v.clone();
                Outcome::Config(nop(format!(" SHELL {}", go_v(v))), cfg)
            }
            Kind::Expose(ports) => {
                let mut text = Vec::new();
                for p in ports {
                    for p in words(p, esc, &vars)? {
                        let p = if p.contains('/') {
                            p.to_lowercase()
                        } else {
                            format!("{p}/tcp")
                        };
                        text.push(p.clone());
                        cfg.exposed_ports.insert(p, serde_json::json!({}));
                    }
                }
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
                let v = healthcheck(h, &ins.flags, st)?;
                let text = format!(" HEALTHCHECK {v}");
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
                Outcome::Run(argv)
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
        }
    }

    /// COPY/ADD/WORKDIR: the parent's layers and a fresh upper mounted for the write; the
    /// upper becomes the new layer.
    async fn commit_write(&self, st: &Stage, text: String, write: LayerWrite) -> Result<Image> {
        let images = self.engine.images.clone();
        let parent = st.image.clone();
        let req = self.commit_request(st, text, "");
        let tmp = self.engine.cfg.data_root.join("tmp");
        let epoch = reproducible::epoch(&self.opts); // build-cache hook
        tokio::task::spawn_blocking(move || -> Result<Image> {
            let lowers = images.layer_dirs(&parent)?;
            let dir = tempfile::Builder::new()
                .prefix("build-layer-")
                .tempdir_in(&tmp)?;
            let (upper, work, mnt) = (
                dir.path().join("upper"),
                dir.path().join("work"),
                dir.path().join("mnt"),
            );
            for d in [&upper, &work, &mnt] {
                std::fs::create_dir_all(d)?;
            }
            berth_store::overlay::mount_rootfs(&lowers, &upper, &work, &mnt)?;
            let res = open_root(&mnt)
                .map_err(EngineError::from)
                .and_then(|root| apply(&root, write));
            if let Err(e) = berth_store::overlay::unmount(&mnt) {
                tracing::warn!(path = %mnt.display(), "build: unmount: {e}");
            }
            res?;
            let changes = berth_store::upper::changes(&upper, &lowers, &|_| false)?;
            commit_upper(&images, &parent, &upper, &changes, req, &tmp, epoch)
        })
        .await
        .map_err(EngineError::internal)?
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        name: &str,
        sources: &[String],
        dest: &str,
        heredocs: &[Heredoc],
        is_add: bool,
    ) -> Result<Outcome> {
        let esc = self.df.directives.escape;
        let vars = st.vars();
        let flag = |f: &str| -> Result<Option<String>> {
            ins.flags
                .iter()
                .find(|(k, _)| k == f)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| expand(v, esc, &vars))
                .transpose()
        };
        let chown = flag("chown")?.filter(|c| !c.is_empty());
        let chmod = flag("chmod")?
            .filter(|c| !c.is_empty())
            .map(|c| {
                u32::from_str_radix(&c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("invalid chmod parameter: {c}")))
            })
            .transpose()?;
        let from = flag("from")?;
        let mut srcs = Vec::new();
        for s in sources {
            let s = expand(s, esc, &vars)?;
            if s.contains("://") {
                return Err(bad(format!(
                    "{name} failed: source {s} is a URL, which this engine's builder does not fetch yet"
                )));
            }
            srcs.push(s);
        }
        let mut dest = expand(dest, esc, &vars)?;
        if !dest.starts_with('/') {
            let wd = if st.config.working_dir.is_empty() {
                "/"
            } else {
                st.config.working_dir.as_str()
            };
            let keep_slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
            dest = format!("{}/{dest}", wd.trim_end_matches('/'));
            if keep_slash && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let from_image = match &from {
            Some(f) => Some(self.base_image(f, usize::MAX).await?),
            None => None,
        };
        let lowers = self.engine.images.layer_dirs(&st.image)?;
        let tmp = self.engine.cfg.data_root.join("tmp");
        let ctx_root = self.ctx.root().to_path_buf();
        let from_lowers = match &from_image {
            Some(img) => Some((img.id.to_string(), self.engine.images.layer_dirs(img)?)),
            None => None,
        };
        let docs: Vec<(String, String)> = heredocs
            .iter()
            .map(|h| {
                let body = if h.expand {
                    expand_heredoc(&h.content, esc, &vars)
                } else {
                    h.content.clone()
                };
                (h.name.clone(), body)
            })
            .collect();
        let name_s = name.to_string();
        let (plan, kind, digest) = tokio::task::spawn_blocking(move || {
            match from_lowers {
                Some((id, from_lowers)) => with_image_root(&from_lowers, &tmp, |root| {
                    plan_copy(
                        root,
                        false,
                        &srcs,
                        &docs,
                        &dest,
                        &lowers,
                        chmod,
                        is_add,
                        &tmp,
                        Some(&id),
                    )
                }),
                None => plan_copy(
                    &ctx_root, true, &srcs, &docs, &dest, &lowers, chmod, is_add, &tmp, None,
                ),
            }
            .map_err(|e| match e {
                EngineError::InvalidArgument(m) => {
                    EngineError::InvalidArgument(format!("{name_s} failed: {m}"))
                }
                e => e,
            })
        })
        .await
        .map_err(EngineError::internal)??;
        let mut flags = String::new();
        for (k, v) in &ins.flags {
            flags.push_str(&format!("--{k}={} ", v.as_deref().unwrap_or("")));
        }
        let text = st.nop(&format!(
            "{name} {flags}{kind}:{digest} in {} ",
            plan.dest_dir
        ));
        let write = LayerWrite::Copy(CopyPlan { chown, ..plan });
        Ok(Outcome::Layer(text.clone(), text, write))
    }

    async fn run_step(&self, st: &Stage, argv: Vec<String>, created_by: String) -> Result<Image> {
        let e = &self.engine;
        let mut env = st.config.env.clone();
        for (k, v) in st.run_args() {
            env.push(format!("{k}={v}"));
        }
        let host_config = HostConfig {
            network_mode: self.opts.network_mode.clone().filter(|n| !n.is_empty()),
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
            if self.opts.remove || self.opts.force_remove {
                let _ = e.remove_container(&id, true, true).await;
            }
            return Err(EngineError::Internal(format!(
                "The command '{}' returned a non-zero code: {code}",
                argv.join(" ")
            )));
        }
        let img = self.commit_container(st, &id, created_by).await;
        if self.opts.remove || self.opts.force_remove || img.is_err() {
            e.remove_container(&id, true, true).await?;
            self.say(format!(
                " ---> Removed intermediate container {}\n",
                short(&id)
            ))
            .await;
        }
        img
    }

    /// Starts the container, streams its output, returns its exit code.
    async fn run_container(&self, id: &str) -> Result<i64> {
        let e = &self.engine;
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
        while let Some(entry) = logs.recv().await {
            self.say(String::from_utf8_lossy(&entry.line).into_owned())
                .await;
        }
        e.wait_container(id, WaitCondition::NotRunning).await
    }

    async fn commit_container(&self, st: &Stage, id: &str, created_by: String) -> Result<Image> {
        let e = &self.engine;
        let changes = e.upper_changes(id, st.image.id.as_str()).await?;
        let upper = e.container_dir(id).join("upper");
        let images = e.images.clone();
        let parent = st.image.clone();
        let req = self.commit_request(st, created_by, id);
        let tmp = e.cfg.data_root.join("tmp");
        let epoch = reproducible::epoch(&self.opts); // build-cache hook
        tokio::task::spawn_blocking(move || {
            commit_upper(&images, &parent, &upper, &changes, req, &tmp, epoch)
        })
        .await
        .map_err(EngineError::internal)?
    }
}

fn is_proxy_arg(k: &str) -> bool {
    matches!(
        k.to_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    )
}

fn expand(w: &str, esc: char, vars: &HashMap<String, String>) -> Result<String> {
    expand_word(w, esc, &|k| vars.get(k).cloned()).map_err(bad)
}

fn words(w: &str, esc: char, vars: &HashMap<String, String>) -> Result<Vec<String>> {
    expand_words(w, esc, &|k| vars.get(k).cloned()).map_err(bad)
}

/// A heredoc body with `$VAR`s expanded line by line (quotes in the body are kept).
fn expand_heredoc(body: &str, esc: char, vars: &HashMap<String, String>) -> String {
    body.split_inclusive('\n')
        .map(|line| {
            let (text, nl) = match line.strip_suffix('\n') {
                Some(t) => (t, "\n"),
                None => (line, ""),
            };
            let protected = text.replace('"', "\u{1}").replace('\'', "\u{2}");
            let out = expand_word(&protected, esc, &|k| vars.get(k).cloned())
                .unwrap_or_else(|_| protected.clone());
            format!("{}{nl}", out.replace('\u{1}', "\"").replace('\u{2}', "'"))
        })
        .collect()
}

/// The shell script of a shell-form RUN: a lone `<<EOF` runs the body as the script, other
/// heredocs stay shell heredocs (the line with its bodies is valid `sh` input).
fn run_script(cmd: &str, heredocs: &[Heredoc]) -> String {
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

fn command_argv(c: &Command, st: &Stage) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut a = st.shell();
            a.push(s.clone());
            a
        }
    }
}

/// A Go duration ("30s", "1m30s", "500ms") in nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s;
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(total as i64)
}

fn healthcheck(
    h: &Healthcheck,
    flags: &[(String, Option<String>)],
    st: &Stage,
) -> Result<serde_json::Value> {
    let test = match h {
        Healthcheck::None => return Ok(serde_json::json!({"Test": ["NONE"]})),
        Healthcheck::Cmd(Command::Exec(v)) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v.iter().cloned());
            t
        }
        Healthcheck::Cmd(Command::Shell(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
    };
    let _ = st;
    let mut v = serde_json::json!({ "Test": test });
    for (k, val) in flags {
        let val = val.clone().unwrap_or_default();
        let field = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: i64 = val
                    .parse()
                    .map_err(|_| bad(format!("invalid retries value {val}")))?;
                v["Retries"] = n.into();
                continue;
            }
            other => return Err(bad(format!("unknown flag: {other}"))),
        };
        let d =
            go_duration(&val).ok_or_else(|| bad(format!("time: invalid duration \"{val}\"")))?;
        v[field] = d.into();
    }
    Ok(v)
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

/// Writes `upper` (with its `changes`) as one layer on `parent`.
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
        reproducible::clamp_layer(&mut file, e)?; // build-cache hook
    }
    Ok(images.commit_layer(parent, file, req)?)
}

/// Mounts an image's layers (with a throwaway upper) for reading, e.g. `COPY --from`.
fn with_image_root<T>(
    lowers: &[PathBuf],
    tmp: &Path,
    f: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    std::fs::create_dir_all(tmp)?;
    let dir = tempfile::Builder::new()
        .prefix("build-from-")
        .tempdir_in(tmp)?;
    let (upper, work, mnt) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("mnt"),
    );
    for d in [&upper, &work, &mnt] {
        std::fs::create_dir_all(d)?;
    }
    berth_store::overlay::mount_rootfs(lowers, &upper, &work, &mnt)?;
    let res = f(&mnt);
    if let Err(e) = berth_store::overlay::unmount(&mnt) {
        tracing::warn!(path = %mnt.display(), "build: unmount: {e}");
    }
    res
}

/// Whether `path` is a directory in the image made of `lowers` (base first).
fn dir_in_layers(lowers: &[PathBuf], path: &str) -> bool {
    let rel = context::clean(path).unwrap_or_default();
    if rel.is_empty() {
        return true;
    }
    for l in lowers.iter().rev() {
        if let Ok(md) = std::fs::metadata(l.join(&rel)) {
            return md.is_dir();
        }
        if let Ok(md) = std::fs::symlink_metadata(l.join(&rel)) {
            // A whiteout (0/0 char device) or a symlink: not a directory we can see here.
            let _ = md;
            return false;
        }
    }
    false
}

fn parent_and_base(p: &str) -> (String, String) {
    let p = p.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some((d, b)) => (
            if d.is_empty() {
                "/".into()
            } else {
                d.to_string()
            },
            b.to_string(),
        ),
        None => ("/".into(), p.to_string()),
    }
}

/// Lays the sources out for the destination as dockerd's COPY does: several sources or a
/// trailing `/` make the destination a directory; a directory source copies its contents;
/// a single file onto a path that is not an existing directory becomes that path.
#[allow(clippy::too_many_arguments)]
fn plan_copy(
    root: &Path,
    confined: bool,
    srcs: &[String],
    docs: &[(String, String)],
    dest: &str,
    lowers: &[PathBuf],
    chmod: Option<u32>,
    is_add: bool,
    tmp: &Path,
    from_id: Option<&str>,
) -> Result<(CopyPlan, &'static str, String)> {
    let mut paths = Vec::new();
    for s in srcs {
        paths.extend(context::expand_source(root, s, confined)?);
    }
    let count = paths.len() + docs.len();
    let dir_dest = dest.ends_with('/') || dest.ends_with("/.");
    if count > 1 && !dir_dest {
        return Err(bad(
            "When using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let mut w = TarWriter::new(tmp, CopyMode { chmod })?;
    if let Some(id) = from_id {
        w.note(id);
    }
    let mut archives = Vec::new();
    let mut kind = if count > 1 { "multi" } else { "file" };
    let dest_trim = if dest == "/" {
        "/"
    } else {
        dest.trim_end_matches("/.").trim_end_matches('/')
    };
    // A directory or an archive always lands in (or as) the destination directory.
    let dir_like = |rel: &String| -> Result<bool> {
        let host = context::source_path(root, rel)?;
        Ok(std::fs::metadata(&host)?.is_dir() || (is_add && context::is_archive(&host)))
    };
    let single_file_target = count == 1
        && !dir_dest
        && !dir_in_layers(lowers, dest_trim)
        && match paths.first() {
            Some(rel) => !dir_like(rel)?,
            None => true,
        };
    let dest_dir = if single_file_target {
        parent_and_base(dest_trim).0
    } else {
        dest_trim.to_string()
    };
    for rel in &paths {
        let host = context::source_path(root, rel)?;
        let md = std::fs::metadata(&host)?;
        let base = rel.rsplit('/').next().unwrap_or(rel).to_string();
        if md.is_dir() {
            if count == 1 {
                kind = "dir";
            }
            w.add(&host, "")?;
        } else if is_add && context::is_archive(&host) {
            let mut data = Vec::new();
            std::fs::File::open(&host)?.read_to_end(&mut data)?;
            w.note(&base);
            w.note(&hex::encode(sha2::Sha256::digest(&data)));
            archives.push(host);
        } else if single_file_target {
            w.add(&host, &parent_and_base(dest_trim).1)?;
        } else {
            w.add(&host, &base)?;
        }
    }
    for (name, body) in docs {
        let target = if single_file_target {
            parent_and_base(dest_trim).1
        } else {
            name.clone()
        };
        w.add_bytes(&target, body.as_bytes())?;
    }
    let st = w.finish()?;
    Ok((
        CopyPlan {
            tar: st.file,
            dest_dir,
            chown: None,
            archives,
        },
        kind,
        st.digest,
    ))
}

use sha2::Digest as _;

/// Looks a user (and group) up in the root's /etc/passwd and /etc/group.
fn resolve_chown(root: &OwnedFd, spec: &str) -> Result<(u32, u32)> {
    let read = |p: &str| -> String {
        open_in_root(root, p, OFlags::RDONLY)
            .ok()
            .and_then(|fd| {
                let mut s = String::new();
                std::fs::File::from(fd)
                    .read_to_string(&mut s)
                    .ok()
                    .map(|_| s)
            })
            .unwrap_or_default()
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, gid_field: bool| -> Option<(u32, u32)> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| {
                let id = f[2].parse().unwrap_or(0);
                let gid = if gid_field {
                    f[3].parse().unwrap_or(0)
                } else {
                    id
                };
                (id, gid)
            })
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup("/etc/passwd", user, true).ok_or_else(|| {
            bad(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("/etc/group", g, false)
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    bad(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    Ok((uid, gid))
}

/// Performs a layer step's write inside the mounted root.
fn apply(root: &OwnedFd, write: LayerWrite) -> Result<()> {
    match write {
        LayerWrite::Mkdir(dir) => {
            mkdir_all_in_root(root, &dir, false).map_err(std::io::Error::from)?;
            Ok(())
        }
        LayerWrite::Copy(mut plan) => {
            let chown = plan
                .chown
                .as_deref()
                .map(|c| resolve_chown(root, c))
                .transpose()?;
            let resolved =
                mkdir_all_in_root(root, &plan.dest_dir, false).map_err(std::io::Error::from)?;
            let open_dest = || {
                open_in_root(root, &resolved, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(|e| bad(format!("destination {}: {e}", plan.dest_dir)))
            };
            let opts = berth_store::UnpackOptions {
                chown,
                ..Default::default()
            };
            plan.tar.seek(SeekFrom::Start(0))?;
            berth_store::unpack_into(&mut tar::Archive::new(&mut plan.tar), open_dest()?, &opts)
                .map_err(bad)?;
            for a in &plan.archives {
                let check = std::fs::File::open(a)?;
                let (_, s) = berth_store::compression::decompress(check).map_err(bad)?;
                berth_store::check_archive_paths(&mut tar::Archive::new(s)).map_err(bad)?;
                let f = std::fs::File::open(a)?;
                let (_, s) = berth_store::compression::decompress(f).map_err(bad)?;
                berth_store::unpack_into(
                    &mut tar::Archive::new(s),
                    open_dest()?,
                    &berth_store::UnpackOptions::default(),
                )
                .map_err(bad)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_q(&["sh".into(), "-c".into()]), r#"["sh" "-c"]"#);
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("500ms"), Some(500_000_000));
    }

    #[test]
    fn plan_keeps_only_needed_stages() {
        let df = berth_build::dockerfile::parse(
            "FROM busybox AS a\nFROM busybox AS b\nRUN x\nFROM busybox\nCOPY --from=a /x /x\n",
        )
        .unwrap();
        assert_eq!(plan(&df, None).unwrap(), vec![0, 2]);
        assert_eq!(plan(&df, Some("b")).unwrap(), vec![1]);
        assert!(plan(&df, Some("zz")).is_err());
    }

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
