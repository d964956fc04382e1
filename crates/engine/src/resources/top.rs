//! `docker top`: the host's `ps` with the user's arguments, keeping the rows whose PID is in
//! the container's cgroup (as dockerd does, so exec'd processes show too).

use bollard_stubs::models::ContainerTopResponse;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopError {
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
    #[error("Unexpected pid '{0}'")]
    BadPid(String),
    #[error("ps: {0}")]
    Ps(String),
}

/// The argument list for `ps`: dockerd splits `ps_args` on spaces and defaults to `-ef`.
pub fn ps_args(raw: Option<&str>) -> Vec<String> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("-ef");
    raw.split_whitespace().map(str::to_string).collect()
}

/// Runs `ps args -q pids` (cheaper, and exact), and plain `ps args` when the options do not
/// combine with `-q` (e.g. `f`), as dockerd does.
pub async fn run_ps(args: &[String], pids: &[i32]) -> Result<Vec<u8>, TopError> {
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let with_q = tokio::process::Command::new("ps")
        .args(args)
        .arg(format!("-q{list}"))
        .output()
        .await;
    if let Ok(o) = &with_q {
        if o.status.success() && !pids.is_empty() {
            return Ok(o.stdout.clone());
        }
    }
    let o = tokio::process::Command::new("ps")
        .args(args)
        .output()
        .await
        .map_err(|e| TopError::Ps(e.to_string()))?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        let first = err.lines().next().unwrap_or("").trim().to_string();
        return Err(TopError::Ps(if first.is_empty() {
            format!("exit status {}", o.status.code().unwrap_or(-1))
        } else {
            first
        }));
    }
    Ok(o.stdout)
}

/// dockerd's parsePSOutput: titles from the first line; rows of our pids, with the columns
/// past the last title (a command with spaces) joined; `-` pid rows (threads with `-m`)
/// follow the process before them.
pub fn parse_ps(output: &[u8], pids: &[i32]) -> Result<ContainerTopResponse, TopError> {
    let text = String::from_utf8_lossy(output);
    let mut lines = text.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut processes = Vec::new();
    let mut prev_ours = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_col) else {
            continue;
        };
        if *pid == "-" {
            if prev_ours {
                processes.push(row(&fields, titles.len()));
            }
            continue;
        }
        let p: i32 = pid.parse().map_err(|_| TopError::BadPid(pid.to_string()))?;
        prev_ours = pids.contains(&p);
        if prev_ours {
            processes.push(row(&fields, titles.len()));
        }
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    })
}

fn row(fields: &[&str], ncols: usize) -> Vec<String> {
    let split = ncols.saturating_sub(1).min(fields.len());
    let mut out: Vec<String> = fields[..split].iter().map(|s| s.to_string()).collect();
    out.push(fields[split..].join(" "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_container_rows_and_joins_command() {
        let out = b"UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 4242 4200 0 10:01 ? 00:00:00 sh -c sleep 100\nroot 4243 4242 0 10:01 ? 00:00:00 sleep 100\n";
        let r = parse_ps(out, &[4242, 4243]).unwrap();
        assert_eq!(r.titles.as_ref().unwrap().len(), 8);
        let p = r.processes.unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0][1], "4242");
        assert_eq!(p[0][7], "sh -c sleep 100");
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let out = b"USER PID TID CMD\nroot 7 - sh\nroot - 7 -\nroot 8 - other\nroot - 8 -\n";
        let r = parse_ps(out, &[7]).unwrap();
        assert_eq!(r.processes.unwrap().len(), 2);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_ps(b"UID CMD\nroot x\n", &[1]),
            Err(TopError::NoPidColumn)
        );
        assert!(matches!(
            parse_ps(b"PID CMD\nabc x\n", &[1]),
            Err(TopError::BadPid(_))
        ));
        assert_eq!(ps_args(None), vec!["-ef"]);
        assert_eq!(ps_args(Some("aux")), vec!["aux"]);
        assert_eq!(ps_args(Some("-o pid,comm")), vec!["-o", "pid,comm"]);
    }
}
