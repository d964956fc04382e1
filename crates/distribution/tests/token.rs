//! The bearer-token flow against an in-process registry and token realm: challenge → token →
//! retry, scopes (a mount's second repository), the token cache, refresh tokens (login's
//! identity token, the refresh grant), registry tokens sent as they are.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use berth_distribution::{Access, Client, Credentials, DistributionError};
use common::*;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
const REFRESH: &str = "refresh-u";
const STATIC: &str = "static-token";

#[derive(Default)]
struct Fake {
    base: String,
    /// token → the scopes it grants.
    issued: HashMap<String, Vec<String>>,
    token_gets: Vec<Vec<(String, String)>>,
    token_posts: Vec<Vec<(String, String)>>,
    /// The Authorization header of each token request.
    token_auth: Vec<Option<String>>,
    /// 401s the registry answered.
    challenges: u32,
    next: u32,
}

type S = Arc<Mutex<Fake>>;

fn pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn values<'a>(p: &'a [(String, String)], k: &str) -> Vec<&'a str> {
    p.iter()
        .filter(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn basic_user(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    Some(match raw.split_once(':') {
        Some((u, "secret")) => Ok(u.to_string()),
        _ => Err(()),
    })
}

fn issue(f: &mut Fake, scopes: Vec<String>) -> String {
    f.next += 1;
    let t = format!("tok-{}", f.next);
    f.issued.insert(t.clone(), scopes);
    t
}

fn unauthorized(details: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        format!("{{\"details\":\"{details}\"}}"),
    )
        .into_response()
}

async fn token_get(State(s): State<S>, uri: Uri, headers: HeaderMap) -> Response {
    let q = pairs(uri.query().unwrap_or_default());
    let user = basic_user(&headers);
    let mut f = s.lock().unwrap();
    f.token_gets.push(q.clone());
    f.token_auth.push(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    );
    if let Some(Err(())) = user {
        return unauthorized("incorrect username or password");
    }
    let scopes = values(&q, "scope").iter().map(|s| s.to_string()).collect();
    let token = issue(&mut f, scopes);
    let mut body = serde_json::json!({"token": token, "expires_in": 300});
    if values(&q, "offline_token") == ["true"] && matches!(user, Some(Ok(_))) {
        body["refresh_token"] = REFRESH.into();
    }
    axum::Json(body).into_response()
}

async fn token_post(State(s): State<S>, headers: HeaderMap, body: Bytes) -> Response {
    let form = pairs(std::str::from_utf8(&body).unwrap_or_default());
    let mut f = s.lock().unwrap();
    f.token_posts.push(form.clone());
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct != "application/x-www-form-urlencoded"
        || values(&form, "grant_type") != ["refresh_token"]
        || values(&form, "refresh_token") != [REFRESH]
    {
        return unauthorized("invalid refresh token");
    }
    let scopes = values(&form, "scope")
        .first()
        .map(|s| s.split(' ').map(str::to_string).collect())
        .unwrap_or_default();
    let token = issue(&mut f, scopes);
    axum::Json(serde_json::json!({"access_token": token})).into_response()
}

fn covers(granted: &[String], name: &str, action: &str) -> bool {
    granted.iter().any(|g| {
        g.strip_prefix(&format!("repository:{name}:"))
            .is_some_and(|acts| acts.split(',').any(|a| a == action))
    })
}

async fn registry(State(s): State<S>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let query = pairs(uri.query().unwrap_or_default());
    let mut f = s.lock().unwrap();
    let granted: Option<Vec<String>> = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| {
            if t == STATIC {
                return Some(vec!["repository:lib/app:pull,push".to_string()]);
            }
            f.issued.get(t).cloned()
        });
    let rest = path.strip_prefix("/v2/").unwrap_or_default();
    let (name, action) = match rest.find("/manifests/").or_else(|| rest.find("/blobs/")) {
        Some(i) => {
            let push = !matches!(method, Method::GET | Method::HEAD);
            (&rest[..i], if push { "push" } else { "pull" })
        }
        None => ("", ""),
    };
    let ok = match &granted {
        None => false,
        Some(_) if name.is_empty() => true,
        Some(g) => covers(g, name, action) && (action != "push" || covers(g, name, "pull")),
    };
    if !ok {
        f.challenges += 1;
        let scope = if name.is_empty() {
            String::new()
        } else {
            format!(",scope=\"repository:{name}:{action}\"")
        };
        let challenge = format!(
            "Bearer realm=\"{}/token\",service=\"fake.registry\"{scope}",
            f.base
        );
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
            .into_response();
    }
    let granted = granted.unwrap_or_default();
    if rest.is_empty() {
        return (StatusCode::OK, "{}").into_response();
    }
    if rest.ends_with("/manifests/latest") {
        let digest = berth_store::Digest::from_sha256_bytes(MANIFEST);
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, OCI_MANIFEST.to_string()),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    digest.to_string(),
                ),
            ],
            MANIFEST,
        )
            .into_response();
    }
    if method == Method::POST && rest.ends_with("/blobs/uploads/") {
        if let Some(from) = values(&query, "from").first() {
            if covers(&granted, from, "pull") {
                return StatusCode::CREATED.into_response();
            }
        }
        return (
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/v2/{name}/blobs/uploads/u1"))],
        )
            .into_response();
    }
    if method == Method::DELETE {
        return StatusCode::NO_CONTENT.into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

async fn start() -> (S, String) {
    let s: S = Arc::default();
    let app = axum::Router::new()
        .route("/token", get(token_get).post(token_post))
        .fallback(registry)
        .with_state(s.clone());
    let addr = serve(app).await;
    s.lock().unwrap().base = format!("http://{addr}");
    (s, addr.to_string())
}

#[tokio::test]
async fn anonymous_pull_gets_a_token_once_and_reuses_it() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "lib/app", Access::Pull);
    let m = r.get_manifest("latest").await.unwrap();
    assert_eq!(&m.bytes[..], MANIFEST);
    {
        let f = s.lock().unwrap();
        assert_eq!(f.challenges, 1);
        assert_eq!(f.token_gets.len(), 1);
        let q = &f.token_gets[0];
        assert_eq!(values(q, "service"), ["fake.registry"]);
        assert_eq!(values(q, "scope"), ["repository:lib/app:pull"]);
        assert!(values(q, "account").is_empty());
        assert_eq!(
            f.token_auth[0], None,
            "anonymous token requests carry no credentials"
        );
    }
    r.head_manifest("latest").await.unwrap().unwrap();
    // A new session of the same client sends the cached token with its first request.
    let again = repo(&c, &addr, "lib/app", Access::Pull);
    again.get_manifest("latest").await.unwrap();
    let f = s.lock().unwrap();
    assert_eq!(f.token_gets.len(), 1);
    assert_eq!(f.challenges, 1);
}

#[tokio::test]
async fn push_asks_for_pull_and_push_with_basic_credentials() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let r = c.repository(
        &addr,
        "lib/app",
        Credentials::basic("u", "secret"),
        Access::Push,
    );
    assert!(r.head_manifest("latest").await.unwrap().is_some());
    let f = s.lock().unwrap();
    let q = &f.token_gets[0];
    assert_eq!(values(q, "account"), ["u"]);
    assert_eq!(values(q, "scope"), ["repository:lib/app:pull,push"]);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:secret")
    );
    assert_eq!(f.token_auth[0].as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn mount_token_covers_both_repositories() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "lib/app", Access::Push);
    // 201 only when the token also grants pull on the source repository.
    assert!(r.mount_blob(&digest(b"x"), "lib/base").await.unwrap());
    let f = s.lock().unwrap();
    assert_eq!(
        values(&f.token_gets[0], "scope"),
        ["repository:lib/app:pull,push", "repository:lib/base:pull"]
    );
}

#[tokio::test]
async fn wrong_password_at_the_realm_is_401() {
    let (_s, addr) = start().await;
    let (c, _certs) = client();
    let r = c.repository(
        &addr,
        "lib/app",
        Credentials::basic("u", "nope"),
        Access::Pull,
    );
    let e = r.get_manifest("latest").await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.is_auth());
    assert_eq!(
        e.to_string(),
        "unauthorized: incorrect username or password"
    );
}

#[tokio::test]
async fn refused_token_is_fetched_again() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let r = repo(&c, &addr, "lib/app", Access::Pull);
    r.get_manifest("latest").await.unwrap();
    // The registry forgets its tokens (revoked, expired early): a 401 to a cached token
    // gets a fresh one, once.
    s.lock().unwrap().issued.clear();
    r.get_manifest("latest").await.unwrap();
    let f = s.lock().unwrap();
    assert_eq!(f.token_gets.len(), 2);
    assert_eq!(f.challenges, 2);
}

#[tokio::test]
async fn login_returns_the_refresh_token_which_then_pulls() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let token = c
        .login(&addr, &Credentials::basic("u", "secret"))
        .await
        .unwrap();
    assert_eq!(token.as_deref(), Some(REFRESH));
    {
        let f = s.lock().unwrap();
        let q = &f.token_gets[0];
        assert_eq!(values(q, "offline_token"), ["true"]);
        assert_eq!(values(q, "client_id"), ["berth"]);
        assert_eq!(values(q, "account"), ["u"]);
        assert!(values(q, "scope").is_empty());
    }
    let e = c
        .login(&addr, &Credentials::basic("u", "nope"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    // The identity token replaces the password: the refresh grant at the realm (POST).
    let creds = Credentials {
        username: "u".into(),
        identity_token: REFRESH.into(),
        ..Default::default()
    };
    let (c2, _certs2) = client();
    let r = c2.repository(&addr, "lib/app", creds, Access::Pull);
    r.get_manifest("latest").await.unwrap();
    let f = s.lock().unwrap();
    assert_eq!(f.token_posts.len(), 1);
    let form = &f.token_posts[0];
    assert_eq!(values(form, "grant_type"), ["refresh_token"]);
    assert_eq!(values(form, "refresh_token"), [REFRESH]);
    assert_eq!(values(form, "client_id"), ["berth"]);
    assert_eq!(values(form, "service"), ["fake.registry"]);
    assert_eq!(values(form, "scope"), ["repository:lib/app:pull"]);
}

#[tokio::test]
async fn registry_token_is_sent_as_is() {
    let (s, addr) = start().await;
    let (c, _certs) = client();
    let creds = Credentials {
        registry_token: STATIC.into(),
        ..Default::default()
    };
    let r = c.repository(&addr, "lib/app", creds, Access::Pull);
    r.get_manifest("latest").await.unwrap();
    {
        let f = s.lock().unwrap();
        assert_eq!(f.challenges, 0);
        assert!(f.token_gets.is_empty() && f.token_posts.is_empty());
    }
    let other = c.repository(
        &addr,
        "lib/other",
        Credentials {
            registry_token: STATIC.into(),
            ..Default::default()
        },
        Access::Pull,
    );
    let e = other.get_manifest("latest").await.unwrap_err();
    assert!(
        matches!(e, DistributionError::Registry { status: 401, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn tokens_are_not_shared_between_identities() {
    let (s, addr) = start().await;
    let c: Client = client().0;
    repo(&c, &addr, "lib/app", Access::Pull)
        .get_manifest("latest")
        .await
        .unwrap();
    c.repository(
        &addr,
        "lib/app",
        Credentials::basic("u", "secret"),
        Access::Pull,
    )
    .get_manifest("latest")
    .await
    .unwrap();
    assert_eq!(s.lock().unwrap().token_gets.len(), 2);
}
