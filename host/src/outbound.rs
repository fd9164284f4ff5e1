//! What may leave the host: the single check every plugin-built request passes.
//!
//! A plugin returns a path, a query string, headers and a body. This module
//! turns them into a URL under the configured base URL or refuses them. It is
//! the only place that decides a destination, so the guarantee "a plugin
//! cannot send anywhere else" is checked here and nowhere else:
//!
//! - the path must start with a single `/` and contain only RFC 3986 path
//!   characters; no scheme, no authority (`//host`), no backslash, no `.` or
//!   `..` segment, no `?` or `#`;
//! - nothing a gateway in front of the base URL could normalise into a way
//!   out: no percent-encoded `.`, `/`, `\` or `%` (so no double encoding
//!   either), no `%` that does not start a `%XX` escape (`%%32%65` is `%2e`
//!   to a gateway that decodes twice), and no dot segment hidden behind a
//!   path parameter (`..;x`);
//! - the query may contain only RFC 3986 query characters;
//! - the resulting URL must still have the base URL's scheme, host, port and
//!   path prefix (checked after joining, belt and braces);
//! - headers must be valid, and may not be ones the host owns
//!   (`Authorization`, `Host`, `Cookie`, the idempotency header, hop-by-hop
//!   and length headers);
//! - the body must fit the configured cap.
//!
//! It also owns what the host adds: the credentials, built once from the
//! plugin's auth scheme and the operator's secrets ([`Credentials`]), in a
//! header the plugin may not set. [`Policy`] bundles both, built once at
//! start from the plugin's `info` and the settings.

use std::sync::Arc;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::plugin::wit;
use crate::secret::{Redactor, Secret};
use crate::settings::{Settings, primary_secret};

/// Why a plugin's request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused the request built by plugin `{plugin}`: {reason}")]
pub struct Refused {
    pub plugin: String,
    pub reason: String,
}

/// A request that passed every check, ready for the executor.
#[derive(Debug, Clone)]
pub struct Checked {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// Cheap to clone for each retry.
    pub body: bytes::Bytes,
}

/// Headers a plugin may not set: the host owns them.
const HOST_OWNED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// The destination policy for one provider.
#[derive(Debug, Clone)]
pub struct Destination {
    base: Url,
    /// The base URL's path without its trailing `/` (empty for a bare host).
    prefix: String,
    plugin: String,
    idempotency_header: Option<String>,
    /// The header that carries credentials under `auth-scheme::header`.
    auth_header: Option<String>,
    max_body: usize,
}

impl Destination {
    /// `base` is `--base-url` or the plugin's default.
    pub fn new(
        base: &str,
        plugin: &str,
        idempotency_header: Option<&str>,
        max_body: usize,
    ) -> Result<Self, String> {
        let mut base = Url::parse(base).map_err(|e| format!("invalid base URL `{base}`: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!(
                "base URL `{base}` must be http(s)://host[:port][/prefix]"
            ));
        }
        if base.query().is_some() || base.fragment().is_some() || !base.username().is_empty() {
            return Err(format!(
                "base URL `{base}` must not carry a query, a fragment or credentials"
            ));
        }
        let prefix = base.path().trim_end_matches('/').to_string();
        base.set_path(&prefix);
        Ok(Self {
            base,
            prefix,
            plugin: plugin.to_string(),
            idempotency_header: idempotency_header.map(str::to_ascii_lowercase),
            auth_header: None,
            max_body,
        })
    }

    /// The destination for the provider `info` describes at `base`: its
    /// idempotency header and, under header auth, its credentials header
    /// host-owned. `Policy::new`, `payhost plugin request` and `payhost
    /// plugin check` all build theirs here.
    pub fn for_provider(
        info: &wit::ProviderInfo,
        base: &str,
        max_body: usize,
    ) -> Result<Self, String> {
        let destination = Destination::new(
            base,
            &info.name,
            info.retry.idempotency_header.as_deref(),
            max_body,
        )?;
        match &info.auth {
            wit::AuthScheme::Header(header) => destination.with_auth_header(&header.name),
            _ => Ok(destination),
        }
    }

    /// Makes the header that carries the provider's credentials (its
    /// `auth-scheme::header(name)`) host-owned too: a plugin may not set it.
    /// Refuses a name that is not a valid header, or is one the host owns
    /// for another purpose.
    pub fn with_auth_header(mut self, name: &str) -> Result<Self, String> {
        check_auth_header(name, &self.plugin)?;
        self.auth_header = Some(name.to_ascii_lowercase());
        Ok(self)
    }

    fn refuse(&self, reason: impl Into<String>) -> Refused {
        Refused {
            plugin: self.plugin.clone(),
            reason: reason.into(),
        }
    }

    /// Checks a plugin-built request and resolves its URL.
    pub fn check(&self, request: &wit::HttpRequest) -> Result<Checked, Refused> {
        self.check_path(&request.path)?;
        if let Some(bad) = request.query.chars().find(|&c| !is_query_char(c)) {
            return Err(self.refuse(format!(
                "its query string contains {bad:?}, which is not allowed unencoded"
            )));
        }
        if request.body.len() > self.max_body {
            return Err(self.refuse(format!(
                "its body is {} bytes; the limit is {} bytes",
                request.body.len(),
                self.max_body
            )));
        }
        let mut url = self.base.clone();
        if self.prefix.is_empty() {
            url.set_path(&request.path);
        } else {
            url.set_path(&format!("{}{}", self.prefix, request.path));
        }
        url.set_query((!request.query.is_empty()).then_some(request.query.as_str()));
        if url.scheme() != self.base.scheme()
            || url.host_str() != self.base.host_str()
            || url.port_or_known_default() != self.base.port_or_known_default()
            || !url.path().starts_with(&self.prefix)
        {
            return Err(self.refuse(format!(
                "its path `{}` resolves outside the base URL",
                request.path
            )));
        }
        let headers = self.check_headers(request)?;
        Ok(Checked {
            method: method(request.method),
            url,
            headers,
            body: bytes::Bytes::copy_from_slice(&request.body),
        })
    }

    fn check_path(&self, path: &str) -> Result<(), Refused> {
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(self.refuse(format!(
                "its path `{}` is not relative to the base URL (it must start with a single `/`)",
                truncate(path)
            )));
        }
        if let Some(bad) = path.chars().find(|&c| !is_path_char(c)) {
            return Err(self.refuse(format!(
                "its path `{}` contains {bad:?}; paths may only contain URL path characters",
                truncate(path)
            )));
        }
        // Most paths have no `%` escape to judge (and nothing to lower-case).
        if memchr::memchr(b'%', path.as_bytes()).is_some() {
            self.check_escapes(path)?;
        }
        for segment in path.split('/') {
            // `..;jsessionid` is `..` to servers that strip path parameters.
            let bare = segment.split(';').next().unwrap_or(segment);
            if bare == "." || bare == ".." {
                return Err(self.refuse(format!(
                    "its path `{}` contains a `{segment}` segment",
                    truncate(path)
                )));
            }
        }
        Ok(())
    }

    /// Refuses a `%` that starts no `%XX` escape, and escapes of separators.
    fn check_escapes(&self, path: &str) -> Result<(), Refused> {
        let bytes = path.as_bytes();
        if let Some(at) = (0..bytes.len()).find(|&i| {
            bytes[i] == b'%'
                && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        }) {
            return Err(self.refuse(format!(
                "its path `{}` has a `%` at byte {at} that does not start a %XX escape",
                truncate(path)
            )));
        }
        let lower = path.to_ascii_lowercase();
        for encoded in ["%2e", "%2f", "%5c", "%25"] {
            if lower.contains(encoded) {
                return Err(self.refuse(format!(
                    "its path `{}` contains the encoded separator `{encoded}`, which a gateway \
                     may decode into a way out of the base URL",
                    truncate(path)
                )));
            }
        }
        Ok(())
    }

    fn check_headers(&self, request: &wit::HttpRequest) -> Result<HeaderMap, Refused> {
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 1);
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if HOST_OWNED.contains(&lower.as_str())
                || self.idempotency_header.as_deref() == Some(lower.as_str())
                || self.auth_header.as_deref() == Some(lower.as_str())
            {
                return Err(
                    self.refuse(format!("it sets the `{name}` header, which the host owns"))
                );
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.refuse(format!("it sets an invalid header name `{name}`")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                self.refuse(format!("it sets an invalid value for header `{name}`"))
            })?;
            headers.append(name, value);
        }
        if let Some(content_type) = &request.content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| self.refuse(format!("invalid content type `{content_type}`")))?;
            headers.insert(reqwest::header::CONTENT_TYPE, value);
        }
        Ok(headers)
    }
}

/// Everything about what leaves the host for one provider, built once.
#[derive(Debug, Clone)]
pub struct Policy {
    pub destination: Destination,
    pub credentials: Credentials,
    /// The header carrying idempotency keys on POST, if the provider has one.
    pub idempotency_header: Option<HeaderName>,
}

impl Policy {
    /// The policy for `info` with the operator's `settings`, sending to
    /// `base_url` or, when none is given, to the plugin's default (only if
    /// that is https or loopback, and said in the log first).
    pub fn new(
        info: &wit::ProviderInfo,
        settings: &Settings,
        base_url: Option<&str>,
        max_body: usize,
    ) -> Result<Policy, String> {
        let credentials = Credentials::new(info, settings)?;
        let base_url = match base_url {
            Some(url) => url,
            None => {
                check_default_base_url(&info.default_base_url, &info.name)?;
                // The plugin chose this destination, and the credentials go
                // there: say so before anything is sent.
                tracing::warn!(
                    "no --base-url: `{}` requests{} go to the plugin's default {}",
                    info.name,
                    match &credentials.configured {
                        Some(_) => " (with the configured credentials)",
                        None => "",
                    },
                    info.default_base_url
                );
                &info.default_base_url
            }
        };
        tracing::info!(provider = %info.name, "requests go to {base_url}");
        let destination = Destination::for_provider(info, base_url, max_body)?;
        let idempotency_header = info
            .retry
            .idempotency_header
            .as_deref()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    format!(
                        "plugin `{}`: invalid idempotency header `{name}`",
                        info.name
                    )
                })
            })
            .transpose()?;
        Ok(Policy {
            destination,
            credentials,
            idempotency_header,
        })
    }
}

/// The credentials one request carries: a header, ready to attach. Its value
/// is marked sensitive, so reqwest and `Debug` never print it.
#[derive(Clone)]
pub struct AuthHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl std::fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthHeader({}: <redacted>)", self.name)
    }
}

/// How requests authenticate: the plugin's scheme over the operator's
/// secrets. The header is computed once for the configured secrets; a
/// script that passes its own primary secret gets one computed for it.
#[derive(Debug, Clone)]
pub struct Credentials {
    scheme: wit::AuthScheme,
    /// Every configured secret and non-secret setting value the scheme uses.
    values: Vec<(String, Secret)>,
    /// The header for the configured values; none when the scheme is `none`
    /// or a secret it needs is missing. Shared by the requests that carry it.
    configured: Option<Arc<AuthHeader>>,
    /// Recognises every configured secret in responses.
    redactor: Redactor,
    /// The scheme's primary secret and where the operator gives it.
    primary: Option<(String, String)>,
}

/// A request that needs a secret nobody gave.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no `{setting}` secret: pass it as the third argument of *_async, or set {source_name}")]
pub struct MissingSecret {
    pub setting: String,
    pub source_name: String,
}

impl Credentials {
    pub fn new(info: &wit::ProviderInfo, settings: &Settings) -> Result<Credentials, String> {
        let names: Vec<&str> = match &info.auth {
            wit::AuthScheme::None => Vec::new(),
            wit::AuthScheme::Basic(b) => std::iter::once(b.user.as_str())
                .chain(b.password.as_deref())
                .collect(),
            wit::AuthScheme::Bearer(s) => vec![s],
            wit::AuthScheme::Header(h) => vec![&h.secret],
        };
        let values: Vec<(String, Secret)> = names
            .iter()
            .filter_map(|name| {
                settings
                    .secret(name)
                    .cloned()
                    .or_else(|| settings.public(name).map(Secret::new))
                    .map(|value| (name.to_string(), value))
            })
            .collect();
        for (name, value) in &values {
            crate::http::check_secret(value).map_err(|why| format!("setting `{name}`: {why}"))?;
        }
        let primary = primary_secret(&info.auth)
            .map(|name| (name.to_string(), settings.secret_source(name).to_string()));
        let mut credentials = Credentials {
            scheme: info.auth.clone(),
            redactor: Redactor::new(settings.secrets.iter().map(|(_, s)| s)),
            values,
            configured: None,
            primary,
        };
        // A missing secret is not an error yet: a script may pass one.
        credentials.configured = credentials.header(None).unwrap_or_default().map(Arc::new);
        Ok(credentials)
    }

    /// Whether requests carry credentials at all.
    pub fn needed(&self) -> bool {
        !matches!(self.scheme, wit::AuthScheme::None)
    }

    /// Recognises the configured secrets in responses.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The header for the configured secrets, or why there is none.
    pub fn configured(&self) -> Result<Option<Arc<AuthHeader>>, MissingSecret> {
        match (&self.configured, self.needed()) {
            (Some(header), _) => Ok(Some(header.clone())),
            (None, false) => Ok(None),
            (None, true) => Err(self.missing()),
        }
    }

    fn missing(&self) -> MissingSecret {
        let (setting, source_name) = self
            .primary
            .clone()
            .unwrap_or_else(|| ("secret".into(), "the settings".into()));
        MissingSecret {
            setting,
            source_name,
        }
    }

    /// The header with `primary` in place of the configured primary secret
    /// (a script's per-call secret), or the configured one for `None`.
    pub fn header(&self, primary: Option<&Secret>) -> Result<Option<AuthHeader>, MissingSecret> {
        let value = |name: &str| -> Result<&str, MissingSecret> {
            if let (Some(p), Some((primary_name, _))) = (primary, &self.primary)
                && primary_name == name
            {
                return Ok(p.expose());
            }
            self.values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.expose())
                .ok_or_else(|| MissingSecret {
                    setting: name.to_string(),
                    source_name: self
                        .primary
                        .as_ref()
                        .filter(|(p, _)| p == name)
                        .map_or_else(|| format!("the `{name}` setting"), |(_, s)| s.clone()),
                })
        };
        let (name, text) = match &self.scheme {
            wit::AuthScheme::None => return Ok(None),
            wit::AuthScheme::Basic(basic) => {
                use base64::Engine as _;
                let user = value(&basic.user)?;
                let password = match &basic.password {
                    Some(p) => value(p)?,
                    None => "",
                };
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                (reqwest::header::AUTHORIZATION, format!("Basic {encoded}"))
            }
            wit::AuthScheme::Bearer(secret) => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", value(secret)?),
            ),
            wit::AuthScheme::Header(header) => (
                HeaderName::from_bytes(header.name.as_bytes()).expect("checked at load"),
                value(&header.secret)?.to_string(),
            ),
        };
        // Every value was checked to be header-safe where it came in
        // (`check_secret`: settings in `Credentials::new`, a script's secret
        // at its call).
        let mut value = HeaderValue::from_str(&text).expect("credentials are checked");
        value.set_sensitive(true);
        Ok(Some(AuthHeader { name, value }))
    }
}

/// Whether `name` can carry credentials for an `auth-scheme::header`: a
/// valid header name that the host does not own for something else.
pub fn check_auth_header(name: &str, plugin: &str) -> Result<(), String> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!(
            "plugin `{plugin}` declares its credentials go in header `{name}`, which is not a valid header name"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if HOST_OWNED.contains(&lower.as_str()) && lower != "authorization" {
        return Err(format!(
            "plugin `{plugin}` declares its credentials go in header `{name}`, which the host owns"
        ));
    }
    Ok(())
}

/// Whether a plugin's own default base URL may be used when the operator
/// gives none. The plugin, not the operator, chose it, and the secret goes
/// there: so it must be `https`, or plain `http` to a loopback address (a
/// local test server). Anything else needs an explicit `--base-url`.
pub fn check_default_base_url(url: &str, plugin: &str) -> Result<(), String> {
    let parsed = Url::parse(url)
        .map_err(|e| format!("plugin `{plugin}` names an invalid default base URL `{url}`: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "plugin `{plugin}` wants requests (and its secret) sent to `{url}`, which is not \
             https; choose the destination yourself with --base-url"
        )),
    }
}

fn method(m: wit::HttpMethod) -> reqwest::Method {
    match m {
        wit::HttpMethod::Get => reqwest::Method::GET,
        wit::HttpMethod::Post => reqwest::Method::POST,
        wit::HttpMethod::Put => reqwest::Method::PUT,
        wit::HttpMethod::Patch => reqwest::Method::PATCH,
        wit::HttpMethod::Delete => reqwest::Method::DELETE,
    }
}

/// RFC 3986 `pchar` plus `/`, with `%` for percent-encoding.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
                | '/'
                | '%'
        )
}

/// RFC 3986 query characters, plus `[` and `]`: reserved by RFC 3986, but
/// form encodings commonly leave them literal in nested keys (`a[b]=c`) and
/// servers accept them; they cannot change the destination.
fn is_query_char(c: char) -> bool {
    is_path_char(c) || c == '?' || c == '[' || c == ']'
}

/// At most 120 bytes of `s` (cut on a character boundary), for messages.
pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 120 {
        s.to_string()
    } else {
        let cut = (0..=120)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}…", &s[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, query: &str) -> wit::HttpRequest {
        wit::HttpRequest {
            method: wit::HttpMethod::Post,
            path: path.into(),
            query: query.into(),
            headers: vec![],
            content_type: None,
            body: vec![],
        }
    }

    fn dest() -> Destination {
        Destination::new(
            "http://127.0.0.1:4242",
            "test",
            Some("Idempotency-Key"),
            1024,
        )
        .unwrap()
    }

    #[test]
    fn path_characters_are_rfc_3986_pchar_slash_and_percent() {
        let listed = "-._~!$&'()*+,;=:@/%";
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['é', '\u{2044}', '\u{ff0f}', '\u{ff05}'])
        {
            let expected = c.is_ascii_alphanumeric() || listed.contains(c);
            assert_eq!(is_path_char(c), expected, "{c:?}");
        }
    }

    #[test]
    fn joins_path_and_query_under_the_base() {
        let checked = dest()
            .check(&request("/v1/customers", "limit=3&expand[0]=x"))
            .unwrap();
        assert_eq!(
            checked.url.as_str(),
            "http://127.0.0.1:4242/v1/customers?limit=3&expand[0]=x"
        );
        let prefixed = Destination::new("https://api.example.com/stripe/", "t", None, 10).unwrap();
        let checked = prefixed.check(&request("/v1/x", "")).unwrap();
        assert_eq!(checked.url.as_str(), "https://api.example.com/stripe/v1/x");
    }

    #[test]
    fn refuses_every_way_out_of_the_base_url() {
        for path in [
            "https://evil.example.com/steal",
            "//evil.example.com/x",
            "/../../x",
            "/v1/%2e%2e/x",
            "/v1/x?y=1",
            "/v1/x#frag",
            "/v1\\..\\x",
            "v1/x",
            "",
            "/v1/x y",
            "/v1/..;/x",
            "/v1/.;a/x",
            "/v1/%2e%2e/x",
            "/v1/%2E./x",
            "/v1/%252e%252e/x",
            "/v1/a%2fb",
            "/v1/..%2Fx",
            "/v1/a%5c..%5cx",
            "/v1/%25%32%65",
            "/v1/%%32%65%%32%65/x",
            "/v1/%%35c..%%35cx",
            "/v1/100%",
        ] {
            assert!(
                dest().check(&request(path, "")).is_err(),
                "{path} was accepted"
            );
        }
        assert!(dest().check(&request("/v1/x", "a=1#b")).is_err());
    }

    #[test]
    fn the_auth_header_is_host_owned_and_must_be_valid() {
        let d = dest().with_auth_header("X-API-Key").unwrap();
        let mut r = request("/v1/x", "");
        r.headers = vec![("x-api-key".into(), "mine".into())];
        assert!(d.check(&r).unwrap_err().reason.contains("host owns"));
        // Without the auth scheme naming it, it is an ordinary header.
        assert!(dest().check(&r).is_ok());
        for bad in ["X API Key", "", "x-key\n", "Host", "Content-Length"] {
            let err = dest().with_auth_header(bad).unwrap_err();
            assert!(err.contains("plugin `test`") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn a_plugins_default_base_url_must_be_https_or_loopback() {
        assert!(check_default_base_url("https://api.stripe.com", "p").is_ok());
        assert!(check_default_base_url("http://127.0.0.1:9", "p").is_ok());
        assert!(check_default_base_url("http://[::1]:9/x", "p").is_ok());
        assert!(check_default_base_url("http://localhost:4242", "p").is_ok());
        let err = check_default_base_url("http://collector.example.com", "p").unwrap_err();
        assert!(err.contains("--base-url"), "{err}");
        assert!(check_default_base_url("http://127.0.0.1.example.com", "p").is_err());
        assert!(check_default_base_url("ftp://x", "p").is_err());
    }

    #[test]
    fn refuses_host_owned_headers_and_oversized_bodies() {
        let mut r = request("/v1/x", "");
        r.headers = vec![("Authorization".into(), "Bearer x".into())];
        assert!(
            dest()
                .check(&r)
                .unwrap_err()
                .reason
                .contains("Authorization")
        );
        r.headers = vec![("idempotency-key".into(), "k".into())];
        assert!(dest().check(&r).is_err());
        let mut r = request("/v1/x", "");
        r.body = vec![b'a'; 1025];
        assert!(dest().check(&r).unwrap_err().reason.contains("1025 bytes"));
    }
}
