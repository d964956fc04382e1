//! `berth events`: the daemon's event stream, printed as the docker CLI prints it.

use crate::client::anyhow_api;
use crate::commands::container::parse_filters;
use crate::output::{self, Template};
use anyhow::Result;
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use std::io::Write;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

/// docker's default line: local time with nanoseconds, type, action, actor, sorted attributes.
fn pretty(ev: &EventMessage) -> String {
    use chrono::TimeZone;
    let nanos = ev
        .time_nano
        .or_else(|| ev.time.map(|t| t * 1_000_000_000))
        .unwrap_or(0);
    let mut line = String::new();
    if nanos != 0 {
        let t = chrono::Local.timestamp_nanos(nanos);
        let mut ts = t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string();
        if ts.ends_with("+00:00") {
            ts.truncate(ts.len() - 6);
            ts.push('Z');
        }
        line.push_str(&ts);
        line.push(' ');
    }
    let kind = ev.typ.map(|t| t.to_string()).unwrap_or_default();
    let actor = ev.actor.clone().unwrap_or_default();
    line.push_str(&format!(
        "{kind} {} {}",
        ev.action.as_deref().unwrap_or(""),
        actor.id.as_deref().unwrap_or("")
    ));
    let mut attrs: Vec<(String, String)> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    if !attrs.is_empty() {
        attrs.sort();
        let parts: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line
}

/// The API's `seconds.nanoseconds` form of a `--since`/`--until` value.
fn api_time(value: &str) -> Result<String> {
    let t = berth_units::parse_timestamp(value, chrono::Utc::now())
        .ok_or_else(|| anyhow::anyhow!("failed to parse value as time or duration: \"{value}\""))?;
    Ok(format!(
        "{}.{:09}",
        t.timestamp(),
        t.timestamp_subsec_nanos()
    ))
}

pub async fn cmd_events(docker: &Docker, a: EventsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?;
    let opts = EventsOptions {
        since: a.since.as_deref().map(api_time).transpose()?,
        until: a.until.as_deref().map(api_time).transpose()?,
        filters: (!filters.is_empty()).then_some(filters),
    };
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(&output::pre_format(f))?),
    };
    let mut events = docker.events(Some(opts));
    let mut out = std::io::stdout();
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(anyhow_api)?;
        let line = match &template {
            None => pretty(&ev),
            Some(t) => t.render(&serde_json::to_value(&ev)?)?,
        };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            // The reader went away (`berth events | head`): that is a normal end.
            return Ok(0);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessageTypeEnum};

    #[test]
    fn pretty_line_like_docker() {
        std::env::set_var("TZ", "UTC");
        let ev = EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    [
                        ("name".to_string(), "x".to_string()),
                        ("exitCode".to_string(), "0".to_string()),
                    ]
                    .into_iter()
                    .collect(),
                ),
            }),
            scope: None,
            time: Some(1),
            time_nano: Some(1_000_000_005),
        };
        assert_eq!(
            pretty(&ev),
            "1970-01-01T00:00:01.000000005Z container die abc (exitCode=0, name=x)"
        );
    }
}
