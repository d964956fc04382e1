//! Query strings as dockerd reads them: repeated keys, booleans as "1"/"true"/"0"/"false",
//! and `filters` as JSON in either of its two historical shapes.

use crate::error::{ApiError, ApiResult};
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// dockerd's BoolValue: absent, "", "0", "no", "false", "none" are false.
    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        if self.get(key).is_some() {
            self.bool(key)
        } else {
            default
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// `h` and `w` of a resize request.
    pub fn terminal_size(&self) -> ApiResult<(u16, u16)> {
        let dim = |k: &str| -> ApiResult<u16> {
            self.int(k)?
                .and_then(|v| u16::try_from(v).ok())
                .ok_or_else(|| ApiError::bad_request(format!("invalid {k}")))
        };
        Ok((dim("h")?, dim("w")?))
    }

    pub fn filters(&self) -> ApiResult<HashMap<String, Vec<String>>> {
        parse_filters(self.get("filters").unwrap_or(""))
    }
}

/// Handlers take the query string already parsed: `p: Params`.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query()))
    }
}

/// dockerd's `since`/`until` form: Unix seconds with an optional fraction (`1700000000.5`).
/// Absent, empty and "0" mean no bound.
pub fn parse_timestamp(s: Option<&str>) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(s) = s.filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request(format!("invalid timestamp: {s}"));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(bad)
}

pub fn parse_filters(raw: &str) -> ApiResult<HashMap<String, Vec<String>>> {
    if raw.trim().is_empty() {
        return Ok(HashMap::new());
    }
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
    let mut out = HashMap::new();
    for (k, vals) in obj {
        let list = match vals {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, b)| b.as_bool().unwrap_or(false))
                .map(|(s, _)| s.clone())
                .collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter: {k}"))),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp(None).unwrap(), None);
        assert_eq!(parse_timestamp(Some("0")).unwrap(), None);
        let t = parse_timestamp(Some("1700000000.5")).unwrap().unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        for bad in [
            "x",
            "1.ééééé",
            "1.1234567890",
            "1.-5",
            "99999999999999999999",
        ] {
            assert!(parse_timestamp(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_filter_shapes() {
        let a = parse_filters(r#"{"status":["running","exited"]}"#).unwrap();
        assert_eq!(a["status"], vec!["running", "exited"]);
        let b = parse_filters(r#"{"label":{"a=b":true}}"#).unwrap();
        assert_eq!(b["label"], vec!["a=b"]);
        assert!(parse_filters("{bad").is_err());
    }

    #[test]
    fn bools_and_repeats() {
        let p = Params::parse(Some(
            "all=1&force=false&changes=CMD%20x&changes=ENV%20A%3D1&v=True",
        ));
        assert!(p.bool("all"));
        assert!(!p.bool("force"));
        assert!(p.bool("v"));
        assert!(!p.bool("missing"));
        assert_eq!(p.all("changes"), vec!["CMD x", "ENV A=1"]);
    }
}
