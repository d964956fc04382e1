//! The classic builder's cache through the real docker CLI: `system df [-v]` accounting,
//! `builder prune` (filters, `--keep-storage`, `--all`), the daemon's size cap with LRU
//! eviction, reproducible builds with `SOURCE_DATE_EPOCH`, and `--cache-from` an image.

use berth_harness::{http, ok, output, TestDaemon};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const MB: u64 = 1_000_000;

/// A context directory with the given Dockerfile (and extra files).
fn context(dockerfile: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn build(d: &TestDaemon, ctx: &Path, args: &[&str]) -> String {
    let (code, text) = d.legacy_build(ctx, args);
    assert_eq!(code, Some(0), "build failed:\n{text}");
    text
}

/// A build whose tagged result is removed at once: what stays are its intermediate images,
/// held only by the cache.
fn build_then_untag(d: &TestDaemon, name: &str, bytes: u64) {
    let ctx = context(
        &format!(
            "FROM busybox\nRUN head -c {bytes} /dev/urandom > /{name}\nRUN echo {name} > /done\n"
        ),
        &[],
    );
    build(d, ctx.path(), &["-t", name]);
    ok(&mut d.docker(&["rmi", name]));
}

fn df(d: &TestDaemon) -> serde_json::Value {
    let (status, _, body) = http(&d.socket, "GET", "/v1.47/system/df", None).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// (unshared bytes, entries) of the build cache, as the docker CLI sums them.
fn cache_usage(d: &TestDaemon) -> (u64, Vec<serde_json::Value>) {
    let v = df(d);
    let list = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let size = list
        .iter()
        .filter(|e| !e["Shared"].as_bool().unwrap_or(false))
        .map(|e| e["Size"].as_u64().unwrap_or(0))
        .sum();
    (size, list)
}

fn descriptions(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|e| e["Description"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The `Build Cache` row of `docker system df`.
fn df_row(d: &TestDaemon) -> String {
    ok(&mut d.docker(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
    ]))
    .lines()
    .find(|l| l.starts_with("Build Cache"))
    .unwrap_or_default()
    .to_string()
}

#[test]
fn system_df_accounts_cache_only_layers_and_prune_frees_them() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    let ctx = context(
        "FROM busybox\nRUN head -c 3000000 /dev/urandom > /big\nRUN echo x > /small\n",
        &[],
    );
    build(&d, ctx.path(), &["-t", "cached:1"]);

    // The tagged image holds every layer: the entries are there, all shared, nothing to free.
    let (size, list) = cache_usage(&d);
    assert_eq!(list.len(), 2, "{list:#?}");
    assert_eq!(size, 0, "{list:#?}");
    let e = &list[0];
    assert_eq!(e["Type"], "regular");
    assert_eq!(e["Shared"], true);
    assert_eq!(e["InUse"], false);
    assert!(e["ID"].as_str().unwrap().len() == 64);
    assert!(e["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert!(e["UsageCount"].as_i64().unwrap() >= 1);
    let descs = descriptions(&list);
    assert!(descs.iter().any(|s| s.contains("/big")), "{descs:?}");
    // The second step was built on the first.
    let small = list
        .iter()
        .find(|e| e["Description"].as_str().unwrap().contains("/small"));
    let big = list
        .iter()
        .find(|e| e["Description"].as_str().unwrap().contains("/big"));
    assert_eq!(small.unwrap()["Parents"][0], big.unwrap()["ID"]);
    assert_eq!(df_row(&d), "Build Cache|2|0|0B|0B");

    // A cache hit counts as a use.
    let again = build(&d, ctx.path(), &["-t", "cached:1"]);
    assert!(again.contains("Using cache"), "{again}");
    let (_, list) = cache_usage(&d);
    assert!(
        list.iter().all(|e| e["UsageCount"].as_i64() == Some(2)),
        "{list:#?}"
    );

    // Without the tag the intermediate image with /big is the cache's alone.
    ok(&mut d.docker(&["rmi", "cached:1"]));
    // 3MB twice: the extracted layer and its stored tar.
    let (size, list) = cache_usage(&d);
    assert!((6 * MB..7 * MB).contains(&size), "size {size}: {list:#?}");
    let row = df_row(&d);
    let cols: Vec<&str> = row.split('|').collect();
    assert_eq!(cols[..3], ["Build Cache", "2", "0"], "{row}");
    assert!(cols[3].starts_with("6.00") && cols[3] == cols[4], "{row}");
    // Not counted twice: the images' LayersSize leaves the cache's layers out.
    let layers = df(&d)["LayersSize"].as_u64().unwrap();
    assert!(layers < 3 * MB, "LayersSize {layers}");
    let verbose = ok(&mut d.docker(&["system", "df", "-v"]));
    assert!(
        verbose.contains(&format!("Build cache usage: {}", cols[3])),
        "{verbose}"
    );
    assert!(verbose.contains("regular"), "{verbose}");
    // The intermediate stays hidden from `docker images` and from `image prune`.
    ok(&mut d.docker(&["image", "prune", "-f"]));
    assert_eq!(cache_usage(&d).0, size);

    let out = ok(&mut d.docker(&["builder", "prune", "-f"]));
    // What df called reclaimable, give or take the image configs' few hundred bytes.
    assert!(out.contains("Total reclaimed space: 6.00"), "{out}");
    let (size, list) = cache_usage(&d);
    assert_eq!((size, list.len()), (0, 0), "{list:#?}");
    assert_eq!(df_row(&d), "Build Cache|0|0|0B|0B");
    let all = ok(&mut d.docker(&["images", "-a", "-q"]));
    assert_eq!(all.lines().count(), 1, "only busybox is left:\n{all}");
}

#[test]
fn builder_prune_filters_keep_storage_and_all() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    build_then_untag(&d, "older", 2 * MB);
    // Last-used times are in seconds: keep the two builds apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build_then_untag(&d, "newer", 4 * MB);
    // Each layer counts twice: extracted and as its stored tar.
    let (size, _) = cache_usage(&d);
    assert!((12 * MB..13 * MB).contains(&size), "{size}");

    // Everything was used within the hour: nothing is older.
    let out = ok(&mut d.docker(&["builder", "prune", "-f", "--filter", "until=1h"]));
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(cache_usage(&d).0, size);
    let bad = output(&mut d.docker(&["builder", "prune", "-f", "--filter", "color=red"]));
    assert!(!bad.status.success());

    // Down to 9MiB: the least recently used build goes, the newer one stays.
    let out = ok(&mut d.docker(&["builder", "prune", "-f", "--keep-storage", "9MB"]));
    assert!(out.contains("Total reclaimed space: 4.00"), "{out}");
    let (size, list) = cache_usage(&d);
    assert!((8 * MB..9 * MB).contains(&size), "{size}: {list:#?}");
    let descs = descriptions(&list);
    assert!(descs.iter().all(|s| !s.contains("older")), "{descs:?}");
    assert!(descs.iter().any(|s| s.contains("/newer")), "{descs:?}");

    // A tagged image's steps are shared: a plain prune keeps them, --all drops the records.
    let ctx = context("FROM busybox\nRUN echo kept > /kept\n", &[]);
    build(&d, ctx.path(), &["-t", "kept"]);
    ok(&mut d.docker(&["builder", "prune", "-f"]));
    let (size, list) = cache_usage(&d);
    assert_eq!(size, 0);
    assert!(descriptions(&list).iter().any(|s| s.contains("/kept")));
    ok(&mut d.docker(&["builder", "prune", "-f", "--all"]));
    assert!(cache_usage(&d).1.is_empty());
    assert_eq!(
        ok(&mut d.docker(&["run", "--rm", "kept", "cat", "/kept"])),
        "kept\n"
    );
    let rebuilt = build(&d, ctx.path(), &["-t", "kept"]);
    assert!(!rebuilt.contains("Using cache"), "{rebuilt}");
}

#[test]
fn size_cap_evicts_least_recently_used_steps() {
    // Each build leaves about 4MB of cache (2MB extracted, 2MB as the stored tar).
    let d =
        TestDaemon::with_busybox_args(BIN, &["--builder-cache-max-size", "7MB"]).expect("daemon");
    build_then_untag(&d, "first", 2 * MB);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    build_then_untag(&d, "second", 2 * MB);
    // The cap is enforced after a build: 8MB of cache is over it until the next one.
    assert!(cache_usage(&d).0 >= 8 * MB);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ctx = context("FROM busybox\nRUN echo third > /third\n", &[]);
    build(&d, ctx.path(), &["-t", "third"]);
    let (size, list) = cache_usage(&d);
    assert!(size <= 7 * 1024 * 1024, "{size}: {list:#?}");
    let descs = descriptions(&list);
    assert!(descs.iter().all(|s| !s.contains("/first")), "{descs:?}");
    assert!(descs.iter().any(|s| s.contains("/second")), "{descs:?}");
    let log = d.daemon_log();
    assert!(log.contains("evicted least recently used"), "{log}");
}

#[test]
fn source_date_epoch_makes_builds_reproducible() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    let ctx = context(
        "FROM busybox\nCOPY f /app/f\nRUN echo hi > /app/g && mkdir -p /app/dir\nWORKDIR /app\nENV A=b\nCMD [\"cat\", \"/app/f\"]\n",
        &[("f", "content\n")],
    );
    let epoch = ["--build-arg", "SOURCE_DATE_EPOCH=1700000000"];
    let id = |extra: &[&str]| -> String {
        let mut args = vec!["-q", "--no-cache"];
        args.extend_from_slice(extra);
        let out = build(&d, ctx.path(), &args);
        assert!(!out.contains("not consumed"), "{out}");
        out.lines()
            .find(|l| l.starts_with("sha256:"))
            .unwrap_or_else(|| panic!("no image ID in {out}"))
            .to_string()
    };
    let a = id(&epoch);
    // Every timestamp a build could pick up moves on.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = id(&epoch);
    assert_eq!(a, b, "same context and epoch, same image");
    let created = d.inspect(&a, "{{.Created}}");
    assert!(created.starts_with("2023-11-14T22:13:20"), "{created}");
    let hist = ok(&mut d.docker(&["history", "--no-trunc", "--format", "{{.CreatedAt}}", &a]));
    let first_lines: Vec<&str> = hist.lines().take(5).collect();
    assert!(
        first_lines.iter().all(|l| l.starts_with("2023-11-14")),
        "{hist}"
    );
    // Files newer than the epoch carry it in the layer.
    let out = ok(&mut d.docker(&["run", "--rm", &a, "stat", "-c", "%Y", "/app/g", "/app/dir"]));
    assert_eq!(out, "1700000000\n1700000000\n");

    let c = id(&[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e = id(&[]);
    assert_ne!(c, e, "without an epoch each build is stamped with its time");
    assert_ne!(c, a);

    let bad = output(
        d.docker(&["build", "--build-arg", "SOURCE_DATE_EPOCH=soon", "-q"])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0"),
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid SOURCE_DATE_EPOCH"),
        "{bad:?}"
    );
}

fn hits(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

fn image_ids(d: &TestDaemon, all: bool) -> std::collections::BTreeSet<String> {
    let args: &[&str] = if all {
        &["images", "-a", "-q", "--no-trunc"]
    } else {
        &["images", "-q", "--no-trunc"]
    };
    ok(&mut d.docker(args))
        .lines()
        .map(str::to_string)
        .collect()
}

/// `--cache-from` an image loaded from a tar, whose intermediate images never reached this
/// daemon: every step is taken from its history (the result is the same image), a changed
/// late step keeps the steps before it, and a source that does not exist is skipped.
#[test]
fn cache_from_a_loaded_image_reuses_its_steps() {
    let d = TestDaemon::with_busybox(BIN).expect("daemon");
    let dockerfile = |last_run: &str| {
        format!(
            "FROM busybox\nENV A=1\nRUN echo one > /one\nCOPY f /f\nWORKDIR /w\n\
             RUN {last_run}\nCMD [\"cat\", \"/f\"]\n"
        )
    };
    let ctx = context(&dockerfile("echo two > two"), &[("f", "content\n")]);
    build(&d, ctx.path(), &["-t", "app:1"]);
    let id = d.inspect("app:1", "{{.Id}}");

    // The image alone, as on a CI runner that pulled it: no intermediates, no cache.
    let tar = d.dir.path().join("app.tar");
    let tar_s = tar.to_string_lossy().into_owned();
    ok(&mut d.docker(&["save", "-o", &tar_s, "app:1"]));
    ok(&mut d.docker(&["rmi", "app:1"]));
    ok(&mut d.docker(&["builder", "prune", "-af"]));
    ok(&mut d.docker(&["load", "-i", &tar_s]));
    let busybox = d.inspect("busybox", "{{.Id}}");
    let loaded: std::collections::BTreeSet<String> = [busybox, id.clone()].into();
    assert_eq!(image_ids(&d, true), loaded);
    assert!(cache_usage(&d).1.is_empty());

    // A late step changed: the four steps before it come from the image's history.
    let late = context(&dockerfile("echo three > two"), &[("f", "content\n")]);
    let out = build(
        &d,
        late.path(),
        &["--cache-from", "app:1", "-t", "app:late"],
    );
    assert_eq!(hits(&out), 4, "{out}");
    assert!(
        out.contains("Step 6/7 : RUN echo three > two\n ---> Running in"),
        "{out}"
    );
    assert_eq!(
        d.run_rm(&["app:late", "sh", "-c", "cat /one /w/two /f; echo $A"]),
        "one\nthree\ncontent\n1\n"
    );

    // Every step: the result is the loaded image itself. A missing source is skipped.
    let out = build(
        &d,
        ctx.path(),
        &[
            "--cache-from",
            "nosuch:1",
            "--cache-from",
            "app:1",
            "-t",
            "app:2",
        ],
    );
    assert_eq!(hits(&out), 6, "{out}");
    assert_eq!(d.inspect("app:2", "{{.Id}}"), id, "{out}");
    assert!(d.daemon_log().contains("Could not look up nosuch:1"));
    // The steps' images are intermediates: hidden, counted as build cache, pruned with it.
    let visible = image_ids(&d, false);
    assert_eq!(visible.len(), 3, "busybox, app:1 and app:late: {visible:?}");
    assert!(image_ids(&d, true).len() > visible.len());
    let (_, list) = cache_usage(&d);
    assert_eq!(
        list.len(),
        8,
        "4 restored + 2 built, then 1 restored + the image: {list:#?}"
    );
    ok(&mut d.docker(&["builder", "prune", "-af"]));
    assert_eq!(image_ids(&d, true), visible);
    assert_eq!(d.run_rm(&["app:2"]), "content\n");

    // Our CLI sends --cache-from too.
    let out = ok(&mut d.berth(&[
        "build",
        "--cache-from",
        "app:1",
        "-t",
        "app:3",
        &ctx.path().to_string_lossy(),
    ]));
    assert_eq!(hits(&out), 6, "{out}");
    assert_eq!(d.inspect("app:3", "{{.Id}}"), id);
    // A missing source alone: the local cache still answers (as BuildKit's does; dockerd
    // 20.10's classic builder ignores its local cache once --cache-from is given).
    let out = build(&d, ctx.path(), &["--cache-from", "nosuch:2", "-t", "app:4"]);
    assert_eq!(hits(&out), 6, "{out}");
    ok(&mut d.docker(&["builder", "prune", "-af"]));
    let out = build(&d, ctx.path(), &["--cache-from", "nosuch:2", "-t", "app:4"]);
    assert_eq!(hits(&out), 0, "{out}");
}
