//! Output helpers shared by the commands: docker's human sizes and durations, Go's
//! tabwriter (as the docker CLI configures it), ID truncation and `--format` handling.

pub mod template;

use serde_json::Value;
use std::io::Write;

pub use template::Template;

/// Go's `%.<prec>g` formatting of a float (shortest of %e/%f, trailing zeros removed).
pub fn go_fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits in exponent form to learn the exponent.
    let e_form = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e_form.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// `units.HumanSizeWithPrecision(size, 3)`: decimal units, e.g. "4.26MB", "1.2kB", "512B".
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 3)
}

pub fn human_size_prec(size: f64, prec: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_fmt_g(s, prec), UNITS[i])
}

/// `units.BytesSize`: binary units, e.g. "15.5GiB" (used by `info`).
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1024.0 && i < UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_fmt_g(s, 4), UNITS[i])
}

/// `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "2 minutes ago" for a unix timestamp (seconds).
pub fn time_ago(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    format!("{} ago", human_duration((now - unix as f64).max(0.0)))
}

/// Parses an RFC 3339 timestamp (as the API returns) to unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// Go's `time.Unix(t, 0).String()` in local time: "2024-01-02 15:04:05 +0000 UTC".
pub fn go_time_string(unix: i64) -> String {
    use chrono::TimeZone;
    let t = match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => t,
        None => return unix.to_string(),
    };
    let off = t.format("%z").to_string();
    let zone = if off == "+0000" {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{} {} {}", t.format("%Y-%m-%d %H:%M:%S"), off, zone)
}

/// Go's `time.Time.String()` of an RFC 3339 timestamp as the API returns it (the zone kept
/// as parsed): "2024-01-02 15:04:05.123 +0000 UTC". An unparsable or empty value is Go's
/// zero time, which is what the docker CLI prints for a missing `Created`.
pub fn go_time_string_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let off = t.offset().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let hhmm = format!("{sign}{:02}{:02}", off.abs() / 3600, off.abs() % 3600 / 60);
    // Go names only UTC; other parsed offsets get a nameless zone printed as the offset.
    let zone = if off == 0 {
        "UTC".to_string()
    } else {
        hhmm.clone()
    };
    format!("{out} {hhmm} {zone}")
}

/// `sortorder.NaturalLess` (github.com/fvbommel/sortorder), which the docker CLI sorts
/// names and port lines with: digit runs compare as numbers and sort before other bytes.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return da;
        }
        if !da {
            if a[i] != b[j] {
                return a[i] < b[j];
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[nz_a..i], &b[nz_b..j]);
        if na.len() != nb.len() {
            return na.len() < nb.len();
        }
        if na != nb {
            return na < nb;
        }
        if nz_a != nz_b {
            return nz_a < nz_b;
        }
    }
    // Equal so far: the shorter string sorts first.
    a.len() < b.len()
}

/// Sorts `v` by `key` with [`natural_less`].
pub fn natural_sort_by_key<T>(v: &mut [T], key: impl Fn(&T) -> &str) {
    v.sort_by(|x, y| {
        let (kx, ky) = (key(x), key(y));
        if natural_less(kx, ky) {
            std::cmp::Ordering::Less
        } else if natural_less(ky, kx) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// `stringid.TruncateID`: strip an algorithm prefix and keep 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis`: keep at most `max` chars, ending in "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `text/tabwriter` with the docker CLI's settings (minwidth 10, padding 3, ' ').
/// Cells are separated by '\t'; the last cell of a line is not aligned.
pub fn tabwrite(text: &str) -> String {
    tabwrite_with(text, 10, 3)
}

pub fn tabwrite_with(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    // Go's tabwriter aligns column blocks: consecutive lines having a cell in that column.
    // Compute widths per (line, column) by scanning blocks.
    let mut widths: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| vec![0; r.len().saturating_sub(1)])
        .collect();
    let maxcols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    for col in 0..maxcols.saturating_sub(1) {
        let mut i = 0;
        while i < rows.len() {
            if rows[i].len() > col + 1 {
                let start = i;
                let mut w = 0;
                while i < rows.len() && rows[i].len() > col + 1 {
                    w = w.max(rows[i][col].chars().count() + padding);
                    i += 1;
                }
                let w = w.max(minwidth);
                for row in widths.iter_mut().take(i).skip(start) {
                    row[col] = w;
                }
            } else {
                i += 1;
            }
        }
    }
    let mut out = String::new();
    for (li, row) in rows.iter().enumerate() {
        for (ci, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if ci + 1 < row.len() {
                let pad = widths[li][ci].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if li + 1 < rows.len() {
            out.push('\n');
        }
    }
    out
}

/// A `--format` value as the docker CLI interprets it.
#[derive(Debug, Clone)]
pub enum Format {
    /// `table [template]` (empty template = the command's default columns)
    Table(String),
    /// `json`
    Json,
    /// a raw Go template
    Raw(String),
}

impl Format {
    /// Parses `--format`; `default_table` is the command's default table template.
    pub fn parse(f: Option<&str>, default_table: &str) -> Format {
        match f {
            None | Some("") | Some("table") => Format::Table(default_table.to_string()),
            Some("json") => Format::Json,
            Some(s) if s.starts_with("table") => {
                let rest = s["table".len()..].trim_start().to_string();
                if rest.is_empty() {
                    Format::Table(default_table.to_string())
                } else {
                    Format::Table(rest)
                }
            }
            Some(s) => Format::Raw(s.to_string()),
        }
    }
}

/// docker's `preFormat`: trim spaces, turn literal `\t` / `\n` into tab / newline.
pub fn pre_format(s: &str) -> String {
    s.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// Renders a list of context objects the way docker's formatter does.
/// `headers` maps field names to column headers.
pub fn render_list(format: &Format, rows: &[Value], headers: &Value) -> anyhow::Result<String> {
    match format {
        Format::Json => {
            let mut out = String::new();
            for r in rows {
                out.push_str(&go_json_html_escape(&serde_json::to_string(r)?));
                out.push('\n');
            }
            Ok(out)
        }
        Format::Raw(t) => {
            let tmpl = Template::parse(&pre_format(t))?;
            let mut out = String::new();
            for r in rows {
                out.push_str(&tmpl.render(r)?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Table(t) => {
            let tmpl = Template::parse(&pre_format(t))?;
            let mut buf = String::new();
            let header = tmpl.render(headers).unwrap_or_default();
            buf.push_str(&header);
            buf.push('\n');
            for r in rows {
                buf.push_str(&tmpl.render(r)?);
                buf.push('\n');
            }
            Ok(tabwrite(&buf))
        }
    }
}

/// Go's `json.Marshal` escapes <, > and & (HTML-safe); serde_json does not.
pub fn go_json_html_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

pub fn print_out(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// `json.MarshalIndent(v, "", "    ")` with Go's HTML-safe escaping turned off.
pub fn to_json_indent<T: serde::Serialize>(v: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = v.serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(512.0), "512B");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1_234.0), "1.23kB");
        assert_eq!(human_size(12_000_000.0), "12MB");
        assert_eq!(human_size(999_900.0), "1e+03kB");
        assert_eq!(human_size(1_500_000_000.0), "1.5GB");
        assert_eq!(bytes_size(16_642_998_272.0), "15.5GiB");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(5.0), "5 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(150.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(3.0 * 3600.0), "3 hours");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(20.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn ids_and_strings() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(
            ellipsis("sleep 1000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(go_quote("sh -c \"x\"\n"), "\"sh -c \\\"x\\\"\\n\"");
    }

    #[test]
    fn tabwriter() {
        let s = tabwrite("A\tBB\tC\nlonger cell\tx\ty\n");
        assert_eq!(s, "A             BB        C\nlonger cell   x         y\n");
    }

    #[test]
    fn table_rendering() {
        let rows = vec![serde_json::json!({"ID": "abc", "Names": "web"})];
        let headers = serde_json::json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let f = Format::parse(Some("table {{.ID}}\\t{{.Names}}"), "");
        let out = render_list(&f, &rows, &headers).unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
        let f = Format::parse(Some("{{.Names}}"), "");
        assert_eq!(render_list(&f, &rows, &headers).unwrap(), "web\n");
        let f = Format::parse(Some("json"), "");
        assert_eq!(
            render_list(&f, &rows, &headers).unwrap(),
            "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
        );
    }
}
