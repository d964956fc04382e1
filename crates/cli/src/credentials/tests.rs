use super::*;
use std::os::unix::fs::PermissionsExt;

/// A fake `docker-credential-test` speaking docker's helper protocol, keeping one file per
/// server next to itself and a log of its calls.
const FAKE_HELPER: &str = r#"#!/bin/sh
d=$(dirname "$0")/store; mkdir -p "$d"
echo "$1" >> "$d/calls"
key() { printf '%s' "$1" | tr '/:' '__'; }
case "$1" in
get) url=$(cat); f="$d/$(key "$url")"
     if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store) json=$(cat); url=$(printf '%s' "$json" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
     printf '%s' "$json" > "$d/$(key "$url")" ;;
erase) url=$(cat); f="$d/$(key "$url")"
     if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
list) printf '{'; sep=''; for f in "$d"/*_*; do [ -f "$f" ] || continue
        u=$(sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' "$f"); n=$(sed 's/.*"Username":"\([^"]*\)".*/\1/' "$f")
        printf '%s"%s":"%s"' "$sep" "$u" "$n"; sep=','; done; printf '}' ;;
esac
"#;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let helper = dir.path().join("bin/docker-credential-test");
        std::fs::write(&helper, FAKE_HELPER).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        if !config.is_empty() {
            std::fs::write(dir.path().join("config.json"), config).unwrap();
        }
        Env { dir }
    }

    fn config(&self) -> ConfigFile {
        let mut c = ConfigFile::load(self.dir.path());
        let mut path = self.dir.path().join("bin").into_os_string();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        c.set_helper_path(path);
        c
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("config.json")).unwrap()
    }

    fn helper_file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("bin/store").join(name)).ok()
    }

    fn calls(&self) -> String {
        self.helper_file("calls").unwrap_or_default()
    }
}

fn user(server: &str, name: &str, pass: &str) -> AuthConfig {
    AuthConfig {
        username: name.into(),
        password: pass.into(),
        serveraddress: server.into(),
        ..Default::default()
    }
}

#[test]
fn header_is_base64url_of_docker_json() {
    assert_eq!(registry_auth_header(&AuthConfig::default()), "e30=");
    // What docker 28.2 sent for `u`/`secret` on 127.0.0.1:5161.
    assert_eq!(
        registry_auth_header(&user("127.0.0.1:5161", "u", "secret")),
        "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InNlY3JldCIsInNlcnZlcmFkZHJlc3MiOiIxMjcuMC4wLjE6NTE2MSJ9"
    );
    // The URL alphabet, never '+' or '/' (moby rejects those).
    let odd = user("r", "?>?>", "~~~");
    let h = registry_auth_header(&odd);
    assert!(!h.contains('+') && !h.contains('/'), "{h}");
    let back: AuthConfig = serde_json::from_slice(&URL_SAFE.decode(&h).unwrap()).unwrap();
    assert_eq!(back, odd);
    let mut all = BTreeMap::new();
    all.insert(
        "127.0.0.1:5161".to_string(),
        user("127.0.0.1:5161", "u", "secret"),
    );
    assert_eq!(
        registry_config_header(&all),
        "eyIxMjcuMC4wLjE6NTE2MSI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InNlY3JldCIsInNlcnZlcmFkZHJlc3MiOiIxMjcuMC4wLjE6NTE2MSJ9fQ=="
    );
}

#[test]
fn keys_and_hostnames() {
    assert_eq!(key_for_domain("docker.io"), INDEX_SERVER);
    assert_eq!(key_for_domain("127.0.0.1:5000"), "127.0.0.1:5000");
    assert_eq!(
        convert_to_hostname("http://127.0.0.1:5161/v2/"),
        "127.0.0.1:5161"
    );
    assert_eq!(
        convert_to_hostname("https://index.docker.io/v1/"),
        "index.docker.io"
    );
    assert_eq!(
        convert_to_hostname("reg.example.com/path"),
        "reg.example.com"
    );
    assert_eq!(convert_to_hostname("reg:5000"), "reg:5000");
}

#[test]
fn file_auths_are_read_written_and_other_keys_kept() {
    let env = Env::new(
        r#"{"detachKeys":"ctrl-x,x","auths":{"https://old.example.com/v1/":{"auth":"YTpi"},"hub":{"auth":"%%%"}},"zzz":[1,2]}"#,
    );
    let mut c = env.config();
    // Exact key, a legacy URL key found by its host, nothing, a corrupt entry.
    assert_eq!(c.get("old.example.com").unwrap().username, "a");
    assert_eq!(c.get("old.example.com").unwrap().password, "b");
    assert_eq!(c.get("nowhere").unwrap(), AuthConfig::default());
    assert_eq!(c.get("hub").unwrap().username, "");
    let resolved = c.resolve("old.example.com");
    assert_eq!(
        serde_json::to_string(&resolved).unwrap(),
        r#"{"username":"a","password":"b","serveraddress":"https://old.example.com/v1/"}"#
    );

    let stored = c.store(&user("127.0.0.1:5161", "u", "secret")).unwrap();
    assert_eq!(
        stored,
        Stored::Written {
            plain_password: true
        }
    );
    let meta = std::fs::metadata(env.dir.path().join("config.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = env.text();
    assert!(text.starts_with("{\n\t\"auths\": {\n"), "{text}");
    assert!(
        text.contains("\"127.0.0.1:5161\": {\n\t\t\t\"auth\": \"dTpzZWNyZXQ=\"\n\t\t}"),
        "{text}"
    );
    assert!(text.contains("\"detachKeys\": \"ctrl-x,x\"") && text.contains("\"zzz\""));
    // The same credentials again change nothing (and docker warns only on a change).
    let mut again = env.config();
    assert_eq!(
        again.store(&user("127.0.0.1:5161", "u", "secret")).unwrap(),
        Stored::Unchanged
    );

    // An identity token replaces the password.
    let tok = AuthConfig {
        username: "u".into(),
        identitytoken: "tkn".into(),
        serveraddress: "tok.example".into(),
        ..Default::default()
    };
    assert_eq!(
        again.store(&tok).unwrap(),
        Stored::Written {
            plain_password: false
        }
    );
    let back = env.config().get("tok.example").unwrap();
    assert_eq!(
        (back.username.as_str(), back.identitytoken.as_str()),
        ("u", "tkn")
    );

    let mut c = env.config();
    c.erase("127.0.0.1:5161").unwrap();
    c.erase("127.0.0.1:5161").unwrap();
    assert!(!env.text().contains("5161"));
    assert!(env.text().contains("detachKeys"));
}

#[test]
fn an_unreadable_config_is_never_overwritten() {
    let env = Env::new("{not json");
    let mut c = env.config();
    assert!(c
        .load_warning()
        .unwrap()
        .contains("Error loading config file"));
    assert!(c.store(&user("r", "u", "p")).is_err());
    assert_eq!(env.text(), "{not json");
}

#[test]
fn creds_store_helper_round_trip() {
    let env = Env::new(r#"{"credsStore":"test"}"#);
    let mut c = env.config();
    assert_eq!(c.store_for("127.0.0.1:5161"), Store::Helper("test".into()));
    // Nothing stored yet: "not found" is no error, the credentials are empty.
    assert_eq!(c.get("127.0.0.1:5161").unwrap(), AuthConfig::default());
    assert_eq!(
        c.store(&user("127.0.0.1:5161", "u", "secret")).unwrap(),
        Stored::Written {
            plain_password: false
        }
    );
    assert_eq!(
        env.helper_file("127.0.0.1_5161").unwrap(),
        r#"{"ServerURL":"127.0.0.1:5161","Username":"u","Secret":"secret"}"#
    );
    // The file keeps an empty entry, as docker writes it.
    assert!(
        env.text().contains("\"127.0.0.1:5161\": {}"),
        "{}",
        env.text()
    );
    let got = env.config().get("127.0.0.1:5161").unwrap();
    assert_eq!(got, user("127.0.0.1:5161", "u", "secret"));
    let all = env.config().all().unwrap();
    assert_eq!(all.get("127.0.0.1:5161"), Some(&got));

    // Identity tokens travel as Username "<token>".
    let tok = AuthConfig {
        username: "u".into(),
        identitytoken: "tkn".into(),
        serveraddress: "tok.example".into(),
        ..Default::default()
    };
    env.config().store(&tok).unwrap();
    assert!(env
        .helper_file("tok.example")
        .unwrap()
        .contains(r#""Username":"<token>","Secret":"tkn""#));
    let got = env.config().get("tok.example").unwrap();
    assert_eq!(
        (got.username.as_str(), got.identitytoken.as_str()),
        ("", "tkn")
    );

    let mut c = env.config();
    c.erase("127.0.0.1:5161").unwrap();
    assert!(env.helper_file("127.0.0.1_5161").is_none());
    assert!(c.erase("127.0.0.1:5161").unwrap_err().0.contains(NOT_FOUND));
    assert!(env.calls().lines().any(|l| l == "erase"));
}

#[test]
fn cred_helpers_win_per_registry() {
    let env = Env::new(
        r#"{"auths":{"a.example":{"auth":"YTpi"}},"credHelpers":{"h.example":"test","gone.example":"missing"}}"#,
    );
    let mut c = env.config();
    assert_eq!(c.store_for("a.example"), Store::File);
    assert_eq!(c.store_for("h.example"), Store::Helper("test".into()));
    c.store(&user("h.example", "hu", "hp")).unwrap();
    assert!(
        !env.text().contains("aHU6aHA="),
        "the password stays in the helper"
    );
    let c = env.config();
    assert_eq!(c.resolve("h.example").password, "hp");
    assert_eq!(c.resolve("a.example").password, "b");
    // A helper that is not installed: anonymous for pulls, docker's error for login.
    assert_eq!(c.resolve("gone.example"), AuthConfig::default());
    let err = env
        .config()
        .store(&user("gone.example", "u", "p"))
        .unwrap_err();
    assert_eq!(
        err.0,
        "error storing credentials - err: exec: \"docker-credential-missing\": executable file not found in $PATH, out: ``"
    );
    let all = c.all().unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a.example", "h.example"]);
    // A helper name is never a path.
    let env = Env::new(r#"{"credsStore":"../../bin/sh"}"#);
    assert!(env
        .config()
        .get("x")
        .unwrap_err()
        .0
        .contains("invalid credential helper name"));
}
