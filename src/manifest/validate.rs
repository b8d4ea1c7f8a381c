//! Validation of the manifest as read from YAML, one phase per part of the file.
//!
//! [`super::parse`] runs the phases in the order of the file's sections (name, `api`,
//! `nodes`, `policy`, `notify`), and each phase checks its keys in a fixed order: a file
//! with several mistakes always gets the same, first error. Every error names the place.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::raw::{self, RawApi, RawManifest, RawNode, RawPolicy, VarValue};
use super::{ApiConfig, ClientsPolicy, MAX_NODE_ID, Node, Policy, SmokePolicy};
use crate::error::WkError;
use crate::notify::{NotifyConfig, NotifyTarget};
use crate::version::WkVersion;

/// The file being validated, as messages show it: every error names a place in it.
#[derive(Clone, Copy)]
pub(super) struct Place<'a> {
    pub(super) shown: &'a str,
}

impl Place<'_> {
    /// An error at `line:col` of the file.
    fn at(self, line: u64, col: u64, msg: &str, hint: &str) -> WkError {
        WkError::input(format!("{}:{line}:{col}: {msg}", self.shown), hint)
    }

    /// An error at a value's position.
    fn span(self, loc: &Location, msg: &str, hint: &str) -> WkError {
        self.at(loc.line(), loc.column(), msg, hint)
    }
}

/// The YAML read into the raw shape: syntax errors and unknown keys, at their position.
pub(super) fn yaml(text: &str, place: Place<'_>) -> Result<RawManifest, WkError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let mut msg = e.without_snippet().to_string();
        // The rendered message may repeat the position; keep one line.
        msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
        let hint = if msg.contains("unknown field") {
            "remove or fix the key; see the manifest format in the README"
        } else {
            "check the YAML syntax and the manifest format in the README"
        };
        place.at(line, col, &msg, hint)
    })
}

/// `name`: it names the state directory, so it must be a safe file name.
pub(super) fn cluster_name(raw: &Spanned<String>, place: Place<'_>) -> Result<String, WkError> {
    let name = raw.value.trim().to_string();
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || name.len() > 64
    {
        return Err(place.span(
            &raw.referenced,
            &format!(
                "cluster name `{name}` must be 1–64 characters of letters, digits, `-`, `_`, `.`"
            ),
            "the name is used as the state directory `.wkctl/<name>/`",
        ));
    }
    Ok(name)
}

/// `api`: the request timeout, then the token variable's name.
pub(super) fn api_config(api: Option<&RawApi>, place: Place<'_>) -> Result<ApiConfig, WkError> {
    let timeout = match api.and_then(|a| a.timeout.as_ref()) {
        Some(s) => duration(s, place.shown)?,
        None => Duration::from_secs(5),
    };
    let token_env = match api.and_then(|a| a.token_env.as_ref()) {
        Some(t) => Some(token_env(t, place)?),
        None => None,
    };
    Ok(ApiConfig { token_env, timeout })
}

/// `api.token_env`: the NAME of a variable. Never echoes the value: it may be the token
/// itself, pasted by mistake.
fn token_env(t: &Spanned<String>, place: Place<'_>) -> Result<String, WkError> {
    let v = t.value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(place.span(
            &t.referenced,
            &format!(
                "`api.token_env` must be the NAME of an environment variable (letters, digits, \
                 `_`), not a value ({} characters given, not shown: it may be the token itself)",
                v.chars().count()
            ),
            "put the token in an env var (e.g. `WK_MANAGER_TOKEN`) and name it here; never put \
             the token in the file",
        ));
    }
    Ok(v.to_string())
}

/// Template values (`vars`, cluster-wide or per node) as strings.
pub(super) fn vars(raw: BTreeMap<String, Spanned<VarValue>>) -> BTreeMap<String, String> {
    raw.into_iter()
        .map(|(k, v)| (k, v.value.into_string()))
        .collect()
}

/// `nodes`: at least one, each valid, no id and no API twice.
pub(super) fn nodes(raw: Spanned<Vec<RawNode>>, place: Place<'_>) -> Result<Vec<Node>, WkError> {
    if raw.value.is_empty() {
        return Err(place.span(
            &raw.referenced,
            "`nodes` is empty",
            "list at least one node with `id` and `host`",
        ));
    }
    let mut nodes: Vec<Node> = Vec::with_capacity(raw.value.len());
    let mut seen = Seen::default();
    for rn in raw.value {
        nodes.push(seen.node(rn, place)?);
    }
    Ok(nodes)
}

/// What the nodes before this one took: ids and APIs must be unique.
#[derive(Default)]
struct Seen {
    /// Each id with the line it is at.
    ids: BTreeMap<u64, u64>,
    /// Each node's API, normalised (`scheme://host:port`), with the node and its line:
    /// two nodes on one API would have wkctl judge (and smoke-test "through another
    /// node") one process as two.
    apis: BTreeMap<String, (u64, u64)>,
}

impl Seen {
    /// One node, checked in the order of its keys: id, host, api, version.
    fn node(&mut self, rn: RawNode, place: Place<'_>) -> Result<Node, WkError> {
        let loc = &rn.id.referenced;
        let id = self.id(&rn.id, place)?;
        let host = rn.host.value.trim().to_string();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(place.span(
                &rn.host.referenced,
                &format!("node {id}: invalid host `{host}`"),
                "give a host name or IP address",
            ));
        }
        let api = match &rn.api {
            Some(a) => base_url(a, id, place)?,
            None => default_api(&host),
        };
        let api_line = rn.api.as_ref().map_or(loc.line(), |a| a.referenced.line());
        if let Some((other, other_line)) = self.apis.insert(api_key(&api), (id, api_line)) {
            return Err(place.at(
                api_line,
                rn.api
                    .as_ref()
                    .map_or(loc.column(), |a| a.referenced.column()),
                &format!("nodes {other} (line {other_line}) and {id} have the same API `{api}`"),
                "give every node its own `api` (host and port of that node's HTTP API, 5001 by \
                 default)",
            ));
        }
        let version = match rn.version {
            Some(v) => Some(WkVersion::parse(&v.value).map_err(|e| {
                place.span(
                    &v.referenced,
                    &format!("node {id}: {e}"),
                    "write the deployed tag, e.g. `v2.0.10-20241221`",
                )
            })?),
            None => None,
        };
        Ok(Node {
            id,
            host,
            api,
            version,
            vars: vars(rn.vars),
        })
    }

    /// `id`: in range (WuKongIM's snowflake id) and not taken by an earlier node.
    fn id(&mut self, raw: &Spanned<i64>, place: Place<'_>) -> Result<u64, WkError> {
        let loc = &raw.referenced;
        let id = u64::try_from(raw.value).unwrap_or(0);
        if id == 0 || id > MAX_NODE_ID {
            return Err(place.span(
                loc,
                &format!("node id {} is out of range 1..=1023", raw.value),
                "WuKongIM uses the node id as its snowflake id, so it must be 1..=1023 (e.g. 1001)",
            ));
        }
        if let Some(first_line) = self.ids.insert(id, loc.line()) {
            return Err(place.span(
                loc,
                &format!("duplicate node id {id} (first at line {first_line})"),
                "every node needs its own `cluster.nodeId`",
            ));
        }
        Ok(id)
    }
}

/// A node's `api`: an http(s) base URL with a host and no path (a trailing `/` is dropped).
fn base_url(a: &Spanned<String>, id: u64, place: Place<'_>) -> Result<String, WkError> {
    let url = a.value.trim().trim_end_matches('/').to_string();
    let parsed = url::Url::parse(&url);
    let valid = parsed
        .as_ref()
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if !valid
        || parsed
            .as_ref()
            .is_ok_and(|u| u.path() != "/" && !u.path().is_empty())
    {
        return Err(place.span(
            &a.referenced,
            &format!("node {id}: `api` is not a valid base URL: `{url}`"),
            "use e.g. `http://10.0.0.11:5001` (scheme, host and port, no path)",
        ));
    }
    Ok(url)
}

/// `policy`: the defaults with what the file sets, durations checked in the order of
/// [`Policy`]'s fields, then `clients`, `smoke`, and last the values that must not be zero.
pub(super) fn policy(p: &RawPolicy, place: Place<'_>) -> Result<Policy, WkError> {
    let shown = place.shown;
    let mut policy = Policy::default();
    if let Some(o) = p.order {
        policy.order = o;
    }
    if let Some(c) = p.canary {
        policy.canary = c;
    }
    if let Some(a) = p.accept_stuck_joining {
        policy.accept_stuck_joining = a;
    }
    let set = |slot: &mut Duration, v: &Option<Spanned<String>>| -> Result<(), WkError> {
        if let Some(s) = v {
            *slot = duration(s, shown)?;
        }
        Ok(())
    };
    set(&mut policy.soak, &p.soak)?;
    set(&mut policy.stable_for, &p.stable_for)?;
    set(&mut policy.node_timeout, &p.node_timeout)?;
    set(&mut policy.poll_interval, &p.poll_interval)?;
    set(&mut policy.step_timeout, &p.step_timeout)?;
    if let Some(c) = &p.clients {
        policy.clients = clients_policy(c, shown)?;
    }
    if let Some(sm) = &p.smoke {
        policy.smoke = Some(smoke_policy(sm)?);
    }
    // Only a value written in the file can be zero, so the error points at it.
    let zero = [
        ("poll_interval", policy.poll_interval, &p.poll_interval),
        ("node_timeout", policy.node_timeout, &p.node_timeout),
        ("step_timeout", policy.step_timeout, &p.step_timeout),
    ]
    .into_iter()
    .find_map(|(key, d, s)| s.as_ref().filter(|_| d.is_zero()).map(|s| (key, s)));
    if let Some((key, s)) = zero {
        return Err(place.span(
            &s.referenced,
            &format!("`policy.{key}` must be greater than zero"),
            "e.g. `poll_interval: 1s`, `node_timeout: 10m`",
        ));
    }
    Ok(policy)
}

/// Validates `notify:` (README "Notifications").
pub(super) fn notify_config(n: raw::RawNotify, place: Place<'_>) -> Result<NotifyConfig, WkError> {
    let shown = place.shown;
    let target = notify_target(n.url_env, n.command, place)?;
    let mut config = NotifyConfig {
        target,
        ..NotifyConfig::default()
    };
    if let Some(events) = n.events {
        config.events.clear();
        for e in &events {
            let one = crate::notify::parse_events([e.value.as_str()]).map_err(|msg| {
                place.span(
                    &e.referenced,
                    &format!("notify.events: {msg}"),
                    &format!(
                        "use `all` or some of: {}",
                        crate::notify::EVENT_TYPES.join(", ")
                    ),
                )
            })?;
            config.events.extend(one);
        }
    }
    if let Some(t) = &n.timeout {
        config.timeout = duration(t, shown)?;
        if config.timeout.is_zero() {
            return Err(place.span(
                &t.referenced,
                "`notify.timeout` must be greater than zero",
                "e.g. `timeout: 5s`",
            ));
        }
    }
    if let Some(r) = n.retries {
        if r.value > 10 {
            return Err(place.span(
                &r.referenced,
                &format!("`notify.retries` is {}, at most 10", r.value),
                "a few retries with backoff are enough; the run never waits for notifications",
            ));
        }
        config.retries = r.value;
    }
    Ok(config)
}

/// Where `notify:` sends events: a webhook (`url_env`, a variable's NAME: the URL holds a
/// secret) or a command, not both; neither when `--notify` gives the target.
fn notify_target(
    url_env: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    place: Place<'_>,
) -> Result<Option<NotifyTarget>, WkError> {
    Ok(match (url_env, command) {
        (Some(_), Some(c)) => {
            return Err(place.span(
                &c.referenced,
                "`notify` has both `url_env` and `command`",
                "keep one: a webhook (`url_env`) or a command",
            ));
        }
        (Some(u), None) => {
            let v = u.value.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(place.span(
                    &u.referenced,
                    &format!("`notify.url_env` must be an environment variable name, got `{v}`"),
                    "put the webhook URL in an env var (e.g. `WKCTL_WEBHOOK_URL`) and name it \
                     here; the URL holds a secret",
                ));
            }
            Some(NotifyTarget::UrlEnv(v.to_string()))
        }
        (None, Some(c)) => {
            if c.value.trim().is_empty() {
                return Err(place.span(
                    &c.referenced,
                    "`notify.command` is empty",
                    "e.g. `command: ./notify.sh` (it gets each event as JSON on stdin)",
                ));
            }
            Some(NotifyTarget::Command(c.value.trim().to_string()))
        }
        (None, None) => None,
    })
}

/// `scheme://host:port` of an API base URL (lowercase host, the scheme's port when none is
/// written), to tell whether two nodes name one API.
fn api_key(api: &str) -> String {
    url::Url::parse(api).map_or_else(
        |_| api.to_ascii_lowercase(),
        |u| {
            format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or("").to_ascii_lowercase(),
                u.port_or_known_default().unwrap_or(0)
            )
        },
    )
}

/// `http://<host>:5001`, bracketing IPv6 literals.
fn default_api(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:5001")
    } else {
        format!("http://{host}:5001")
    }
}

/// The longest duration a manifest may give (a run's waits add these to instants).
const MAX_DURATION: Duration = Duration::from_hours(7 * 24);

/// A duration as written (`500ms`, `30s`, `10m`, `1h`), at most [`MAX_DURATION`].
fn duration(s: &Spanned<String>, shown: &str) -> Result<Duration, WkError> {
    let d = humantime::parse_duration(s.value.trim()).map_err(|e| {
        WkError::input(
            format!(
                "{shown}:{}:{}: invalid duration `{}`: {e}",
                s.referenced.line(),
                s.referenced.column(),
                s.value
            ),
            "write durations like `500ms`, `30s`, `10m` or `1h`",
        )
    })?;
    if d > MAX_DURATION {
        return Err(WkError::input(
            format!(
                "{shown}:{}:{}: duration `{}` is longer than 7 days",
                s.referenced.line(),
                s.referenced.column(),
                s.value.trim()
            ),
            "use a duration of at most `7d` (a node that needs longer is not coming back)",
        ));
    }
    Ok(d)
}

/// `policy.clients` from the file: `recover` as `0.9`, `90` or `"90%"`.
fn clients_policy(c: &raw::RawClients, shown: &str) -> Result<ClientsPolicy, WkError> {
    let mut out = ClientsPolicy::default();
    if let Some(r) = &c.recover {
        let pct = match r {
            raw::RawRatio::Num(f) if *f > 0.0 && *f <= 1.0 => Some(f * 100.0),
            raw::RawRatio::Num(f) if *f > 1.0 && *f <= 100.0 => Some(*f),
            raw::RawRatio::Str(s) => s
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0 && *f <= 100.0),
            raw::RawRatio::Num(_) => None,
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        match pct {
            Some(p) => out.recover_pct = p.round().max(1.0) as u64,
            None => {
                return Err(WkError::input(
                    format!(
                        "{shown}: `policy.clients.recover` must be a share of the baseline \
                         between 0 and 100%"
                    ),
                    "e.g. `recover: 90%` or `recover: 0.9`",
                ));
            }
        }
    }
    if let Some(w) = &c.within {
        out.within = Some(duration(w, shown)?);
    }
    if let Some(m) = c.min {
        out.min = m;
    }
    if let Some(o) = c.on_shortfall {
        out.on_shortfall = o;
    }
    Ok(out)
}

/// `policy.smoke`: a probe channel and uid, both named.
fn smoke_policy(s: &raw::RawSmoke) -> Result<SmokePolicy, WkError> {
    let channel = s.channel.trim().to_string();
    let uid = s.uid.trim().to_string();
    if channel.is_empty() || uid.is_empty() {
        return Err(WkError::input(
            "`policy.smoke` needs a non-empty `channel` and `uid`".to_string(),
            "name a dedicated probe channel and uid, e.g. `smoke: { channel: wkctl-probe, uid: \
             wkctl-probe }`",
        ));
    }
    Ok(SmokePolicy {
        channel,
        channel_type: s.channel_type.unwrap_or(2),
        uid,
    })
}
