//! JSON replies shaped like dockerd's: struct fields in declaration order, map keys sorted
//! (Go's encoder sorts maps; bollard's models hold maps in HashMaps, whose order is random,
//! which would make `docker inspect` output change from one call to the next).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// Fields whose values are maps keyed by user data, at any depth.
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "Data",
    "Networks",
    "Ports",
    "PortBindings",
    "ExposedPorts",
    "Volumes",
    "Config",
    "Sysctls",
    "Tmpfs",
    "StorageOpt",
    "Annotations",
    "DriverOpts",
    "Options",
    "Containers",
    "AuxiliaryAddresses",
];

fn sort_maps(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                if MAP_FIELDS.contains(&key.as_str()) {
                    if let Value::Object(m) = child {
                        // "Config" is also a struct (container/image config): only maps whose
                        // keys are not PascalCase field names are sorted.
                        if key != "Config"
                            || m.keys()
                                .all(|k| !k.starts_with(|c: char| c.is_ascii_uppercase()))
                        {
                            m.sort_keys();
                        }
                    }
                }
                sort_maps(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_maps),
        _ => {}
    }
}

pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_value(&self.0) {
            Ok(mut v) => {
                sort_maps(&mut v);
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    format!("{v}\n"),
                )
                    .into_response()
            }
            Err(e) => crate::error::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            )
            .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_sorted_structs_kept() {
        let mut v: Value = serde_json::from_str(
            r#"{"Id":"x","Created":"t","Labels":{"b":"2","a":"1"},"Config":{"Image":"i","Cmd":[]},"GraphDriver":{"Data":{"WorkDir":"w","LowerDir":"l"}}}"#,
        )
        .unwrap();
        sort_maps(&mut v);
        let s = v.to_string();
        assert!(s.starts_with(r#"{"Id":"x","Created":"t","Labels":{"a":"1","b":"2"},"Config":{"Image":"i","Cmd":[]}"#), "{s}");
        assert!(s.contains(r#"{"LowerDir":"l","WorkDir":"w"}"#), "{s}");
    }
}
