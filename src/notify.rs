//! Notifications (issue 19.4): run events sent to a webhook or a command, on a background
//! task, so a slow, failing or absent endpoint never blocks or fails the run.
//!
//! - `notify:` in the manifest names either `url_env` (the environment variable holding the
//!   webhook URL, whose path usually *is* the secret, as with Slack's incoming webhooks) or
//!   `command` (run with `sh -c`, the event JSON on stdin, in the manifest's directory).
//! - `--notify URL|CMD` overrides the target: a value starting with `http://` or `https://` is
//!   a webhook, anything else a command.
//! - A webhook gets the event JSON (`{"type":..,"data":{..}}`) plus `cluster` and a
//!   Slack-compatible `text`; failed attempts (connection errors, timeouts, 408, 429, 5xx) are
//!   retried with exponential backoff. A command is not retried (it may not be idempotent).
//! - Events go through a bounded queue to one worker, so they arrive in order. When the queue
//!   is full an event is dropped and counted. [`Notifier::finish`] waits a bounded time and
//!   returns a [`NotifyReport`] of what failed, for the run's summary.
//! - The webhook URL is never printed: every message shows [`redact_url`]'s form of it.

mod deliver;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::WkError;
use crate::{events::Event, output::plain::plain_line};

pub use deliver::redact_url;
use deliver::{Delivery, Sink};

/// Every event type a run emits (`type` in the JSON of [`Event`]).
pub const EVENT_TYPES: &[&str] = &[
    "run_started",
    "check_finished",
    "node_started",
    "node_skipped",
    "step_started",
    "step_finished",
    "gate_signal",
    "node_ready",
    "soak_finished",
    "node_failed",
    "rollback_finished",
    "waiting",
    "interrupted",
    "warning",
    "smoke_finished",
    "summary",
];

/// The events sent when `notify.events` is not given.
pub const DEFAULT_EVENTS: &[&str] = &[
    "run_started",
    "node_ready",
    "node_failed",
    "soak_finished",
    "summary",
];

/// Events queued and not yet delivered before `send` starts dropping.
pub const QUEUE_CAPACITY: usize = 256;

/// Where events go, as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyTarget {
    /// The webhook URL is in this environment variable (never in the file).
    UrlEnv(String),
    /// A shell command, given the event JSON on stdin.
    Command(String),
}

/// `notify:` of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifyConfig {
    /// `None` when only `--notify` gives the target (the section then only picks events).
    pub target: Option<NotifyTarget>,
    /// Event types to send (see [`EVENT_TYPES`]).
    pub events: BTreeSet<String>,
    /// Bound of one delivery attempt (HTTP request or command run).
    #[serde(with = "crate::notify::secs")]
    pub timeout: Duration,
    /// Webhook attempts after the first one.
    pub retries: u32,
    /// First backoff between webhook attempts; doubles each time, capped at 8s.
    #[serde(with = "crate::notify::secs")]
    pub backoff: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            target: None,
            events: DEFAULT_EVENTS.iter().map(|s| (*s).to_string()).collect(),
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Checks `events:` names; `all` selects every event type.
pub fn parse_events<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<String>, String> {
    let mut set = BTreeSet::new();
    for name in names {
        let name = name.trim();
        if name == "all" {
            set.extend(EVENT_TYPES.iter().map(|s| (*s).to_string()));
        } else if EVENT_TYPES.contains(&name) {
            set.insert(name.to_string());
        } else {
            return Err(format!("unknown event `{name}`"));
        }
    }
    Ok(set)
}

/// One delivery that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    /// The event's `type`.
    pub event: String,
    /// Attempts made (0 when the event was dropped before any).
    pub attempts: u32,
    /// Why the last attempt failed; never contains the webhook URL's secret.
    pub error: String,
}

/// What happened to the notifications of a run (for the summary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotifyReport {
    /// `webhook https://host/…` or `command <cmd>`.
    pub target: String,
    pub sent: usize,
    pub failed: Vec<FailedDelivery>,
}

impl NotifyReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// One line per failure, for the human summary.
    pub fn lines(&self) -> Vec<String> {
        self.failed
            .iter()
            .map(|f| {
                format!(
                    "notification `{}` to {} failed after {} attempt(s): {}",
                    f.event, self.target, f.attempts, f.error
                )
            })
            .collect()
    }
}

/// The state the worker and `send` share, so `finish` can report after an abort.
#[derive(Debug, Default)]
struct Shared {
    sent: usize,
    failed: Vec<FailedDelivery>,
    /// Types of the events queued and not yet finished, oldest first.
    pending: Vec<String>,
}

/// Sends run events in the background; see the module doc.
pub struct Notifier {
    tx: mpsc::Sender<Value>,
    worker: tokio::task::JoinHandle<()>,
    shared: Arc<Mutex<Shared>>,
    events: BTreeSet<String>,
    target: String,
    cluster: String,
    /// How long `finish` waits for queued deliveries.
    pub finish_timeout: Duration,
}

impl Notifier {
    /// The notifier of a run: `--notify` (`flag`) wins over `notify:` (`config`); `None` when
    /// neither names a target. `dir` is where a command runs (the manifest's directory).
    ///
    /// Must be called inside a tokio runtime. Errors (an unset `url_env`, an invalid URL)
    /// never contain the URL's secret.
    pub fn from_manifest(
        cluster: &str,
        config: Option<&NotifyConfig>,
        flag: Option<&str>,
        dir: &Path,
    ) -> Result<Option<Notifier>, WkError> {
        let config = config.cloned().unwrap_or_default();
        let sink = match (
            flag.map(str::trim).filter(|f| !f.is_empty()),
            &config.target,
        ) {
            (Some(f), _) if f.starts_with("http://") || f.starts_with("https://") => {
                Sink::webhook(f, "--notify")?
            }
            (Some(f), _) => Sink::Command(f.to_string()),
            (None, Some(NotifyTarget::UrlEnv(var))) => {
                let url = std::env::var(var).ok().filter(|u| !u.trim().is_empty());
                let Some(url) = url else {
                    return Err(WkError::input(
                        format!("`notify.url_env` names `{var}`, which is not set"),
                        format!(
                            "export {var}=<webhook URL> (or remove `notify:` from the manifest)"
                        ),
                    ));
                };
                Sink::webhook(url.trim(), &format!("`{var}`"))?
            }
            (None, Some(NotifyTarget::Command(c))) => Sink::Command(c.clone()),
            (None, None) => return Ok(None),
        };
        Notifier::start(cluster, sink, &config, dir.to_path_buf()).map(Some)
    }

    fn start(
        cluster: &str,
        sink: Sink,
        config: &NotifyConfig,
        dir: PathBuf,
    ) -> Result<Notifier, WkError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            WkError::no(
                "notifications need the async runtime",
                "internal error: create the notifier inside the runtime",
            )
        })?;
        let target = sink.describe();
        let delivery = Delivery::new(sink, config, dir)?;
        let (tx, mut rx) = mpsc::channel::<Value>(QUEUE_CAPACITY);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let worker_shared = Arc::clone(&shared);
        let worker = handle.spawn(async move {
            while let Some(body) = rx.recv().await {
                let kind = body["type"].as_str().unwrap_or("event").to_string();
                let result = delivery.deliver(&body).await;
                let mut s = worker_shared.lock().unwrap_or_else(PoisonError::into_inner);
                if !s.pending.is_empty() {
                    s.pending.remove(0);
                }
                match result {
                    Ok(()) => s.sent += 1,
                    Err((attempts, error)) => s.failed.push(FailedDelivery {
                        event: kind,
                        attempts,
                        error,
                    }),
                }
            }
        });
        Ok(Notifier {
            tx,
            worker,
            shared,
            events: config.events.clone(),
            target,
            cluster: cluster.to_string(),
            finish_timeout: (config.timeout * 2).max(Duration::from_secs(5)),
        })
    }

    /// Queues one event if its type is selected. Never blocks: a full queue drops the event
    /// (reported by `finish`).
    pub fn send(&self, event: &Event) {
        let Ok(mut body) = serde_json::to_value(event) else {
            return;
        };
        let kind = body["type"].as_str().unwrap_or_default().to_string();
        if !self.events.contains(&kind) {
            return;
        }
        if let Some(obj) = body.as_object_mut() {
            obj.insert("cluster".into(), Value::String(self.cluster.clone()));
            obj.insert("text".into(), Value::String(text(&self.cluster, event)));
        }
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match self.tx.try_send(body) {
            Ok(()) => s.pending.push(kind),
            Err(e) => s.failed.push(FailedDelivery {
                event: kind,
                attempts: 0,
                error: match e {
                    mpsc::error::TrySendError::Full(_) => format!(
                        "dropped: {QUEUE_CAPACITY} notifications were already waiting (endpoint too slow)"
                    ),
                    mpsc::error::TrySendError::Closed(_) => {
                        "dropped: the notification worker had stopped".to_string()
                    }
                },
            }),
        }
    }

    /// Waits up to `finish_timeout` for queued deliveries, then stops the worker and reports.
    pub async fn finish(self) -> NotifyReport {
        let Notifier {
            tx,
            mut worker,
            shared,
            target,
            finish_timeout,
            ..
        } = self;
        drop(tx);
        let finished = tokio::time::timeout(finish_timeout, &mut worker)
            .await
            .is_ok();
        if !finished {
            worker.abort();
            let _ = worker.await;
        }
        let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = std::mem::take(&mut s.pending);
        for event in pending {
            s.failed.push(FailedDelivery {
                event,
                attempts: 0,
                error: format!(
                    "not delivered: wkctl stopped waiting after {}s",
                    finish_timeout.as_secs_f64()
                ),
            });
        }
        NotifyReport {
            target,
            sent: s.sent,
            failed: std::mem::take(&mut s.failed),
        }
    }
}

/// The Slack-compatible `text` of an event: `wkctl <cluster>: <what happened>`.
pub fn text(cluster: &str, event: &Event) -> String {
    let what = match event {
        Event::Summary(s) => {
            // Node counts per status, in the order statuses first appear.
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for n in &s.nodes {
                let word = n.word();
                match counts.iter_mut().find(|(st, _)| *st == word) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((word, 1)),
                }
            }
            let parts: Vec<String> = counts
                .iter()
                .map(|(st, n)| format!("{n} {}", st.replace('_', " ")))
                .collect();
            let nodes = if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            };
            match s.kind {
                crate::plan::PlanKind::Upgrade => format!(
                    "run to {} {} after {:.0}s{nodes}",
                    s.to, s.status, s.duration_s
                ),
                crate::plan::PlanKind::Restart => format!(
                    "restart on {} {} after {:.0}s{nodes}",
                    s.to, s.status, s.duration_s
                ),
            }
        }
        other => plain_line(other)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    format!("wkctl {cluster}: {what}")
}

/// Serializes a `Duration` as fractional seconds.
mod secs {
    use serde::Serializer;
    use std::time::Duration;
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests;
