//! `run`/`create --health-*` and `--no-healthcheck` into the create body's Healthcheck, as
//! the docker CLI does (`cli/command/container/opts.go`).

use super::run_opts::ContainerFlags;
use anyhow::{anyhow, bail, Result};
use bollard::models::HealthConfig;

use berth_units::parse_go_duration_ns as parse_duration_ns;

fn duration_flag(v: &Option<String>, flag: &str) -> Result<i64> {
    let Some(s) = v else { return Ok(0) };
    let ns = parse_duration_ns(s).ok_or_else(|| {
        anyhow!("invalid argument \"{s}\" for \"--{flag}\" flag: time: invalid duration \"{s}\"")
    })?;
    if ns < 0 {
        bail!("--{flag} cannot be negative");
    }
    Ok(ns)
}

pub fn health_config(f: &ContainerFlags) -> Result<Option<HealthConfig>> {
    let interval = duration_flag(&f.health_interval, "health-interval")?;
    let timeout = duration_flag(&f.health_timeout, "health-timeout")?;
    let start_period = duration_flag(&f.health_start_period, "health-start-period")?;
    let start_interval = duration_flag(&f.health_start_interval, "health-start-interval")?;
    let retries = f.health_retries.unwrap_or(0);
    let cmd = f.health_cmd.clone().filter(|c| !c.is_empty());
    let have = cmd.is_some()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if f.no_healthcheck {
        if have {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !have {
        return Ok(None);
    }
    if retries < 0 {
        bail!("--health-retries cannot be negative");
    }
    Ok(Some(HealthConfig {
        test: cmd.map(|c| vec!["CMD-SHELL".into(), c]),
        interval: Some(interval),
        timeout: Some(timeout),
        start_period: Some(start_period),
        start_interval: Some(start_interval),
        retries: Some(retries),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("200ms"), Some(200_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("-1s"), Some(-1_000_000_000));
        assert_eq!(parse_duration_ns("5"), None);
    }

    #[test]
    fn flags_to_config() {
        let mut f = ContainerFlags {
            health_cmd: Some("true".into()),
            health_interval: Some("1s".into()),
            health_retries: Some(2),
            ..Default::default()
        };
        let c = health_config(&f).unwrap().unwrap();
        assert_eq!(c.test.unwrap(), ["CMD-SHELL", "true"]);
        assert_eq!((c.interval, c.retries), (Some(1_000_000_000), Some(2)));
        f.no_healthcheck = true;
        assert!(health_config(&f).is_err());
        let f = ContainerFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(health_config(&f).unwrap().unwrap().test.unwrap(), ["NONE"]);
        let f = ContainerFlags {
            health_timeout: Some("-2s".into()),
            ..Default::default()
        };
        let e = health_config(&f).unwrap_err().to_string();
        assert_eq!(e, "--health-timeout cannot be negative");
        assert!(health_config(&ContainerFlags::default()).unwrap().is_none());
    }
}
