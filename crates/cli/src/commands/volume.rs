//! Volume commands (`volume create/ls/inspect/rm/prune`) with docker 28's requests, output
//! and exit codes.

use crate::client::{anyhow_api, api_error_message, status};
use crate::commands::container::parse_filters;
use crate::commands::net_opts::{flag_error, kv_map, validate_label};
use crate::commands::prune::confirm;
use crate::commands::system::{self as sys, InspectArgs};
use crate::output::{self, human_size_prec, Format};
use anyhow::Result;
use bollard::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters as qp;
use bollard::Docker;
use clap::{ArgAction, Args};
use serde_json::{json, Value};
use std::collections::HashMap;

// ---------- create ----------

#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, action = ArgAction::Append)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", action = ArgAction::Append)]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", hide = true)]
    pub name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

/// The `POST /volumes/create` body for the flags (empty fields left out, as docker does).
pub fn create_request(a: &CreateArgs) -> Result<VolumeCreateRequest> {
    if a.name.is_some() && a.name_flag.as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(status(
            1,
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
        ));
    }
    for l in &a.label {
        validate_label(l).map_err(|e| status(125, flag_error("--label", l, &e)))?;
    }
    let nonempty = |m: HashMap<String, String>| (!m.is_empty()).then_some(m);
    Ok(VolumeCreateRequest {
        name: a
            .name
            .clone()
            .or_else(|| a.name_flag.clone())
            .filter(|n| !n.is_empty()),
        driver: Some(a.driver.clone()),
        driver_opts: nonempty(kv_map(&a.opt)),
        labels: nonempty(kv_map(&a.label)),
        cluster_volume_spec: None,
    })
}

pub async fn cmd_create(docker: &Docker, a: CreateArgs) -> Result<i32> {
    let v = docker
        .create_volume(create_request(&a)?)
        .await
        .map_err(anyhow_api)?;
    println!("{}", v.name);
    Ok(0)
}

// ---------- ls ----------

#[derive(Args, Debug, Default)]
pub struct LsArgs {
    /// Display only cluster volumes, and use cluster volume list formatting
    #[arg(long)]
    pub cluster: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

const VOLUME_TABLE: &str = "{{.Driver}}\t{{.Name}}";
const CLUSTER_TABLE: &str = "{{.Name}}\t{{.Group}}\t{{.Driver}}\t{{.Availability}}\t{{.Status}}";

fn volume_headers() -> Value {
    json!({
        "Availability": "AVAILABILITY", "Driver": "DRIVER", "Group": "GROUP", "ID": "ID",
        "Labels": "LABELS", "Links": "LINKS", "Mountpoint": "MOUNTPOINT", "Name": "VOLUME NAME",
        "Scope": "SCOPE", "Size": "SIZE", "Status": "STATUS",
    })
}

/// The docker CLI's volume "context" for `volume ls --format` (keys in Go's JSON order).
pub fn volume_row(v: &Volume) -> Value {
    let mut labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // docker joins them in Go's random map order; sorted is one of those orders, and stable.
    labels.sort();
    let usage = v.usage_data.as_ref();
    let cluster = v.cluster_volume.as_ref();
    let spec = cluster.and_then(|c| c.spec.as_ref());
    let na = || "N/A".to_string();
    json!({
        "Availability": cluster.map_or_else(na, |_| {
            spec.and_then(|s| s.access_mode.as_ref())
                .and_then(|m| m.availability)
                .map(|a| a.to_string())
                .unwrap_or_default()
        }),
        "Driver": v.driver,
        "Group": cluster.map_or_else(na, |_| {
            spec.and_then(|s| s.group.clone()).unwrap_or_default()
        }),
        "Labels": labels.join(","),
        "Links": usage.map_or_else(na, |u| u.ref_count.to_string()),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Scope": v.scope.map(|s| s.to_string()).unwrap_or_default(),
        "Size": usage.map_or_else(na, |u| human_size_prec(u.size as f64, 4)),
        "Status": cluster.map_or_else(na, cluster_status),
    })
}

fn cluster_status(c: &bollard::models::ClusterVolume) -> String {
    if c.info
        .as_ref()
        .and_then(|i| i.volume_id.as_deref())
        .is_none_or(str::is_empty)
    {
        return "pending creation".into();
    }
    match c.publish_status.as_ref().map_or(0, Vec::len) {
        0 => "created".into(),
        1 => "in use (1 node)".into(),
        n => format!("in use ({n} nodes)"),
    }
}

/// docker's `NewVolumeFormat`: `-q` turns the plain table into names only; `--cluster`
/// has its own table.
fn ls_format(a: &LsArgs) -> Format {
    let custom = a.format.as_deref().filter(|f| !f.is_empty());
    match custom {
        None | Some("table") if a.quiet => Format::Raw("{{.Name}}".into()),
        None if a.cluster => Format::Table(CLUSTER_TABLE.into()),
        f => Format::parse(f, VOLUME_TABLE),
    }
}

pub async fn cmd_ls(docker: &Docker, a: LsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    let opts = qp::ListVolumesOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let list = docker.list_volumes(Some(opts)).await.map_err(anyhow_api)?;
    let mut vols = list.volumes.unwrap_or_default();
    if a.cluster {
        vols.retain(|v| v.cluster_volume.is_some());
    }
    output::natural_sort_by_key(&mut vols, |v| v.name.as_str());
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    output::print_out(&output::render_list(
        &ls_format(&a),
        &rows,
        &volume_headers(),
    )?);
    Ok(0)
}

// ---------- inspect ----------

#[derive(Args, Debug)]
pub struct InspectVolumeArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

pub async fn cmd_inspect(docker: &Docker, a: InspectVolumeArgs) -> Result<i32> {
    let args = InspectArgs {
        format: a.format,
        size: false,
        typ: None,
        names: a.names,
        verbose: false,
    };
    sys::cmd_inspect(docker, args, Some("volume")).await
}

// ---------- rm ----------

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

/// Removes each volume in turn, printing the removed names; the errors are reported together
/// at the end (exit 1), as docker does.
pub async fn cmd_rm(docker: &Docker, a: RmArgs) -> Result<i32> {
    let mut errors = Vec::new();
    for name in &a.volumes {
        let opts = qp::RemoveVolumeOptions { force: a.force };
        match docker.remove_volume(name, Some(opts)).await {
            Ok(()) => println!("{name}"),
            Err(e) => errors.push(api_error_message(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errors.join("\n")))
    }
}

// ---------- prune ----------

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", action = ArgAction::Append)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

const ANONYMOUS_WARNING: &str =
    "WARNING! This will remove anonymous local volumes not used by at least one container.";
const ALL_WARNING: &str =
    "WARNING! This will remove all local volumes not used by at least one container.";

/// The prune filters: `--filter` values, plus `all=true` for `-a` (which may not be given
/// both ways).
pub fn prune_filters(a: &PruneArgs) -> Result<HashMap<String, Vec<String>>> {
    let mut filters = parse_filters(&a.filter)?;
    if a.all {
        if filters.contains_key("all") {
            return Err(status(
                1,
                "conflicting options: cannot specify both --all and --filter all=1",
            ));
        }
        filters.insert("all".into(), vec!["true".into()]);
    }
    Ok(filters)
}

/// `POST /volumes/prune`; the bytes reclaimed and docker's report ("Deleted Volumes:\n<name>\n…",
/// empty when nothing was removed). For `system prune --volumes` too.
pub async fn prune_report(
    docker: &Docker,
    filters: HashMap<String, Vec<String>>,
) -> Result<(i64, String)> {
    let opts = qp::PruneVolumesOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let r = docker.prune_volumes(Some(opts)).await.map_err(anyhow_api)?;
    let out =
        crate::commands::prune::deleted_list("Volumes", r.volumes_deleted.unwrap_or_default());
    Ok((r.space_reclaimed.unwrap_or(0), out))
}

pub async fn cmd_prune(docker: &Docker, a: PruneArgs) -> Result<i32> {
    let filters = prune_filters(&a)?;
    let warning = if a.all {
        ALL_WARNING
    } else {
        ANONYMOUS_WARNING
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let (reclaimed, report) = prune_report(docker, filters).await?;
    if !report.is_empty() {
        println!("{report}");
    }
    println!(
        "Total reclaimed space: {}",
        human_size_prec(reclaimed as f64, 4)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{VolumeScopeEnum, VolumeUsageData};

    use crate::commands::parse_args as args;

    fn volume(name: &str) -> Volume {
        Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/berth/volumes/{name}/_data"),
            scope: Some(VolumeScopeEnum::LOCAL),
            ..Default::default()
        }
    }

    #[test]
    fn create_bodies_as_docker_sends_them() {
        let body = |v: &[&str]| {
            serde_json::to_value(create_request(&args::<CreateArgs>(v)).unwrap()).unwrap()
        };
        assert_eq!(body(&[]), json!({"Driver": "local"}));
        assert_eq!(
            body(&["-o", "a=b", "-o", "c", "--label", "x", "--label", "y=1", "-d", "foo", "n1"]),
            json!({"Driver": "foo", "DriverOpts": {"a": "b", "c": ""},
                   "Labels": {"x": "", "y": "1"}, "Name": "n1"})
        );
        assert_eq!(body(&["--name", "nm"])["Name"], "nm");
        let e = create_request(&args::<CreateArgs>(&["--name", "x", "y"])).unwrap_err();
        assert_eq!(
            crate::client::error_message(&e),
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
        );
        let e = create_request(&args::<CreateArgs>(&["--label", "", "n"])).unwrap_err();
        assert_eq!(crate::client::exit_code_of(&e), 125);
        assert!(crate::client::error_message(&e)
            .starts_with("invalid argument \"\" for \"--label\" flag"));
    }

    #[test]
    fn ls_rows_and_formats() {
        let mut v = volume("v10");
        v.labels = HashMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]);
        let rows = vec![volume_row(&volume("v2")), volume_row(&v)];
        assert_eq!(
            serde_json::to_string(&rows[1]).unwrap(),
            r#"{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=1,b=2","Links":"N/A","Mountpoint":"/var/lib/berth/volumes/v10/_data","Name":"v10","Scope":"local","Size":"N/A","Status":"N/A"}"#
        );
        let render = |a: &[&str]| {
            output::render_list(&ls_format(&args::<LsArgs>(a)), &rows, &volume_headers()).unwrap()
        };
        assert_eq!(
            render(&[]),
            "DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\n"
        );
        assert_eq!(render(&["-q"]), "v2\nv10\n");
        assert_eq!(render(&["-q", "--format", "table"]), "v2\nv10\n");
        assert_eq!(
            render(&["--format", "{{.Name}} {{.Driver}} {{.Labels}} {{.Mountpoint}} {{.Scope}}"]),
            "v2 local  /var/lib/berth/volumes/v2/_data local\nv10 local a=1,b=2 /var/lib/berth/volumes/v10/_data local\n"
        );
        assert_eq!(
            render(&["--format", "table {{.Name}}\\t{{.Labels}}\\t{{.Links}}"]),
            "VOLUME NAME   LABELS    LINKS\nv2                      N/A\nv10           a=1,b=2   N/A\n"
        );
        assert!(render(&["--format", "json"]).starts_with("{\"Availability\":\"N/A\""));
    }

    #[test]
    fn usage_data_in_rows() {
        let mut v = volume("u");
        v.usage_data = Some(VolumeUsageData {
            size: 1_234_567,
            ref_count: 2,
        });
        let r = volume_row(&v);
        assert_eq!(
            (r["Size"].as_str(), r["Links"].as_str()),
            (Some("1.235MB"), Some("2"))
        );
    }

    #[test]
    fn prune_filters_with_all() {
        let f = prune_filters(&args::<PruneArgs>(&["-a", "--filter", "label=x"])).unwrap();
        assert_eq!(f["all"], vec!["true"]);
        assert_eq!(f["label"], vec!["x"]);
        assert!(prune_filters(&args::<PruneArgs>(&[])).unwrap().is_empty());
        let e = prune_filters(&args::<PruneArgs>(&["-a", "--filter", "all=1"])).unwrap_err();
        assert_eq!(
            crate::client::error_message(&e),
            "conflicting options: cannot specify both --all and --filter all=1"
        );
    }
}
