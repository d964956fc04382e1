//! `docker events` / `berth events`: Docker's action names and order for a whole container
//! lifecycle, image events, filters, since/until replay and a live stream.

use berth_harness::{ok, TestDaemon};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn lifecycle_order_image_events_and_filters() {
    let d = TestDaemon::start(BIN).unwrap();
    let since = now();
    d.import_busybox().unwrap();
    let o = d
        .docker(&[
            "run", "--name", "ev1", "-l", "tier=web", "busybox", "sh", "-c", "exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    ok(&mut d.docker(&["run", "-d", "--name", "ev2", "busybox", "sleep", "100"]));
    ok(&mut d.docker(&["stop", "-t", "1", "ev2"]));
    ok(&mut d.docker(&["start", "ev2"]));
    ok(&mut d.docker(&["restart", "-t", "0", "ev2"]));
    ok(&mut d.docker(&["kill", "ev2"]));
    ok(&mut d.docker(&["rename", "ev2", "ev3"]));
    ok(&mut d.docker(&["rm", "ev1", "ev3"]));
    ok(&mut d.docker(&["tag", "busybox", "other:1"]));
    ok(&mut d.docker(&["rmi", "other:1"]));
    let until = now();

    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    for cli in ["docker", "berth"] {
        let args = [
            "events", "--since", &since, "--until", &until, "--format", fmt,
        ];
        let out = if cli == "docker" {
            ok(&mut d.docker(&args))
        } else {
            ok(&mut d.berth(&args))
        };
        let got = lines(&out);
        let want: Vec<String> = [
            "image import",
            "image tag busybox:latest",
            "container create ev1",
            "container attach ev1",
            "container start ev1",
            "container die ev1",
            "container create ev2",
            "container start ev2",
            "container kill ev2",
            "container kill ev2",
            "container die ev2",
            "container stop ev2",
            "container start ev2",
            "container kill ev2",
            "container kill ev2",
            "container die ev2",
            "container stop ev2",
            "container start ev2",
            "container restart ev2",
            "container kill ev2",
            "container die ev2",
            "container rename ev3",
            "container destroy ev1",
            "container destroy ev3",
            "image tag other:1",
            "image untag",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The import's name attribute is the image ID; compare the action only there.
        let mut got: Vec<String> = got
            .iter()
            .map(|l| {
                if l.starts_with("image import") || l.starts_with("image untag") {
                    l.split(' ').take(2).collect::<Vec<_>>().join(" ")
                } else {
                    l.clone()
                }
            })
            .collect();
        // dockerd's order: a container's network connects before its start, disconnects
        // before its die; the rest of this test is about containers and images.
        let connect = got.iter().position(|l| l == "network connect bridge");
        let start = got.iter().position(|l| l == "container start ev1");
        assert!(connect.is_some() && connect < start, "{got:?}");
        got.retain(|l| !l.starts_with("network "));
        // `docker rm a b` removes in parallel.
        if let Some(i) = got.iter().position(|l| l.starts_with("container destroy")) {
            got[i..i + 2].sort();
        }
        assert_eq!(got, want, "{cli}");
    }

    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["events", "--since", &since, "--until", &until]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        lines(&ok(&mut d.docker(&a)))
    };
    let die = run(&[
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(
        die,
        ["3", "137", "137", "137"].map(String::from),
        "die exit codes"
    );
    let kills = run(&[
        "--filter",
        "event=kill",
        "--format",
        "{{.Actor.Attributes.signal}}",
    ]);
    // busybox `sleep` as PID 1 ignores SIGTERM, so stop and restart escalate to SIGKILL.
    assert_eq!(kills, ["15", "9", "15", "9", "9"].map(String::from));
    let labelled = run(&["--filter", "label=tier=web", "--format", "{{.Action}}"]);
    assert_eq!(
        labelled,
        ["create", "attach", "start", "die", "destroy"].map(String::from)
    );
    let images = run(&[
        "--filter",
        "type=image",
        "--filter",
        "event=tag",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(images.len(), 2);
    let by_name = run(&["--filter", "container=ev1", "--format", "{{.Action}}"]);
    assert_eq!(by_name.len(), 5, "{by_name:?}");
    // A bad filter is refused as dockerd does.
    let o = d
        .docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "colour=red",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid filter 'colour'"));
}

#[test]
fn live_stream_sends_events_as_they_happen() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    for cli in ["docker", "berth"] {
        let args = [
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}}",
        ];
        let mut child = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        }
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        // The stream must be connected before the container runs; give the CLI a moment.
        std::thread::sleep(Duration::from_millis(300));
        let name = format!("live-{cli}");
        ok(&mut d.docker(&["run", "--rm", "--name", &name, "busybox", "true"]));
        let mut r = BufReader::new(child.stdout.take().unwrap());
        let mut got = Vec::new();
        let t0 = Instant::now();
        while got.len() < 5 && t0.elapsed() < Duration::from_secs(10) {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap() == 0 {
                break;
            }
            got.push(l.trim().to_string());
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            got,
            ["create", "attach", "start", "die", "destroy"],
            "{cli}"
        );
    }
}

#[test]
fn health_exec_and_pause_events_reach_the_stream() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let since = now();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "hev",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ]));
    let t0 = Instant::now();
    while !ok(&mut d.docker(&["inspect", "-f", "{{.State.Health.Status}}", "hev"]))
        .contains("healthy")
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "never healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(&mut d.docker(&["exec", "hev", "true"]));
    ok(&mut d.docker(&["pause", "hev"]));
    ok(&mut d.docker(&["unpause", "hev"]));
    ok(&mut d.docker(&["rm", "-f", "hev"]));
    let until = now();
    let out = ok(&mut d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hev",
        "--format",
        "{{.Action}}",
    ]));
    let got: Vec<&str> = out.lines().collect();
    let pos = |a: &str| {
        got.iter()
            .position(|l| *l == a)
            .unwrap_or_else(|| panic!("{a} missing from {got:?}"))
    };
    assert!(pos("start") < pos("health_status: healthy"));
    assert!(pos("exec_create: true ") < pos("exec_start: true "));
    assert!(pos("exec_start: true ") < pos("exec_die"));
    assert!(pos("pause") < pos("unpause"));
    assert!(pos("unpause") < pos("destroy"));
    let health = ok(&mut d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]));
    assert_eq!(health.lines().next(), Some("health_status: healthy"));
}
