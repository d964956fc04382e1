//! End-to-end tests of ImageService over a temp data root.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use berth_store::fixtures::TarBuilder;
use berth_store::{Digest, MetadataDb};

use crate::oci;
use crate::service::{DeleteItem, ImageService, ImportOptions};
use crate::{ImageError, Reference};

struct Env {
    root: tempfile::TempDir,
    svc: ImageService,
}

fn env() -> Env {
    let root = tempfile::tempdir().unwrap();
    let db = Arc::new(MetadataDb::open(&root.path().join("berth.db")).unwrap());
    let svc = ImageService::open(root.path(), db).unwrap();
    Env { root, svc }
}

fn rootfs() -> TarBuilder {
    TarBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", b"\x7fELF fake", 0o755)
        .symlink("bin/sh", "busybox")
        .dir("etc", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
}

fn opts(tag: &str) -> ImportOptions {
    ImportOptions {
        reference: Some(Reference::parse_normalized(tag).unwrap()),
        ..Default::default()
    }
}

fn no_container(_: &Digest) -> Option<String> {
    None
}

/// Nothing stored anywhere: DB, blobs, layers, tmp.
fn assert_empty(e: &Env) {
    assert!(e.svc.list().unwrap().is_empty());
    assert!(e.svc.db().list_tags().unwrap().is_empty());
    assert!(e.svc.db().list_layers().unwrap().is_empty());
    assert!(e.svc.content().list().unwrap().is_empty(), "blobs left");
    assert!(e.svc.layers().list().unwrap().is_empty(), "layers left");
    let tmp: Vec<_> = fs::read_dir(e.root.path().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp left: {tmp:?}");
}

#[test]
fn import_plain_gzip_zstd() {
    let e = env();
    let a = e.svc.import(&rootfs().build()[..], opts("a")).unwrap();
    let b = e
        .svc
        .import(&rootfs().build_gzip()[..], opts("b:1"))
        .unwrap();
    let c = e
        .svc
        .import(&rootfs().build_zstd()[..], opts("me/c"))
        .unwrap();
    assert_eq!(a.repo_tags, vec!["a:latest"]);
    assert_eq!(b.repo_tags, vec!["b:1"]);
    assert_eq!(c.repo_tags, vec!["me/c:latest"]);
    // Same rootfs, same layer: extracted once.
    assert_eq!(a.layers, b.layers);
    assert_eq!(a.layers, c.layers);
    assert_eq!(e.svc.layers().list().unwrap().len(), 1);
    assert_eq!(a.config.os, "linux");
    assert_eq!(
        a.config.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    assert_eq!(a.size, rootfs().build().len() as u64);
    let dirs = e.svc.layer_dirs(&a).unwrap();
    assert!(dirs[0].join("bin/busybox").is_file());
    // The id is the hash of the stored config bytes.
    assert_eq!(
        Digest::from_sha256_bytes(&e.svc.content().read(&a.id).unwrap()),
        a.id
    );
    assert_eq!(e.svc.list().unwrap().len(), 3);
}

#[test]
fn import_with_changes_and_message() {
    let e = env();
    let img = e
        .svc
        .import(
            &rootfs().build()[..],
            ImportOptions {
                reference: None,
                message: Some("hello".into()),
                changes: vec!["CMD [\"sh\"]".into(), "ENV A=1".into()],
                platform: Some("linux/arm64".into()),
            },
        )
        .unwrap();
    let cfg = img.config.config.unwrap();
    assert_eq!(cfg.cmd.unwrap(), vec!["sh"]);
    assert_eq!(cfg.env, vec!["A=1"]);
    assert_eq!(img.config.architecture, "arm64");
    assert_eq!(img.config.history[0].comment.as_deref(), Some("hello"));
    assert!(img.repo_tags.is_empty());
    let h = e.svc.history(img.id.as_str()).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, img.id.to_string());
    assert_eq!(h[0].comment, "hello");
    assert_eq!(h[0].size, img.size as i64);
}

#[test]
fn import_rejects_bad_input_and_leaves_nothing() {
    let e = env();
    for body in [&b"this is not a tar"[..], &b""[..]] {
        let err = e.svc.import(body, opts("x")).unwrap_err();
        assert!(matches!(err, ImageError::InvalidArchive(_)), "{err:?}");
        assert_empty(&e);
    }
    let gz = rootfs().build_gzip();
    assert!(e.svc.import(&gz[..gz.len() / 2], opts("x")).is_err());
    assert_empty(&e);
    let bad_change = ImportOptions {
        changes: vec!["RUN x".into()],
        ..opts("x")
    };
    assert!(matches!(
        e.svc.import(&rootfs().build()[..], bad_change),
        Err(ImageError::InvalidArgument(_))
    ));
    assert_empty(&e);
}

#[test]
fn tag_resolve_and_prefixes() {
    let e = env();
    let img = e
        .svc
        .import(&rootfs().build()[..], opts("busybox"))
        .unwrap();
    let id = img.id.clone();
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        id.as_str(),
        id.hex(),
        &id.hex()[..12],
        &id.hex()[..3],
        &format!("sha256:{}", &id.hex()[..8]),
    ] {
        assert_eq!(e.svc.resolve(name).unwrap().id, id, "{name}");
    }
    for name in ["busybox:nope", "other", "sha256:ffff", "zzz"] {
        let err = e.svc.resolve(name).unwrap_err();
        assert_eq!(err.to_string(), format!("No such image: {name}"));
    }
    e.svc.tag("busybox", "me/app:1").unwrap();
    e.svc.tag(&id.hex()[..12], "localhost:5000/x").unwrap();
    let img = e.svc.resolve("me/app:1").unwrap();
    assert_eq!(
        img.repo_tags,
        vec!["busybox:latest", "localhost:5000/x:latest", "me/app:1"]
    );
    assert!(matches!(
        e.svc.tag("busybox", &"a".repeat(64)),
        Err(ImageError::InvalidReference(m)) if m.contains("cannot specify 64-byte hexadecimal strings")
    ));
    assert!(matches!(
        e.svc.tag("busybox", "UPPER"),
        Err(ImageError::InvalidReference(_))
    ));
    assert!(matches!(
        e.svc.tag("nope", "x"),
        Err(ImageError::NotFound(_))
    ));

    // A second image makes short prefixes ambiguous sometimes; full ids still work.
    let other = e
        .svc
        .import(
            &TarBuilder::new().file("x", b"y", 0o644).build()[..],
            opts("other"),
        )
        .unwrap();
    assert_eq!(e.svc.resolve(other.id.hex()).unwrap().id, other.id);
    let common = id
        .hex()
        .chars()
        .zip(other.id.hex().chars())
        .take_while(|(a, b)| a == b)
        .count();
    if common > 0 {
        assert!(e.svc.resolve(&id.hex()[..common]).is_err());
    }
}

#[test]
fn remove_rules() {
    let e = env();
    let img = e
        .svc
        .import(&rootfs().build()[..], opts("busybox"))
        .unwrap();
    let id = img.id.clone();
    e.svc.tag("busybox", "me/app:1").unwrap();

    // By id with two repositories: must be forced.
    let err = e
        .svc
        .remove(&id.hex()[..12], false, false, &no_container)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )
    );
    // By tag with another tag left: only untagged.
    let items = e
        .svc
        .remove("me/app:1", false, false, &no_container)
        .unwrap();
    assert_eq!(items, vec![DeleteItem::Untagged("me/app:1".into())]);

    // Last tag while a container uses it: must force.
    let used = |_: &Digest| Some("c0ffee0123456789abcdef".to_string());
    let err = e.svc.remove("busybox", false, false, &used).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busybox\" (must force) - container c0ffee012345 is using its referenced image {}",
            id.short()
        )
    );
    let err = e.svc.remove(id.as_str(), false, false, &used).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");

    // Last tag, unused: untag + delete image + its layer.
    let items = e
        .svc
        .remove("busybox", false, false, &no_container)
        .unwrap();
    assert_eq!(items[0], DeleteItem::Untagged("busybox:latest".into()));
    assert_eq!(items[1], DeleteItem::Deleted(id.to_string()));
    assert_eq!(items[2], DeleteItem::Deleted(img.layers[0].to_string()));
    assert_eq!(items.len(), 3);
    assert_empty(&e);
    assert!(matches!(
        e.svc.remove("busybox", false, false, &no_container),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn remove_keeps_shared_layers_and_forced_multi_tag() {
    let e = env();
    let a = e.svc.import(&rootfs().build()[..], opts("a")).unwrap();
    let b = e.svc.import(&rootfs().build()[..], opts("b")).unwrap();
    e.svc.tag("a", "a2").unwrap();
    let items = e
        .svc
        .remove(a.id.as_str(), true, false, &no_container)
        .unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("a2:latest".into()),
            DeleteItem::Untagged("a:latest".into()),
            DeleteItem::Deleted(a.id.to_string())
        ]
    );
    // The layer is still used by b.
    assert!(e.svc.layers().exists(&b.layers[0]));
    assert_eq!(e.svc.layer_dirs(&b).unwrap().len(), 1);
    // A forced delete of an image used by a container keeps its layers.
    let used = |_: &Digest| Some("abc".to_string());
    let items = e.svc.remove("b", true, false, &used).unwrap();
    assert_eq!(items.len(), 2);
    assert!(e.svc.layers().exists(&b.layers[0]));
}

#[test]
fn create_image_over_stored_layers() {
    let e = env();
    let a = e.svc.import(&rootfs().build()[..], opts("a")).unwrap();
    let mut config = a.config.clone();
    config.author = Some("someone".into());
    let img = e.svc.create_image(&config, a.layers.clone()).unwrap();
    assert_ne!(img.id, a.id);
    assert_eq!((img.layers.clone(), img.size), (a.layers.clone(), a.size));
    assert!(img.repo_tags.is_empty());
    // The same config again is the same image.
    assert_eq!(
        e.svc.create_image(&config, a.layers.clone()).unwrap().id,
        img.id
    );
    // The new image holds the layer when the one it came from goes.
    e.svc.remove("a", false, false, &no_container).unwrap();
    assert!(e.svc.layers().exists(&img.layers[0]));
    // A layer not stored: nothing is recorded, and the config blob does not stay.
    config.author = Some("other".into());
    let missing = Digest::from_sha256_bytes(b"no such layer");
    let err = e.svc.create_image(&config, vec![missing]).unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)), "{err}");
    assert_eq!(e.svc.list().unwrap().len(), 1);
    assert_eq!(
        e.svc.content().list().unwrap().len(),
        2,
        "layer tar + one config"
    );
}

#[test]
fn save_load_round_trip() {
    let src = env();
    let a = src
        .svc
        .import(&rootfs().build_gzip()[..], opts("busybox"))
        .unwrap();
    src.svc.tag("busybox", "me/app:2").unwrap();
    let b = src
        .svc
        .import(
            &TarBuilder::new().file("only-b", b"b", 0o644).build()[..],
            ImportOptions::default(),
        )
        .unwrap();
    let mut out = Vec::new();
    src.svc
        .save(
            &[
                "busybox".into(),
                "me/app:2".into(),
                b.id.hex()[..12].to_string(),
            ],
            &mut out,
        )
        .unwrap();

    // The tarball carries both layouts.
    let names: Vec<String> = tar::Archive::new(&out[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for n in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }

    let dst = env();
    let mut msgs = Vec::new();
    let loaded = dst
        .svc
        .load(&out[..], &mut |m| msgs.push(m.to_string()))
        .unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(
        msgs,
        vec![
            "Loaded image: busybox:latest".to_string(),
            "Loaded image: me/app:2".to_string(),
            format!("Loaded image ID: {}", b.id),
        ]
    );
    let la = dst.svc.resolve("busybox").unwrap();
    assert_eq!(la.id, a.id);
    assert_eq!(la.layers, a.layers);
    assert_eq!(la.repo_tags, vec!["busybox:latest", "me/app:2"]);
    assert_eq!(
        dst.svc.resolve(b.id.as_str()).unwrap().repo_tags,
        Vec::<String>::new()
    );
    assert_eq!(
        dst.svc.content().read(&a.id).unwrap(),
        src.svc.content().read(&a.id).unwrap()
    );
    assert!(dst.svc.layer_dirs(&la).unwrap()[0]
        .join("etc/passwd")
        .is_file());

    // Loading again changes nothing and does not fail.
    let again = dst.svc.load(&out[..], &mut |_| {}).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(dst.svc.list().unwrap().len(), 2);

    // The docker-archive half alone (manifest.json without index.json) loads too.
    let dst2 = env();
    let stripped = strip_entries(&out, &["index.json", "oci-layout"]);
    let l2 = dst2.svc.load(&stripped[..], &mut |_| {}).unwrap();
    assert_eq!(l2[0].id, a.id);
    assert_eq!(l2[0].tags, vec!["busybox:latest", "me/app:2"]);
    // And the OCI half alone.
    let dst3 = env();
    let oci_only = strip_entries(&out, &["manifest.json", "repositories"]);
    let l3 = dst3.svc.load(&oci_only[..], &mut |_| {}).unwrap();
    assert_eq!(
        l3.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone(), b.id.clone()]
    );
    assert_eq!(dst3.svc.resolve("me/app:2").unwrap().id, a.id);
    assert!(dst3
        .svc
        .resolve("me/app:2")
        .unwrap()
        .manifest_digest
        .is_some());
}

fn strip_entries(tarball: &[u8], drop: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(tarball).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if drop.contains(&p.as_str()) {
            continue;
        }
        let mut h = e.header().clone();
        b.append_data(&mut h, &p, &mut e).unwrap();
    }
    b.into_inner().unwrap()
}

/// A docker-archive as old `docker save` wrote it: `<id>/layer.tar`, gzip
/// layers, one layer stored once and symlinked.
fn legacy_archive(layers: &[Vec<u8>], diff_ids: &[Digest], tags: &[&str]) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "one"}, {"created_by": "two"}],
    });
    let cbytes = serde_json::to_vec(&config).unwrap();
    let cname = format!("{}.json", Digest::from_sha256_bytes(&cbytes).hex());
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, p: &str, d: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, d).unwrap();
    };
    add(&mut b, &cname, &cbytes);
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        add(&mut b, &p, l);
        paths.push(p);
    }
    // A duplicate layer entry via symlink, as docker save did.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "dup/layer.tar", "../l0/layer.tar")
        .unwrap();
    let manifest = serde_json::json!([{"Config": cname, "RepoTags": tags, "Layers": paths}]);
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

#[test]
fn load_legacy_docker_archive_with_gzip_layers() {
    let e = env();
    let l0 = rootfs();
    let l1 = TarBuilder::new()
        .file("etc/motd", b"hi", 0o644)
        .file("etc/.wh.passwd", b"", 0o644);
    let d0 = Digest::from_sha256_bytes(&rootfs().build());
    let d1 = Digest::from_sha256_bytes(&l1.build());
    let l1 = TarBuilder::new()
        .file("etc/motd", b"hi", 0o644)
        .file("etc/.wh.passwd", b"", 0o644);
    let ar = legacy_archive(
        &[l0.build_gzip(), l1.build_zstd()],
        &[d0, d1],
        &["legacy:1"],
    );
    let mut msgs = Vec::new();
    let loaded = e
        .svc
        .load(&ar[..], &mut |m| msgs.push(m.to_string()))
        .unwrap();
    assert_eq!(msgs, vec!["Loaded image: legacy:1"]);
    let img = e.svc.resolve("legacy:1").unwrap();
    assert_eq!(img.id, loaded[0].id);
    assert_eq!(img.layers.len(), 2);
    let h = e.svc.history("legacy:1").unwrap();
    assert_eq!(
        h.iter().map(|h| h.created_by.as_str()).collect::<Vec<_>>(),
        vec!["two", "one"]
    );
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[0].tags, vec!["legacy:1"]);
    // Gzip layers are saved as they were received.
    let mut out = Vec::new();
    e.svc.save(&["legacy:1".into()], &mut out).unwrap();
    let dst = env();
    assert_eq!(dst.svc.load(&out[..], &mut |_| {}).unwrap()[0].id, img.id);
}

#[test]
fn load_rejects_diff_id_mismatch_and_leaves_nothing() {
    let e = env();
    let wrong = Digest::from_sha256_bytes(b"wrong");
    let ar = legacy_archive(&[rootfs().build()], &[wrong], &["x:1"]);
    let err = e.svc.load(&ar[..], &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("diff id mismatch"), "{err}");
    assert_empty(&e);
}

#[test]
fn load_oci_layout_with_nested_index() {
    let e = env();
    let layer = rootfs().build_gzip();
    let diff = Digest::from_sha256_bytes(&rootfs().build());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": crate::config::host_architecture(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let ld = Digest::from_sha256_bytes(&layer);
    let cd = Digest::from_sha256_bytes(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": oci::OCI_CONFIG, "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": layer.len()}],
    }))
    .unwrap();
    let md = Digest::from_sha256_bytes(&manifest);
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": oci::OCI_INDEX,
        "manifests": [
            {"mediaType": oci::OCI_MANIFEST, "digest": Digest::from_sha256_bytes(b"other"), "size": 1,
             "platform": {"architecture": "s390x-nope", "os": "linux"}},
            {"mediaType": oci::OCI_MANIFEST, "digest": md, "size": manifest.len(),
             "platform": {"architecture": crate::config::host_architecture(), "os": "linux"}},
        ],
    }))
    .unwrap();
    let nd = Digest::from_sha256_bytes(&nested);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": oci::OCI_INDEX, "digest": nd, "size": nested.len(),
            "annotations": {"org.opencontainers.image.ref.name": "example.com/oci/img:v1"}}],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |p: String, d: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, d).unwrap();
    };
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json".into(), &index);
    for (d, bytes) in [
        (&ld, &layer),
        (&cd, &config),
        (&md, &manifest),
        (&nd, &nested),
    ] {
        add(format!("blobs/sha256/{}", d.hex()), bytes);
    }
    let ar = b.into_inner().unwrap();
    let mut msgs = Vec::new();
    let loaded = e
        .svc
        .load(&ar[..], &mut |m| msgs.push(m.to_string()))
        .unwrap();
    assert_eq!(msgs, vec!["Loaded image: example.com/oci/img:v1"]);
    let img = e.svc.resolve("example.com/oci/img:v1").unwrap();
    assert_eq!(img.id, cd);
    assert_eq!(loaded[0].id, cd);
    assert_eq!(img.manifest_digest, Some(md.clone()));
    assert_eq!(img.repo_digests, vec![format!("example.com/oci/img@{md}")]);
    assert_eq!(
        e.svc
            .resolve(&format!("example.com/oci/img@{md}"))
            .unwrap()
            .id,
        cd
    );
    let rec = e.svc.db().get_layer(&img.layers[0]).unwrap().unwrap();
    assert_eq!(rec.blob, Some(ld));
    assert_eq!(
        rec.blob_media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

#[test]
fn malicious_loads_leave_nothing() {
    let e = env();
    let outside = e.root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("target"), b"secret").unwrap();
    let out = outside.display().to_string();
    let gz = rootfs().build_gzip();
    let layers: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            TarBuilder::new().file("../../evil", b"x", 0o644).build(),
        ),
        (
            "absolute",
            TarBuilder::new()
                .file(&format!("{out}/evil"), b"x", 0o644)
                .build(),
        ),
        (
            "symlink then write",
            TarBuilder::new()
                .symlink("s", &out)
                .file("s/evil", b"x", 0o644)
                .build(),
        ),
        (
            "hardlink out",
            TarBuilder::new()
                .hardlink("h", &format!("{out}/target"))
                .build(),
        ),
        ("truncated gzip", gz[..gz.len() / 2].to_vec()),
    ];
    for (name, layer) in layers {
        // The config names the layer's true diff id so only the content is at fault.
        let ar = legacy_archive(
            std::slice::from_ref(&layer),
            &[Digest::from_sha256_bytes(&layer)],
            &["evil:1"],
        );
        let r = e.svc.load(&ar[..], &mut |_| {});
        assert!(r.is_err(), "{name} loaded");
        assert_empty(&e);
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{name}: {names:?}");
        assert!(!e.root.path().join("evil").exists());
    }
    // The outer archive itself tries to escape.
    let mut bad = TarBuilder::new().file("../escape", b"x", 0o644).build();
    assert!(e.svc.load(&bad[..], &mut |_| {}).is_err());
    bad = TarBuilder::new().file("/abs", b"x", 0o644).build();
    assert!(e.svc.load(&bad[..], &mut |_| {}).is_err());
    assert_empty(&e);
    assert!(!Path::new("/abs").exists());
    // Not a tar at all.
    assert!(matches!(
        e.svc.load(&b"garbage garbage"[..], &mut |_| {}),
        Err(ImageError::InvalidArchive(_))
    ));
}
