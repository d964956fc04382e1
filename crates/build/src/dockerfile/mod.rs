//! The Dockerfile grammar as BuildKit's frontend reads it: parser directives (`syntax`,
//! `escape`, `check`), comments, line continuations with the escape character, JSON (exec)
//! and shell forms, instruction flags (`--from=`, `--chown=`, `--mount=`…), heredocs
//! (`RUN <<EOF`, `COPY <<EOF /dst`, `<<-`, quoted delimiters, several per line), and every
//! instruction. Words are not expanded here: which instructions expand which words, with
//! which variables, is the executor's business (see `crate::expand`).

mod flags;
mod lines;
mod parse;
#[cfg(test)]
mod tests;
mod words;

pub use parse::parse;

/// A parse failure, with the 1-based line it was found on (Docker reports
/// `Dockerfile:LINE` and the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// `\` unless `# escape=`` ` ``.
    pub escape: char,
    pub check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARG instructions before the first FROM (usable in FROM lines).
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// What the file does that Docker accepts but warns about, in file order.
    pub warnings: Vec<Warning>,
}

/// Something the parser accepted and Docker's legacy builder warns about before its first
/// step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A blank line inside a line continuation (dockerd: "Empty continuation line found
    /// in: …"). `text` is the instruction's lines as joined, as dockerd prints it.
    EmptyContinuationLine { line: usize, text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The FROM instruction that opens the stage.
    pub from: Instruction,
    /// Everything after it, up to the next FROM.
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of the instruction keyword, and of its last line.
    pub line: usize,
    pub end_line: usize,
    /// The instruction as written, as BuildKit's `Node.Original`: continuation lines appended
    /// as they are (the escape character and the blanks after it removed, nothing added, so
    /// `a \` + `b` gives `a b` and `a\` + `  b` gives `a  b`), comment and blank lines inside
    /// the continuation dropped, heredoc bodies left out, surrounding whitespace trimmed. The
    /// legacy builder prints it in `Step N/M : …`; for an ONBUILD trigger it is the text after
    /// `ONBUILD` (what goes into the image's `OnBuild`).
    pub original: String,
    /// Flags in order, e.g. ("from", "builder"), ("chown", "1:1"), ("mount", "type=cache,…");
    /// a flag without value has value None (`--link`); `--link=false` keeps its value. Quotes
    /// in flags are removed (`--mount="type=cache,target=/x"`), values are not expanded.
    pub flags: Vec<(String, Option<String>)>,
    pub kind: Kind,
}

/// The exec form (JSON array) or the shell form (the rest of the line as one string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    /// The body lines as written, each with its line ending (so it ends with `\n` unless the
    /// file itself ends inside the body), the terminator line left out — BuildKit's
    /// `Heredoc.Content`.
    pub content: String,
    /// Unquoted delimiter: the body is expanded (by the shell for RUN, by the executor for
    /// COPY/ADD); `<<"EOF"` or `<<'EOF'` keeps it verbatim.
    pub expand: bool,
    /// `<<-EOF`: leading tabs were stripped from each body line (already done in `content`).
    pub strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        /// `AS name`, lower-cased as BuildKit does.
        name: Option<String>,
    },
    Run {
        command: Command,
        heredocs: Vec<Heredoc>,
    },
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    Expose(Vec<String>),
    /// `ENV a=b c=d` and the legacy `ENV a b c` (one pair: "a" = "b c").
    Env(Vec<(String, String)>),
    /// Sources and destination as written (JSON form or words). `<<NAME` sources are not in
    /// `sources`: each heredoc in `heredocs` is a source, a file called `name`.
    Add {
        sources: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    Copy {
        sources: Vec<String>,
        dest: String,
        heredocs: Vec<Heredoc>,
    },
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// `ARG name[=default]`, several per line allowed.
    Arg(Vec<(String, Option<String>)>),
    Onbuild(Box<Instruction>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [--interval= --timeout= --start-period= --start-interval= --retries=] CMD …`
    /// (the options are in `Instruction::flags`).
    Cmd(Command),
}
