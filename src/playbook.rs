//! Playbooks (DESIGN §4): how to do each step on one node. wkctl decides when.
//!
//! Built-ins are compiled in from `playbooks/*.yaml`; a manifest may also name a file.
//! Templates use `{{name}}`: `node.id`, `node.host`, `node.api`, `from`, `to`, `peer`,
//! `peer_host`, `peer_port` and the variables (node over manifest over playbook). Every
//! substituted value is shell-quoted, and an unknown variable is an error at plan time.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::WkError;

/// The built-in playbooks: (name, YAML).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "docker-compose",
        include_str!("../playbooks/docker-compose.yaml"),
    ),
    ("systemd", include_str!("../playbooks/systemd.yaml")),
    (
        "binary-daemon",
        include_str!("../playbooks/binary-daemon.yaml"),
    ),
    ("kubernetes", include_str!("../playbooks/kubernetes.yaml")),
    ("sim", include_str!("../playbooks/sim.yaml")),
];

/// What a step does.
///
/// Per node, in this order (DESIGN §4): `prepare` (while the node still serves: pull the
/// image, download and verify the asset; a failure leaves the node untouched), `drain`,
/// `stop`, `backup` (after the stop, so the data directory is a consistent copy),
/// `install` (only the switch to the prepared version), `start`, the gate, `undrain`.
/// Once per run: `lock` then `pre_run` before the first node, `post_run` then `unlock`
/// after the last, all on the first node's host. Only `stop` and `start` are required;
/// every other step is optional.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Backup,
    Stop,
    Install,
    Start,
    /// Print the node's recent logs (run on failure, and by `doctor`).
    Logs,
    /// Put the old version back (`--rollback-on-failure`, `wkctl rollback`).
    Rollback,
    /// Print the node's effective WuKongIM settings (`doctor`).
    Config,
    /// Exit 0 when this node reaches `{{peer}}` over TCP (`doctor`).
    Netcheck,
    /// Fetch the new version while the node still serves (pull, download + checksum).
    Prepare,
    /// Take the team-wide run lock on the first node's host (atomic `mkdir`); prints the
    /// holder and fails when another run holds it.
    Lock,
    /// Release the run lock (also what `--break-lock` runs).
    Unlock,
    /// Take the node out of client traffic before its stop (e.g. a load balancer).
    Drain,
    /// Put the node back into client traffic after its gate passed.
    Undrain,
    /// Once, before the first node (after `lock`).
    PreRun,
    /// Once, after the last node (before `unlock`).
    PostRun,
}

impl StepKind {
    /// The per-node steps, in the order they run; the gate comes between `Start` and
    /// `Undrain`, the soak after `Undrain`.
    pub const ROLLOUT: [StepKind; 7] = [
        StepKind::Prepare,
        StepKind::Drain,
        StepKind::Stop,
        StepKind::Backup,
        StepKind::Install,
        StepKind::Start,
        StepKind::Undrain,
    ];

    /// Run once, before the first node.
    pub const RUN_START: [StepKind; 2] = [StepKind::Lock, StepKind::PreRun];
    /// Run once, after the last node (and, for `Unlock`, after a failure too).
    pub const RUN_END: [StepKind; 2] = [StepKind::PostRun, StepKind::Unlock];

    /// Every step kind (the original eight first, so the schema's list only grows).
    pub const ALL: [StepKind; 15] = [
        StepKind::Backup,
        StepKind::Stop,
        StepKind::Install,
        StepKind::Start,
        StepKind::Logs,
        StepKind::Rollback,
        StepKind::Config,
        StepKind::Netcheck,
        StepKind::Prepare,
        StepKind::Drain,
        StepKind::Undrain,
        StepKind::Lock,
        StepKind::Unlock,
        StepKind::PreRun,
        StepKind::PostRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Backup => "backup",
            StepKind::Stop => "stop",
            StepKind::Install => "install",
            StepKind::Start => "start",
            StepKind::Logs => "logs",
            StepKind::Rollback => "rollback",
            StepKind::Config => "config",
            StepKind::Netcheck => "netcheck",
            StepKind::Prepare => "prepare",
            StepKind::Lock => "lock",
            StepKind::Unlock => "unlock",
            StepKind::Drain => "drain",
            StepKind::Undrain => "undrain",
            StepKind::PreRun => "pre_run",
            StepKind::PostRun => "post_run",
        }
    }
}

/// A playbook as written in YAML: how to do each step on one node (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wkctl playbook")]
pub struct Playbook {
    /// The playbook's name.
    pub name: String,
    /// What it is for and what it expects from the host.
    #[serde(default)]
    pub description: String,
    /// Default template values (the manifest's `vars` override them).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Named sets of `vars`, chosen with the variable `preset` (e.g. one per Helm chart
    /// variant). A preset's values override the playbook's `vars`; the manifest's `vars`
    /// override the preset.
    #[serde(default)]
    pub presets: BTreeMap<String, BTreeMap<String, String>>,
    /// Shell text put before every step (helper functions, e.g. choosing `docker compose`
    /// or `docker-compose`). Rendered with the same variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prelude: Option<String>,
    /// Shell templates per step; `stop` and `start` are required. Variables: `{{node.id}}`,
    /// `{{node.host}}`, `{{from}}`, `{{to}}`, `{{peer}}` and the `vars`.
    pub steps: BTreeMap<StepKind, String>,
    /// Per-step timeouts (`30s`, `10m`) overriding `policy.step_timeout`.
    #[serde(default)]
    pub timeouts: BTreeMap<StepKind, String>,
    /// sha256 of the playbook text (drift detection for `--resume`).
    #[serde(skip_deserializing, default)]
    pub digest: String,
}

impl Playbook {
    pub fn step(&self, kind: StepKind) -> Option<&str> {
        self.steps.get(&kind).map(String::as_str)
    }

    /// The timeout for a step, if the playbook sets one.
    pub fn timeout(&self, kind: StepKind) -> Option<std::time::Duration> {
        self.timeouts
            .get(&kind)
            .and_then(|t| humantime::parse_duration(t).ok())
    }
}

/// Loads a playbook by built-in name or path (relative paths are resolved against the
/// manifest's directory).
pub fn load(name_or_path: &str, manifest_dir: &Path) -> Result<Playbook, WkError> {
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return parse(text, &format!("built-in playbook `{name_or_path}`"));
    }
    let ext = Path::new(name_or_path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let looks_like_path = name_or_path.contains('/')
        || ext.eq_ignore_ascii_case("yaml")
        || ext.eq_ignore_ascii_case("yml");
    if !looks_like_path {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(WkError::input(
            format!("unknown playbook `{name_or_path}`"),
            format!(
                "use a built-in ({}) or a path to a playbook file",
                names.join(", ")
            ),
        ));
    }
    let path = manifest_dir.join(name_or_path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        WkError::input(
            format!("cannot read playbook `{}`: {e}", path.display()),
            "check `playbook:` in the manifest",
        )
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates playbook text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<Playbook, WkError> {
    let mut pb: Playbook = serde_saphyr::from_str(text).map_err(|e| {
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let msg = e.without_snippet().to_string();
        WkError::input(
            format!("{origin}:{line}:{col}: {}", msg.lines().next().unwrap_or("invalid YAML")),
            "steps are `prepare`, `drain`, `stop`, `backup`, `install`, `start`, `undrain`, `logs`, `rollback`, `config`, `netcheck`, `lock`, `unlock`, `pre_run`, `post_run`",
        )
    })?;
    for required in [StepKind::Stop, StepKind::Start] {
        if !pb.steps.contains_key(&required) {
            return Err(WkError::input(
                format!("{origin}: step `{}` is missing", required.as_str()),
                "a playbook needs at least `stop` and `start`",
            ));
        }
    }
    if let Some(prelude) = &pb.prelude {
        parse_template(prelude).map_err(|e| {
            WkError::input(
                format!("{origin}: `prelude`: {e}"),
                "write variables as `{{name}}`",
            )
        })?;
    }
    for (kind, tpl) in &pb.steps {
        parse_template(tpl).map_err(|e| {
            WkError::input(
                format!("{origin}: step `{}`: {e}", kind.as_str()),
                "write variables as `{{name}}`",
            )
        })?;
    }
    for (kind, t) in &pb.timeouts {
        humantime::parse_duration(t).map_err(|e| {
            WkError::input(
                format!(
                    "{origin}: timeout of `{}` is not a duration: {e}",
                    kind.as_str()
                ),
                "e.g. `10m`",
            )
        })?;
    }
    if let Some(p) = pb
        .prelude
        .as_deref()
        .map(str::trim_end)
        .filter(|p| !p.is_empty())
    {
        // Baked in once here, so every caller of `step()` (plan, doctor, rollback) runs
        // the prelude with its step.
        for tpl in pb.steps.values_mut() {
            *tpl = format!("{p}\n{tpl}");
        }
    }
    pb.digest = crate::manifest::hex(&sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(text.as_bytes()),
    ));
    Ok(pb)
}

/// A piece of a template.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn parse_template(tpl: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed `{{`".to_string())?;
        let name = after[..end].trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(format!("invalid variable name `{name}`"));
        }
        out.push(Piece::Var(name));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err("`}}` without `{{`".to_string());
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Renders a template; every value is shell-quoted. Unknown variables are errors.
pub fn render(tpl: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(tpl.len() + 32);
    for piece in parse_template(tpl)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => {
                let value = vars
                    .get(name)
                    .ok_or_else(|| format!("unknown variable `{{{{{name}}}}}`"))?;
                out.push_str(&shell_quote(value));
            }
        }
    }
    Ok(out)
}

/// Quotes a value as one POSIX shell word. Plain values stay readable.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The variables for one node: playbook vars < preset < manifest vars < node vars <
/// built-ins. The preset is named by the `preset` variable (node over manifest over
/// playbook); an unknown name is reported by [`preset_error`].
pub fn node_vars(
    playbook: &Playbook,
    cluster_vars: &BTreeMap<String, String>,
    node: &crate::manifest::Node,
    from: Option<&str>,
    to: &str,
) -> BTreeMap<String, String> {
    let mut vars = playbook.vars.clone();
    let preset = node
        .vars
        .get("preset")
        .or_else(|| cluster_vars.get("preset"))
        .or_else(|| playbook.vars.get("preset"));
    if let Some(values) = preset.and_then(|p| playbook.presets.get(p)) {
        vars.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    vars.extend(cluster_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars.extend(node.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars.insert("node.id".into(), node.id.to_string());
    vars.insert("node.host".into(), node.host.clone());
    vars.insert("node.api".into(), node.api.clone());
    vars.insert("from".into(), from.unwrap_or("unknown").to_string());
    vars.insert("to".into(), to.to_string());
    vars
}

/// An error when the `preset` variable names no preset of the playbook.
pub fn preset_error(
    playbook: &Playbook,
    cluster_vars: &BTreeMap<String, String>,
    node: &crate::manifest::Node,
) -> Option<String> {
    let name = node
        .vars
        .get("preset")
        .or_else(|| cluster_vars.get("preset"))?;
    if playbook.presets.is_empty() || playbook.presets.contains_key(name) {
        return None;
    }
    let known: Vec<String> = playbook.presets.keys().map(|k| format!("`{k}`")).collect();
    Some(format!(
        "node {}: preset `{name}` is not one of playbook `{}`'s presets ({})",
        node.id,
        playbook.name,
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests;
