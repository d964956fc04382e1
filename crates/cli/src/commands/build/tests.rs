use super::context::{self, Prepared, Source};
use super::query::{build_query, encode, with_query};
use super::*;
use crate::commands::parse_args;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

fn env(k: &str) -> Option<String> {
    (k == "BAR").then(|| "barv".to_string())
}

#[test]
fn flags_become_dockers_query() {
    // Recorded from docker 28.2 (`DOCKER_BUILDKIT=0 docker build …`) against dockerd 20.10.
    let a: BuildArgs = parse_args(&[
        "-f",
        "Dockerfile2",
        "-t",
        "a",
        "--build-arg",
        "X=1",
        "--build-arg",
        "FOO",
        "--build-arg",
        "BAR",
        "--label",
        "l=v",
        "--label",
        "m",
        "--target",
        "t0",
        "--no-cache",
        "--pull",
        "--rm=false",
        "--force-rm",
        "--network",
        "host",
        "--add-host",
        "h:1.2.3.4",
        "--add-host",
        "g:5.6.7.8",
        "--shm-size",
        "64m",
        "-m",
        "1g",
        "--platform",
        "linux/amd64",
        "--cache-from",
        "c1",
        "--cache-from",
        "c2,c3",
        "--cpu-shares",
        "3",
        "--memory-swap",
        "2g",
        "--security-opt",
        "seccomp=unconfined",
        ".",
    ]);
    let q = encode(&build_query(&a, "Dockerfile2", None, env).unwrap());
    assert_eq!(
        q,
        "buildargs=%7B%22BAR%22%3A%22barv%22%2C%22FOO%22%3Anull%2C%22X%22%3A%221%22%7D\
         &cachefrom=%5B%22c1%22%2C%22c2%22%2C%22c3%22%5D&cpushares=3&dockerfile=Dockerfile2\
         &extrahosts=h%3A1.2.3.4&extrahosts=g%3A5.6.7.8&forcerm=1\
         &labels=%7B%22l%22%3A%22v%22%2C%22m%22%3A%22%22%7D&memory=1073741824\
         &memswap=2147483648&networkmode=host&nocache=1&platform=linux%2Famd64&pull=1&rm=0\
         &securityopt=seccomp%3Dunconfined&shmsize=67108864&t=a&target=t0&version=1"
    );
}

#[test]
fn default_flags_send_only_what_docker_sends() {
    let a: BuildArgs = parse_args(&["-t", "x:1", "-t", "y", "."]);
    assert!(a.rm && !a.quiet && a.network == "default");
    let q = encode(&build_query(&a, "Dockerfile", None, env).unwrap());
    assert_eq!(q, "dockerfile=Dockerfile&t=x%3A1&t=y&version=1");
    let a: BuildArgs = parse_args(&["-q", "--rm", "."]);
    assert_eq!(
        encode(&build_query(&a, "Dockerfile", None, env).unwrap()),
        "dockerfile=Dockerfile&q=1&version=1"
    );
    let a: BuildArgs = parse_args(&["https://example.com/x.git"]);
    assert_eq!(
        encode(&build_query(&a, "", Some("https://example.com/x.git"), env).unwrap()),
        "remote=https%3A%2F%2Fexample.com%2Fx.git&version=1"
    );
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let a: BuildArgs = parse_args(&["-t", "Foo", "."]);
    let e = build_query(&a, "", None, env).unwrap_err();
    assert_eq!(crate::client::exit_code_of(&e), 125);
    assert!(crate::client::error_message(&e).starts_with(
        "invalid argument \"Foo\" for \"-t, --tag\" flag: invalid reference format: repository name (library/Foo) must be lowercase\n\nUsage:"
    ));
    for bad in ["a b", "x:", ":x"] {
        let a: BuildArgs = parse_args(&["-t", bad, "."]);
        assert!(build_query(&a, "", None, env).is_err(), "{bad}");
    }
    for good in [
        "ok/x:Tag",
        "localhost:5000/a/b:1",
        "reg.io/A/b",
        "x@sha256:00",
    ] {
        let a: BuildArgs = parse_args(&["-t", good, "."]);
        let r = build_query(&a, "", None, env);
        assert!(r.is_ok() || good == "reg.io/A/b", "{good}");
    }
    let a: BuildArgs = parse_args(&["--build-arg", "=x", "."]);
    assert!(build_query(&a, "", None, env).is_err());
    let a: BuildArgs = parse_args(&["-m", "foo", "."]);
    assert!(build_query(&a, "", None, env).is_err());
}

#[test]
fn the_query_replaces_bollards() {
    assert_eq!(
        with_query("http://localhost/v1.41/build?dockerfile=x&rm=true", "t=a"),
        "http://localhost/v1.41/build?t=a"
    );
    assert_eq!(
        with_query("unix://x/v1.41/build", "t=a"),
        "unix://x/v1.41/build?t=a"
    );
}

#[test]
fn exit_status_of_a_failed_run() {
    assert_eq!(
        exit_code_of_message("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        3
    );
    assert_eq!(
        exit_code_of_message("The command 'x' returned a non-zero code: 127: oops"),
        127
    );
    assert_eq!(exit_code_of_message("pull access denied"), 1);
}

#[test]
fn upload_line_is_dockers() {
    assert_eq!(
        sending_line(2048),
        "Sending build context to Docker daemon  2.048kB\r\r\n"
    );
    assert_eq!(
        sending_line(123_456_789),
        "Sending build context to Docker daemon  123.5MB\r\r\n"
    );
}

/// The archive's entries: name → (type, mode, uid, gid, link, content).
type Listing = BTreeMap<String, (char, u32, u64, u64, String, Vec<u8>)>;

fn list(tar_bytes: &[u8]) -> (Vec<String>, Listing) {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut order = Vec::new();
    let mut m = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ty = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Regular => 'f',
            _ => '?',
        };
        assert!(h.username_bytes().unwrap_or_default().is_empty());
        order.push(name.clone());
        m.insert(
            name,
            (
                ty,
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                link,
                content,
            ),
        );
    }
    (order, m)
}

fn write(p: &Path, content: &str, mode: u32) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn tar_of(p: Prepared) -> Vec<u8> {
    match p.source {
        Source::Dir(ctx) => ctx.write_tar(Vec::new()).unwrap(),
        Source::Memory(v) => v,
        _ => panic!("not a local context"),
    }
}

fn sample_context() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(&r.join("Dockerfile"), "FROM busybox\n", 0o644);
    write(
        &r.join(".dockerignore"),
        "# comment\nDockerfile\n.dockerignore\n*.log\nsecret\ncache/\n!cache/keep\n",
        0o600,
    );
    write(&r.join("app/main.sh"), "echo hi\n", 0o755);
    write(&r.join("app/debug.log"), "x", 0o644);
    write(&r.join("top.log"), "x", 0o644);
    write(&r.join("secret/key"), "k", 0o600);
    write(&r.join("cache/a"), "a", 0o644);
    write(&r.join("cache/keep"), "keep", 0o644);
    write(&r.join("setuid"), "s", 0o4755);
    symlink("app/main.sh", r.join("link")).unwrap();
    symlink("/nonexistent", r.join("dangling")).unwrap();
    std::fs::hard_link(r.join("app/main.sh"), r.join("hard")).unwrap();
    t
}

#[test]
fn a_directory_context_honours_dockerignore() {
    let t = sample_context();
    let p = context::prepare(t.path().to_str().unwrap(), "", &mut std::io::empty()).unwrap();
    assert_eq!(p.dockerfile, "Dockerfile");
    let (order, m) = list(&tar_of(p));
    // Byte order of names, directories before what they hold; excluded directories with a
    // re-included entry are not sent themselves; `*.log` is for the root only.
    assert_eq!(
        order,
        [
            ".dockerignore",
            "Dockerfile",
            "app/",
            "app/debug.log",
            "app/main.sh",
            "cache/keep",
            "dangling",
            "hard",
            "link",
            "setuid"
        ]
    );
    assert_eq!(m["app/"].0, 'd');
    assert_eq!(m["app/"].1, 0o755);
    assert_eq!(
        m["app/main.sh"],
        ('f', 0o755, 0, 0, String::new(), b"echo hi\n".to_vec())
    );
    assert_eq!(m[".dockerignore"].1, 0o600);
    assert_eq!(m["setuid"].1, 0o4755);
    assert_eq!(m["link"].0, 'l');
    assert_eq!(m["link"].4, "app/main.sh");
    assert_eq!(m["dangling"].4, "/nonexistent");
    // The second name of an inode is a hard link to the first.
    assert_eq!(m["hard"].0, 'h');
    assert_eq!(m["hard"].4, "app/main.sh");
}

#[test]
fn dockerfile_named_by_f_is_sent_even_when_excluded() {
    let t = sample_context();
    write(
        &t.path().join("secret/Dockerfile.dev"),
        "FROM busybox\n",
        0o644,
    );
    let df = t.path().join("secret/Dockerfile.dev");
    let p = context::prepare(
        t.path().to_str().unwrap(),
        df.to_str().unwrap(),
        &mut std::io::empty(),
    )
    .unwrap();
    assert_eq!(p.dockerfile, "secret/Dockerfile.dev");
    let (order, _) = list(&tar_of(p));
    assert!(order.contains(&"secret/Dockerfile.dev".to_string()));
    assert!(!order.contains(&"secret/key".to_string()));
    assert!(!order.contains(&"secret/".to_string()));
}

fn is_random_name(n: &str) -> bool {
    n.strip_prefix(".dockerfile.").is_some_and(|h| {
        h.len() == 20
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[test]
fn dockerfile_from_stdin_gets_a_random_name() {
    let t = sample_context();
    let mut stdin = Cursor::new(b"FROM busybox\nRUN true\n".to_vec());
    let p = context::prepare(t.path().to_str().unwrap(), "-", &mut stdin).unwrap();
    let name = p.dockerfile.clone();
    assert!(is_random_name(&name), "{name}");
    let (order, m) = list(&tar_of(p));
    assert_eq!(order.last(), Some(&name));
    assert_eq!(m[&name].1, 0o600);
    assert_eq!(m[&name].5, b"FROM busybox\nRUN true\n");
    // The context's own Dockerfile follows .dockerignore again; the added one is ignored.
    assert!(!order.contains(&"Dockerfile".to_string()));
    let ignore = String::from_utf8(m[".dockerignore"].5.clone()).unwrap();
    assert!(ignore.starts_with("# comment\n"));
    assert!(ignore.ends_with(&format!("\n{name}\n")));

    // Without a .dockerignore one is added, ignoring itself and the Dockerfile.
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("f"), "x", 0o644);
    let mut stdin = Cursor::new(b"FROM busybox\n".to_vec());
    let p = context::prepare(t.path().to_str().unwrap(), "-", &mut stdin).unwrap();
    let name = p.dockerfile.clone();
    let (order, m) = list(&tar_of(p));
    assert_eq!(order[0], "f");
    assert_eq!(
        m[".dockerignore"].5,
        format!(".dockerignore\n{name}\n").into_bytes()
    );
    assert_eq!(m[".dockerignore"].1, 0o600);
}

#[test]
fn dockerfile_outside_the_context_is_added() {
    let outer = tempfile::tempdir().unwrap();
    write(
        &outer.path().join("Dockerfile.out"),
        "FROM scratch\n",
        0o644,
    );
    write(&outer.path().join("ctx/a"), "a", 0o644);
    let p = context::prepare(
        outer.path().join("ctx").to_str().unwrap(),
        outer.path().join("Dockerfile.out").to_str().unwrap(),
        &mut std::io::empty(),
    )
    .unwrap();
    assert!(is_random_name(&p.dockerfile));
    let name = p.dockerfile.clone();
    let (_, m) = list(&tar_of(p));
    assert_eq!(m[&name].5, b"FROM scratch\n");
}

#[test]
fn lowercase_dockerfile_is_found_and_missing_one_fails() {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("dockerfile"), "FROM busybox\n", 0o644);
    let p = context::prepare(t.path().to_str().unwrap(), "", &mut std::io::empty()).unwrap();
    assert_eq!(p.dockerfile, "dockerfile");
    let e = context::prepare(t.path().to_str().unwrap(), "nope", &mut std::io::empty())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat /"
        ) && e.ends_with("/nope: no such file or directory"),
        "{e}"
    );
    let e = context::prepare("/no/such/dir", "", &mut std::io::empty())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "unable to prepare context: path \"/no/such/dir\" not found"
    );
    let e = context::prepare("-", "-", &mut std::io::empty())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "invalid argument: can't use stdin for both build context and dockerfile"
    );
}

#[test]
fn stdin_is_a_tar_or_a_dockerfile() {
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("Dockerfile"), "FROM busybox\n", 0o644);
    let tar =
        tar_of(context::prepare(t.path().to_str().unwrap(), "", &mut std::io::empty()).unwrap());
    assert!(context::is_archive(&tar[..1024.min(tar.len())]));
    assert!(context::is_archive(&[0x1f, 0x8b, 0x08, 0]));
    assert!(!context::is_archive(b"FROM busybox\n"));
    assert!(!context::is_archive(&[0u8; 1024]));

    let p = context::prepare("-", "", &mut Cursor::new(tar.clone())).unwrap();
    assert_eq!(p.dockerfile, "");
    match p.source {
        Source::StdinArchive { head } => assert_eq!(head, tar[..1024]),
        _ => panic!("expected an archive"),
    }

    let p = context::prepare("-", "", &mut Cursor::new(b"FROM busybox\n".to_vec())).unwrap();
    assert_eq!(p.dockerfile, "Dockerfile");
    let (order, m) = list(&tar_of(p));
    assert_eq!(order, ["Dockerfile"]);
    assert_eq!(m["Dockerfile"].5, b"FROM busybox\n");

    let e = context::prepare("-", "x", &mut Cursor::new(b"FROM busybox\n".to_vec()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ambiguous Dockerfile source"), "{e}");
}

#[test]
fn remote_contexts_go_to_the_daemon() {
    let p = context::prepare("https://example.com/ctx.tar", "", &mut std::io::empty()).unwrap();
    assert!(matches!(p.source, Source::Remote(ref u) if u == "https://example.com/ctx.tar"));
    assert_eq!(
        context::detect_kind("git@github.com:a/b.git").unwrap(),
        context::ContextKind::Remote
    );
}

#[test]
fn prune_output() {
    assert_eq!(prune_report(&[]), "");
    assert_eq!(
        prune_report(&["a".into(), "b".into()]),
        "Deleted build cache objects:\na\nb\n"
    );
}

#[test]
fn bool_flags_take_go_style_values_without_eating_the_context() {
    let a: BuildArgs = parse_args(&["--rm", "--no-cache", "-q", "ctx"]);
    assert!(a.rm && a.no_cache && a.quiet);
    assert_eq!(a.context, "ctx");
    let a: BuildArgs = parse_args(&["--rm=false", "--pull=true", "ctx"]);
    assert!(!a.rm && a.pull);
    assert!(crate::commands::try_parse_args::<BuildArgs>(&[]).is_err());
}

#[test]
fn quiet_output_is_held_apart() {
    let out = Out::new(true);
    out.progress(&sending_line(2048));
    out.build("sha256:abc\n");
    assert_eq!(Out::take(&out.build), "sha256:abc\n");
    out.build("Step 1/1 : FROM x\n");
    assert_eq!(
        out.held(),
        "Sending build context to Docker daemon  2.048kB\r\r\nStep 1/1 : FROM x\n"
    );
}

#[test]
fn secret_flags_parse_as_buildx() {
    use super::secrets::{parse, Source, Spec};
    let set = |k: &str| k == "SET";
    let spec = |id: &str, source: Source| Spec {
        id: id.into(),
        source,
    };
    let file = |p: &str| Source::File(p.into());
    let var = |v: &str| Source::Env(v.into());
    for (value, want) in [
        ("id=a,src=/p", spec("a", file("/p"))),
        ("id=a,source=/p,type=file", spec("a", file("/p"))),
        ("ID=a,ENV=V", spec("a", var("V"))),
        // type=env takes src as the variable's name.
        ("id=a,src=V,type=env", spec("a", var("V"))),
        // id alone: the variable when it is set, else the file of that name.
        ("id=SET", spec("SET", var("SET"))),
        ("id=unset", spec("unset", file("unset"))),
        ("\"id=a,b\",src=x", spec("a,b", file("x"))),
    ] {
        assert_eq!(parse(value, set).unwrap(), want, "{value}");
    }
    for (value, why) in [
        ("src=/p", "secret missing ID"),
        ("id", "invalid field 'id' must be a key=value pair"),
        ("id=a,type=ssh", "unsupported secret type \"ssh\""),
        ("id=a,mode=0400", "unexpected key 'mode' in 'mode=0400'"),
    ] {
        let e = parse(value, set).unwrap_err();
        assert_eq!(crate::client::exit_code_of(&e), 125, "{value}");
        let msg = crate::client::error_message(&e);
        assert!(
            msg.starts_with(&format!(
                "invalid argument \"{value}\" for \"--secret\" flag: {why}"
            )),
            "{msg}"
        );
    }
}

#[test]
fn secrets_load_and_travel_in_one_header() {
    use super::secrets::{header_value, load, MAX_BYTES};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tok");
    std::fs::write(&f, b"from file\n").unwrap();
    let env = |k: &str| (k == "TOKEN").then(|| b"from env".to_vec());
    let values = vec![
        format!("id=f,src={}", f.display()),
        "id=e,env=TOKEN".to_string(),
        "id=TOKEN".to_string(),
        "id=none,env=UNSET".to_string(),
    ];
    let s = load(&values, env).unwrap();
    assert_eq!(s["f"], b"from file\n");
    assert_eq!(s["e"], b"from env");
    assert_eq!(s["TOKEN"], b"from env");
    assert_eq!(s["none"], b"");
    let h = header_value(&s).unwrap().unwrap();
    let json: BTreeMap<String, String> =
        serde_json::from_slice(&STANDARD.decode(h).unwrap()).unwrap();
    assert_eq!(STANDARD.decode(&json["f"]).unwrap(), b"from file\n");
    assert_eq!(json.len(), 4);
    assert_eq!(header_value(&BTreeMap::new()).unwrap(), None);
    // A file that is not there, and more than the header may carry.
    let e = load(&["id=x,src=/nonexistent/secret".to_string()], env).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("failed to read secret x: /nonexistent/secret: "),
        "{e}"
    );
    let big = BTreeMap::from([("a".to_string(), vec![0u8; MAX_BYTES + 1])]);
    let e = header_value(&big).unwrap_err().to_string();
    assert!(e.contains("at most") || e.contains("more than"), "{e}");
    assert!(!e.contains("\0"));
}

#[test]
fn step_timer_reports_a_step_when_the_next_begins_and_at_the_end() {
    assert!(is_step_line("Step 1/3 : FROM busybox\n"));
    assert!(is_step_line("Step 12/120 : RUN echo ' : '\n"));
    for not in [
        " ---> Running in abc\n",
        "Step x/3 : y\n",
        "Step 1/ : y\n",
        "Steps 1/2 : y\n",
    ] {
        assert!(!is_step_line(not), "{not}");
    }
    let mut t = StepTimer::default();
    assert_eq!(t.finish(), None);
    assert_eq!(t.before("Step 1/2 : FROM busybox\n"), None);
    assert_eq!(t.before(" ---> 0123456789ab\n"), None);
    let line = t.before("Step 2/2 : RUN true\n").unwrap();
    assert!(
        line.starts_with(" ---> Done in ") && line.ends_with("s\n"),
        "{line}"
    );
    assert!(t.finish().is_some());
    assert_eq!(t.finish(), None);
    assert_eq!(
        step_time_line(std::time::Duration::from_millis(1250)),
        " ---> Done in 1.2s\n"
    );
}
