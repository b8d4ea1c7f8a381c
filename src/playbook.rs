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
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn hostile_values_render_as_one_quoted_word() {
        let out = render("echo {{x}}", &vars(&[("x", "a'; rm -rf / #")])).unwrap();
        assert_eq!(out, r"echo 'a'\''; rm -rf / #'");
        // the shell sees exactly one argument with the original value
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s|' {}", shell_quote("a'; rm -rf / #")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "a'; rm -rf / #|");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(shell_quote("v2.1.2-20250120"), "v2.1.2-20250120");
    }

    #[test]
    fn unknown_and_malformed_variables_are_errors() {
        assert_eq!(
            render("x {{nope}}", &vars(&[])).unwrap_err(),
            "unknown variable `{{nope}}`"
        );
        assert!(render("x {{a", &vars(&[])).is_err());
        assert!(render("x {{a b}}", &vars(&[("a b", "")])).is_err());
        assert!(render("x }}", &vars(&[])).is_err());
    }

    #[test]
    fn every_builtin_playbook_loads_and_has_the_rollout_steps() {
        for (name, text) in BUILTIN {
            let pb = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&pb.name, name);
            for k in [
                StepKind::Stop,
                StepKind::Start,
                StepKind::Logs,
                StepKind::Rollback,
                StepKind::Config,
                StepKind::Netcheck,
            ] {
                assert!(pb.step(k).is_some(), "{name} lacks {}", k.as_str());
            }
        }
    }

    #[test]
    fn node_vars_override_cluster_and_playbook_vars() {
        let pb = parse(BUILTIN[0].1, "dc").unwrap();
        let node = crate::manifest::Node {
            id: 1001,
            host: "h".into(),
            api: "http://h:5001".into(),
            version: None,
            vars: vars(&[("service", "wukongim1")]),
        };
        let v = node_vars(
            &pb,
            &vars(&[("service", "cluster"), ("compose_dir", "/srv/wk")]),
            &node,
            Some("v2.0.10-20241221"),
            "v2.1.2-20250120",
        );
        assert_eq!(v["service"], "wukongim1");
        assert_eq!(v["compose_dir"], "/srv/wk");
        assert_eq!(v["node.id"], "1001");
        let stop = render(pb.step(StepKind::Stop).unwrap(), &v).unwrap();
        assert!(stop.contains("dc stop -t 30 wukongim1"), "{stop}");
        // the prelude is part of every step
        assert!(stop.starts_with("C=auto;"), "{stop}");
    }

    #[test]
    fn presets_sit_between_playbook_and_manifest_vars() {
        let pb = load("kubernetes", Path::new(".")).unwrap();
        let mut node = crate::manifest::Node {
            id: 1,
            host: "h".into(),
            api: "http://h:5001".into(),
            version: None,
            vars: vars(&[("pod", "wukongim-0"), ("preset", "chart-2.0.4")]),
        };
        let v = node_vars(&pb, &BTreeMap::new(), &node, None, "v2.2.5-20260422");
        assert_eq!(
            (v["statefulset"].as_str(), v["container"].as_str()),
            ("wukongim", "wukongim")
        );
        let v = node_vars(
            &pb,
            &vars(&[("preset", "chart-1.0.0")]),
            &{
                node.vars.remove("preset");
                node.clone()
            },
            None,
            "v2.2.5-20260422",
        );
        assert_eq!(v["container"], "wukoingim");
        // an explicit manifest value wins over the preset
        let v = node_vars(
            &pb,
            &vars(&[("preset", "chart-1.0.0"), ("container", "mine")]),
            &node,
            None,
            "v2.2.5-20260422",
        );
        assert_eq!(v["container"], "mine");
        assert!(preset_error(&pb, &vars(&[("preset", "chart-1.0.0")]), &node).is_none());
        let e = preset_error(&pb, &vars(&[("preset", "chart-9")]), &node).unwrap();
        assert!(e.contains("chart-9") && e.contains("`chart-2.0.4`"), "{e}");
    }

    #[test]
    fn new_step_kinds_parse_and_a_bad_prelude_is_an_error() {
        let pb = parse(
            "name: x\nprelude: 'f() { echo {{who}}; }'\nsteps: { stop: f, start: f, prepare: f, lock: f, unlock: f, drain: f, undrain: f, pre_run: f, post_run: f }\n",
            "p",
        )
        .unwrap();
        for k in StepKind::ALL {
            if matches!(
                k,
                StepKind::Backup
                    | StepKind::Install
                    | StepKind::Logs
                    | StepKind::Rollback
                    | StepKind::Config
                    | StepKind::Netcheck
            ) {
                continue;
            }
            assert_eq!(
                pb.step(k),
                Some("f() { echo {{who}}; }\nf"),
                "{}",
                k.as_str()
            );
        }
        assert_eq!(StepKind::PreRun.as_str(), "pre_run");
        let e = parse(
            "name: x\nprelude: '{{a b}}'\nsteps: { stop: a, start: b }\n",
            "p",
        )
        .unwrap_err();
        assert!(e.message.contains("`prelude`"), "{}", e.message);
    }

    #[test]
    fn playbook_errors_are_clear() {
        assert!(
            parse("name: x\nsteps: { start: a }\n", "p")
                .unwrap_err()
                .message
                .contains("`stop` is missing")
        );
        assert!(
            parse("name: x\nsteps: { stop: a, start: b, reboot: c }\n", "p")
                .unwrap_err()
                .message
                .starts_with("p:")
        );
        assert!(
            load("nope", Path::new("."))
                .unwrap_err()
                .hint
                .unwrap()
                .contains("docker-compose")
        );
    }
}
