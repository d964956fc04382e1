//! Independent stages build at once. Every planned stage is a task started with the build; a
//! task waits only where its stage reads an earlier one (`FROM`, `COPY --from`,
//! `RUN --mount=…,from=`), so a stage's work starts as soon as what it reads is built. The
//! progress stream stays the sequential build's, byte for byte:
//! - each stage writes to its own transcript; the printer streams the transcripts in Dockerfile
//!   order, the current one live, a later one once every earlier stage has printed;
//! - the first stage in order to fail gives the build's error: the stages after it are
//!   cancelled (a running RUN container is removed) and awaited, the ones before it finish;
//! - a step two stages share (one cache key) runs once, the other stage waiting for it and
//!   then finding it cached. The sequential build runs it in the earlier stage and finds it in
//!   the cache in the later one; when the later stage ran it, the two stages' lines for the
//!   step trade places, before either is printed.

use super::*;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{watch, Notify};

const USING_CACHE: &str = " ---> Using cache\n";

/// A build: its planned stages run as tasks, their output printed in order.
pub(in crate::build) struct Build {
    engine: Arc<Engine>,
    opts: Arc<BuildOptions>,
    ctx: Arc<Context>,
    df: Arc<Dockerfile>,
    stages: Vec<usize>,
    tx: mpsc::Sender<BuildEvent>,
}

impl Build {
    pub(in crate::build) fn new(
        engine: Arc<Engine>,
        opts: BuildOptions,
        ctx: Context,
        df: Dockerfile,
        stages: Vec<usize>,
        tx: mpsc::Sender<BuildEvent>,
    ) -> Build {
        Build {
            engine,
            opts: Arc::new(opts),
            ctx: Arc::new(ctx),
            df: Arc::new(df),
            stages,
            tx,
        }
    }

    async fn say(&self, s: String) {
        if !self.opts.quiet {
            let _ = self.tx.send(BuildEvent::Stream(s)).await;
        }
    }

    /// Runs every planned stage; returns the target's image once every stage task has ended.
    pub(in crate::build) async fn run(self) -> Result<Image> {
        let mut used_args = HashSet::new();
        let globals = Arc::new(global_vars(&self.df, &self.opts, &mut used_args)?);
        let total = self
            .stages
            .iter()
            .map(|i| 1 + self.df.stages[*i].instructions.len())
            .sum::<usize>()
            + self.df.global_args.len()
            + self.opts.labels.len();
        if let Some(text) = parse_warnings(&self.df) {
            self.say(text).await;
        }
        // ARGs before the first FROM are steps too, with nothing to show (dockerd's metaArgs).
        let mut step = 0;
        for ins in &self.df.global_args {
            step += 1;
            self.say(format!("Step {step}/{total} : {}\n", ins.original))
                .await;
        }
        let (done, built): (Vec<_>, Vec<_>) =
            self.stages.iter().map(|_| watch::channel(None)).unzip();
        let shared = Arc::new(Shared {
            stages: self.stages.clone(),
            total,
            quiet: self.opts.quiet,
            built,
            transcripts: self.stages.iter().map(|_| Transcript::default()).collect(),
            failed: watch::channel(usize::MAX).0,
            steps: Mutex::default(),
            cache_from: tokio::sync::Mutex::new(self.opts.cache_from.clone()),
        });
        let mut tasks = Vec::new();
        for (order, done) in done.into_iter().enumerate() {
            let stage = Builder {
                engine: self.engine.clone(),
                opts: self.opts.clone(),
                ctx: self.ctx.clone(),
                df: self.df.clone(),
                build: shared.clone(),
                order,
                step,
                used_args: HashSet::new(),
            };
            step += 1 + self.df.stages[self.stages[order]].instructions.len();
            tasks.push(tokio::spawn(stage.build_stage(globals.clone(), done)));
        }
        let mut result = Ok(None);
        for (order, task) in tasks.into_iter().enumerate() {
            if result.is_ok() {
                shared.transcripts[order].print(&self.tx).await;
            }
            let outcome = task.await.map_err(EngineError::internal).and_then(|r| r);
            match (outcome, &mut result) {
                (Ok((img, used)), Ok(last)) => {
                    used_args.extend(used);
                    *last = Some(img);
                }
                (Err(e), Ok(_)) => {
                    shared.fail(order);
                    result = Err(e);
                }
                // After the first failure the later stages are only awaited: the sequential
                // build would not have run them.
                (_, Err(_)) => {}
            }
        }
        let img = result?.ok_or_else(|| bad("no stage to build"))?;
        let mut unused: Vec<&str> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !is_proxy_arg(k))
            .filter(|k| !reproducible::is_builder_arg(k))
            .map(|k| k.as_str())
            .collect();
        if !unused.is_empty() {
            unused.sort();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ))
            .await;
        }
        Ok(img)
    }
}

/// The values of the ARGs before the first FROM.
fn global_vars(
    df: &Dockerfile,
    opts: &BuildOptions,
    used_args: &mut HashSet<String>,
) -> Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    for ins in &df.global_args {
        if let Kind::Arg(list) = &ins.kind {
            for (k, default) in list {
                used_args.insert(k.clone());
                let vars = m.clone();
                let v = match build_arg(opts, k) {
                    Some(Some(v)) => Some(v),
                    _ => default
                        .as_deref()
                        .map(|d| expand(d, df.directives.escape, &vars))
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

/// What the stage tasks of one build share.
pub(super) struct Shared {
    /// The planned stages (indexes in the Dockerfile); a stage's position here is its `order`.
    pub stages: Vec<usize>,
    /// The number of steps, for `Step N/M`.
    pub total: usize,
    quiet: bool,
    /// Each stage's image once built; a stage that fails drops its sender.
    built: Vec<watch::Receiver<Option<Image>>>,
    transcripts: Vec<Transcript>,
    /// The order of the earliest stage that failed (`usize::MAX`: none); the stages after it
    /// stop.
    failed: watch::Sender<usize>,
    /// The steps executed in this build, by cache key.
    steps: Mutex<HashMap<String, StepState>>,
    /// The `--cache-from` sources still in play (narrowed by the first restored step).
    pub cache_from: tokio::sync::Mutex<Vec<String>>,
}

enum StepState {
    /// A stage is executing the step; the receiver sees its claim dropped.
    Running(watch::Receiver<()>),
    /// The stage at `order` executed it: its lines for the step are `piece` of its transcript.
    Ran { order: usize, piece: usize },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cancelled() -> EngineError {
    EngineError::Internal("build stage cancelled: an earlier stage failed".into())
}

impl Shared {
    fn fail(&self, order: usize) {
        self.failed.send_if_modified(|f| {
            let earlier = order < *f;
            if earlier {
                *f = order;
            }
            earlier
        });
    }

    fn say(&self, order: usize, line: String) {
        self.say_event(order, BuildEvent::Stream(line));
    }

    fn say_event(&self, order: usize, e: BuildEvent) {
        if !self.quiet {
            self.transcripts[order].push_event(e);
        }
    }

    /// The step `key` for the stage at `order` to execute, its lines from now on a piece of
    /// its own; or, when another stage is executing it, what to wait on.
    fn claim(
        self: &Arc<Self>,
        key: &str,
        order: usize,
    ) -> std::result::Result<StepClaim, watch::Receiver<()>> {
        let mut steps = lock(&self.steps);
        if let Some(StepState::Running(running)) = steps.get(key) {
            return Err(running.clone());
        }
        let (tx, rx) = watch::channel(());
        steps.insert(key.to_string(), StepState::Running(rx));
        Ok(StepClaim {
            build: self.clone(),
            key: key.to_string(),
            order,
            piece: self.transcripts[order].piece(),
            _running: tx,
            ran: false,
        })
    }

    /// The stage at `order` found step `key` cached. If a later stage ran it in this build
    /// and has not printed yet, the sequential build would have run it here: this stage
    /// takes that stage's lines for the step, which says ` ---> Using cache` instead.
    fn reuse(&self, key: &str, order: usize) {
        if self.quiet {
            return;
        }
        let mut steps = lock(&self.steps);
        if let Some(&StepState::Ran {
            order: ran_by,
            piece,
        }) = steps.get(key)
        {
            if ran_by > order {
                let using = vec![BuildEvent::Stream(USING_CACHE.to_string())];
                if let Some(lines) = self.transcripts[ran_by].replace(piece, using) {
                    tracing::debug!(key, from = ran_by, to = order, "build: a step's lines move");
                    let t = &self.transcripts[order];
                    let mine = t.piece();
                    for l in lines {
                        t.push_event(l);
                    }
                    t.piece();
                    steps.insert(key.to_string(), StepState::Ran { order, piece: mine });
                    return;
                }
            }
        }
        self.transcripts[order].push(USING_CACHE.to_string());
    }
}

/// A stage's claim on executing a step; dropped unfinished (the step failed), it lets a
/// stage waiting for the same step execute it.
pub(super) struct StepClaim {
    build: Arc<Shared>,
    key: String,
    order: usize,
    piece: usize,
    _running: watch::Sender<()>,
    ran: bool,
}

impl StepClaim {
    /// The step is executed and cached: its lines so far are the piece another stage may
    /// take over (see `Shared::reuse`).
    pub(super) fn ran(mut self) {
        self.build.transcripts[self.order].piece();
        let ran = StepState::Ran {
            order: self.order,
            piece: self.piece,
        };
        lock(&self.build.steps).insert(self.key.clone(), ran);
        self.ran = true;
    }
}

impl Drop for StepClaim {
    fn drop(&mut self) {
        if !self.ran {
            let mut steps = lock(&self.build.steps);
            if let Some(StepState::Running(_)) = steps.get(&self.key) {
                steps.remove(&self.key);
            }
        }
    }
}

/// One stage's part of the progress stream, in pieces: a step's lines can move to an earlier
/// stage while the printer has not reached them.
#[derive(Default)]
struct Transcript {
    state: Mutex<Pieces>,
    wake: Notify,
}

#[derive(Default)]
struct Pieces {
    /// The lines (and a pull's progress messages) not printed yet, in pieces.
    pieces: Vec<Vec<BuildEvent>>,
    /// The piece the printer has reached (the ones before it are printed).
    read: Option<usize>,
    /// The stage has ended: nothing more comes.
    closed: bool,
}

impl Transcript {
    fn push(&self, line: String) {
        self.push_event(BuildEvent::Stream(line));
    }

    fn push_event(&self, e: BuildEvent) {
        let mut s = lock(&self.state);
        match s.pieces.last_mut() {
            Some(p) => p.push(e),
            None => s.pieces.push(vec![e]),
        }
        drop(s);
        self.wake.notify_one();
    }

    /// Starts a new piece; the lines pushed from now on go to it.
    fn piece(&self) -> usize {
        let mut s = lock(&self.state);
        s.pieces.push(Vec::new());
        s.pieces.len() - 1
    }

    /// Replaces piece `p`, if the printer has not reached it; returns what it held.
    fn replace(&self, p: usize, with: Vec<BuildEvent>) -> Option<Vec<BuildEvent>> {
        let mut s = lock(&self.state);
        if s.read.is_some_and(|r| r >= p) || p >= s.pieces.len() {
            return None;
        }
        Some(std::mem::replace(&mut s.pieces[p], with))
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }

    /// The lines not printed yet (taken out), and whether the stage has ended.
    fn unread(&self) -> (Vec<BuildEvent>, bool) {
        let mut s = lock(&self.state);
        let mut out = Vec::new();
        if let Some(last) = s.pieces.len().checked_sub(1) {
            for p in s.read.unwrap_or(0)..=last {
                out.append(&mut s.pieces[p]);
            }
            s.read = Some(last);
        }
        (out, s.closed)
    }

    /// Streams the transcript until the stage ends.
    async fn print(&self, tx: &mpsc::Sender<BuildEvent>) {
        loop {
            let (lines, closed) = self.unread();
            for l in lines {
                // A client gone away is not the build's failure: it runs to its end.
                let _ = tx.send(l).await;
            }
            if closed {
                return;
            }
            self.wake.notified().await;
        }
    }
}

impl Builder {
    /// The stage task: its image and the build args it read.
    async fn build_stage(
        mut self,
        globals: Arc<HashMap<String, String>>,
        done: watch::Sender<Option<Image>>,
    ) -> Result<(Image, HashSet<String>)> {
        let index = self.build.stages[self.order];
        let is_target = self.order + 1 == self.build.stages.len();
        match self.run_stage(index, &globals, is_target).await {
            Ok(img) => {
                done.send_replace(Some(img.clone()));
                Ok((img, std::mem::take(&mut self.used_args)))
            }
            Err(e) => {
                self.build.fail(self.order);
                Err(e)
            }
        }
    }

    pub(super) fn say_line(&self, line: String) {
        self.build.say(self.order, line);
    }

    /// A message that is not a line of text (a base image pull's progress).
    pub(super) fn say_event(&self, e: BuildEvent) {
        self.build.say_event(self.order, e);
    }

    /// An error once an earlier stage has failed: the sequential build would not get here.
    pub(super) fn check_cancelled(&self) -> Result<()> {
        if *self.build.failed.borrow() < self.order {
            return Err(cancelled());
        }
        Ok(())
    }

    /// Awaits `work` unless an earlier stage fails first; `work` is then dropped, so it must
    /// leave nothing behind when dropped at an await point.
    pub(super) async fn or_cancelled<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let mut failed = self.build.failed.subscribe();
        let me = self.order;
        tokio::select! {
            biased;
            Ok(_) = failed.wait_for(|f| *f < me) => Err(cancelled()),
            r = work => r,
        }
    }

    /// The image of the planned stage at `order`, once built. Only an earlier stage can be
    /// read (as in the sequential build, where the others are not built yet).
    pub(super) async fn stage_image(&self, order: usize, name: &str) -> Result<Image> {
        let not_built = bad(format!("stage {name} was not built"));
        if order >= self.order {
            return Err(not_built);
        }
        let mut built = self.build.built[order].clone();
        self.or_cancelled(async move {
            match built.wait_for(Option::is_some).await {
                Ok(img) => img.clone().ok_or(not_built),
                // The stage failed: its own error is the one reported.
                Err(_) => Err(not_built),
            }
        })
        .await
    }

    /// Step `key`, not cached: this stage's to execute, unless another stage is executing it;
    /// then None once that one is done (the caller looks the cache up again).
    pub(super) async fn claim_step(&self, key: &str) -> Result<Option<StepClaim>> {
        match self.build.claim(key, self.order) {
            Ok(claim) => Ok(Some(claim)),
            Err(mut running) => {
                self.or_cancelled(async move {
                    // Never sent on: it ends when the claim is dropped.
                    let _ = running.changed().await;
                    Ok(None)
                })
                .await
            }
        }
    }

    /// Prints that step `key` was cached (see `Shared::reuse`).
    pub(super) fn reuse_step(&self, key: &str) {
        self.build.reuse(key, self.order);
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        // Also on a panic: the printer waits for this.
        self.build.transcripts[self.order].close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<BuildEvent> {
        v.iter()
            .map(|s| BuildEvent::Stream(s.to_string()))
            .collect()
    }

    fn concat(events: Vec<BuildEvent>) -> String {
        events
            .into_iter()
            .map(|e| match e {
                BuildEvent::Stream(s) => s,
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn shared(n: usize) -> Arc<Shared> {
        let (_, built): (Vec<_>, Vec<_>) = (0..n).map(|_| watch::channel(None)).unzip();
        Arc::new(Shared {
            stages: (0..n).collect(),
            total: 0,
            quiet: false,
            built,
            transcripts: (0..n).map(|_| Transcript::default()).collect(),
            failed: watch::channel(usize::MAX).0,
            steps: Mutex::default(),
            cache_from: Default::default(),
        })
    }

    #[test]
    fn transcript_reads_across_pieces_and_replaces_only_unread_ones() {
        let t = Transcript::default();
        t.push("a\n".into());
        let p = t.piece();
        t.push("b\n".into());
        assert_eq!(t.unread(), (lines(&["a\n", "b\n"]), false));
        assert_eq!(t.replace(p, lines(&["x\n"])), None, "already printed");
        let q = t.piece();
        t.push("c\n".into());
        assert_eq!(t.replace(q, lines(&["u\n"])), Some(lines(&["c\n"])));
        t.piece();
        t.push("d\n".into());
        t.close();
        assert_eq!(t.unread(), (lines(&["u\n", "d\n"]), true));
        assert_eq!(t.unread(), (Vec::new(), true));
    }

    /// A step stage 2 ran and stages 1 then 0 found cached: the sequential build runs it in
    /// stage 0, the others print ` ---> Using cache`.
    #[test]
    fn a_step_a_later_stage_ran_moves_to_the_earliest_stage_using_it() {
        let b = shared(3);
        b.say(2, "Step 9/9 : RUN x\n".into());
        let claim = b.claim("k", 2).ok().unwrap();
        assert!(b.claim("k", 1).is_err(), "one stage executes a step");
        b.say(2, " ---> Running in c\n".into());
        b.say(2, "out\n".into());
        claim.ran();
        b.say(2, " ---> i\n".into());
        for order in [1, 0] {
            b.say(order, format!("Step {order}/9 : RUN x\n"));
            b.reuse("k", order);
            b.say(order, " ---> i\n".into());
        }
        let text = |o: usize| concat(b.transcripts[o].unread().0);
        assert_eq!(
            text(0),
            "Step 0/9 : RUN x\n ---> Running in c\nout\n ---> i\n"
        );
        assert_eq!(text(1), "Step 1/9 : RUN x\n ---> Using cache\n ---> i\n");
        assert_eq!(text(2), "Step 9/9 : RUN x\n ---> Using cache\n ---> i\n");
    }

    #[test]
    fn a_failed_claim_lets_another_stage_execute() {
        let b = shared(2);
        let claim = b.claim("k", 1).ok().unwrap();
        let running = b.claim("k", 0).err().unwrap();
        drop(claim);
        assert!(running.has_changed().is_err(), "the waiter wakes");
        assert!(b.claim("k", 0).is_ok());
    }
}
