//! Disk space: container/image/system prune really free bytes under the data root, and
//! `system df` reports them, through the docker CLI and ours.

use berth_harness::{http, ok, output, TestDaemon};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const MB: u64 = 1_000_000;

/// `du -sb` of the data root without the metadata DB, whose WAL grows with every write and
/// is not what prune frees.
fn du_store(root: &Path) -> u64 {
    let db: u64 = ["berth.db", "berth.db-wal", "berth.db-shm"]
        .iter()
        .map(|f| du(&root.join(f)))
        .sum();
    du(root) - db
}

/// `du -sb`: apparent bytes.
fn du(p: &Path) -> u64 {
    if !p.exists() {
        return 0;
    }
    let out = Command::new("du").arg("-sb").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A rootfs tarball holding one file of `size` random bytes, so its layer cannot be shared.
fn random_rootfs_tar(dir: &Path, name: &str, size: usize) -> std::path::PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ name.len() as u64 ^ size as u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(src.join(format!("{name}.bin")), data).unwrap();
    let tar = dir.join(format!("{name}.tar"));
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn inspect(d: &TestDaemon, fmt: &str, id: &str) -> String {
    ok(&mut d.docker(&["inspect", "-f", fmt, id]))
        .trim()
        .to_string()
}

#[test]
fn container_prune_frees_rw_layers_and_logs() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let big = ok(&mut d.docker(&[
        "run",
        "-d",
        "--label",
        "tier=scratch",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1000000 count=3 2>/dev/null; echo done",
    ]))
    .trim()
    .to_string();
    let kept = ok(&mut d.docker(&["create", "--label", "keep=yes", "busybox", "true"]))
        .trim()
        .to_string();
    let running = ok(&mut d.docker(&["run", "-d", "busybox", "sleep", "300"]))
        .trim()
        .to_string();
    ok(&mut d.docker(&["wait", &big]));

    // ps -s and system df see the rw bytes.
    let (st, _, body) = http(&d.socket, "GET", "/containers/json?all=1&size=1", None).unwrap();
    assert_eq!(st, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let size_rw = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Id"] == big.as_str())
        .and_then(|c| c["SizeRw"].as_u64())
        .unwrap();
    assert!(size_rw >= 3 * MB, "SizeRw {size_rw}");

    // `ps -s` shows the same size: writable, then virtual (with the image).
    for out in [
        ok(&mut d.docker(&[
            "ps",
            "-a",
            "-s",
            "--filter",
            &format!("id={big}"),
            "--format",
            "{{.Size}}",
        ])),
        ok(&mut d.berth(&[
            "ps",
            "-a",
            "-s",
            "--filter",
            &format!("id={big}"),
            "--format",
            "{{.Size}}",
        ])),
    ] {
        assert!(out.starts_with("3") && out.contains("(virtual "), "{out}");
    }

    // Bad filters are refused and nothing goes.
    let out = output(&mut d.docker(&["container", "prune", "-f", "--filter", "bogus=1"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid filter 'bogus'"));
    let out = output(&mut d.docker(&["container", "prune", "-f", "--filter", "until=soon"]));
    assert!(!out.status.success());
    assert_eq!(inspect(&d, "{{.State.Status}}", &big), "exited");

    // label!= keeps the labelled one.
    let before = du_store(&d.data_root);
    let out = ok(&mut d.docker(&["container", "prune", "-f", "--filter", "label!=keep"]));
    let after = du_store(&d.data_root);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{big}\n\n")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: 3"), "{out}");
    assert!(!out.contains(&kept) && !out.contains(&running), "{out}");
    assert!(
        before - after >= 3 * MB,
        "data root shrank by {} only",
        before - after
    );
    assert!(!d.data_root.join("containers").join(&big).exists());

    // Our CLI, with until: the remaining stopped container is older than "0s" ago.
    let out = ok(&mut d.berth(&["container", "prune", "-f", "--filter", "until=0s"]));
    assert!(out.contains(&kept), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(inspect(&d, "{{.State.Running}}", &running), "true");
    // Nothing left to prune: docker's output for an empty report.
    let out = ok(&mut d.docker(&["container", "prune", "-f"]));
    assert_eq!(out, "Total reclaimed space: 0B\n");
}

#[test]
fn image_prune_removes_unused_layers_from_disk() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let tar = random_rootfs_tar(d.dir.path(), "dangling", 2_000_000);
    // Imported without a name: a dangling image.
    let dangling = ok(&mut d.docker(&["import", &tar.to_string_lossy()]))
        .trim()
        .to_string();
    let tagged_tar = random_rootfs_tar(d.dir.path(), "tagged", 1_500_000);
    ok(&mut d.docker(&["import", &tagged_tar.to_string_lossy(), "tagged:1"]));
    // A container (even stopped) keeps busybox in use.
    ok(&mut d.docker(&["create", "--name", "user", "busybox", "true"]));
    let layers_before = std::fs::read_dir(d.data_root.join("layers"))
        .unwrap()
        .count();

    let before = du_store(&d.data_root);
    let out = ok(&mut d.docker(&["image", "prune", "-f"]));
    let after = du_store(&d.data_root);
    assert_eq!(
        out.lines().take(2).collect::<Vec<_>>(),
        vec![
            "Deleted Images:".to_string(),
            format!("deleted: {dangling}")
        ],
        "{out}"
    );
    // The layer directory and its stored (uncompressed) blob both go.
    assert!(out.contains("Total reclaimed space: 4"), "{out}");
    assert!(
        before - after >= 4_000_000,
        "shrank by {} only",
        before - after
    );
    assert_eq!(
        std::fs::read_dir(d.data_root.join("layers"))
            .unwrap()
            .count(),
        layers_before - 1
    );

    // -a: the unused tagged image goes (untagged, then deleted); busybox stays (in use).
    let out = ok(&mut d.berth(&["image", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: tagged:1\n"), "{out}");
    assert!(!out.contains("busybox"), "{out}");
    let images = ok(&mut d.docker(&["images", "--format", "{{.Repository}}"]));
    assert_eq!(images.trim(), "busybox");
    ok(&mut d.docker(&["rm", "user"]));
    let out = ok(&mut d.docker(&["image", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: busybox:latest"), "{out}");
    let out = ok(&mut d.docker(&["images", "-q"]));
    assert!(out.trim().is_empty(), "{out}");
    let left = std::fs::read_dir(d.data_root.join("layers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "layer directories left behind");
}

#[test]
fn system_df_matches_docker_and_system_prune_frees() {
    let d = TestDaemon::start(BIN).unwrap();
    d.import_busybox().unwrap();
    let tar = random_rootfs_tar(d.dir.path(), "extra", 1_000_000);
    ok(&mut d.docker(&["import", &tar.to_string_lossy(), "extra:1"]));
    let c = ok(&mut d.docker(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/f bs=1000 count=500 2>/dev/null",
    ]))
    .trim()
    .to_string();
    ok(&mut d.docker(&["wait", &c]));

    let (st, _, body) = http(&d.socket, "GET", "/system/df", None).unwrap();
    assert_eq!(st, 200);
    let df: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let layers = df["LayersSize"].as_u64().unwrap();
    let du_layers = du(&d.data_root.join("layers"));
    assert!(
        layers > MB && layers <= du_layers,
        "{layers} vs du {du_layers}"
    );
    assert_eq!(df["Images"].as_array().unwrap().len(), 2);
    assert!(df["Containers"][0]["SizeRw"].as_u64().unwrap() >= 500_000);
    assert!(df["Volumes"].as_array().unwrap().is_empty());
    let (st, _, body) = http(&d.socket, "GET", "/system/df?type=image", None).unwrap();
    assert_eq!(st, 200);
    let df: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(df.get("Containers").is_none() && df.get("Images").is_some());
    let (st, _, _) = http(&d.socket, "GET", "/system/df?type=bogus", None).unwrap();
    assert_eq!(st, 400);

    // Our table is docker's table, byte for byte.
    let theirs = ok(&mut d.docker(&["system", "df"]));
    let ours = ok(&mut d.berth(&["system", "df"]));
    assert_eq!(ours, theirs);
    assert!(theirs.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          2         1"), "{theirs}");
    let fmt = "{{.Type}}={{.TotalCount}}";
    assert_eq!(
        ok(&mut d.berth(&["system", "df", "--format", fmt])),
        ok(&mut d.docker(&["system", "df", "--format", fmt]))
    );
    let theirs = ok(&mut d.docker(&["system", "df", "-v"]));
    let ours = ok(&mut d.berth(&["system", "df", "-v"]));
    for section in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(
            theirs.contains(section) && ours.contains(section),
            "{section}\n{theirs}\n{ours}"
        );
    }
    assert!(
        ours.contains("extra ") && ours.contains("busybox "),
        "{ours}"
    );

    let before = du_store(&d.data_root);
    let out = ok(&mut d.berth(&["system", "prune", "-a", "-f"]));
    let after = du_store(&d.data_root);
    assert!(
        out.contains(&format!("Deleted Containers:\n{c}\n")),
        "{out}"
    );
    assert!(out.contains("untagged: extra:1"), "{out}");
    assert!(out.contains("untagged: busybox:latest"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(
        before - after >= MB + 500_000,
        "shrank by {} only",
        before - after
    );
    let (_, _, body) = http(&d.socket, "GET", "/system/df", None).unwrap();
    let df: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(df["LayersSize"], 0);
}
