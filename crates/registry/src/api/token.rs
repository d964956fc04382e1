//! The token service (`--token`): `GET /token?service=&scope=…` with basic credentials (or
//! none, for an anonymous token with no access; `offline_token=true` adds a refresh token) and
//! `POST /token` (OAuth2 `grant_type=password|refresh_token`; `access_type=offline` adds a
//! refresh token — the identity token `docker login` keeps).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{query, query_get, St};
use crate::auth::{basic_credentials, TokenError, Who};

/// A token request's form is small; more is not a token request.
const FORM_MAX: usize = 64 * 1024;

/// Without `--token` there is no token service.
fn no_service() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

fn scopes(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect()
}

pub(super) async fn get_token(State(st): St, uri: Uri, headers: HeaderMap) -> Response {
    let Some(ts) = st.tokens.as_ref() else {
        return no_service();
    };
    let q = query(&uri);
    let who = match basic_credentials(&headers) {
        Some((user, password)) => match ts.password(&user, &password).await {
            Ok(w) => w,
            Err(e) => return e.into_response(),
        },
        None => Who::Anonymous,
    };
    let offline = query_get(&q, "offline_token") == Some("true");
    Json(ts.issue(&who, &scopes(&q), offline)).into_response()
}

pub(super) async fn post_token(State(st): St, body: Body) -> Response {
    let Some(ts) = st.tokens.as_ref() else {
        return no_service();
    };
    let Ok(bytes) = axum::body::to_bytes(body, FORM_MAX).await else {
        return bad_request("the token request's form is too large or broken");
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |k: &str| query_get(&form, k).unwrap_or("");
    let scope_list: Vec<String> = scopes(&form);
    let result = match field("grant_type") {
        "password" => ts
            .password(field("username"), field("password"))
            .await
            .map(|w| (w, field("access_type") == "offline", None)),
        "refresh_token" => {
            let rt = field("refresh_token");
            ts.refresh(rt).map(|w| (w, false, Some(rt.to_string())))
        }
        other => {
            return bad_request(&format!("unsupported grant_type {other:?}"));
        }
    };
    match result {
        Ok((who, offline, same_refresh)) => {
            let mut resp = ts.issue(&who, &scope_list, offline);
            if resp.refresh_token.is_none() {
                resp.refresh_token = same_refresh;
            }
            Json(resp).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn bad_request(msg: &str) -> Response {
    TokenError(StatusCode::BAD_REQUEST, "invalid_request", msg.to_string()).into_response()
}
