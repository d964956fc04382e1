//! System commands: version, info, and the generic `inspect`.

use crate::client::{anyhow_api, is_not_found, status};
use crate::output::{self, Template};
use anyhow::Result;
use bollard::query_parameters as qp;
use bollard::Docker;
use clap::Args;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

fn render_one(format: &str, v: &Value) -> Result<String> {
    if format == "json" {
        return Ok(serde_json::to_string(v)? + "\n");
    }
    let t = Template::parse(&output::pre_format(format)).map_err(|e| status(1, format!("{e}")))?;
    Ok(t.render(v).map_err(|e| status(1, format!("{e}")))? + "\n")
}

pub fn client_version_value(api: &str) -> Value {
    json!({
        "Platform": {"Name": "Berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": bollard::API_DEFAULT_VERSION.to_string(),
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "GoVersion": "n/a (Rust)",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub async fn cmd_version(docker: Option<&Docker>, a: FormatArgs) -> Result<i32> {
    let api = docker
        .map(|d| d.client_version().to_string())
        .unwrap_or_else(|| bollard::API_DEFAULT_VERSION.to_string());
    let client = client_version_value(&api);
    let (server, err) = match docker {
        Some(d) => match d.version().await {
            Ok(v) => (serde_json::to_value(v)?, None),
            Err(e) => (Value::Null, Some(anyhow_api(e))),
        },
        None => (Value::Null, None),
    };
    if let Some(f) = &a.format {
        let v = json!({"Client": client, "Server": server});
        output::print_out(&render_one(f, &v)?);
        return match err {
            Some(e) => Err(e),
            None => Ok(0),
        };
    }
    let mut out = String::new();
    out.push_str("Client:\n");
    out.push_str(&format!(
        " Version:           {}\n",
        client["Version"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(" API version:       {}\n", api));
    out.push_str(&format!(
        " Go version:        {}\n",
        client["GoVersion"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(
        " Git commit:        {}\n",
        client["GitCommit"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(
        " Built:             {}\n",
        client["BuildTime"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(
        " OS/Arch:           {}/{}\n",
        std::env::consts::OS,
        go_arch()
    ));
    out.push_str(" Context:           default\n");
    if !server.is_null() {
        let s = &server;
        let gs = |k: &str| s[k].as_str().unwrap_or("").to_string();
        out.push('\n');
        out.push_str(&format!(
            "Server: {}\n",
            s["Platform"]["Name"].as_str().unwrap_or("")
        ));
        out.push_str(" Engine:\n");
        out.push_str(&format!("  Version:          {}\n", gs("Version")));
        out.push_str(&format!(
            "  API version:      {} (minimum version {})\n",
            gs("ApiVersion"),
            gs("MinAPIVersion")
        ));
        out.push_str(&format!("  Go version:       {}\n", gs("GoVersion")));
        out.push_str(&format!("  Git commit:       {}\n", gs("GitCommit")));
        out.push_str(&format!("  Built:            {}\n", gs("BuildTime")));
        out.push_str(&format!(
            "  OS/Arch:          {}/{}\n",
            gs("Os"),
            gs("Arch")
        ));
        out.push_str(&format!(
            "  Experimental:     {}\n",
            s["Experimental"].as_bool().unwrap_or(false)
        ));
        if let Some(comps) = s["Components"].as_array() {
            for c in comps {
                let name = c["Name"].as_str().unwrap_or("");
                if name == "Engine" {
                    continue;
                }
                out.push_str(&format!(" {name}:\n"));
                out.push_str(&format!(
                    "  Version:          {}\n",
                    c["Version"].as_str().unwrap_or("")
                ));
                if let Some(Value::Object(d)) = c.get("Details") {
                    for (k, v) in d {
                        let label = format!("{k}:");
                        out.push_str(&format!("  {label:<18}{}\n", v.as_str().unwrap_or("")));
                    }
                }
            }
        }
    }
    output::print_out(&out);
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

pub async fn cmd_info(docker: &Docker, a: FormatArgs) -> Result<i32> {
    let info = serde_json::to_value(docker.info().await.map_err(anyhow_api)?)?;
    if let Some(f) = &a.format {
        output::print_out(&render_one(f, &info)?);
        return Ok(0);
    }
    let i = &info;
    let s = |k: &str| match &i[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => output::template::go_print(other),
    };
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    o.push_str(" Context:    default\n");
    o.push_str(" Debug Mode: false\n\n");
    o.push_str("Server:\n");
    o.push_str(&format!(" Containers: {}\n", s("Containers")));
    o.push_str(&format!("  Running: {}\n", s("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", s("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", s("ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", s("Images")));
    o.push_str(&format!(" Server Version: {}\n", s("ServerVersion")));
    o.push_str(&format!(" Storage Driver: {}\n", s("Driver")));
    if let Some(st) = i["DriverStatus"].as_array() {
        for pair in st {
            if let Some(p) = pair.as_array() {
                o.push_str(&format!(
                    "  {}: {}\n",
                    p.first().and_then(|x| x.as_str()).unwrap_or(""),
                    p.get(1).and_then(|x| x.as_str()).unwrap_or("")
                ));
            }
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", s("LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s("CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s("CgroupVersion")));
    if let Some(rt) = i["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        names.sort();
        o.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    o.push_str(&format!(" Default Runtime: {}\n", s("DefaultRuntime")));
    o.push_str(&format!(" Init Binary: {}\n", s("InitBinary")));
    if let Some(so) = i["SecurityOptions"].as_array() {
        o.push_str(" Security Options:\n");
        for opt in so.iter().filter_map(|x| x.as_str()) {
            let mut parts = opt.split(',');
            let name = parts.next().unwrap_or("").trim_start_matches("name=");
            o.push_str(&format!("  {name}\n"));
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    let mut k = k.to_string();
                    if let Some(f) = k.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    o.push_str(&format!("   {k}: {v}\n"));
                }
            }
        }
    }
    o.push_str(&format!(" Kernel Version: {}\n", s("KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", s("OperatingSystem")));
    o.push_str(&format!(" OSType: {}\n", s("OSType")));
    o.push_str(&format!(" Architecture: {}\n", s("Architecture")));
    o.push_str(&format!(" CPUs: {}\n", s("NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        output::bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    o.push_str(&format!(" Name: {}\n", s("Name")));
    o.push_str(&format!(" ID: {}\n", s("ID")));
    o.push_str(&format!(" Docker Root Dir: {}\n", s("DockerRootDir")));
    o.push_str(&format!(
        " Debug Mode: {}\n",
        i["Debug"].as_bool().unwrap_or(false)
    ));
    o.push_str(&format!(
        " Experimental: {}\n",
        i["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    o.push_str(" Insecure Registries:\n");
    if let Some(cidrs) = i["RegistryConfig"]["InsecureRegistryCIDRs"].as_array() {
        for c in cidrs.iter().filter_map(|x| x.as_str()) {
            o.push_str(&format!("  {c}\n"));
        }
    }
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        i["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    ));
    if let Some(w) = i["Warnings"].as_array() {
        let warns: Vec<&str> = w.iter().filter_map(|x| x.as_str()).collect();
        output::print_out(&o);
        for w in warns {
            eprintln!("{w}");
        }
        return Ok(0);
    }
    output::print_out(&o);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub typ: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
    /// `network inspect -v` (asks the daemon for its diagnostic detail)
    #[arg(skip)]
    pub verbose: bool,
}

enum Found {
    Ok(String, Value),
    /// A 404, with the daemon's message (reported as is when only one type was asked for).
    Missing(String),
    Err(anyhow::Error),
}

fn daemon_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

async fn inspect_kind(docker: &Docker, kind: &str, name: &str, a: &InspectArgs) -> Found {
    let (size, verbose) = (a.size, a.verbose);
    // Prefer the daemon's own bytes (key order, nulls) as the docker CLI prints them.
    let enc = percent_encode_path(name);
    let path = match kind {
        "container" => format!(
            "/containers/{enc}/json{}",
            if size { "?size=1" } else { "" }
        ),
        "image" => format!("/images/{enc}/json"),
        "network" => format!(
            "/networks/{enc}{}",
            if verbose { "?verbose=true" } else { "" }
        ),
        "volume" => format!("/volumes/{enc}"),
        _ => return Found::Missing(String::new()),
    };
    match crate::client::raw_get(docker, &path).await {
        Ok(Some((200, body))) => {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                return Found::Ok(crate::client::json_indent(&body, 0, "    "), v);
            }
        }
        Ok(Some((404, body))) => {
            return Found::Missing(format!(
                "Error response from daemon: {}",
                daemon_message(&body)
            ))
        }
        Ok(Some((code, body))) => {
            return Found::Err(anyhow::Error::new(
                bollard::errors::Error::DockerResponseServerError {
                    status_code: code,
                    message: daemon_message(&body),
                },
            ));
        }
        Ok(None) => {}
        Err(e) => return Found::Err(e),
    }
    macro_rules! go {
        ($fut:expr) => {
            match $fut.await {
                Ok(v) => Found::Ok(
                    output::to_json_indent(&v),
                    serde_json::to_value(&v).unwrap_or(Value::Null),
                ),
                Err(e) if is_not_found(&e) => Found::Missing(crate::client::api_error_message(&e)),
                Err(e) => Found::Err(anyhow_api(e)),
            }
        };
    }
    match kind {
        "container" => {
            go!(docker.inspect_container(name, Some(qp::InspectContainerOptions { size })))
        }
        "image" => go!(docker.inspect_image(name)),
        "network" => go!(docker.inspect_network(
            name,
            verbose.then_some(qp::InspectNetworkOptions {
                verbose,
                scope: None
            })
        )),
        "volume" => go!(docker.inspect_volume(name)),
        _ => Found::Missing(String::new()),
    }
}

/// `inspect` for one type (`container inspect`, `image inspect`) or any (`inspect`).
pub async fn cmd_inspect(docker: &Docker, a: InspectArgs, fixed: Option<&str>) -> Result<i32> {
    let kinds: Vec<&str> = match fixed.or(a.typ.as_deref()) {
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(other) => {
            return Err(status(
                1,
                format!("\"{other}\" is not a valid value for --type"),
            ))
        }
        None => vec!["container", "image", "network", "volume"],
    };
    let mut pretty = Vec::new();
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        let mut found = false;
        let mut not_found = String::new();
        for k in &kinds {
            match inspect_kind(docker, k, n, &a).await {
                Found::Ok(p, v) => {
                    pretty.push(p);
                    values.push(v);
                    found = true;
                    break;
                }
                Found::Missing(msg) => {
                    not_found = msg;
                    continue;
                }
                Found::Err(e) => {
                    errors.push(crate::client::error_message(&e));
                    found = true;
                    break;
                }
            }
        }
        if !found {
            // One type asked for: docker reports the daemon's 404 as is.
            errors.push(if kinds.len() == 1 && !not_found.is_empty() {
                not_found
            } else {
                let what = if kinds.len() == 1 { kinds[0] } else { "object" };
                format!("Error: No such {what}: {n}")
            });
        }
    }
    match &a.format {
        None => {
            if pretty.is_empty() {
                output::print_out("[]\n");
            } else {
                let indented: Vec<String> = pretty.iter().map(|p| indent4(p)).collect();
                output::print_out(&format!("[\n{}\n]\n", indented.join(",\n")));
            }
        }
        // `--format json`: the objects as one compact JSON array, as docker prints it.
        Some(f) if f == "json" => {
            output::print_out(&format!("{}\n", serde_json::to_string(&values)?));
        }
        Some(f) => {
            let mut out = String::new();
            for v in &values {
                out.push_str(&render_one(f, v)?);
            }
            // Nothing found: docker still ends the (empty) output with a newline.
            if values.is_empty() {
                out.push('\n');
            }
            output::print_out(&out);
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}

fn percent_encode_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) || b == b'/' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn indent4(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
