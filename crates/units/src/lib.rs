//! The small value syntaxes Docker's users type and Docker's API carries (Go durations and
//! timestamps, detach keys), parsed once for the CLI, the engine and the image and runtime
//! crates alike.

pub mod detach_keys;

/// Go's `time.ParseDuration` ("1h30m", "200ms", "1.5h", "-2s", "0"), in nanoseconds. Callers
/// decide what a negative value means (dockerd rejects it with its own wording).
pub fn parse_go_duration_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Some(0);
    }
    if body.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// A non-negative Go duration as a `std::time::Duration`.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    parse_go_duration_ns(s)
        .filter(|n| *n >= 0)
        .map(|n| std::time::Duration::from_nanos(n as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_ns("0"), Some(0));
        assert_eq!(parse_go_duration_ns("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration_ns("200ms"), Some(200_000_000));
        assert_eq!(parse_go_duration_ns("3µs"), Some(3_000));
        assert_eq!(parse_go_duration_ns("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("-2s"), None);
        for bad in ["", "5", "1x", "s", "1h-", "--1s", "99999999999999999h"] {
            assert_eq!(parse_go_duration_ns(bad), None, "{bad}");
        }
    }
}

/// docker's `timetypes.GetTimestamp`, for `--since`, `--until` and `until=` filters: a Go
/// duration back from `now`, an RFC 3339 time, a date-time or date without zone (local
/// time), or Unix seconds with an optional fraction.
pub fn parse_timestamp(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
    if value != "0" {
        if let Some(ns) = parse_go_duration_ns(value) {
            return Some(now - chrono::Duration::nanoseconds(ns));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    let local = |t: NaiveDateTime| {
        Local
            .from_local_datetime(&t)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, fmt) {
            return local(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return local(d.and_hms_opt(0, 0, 0)?);
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    DateTime::from_timestamp(secs, nanos)
}

#[cfg(test)]
mod timestamp_tests {
    use super::*;
    use chrono::{DateTime, Utc};

    #[test]
    fn docker_timestamps() {
        std::env::set_var("TZ", "UTC");
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_timestamp(s, now).unwrap().to_rfc3339();
        assert_eq!(at("24h"), "2024-04-30T12:00:00+00:00");
        assert_eq!(at("1.5h"), "2024-05-01T10:30:00+00:00");
        assert_eq!(at("1714564800"), "2024-05-01T12:00:00+00:00");
        assert_eq!(at("1714564800.5"), "2024-05-01T12:00:00.500+00:00");
        assert_eq!(at("0"), "1970-01-01T00:00:00+00:00");
        assert_eq!(at("2024-04-01T00:00:00Z"), "2024-04-01T00:00:00+00:00");
        assert_eq!(at("2024-04-01"), "2024-04-01T00:00:00+00:00");
        for bad in ["soon", "5x", "1.ééé", "1.1234567890", ""] {
            assert!(parse_timestamp(bad, now).is_none(), "{bad}");
        }
    }
}
