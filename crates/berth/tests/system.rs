//! Protocol basics: ping, version negotiation, info, error shapes.

use berth_harness::{http, ok, TestDaemon};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

#[test]
fn ping_version_and_info() {
    let d = TestDaemon::start(BIN).unwrap();
    let (status, head, body) = http(&d.socket, "GET", "/_ping", None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, b"OK");
    let lower = head.to_ascii_lowercase();
    for h in [
        "api-version: 1.47",
        "ostype: linux",
        "swarm: inactive",
        "builder-version: 1",
        "cache-control: no-cache",
    ] {
        assert!(lower.contains(h), "missing {h} in {head}");
    }
    let (status, head, body) = http(&d.socket, "HEAD", "/_ping", None).unwrap();
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(head.to_ascii_lowercase().contains("api-version"));

    for path in ["/version", "/v1.24/version", "/v1.47/version"] {
        let (status, _, body) = http(&d.socket, "GET", path, None).unwrap();
        assert_eq!(status, 200, "{path}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ApiVersion"], "1.47");
        assert_eq!(v["MinAPIVersion"], "1.24");
    }
    let (status, _, body) = http(&d.socket, "GET", "/v1.99/version", None).unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("too new"));
    let (status, _, body) = http(&d.socket, "GET", "/v1.12/version", None).unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("too old"));

    let out = ok(&mut d.docker(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]));
    assert_eq!(out.trim(), "1.47 linux");
    let out = ok(&mut d.docker(&[
        "info",
        "--format",
        "{{.Containers}} {{.Images}} {{.OSType}} {{.Driver}}",
    ]));
    assert_eq!(out.trim(), "0 0 linux overlayfs");
    let out = ok(&mut d.berth(&["version"]));
    assert!(out.contains("1.47"), "{out}");
    ok(&mut d.berth(&["info"]));
}

#[test]
fn errors_have_docker_shapes() {
    let d = TestDaemon::start(BIN).unwrap();
    let (status, head, body) = http(&d.socket, "GET", "/v1.47/containers/nope/json", None).unwrap();
    assert_eq!(status, 404);
    assert!(head.to_ascii_lowercase().contains("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["message"], "No such container: nope");
    let (status, _, body) = http(&d.socket, "GET", "/images/nope/json", None).unwrap();
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("No such image: nope"));
    // Malformed and wrongly typed bodies: 400, and the daemon keeps serving.
    let (status, _, _) = http(&d.socket, "POST", "/containers/create", Some(b"{not json")).unwrap();
    assert_eq!(status, 400);
    let (status, _, _) = http(
        &d.socket,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","Cmd":"not-a-list","Tty":"yes"}"#),
    )
    .unwrap();
    assert_eq!(status, 400);
    let (status, _, _) = http(&d.socket, "GET", "/containers/json?filters=%7Bbad", None).unwrap();
    assert_eq!(status, 400);
    let (status, _, _) = http(&d.socket, "GET", "/no/such/route", None).unwrap();
    assert_eq!(status, 404);
    assert!(d.ping());
}
