//! htpasswd basic auth and the token flow (challenge → token → retry, scopes, anonymous
//! tokens, refresh tokens) against an in-process registry.

mod common;

use base64::Engine as _;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_from_htpasswd() {
    let dir = tempfile::tempdir().unwrap();
    let pw = htpasswd(dir.path());
    let mut reg = start_with(|o| o.htpasswd = Some(pw)).await;
    for path in ["/v2/", "/v2/a/tags/list", "/v2/_catalog"] {
        let r = reg.get(path).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            header(r.headers(), "www-authenticate"),
            "Basic realm=\"berth-registry\""
        );
        assert_eq!(
            header(r.headers(), "docker-distribution-api-version"),
            "registry/2.0"
        );
        assert_eq!(code(r).await, "UNAUTHORIZED");
    }
    reg.auth = Some(basic("u", "wrong"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::UNAUTHORIZED);
    reg.auth = Some(basic("nobody", "secret"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::UNAUTHORIZED);
    reg.auth = Some(basic("u", "secret"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::OK);
    reg.push_image("priv/app", "v1", &[b"layer"]).await;
    assert_eq!(reg.get("/v2/priv/app/manifests/v1").await.status(), 200);
    let v = json_of(reg.get("/v2/_catalog").await).await;
    assert_eq!(v["repositories"][0], "priv/app");
    // Without --token there is no token service.
    assert_eq!(reg.get("/token").await.status(), StatusCode::NOT_FOUND);
}

/// `Bearer realm="…",service="…",scope="…"` as a map.
fn challenge(h: &str) -> std::collections::HashMap<String, String> {
    let rest = h.strip_prefix("Bearer ").unwrap_or_else(|| panic!("{h}"));
    rest.split("\",")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

async fn token_from(reg: &Reg, realm: &str, query: &str, creds: Option<&str>) -> reqwest::Response {
    let mut b = reg.http.get(format!("{realm}?{query}"));
    if let Some(c) = creds {
        b = b.header("authorization", c);
    }
    b.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_flow() {
    let dir = tempfile::tempdir().unwrap();
    let pw = htpasswd(dir.path());
    let mut reg = start_with(|o| {
        o.htpasswd = Some(pw);
        o.token = true;
    })
    .await;
    let realm = format!("{}/token", reg.base);

    // The challenge names the realm, the service and the scope the request needs.
    let r = reg.get("/v2/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let c = challenge(&header(r.headers(), "www-authenticate"));
    assert_eq!(c["realm"], realm);
    assert_eq!(c["service"], "berth-registry");
    assert!(!c.contains_key("scope"));
    let r = reg.get("/v2/team/app/tags/list").await;
    let c = challenge(&header(r.headers(), "www-authenticate"));
    assert_eq!(c["scope"], "repository:team/app:pull");
    let r = reg
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let c = challenge(&header(r.headers(), "www-authenticate"));
    assert_eq!(c["scope"], "repository:team/app:pull,push");
    assert_eq!(code(r).await, "UNAUTHORIZED");
    // Basic credentials are not accepted by the API itself in token mode.
    reg.auth = Some(basic("u", "secret"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::UNAUTHORIZED);

    // Token with basic credentials → retry with it.
    let creds = basic("u", "secret");
    let r = token_from(
        &reg,
        &realm,
        "service=berth-registry&scope=repository:team/app:pull,push",
        Some(&creds),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = json_of(r).await;
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["access_token"], v["token"]);
    assert_eq!(v["expires_in"], 300);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("refresh_token").is_none());
    reg.auth = Some(format!("Bearer {token}"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::OK);
    reg.push_image("team/app", "v1", &[b"layer"]).await;
    assert_eq!(reg.get("/v2/team/app/manifests/v1").await.status(), 200);
    // The token is for team/app only.
    let r = reg.get("/v2/team/other/tags/list").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let c = challenge(&header(r.headers(), "www-authenticate"));
    assert_eq!(c["error"], "insufficient_scope");
    assert_eq!(code(r).await, "DENIED");
    // The catalog needs registry:catalog:*.
    assert_eq!(
        reg.get("/v2/_catalog").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let v = json_of(
        token_from(
            &reg,
            &realm,
            "service=berth-registry&scope=registry:catalog:*",
            Some(&creds),
        )
        .await,
    )
    .await;
    reg.auth = Some(format!("Bearer {}", v["token"].as_str().unwrap()));
    let v = json_of(reg.get("/v2/_catalog").await).await;
    assert_eq!(v["repositories"][0], "team/app");

    // A pull-only token cannot push; mount needs pull on the source.
    let v = json_of(
        token_from(
            &reg,
            &realm,
            "service=berth-registry&scope=repository:team/app:pull",
            Some(&creds),
        )
        .await,
    )
    .await;
    reg.auth = Some(format!("Bearer {}", v["token"].as_str().unwrap()));
    assert_eq!(reg.get("/v2/team/app/manifests/v1").await.status(), 200);
    let r = reg
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(r).await, "DENIED");
    let layer = sha(b"layer");
    let v = json_of(
        token_from(
            &reg,
            &realm,
            "service=berth-registry&scope=repository:copy:pull,push",
            Some(&creds),
        )
        .await,
    )
    .await;
    reg.auth = Some(format!("Bearer {}", v["token"].as_str().unwrap()));
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/copy/blobs/uploads/?mount={layer}&from=team/app"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "no pull on team/app: no mount"
    );
    let v = json_of(
        token_from(
            &reg,
            &realm,
            "service=berth-registry&scope=repository:copy:pull,push&scope=repository:team/app:pull",
            Some(&creds),
        )
        .await,
    )
    .await;
    reg.auth = Some(format!("Bearer {}", v["token"].as_str().unwrap()));
    let r = reg
        .req(
            Method::POST,
            &format!("/v2/copy/blobs/uploads/?mount={layer}&from=team/app"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Anonymous: a token with no access; requests are then denied.
    let r = token_from(
        &reg,
        &realm,
        "service=berth-registry&scope=repository:team/app:pull",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let anon = json_of(r).await["token"].as_str().unwrap().to_string();
    reg.auth = Some(format!("Bearer {anon}"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::OK);
    let r = reg.get("/v2/team/app/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(code(r).await, "DENIED");

    // Wrong password at the token service.
    let r = token_from(
        &reg,
        &realm,
        "service=berth-registry",
        Some(&basic("u", "nope")),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_of(r).await["details"],
        "incorrect username or password"
    );
    // A forged or mangled token.
    let mut forged = token.clone();
    forged.insert(forged.len() / 2, 'x');
    reg.auth = Some(format!("Bearer {forged}"));
    let r = reg.get("/v2/team/app/manifests/v1").await;
    assert_eq!(code(r).await, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let pw = htpasswd(dir.path());
    let mut reg = start_with(|o| {
        o.htpasswd = Some(pw);
        o.token = true;
    })
    .await;
    let realm = format!("{}/token", reg.base);
    let form = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let post = |body: String| {
        reg.http
            .post(&realm)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // docker login: a password grant with access_type=offline returns the identity token.
    let r = post(form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "secret"),
        ("service", "berth-registry"),
        ("client_id", "docker"),
        ("access_type", "offline"),
        ("scope", ""),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    let refresh = v["refresh_token"].as_str().unwrap().to_string();
    assert!(v["access_token"].as_str().is_some());
    let r = post(form(&[
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "bad"),
        ("service", "berth-registry"),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(r).await["error"], "invalid_grant");

    // Later pushes trade the refresh token for access tokens.
    let r = post(form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("service", "berth-registry"),
        ("scope", "repository:r/app:pull,push"),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    reg.auth = Some(format!("Bearer {}", v["access_token"].as_str().unwrap()));
    reg.push_image("r/app", "v1", &[b"x"]).await;
    // A refresh token is not an access token, and an access token is not a refresh token.
    reg.auth = Some(format!("Bearer {refresh}"));
    assert_eq!(reg.get("/v2/").await.status(), StatusCode::UNAUTHORIZED);
    let r = post(form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", v["access_token"].as_str().unwrap()),
        ("service", "berth-registry"),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post(form(&[("grant_type", "client_credentials")]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // GET with offline_token=true (docker's fallback) also returns one.
    let v = json_of(
        token_from(
            &reg,
            &realm,
            "service=berth-registry&offline_token=true&client_id=docker",
            Some(&basic("u", "secret")),
        )
        .await,
    )
    .await;
    assert!(v["refresh_token"].as_str().is_some());

    // Tokens survive a restart: the key is kept in the root.
    let root = reg.store();
    reg.stop().await;
    let pw = htpasswd(dir.path());
    let reg2 = start_with(|o| {
        o.root = root;
        o.htpasswd = Some(pw);
        o.token = true;
    })
    .await;
    let r = reg2
        .http
        .post(format!("{}/token", reg2.base))
        .body(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
