//! Our CLI prints what the docker CLI prints for the same daemon state.

use berth_harness::{ok, output, TestDaemon};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

#[test]
fn berth_and_docker_print_the_same() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    ok(&mut d.docker(&["tag", "busybox", "me/app:1"]));
    let run = output(&mut d.docker(&[
        "run",
        "--name",
        "done",
        "-l",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 2",
    ]));
    assert_eq!(run.status.code(), Some(2));
    ok(&mut d.berth(&["run", "-d", "--name", "up", "busybox", "sleep", "60"]));
    ok(&mut d.docker(&["create", "--name", "fresh", "busybox", "true"]));

    // The docker CLI walks one image's tags through a Go map, so their row order is random:
    // rows are compared as sorted lines.
    let lines = |b: &[u8]| {
        let mut l: Vec<String> = String::from_utf8_lossy(b)
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let same = |args: &[&str]| {
        let ours = output(&mut d.berth(args));
        let theirs = output(&mut d.docker(args));
        assert_eq!(
            lines(&ours.stdout),
            lines(&theirs.stdout),
            "stdout of {args:?}"
        );
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit code of {args:?}"
        );
        String::from_utf8_lossy(&ours.stderr).into_owned()
    };
    same(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.State}} {{.Labels}}",
    ]);
    same(&["ps", "-aq", "--no-trunc", "--filter", "status=exited"]);
    // The two CLIs run a moment apart: "Exited (2) 2 seconds ago" may become "3 seconds".
    let ages = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).into_owned();
        let mut out = String::new();
        for w in text.split(' ') {
            let w = if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() {
                "N"
            } else {
                w
            };
            out.push_str(w);
            out.push(' ');
        }
        out
    };
    let args = [
        "ps",
        "--filter",
        "label=k=v",
        "-a",
        "--format",
        "table {{.Names}}\t{{.Status}}",
    ];
    assert_eq!(
        ages(&output(&mut d.berth(&args)).stdout),
        ages(&output(&mut d.docker(&args)).stdout),
        "stdout of {args:?}"
    );
    same(&[
        "images",
        "--format",
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
    ]);
    same(&["images", "-q"]);
    same(&["inspect", "done"]);
    same(&["image", "inspect", "me/app:1"]);
    same(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{json .Config.Cmd}} {{.HostConfig.RestartPolicy.Name}}",
        "done",
    ]);
    same(&["history", "-q", "--no-trunc", "busybox"]);
    same(&["logs", "done"]);
    same(&["logs", "-t", "done"]);
    same(&["wait", "done"]);
    same(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}}",
    ]);
    let err = same(&["inspect", "nope"]);
    assert!(
        err.contains("No such object: nope") || err.contains("nope"),
        "{err}"
    );
    let err = same(&["rm", "up"]);
    assert!(err.contains("container is running"), "{err}");
    same(&["stop", "-t", "1", "up"]);
    let out = ok(&mut d.berth(&["rm", "up", "done", "fresh"]));
    assert_eq!(out, "up\ndone\nfresh\n");
}
