//! Volumes and mounts through the real docker CLI and ours: named and anonymous volumes and
//! their commands, copy-up, binds (read-only, missing sources, propagation), tmpfs,
//! `--volumes-from`, data surviving container removal and a daemon restart, cp through
//! mounts, hostile symlinks at mount targets, and bad input.

use berth_harness::{fails, http, ok, output, TestDaemon};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_berth");

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn mounted_under(path: &Path) -> bool {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|t| t.starts_with(p.as_ref()))
}

/// Detaches a mount made on the host side of a test, even if the test fails.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn mount_tmpfs(at: &Path) -> HostMount {
    std::fs::create_dir_all(at).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    HostMount(at.to_path_buf())
}

#[test]
fn volume_commands_behave_as_docker() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let name = format!("data-{which}");
        assert_eq!(
            ok(&mut c(&["volume", "create", "--label", "team=a", &name])).trim(),
            name
        );
        // Creating it again is no error and returns the same volume, as dockerd.
        ok(&mut c(&["volume", "create", &name]));
        let generated = ok(&mut c(&["volume", "create"])).trim().to_string();
        assert_eq!(generated.len(), 64, "{generated}");
        let insp: serde_json::Value =
            serde_json::from_str(&ok(&mut c(&["volume", "inspect", &name]))).unwrap();
        let v = &insp[0];
        assert_eq!(v["Name"], name.as_str());
        assert_eq!(v["Driver"], "local");
        assert_eq!(v["Scope"], "local");
        assert_eq!(v["Labels"]["team"], "a");
        let mp = v["Mountpoint"].as_str().unwrap();
        assert!(mp.ends_with(&format!("/volumes/{name}/_data")), "{mp}");
        assert!(Path::new(mp).is_dir());
        assert!(v["CreatedAt"].as_str().unwrap().starts_with("20"), "{v}");

        let all = lines(&ok(&mut c(&["volume", "ls", "-q"])));
        assert!(all.contains(&name) && all.contains(&generated), "{all:?}");
        let labelled = ok(&mut c(&["volume", "ls", "-q", "--filter", "label=team=a"]));
        assert_eq!(labelled.trim(), name);
        let named = ok(&mut c(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("name={which}"),
        ]));
        assert_eq!(named.trim(), name);
        let table = ok(&mut c(&["volume", "ls"]));
        assert!(table.starts_with("DRIVER"), "{table}");
        assert!(table.contains(&format!("local     {name}")), "{table}");

        // In use by a container (even a stopped one): 409, also with -f.
        let user = format!("user-{which}");
        ok(&mut c(&[
            "create",
            "--name",
            &user,
            "-v",
            &format!("{name}:/d"),
            "busybox",
            "true",
        ]));
        let dangling = lines(&ok(&mut c(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "dangling=true",
        ])));
        assert!(!dangling.contains(&name) && dangling.contains(&generated));
        let err = fails(&mut c(&["volume", "rm", &name]));
        assert!(err.contains("volume is in use"), "{which}: {err}");
        let err = fails(&mut c(&["volume", "rm", "-f", &name]));
        assert!(err.contains("volume is in use"), "{which}: {err}");
        ok(&mut c(&["rm", &user]));
        assert_eq!(ok(&mut c(&["volume", "rm", &name])).trim(), name);
        ok(&mut c(&["volume", "rm", "-f", "never-existed"]));
        let err = fails(&mut c(&["volume", "inspect", "never-existed"]));
        assert!(err.contains("no such volume"), "{err}");
        ok(&mut c(&["volume", "rm", &generated]));

        // Bad names and options change nothing.
        let err = fails(&mut c(&["volume", "create", "bad@name"]));
        assert!(err.contains("includes invalid characters"), "{err}");
        let err = fails(&mut c(&["volume", "create", "-o", "foo=bar", "x1"]));
        assert!(err.contains("invalid option"), "{err}");
        let err = fails(&mut c(&["volume", "create", "-d", "nope", "x2"]));
        assert!(err.contains("not found"), "{err}");
        let left = ok(&mut c(&["volume", "ls", "-q"]));
        assert!(!left.contains("x1") && !left.contains("x2"), "{left}");
    }
}

#[test]
fn prune_and_remove_anonymous_volumes() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let named = format!("keep-{which}");
        ok(&mut c(&["volume", "create", &named]));
        // -v /path and the image's VOLUME give anonymous volumes; rm -v removes them.
        let anon = format!("anon-{which}");
        ok(&mut c(&[
            "create", "--name", &anon, "-v", "/scratch", "busybox", "true",
        ]));
        let vol = d.inspect(&anon, "{{range .Mounts}}{{.Name}}{{end}}");
        assert_eq!(vol.len(), 64, "{vol}");
        assert!(ok(&mut c(&["volume", "ls", "-q"])).contains(&vol));
        ok(&mut c(&["rm", "-v", &anon]));
        assert!(!ok(&mut c(&["volume", "ls", "-q"])).contains(&vol));
        // --rm removes them too.
        ok(&mut c(&[
            "run", "--rm", "-v", "/scratch", "busybox", "true",
        ]));
        // rm without -v keeps them; prune removes anonymous ones only.
        ok(&mut c(&[
            "create", "--name", &anon, "-v", "/scratch", "busybox", "true",
        ]));
        let kept = d.inspect(&anon, "{{range .Mounts}}{{.Name}}{{end}}");
        ok(&mut c(&["rm", &anon]));
        let out = ok(&mut c(&["volume", "prune", "-f"]));
        assert!(out.contains(&kept), "{out}");
        assert!(!out.contains(&named), "{out}");
        assert!(out.contains("Total reclaimed space"), "{out}");
        let vols = lines(&ok(&mut c(&["volume", "ls", "-q"])));
        assert_eq!(vols, vec![named.clone()], "{which}");
        let out = ok(&mut c(&["volume", "prune", "-a", "-f"]));
        assert!(out.contains(&named), "{out}");
        assert!(ok(&mut c(&["volume", "ls", "-q"])).trim().is_empty());
    }
    // system df -v counts a volume's bytes and its users.
    ok(&mut d.docker(&[
        "run",
        "--name",
        "writer",
        "-v",
        "sized:/d",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/d/f bs=1k count=300 2>/dev/null",
    ]));
    let df = ok(&mut d.docker(&["system", "df", "-v", "--format", "{{json .}}"]));
    let df: serde_json::Value = serde_json::from_str(&df).unwrap();
    let v = df["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == "sized")
        .cloned()
        .unwrap_or_default();
    assert_eq!(v["Links"], "1", "{df}");
    assert!(v["Size"].as_str().unwrap_or("").starts_with("307"), "{v}");
}

#[test]
fn named_volume_is_shared_and_outlives_containers_and_the_daemon() {
    let mut d = TestDaemon::with_busybox(BIN).unwrap();
    // Two running containers on one volume see each other's writes.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "ww",
        "-v",
        "shared:/s",
        "busybox",
        "sh",
        "-c",
        "echo one > /s/msg; sleep 1000",
    ]));
    ok(&mut d.berth(&[
        "run",
        "-d",
        "--name",
        "rr",
        "-v",
        "shared:/s",
        "busybox",
        "sleep",
        "1000",
    ]));
    let mut seen = String::new();
    for _ in 0..50 {
        seen = ok(&mut d.docker(&["exec", "rr", "cat", "/s/msg"]));
        if seen.trim() == "one" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(seen.trim(), "one");
    ok(&mut d.docker(&["exec", "rr", "sh", "-c", "echo two >> /s/msg"]));
    assert_eq!(
        ok(&mut d.docker(&["exec", "ww", "cat", "/s/msg"])),
        "one\ntwo\n"
    );
    ok(&mut d.docker(&["rm", "-f", "-v", "ww", "rr"]));
    // A named volume survives rm -v, and a daemon restart.
    assert!(ok(&mut d.docker(&["volume", "ls", "-q"])).contains("shared"));
    d.stop();
    d.restart().unwrap();
    let out = ok(&mut d.berth(&["run", "--rm", "-v", "shared:/s", "busybox", "cat", "/s/msg"]));
    assert_eq!(out, "one\ntwo\n");
    // A volume with local driver options (tmpfs) is mounted while used, and only then.
    ok(&mut d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m,uid=1234",
        "ram",
    ]));
    let mp = d.data_root.join("volumes/ram/_data");
    let out = ok(&mut d.docker(&[
        "run",
        "--rm",
        "-v",
        "ram:/r",
        "busybox",
        "sh",
        "-c",
        "stat -c %u /r; df -k /r | tail -1",
    ]));
    let mut it = out.lines();
    assert_eq!(it.next(), Some("1234"), "{out}");
    assert!(it.next().unwrap_or("").contains(" 2048 "), "{out}");
    assert!(!mounted_under(&mp), "tmpfs volume left mounted");
}

#[test]
fn copy_up_fills_new_volumes_with_owners_and_modes() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "--name",
        "prep",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo hi > /data/f && chown 1000:1001 /data/f && chmod 640 /data/f \
         && chown 33:33 /data/sub && chmod 1750 /data/sub && ln -s /etc/passwd /data/link \
         && chmod 711 /data",
    ]));
    ok(&mut d.docker(&["commit", "-c", "VOLUME /data", "prep", "withdata:1"]));
    let listing = "stat -c '%n %u:%g %a' /data /data/f /data/sub; readlink /data/link; cat /data/f";
    let want = "/data 0:0 711\n/data/f 1000:1001 640\n/data/sub 33:33 1750\n/etc/passwd\nhi\n";
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        // The image's VOLUME: an anonymous volume, filled from the image.
        assert_eq!(
            ok(&mut c(&["run", "--rm", "withdata:1", "sh", "-c", listing])),
            want
        );
        // A new named volume: filled once, then kept as the container left it.
        let vol = format!("fresh-{which}");
        let arg = format!("{vol}:/data");
        assert_eq!(
            ok(&mut c(&[
                "run",
                "--rm",
                "-v",
                &arg,
                "withdata:1",
                "sh",
                "-c",
                listing
            ])),
            want
        );
        ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &arg,
            "withdata:1",
            "rm",
            "/data/f",
        ]));
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &arg,
            "withdata:1",
            "ls",
            "/data",
        ]));
        assert_eq!(lines(&out), vec!["link", "sub"], "{which}");
        // nocopy: an empty volume stays empty.
        let nc = format!("type=volume,src=nocopy-{which},dst=/data,volume-nocopy");
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "--mount",
            &nc,
            "withdata:1",
            "ls",
            "-A",
            "/data",
        ]));
        assert_eq!(out, "", "{which}");
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &format!("nocopy2-{which}:/data:nocopy"),
            "withdata:1",
            "ls",
            "-A",
            "/data",
        ]));
        assert_eq!(out, "", "{which}");
    }
}

#[test]
fn binds_tmpfs_readonly_and_volumes_from() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let hs = host.to_string_lossy().into_owned();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        // A bind: both ways.
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &format!("{hs}:/h"),
            "-v",
            &format!("{hs}/in:/etc/one-file:ro"),
            "busybox",
            "sh",
            "-c",
            &format!("cat /h/in; echo {which} > /h/out-{which}; cat /etc/one-file"),
        ]));
        assert_eq!(out, "from host\nfrom host\n");
        assert_eq!(
            std::fs::read_to_string(host.join(format!("out-{which}"))).unwrap(),
            format!("{which}\n")
        );
        // -v creates a missing source; --mount refuses it.
        let missing = host.join(format!("made-{which}/deep"));
        ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/m", missing.display()),
            "busybox",
            "true",
        ]));
        assert!(missing.is_dir());
        let gone = host.join(format!("absent-{which}"));
        let err = fails(&mut c(&[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,src={},dst=/m", gone.display()),
            "busybox",
            "true",
        ]));
        assert!(
            err.contains("bind source path does not exist"),
            "{which}: {err}"
        );
        assert!(!gone.exists());
        // Read-only, both spellings.
        for spec in [
            vec!["-v".to_string(), format!("{hs}:/h:ro")],
            vec![
                "--mount".to_string(),
                format!("type=bind,src={hs},dst=/h,readonly"),
            ],
            vec!["-v".to_string(), format!("ro-{which}:/h:ro")],
        ] {
            let mut args = vec!["run", "--rm"];
            args.extend(spec.iter().map(String::as_str));
            args.extend(["busybox", "sh", "-c", "touch /h/x"]);
            let err = fails(&mut c(&args));
            assert!(
                err.contains("Read-only file system"),
                "{which} {spec:?}: {err}"
            );
        }
        assert!(!host.join("x").exists());
        // tmpfs, both spellings, with size and mode.
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "--tmpfs",
            "/t1:size=1m",
            "--mount",
            "type=tmpfs,dst=/t2,tmpfs-size=2m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            "df -k /t1 /t2 | tail -2; stat -c %a /t2; grep -E ' /t[12] ' /proc/mounts",
        ]));
        assert!(
            out.contains(" 1024 ") && out.contains(" 2048 "),
            "{which}: {out}"
        );
        assert!(out.contains("\n1770\n"), "{which}: {out}");
        assert!(
            out.contains("/t1 tmpfs rw,nosuid,nodev,noexec"),
            "{which}: {out}"
        );
    }

    // Mounts in inspect, as dockerd shows them.
    ok(&mut d.docker(&[
        "create",
        "--name",
        "mm",
        "-v",
        &format!("{hs}:/h:ro,rslave"),
        "-v",
        "named:/n",
        "--mount",
        "type=tmpfs,dst=/t",
        "--tmpfs",
        "/hidden",
        "busybox",
        "true",
    ]));
    let mounts: serde_json::Value =
        serde_json::from_str(&d.inspect("mm", "{{json .Mounts}}")).unwrap();
    let by_dest = |dest: &str| {
        mounts
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == dest)
            .cloned()
            .unwrap_or_else(|| panic!("no {dest} in {mounts}"))
    };
    let h = by_dest("/h");
    assert_eq!(h["Type"], "bind");
    assert_eq!(h["Source"], hs.as_str());
    assert_eq!(h["Mode"], "ro,rslave");
    assert_eq!(h["RW"], false);
    assert_eq!(h["Propagation"], "rslave");
    let n = by_dest("/n");
    assert_eq!(n["Type"], "volume");
    assert_eq!(n["Name"], "named");
    assert_eq!(n["Driver"], "local");
    assert_eq!(n["RW"], true);
    assert!(n["Source"]
        .as_str()
        .unwrap()
        .ends_with("/volumes/named/_data"));
    assert_eq!(by_dest("/t")["Type"], "tmpfs");
    assert_eq!(mounts.as_array().unwrap().len(), 3, "{mounts}");
    let ps = ok(&mut d.docker(&[
        "ps",
        "-a",
        "--filter",
        "volume=named",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(ps.trim(), "mm");
    let ps = ok(&mut d.docker(&[
        "ps",
        "-a",
        "--filter",
        "volume=/h",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(ps.trim(), "mm");

    // --volumes-from: the same volumes and binds, optionally read-only.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "src",
        "-v",
        "vf:/vf",
        "-v",
        &format!("{hs}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo shared > /vf/f; sleep 1000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let out = ok(&mut c(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "busybox",
            "cat",
            "/vf/f",
            "/h/in",
        ]));
        assert_eq!(out, "shared\nfrom host\n");
        let err = fails(&mut c(&[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            "busybox",
            "touch",
            "/vf/g",
        ]));
        assert!(err.contains("Read-only file system"), "{err}");
    }
}

/// A directory bind-mounted on itself with `flag` (MS_SHARED, MS_PRIVATE…), so a test's
/// propagation does not depend on what the machine's `/` has.
fn self_bind(dir: &Path, flag: nix::mount::MsFlags) -> HostMount {
    std::fs::create_dir_all(dir).unwrap();
    nix::mount::mount(
        Some(dir),
        dir,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let guard = HostMount(dir.to_path_buf());
    nix::mount::mount(None::<&str>, dir, None::<&str>, flag, None::<&str>).unwrap();
    guard
}

#[test]
fn bind_propagation() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let shared = d.dir.path().join("shared");
    let _s = self_bind(&shared, nix::mount::MsFlags::MS_SHARED);
    let ss = shared.to_string_lossy().into_owned();
    // Default (rprivate) and rslave: a mount made on the host after the start shows up only
    // in the rslave container.
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "private",
        "-v",
        &format!("{ss}:/p"),
        "busybox",
        "sleep",
        "1000",
    ]));
    ok(&mut d.berth(&[
        "run",
        "-d",
        "--name",
        "slave",
        "-v",
        &format!("{ss}:/p:rslave"),
        "busybox",
        "sleep",
        "1000",
    ]));
    let late = mount_tmpfs(&shared.join("late"));
    std::fs::write(shared.join("late/seen"), "x").unwrap();
    let seen = |c: &str| {
        output(&mut d.docker(&["exec", c, "cat", "/p/late/seen"]))
            .status
            .success()
    };
    assert!(!seen("private"), "host mount leaked into an rprivate bind");
    assert!(seen("slave"), "host mount did not reach an rslave bind");
    ok(&mut d.docker(&["rm", "-f", "private", "slave"]));
    drop(late);

    // rshared: the source must be on a shared mount (dockerd's error otherwise); then a mount
    // the container makes appears on the host.
    let private = d.dir.path().join("private");
    let _p = self_bind(&private, nix::mount::MsFlags::MS_PRIVATE);
    for (mode, want) in [
        ("rshared", "is not a shared mount"),
        ("rslave", "is not a shared or slave mount"),
    ] {
        let err = fails(&mut d.docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/s:{mode}", private.display()),
            "busybox",
            "true",
        ]));
        assert!(err.contains(want), "{mode}: {err}");
    }
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let _inner = HostMount(shared.join("sub"));
    ok(&mut d.berth(&[
        "run",
        "--rm",
        "--privileged",
        "-v",
        &format!("{ss}:/s:rshared"),
        "busybox",
        "sh",
        "-c",
        "mount -t tmpfs none /s/sub && echo from-container > /s/sub/f",
    ]));
    assert_eq!(
        std::fs::read_to_string(shared.join("sub/f")).unwrap_or_default(),
        "from-container\n",
        "a container's mount did not propagate through an rshared bind"
    );
}

#[test]
fn mount_targets_are_resolved_inside_the_container() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    // Host directories the image's symlinks point at, absolutely and through "..".
    let victim = d.dir.path().join("victim");
    let victim2 = d.dir.path().join("victim2");
    for v in [&victim, &victim2] {
        std::fs::create_dir_all(v).unwrap();
        std::fs::write(v.join("marker"), "host\n").unwrap();
    }
    let src = d.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let script = format!(
        "ln -s {} /data && ln -s ../../../../../../../..{} /rel",
        victim.display(),
        victim2.display()
    );
    ok(&mut d.docker(&["run", "--name", "evilprep", "busybox", "sh", "-c", &script]));
    ok(&mut d.docker(&["commit", "evilprep", "evil:1"]));
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        ok(&mut c(&[
            "run",
            "--rm",
            "-v",
            &format!("evilvol-{which}:/data"),
            "-v",
            &format!("{}:/rel", src.display()),
            "evil:1",
            "sh",
            "-c",
            &format!("echo {which} > /data/w; echo {which} > /rel/w"),
        ]));
    }
    for v in [&victim, &victim2] {
        assert!(
            !mounted_under(v),
            "a mount landed on host path {}",
            v.display()
        );
        let names: Vec<_> = std::fs::read_dir(v)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("marker")],
            "{}",
            v.display()
        );
        assert_eq!(std::fs::read_to_string(v.join("marker")).unwrap(), "host\n");
    }
    // The writes went where the container's own view of the symlinks leads: the mounts.
    assert_eq!(std::fs::read_to_string(src.join("w")).unwrap(), "berth\n");
    let vol = d.data_root.join("volumes/evilvol-docker/_data/w");
    assert_eq!(std::fs::read_to_string(vol).unwrap(), "docker\n");
}

#[test]
fn cp_sees_through_mounts_and_export_does_not() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    let host = d.dir.path().join("b");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("bound"), "bind data\n").unwrap();
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    ok(&mut d.docker(&[
        "run",
        "-d",
        "--name",
        "cc",
        "-v",
        "cpvol:/v",
        "-v",
        &format!("{}:/b", host.display()),
        "-v",
        "cpro:/ro:ro",
        "busybox",
        "sh",
        "-c",
        "echo vol data > /v/f; sleep 1000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let upload = d.dir.path().join("up.txt");
    std::fs::write(&upload, "uploaded\n").unwrap();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        for state in ["running", "stopped"] {
            if state == "stopped" {
                ok(&mut c(&["stop", "-t", "0", "cc"]));
            }
            let o = out.join(format!("{which}-{state}"));
            std::fs::create_dir_all(&o).unwrap();
            ok(&mut c(&["cp", "cc:/v/f", &o.join("f").to_string_lossy()]));
            ok(&mut c(&[
                "cp",
                "cc:/b/bound",
                &o.join("bound").to_string_lossy(),
            ]));
            assert_eq!(std::fs::read_to_string(o.join("f")).unwrap(), "vol data\n");
            assert_eq!(
                std::fs::read_to_string(o.join("bound")).unwrap(),
                "bind data\n"
            );
            let dest = format!("cc:/v/up-{which}-{state}");
            ok(&mut c(&["cp", &upload.to_string_lossy(), &dest]));
            let err = fails(&mut c(&["cp", &upload.to_string_lossy(), "cc:/ro/x"]));
            assert!(
                err.to_lowercase().contains("read-only"),
                "{which} {state}: {err}"
            );
            if state == "stopped" {
                ok(&mut c(&["start", "cc"]));
            }
        }
    }
    let vol = d.data_root.join("volumes/cpvol/_data");
    for f in [
        "up-docker-running",
        "up-docker-stopped",
        "up-berth-running",
        "up-berth-stopped",
    ] {
        assert_eq!(
            std::fs::read_to_string(vol.join(f)).unwrap(),
            "uploaded\n",
            "{f}"
        );
    }
    // No mount made for a copy is visible on the host.
    let rootfs = d
        .data_root
        .join("containers")
        .join(d.inspect("cc", "{{.Id}}"))
        .join("rootfs");
    assert!(!mounted_under(&rootfs.join("v")) && !mounted_under(&rootfs.join("b")));
    // export is the root filesystem alone, as Docker's.
    let tar = output(&mut d.docker(&["export", "cc"])).stdout;
    let mut a = tar::Archive::new(&tar[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.trim_end_matches('/') == "v"),
        "mount point missing"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("v/") && n != "v/"),
        "export included volume content"
    );
}

#[test]
fn bad_mount_requests_are_refused_and_change_nothing() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        for (args, want) in [
            (vec!["-v", "bad@name:/d"], "includes invalid characters"),
            (vec!["-v", "/tmp:/d:bogus"], "invalid mode"),
            (vec!["-v", "x:rel"], "must be absolute"),
            (
                vec!["-v", "data1:/d", "-v", "data2:/d"],
                "Duplicate mount point",
            ),
            (
                vec!["--mount", "type=bind,src=rel,dst=/d"],
                "must be absolute",
            ),
            (
                vec!["--volumes-from", "nosuchcontainer"],
                "No such container",
            ),
        ] {
            let mut a = vec!["create"];
            a.extend(args.iter().copied());
            a.extend(["busybox", "true"]);
            let err = fails(&mut c(&a));
            assert!(err.contains(want), "{which} {args:?}: {err}");
        }
    }
    // Options of another type's kind, straight through the API.
    for (mount, want) in [
        (
            r#"{"Type":"bind","Source":"/tmp","Target":"/d","VolumeOptions":{"NoCopy":true}}"#,
            "VolumeOptions",
        ),
        (
            r#"{"Type":"tmpfs","Source":"/tmp","Target":"/d"}"#,
            "field Source must not be specified",
        ),
        (
            r#"{"Type":"volume","Target":"/d","TmpfsOptions":{"SizeBytes":1}}"#,
            "TmpfsOptions",
        ),
    ] {
        let body =
            format!(r#"{{"Image":"busybox","Cmd":["true"],"HostConfig":{{"Mounts":[{mount}]}}}}"#);
        let (status, _, resp) = http(
            &d.socket,
            "POST",
            "/v1.47/containers/create",
            Some(body.as_bytes()),
        )
        .unwrap();
        let resp = String::from_utf8_lossy(&resp);
        assert_eq!(status, 400, "{mount}: {resp}");
        assert!(resp.contains(want), "{mount}: {resp}");
    }
    assert!(ok(&mut d.docker(&["ps", "-aq"])).trim().is_empty());
    assert!(ok(&mut d.docker(&["volume", "ls", "-q"])).trim().is_empty());
}

#[test]
fn volume_subpaths_stay_inside_the_volume() {
    let d = TestDaemon::with_busybox(BIN).unwrap();
    ok(&mut d.docker(&[
        "run",
        "--rm",
        "-v",
        "sp:/v",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /v/sub && echo inside > /v/sub/x && ln -s /etc /v/evil && ln -s sub /v/rel",
    ]));
    for which in ["docker", "berth"] {
        let c = d.cli(which);
        let m = |sub: &str| format!("type=volume,src=sp,dst=/m,volume-subpath={sub}");
        for good in ["sub", "rel"] {
            let args = ["run", "--rm", "--mount", &m(good), "busybox", "cat", "/m/x"];
            assert_eq!(ok(&mut c(&args)), "inside\n", "{which} {good}");
        }
        for bad in ["evil", "../sp/_data/sub"] {
            let err = fails(&mut c(&[
                "run",
                "--rm",
                "--mount",
                &m(bad),
                "busybox",
                "ls",
                "/m",
            ]));
            assert!(
                err.contains("cannot access path")
                    || err.contains("relative path within the volume"),
                "{which} {bad}: {err}"
            );
        }
    }
    // Nothing staged for a subpath is left once the containers are gone.
    let staged = d.exec_root.join("mounts");
    let left = std::fs::read_dir(&staged).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "staged subpaths left in {}", staged.display());
    assert!(!mounted_under(&staged));
}
