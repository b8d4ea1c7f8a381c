//! The HTTP client for the node API: timeouts, the `token` header, size-capped bodies,
//! and one named outcome per way a request can go wrong.
//!
//! The managerToken (facts §2.1: header `token`, checked on every 5001 request including
//! `/health`) is sent on every request and never appears in an error or `Debug` output.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;

use super::models::{
    ApiErrorBody, ClusterInfo, ClusterLogs, Health, HealthBody, NodeConfig, NodeList, Varz,
};
use crate::error::WkError;
use crate::manifest::Manifest;

/// Largest body read from a node; more is `BadBody` (DESIGN §6: bodies are size-capped).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why a request gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// HTTP 401: managerToken missing or wrong (facts §2.1).
    #[error("HTTP 401: the managerToken is missing or wrong")]
    Unauthorized,
    /// HTTP 400 `{"msg":...,"status":n}` (facts §2.4); `status` is the body's code (403 =
    /// permission denied is reported inside a 400), or the HTTP status for other 4xx.
    #[error("API error {status}: {msg}")]
    ApiError { status: u16, msg: String },
    /// HTTP 5xx (a handler panic is a 500 with an empty body).
    #[error("HTTP {0}: server error")]
    ServerError(u16),
    /// Nothing listens on the port.
    #[error("connection refused")]
    Refused,
    /// No (complete) answer within `api.timeout`.
    #[error("no answer within the timeout")]
    Timeout,
    /// An answer that cannot be used: unparsable, too large, invalid UTF-8.
    #[error("unusable answer: {0}")]
    BadBody(String),
    /// Any other transport failure (DNS, reset, TLS...).
    #[error("network error: {0}")]
    Network(String),
    /// HTTP 404: this version does not serve the endpoint (no `/varz` in v2.0.1–v2.0.5).
    #[error("HTTP 404: this node does not serve the endpoint")]
    NotFound,
    /// Not asked in this poll (a focused gate poll asks other nodes only for `/health`).
    #[error("not asked in this poll")]
    Skipped,
}

impl ProbeError {
    /// The controller is unknown to the asked node (`/cluster/info` 400, facts §3.6).
    pub fn is_leader_not_found(&self) -> bool {
        matches!(self, ProbeError::ApiError { msg, .. } if msg.contains("leader not found"))
    }

    /// The API port did not answer at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ProbeError::Refused | ProbeError::Timeout | ProbeError::Network(_)
        )
    }

    /// A short stable name, for JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Unauthorized => "unauthorized",
            ProbeError::ApiError { .. } => "api_error",
            ProbeError::ServerError(_) => "server_error",
            ProbeError::Refused => "refused",
            ProbeError::Timeout => "timeout",
            ProbeError::BadBody(_) => "bad_body",
            ProbeError::Network(_) => "network",
            ProbeError::NotFound => "not_found",
            ProbeError::Skipped => "skipped",
        }
    }
}

impl serde::Serialize for ProbeError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ProbeError", 2)?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("reason", &self.to_string())?;
        st.end()
    }
}

/// An async client for every node of one cluster. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    token: Option<HeaderValue>,
    timeout: Duration,
    /// The token and any other secret in scope (the webhook URL), scrubbed from every
    /// answer a node gives ([`crate::scrub`]).
    secrets: std::sync::Arc<Vec<String>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Built from the manifest: `api.timeout`, and the token from `api.token_env`.
    pub fn from_manifest(manifest: &Manifest) -> Result<Client, WkError> {
        // Keep-alive pays off when the same few nodes are polled every interval (the
        // gate); for a large cluster probed once, idle connections only cost memory.
        let keep_alive = manifest.nodes.len() <= super::ASK_EVERY_NODE_UP_TO;
        let webhook = match manifest.notify.as_ref().and_then(|n| n.target.as_ref()) {
            Some(crate::notify::NotifyTarget::UrlEnv(var)) => std::env::var(var).ok(),
            _ => None,
        };
        Client::build(manifest.api.timeout, manifest.token(), keep_alive)
            .map(|c| c.with_secrets(webhook))
            .map_err(|reason| {
                let var = manifest
                    .api
                    .token_env
                    .as_deref()
                    .unwrap_or("the token variable");
                WkError::input(
                    format!("cannot use the managerToken from `{var}`: {reason}"),
                    "the token must be printable ASCII without line breaks",
                )
            })
    }

    /// A client with an explicit timeout and token. The error never contains the token.
    pub fn new(timeout: Duration, token: Option<String>) -> Result<Client, String> {
        Client::build(timeout, token, true)
    }

    fn build(timeout: Duration, token: Option<String>, keep_alive: bool) -> Result<Client, String> {
        let token = match token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&t)
                    .map_err(|_| "it is not a valid HTTP header value".to_string())?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(if keep_alive { usize::MAX } else { 0 })
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", innermost(&e)))?;
        let secrets: Vec<String> = token
            .as_ref()
            .and_then(|t| t.to_str().ok())
            .map(str::to_string)
            .into_iter()
            .collect();
        crate::scrub::remember(&secrets);
        Ok(Client {
            http,
            token,
            timeout,
            secrets: std::sync::Arc::new(secrets),
        })
    }

    /// Also scrubs these secrets (and the webhook URL's path, its secret part) from what
    /// nodes answer.
    #[must_use]
    pub fn with_secrets(mut self, extra: impl IntoIterator<Item = String>) -> Client {
        let mut all = (*self.secrets).clone();
        for s in extra.into_iter().map(|s| s.trim().to_string()) {
            if let Ok(u) = reqwest::Url::parse(&s)
                && u.path().len() > 1
            {
                all.push(u.path().to_string());
            }
            all.push(s);
        }
        all.retain(|s| !s.is_empty());
        crate::scrub::remember(&all);
        self.secrets = std::sync::Arc::new(all);
        self
    }

    /// `text` (node-supplied) without any secret wkctl knows ([`crate::scrub::scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        crate::scrub::scrub(text, &self.secrets)
    }

    /// A node's answer without the secrets: a JSON body has its strings scrubbed (its
    /// numbers stay intact), any other body its text.
    fn scrub_body(&self, body: Vec<u8>) -> Vec<u8> {
        if self.secrets.is_empty() {
            return body;
        }
        let text = String::from_utf8_lossy(&body);
        if !crate::scrub::holds_secret(&text, &self.secrets) {
            return body;
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(mut v) => {
                crate::scrub::scrub_json(&mut v, &self.secrets);
                v.to_string().into_bytes()
            }
            Err(_) => self.scrub(&text).into_bytes(),
        }
    }

    /// An error without the secrets (a reqwest error may quote what the node sent).
    fn scrub_error(&self, e: ProbeError) -> ProbeError {
        match e {
            ProbeError::ApiError { status, msg } => ProbeError::ApiError {
                status,
                msg: self.scrub(&msg),
            },
            ProbeError::BadBody(m) => ProbeError::BadBody(self.scrub(&m)),
            ProbeError::Network(m) => ProbeError::Network(self.scrub(&m)),
            e => e,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET path` on the node at `base` (`http://host:5001`): status and capped body.
    pub async fn get_raw(&self, base: &str, path: &str) -> Result<(u16, Vec<u8>), ProbeError> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        // The outer deadline also covers slow bodies (reqwest's timeout is per request too).
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.fetch(&url)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout),
        };
        // The token is a header, never part of the URL, so this line cannot leak it.
        let ms = started.elapsed().as_millis();
        match &result {
            Ok((status, body)) => {
                tracing::debug!(%url, status, bytes = body.len(), ms, "GET");
            }
            Err(e) => tracing::debug!(%url, error = e.kind(), ms, "GET failed"),
        }
        result
    }

    /// `POST path` with a JSON body (the smoke test's `/message/send` and
    /// `/channel/messagesync`): status and capped body. The token is a header, as for GET.
    pub async fn post_raw(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(u16, Vec<u8>), ProbeError> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let req = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let result = match tokio::time::timeout(self.timeout, self.send(req)).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout),
        };
        match &result {
            Ok((status, body)) => tracing::debug!(%url, status, bytes = body.len(), "POST"),
            Err(e) => tracing::debug!(%url, error = e.kind(), "POST failed"),
        }
        result
    }

    async fn fetch(&self, url: &str) -> Result<(u16, Vec<u8>), ProbeError> {
        self.send(self.http.get(url)).await
    }

    /// Every answer of a node enters wkctl here, and leaves it without the secrets.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), ProbeError> {
        self.send_unscrubbed(req)
            .await
            .map(|(status, body)| (status, self.scrub_body(body)))
            .map_err(|e| self.scrub_error(e))
    }

    async fn send_unscrubbed(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ProbeError> {
        let mut req = req;
        if let Some(t) = &self.token {
            req = req.header("token", t.clone());
        }
        let mut resp = req.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    /// `GET path` and decode a 200 answer as `T`; every other status is a [`ProbeError`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
    ) -> Result<T, ProbeError> {
        let (status, body) = self.get_raw(base, path).await?;
        match status {
            200 => decode(&body),
            _ => Err(status_error(status, &body)),
        }
    }

    /// `/health`: a 500 with a JSON body is a valid answer (health failing), not an error.
    pub async fn health(&self, base: &str) -> Result<Health, ProbeError> {
        let (status, body) = self.get_raw(base, "/health").await?;
        match status {
            200 | 500 => match decode::<HealthBody>(&body) {
                Ok(h) => {
                    let ok = status == 200 && h.status == "ok";
                    let message = Some(h.message).filter(|m| !m.is_empty());
                    let message =
                        message.or_else(|| (!ok).then(|| format!("status `{}`", h.status)));
                    Ok(Health { ok, message })
                }
                Err(_) if status == 500 => Err(ProbeError::ServerError(500)),
                Err(e) => Err(e),
            },
            _ => Err(status_error(status, &body)),
        }
    }

    pub async fn varz(&self, base: &str) -> Result<Varz, ProbeError> {
        self.get_json(base, "/varz").await
    }

    /// `/cluster/node`: this node as it sees itself.
    pub async fn node(&self, base: &str) -> Result<NodeConfig, ProbeError> {
        self.get_json(base, "/cluster/node").await
    }

    /// `/cluster/simpleNodes`: membership from the node's local config, no fan-out.
    pub async fn simple_nodes(&self, base: &str) -> Result<NodeList, ProbeError> {
        self.get_json(base, "/cluster/simpleNodes").await
    }

    /// `/cluster/nodes`: fans out to every online peer and fails while one is down
    /// (facts §3.4). For one-shot summaries only; never poll it.
    pub async fn nodes(&self, base: &str) -> Result<NodeList, ProbeError> {
        self.get_json(base, "/cluster/nodes").await
    }

    /// `/cluster/info`: the controller's config, forwarded by the asked node.
    pub async fn cluster_info(&self, base: &str) -> Result<ClusterInfo, ProbeError> {
        self.get_json(base, "/cluster/info").await
    }

    /// `/cluster/logs?node_id=X&log_type=1&limit=1`: config-raft applied/last of node X.
    pub async fn cluster_logs(&self, base: &str, node_id: u64) -> Result<ClusterLogs, ProbeError> {
        self.get_json(
            base,
            &format!("/cluster/logs?node_id={node_id}&log_type=1&limit=1"),
        )
        .await
    }
}

fn too_large() -> ProbeError {
    ProbeError::BadBody(format!(
        "the body is larger than {} MiB",
        MAX_BODY_BYTES / (1024 * 1024)
    ))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProbeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ProbeError::BadBody("the body is not valid UTF-8".into()))?;
    serde_json::from_str(text)
        .map_err(|e| ProbeError::BadBody(format!("not the expected JSON ({e})")))
}

fn status_error(status: u16, body: &[u8]) -> ProbeError {
    match status {
        401 => ProbeError::Unauthorized,
        404 => ProbeError::NotFound,
        500..=599 => ProbeError::ServerError(status),
        _ => {
            let parsed: Option<ApiErrorBody> = std::str::from_utf8(body)
                .ok()
                .and_then(|t| serde_json::from_str(t).ok());
            match parsed {
                Some(b) if !b.msg.is_empty() => {
                    let code = b
                        .status
                        .and_then(|s| u16::try_from(s).ok())
                        .filter(|s| *s >= 100)
                        .unwrap_or(status);
                    ProbeError::ApiError {
                        status: code,
                        msg: clip(&b.msg),
                    }
                }
                _ => ProbeError::ApiError {
                    status,
                    msg: clip(&String::from_utf8_lossy(body)),
                },
            }
        }
    }
}

/// Keeps error messages one short line.
fn clip(s: &str) -> String {
    let line = s.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    }
}

fn classify(e: &reqwest::Error) -> ProbeError {
    if e.is_timeout() {
        return ProbeError::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ProbeError::Refused,
                std::io::ErrorKind::TimedOut => return ProbeError::Timeout,
                _ => {}
            }
        }
        src = s.source();
    }
    if e.is_decode() || e.is_body() {
        return ProbeError::BadBody(clip(&innermost(e)));
    }
    ProbeError::Network(clip(&innermost(e)))
}

/// The deepest cause's text: the short, specific part of a reqwest error chain.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

#[cfg(test)]
mod tests;
