//! `Client` (one per daemon: connection pools per endpoint, the token cache) and `Repository`
//! (one repository of one registry, with the credentials and access of one pull or push).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_store::Digest;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE,
};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::auth::{
    basic_header, choose_challenge, credentials_fingerprint, parse_challenges, parse_token_body,
    repository_scope, Challenge, Credentials, TokenAnswer, TokenKey, CLIENT_ID,
};
use crate::config::{InsecurePolicy, RegistryConfig};
use crate::download::BlobDownload;
use crate::endpoint::{lock, Endpoint, EndpointSource, Purpose, Transports};
use crate::error::DistributionError;
use crate::http::{
    self, display_url, error_from_response, expect_status, read_capped, sliced_body, status_text,
    Progress, TrackedStream,
};
use crate::{ACCEPTED_MANIFESTS, DOCKER_HUB_DOMAIN, MAX_MANIFEST_BYTES};

/// What a session needs the registry to grant (the token scope's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    /// `pull,push`.
    Push,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    cfg: RegistryConfig,
    insecure: InsecurePolicy,
    transports: Transports,
    /// `host[:port]` of an insecure registry → the scheme that answered.
    schemes: Mutex<HashMap<String, String>>,
    /// Endpoint base URL → the challenge it answered the last unauthenticated request with, so
    /// that later sessions send a cached token at once.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

/// A token realm's answer is a small JSON document.
const MAX_TOKEN_BODY: usize = 1024 * 1024;
const OCTET_STREAM: &str = "application/octet-stream";

impl Client {
    pub fn new(cfg: RegistryConfig) -> Result<Client, DistributionError> {
        for m in &cfg.mirrors {
            let ok = Url::parse(m)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(DistributionError::Config(format!(
                    "invalid mirror {m}: not an http(s) URL"
                )));
            }
        }
        Ok(Client {
            inner: Arc::new(ClientInner {
                insecure: InsecurePolicy::new(&cfg.insecure),
                cfg,
                transports: Transports::default(),
                schemes: Mutex::new(HashMap::new()),
                challenges: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.cfg
    }

    /// Connects to `host` at `ip` whatever DNS says (curl's `--resolve`): for tests, which
    /// need a registry name that is not a loopback address, since loopback registries are always
    /// insecure. Such a name counts as secure unless `insecure` lists it by name.
    #[doc(hidden)]
    pub fn resolve_host(&self, host: &str, ip: IpAddr) {
        self.inner.transports.set_override(host, ip);
    }

    fn endpoint_source(&self) -> EndpointSource<'_> {
        EndpointSource {
            cfg: &self.inner.cfg,
            insecure: &self.inner.insecure,
            transports: &self.inner.transports,
            schemes: &self.inner.schemes,
        }
    }

    fn read_timeout(&self) -> Duration {
        self.inner.cfg.read_timeout
    }

    fn remember_scheme(&self, ep: &Endpoint) {
        if ep.dual_scheme {
            lock(&self.inner.schemes).insert(ep.host_key.clone(), ep.base.scheme().to_string());
        }
    }

    fn challenge(&self, ep: &Endpoint) -> Option<Challenge> {
        lock(&self.inner.challenges).get(&ep.auth_key()).cloned()
    }

    fn remember_challenge(&self, ep: &Endpoint, ch: Challenge) {
        lock(&self.inner.challenges).insert(ep.auth_key(), ch);
    }

    /// `POST /auth`: checks `creds` against the registry `server` (a host[:port], or a URL such
    /// as `https://index.docker.io/v1/`) by fetching `/v2/` and, when it asks for a bearer
    /// token, a token from its realm. Returns the identity (refresh) token the realm issued, if
    /// any. A wrong password is `DistributionError::Registry { status: 401, .. }`.
    pub async fn login(
        &self,
        server: &str,
        creds: &Credentials,
    ) -> Result<Option<String>, DistributionError> {
        let domain = login_domain(server);
        let endpoints = self
            .endpoint_source()
            .endpoints(&domain, Purpose::Push)
            .await?;
        let mut last = None;
        for ep in endpoints {
            match self.login_on(&ep, creds).await {
                Ok(token) => {
                    self.remember_scheme(&ep);
                    return Ok(token);
                }
                Err(e @ DistributionError::Transport(_)) => {
                    tracing::debug!(endpoint = %ep.base, error = %e, "login: trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| DistributionError::Config(format!("no endpoint for {server}"))))
    }

    async fn login_on(
        &self,
        ep: &Endpoint,
        creds: &Credentials,
    ) -> Result<Option<String>, DistributionError> {
        let url = ep.url("")?;
        let resp = self.login_probe(ep, &url, None).await?;
        if resp.status() == StatusCode::OK {
            return Ok(None);
        }
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Err(error_from_response(&Method::GET, &url, resp, self.read_timeout()).await);
        }
        let failed = |status: StatusCode| DistributionError::Registry {
            status: status.as_u16(),
            code: String::new(),
            message: format!(
                "login attempt to {url} failed with status: {}",
                status_text(status)
            ),
        };
        let challenges = parse_challenges(www_authenticate(&resp));
        let (auth, refresh) = match choose_challenge(&challenges) {
            None => return Err(failed(resp.status())),
            Some(Challenge::Basic) if creds.username.is_empty() => {
                return Err(failed(resp.status()))
            }
            Some(Challenge::Basic) => (basic_header(creds), None),
            Some(Challenge::Bearer { realm, service }) => {
                self.remember_challenge(
                    ep,
                    Challenge::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    },
                );
                let answer = self
                    .fetch_token(ep, &realm, &service, &[], creds, true)
                    .await?;
                (format!("Bearer {}", answer.token), answer.refresh_token)
            }
        };
        let resp = self.login_probe(ep, &url, Some(&auth)).await?;
        match resp.status() {
            StatusCode::OK => Ok(refresh),
            s => Err(failed(s)),
        }
    }

    async fn login_probe(
        &self,
        ep: &Endpoint,
        url: &Url,
        auth: Option<&str>,
    ) -> Result<Response, DistributionError> {
        let mut rb = ep.http.get(url.clone());
        if let Some(a) = auth {
            rb = rb.header(AUTHORIZATION, sensitive(a)?);
        }
        http::send(rb, &Method::GET, url, self.read_timeout(), &Progress::new()).await
    }

    /// A token for `scopes` from the realm: cached per (realm, service, scopes, identity) until
    /// it expires; `stale` (a token the registry just refused) is never served again.
    async fn token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: &str,
        scopes: &[String],
        creds: &Credentials,
        stale: Option<&str>,
    ) -> Result<String, DistributionError> {
        let key = TokenKey {
            realm: realm.to_string(),
            service: service.to_string(),
            scopes: scopes.to_vec(),
            identity: credentials_fingerprint(creds),
        };
        if let Some((token, until)) = lock(&self.inner.tokens).get(&key) {
            if *until > Instant::now() && Some(token.as_str()) != stale {
                return Ok(token.clone());
            }
        }
        let answer = self
            .fetch_token(ep, realm, service, scopes, creds, false)
            .await?;
        let until = Instant::now() + answer.expires_in;
        let mut tokens = lock(&self.inner.tokens);
        tokens.retain(|_, (_, u)| *u > Instant::now());
        tokens.insert(key, (answer.token.clone(), until));
        Ok(answer.token)
    }

    /// distribution's token handler: with an identity token, the OAuth2 refresh grant (POST);
    /// otherwise GET with the credentials as basic auth (none for anonymous pulls). `offline`
    /// (login) asks for a refresh token to be issued.
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: &str,
        scopes: &[String],
        creds: &Credentials,
        offline: bool,
    ) -> Result<TokenAnswer, DistributionError> {
        let mut url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                DistributionError::InvalidResponse(format!("invalid token realm {realm:?}"))
            })?;
        let (method, rb) = if !creds.identity_token.is_empty() {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", &creds.identity_token)
                .append_pair("client_id", CLIENT_ID);
            if !service.is_empty() {
                form.append_pair("service", service);
            }
            if !scopes.is_empty() {
                form.append_pair("scope", &scopes.join(" "));
            }
            if offline {
                form.append_pair("access_type", "offline");
            }
            let rb = ep
                .http
                .post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.finish());
            (Method::POST, rb)
        } else {
            {
                let mut q = url.query_pairs_mut();
                if !service.is_empty() {
                    q.append_pair("service", service);
                }
                for s in scopes {
                    q.append_pair("scope", s);
                }
                if !creds.username.is_empty() {
                    q.append_pair("account", &creds.username);
                }
                if offline {
                    q.append_pair("offline_token", "true")
                        .append_pair("client_id", CLIENT_ID);
                }
            }
            let mut rb = ep.http.get(url.clone());
            if !creds.username.is_empty() {
                rb = rb.header(AUTHORIZATION, sensitive(&basic_header(creds))?);
            }
            (Method::GET, rb)
        };
        tracing::debug!(realm = %display_url(&url), ?scopes, "fetching a registry token");
        let rt = self.read_timeout();
        let resp = http::send(rb, &method, &url, rt, &Progress::new()).await?;
        let resp = expect_status(&method, &url, resp, &[StatusCode::OK], rt).await?;
        let body = read_capped(&method, &url, resp, MAX_TOKEN_BODY, "token response", rt).await?;
        parse_token_body(&body)
    }

    /// A session on `path` (`library/busybox`) at registry `domain` (`docker.io`, `host:5000`).
    /// `docker.io` goes to `registry-1.docker.io` (after the mirrors, for pulls). Nothing is sent
    /// until the first request; auth challenges are answered then and tokens cached per scope.
    pub fn repository(
        &self,
        domain: &str,
        path: &str,
        creds: Credentials,
        access: Access,
    ) -> Repository {
        Repository {
            session: Arc::new(Session {
                client: self.clone(),
                domain: domain.to_string(),
                path: path.to_string(),
                creds,
                access,
                endpoints: tokio::sync::OnceCell::new(),
                current: Mutex::new(0),
            }),
        }
    }
}

/// `POST /auth`'s `serveraddress` → the registry's domain.
fn login_domain(server: &str) -> String {
    let host = crate::config::normalize_host_key(server.trim());
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_DOMAIN.to_string(),
        _ => host,
    }
}

fn www_authenticate(resp: &Response) -> impl Iterator<Item = &str> {
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// An Authorization value, kept out of debug output.
fn sensitive(v: &str) -> Result<HeaderValue, DistributionError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        DistributionError::InvalidResponse("credentials or token not valid in a header".into())
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// A manifest (or index) as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The `Content-Type` (or the body's `mediaType` when the header is generic).
    pub media_type: String,
    /// sha256 of `bytes`; checked against the reference when it was a digest.
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What `HEAD` on a manifest says.
#[derive(Debug, Clone)]
pub struct ManifestInfo {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

pub struct Repository {
    session: Arc<Session>,
}

/// The state a repository's requests share; blob downloads keep it alive to resume.
pub(crate) struct Session {
    client: Client,
    domain: String,
    path: String,
    creds: Credentials,
    access: Access,
    endpoints: tokio::sync::OnceCell<Vec<Arc<Endpoint>>>,
    /// The endpoint in use: requests start there; one that cannot be reached before it ever
    /// answered (or any error on a mirror) moves the session on to the next for good.
    current: Mutex<usize>,
}

/// One request, replayable after an auth challenge unless its body is a one-shot stream.
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: ReqBody,
    /// A scope beyond the session's (a mount's source repository).
    pub extra_scope: Option<String>,
}

pub(crate) enum ReqBody {
    Empty,
    Bytes(Bytes),
    Stream(Mutex<Option<BoxStream<'static, std::io::Result<Bytes>>>>),
}

impl Req {
    pub(crate) fn new(method: Method, url: Url) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: ReqBody::Empty,
            extra_scope: None,
        }
    }

    fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    fn replayable(&self) -> bool {
        !matches!(self.body, ReqBody::Stream(_))
    }
}

impl Session {
    pub(crate) fn read_timeout(&self) -> Duration {
        self.client.read_timeout()
    }

    async fn endpoints(&self) -> Result<&Vec<Arc<Endpoint>>, DistributionError> {
        let purpose = match self.access {
            Access::Pull => Purpose::Pull,
            Access::Push => Purpose::Push,
        };
        self.endpoints
            .get_or_try_init(|| async {
                self.client
                    .endpoint_source()
                    .endpoints(&self.domain, purpose)
                    .await
            })
            .await
    }

    /// Runs `op` on the current endpoint, moving on to the next one when the current cannot be
    /// reached (before it ever answered) or is a mirror that failed in any way.
    pub(crate) async fn on_endpoints<T, F, Fut>(&self, op: F) -> Result<T, DistributionError>
    where
        F: Fn(Arc<Endpoint>) -> Fut,
        Fut: Future<Output = Result<T, DistributionError>>,
    {
        let endpoints = self.endpoints().await?;
        loop {
            let index = (*lock(&self.current)).min(endpoints.len() - 1);
            let ep = endpoints[index].clone();
            let err = match op(ep.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let unreachable = matches!(err, DistributionError::Transport(_)) && !ep.has_answered();
            if !(ep.mirror || unreachable) || index + 1 >= endpoints.len() {
                return Err(err);
            }
            tracing::warn!(endpoint = %ep.base, error = %err, "registry endpoint failed; trying the next one");
            let mut current = lock(&self.current);
            if *current == index {
                *current = index + 1;
            }
        }
    }

    fn scopes(&self, extra: Option<&str>) -> Vec<String> {
        let mut s = vec![repository_scope(&self.path, self.access == Access::Push)];
        s.extend(extra.map(str::to_string));
        s
    }

    /// The Authorization value for a request to `ep` (None: anonymous). `stale` is the value a
    /// registry just refused.
    async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        stale: Option<&str>,
    ) -> Result<Option<String>, DistributionError> {
        if !self.creds.registry_token.is_empty() {
            return Ok(Some(format!("Bearer {}", self.creds.registry_token)));
        }
        match self.client.challenge(ep) {
            None => Ok(None),
            Some(Challenge::Basic) if self.creds.username.is_empty() => Ok(None),
            Some(Challenge::Basic) => Ok(Some(basic_header(&self.creds))),
            Some(Challenge::Bearer { realm, service }) => {
                let stale = stale.and_then(|s| s.strip_prefix("Bearer "));
                let token = self
                    .client
                    .token(ep, &realm, &service, scopes, &self.creds, stale)
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends `req` to `ep`, answering an auth challenge once (the answer to the retry is the
    /// caller's to judge, 401 included).
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        req: &Req,
    ) -> Result<Response, DistributionError> {
        let scopes = self.scopes(req.extra_scope.as_deref());
        let same_origin = req.url.origin() == ep.base.origin();
        let auth = if same_origin {
            self.authorization(ep, &scopes, None).await?
        } else {
            None
        };
        let resp = self.execute(ep, req, auth.as_deref()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED
            || !same_origin
            || !req.replayable()
            || !self.creds.registry_token.is_empty()
        {
            return Ok(resp);
        }
        let Some(challenge) = choose_challenge(&parse_challenges(www_authenticate(&resp))) else {
            return Ok(resp);
        };
        self.client.remember_challenge(ep, challenge);
        let retry = self.authorization(ep, &scopes, auth.as_deref()).await?;
        if retry.is_none() || retry == auth {
            return Ok(resp);
        }
        drop(resp);
        self.execute(ep, req, retry.as_deref()).await
    }

    async fn execute(
        &self,
        ep: &Endpoint,
        req: &Req,
        auth: Option<&str>,
    ) -> Result<Response, DistributionError> {
        let progress = Progress::new();
        let mut rb = ep
            .http
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(a) = auth {
            rb = rb.header(AUTHORIZATION, sensitive(a)?);
        }
        rb = match &req.body {
            ReqBody::Empty if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) => {
                rb.header(CONTENT_LENGTH, 0).body(Vec::new())
            }
            ReqBody::Empty => rb,
            ReqBody::Bytes(b) => rb
                .header(CONTENT_LENGTH, b.len())
                .body(sliced_body(b, &progress)),
            ReqBody::Stream(s) => {
                let stream = lock(s).take().ok_or_else(|| {
                    DistributionError::InvalidResponse("upload stream already sent".into())
                })?;
                rb.body(reqwest::Body::wrap_stream(TrackedStream::new(
                    stream,
                    progress.clone(),
                )))
            }
        };
        let resp = http::send(rb, &req.method, &req.url, self.read_timeout(), &progress).await?;
        if !ep.has_answered() {
            ep.answered();
            self.client.remember_scheme(ep);
        }
        Ok(resp)
    }

    /// `send` then `expect_status`.
    async fn request(
        &self,
        ep: &Endpoint,
        req: &Req,
        expected: &[StatusCode],
    ) -> Result<Response, DistributionError> {
        let resp = self.send(ep, req).await?;
        expect_status(&req.method, &req.url, resp, expected, self.read_timeout()).await
    }

    /// POST `/blobs/uploads/` (with `query`): the answer, whose status the caller judges.
    async fn post_upload(
        &self,
        ep: &Endpoint,
        query: &[(&str, &str)],
        extra_scope: Option<String>,
    ) -> Result<(Req, Response), DistributionError> {
        let mut url = ep.url(&format!("{}/blobs/uploads/", self.path))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = Req::new(Method::POST, url);
        req.extra_scope = extra_scope;
        let resp = self.send(ep, &req).await?;
        Ok((req, resp))
    }

    /// Opens an upload session: the URL to send its data to.
    async fn start_upload(&self, ep: &Endpoint) -> Result<Url, DistributionError> {
        let (req, resp) = self.post_upload(ep, &[], None).await?;
        let resp = expect_status(
            &req.method,
            &req.url,
            resp,
            &[StatusCode::ACCEPTED],
            self.read_timeout(),
        )
        .await?;
        upload_location(&resp)
    }

    /// Abandons an upload session (best effort: the registry expires it anyway).
    async fn cancel_upload(&self, ep: &Endpoint, location: &Url) {
        let req = Req::new(Method::DELETE, location.clone());
        if let Err(e) = self.send(ep, &req).await {
            tracing::debug!(error = %e, "cancelling an upload");
        }
    }

    async fn finish_upload(
        &self,
        ep: &Endpoint,
        location: &Url,
        digest: &Digest,
        body: ReqBody,
    ) -> Result<(), DistributionError> {
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let mut req = Req::new(Method::PUT, url).header(CONTENT_TYPE, OCTET_STREAM);
        req.body = body;
        self.request(ep, &req, &[StatusCode::CREATED]).await?;
        Ok(())
    }
}

/// The absolute URL of an upload's `Location` (absolute or relative to the request, with the
/// query it carries).
fn upload_location(resp: &Response) -> Result<Url, DistributionError> {
    let loc = http::header_str(resp, "location").ok_or_else(|| {
        DistributionError::InvalidResponse("upload answer without a Location header".into())
    })?;
    let url = resp.url().join(loc).map_err(|e| {
        DistributionError::InvalidResponse(format!("invalid upload Location {loc:?}: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DistributionError::InvalidResponse(format!(
            "invalid upload Location {loc:?}"
        )));
    }
    Ok(url)
}

/// distribution's repository name grammar: lowercase components of alphanumerics joined by
/// `.`, `_`, `__` or dashes.
fn check_path(path: &str) -> Result<(), DistributionError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    if path.len() <= 255 && path.split('/').all(component_ok) {
        return Ok(());
    }
    Err(DistributionError::Config(format!(
        "invalid repository name {path:?}"
    )))
}

/// A tag, or a digest (then returned).
fn check_reference(reference: &str) -> Result<Option<Digest>, DistributionError> {
    if reference.contains(':') {
        return Digest::parse(reference)
            .map(Some)
            .map_err(|_| DistributionError::Config(format!("invalid digest {reference:?}")));
    }
    let b = reference.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x));
    if ok {
        return Ok(None);
    }
    Err(DistributionError::Config(format!(
        "invalid tag {reference:?}"
    )))
}

fn sha256_digest(bytes: &[u8]) -> Digest {
    Digest::from_sha256_bytes(bytes)
}

/// Registries answer some manifests with a generic type; the body then says what it is.
fn manifest_media_type(header: Option<&str>, body: &[u8]) -> String {
    let header = header
        .map(|h| h.split(';').next().unwrap_or(h).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let generic = matches!(
        header.as_str(),
        "" | "application/json" | "text/plain" | "application/octet-stream" | "binary/octet-stream"
    );
    if !generic {
        return header;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<i64>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        config: Option<serde_json::Value>,
    }
    let Ok(p) = serde_json::from_slice::<Probe>(body) else {
        return header;
    };
    if !p.media_type.is_empty() {
        return p.media_type;
    }
    if p.manifests.is_some() {
        return "application/vnd.oci.image.index.v1+json".into();
    }
    if p.config.is_some() {
        return "application/vnd.oci.image.manifest.v1+json".into();
    }
    if p.schema_version == Some(1) {
        return "application/vnd.docker.distribution.manifest.v1+json".into();
    }
    header
}

/// The `Content-Length` header itself (a HEAD answer's body is empty whatever it announces).
fn header_length(resp: &Response) -> Option<u64> {
    http::header_str(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

/// 404 → None.
fn found<T>(r: Result<T, DistributionError>) -> Result<Option<T>, DistributionError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Hashes an upload's bytes as the connection takes them.
struct HashState {
    hasher: Sha256,
    size: u64,
    finished: bool,
}

impl Repository {
    /// `domain/path`, as the push line "The push refers to repository [...]" shows it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.session.domain, self.session.path)
    }

    pub fn path(&self) -> &str {
        &self.session.path
    }

    fn read_timeout(&self) -> Duration {
        self.session.read_timeout()
    }

    /// GET a manifest by tag or digest (accepting `ACCEPTED_MANIFESTS`). At most
    /// `MAX_MANIFEST_BYTES` are read; fetched by digest, the bytes must hash to it.
    pub async fn get_manifest(
        &self,
        reference: &str,
    ) -> Result<FetchedManifest, DistributionError> {
        check_path(&self.session.path)?;
        let wanted = check_reference(reference)?;
        let s = &self.session;
        let rt = self.read_timeout();
        s.on_endpoints(|ep| {
            let wanted = wanted.clone();
            async move {
                let url = ep.url(&format!("{}/manifests/{reference}", s.path))?;
                let req = Req::new(Method::GET, url).header(ACCEPT, &ACCEPTED_MANIFESTS.join(", "));
                let resp = s.request(&ep, &req, &[StatusCode::OK]).await?;
                let content_type = http::header_str(&resp, "content-type").map(str::to_string);
                let bytes = read_capped(
                    &req.method,
                    &req.url,
                    resp,
                    MAX_MANIFEST_BYTES,
                    "manifest",
                    rt,
                )
                .await?;
                let digest = sha256_digest(&bytes);
                if let Some(expected) = wanted {
                    if expected != digest {
                        return Err(DistributionError::DigestMismatch {
                            expected,
                            actual: digest,
                        });
                    }
                }
                Ok(FetchedManifest {
                    media_type: manifest_media_type(content_type.as_deref(), &bytes),
                    digest,
                    bytes,
                })
            }
        })
        .await
    }

    /// HEAD a manifest: None when the registry does not have it (404).
    pub async fn head_manifest(
        &self,
        reference: &str,
    ) -> Result<Option<ManifestInfo>, DistributionError> {
        check_path(&self.session.path)?;
        let wanted = check_reference(reference)?;
        let s = &self.session;
        let head = found(
            s.on_endpoints(|ep| async move {
                let url = ep.url(&format!("{}/manifests/{reference}", s.path))?;
                let req =
                    Req::new(Method::HEAD, url).header(ACCEPT, &ACCEPTED_MANIFESTS.join(", "));
                let resp = s.request(&ep, &req, &[StatusCode::OK]).await?;
                let digest = http::header_str(&resp, "docker-content-digest")
                    .and_then(|d| Digest::parse(d.trim()).ok());
                let media_type = http::header_str(&resp, "content-type")
                    .map(|h| manifest_media_type(Some(h), b""))
                    .filter(|m| m.contains('/') && !m.ends_with("/json"));
                Ok((digest, media_type, header_length(&resp)))
            })
            .await,
        )?;
        match head {
            None => Ok(None),
            Some((Some(digest), Some(media_type), Some(size)))
                if wanted.as_ref().is_none_or(|w| *w == digest) =>
            {
                Ok(Some(ManifestInfo {
                    media_type,
                    digest,
                    size,
                }))
            }
            // The registry left something out (or contradicted the digest asked for): the
            // manifest itself says it all.
            Some(_) => Ok(
                found(self.get_manifest(reference).await)?.map(|m| ManifestInfo {
                    media_type: m.media_type,
                    digest: m.digest,
                    size: m.bytes.len() as u64,
                }),
            ),
        }
    }

    /// PUT a manifest under a tag or its digest; returns the digest the registry reports
    /// (`Docker-Content-Digest`), else sha256 of `bytes`.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, DistributionError> {
        check_path(&self.session.path)?;
        check_reference(reference)?;
        let s = &self.session;
        s.on_endpoints(|ep| {
            let bytes = bytes.clone();
            async move {
                let url = ep.url(&format!("{}/manifests/{reference}", s.path))?;
                let mut req = Req::new(Method::PUT, url).header(CONTENT_TYPE, media_type);
                let computed = sha256_digest(&bytes);
                req.body = ReqBody::Bytes(bytes);
                let resp = s.request(&ep, &req, &[StatusCode::CREATED]).await?;
                Ok(http::header_str(&resp, "docker-content-digest")
                    .and_then(|d| Digest::parse(d.trim()).ok())
                    .unwrap_or(computed))
            }
        })
        .await
    }

    /// HEAD a blob: its size, or None when the registry does not have it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DistributionError> {
        check_path(&self.session.path)?;
        let s = &self.session;
        let r = s
            .on_endpoints(|ep| async move {
                let url = ep.url(&format!("{}/blobs/{digest}", s.path))?;
                let req = Req::new(Method::HEAD, url);
                let resp = s.request(&ep, &req, &[StatusCode::OK]).await?;
                header_length(&resp).ok_or_else(|| {
                    DistributionError::InvalidResponse(format!(
                        "blob {digest}: HEAD answer without Content-Length"
                    ))
                })
            })
            .await;
        found(r)
    }

    /// GET a whole small blob (an image config) into memory, at most `max` bytes, verified.
    pub async fn get_blob_bytes(
        &self,
        digest: &Digest,
        max: usize,
    ) -> Result<Bytes, DistributionError> {
        let mut dl = self.get_blob(digest, None).await?;
        let too_big = || {
            DistributionError::InvalidResponse(format!(
                "blob {digest} exceeds the {max} bytes limit"
            ))
        };
        if dl.total.is_some_and(|t| t > max as u64) {
            return Err(too_big());
        }
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = dl.next_chunk().await? {
            if buf.len() + chunk.len() > max {
                return Err(too_big());
            }
            buf.extend_from_slice(&chunk);
        }
        let actual = sha256_digest(&buf);
        if actual != *digest {
            return Err(DistributionError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(buf.freeze())
    }

    /// Starts downloading a blob. `size` (from the manifest) bounds what is read: a registry
    /// sending more is an error.
    pub async fn get_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<BlobDownload, DistributionError> {
        check_path(&self.session.path)?;
        let s = &self.session;
        let (ep, url, resp) = s
            .on_endpoints(|ep| async move {
                let url = ep.url(&format!("{}/blobs/{digest}", s.path))?;
                let req = Req::new(Method::GET, url.clone());
                let resp = s.request(&ep, &req, &[StatusCode::OK]).await?;
                Ok((ep, url, resp))
            })
            .await?;
        let length = resp.content_length();
        if let (Some(len), Some(size)) = (length, size) {
            if len != size {
                return Err(DistributionError::InvalidResponse(format!(
                    "blob {digest}: the registry announces {len} bytes, the manifest {size}"
                )));
            }
        }
        Ok(BlobDownload::new(
            self.session.clone(),
            ep,
            url,
            digest.clone(),
            length.or(size),
            resp,
        ))
    }

    /// Cross-repository mount (`POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`):
    /// true when the registry mounted it, false when it started an ordinary upload instead
    /// (which is cancelled).
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from_path: &str,
    ) -> Result<bool, DistributionError> {
        check_path(&self.session.path)?;
        check_path(from_path)?;
        let s = &self.session;
        let rt = self.read_timeout();
        s.on_endpoints(|ep| async move {
            let query = [("mount", digest.as_str()), ("from", from_path)];
            let scope = Some(repository_scope(from_path, false));
            let (req, resp) = s.post_upload(&ep, &query, scope).await?;
            let expected = [StatusCode::CREATED, StatusCode::ACCEPTED];
            let resp = expect_status(&req.method, &req.url, resp, &expected, rt).await?;
            if resp.status() == StatusCode::CREATED {
                return Ok(true);
            }
            if let Ok(location) = upload_location(&resp) {
                s.cancel_upload(&ep, &location).await;
            }
            Ok(false)
        })
        .await
    }

    /// Uploads a blob whose digest is known (a config, a stored layer blob): POST, then the body
    /// in one PUT `?digest=` (monolithic).
    pub async fn push_blob(&self, digest: &Digest, body: Bytes) -> Result<(), DistributionError> {
        check_path(&self.session.path)?;
        let s = &self.session;
        s.on_endpoints(|ep| {
            let body = body.clone();
            async move {
                let location = s.start_upload(&ep).await?;
                let r = s
                    .finish_upload(&ep, &location, digest, ReqBody::Bytes(body))
                    .await;
                if r.is_err() {
                    s.cancel_upload(&ep, &location).await;
                }
                r
            }
        })
        .await
    }

    /// Uploads a blob produced on the fly (a layer compressed while it is sent): POST, one
    /// streamed PATCH, then PUT `?digest=` with the sha256 of what was sent. Returns that
    /// digest and size.
    pub async fn push_blob_stream(
        &self,
        body: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<(Digest, u64), DistributionError> {
        use futures_util::StreamExt as _;
        check_path(&self.session.path)?;
        let s = &self.session;
        // The session (and its endpoint) is settled by the POST: the stream is sent once.
        let (ep, location) = s
            .on_endpoints(|ep| async move {
                let location = s.start_upload(&ep).await?;
                Ok((ep, location))
            })
            .await?;
        let state = Arc::new(Mutex::new(HashState {
            hasher: Sha256::new(),
            size: 0,
            finished: false,
        }));
        let hashing = {
            let state = state.clone();
            let end = state.clone();
            body.map(move |item| {
                if let Ok(b) = &item {
                    let mut st = lock(&state);
                    st.hasher.update(b);
                    st.size += b.len() as u64;
                }
                item
            })
            .chain(futures_util::stream::poll_fn(move |_| {
                lock(&end).finished = true;
                std::task::Poll::Ready(None)
            }))
            .boxed()
        };
        let result = async {
            let mut req =
                Req::new(Method::PATCH, location.clone()).header(CONTENT_TYPE, OCTET_STREAM);
            req.body = ReqBody::Stream(Mutex::new(Some(hashing)));
            let resp = s.request(&ep, &req, &[StatusCode::ACCEPTED]).await?;
            let next = upload_location(&resp).unwrap_or_else(|_| location.clone());
            let (digest, size) = {
                let st = lock(&state);
                if !st.finished {
                    return Err(DistributionError::InvalidResponse(
                        "the registry answered the upload before taking all of it".into(),
                    ));
                }
                (
                    Digest::from_hex(&hex::encode(st.hasher.clone().finalize()))
                        .map_err(|e| DistributionError::InvalidResponse(e.to_string()))?,
                    st.size,
                )
            };
            s.finish_upload(&ep, &next, &digest, ReqBody::Empty).await?;
            Ok((digest, size))
        }
        .await;
        if result.is_err() {
            s.cancel_upload(&ep, &location).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::is_docker_hub;

    #[test]
    fn names_and_references_are_checked() {
        for ok in ["library/busybox", "a", "a-b/c_d/e.f", "a__b", "x/y/z"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "../x", "a/..", "-a", "a b", "a/b/", "a?b", "a%2fb",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert_eq!(check_reference("latest").unwrap(), None);
        assert!(check_reference("v1.2_3-rc").is_ok());
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            check_reference(&d).unwrap(),
            Some(Digest::parse(&d).unwrap())
        );
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "..",
            "sha256:abc",
            "md5:x",
            &"x".repeat(129),
            "a?b",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn media_type_from_header_or_body() {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        assert_eq!(
            manifest_media_type(Some(&format!("{oci}; charset=utf-8")), b""),
            oci
        );
        assert_eq!(
            manifest_media_type(Some("application/json"), br#"{"mediaType":"x/y"}"#),
            "x/y"
        );
        assert_eq!(
            manifest_media_type(None, br#"{"schemaVersion":2,"manifests":[]}"#),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            manifest_media_type(Some("text/plain"), br#"{"schemaVersion":2,"config":{}}"#),
            oci
        );
        assert_eq!(
            manifest_media_type(Some("application/json"), b"junk"),
            "application/json"
        );
    }

    #[test]
    fn login_server_forms() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("docker.io"), "docker.io");
        assert_eq!(login_domain("registry-1.docker.io"), "docker.io");
        assert_eq!(login_domain("http://Reg:5000/v2/"), "reg:5000");
        assert_eq!(login_domain("reg:5000"), "reg:5000");
    }

    #[test]
    fn hub_domains() {
        assert!(is_docker_hub("docker.io"));
        assert!(is_docker_hub("index.docker.io"));
        assert!(!is_docker_hub("registry-1.docker.io"));
    }
}
