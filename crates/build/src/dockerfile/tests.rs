use super::*;

fn ok(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(d) => d,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(d) => panic!("{text:?} parsed: {d:?}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage of `FROM scratch\n` + `body`.
fn body(body: &str) -> Vec<Instruction> {
    let mut d = ok(&format!("FROM scratch\n{body}"));
    d.stages.remove(0).instructions
}

fn one(text: &str) -> Instruction {
    let mut all = body(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn flag(name: &str, value: Option<&str>) -> (String, Option<String>) {
    (name.to_string(), value.map(str::to_string))
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn heredoc(name: &str, content: &str, expand: bool, strip_tabs: bool) -> Heredoc {
    Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        strip_tabs,
    }
}

// ---- directives -------------------------------------------------------------------------

#[test]
fn default_directives() {
    let d = ok("FROM a\n");
    assert_eq!(
        d.directives,
        Directives {
            syntax: None,
            escape: '\\',
            check: None
        }
    );
}

#[test]
fn directives_at_the_top_case_insensitive() {
    let d = ok(
        "# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# Check=skip=JSONArgsRecommended\nFROM a\n",
    );
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.directives.escape, '`');
    assert_eq!(
        d.directives.check.as_deref(),
        Some("skip=JSONArgsRecommended")
    );
}

#[test]
fn directives_stop_at_first_other_line() {
    // A comment, a blank line or an unknown key ends the directives.
    for text in [
        "# hello\n# escape=`\nFROM a\n",
        "\n# escape=`\nFROM a\n",
        "# unknown=x\n# escape=`\nFROM a\n",
        "FROM a\n# escape=`\n",
    ] {
        assert_eq!(ok(text).directives.escape, '\\', "{text:?}");
    }
}

#[test]
fn directive_errors_with_line() {
    let e = err("# escape=`\n# escape=\\\nFROM a\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "only one escape parser directive can be used")
    );
    let e = err("# syntax=a\n# escape=x\nFROM a\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "invalid escape token 'x' does not match ` or \\")
    );
}

#[test]
fn byte_order_mark_is_ignored() {
    let d = ok("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(d.directives.escape, '`');
}

// ---- comments, continuations -------------------------------------------------------------

#[test]
fn comments_and_blank_lines() {
    let d = ok("# c\n\n   # indented comment\nFROM a\n\n# between\nRUN x # not a comment\n");
    let run = &d.stages[0].instructions[0];
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("x # not a comment".into()),
            heredocs: vec![]
        }
    );
    assert_eq!(run.line, 7);
}

#[test]
fn continuation_joins_lines_as_written() {
    let run = one("RUN apt-get update && \\\n    apt-get install -y x\n");
    assert_eq!(
        run.original,
        "RUN apt-get update &&     apt-get install -y x"
    );
    assert_eq!((run.line, run.end_line), (2, 3));
    let run = one("RUN a\\\nb\n");
    assert_eq!(run.original, "RUN ab");
    // Whitespace after the escape is allowed.
    let run = one("RUN a \\  \t\nb\n");
    assert_eq!(run.original, "RUN a b");
}

#[test]
fn comments_and_empty_lines_inside_continuations_are_dropped() {
    let run = one("RUN a \\\n# comment\n  # indented comment\n\n   \nb \\\n c\n");
    assert_eq!(run.original, "RUN a b  c");
    assert_eq!((run.line, run.end_line), (2, 8));
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("a b  c".into()),
            heredocs: vec![]
        }
    );
}

#[test]
fn empty_continuation_lines_are_reported_comments_are_not() {
    let d = ok("FROM a\nRUN a \\\n# comment\nb \\\n\n   \n c\nRUN x \\\n# only a comment\n y\n");
    assert_eq!(
        d.warnings,
        vec![Warning::EmptyContinuationLine {
            line: 2,
            text: "RUN a b  c".into()
        }]
    );
    assert!(ok("FROM a\nRUN a\n\nRUN b\n").warnings.is_empty());
}

#[test]
fn escaped_escape_at_line_end_is_not_a_continuation() {
    let all = body("RUN echo a\\\\\nRUN b\n");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].original, "RUN echo a\\\\");
}

#[test]
fn continuation_at_end_of_file() {
    let run = one("RUN a \\\n");
    assert_eq!(run.original, "RUN a");
}

#[test]
fn crlf_line_endings() {
    let d = ok("FROM a\r\nRUN x \\\r\n  y\r\n");
    assert_eq!(d.stages[0].instructions[0].original, "RUN x   y");
}

#[test]
fn backtick_escape_windows_file() {
    let text = "# escape=`\n\nFROM mcr.microsoft.com/windows/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\nRUN echo a `\n  b\nWORKDIR c:\\Users\\\n";
    let d = ok(text);
    let all = &d.stages[0].instructions;
    assert_eq!(all.len(), 4);
    assert_eq!(
        all[0].kind,
        Kind::Copy {
            sources: strings(&["testfile.txt"]),
            dest: "c:\\".into(),
            heredocs: vec![]
        }
    );
    assert_eq!(
        all[1].kind,
        Kind::Run {
            command: Command::Shell("dir c:\\".into()),
            heredocs: vec![]
        }
    );
    assert_eq!(all[2].original, "RUN echo a   b");
    assert_eq!(all[3].kind, Kind::Workdir("c:\\Users\\".into()));
    assert_eq!(all[3].line, 8);
}

#[test]
fn backtick_escape_in_env_words() {
    let env = one_escaped("ENV A=\"x`\"y\" B=c:\\d\n");
    assert_eq!(
        env,
        Kind::Env(vec![
            ("A".into(), "\"x`\"y\"".into()),
            ("B".into(), "c:\\d".into())
        ])
    );
}

fn one_escaped(line: &str) -> Kind {
    let d = ok(&format!("# escape=`\nFROM a\n{line}"));
    d.stages[0].instructions[0].kind.clone()
}

// ---- instructions -------------------------------------------------------------------------

#[test]
fn keywords_are_case_insensitive() {
    let d = ok("from a AS Build\nrun x\nCmD [\"y\"]\n");
    assert_eq!(
        d.stages[0].from.kind,
        Kind::From {
            image: "a".into(),
            name: Some("build".into())
        }
    );
    assert_eq!(
        d.stages[0].instructions[1].kind,
        Kind::Cmd(Command::Exec(strings(&["y"])))
    );
}

#[test]
fn from_forms() {
    let d = ok("FROM --platform=$BUILDPLATFORM golang:1.22 as Builder-1.x\nFROM scratch\n");
    let from = &d.stages[0].from;
    assert_eq!(
        from.kind,
        Kind::From {
            image: "golang:1.22".into(),
            name: Some("builder-1.x".into())
        }
    );
    assert_eq!(from.flags, [flag("platform", Some("$BUILDPLATFORM"))]);
    assert_eq!(
        d.stages[1].from.kind,
        Kind::From {
            image: "scratch".into(),
            name: None
        }
    );
    assert_eq!(d.stages.len(), 2);
}

#[test]
fn from_errors() {
    let e = err("FROM a AS 1x\n");
    assert_eq!(e.line, 1);
    assert_eq!(
        e.message,
        "invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert!(err("FROM a AS b$\n")
        .message
        .starts_with("invalid name for build stage"));
    assert_eq!(
        err("FROM a b\n").message,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM\n").message,
        "FROM requires either one or three arguments"
    );
    assert_eq!(err("FROM a\nFROM b c d\n").line, 2);
    assert_eq!(err("FROM --from=x a\n").message, "unknown flag: from");
}

#[test]
fn global_args_before_from() {
    let d = ok("ARG VERSION=1.0\nARG BASE\nFROM base:${VERSION}\nARG VERSION\n");
    assert_eq!(d.global_args.len(), 2);
    assert_eq!(
        d.global_args[0].kind,
        Kind::Arg(vec![("VERSION".into(), Some("1.0".into()))])
    );
    assert_eq!(
        d.stages[0].instructions[0].kind,
        Kind::Arg(vec![("VERSION".into(), None)])
    );
}

#[test]
fn arg_forms() {
    let arg = one("ARG a b=1 c=\"x y\" d=\n");
    assert_eq!(
        arg.kind,
        Kind::Arg(vec![
            ("a".into(), None),
            ("b".into(), Some("1".into())),
            ("c".into(), Some("\"x y\"".into())),
            ("d".into(), Some("".into())),
        ])
    );
    assert_eq!(
        err("FROM a\nARG\n").message,
        "ARG requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nARG =x\n").message,
        "ARG names can not be blank"
    );
}

#[test]
fn run_shell_and_exec() {
    let run = one("RUN echo \"hello world\" && ls\n");
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("echo \"hello world\" && ls".into()),
            heredocs: vec![]
        }
    );
    let run = one("RUN [\"/bin/echo\", \"a b\"]\n");
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Exec(strings(&["/bin/echo", "a b"])),
            heredocs: vec![]
        }
    );
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    for (line, shell) in [
        ("RUN [\"a\", \n", "[\"a\","),
        ("CMD ['single', 'quotes']\n", "['single', 'quotes']"),
        ("ENTRYPOINT [not json]\n", "[not json]"),
    ] {
        let kind = one(line).kind;
        let command = match kind {
            Kind::Run { command, .. } | Kind::Cmd(command) | Kind::Entrypoint(command) => command,
            other => panic!("{other:?}"),
        };
        assert_eq!(command, Command::Shell(shell.into()), "{line:?}");
    }
}

#[test]
fn json_array_of_non_strings_is_an_error() {
    let e = err("FROM a\nCMD [\"a\", 1]\n");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.message,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn run_flags() {
    let run = one("RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok --network=none --security=insecure make\n");
    assert_eq!(
        run.flags,
        [
            flag("mount", Some("type=cache,target=/root/.cache")),
            flag("mount", Some("type=secret,id=tok")),
            flag("network", Some("none")),
            flag("security", Some("insecure")),
        ]
    );
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("make".into()),
            heredocs: vec![]
        }
    );
    let run = one("RUN --mount=\"type=bind,source=a b\" [\"ls\"]\n");
    assert_eq!(run.flags, [flag("mount", Some("type=bind,source=a b"))]);
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Exec(strings(&["ls"])),
            heredocs: vec![]
        }
    );
}

#[test]
fn flags_only_before_the_arguments() {
    let run = one("RUN echo --mount=x\n");
    assert!(run.flags.is_empty());
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("echo --mount=x".into()),
            heredocs: vec![]
        }
    );
}

#[test]
fn unknown_and_bad_flags_report_the_line() {
    let e = err("FROM a\n\nRUN --mnt=type=cache x\n");
    assert_eq!((e.line, e.message.as_str()), (3, "unknown flag: mnt"));
    assert_eq!(
        err("FROM a\nCOPY --from=a --from=b x y\n").message,
        "duplicate flag specified: from"
    );
    assert_eq!(
        err("FROM a\nCOPY --from x y\n").message,
        "missing a value on flag: from"
    );
    assert_eq!(err("FROM a\nENV --x=1 a=b\n").message, "unknown flag: x");
    assert_eq!(
        err("FROM a\nADD --from=x a b\n").message,
        "unknown flag: from"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK --every=1s CMD x\n").message,
        "unknown flag: every"
    );
}

#[test]
fn cmd_and_entrypoint() {
    assert_eq!(
        one("CMD [\"sh\", \"-c\", \"x\"]\n").kind,
        Kind::Cmd(Command::Exec(strings(&["sh", "-c", "x"])))
    );
    assert_eq!(
        one("CMD echo $HOME\n").kind,
        Kind::Cmd(Command::Shell("echo $HOME".into()))
    );
    assert_eq!(one("CMD []\n").kind, Kind::Cmd(Command::Exec(vec![])));
    assert_eq!(
        one("ENTRYPOINT [\"/init\"]\n").kind,
        Kind::Entrypoint(Command::Exec(strings(&["/init"])))
    );
    assert_eq!(
        one("ENTRYPOINT exec top -b\n").kind,
        Kind::Entrypoint(Command::Shell("exec top -b".into()))
    );
}

#[test]
fn shell_requires_json() {
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]\n").kind,
        Kind::Shell(strings(&["/bin/bash", "-c"]))
    );
    assert_eq!(
        err("FROM a\nSHELL /bin/bash -c\n").message,
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("FROM a\nSHELL []\n").message,
        "SHELL requires at least one argument"
    );
}

#[test]
fn env_forms() {
    let env = one("ENV A=1 B=\"two words\" C=three\\ words D='$x' E=\n");
    assert_eq!(
        env.kind,
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "three\\ words".into()),
            ("D".into(), "'$x'".into()),
            ("E".into(), "".into()),
        ])
    );
    // Legacy form: one pair, the value is the rest of the line.
    assert_eq!(
        one("ENV PATH /usr/bin:/bin  more\n").kind,
        Kind::Env(vec![("PATH".into(), "/usr/bin:/bin  more".into())])
    );
    let env = one("ENV A=1 \\\n    B=2\n");
    assert_eq!(
        env.kind,
        Kind::Env(vec![("A".into(), "1".into()), ("B".into(), "2".into())])
    );
}

#[test]
fn env_errors() {
    assert_eq!(
        err("FROM a\nENV\n").message,
        "ENV requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nENV A\n").message,
        "ENV must have two arguments"
    );
    assert_eq!(
        err("FROM a\nENV A=1 B\n").message,
        "Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
    assert_eq!(
        err("FROM a\nENV =1\n").message,
        "ENV names can not be blank"
    );
}

#[test]
fn label_forms() {
    let label = one("LABEL \"com.example.vendor\"=\"ACME\" version=1.0 description=\"a \\\n b\"\n");
    assert_eq!(
        label.kind,
        Kind::Label(vec![
            ("\"com.example.vendor\"".into(), "\"ACME\"".into()),
            ("version".into(), "1.0".into()),
            ("description".into(), "\"a  b\"".into()),
        ])
    );
    assert_eq!(
        one("LABEL maintainer someone else\n").kind,
        Kind::Label(vec![("maintainer".into(), "someone else".into())])
    );
    assert_eq!(
        err("FROM a\nLABEL\n").message,
        "LABEL requires at least one argument"
    );
}

#[test]
fn maintainer_user_workdir_stopsignal() {
    assert_eq!(
        one("MAINTAINER Jane Doe <jane@example.com>\n").kind,
        Kind::Maintainer("Jane Doe <jane@example.com>".into())
    );
    assert_eq!(one("USER app:app\n").kind, Kind::User("app:app".into()));
    assert_eq!(
        one("WORKDIR /src/my app\n").kind,
        Kind::Workdir("/src/my app".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGTERM\n").kind,
        Kind::Stopsignal("SIGTERM".into())
    );
    for keyword in ["MAINTAINER", "USER", "WORKDIR", "STOPSIGNAL"] {
        assert_eq!(
            err(&format!("FROM a\n{keyword}\n")).message,
            format!("{keyword} requires exactly one argument")
        );
    }
}

#[test]
fn expose_words() {
    assert_eq!(
        one("EXPOSE 80/tcp  443 ${PORT}\n").kind,
        Kind::Expose(strings(&["80/tcp", "443", "${PORT}"]))
    );
    assert_eq!(
        err("FROM a\nEXPOSE\n").message,
        "EXPOSE requires at least one argument"
    );
}

#[test]
fn volume_forms() {
    assert_eq!(
        one("VOLUME /data /logs\n").kind,
        Kind::Volume(strings(&["/data", "/logs"]))
    );
    assert_eq!(
        one("VOLUME [\"/data\", \"/var/my logs\"]\n").kind,
        Kind::Volume(strings(&["/data", "/var/my logs"]))
    );
    assert_eq!(
        err("FROM a\nVOLUME\n").message,
        "VOLUME requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nVOLUME [\" \"]\n").message,
        "VOLUME specified can not be an empty string"
    );
}

#[test]
fn copy_forms_and_flags() {
    let copy = one("COPY --from=build --chown=1:1 --chmod=0755 --link --parents --exclude=*.md --exclude=tmp a b /dst/\n");
    assert_eq!(
        copy.flags,
        [
            flag("from", Some("build")),
            flag("chown", Some("1:1")),
            flag("chmod", Some("0755")),
            flag("link", None),
            flag("parents", None),
            flag("exclude", Some("*.md")),
            flag("exclude", Some("tmp")),
        ]
    );
    assert_eq!(
        copy.kind,
        Kind::Copy {
            sources: strings(&["a", "b"]),
            dest: "/dst/".into(),
            heredocs: vec![]
        }
    );
    let copy = one("COPY [\"my file\", \"/d st/\"]\n");
    assert_eq!(
        copy.kind,
        Kind::Copy {
            sources: strings(&["my file"]),
            dest: "/d st/".into(),
            heredocs: vec![]
        }
    );
    assert_eq!(
        one("COPY --link=false a b\n").flags,
        [flag("link", Some("false"))]
    );
    assert_eq!(
        err("FROM a\nCOPY onlyone\n").message,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined."
    );
}

#[test]
fn add_forms_and_flags() {
    let add = one("ADD --chown=app --chmod=644 --checksum=sha256:abc --keep-git-dir=true --link --exclude=x https://example.com/a.tgz /opt/\n");
    assert_eq!(
        add.flags,
        [
            flag("chown", Some("app")),
            flag("chmod", Some("644")),
            flag("checksum", Some("sha256:abc")),
            flag("keep-git-dir", Some("true")),
            flag("link", None),
            flag("exclude", Some("x")),
        ]
    );
    assert_eq!(
        add.kind,
        Kind::Add {
            sources: strings(&["https://example.com/a.tgz"]),
            dest: "/opt/".into(),
            heredocs: vec![]
        }
    );
    assert!(err("FROM a\nADD x\n")
        .message
        .starts_with("ADD requires at least two arguments"));
}

#[test]
fn onbuild_trigger() {
    let onbuild = one("ONBUILD RUN --mount=type=cache,target=/c make\n");
    let Kind::Onbuild(inner) = onbuild.kind else {
        panic!()
    };
    assert_eq!(inner.original, "RUN --mount=type=cache,target=/c make");
    assert_eq!(inner.flags, [flag("mount", Some("type=cache,target=/c"))]);
    assert_eq!(
        inner.kind,
        Kind::Run {
            command: Command::Shell("make".into()),
            heredocs: vec![]
        }
    );
    assert_eq!(inner.line, 2);
    let Kind::Onbuild(inner) = one("onbuild copy . /app\n").kind else {
        panic!()
    };
    assert_eq!(
        inner.kind,
        Kind::Copy {
            sources: strings(&["."]),
            dest: "/app".into(),
            heredocs: vec![]
        }
    );
}

#[test]
fn onbuild_refusals() {
    assert_eq!(
        err("FROM a\nONBUILD ONBUILD RUN x\n").message,
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM a\nONBUILD from b\n").message,
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM a\nONBUILD MAINTAINER me\n").message,
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM a\nONBUILD\n").message,
        "ONBUILD requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nONBUILD NOPE x\n").message,
        "unknown instruction: NOPE"
    );
}

#[test]
fn healthcheck_forms() {
    let hc = one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1s --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1\n");
    assert_eq!(
        hc.flags,
        [
            flag("interval", Some("5m")),
            flag("timeout", Some("3s")),
            flag("start-period", Some("1s")),
            flag("start-interval", Some("2s")),
            flag("retries", Some("3")),
        ]
    );
    assert_eq!(
        hc.kind,
        Kind::Healthcheck(Healthcheck::Cmd(Command::Shell(
            "curl -f http://localhost/ || exit 1".into()
        )))
    );
    assert_eq!(
        one("HEALTHCHECK cmd [\"/ok\"]\n").kind,
        Kind::Healthcheck(Healthcheck::Cmd(Command::Exec(strings(&["/ok"]))))
    );
    assert_eq!(
        one("HEALTHCHECK none\n").kind,
        Kind::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK NONE x\n").message,
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK CMD\n").message,
        "Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK\n").message,
        "HEALTHCHECK requires at least one argument"
    );
    assert_eq!(
        err("FROM a\nHEALTHCHECK TEST x\n").message,
        "Unknown type \"TEST\" in HEALTHCHECK (try CMD)"
    );
}

// ---- heredocs -------------------------------------------------------------------------------

#[test]
fn run_heredoc_keeps_final_newline() {
    let run = one("RUN <<EOF\necho hello\necho $HOME\nEOF\nRUN after\n"
        .split("RUN after")
        .next()
        .unwrap_or_default());
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("<<EOF".into()),
            heredocs: vec![heredoc("EOF", "echo hello\necho $HOME\n", true, false)],
        }
    );
    assert_eq!(run.original, "RUN <<EOF");
    assert_eq!((run.line, run.end_line), (2, 5));
}

#[test]
fn heredoc_body_is_not_parsed_as_instructions() {
    let all = body("RUN <<EOF\n# not a comment\nFROM nothing \\\n\nEOF\nRUN next\n");
    assert_eq!(all.len(), 2);
    let Kind::Run { heredocs, .. } = &all[0].kind else {
        panic!()
    };
    assert_eq!(heredocs[0].content, "# not a comment\nFROM nothing \\\n\n");
    assert_eq!(all[1].line, 7);
}

#[test]
fn run_heredoc_with_interpreter() {
    let run = one("RUN <<EOF bash -e\nset -x\nEOF\n");
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("<<EOF bash -e".into()),
            heredocs: vec![heredoc("EOF", "set -x\n", true, false)]
        }
    );
    let run = one("RUN python3 <<EOF\nprint(1)\nEOF\n");
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("python3 <<EOF".into()),
            heredocs: vec![heredoc("EOF", "print(1)\n", true, false)]
        }
    );
}

#[test]
fn several_heredocs_on_one_line() {
    let run = one("RUN cat <<A <<B > /out\na1\nA\nb1\nb2\nB\n");
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("cat <<A <<B > /out".into()),
            heredocs: vec![
                heredoc("A", "a1\n", true, false),
                heredoc("B", "b1\nb2\n", true, false)
            ],
        }
    );
    assert_eq!(run.end_line, 7);
}

#[test]
fn dash_heredoc_strips_leading_tabs() {
    let run = one("RUN <<-EOF\n\t\techo a\n\t  b\n\tEOF\n");
    let Kind::Run { heredocs, .. } = run.kind else {
        panic!()
    };
    assert_eq!(heredocs, [heredoc("EOF", "echo a\n  b\n", true, true)]);
    // Without the dash a tab-indented terminator does not end the body.
    let e = err("FROM a\nRUN <<EOF\nx\n\tEOF\n");
    assert_eq!((e.line, e.message.as_str()), (2, "unterminated heredoc"));
}

#[test]
fn quoted_delimiters_disable_expansion() {
    for (line, name) in [
        ("RUN <<\"EOF\"", "EOF"),
        ("RUN <<'EOF'", "EOF"),
        ("RUN <<-'E'OF", "EOF"),
    ] {
        let run = one(&format!("{line}\necho $HOME\n{name}\n"));
        let Kind::Run { heredocs, .. } = run.kind else {
            panic!()
        };
        assert_eq!(heredocs.len(), 1, "{line}");
        assert_eq!(heredocs[0].name, name);
        assert!(!heredocs[0].expand, "{line}");
        assert_eq!(heredocs[0].content, "echo $HOME\n");
    }
}

#[test]
fn copy_heredocs() {
    let copy = one("COPY <<EOF /etc/app.conf\nkey=$VALUE\nEOF\n");
    assert_eq!(
        copy.kind,
        Kind::Copy {
            sources: vec![],
            dest: "/etc/app.conf".into(),
            heredocs: vec![heredoc("EOF", "key=$VALUE\n", true, false)]
        }
    );
    let copy = one("COPY --chmod=755 <<a <<'b' plain /dir/\nA\na\nB $x\nb\n");
    assert_eq!(copy.flags, [flag("chmod", Some("755"))]);
    assert_eq!(
        copy.kind,
        Kind::Copy {
            sources: strings(&["plain"]),
            dest: "/dir/".into(),
            heredocs: vec![
                heredoc("a", "A\n", true, false),
                heredoc("b", "B $x\n", false, false)
            ],
        }
    );
    let add = one("ADD <<-EOF /x\n\tbody\n\tEOF\n");
    assert_eq!(
        add.kind,
        Kind::Add {
            sources: vec![],
            dest: "/x".into(),
            heredocs: vec![heredoc("EOF", "body\n", true, true)]
        }
    );
    assert_eq!(
        err("FROM a\nCOPY x <<EOF\nEOF\n").message,
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn onbuild_heredoc() {
    let onbuild = one("ONBUILD RUN <<EOF\necho built\nEOF\n");
    let Kind::Onbuild(inner) = onbuild.kind else {
        panic!()
    };
    assert_eq!(inner.original, "RUN <<EOF");
    assert_eq!(
        inner.kind,
        Kind::Run {
            command: Command::Shell("<<EOF".into()),
            heredocs: vec![heredoc("EOF", "echo built\n", true, false)]
        }
    );
}

#[test]
fn heredoc_markers_that_are_not_heredocs() {
    // Exec form, quoted marker, marker glued to a word, other instructions: no body is read.
    let all = body("RUN [\"cat\", \"<<EOF\"]\nRUN echo \"<<EOF\"\nRUN echo a<<EOF\nCMD cat <<EOF\nENV A=<<EOF\n");
    assert_eq!(all.len(), 5);
    for instruction in &all {
        if let Kind::Run { heredocs, .. } = &instruction.kind {
            assert!(heredocs.is_empty(), "{instruction:?}");
        }
    }
}

#[test]
fn heredoc_after_continuation() {
    let run = one("RUN cat \\\n  <<EOF\nx\nEOF\n");
    assert_eq!(run.original, "RUN cat   <<EOF");
    let Kind::Run { heredocs, .. } = run.kind else {
        panic!()
    };
    assert_eq!(heredocs, [heredoc("EOF", "x\n", true, false)]);
}

#[test]
fn heredoc_crlf_and_unterminated_last_line() {
    let run = one("RUN <<EOF\r\na\r\nEOF\r\n");
    let Kind::Run { heredocs, .. } = run.kind else {
        panic!()
    };
    assert_eq!(heredocs[0].content, "a\r\n");
    let e = err("FROM a\nRUN x\nRUN <<A <<B\na\nA\nb\n");
    assert_eq!((e.line, e.message.as_str()), (3, "unterminated heredoc"));
}

// ---- file-level errors ----------------------------------------------------------------------

#[test]
fn instruction_before_from() {
    let e = err("# comment\nARG A\nRUN x\nFROM a\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "no build stage in current context")
    );
}

#[test]
fn unknown_instruction() {
    let e = err("FROM a\n\nFOO bar\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "unknown instruction: FOO")
    );
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: unknown instruction: FOO"
    );
    assert_eq!(err("frm a\n").message, "unknown instruction: FRM");
}

#[test]
fn empty_files() {
    let e = err("");
    assert_eq!(e.message, "file with no instructions");
    let e = err("# only\n\n# comments\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (3, "file with no instructions")
    );
    let e = err("ARG A=1\n");
    assert_eq!(e.message, "dockerfile contains no stages to build");
}

#[test]
fn multi_stage_file() {
    let text = "\
# syntax=docker/dockerfile:1
ARG GO=1.22

FROM golang:${GO} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    go build -o /out/app ./cmd/app

FROM scratch
COPY --from=build /out/app /app
ENTRYPOINT [\"/app\"]
";
    let d = ok(text);
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.global_args.len(), 1);
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].instructions.len(), 3);
    let run = &d.stages[0].instructions[2];
    assert_eq!((run.line, run.end_line), (7, 8));
    assert_eq!(d.stages[1].from.line, 10);
    assert_eq!(
        d.stages[1].instructions[0].flags,
        [flag("from", Some("build"))]
    );
}

#[test]
fn onbuild_flags_are_checked_on_the_trigger() {
    assert_eq!(
        err("FROM a\nONBUILD COPY --bogus a b\n").message,
        "unknown flag: bogus"
    );
    assert_eq!(
        err("FROM a\nONBUILD --x RUN y\n").message,
        "unknown flag: x"
    );
    let Kind::Onbuild(inner) = one("ONBUILD COPY --from=base /a /b\n").kind else {
        panic!()
    };
    assert_eq!(inner.flags, [flag("from", Some("base"))]);
}

#[test]
fn flags_end_at_double_dash() {
    let run = one("RUN --network=host -- --version\n");
    assert_eq!(run.flags, [flag("network", Some("host"))]);
    assert_eq!(
        run.kind,
        Kind::Run {
            command: Command::Shell("--version".into()),
            heredocs: vec![]
        }
    );
}
