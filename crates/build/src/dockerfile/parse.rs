//! From logical lines to typed instructions and stages, with the checks and messages of
//! BuildKit's `instructions.Parse`.

use super::lines::{heredoc_word, LogicalLine};
use super::words::{first_word, json_array, quoted_words, split_command, whitespace_words};
use super::{flags, Command, Dockerfile, Healthcheck, Heredoc, Instruction, Kind, ParseError};
use super::{Directives, Stage, Warning};

/// Parses a whole Dockerfile. Unknown instructions, a missing FROM before the first
/// instruction that needs one, malformed JSON forms, flags an instruction does not take,
/// unterminated heredocs → `ParseError` with the line.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let (directives, lines) = super::lines::read(text)?;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let last_line = lines.last().map_or(1, |l| l.end_line);
    let mut warnings = Vec::new();
    for logical in lines {
        if logical.empty_continuation {
            warnings.push(Warning::EmptyContinuationLine {
                line: logical.line,
                text: logical.text.clone(),
            });
        }
        let instruction = instruction(&logical, &directives)?;
        match (&instruction.kind, stages.last_mut()) {
            (Kind::From { .. }, _) => stages.push(Stage {
                from: instruction,
                instructions: Vec::new(),
            }),
            (_, Some(stage)) => stage.instructions.push(instruction),
            (Kind::Arg(_), None) => global_args.push(instruction),
            (_, None) => {
                return Err(ParseError {
                    line: instruction.line,
                    message: "no build stage in current context".into(),
                })
            }
        }
    }
    if stages.is_empty() {
        return Err(ParseError {
            line: last_line,
            message: "dockerfile contains no stages to build".into(),
        });
    }
    Ok(Dockerfile {
        directives,
        global_args,
        stages,
        warnings,
    })
}

/// What an instruction parser sees: the keyword (lower case), the rest after the flags, and
/// the heredocs read after the line.
struct Request<'a> {
    keyword: String,
    args: String,
    heredocs: &'a [Heredoc],
    escape: char,
}

fn instruction(logical: &LogicalLine, directives: &Directives) -> Result<Instruction, ParseError> {
    let at_line = |message: String| ParseError {
        line: logical.line,
        message,
    };
    build(
        logical.text.trim(),
        &logical.heredocs,
        directives.escape,
        (logical.line, logical.end_line),
    )
    .map_err(at_line)
}

/// Builds one instruction from its text (also the trigger of an ONBUILD).
fn build(
    original: &str,
    heredocs: &[Heredoc],
    escape: char,
    (line, end_line): (usize, usize),
) -> Result<Instruction, String> {
    let (keyword, flag_words, args) = split_command(original);
    let request = Request {
        keyword: keyword.to_ascii_lowercase(),
        args,
        heredocs,
        escape,
    };
    let kind = kind(&request, (line, end_line))?;
    let flags = flags::parse(&request.keyword, &flag_words)?;
    Ok(Instruction {
        line,
        end_line,
        original: original.to_string(),
        flags,
        kind,
    })
}

fn kind(req: &Request, lines: (usize, usize)) -> Result<Kind, String> {
    let args = req.args.as_str();
    Ok(match req.keyword.as_str() {
        "from" => from(args)?,
        "run" => Kind::Run {
            command: command(args)?,
            heredocs: req.heredocs.to_vec(),
        },
        "cmd" => Kind::Cmd(command(args)?),
        "entrypoint" => Kind::Entrypoint(command(args)?),
        "shell" => match json_array(args)? {
            Some(shell) if shell.is_empty() => return Err(at_least_one("SHELL")),
            Some(shell) => Kind::Shell(shell),
            None if args.is_empty() => return Err(at_least_one("SHELL")),
            None => return Err("SHELL requires the arguments to be in JSON form".into()),
        },
        "label" => Kind::Label(name_values(args, "LABEL", req.escape)?),
        "env" => Kind::Env(name_values(args, "ENV", req.escape)?),
        "maintainer" => Kind::Maintainer(exactly_one(args, "MAINTAINER")?),
        "user" => Kind::User(exactly_one(args, "USER")?),
        "workdir" => Kind::Workdir(exactly_one(args, "WORKDIR")?),
        "stopsignal" => Kind::Stopsignal(exactly_one(args, "STOPSIGNAL")?),
        "expose" => match whitespace_words(args) {
            ports if ports.is_empty() => return Err(at_least_one("EXPOSE")),
            ports => Kind::Expose(ports),
        },
        "volume" => Kind::Volume(volumes(args)?),
        "arg" => Kind::Arg(arg(args, req.escape)?),
        "copy" => {
            let (sources, dest, heredocs) = sources_and_dest(req, "COPY")?;
            Kind::Copy {
                sources,
                dest,
                heredocs,
            }
        }
        "add" => {
            let (sources, dest, heredocs) = sources_and_dest(req, "ADD")?;
            Kind::Add {
                sources,
                dest,
                heredocs,
            }
        }
        "onbuild" => onbuild(req, lines)?,
        "healthcheck" => Kind::Healthcheck(healthcheck(args)?),
        _ => {
            return Err(format!(
                "unknown instruction: {}",
                req.keyword.to_uppercase()
            ))
        }
    })
}

fn at_least_one(keyword: &str) -> String {
    format!("{keyword} requires at least one argument")
}

fn exactly_one(args: &str, keyword: &str) -> Result<String, String> {
    if args.is_empty() {
        return Err(format!("{keyword} requires exactly one argument"));
    }
    Ok(args.to_string())
}

/// `FROM image [AS name]`; the stage name is lower-cased and must look like an identifier.
fn from(args: &str) -> Result<Kind, String> {
    let words = whitespace_words(args);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(Kind::From {
        image: words[0].clone(),
        name,
    })
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The exec form when the text is a JSON array of strings, else the shell form as written.
fn command(args: &str) -> Result<Command, String> {
    Ok(match json_array(args)? {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(args.to_string()),
    })
}

/// ENV and LABEL: `k=v k2="v 2"` (quotes kept for the expander), or the legacy `k v…` where
/// the value is the rest of the line.
fn name_values(args: &str, keyword: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = quoted_words(args, escape);
    let Some(first) = words.first() else {
        return Err(at_least_one(keyword));
    };
    let pairs = if first.contains('=') {
        words
            .iter()
            .map(|word| {
                word.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let Some((name, value)) = first_word(args) else {
            return Err(format!("{keyword} must have two arguments"));
        };
        vec![(name.to_string(), value.to_string())]
    };
    if pairs.iter().any(|(k, _)| k.is_empty()) {
        return Err(format!("{keyword} names can not be blank"));
    }
    Ok(pairs)
}

/// `ARG a b=1 c="x y"`: names with optional raw defaults.
fn arg(args: &str, escape: char) -> Result<Vec<(String, Option<String>)>, String> {
    let words = quoted_words(args, escape);
    if words.is_empty() {
        return Err(at_least_one("ARG"));
    }
    words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None => Ok((word, None)),
        })
        .collect()
}

/// The JSON form, or words split on whitespace (quotes are not special there).
fn list(args: &str) -> Result<Vec<String>, String> {
    Ok(json_array(args)?.unwrap_or_else(|| whitespace_words(args)))
}

fn volumes(args: &str) -> Result<Vec<String>, String> {
    let list = list(args)?;
    if list.is_empty() {
        return Err(at_least_one("VOLUME"));
    }
    list.into_iter()
        .map(|v| match v.trim() {
            "" => Err("VOLUME specified can not be an empty string".to_string()),
            v => Ok(v.to_string()),
        })
        .collect()
}

type SourcesAndDest = (Vec<String>, String, Vec<Heredoc>);

/// COPY/ADD operands: the last is the destination; `<<NAME` sources are the heredocs read
/// after the line (a heredoc cannot be the destination).
fn sources_and_dest(req: &Request, keyword: &str) -> Result<SourcesAndDest, String> {
    let is_json = json_array(&req.args)?.is_some();
    let mut operands = list(&req.args)?;
    if operands.len() < 2 {
        return Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined."
        ));
    }
    let dest = operands.pop().unwrap_or_default();
    let heredoc_of = |word: &str| if is_json { None } else { heredoc_word(word) };
    if heredoc_of(&dest).is_some() {
        return Err(format!(
            "{keyword} cannot accept a heredoc as a destination"
        ));
    }
    let sources = operands
        .into_iter()
        .filter(|source| heredoc_of(source).is_none())
        .collect();
    Ok((sources, dest, req.heredocs.to_vec()))
}

/// `ONBUILD <instruction>`: the trigger is parsed as an instruction of its own (same lines),
/// its `original` being the text after ONBUILD (BuildKit's `Expression`).
fn onbuild(req: &Request, lines: (usize, usize)) -> Result<Kind, String> {
    if req.args.is_empty() {
        return Err(at_least_one("ONBUILD"));
    }
    let (trigger, _, _) = split_command(&req.args);
    let trigger = trigger.to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    let inner = build(&req.args, req.heredocs, req.escape, lines)?;
    Ok(Kind::Onbuild(Box::new(inner)))
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command` (exec or shell form).
fn healthcheck(args: &str) -> Result<Healthcheck, String> {
    let (kind, rest) = args
        .split_once(char::is_whitespace)
        .map_or((args, ""), |(k, r)| (k, r.trim_start()));
    match kind.to_uppercase().as_str() {
        "" => Err(at_least_one("HEALTHCHECK")),
        "NONE" if rest.is_empty() => Ok(Healthcheck::None),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => match command(rest)? {
            Command::Shell(s) if s.is_empty() => {
                Err("Missing command after HEALTHCHECK CMD".into())
            }
            Command::Exec(argv) if argv.is_empty() => {
                Err("Missing command after HEALTHCHECK CMD".into())
            }
            cmd => Ok(Healthcheck::Cmd(cmd)),
        },
        other => Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)")),
    }
}
