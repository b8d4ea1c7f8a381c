//! One delivery of one event: a webhook POST with retries and backoff, or a command run
//! with the event on stdin. Both bounded by the per-delivery timeout.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::NotifyConfig;
use crate::error::WkError;

/// The longest pause between two webhook attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A webhook URL; its `Debug` shows only the redacted form.
pub(super) struct WebhookUrl {
    url: reqwest::Url,
    raw: String,
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", redact_url(&self.raw))
    }
}

impl WebhookUrl {
    /// Removes every secret part of the URL (the whole URL, userinfo, path, query) from
    /// `text`, which may be an error message of the HTTP stack.
    fn scrub(&self, text: &str) -> String {
        let mut s = text.replace(&self.raw, &redact_url(&self.raw));
        s = s.replace(self.url.as_str(), &redact_url(&self.raw));
        let mut secrets: Vec<&str> = Vec::new();
        if self.url.path().len() > 1 {
            secrets.push(self.url.path());
        }
        secrets.extend(self.url.query());
        secrets.extend(self.url.password());
        if !self.url.username().is_empty() {
            secrets.push(self.url.username());
        }
        for secret in secrets {
            s = s.replace(secret, "…");
        }
        s
    }
}

#[derive(Debug)]
pub(super) enum Sink {
    Webhook(WebhookUrl),
    Command(String),
}

impl Sink {
    /// A webhook target; `origin` names where the URL came from, for the error.
    pub(super) fn webhook(raw: &str, origin: &str) -> Result<Sink, WkError> {
        let parsed = reqwest::Url::parse(raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        match parsed {
            Some(url) => Ok(Sink::Webhook(WebhookUrl {
                url,
                raw: raw.to_string(),
            })),
            None => Err(WkError::input(
                format!(
                    "the webhook URL from {origin} is not a valid http(s) URL (not shown: it may hold a secret)"
                ),
                "give the full URL, e.g. `https://hooks.slack.com/services/…`",
            )),
        }
    }

    /// How the target is shown: `webhook https://host/…` or `command <cmd>`.
    pub(super) fn describe(&self) -> String {
        match self {
            Sink::Webhook(w) => format!("webhook {}", redact_url(&w.raw)),
            Sink::Command(c) => format!("command `{c}`"),
        }
    }
}

/// `scheme://host[:port]/…`: a URL without its user, path and query, which is where
/// webhook secrets live (Slack, Teams, Discord put them in the path). Unparsable input
/// becomes `<webhook URL>`.
pub fn redact_url(raw: &str) -> String {
    let Ok(url) = reqwest::Url::parse(raw.trim()) else {
        return "<webhook URL>".to_string();
    };
    let Some(host) = url.host_str() else {
        return "<webhook URL>".to_string();
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let rest = if url.path().len() > 1 || url.query().is_some() {
        "…"
    } else {
        ""
    };
    format!("{}://{host}{port}/{rest}", url.scheme())
}

/// A sink with its client and bounds.
pub(super) struct Delivery {
    sink: Sink,
    client: reqwest::Client,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    dir: PathBuf,
}

impl Delivery {
    pub(super) fn new(sink: Sink, config: &NotifyConfig, dir: PathBuf) -> Result<Self, WkError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("wkctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                WkError::no(
                    format!(
                        "cannot build the notification HTTP client: {}",
                        e.without_url()
                    ),
                    "check the system's TLS roots",
                )
            })?;
        Ok(Delivery {
            sink,
            client,
            timeout: config.timeout,
            retries: config.retries,
            backoff: config.backoff,
            dir,
        })
    }

    /// Delivers one event; on failure, the attempts made and the last error.
    pub(super) async fn deliver(&self, body: &Value) -> Result<(), (u32, String)> {
        match &self.sink {
            Sink::Webhook(url) => self.post(url, body).await,
            Sink::Command(cmd) => self.command(cmd, body).await.map_err(|e| (1, e)),
        }
    }

    async fn post(&self, url: &WebhookUrl, body: &Value) -> Result<(), (u32, String)> {
        let bytes = serde_json::to_vec(body).map_err(|e| (0, e.to_string()))?;
        let mut last = String::new();
        let mut pause = self.backoff;
        for attempt in 1..=self.retries.saturating_add(1) {
            let request = self
                .client
                .post(url.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone())
                .send();
            // The client's timeout covers the request; this one also bounds a body that
            // never ends.
            let outcome = tokio::time::timeout(self.timeout, async {
                let resp = request.await?;
                let status = resp.status();
                let _ = resp.bytes().await;
                Ok::<_, reqwest::Error>(status)
            })
            .await;
            let retry = match outcome {
                Ok(Ok(status)) if status.is_success() => return Ok(()),
                Ok(Ok(status)) => {
                    last = format!("HTTP {status}");
                    status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT
                }
                Ok(Err(e)) => {
                    last = url.scrub(&error_chain(&e.without_url()));
                    true
                }
                Err(_) => {
                    last = format!("no answer within {}s", self.timeout.as_secs_f64());
                    true
                }
            };
            if !retry {
                return Err((attempt, last));
            }
            if attempt <= self.retries {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
        Err((self.retries.saturating_add(1), last))
    }

    async fn command(&self, cmd: &str, body: &Value) -> Result<(), String> {
        let mut bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&self.dir)
            .env("WKCTL_EVENT", body["type"].as_str().unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run `sh -c`: {e}"))?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let run = async move {
            if let Some(si) = stdin.as_mut() {
                // A command that ignores stdin closes it early: not an error.
                let _ = si.write_all(&bytes).await;
            }
            drop(stdin);
            child.wait_with_output().await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().rev().find(|l| !l.trim().is_empty());
                let code = out
                    .status
                    .code()
                    .map_or_else(|| "a signal".to_string(), |c| c.to_string());
                Err(match last {
                    Some(l) => format!("exit {code}: {}", l.trim()),
                    None => format!("exit {code}"),
                })
            }
            Ok(Err(e)) => Err(format!("waiting for the command: {e}")),
            Err(_) => {
                kill_group(pid);
                Err(format!(
                    "did not finish within {}s (killed)",
                    self.timeout.as_secs_f64()
                ))
            }
        }
    }
}

/// Kills the command's process group (the shell and whatever it started).
fn kill_group(pid: Option<u32>) {
    if let Some(raw) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(raw),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let more = src.to_string();
        if !s.contains(&more) {
            s.push_str(": ");
            s.push_str(&more);
        }
        cur = src.source();
    }
    s
}
