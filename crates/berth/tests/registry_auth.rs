//! A registry with htpasswd basic auth: `docker login` (`POST /auth`), pushes and pulls with
//! the stored credentials (`X-Registry-Auth`), builds with them (`X-Registry-Config`), and
//! bad or missing credentials refused before any progress is streamed.

mod registry_support;

use berth_harness::build::context;
use berth_harness::registry::{write_htpasswd, TestRegistry};
use berth_harness::{fails, ok, TestDaemon};
use registry_support::*;
use std::io::Write;
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn login(d: &TestDaemon, server: &str, user: &str, password: &str) -> std::process::Output {
    let mut child = d
        .docker(&["login", "-u", user, "--password-stdin", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn login_then_push_pull_and_build_with_the_stored_credentials() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(dir.path(), "u").unwrap();
    let reg = TestRegistry::distribution(&d.netns, 5141, Some(&htpasswd)).unwrap();
    credentials_flow(&d, &reg);
}

/// Berth's registry, basic auth and then its bearer-token flow (realm, service, scope).
#[test]
fn the_same_with_berths_registry_basic_and_token_auth() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(dir.path(), "u").unwrap();
    let h = htpasswd.to_string_lossy().into_owned();
    let basic = TestRegistry::berth(&d.berth_bin, &d.netns, 5149, &["--htpasswd", &h]).unwrap();
    credentials_flow(&d, &basic);
    d.import_busybox().unwrap();
    let token =
        TestRegistry::berth(&d.berth_bin, &d.netns, 5150, &["--htpasswd", &h, "--token"]).unwrap();
    credentials_flow(&d, &token);
}

fn credentials_flow(d: &TestDaemon, reg: &TestRegistry) {
    let r = reg.addr.clone();

    let bad = login(d, &r, "u", "wrong");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    // distribution's text ("… failed with status: 401 Unauthorized") or the registry's own.
    assert!(err.contains("401") || err.contains("unauthorized"), "{err}");

    let good = login(d, &r, "u", "secret");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("Login Succeeded"));

    let img = format!("{r}/x/busybox:1");
    ok(&mut d.docker(&["tag", "busybox", &img]));
    let out = ok(&mut d.docker(&["push", &img]));
    assert!(out.contains(": Pushed"), "{out}");
    ok(&mut d.docker(&["rmi", "-f", &img, "busybox"]));
    let out = ok(&mut d.docker(&["pull", &img]));
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(d.run_rm(&[&img, "echo", "private"]), "private\n");

    // The legacy builder sends every stored credential in X-Registry-Config.
    ok(&mut d.docker(&["rmi", "-f", &img]));
    let ctx = context("basic");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {img}\nRUN echo from-private > /p\n"),
    )
    .unwrap();
    let (code, out) = d.legacy_build(ctx.path(), &["-t", "from-private"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Pulling from x/busybox"), "{out}");
    assert_eq!(d.run_rm(&["from-private", "cat", "/p"]), "from-private\n");

    // GET /distribution with the stored credentials (what `docker buildx imagetools`… and
    // `docker service` use).
    let (s, b) = api(
        d,
        "GET",
        &format!("/distribution/{img}/json"),
        &[auth_header("u", "secret", &r)],
        None,
    );
    assert_eq!(s, 200, "{b}");

    // Logged out: the pull fails before any progress, with dockerd's hint.
    ok(&mut d.docker(&["logout", &r]));
    ok(&mut d.docker(&["rmi", "-f", &img]));
    let err = fails(&mut d.docker(&["pull", &img]));
    assert!(
        err.contains(&format!(
            "pull access denied for {r}/x/busybox, repository does not exist or may require 'docker login'"
        )),
        "{err}"
    );
}

#[test]
fn bad_or_missing_credentials_are_statuses_before_any_progress() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(dir.path(), "u").unwrap();
    let reg = TestRegistry::distribution(&d.netns, 5141, Some(&htpasswd)).unwrap();
    let r = reg.addr.clone();
    let good = auth_header("u", "secret", &r);
    let wrong = auth_header("u", "wrong", &r);

    // POST /auth.
    let body = |p: &str| {
        serde_json::json!({"username": "u", "password": p, "serveraddress": r}).to_string()
    };
    let (s, b) = api(&d, "POST", "/auth", &[], Some(body("wrong").as_bytes()));
    assert_eq!(s, 401, "{b}\nregistry log: {}", reg.log_text());
    let (s, b) = api(&d, "POST", "/auth", &[], Some(body("secret").as_bytes()));
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["Status"], "Login Succeeded");
    assert!(v["IdentityToken"].is_string());

    // Push: a wrong password or none is a 401 before "The push refers to…".
    let img = format!("{r}/x/busybox");
    ok(&mut d.docker(&["tag", "busybox", &format!("{img}:1")]));
    let push = |h: &[String]| api(&d, "POST", &format!("/images/{img}/push?tag=1"), h, None);
    for h in [vec![wrong.clone()], vec![]] {
        let (s, b) = push(&h);
        assert_eq!(s, 401, "{b}");
        assert!(!b.contains("The push refers to"), "{b}");
    }
    let (s, b) = push(std::slice::from_ref(&good));
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("1: digest: sha256:"), "{b}");

    // Pull: wrong password 401, none 404 with dockerd's hint — no progress either way.
    let create = |h: &[String]| {
        api(
            &d,
            "POST",
            &format!("/images/create?fromImage={img}&tag=1"),
            h,
            None,
        )
    };
    let (s, b) = create(std::slice::from_ref(&wrong));
    assert_eq!(s, 401, "{b}");
    assert!(!b.contains("Pulling from"), "{b}");
    let (s, b) = create(&[]);
    assert_eq!(s, 404, "{b}");
    assert!(b.contains("pull access denied for"), "{b}");
    assert!(!b.contains("Pulling from"), "{b}");
    let (s, b) = create(std::slice::from_ref(&good));
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("Status: Image is up to date"), "{b}");

    // The same credentials in the standard base64 alphabet, unpadded.
    use base64::Engine as _;
    let plain = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(serde_json::json!({"username": "u", "password": "secret"}).to_string());
    let (s, b) = create(&[format!("X-Registry-Auth: {plain}")]);
    assert_eq!(s, 200, "{b}");
}
