//! Credentials and the registry auth flows (basic, bearer token from a realm, identity tokens).

/// What the Engine API's `X-Registry-Auth` / `POST /auth` carry (Docker's AuthConfig).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token a registry gave at login (`docker login` stores it instead of the
    /// password); exchanged at the token realm with `grant_type=refresh_token`.
    pub identity_token: String,
    /// A bearer token to send as is (`registrytoken`).
    pub registry_token: String,
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
            ..Default::default()
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// One `WWW-Authenticate` challenge: the scheme (lowercased) and its parameters (names
/// lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChallenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl RawChallenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer { realm: String, service: String },
}

/// Parses every challenge of every `WWW-Authenticate` value (RFC 7235: several challenges in one
/// header, `token68` or `name=value` parameters, quoted strings with `\` escapes and commas).
pub(crate) fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<RawChallenge> {
    let mut out = Vec::new();
    for v in values {
        parse_challenge_header(v, &mut out);
    }
    out
}

fn parse_challenge_header(s: &str, out: &mut Vec<RawChallenge>) {
    let mut p = Lexer {
        s: s.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_separators();
        let Some(scheme) = p.token() else { return };
        let mut ch = RawChallenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            p.skip_ws();
            let save = p.i;
            let Some(name) = p.token() else {
                // A token68 (`Basic dXNlcg==`) or junk: skip to the next comma.
                p.skip_until_comma();
                if p.at_end() {
                    break;
                }
                p.i += 1;
                continue;
            };
            p.skip_ws();
            if !p.eat(b'=') {
                // A token not followed by `=` starts the next challenge.
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.bare_value()
            };
            ch.params.push((name.to_ascii_lowercase(), value));
            p.skip_ws();
            if !p.eat(b',') {
                p.skip_until_comma();
                if !p.eat(b',') {
                    break;
                }
            }
        }
        out.push(ch);
        if p.at_end() {
            return;
        }
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            return true;
        }
        false
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn skip_until_comma(&mut self) {
        while let Some(b) = self.peek() {
            if b == b',' {
                return;
            }
            if b == b'"' {
                self.quoted();
                continue;
            }
            self.i += 1;
        }
    }
    /// An unquoted parameter value; lenient (registries send bare URLs) up to a comma or space.
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b' ' | b'\t') {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// An RFC 7230 token (also accepting `/` so that token68 values are not split).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> String {
        let mut v = Vec::new();
        self.i += 1; // the opening quote
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(b),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// The challenge to answer: bearer before basic, as Docker's client prefers tokens.
pub(crate) fn choose_challenge(challenges: &[RawChallenge]) -> Option<Challenge> {
    let bearer = challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .and_then(|c| {
            let realm = c.param("realm")?.to_string();
            let service = c.param("service").unwrap_or_default().to_string();
            Some(Challenge::Bearer { realm, service })
        });
    bearer.or_else(|| {
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(Challenge::Basic)
    })
}

/// The `repository:<path>:<actions>` scope of a session.
pub(crate) fn repository_scope(path: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{path}:{actions}")
}

/// `Basic base64(user:password)`.
pub(crate) fn basic_header(creds: &Credentials) -> String {
    use base64::Engine as _;
    let raw = format!("{}:{}", creds.username, creds.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Tokens are cached per identity too, so that one user's token never serves another's request.
pub(crate) fn credentials_fingerprint(creds: &Credentials) -> String {
    use sha2::Digest as _;
    if creds.is_anonymous() {
        return String::new();
    }
    let mut h = sha2::Sha256::new();
    for part in [&creds.username, &creds.password, &creds.identity_token] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub realm: String,
    pub service: String,
    pub scopes: Vec<String>,
    pub identity: String,
}

/// What a token realm answered.
#[derive(Debug, Clone)]
pub(crate) struct TokenAnswer {
    pub token: String,
    pub expires_in: std::time::Duration,
    pub refresh_token: Option<String>,
}

/// distribution's default when a realm gives no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);
/// The OAuth2 `client_id` the realm sees (Docker sends `docker`).
pub(crate) const CLIENT_ID: &str = "berth";

#[derive(serde::Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

pub(crate) fn parse_token_body(body: &[u8]) -> Result<TokenAnswer, crate::DistributionError> {
    let b: TokenBody = serde_json::from_slice(body).map_err(|e| {
        crate::DistributionError::InvalidResponse(format!("unable to decode token response: {e}"))
    })?;
    // distribution prefers the OAuth2 field when both are present.
    let token = if b.access_token.is_empty() {
        b.token
    } else {
        b.access_token
    };
    if token.is_empty() {
        return Err(crate::DistributionError::InvalidResponse(
            "authorization server did not include a token in the response".to_string(),
        ));
    }
    let expires_in = match b.expires_in {
        Some(s) if s > 0 => std::time::Duration::from_secs(s),
        _ => DEFAULT_TOKEN_LIFETIME,
    };
    Ok(TokenAnswer {
        token,
        expires_in,
        refresh_token: b.refresh_token.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &RawChallenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_bearer_with_quoted_commas() {
        let cs = parse_challenges([
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        ]);
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].scheme, "bearer");
        assert_eq!(
            params(&cs[0]),
            vec![
                ("realm", "https://auth.example/token"),
                ("service", "registry.example"),
                ("scope", "repository:a/b:pull,push"),
            ]
        );
        assert_eq!(
            choose_challenge(&cs),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: "registry.example".into()
            })
        );
    }

    #[test]
    fn parses_several_challenges_in_one_header_and_across_headers() {
        let cs = parse_challenges([
            r#"Basic realm="a, \"quoted\" realm", Bearer realm=https://t/x , service = svc,error="invalid_token""#,
            "Negotiate",
            "Basic dXNlcjpwYXNz==",
        ]);
        let schemes: Vec<&str> = cs.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, vec!["basic", "bearer", "negotiate", "basic"]);
        assert_eq!(cs[0].param("realm"), Some(r#"a, "quoted" realm"#));
        assert_eq!(cs[1].param("realm"), Some("https://t/x"));
        assert_eq!(cs[1].param("service"), Some("svc"));
        assert_eq!(cs[1].param("error"), Some("invalid_token"));
        assert!(cs[2].params.is_empty());
        assert!(matches!(
            choose_challenge(&cs),
            Some(Challenge::Bearer { .. })
        ));
    }

    #[test]
    fn basic_only_and_junk() {
        let cs = parse_challenges([r#"Basic realm="Registry Realm""#]);
        assert_eq!(choose_challenge(&cs), Some(Challenge::Basic));
        // A bearer challenge without a realm cannot be answered.
        assert_eq!(
            choose_challenge(&parse_challenges(["Bearer service=x"])),
            None
        );
        for junk in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            "Bearer ,=,",
        ] {
            let _ = parse_challenges([junk]);
        }
    }

    #[test]
    fn token_body_fields() {
        let t = parse_token_body(br#"{"token":"a","access_token":"b","expires_in":300}"#).unwrap();
        assert_eq!(t.token, "b");
        assert_eq!(t.expires_in.as_secs(), 300);
        let t = parse_token_body(br#"{"token":"a","refresh_token":"r"}"#).unwrap();
        assert_eq!(t.token, "a");
        assert_eq!(t.expires_in, DEFAULT_TOKEN_LIFETIME);
        assert_eq!(t.refresh_token.as_deref(), Some("r"));
        assert!(parse_token_body(br#"{}"#).is_err());
        assert!(parse_token_body(b"not json").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = Credentials::basic("u", "hunter2");
        c.identity_token = "idtok".into();
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("idtok"), "{s}");
    }
}
