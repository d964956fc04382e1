//! Our CLI's registry commands against a real registry (Debian's docker-registry with htpasswd
//! auth, in the daemon's network namespace): `berth login` keeps the credentials in
//! $DOCKER_CONFIG/config.json, push and pull send them, `berth logout` forgets them; a wrong
//! password fails with the daemon's message; piped pull/push output is docker's plain lines.

use berth_harness::registry::{write_htpasswd, TestRegistry};
use berth_harness::{ok, output, with_stdin, TestDaemon};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// Our CLI on `d` with the client config in `cfg` and no terminal anywhere.
fn berth(d: &TestDaemon, cfg: &Path, args: &[&str]) -> Command {
    let mut c = d.berth(args);
    c.env("DOCKER_CONFIG", cfg)
        .env("DOCKER_CLI_HINTS", "false")
        .stdin(Stdio::null());
    c
}

/// The real docker CLI on `d`, sharing the client config `cfg`.
fn docker(d: &TestDaemon, cfg: &Path, args: &[&str]) -> Command {
    let mut c = d.docker(args);
    c.env("DOCKER_CONFIG", cfg).stdin(Stdio::null());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Progress lines whose presence depends on timing (a layer fast enough skips them).
fn settled(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| {
            !l.ends_with(": Waiting")
                && !l.ends_with(": Verifying Checksum")
                && !l.ends_with(": Download complete")
        })
        .map(str::to_string)
        .collect()
}

fn config_auths(cfg: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&t).unwrap()["auths"].clone()
}

#[test]
fn login_push_pull_logout_through_an_authenticated_registry() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(tmp.path(), "u").unwrap();
    let reg = TestRegistry::distribution(&d.netns, 5000, Some(&htpasswd)).unwrap();
    let cfg = tmp.path().join("cfg");
    let addr = reg.addr.as_str();

    // A wrong password: the daemon's error, exit 1, nothing stored.
    let o = output(&mut berth(
        &d,
        &cfg,
        &["login", "-u", "u", "-p", "wrong", addr],
    ));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = text(&o.stderr);
    assert!(
        err.starts_with(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n\
             Error response from daemon: "
        ),
        "{err}"
    );
    assert!(!cfg.join("config.json").exists());
    // No password and no terminal.
    let o = output(&mut berth(&d, &cfg, &["login", addr]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "Error: Cannot perform an interactive login from a non TTY device\n"
    );

    // Pushing before login: the registry wants credentials.
    ok(&mut d.berth(&["tag", "busybox:latest", &format!("{addr}/bb:1")]));
    let o = output(&mut berth(&d, &cfg, &["push", &format!("{addr}/bb:1")]));
    assert_eq!(o.status.code(), Some(1), "{o:?}");

    let o = with_stdin(
        &mut berth(&d, &cfg, &["login", "-u", "u", "--password-stdin", addr]),
        b"secret\n",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o.stdout), "Login Succeeded\n");
    let cfg_file = cfg.join("config.json");
    assert_eq!(
        text(&o.stderr),
        format!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/go/credential-store/\n\n",
            cfg_file.display()
        )
    );
    assert_eq!(config_auths(&cfg)[addr]["auth"], "dTpzZWNyZXQ=");
    let mode = std::fs::metadata(&cfg_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Stored credentials: login again without flags.
    let o = output(&mut berth(&d, &cfg, &["login", addr]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o.stdout), "Login Succeeded\n");
    assert!(
        text(&o.stderr).starts_with("Authenticating with existing credentials... [Username: u]\n")
    );

    // Push: docker's plain lines, the digest line last.
    let o = output(&mut berth(&d, &cfg, &["push", &format!("{addr}/bb:1")]));
    assert!(o.status.success(), "{o:?}");
    let out = text(&o.stdout);
    assert!(!out.contains('\x1b'), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{addr}/bb]")
    );
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out}");
    assert!(
        lines.last().unwrap().starts_with("1: digest: sha256:")
            && lines.last().unwrap().contains(" size: "),
        "{out}"
    );
    // -q: nothing but the reference.
    let o = output(&mut berth(
        &d,
        &cfg,
        &["push", "-q", &format!("{addr}/bb:1")],
    ));
    assert_eq!(text(&o.stdout), format!("{addr}/bb:1\n"));

    // Pull, piped: the same lines as the docker CLI prints for the same pull.
    let pull = |which: &str| {
        // Every layer goes: the pull downloads them all.
        for img in [format!("{addr}/bb:1"), "busybox:latest".to_string()] {
            let _ = output(&mut d.berth(&["rmi", "-f", &img]));
        }
        let mut cmd = if which == "docker" {
            docker(&d, &cfg, &["pull", &format!("{addr}/bb:1")])
        } else {
            berth(&d, &cfg, &["pull", &format!("{addr}/bb:1")])
        };
        let o = output(&mut cmd);
        assert!(o.status.success(), "{which}: {o:?}");
        text(&o.stdout)
    };
    let ours = pull("berth");
    let theirs = pull("docker");
    assert!(
        !ours.contains('\x1b') && !ours.contains("Downloading"),
        "{ours}"
    );
    assert_eq!(settled(&ours), settled(&theirs));
    assert!(ours.starts_with("1: Pulling from bb\n"), "{ours}");
    assert!(
        ours.ends_with(&format!(
            "Status: Downloaded newer image for {addr}/bb:1\n{addr}/bb:1\n"
        )),
        "{ours}"
    );

    // Logout forgets them; the registry refuses us again.
    let o = output(&mut berth(&d, &cfg, &["logout", addr]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        text(&o.stdout),
        format!("Removing login credentials for {addr}\n")
    );
    assert!(config_auths(&cfg).get(addr).is_none());
    ok(&mut d.berth(&["rmi", "-f", &format!("{addr}/bb:1")]));
    let o = output(&mut berth(
        &d,
        &cfg,
        &["pull", "-q", &format!("{addr}/bb:1")],
    ));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(text(&o.stdout).is_empty());
    assert!(!text(&o.stderr).is_empty());
}

#[test]
fn run_pulls_a_missing_image_with_stored_credentials() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(tmp.path(), "u").unwrap();
    let reg = TestRegistry::distribution(&d.netns, 5000, Some(&htpasswd)).unwrap();
    let cfg = tmp.path().join("cfg");
    let image = format!("{}/run/bb:latest", reg.addr);
    ok(&mut berth(
        &d,
        &cfg,
        &["login", "-u", "u", "-p", "secret", &reg.addr],
    ));
    ok(&mut d.berth(&["tag", "busybox:latest", &image]));
    ok(&mut berth(&d, &cfg, &["push", "-q", &image]));
    ok(&mut d.berth(&["rmi", "-f", &image, "busybox:latest"]));

    let o = output(&mut berth(
        &d,
        &cfg,
        &["run", "--rm", "--network", "none", &image, "echo", "pulled"],
    ));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o.stdout), "pulled\n");
    let err = text(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "Unable to find image '{image}' locally\nlatest: Pulling from run/bb\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("Status: Downloaded newer image for {image}\n")),
        "{err}"
    );
}
