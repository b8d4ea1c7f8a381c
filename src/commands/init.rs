//! `wkctl init [--from-compose FILE] [-o cluster.yaml] [--force]`: a starter manifest, or
//! one read from an existing WuKongIM docker-compose file (DESIGN §1).
//!
//! The text is checked with `manifest::parse` before it is written, so `init` never leaves
//! a manifest that `check` or `plan` would reject.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::compose::{self, ComposeCluster};
use crate::error::{Outcome, WkError};
use crate::output::Printer;

/// The first line of every written manifest: editors validate against the schema.
pub const SCHEMA_LINE: &str = "# yaml-language-server: $schema=https://raw.githubusercontent.com/wkctl/wkctl/main/schemas/cluster.schema.json";

pub fn run(args: &InitArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && !args.force && args.output.exists() {
        return Err(WkError::no(
            format!("`{}` already exists", args.output.display()),
            "pass `--force` to overwrite it, or `-o other.yaml` to write elsewhere",
        )
        .into());
    }
    let (text, summary) = if args.from_compose.is_empty() {
        (starter(), "a starter manifest: edit the nodes".to_string())
    } else {
        let mut sources = Vec::new();
        for file in &args.from_compose {
            let shown = file.display().to_string();
            let content = std::fs::read_to_string(file).map_err(|e| {
                WkError::input(
                    format!("cannot read compose file `{shown}`: {e}"),
                    "pass the path of your WuKongIM docker-compose file",
                )
            })?;
            let dir = compose_dir(file);
            // Compose interpolates `${VAR}` from the project's `.env`: so does init.
            let dotenv = std::fs::read_to_string(dir.join(".env"))
                .map(|t| compose::read_dotenv(&t))
                .unwrap_or_default();
            let cluster = compose::parse_with_env(&content, &shown, &dotenv)?;
            sources.push(Source {
                file: file.clone(),
                dir,
                cluster,
            });
        }
        let merged = merge(&sources)?;
        for w in &merged.warnings {
            p.warn(w, None);
        }
        let text = from_compose_files(&merged, &sources);
        let files: Vec<String> = sources
            .iter()
            .map(|s| format!("`{}`", s.file.display()))
            .collect();
        (
            text,
            format!("{} node(s) from {}", merged.nodes.len(), files.join(", ")),
        )
    };
    // Never write a manifest the loader would refuse.
    crate::manifest::parse(&text, &args.output).map_err(|e| {
        WkError::input(
            format!("the generated manifest is invalid: {}", e.message),
            "fix the compose file's values (or report a bug with it attached)",
        )
    })?;
    if to_stdout {
        p.out(text.trim_end())?;
        return Ok(Outcome::Success);
    }
    std::fs::write(&args.output, &text).map_err(|e| {
        WkError::input(
            format!("cannot write `{}`: {e}", args.output.display()),
            "check the directory exists and is writable, or pass `-o FILE`",
        )
    })?;
    let m = args.output.display();
    p.note(&format!("wrote `{m}`: {summary}"));
    p.note(&format!(
        "next: `wkctl status -m {m}`, then `wkctl check --to {} -m {m}` (or the release you \
         want, see `wkctl releases`)",
        newest_release()
    ));
    Ok(Outcome::Success)
}

/// The newest release in the catalog: what `init` suggests (never an old target, which
/// would be a downgrade for most clusters, issue 13).
pub fn newest_release() -> &'static str {
    crate::releases::CATALOG
        .last()
        .map_or("v2.2.5-20260422", |r| r.tag)
}

/// One `--from-compose` file, read.
pub struct Source {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub cluster: ComposeCluster,
}

/// The nodes of every file, each with the directory of its file (one compose project per
/// host, upstream's docs multi-node layout, issue 13.20).
pub struct Merged {
    pub name: Option<String>,
    pub nodes: Vec<(compose::ComposeNode, PathBuf)>,
    pub warnings: Vec<String>,
}

/// Merges the files; a node id in two files is an error.
pub fn merge(sources: &[Source]) -> Result<Merged, WkError> {
    let mut out = Merged {
        name: sources.first().and_then(|s| s.cluster.name.clone()),
        nodes: Vec::new(),
        warnings: Vec::new(),
    };
    let mut seen: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    for s in sources {
        let shown = s.file.display().to_string();
        for n in &s.cluster.nodes {
            if let Some(first) = seen.insert(n.id, shown.clone()) {
                return Err(WkError::input(
                    format!("node id {} is in `{first}` and in `{shown}`", n.id),
                    "pass each node's compose file once; every node needs its own \
                     `WK_CLUSTER_NODEID`",
                ));
            }
            out.nodes.push((n.clone(), s.dir.clone()));
        }
        if sources.len() > 1 {
            out.warnings
                .extend(s.cluster.warnings.iter().map(|w| format!("`{shown}`: {w}")));
        } else {
            out.warnings.extend(s.cluster.warnings.iter().cloned());
        }
    }
    out.nodes.sort_by_key(|(n, _)| n.id);
    Ok(out)
}

/// The compose file's directory, absolute when it can be (steps `cd` into it).
fn compose_dir(file: &Path) -> PathBuf {
    let parent = crate::inputs::manifest_dir(file);
    std::fs::canonicalize(&parent).unwrap_or(parent)
}

/// The starter manifest: every key shown once, with what it means.
pub fn starter() -> String {
    format!(
        "{SCHEMA_LINE}
# A WuKongIM v2 cluster for wkctl. Edit the nodes, then:
#   wkctl check --to v2.1.2 --offline && wkctl plan --to v2.1.2
name: im-prod                       # names the state directory .wkctl/<name>/
playbook: docker-compose            # docker-compose | systemd | binary-daemon | kubernetes | a file
api:
  # token_env: WK_MANAGER_TOKEN     # env var holding the managerToken (never the token itself)
  timeout: 5s
ssh:                                # run steps on each node's host; delete for local execution
  user: deploy
  port: 22
vars:                               # values for the playbook templates (see `wkctl schema playbook`)
  compose_dir: /opt/wukongim
  service: wukongim
nodes:                              # WK_CLUSTER_NODEID, 1..=1023, upgraded in id order
  - id: 1001
    host: 10.0.0.11
    api: http://10.0.0.11:5001      # default http://<host>:5001
    version: v2.0.10-20241221       # what is deployed now (used by --offline)
  - id: 1002
    host: 10.0.0.12
    version: v2.0.10-20241221
  - id: 1003
    host: 10.0.0.13
    version: v2.0.10-20241221
policy:
  order: id                         # id (1001 first) | controller-last
  canary: true                      # pause after the first node until confirmed (or --yes)
  soak: 30s                         # watch the whole cluster this long after each node
  stable_for: 10s                   # readiness must hold this long
  node_timeout: 10m                 # per node, from stop to ready
  poll_interval: 1s
"
    )
}

/// A manifest for the WuKongIM services of one compose file.
pub fn from_compose(c: &ComposeCluster, file: &Path, dir: &Path) -> String {
    let source = Source {
        file: file.to_path_buf(),
        dir: dir.to_path_buf(),
        cluster: c.clone(),
    };
    let merged = Merged {
        name: c.name.clone(),
        nodes: c
            .nodes
            .iter()
            .map(|n| (n.clone(), dir.to_path_buf()))
            .collect(),
        warnings: c.warnings.clone(),
    };
    from_compose_files(&merged, std::slice::from_ref(&source))
}

/// A manifest for the WuKongIM services of several compose files (one per host). What
/// must change before wkctl can upgrade them is written at the top, one `# CHANGE:` line
/// each, so the manifest never looks ready when it is not.
pub fn from_compose_files(m: &Merged, sources: &[Source]) -> String {
    let first_dir = sources.first().map_or_else(PathBuf::new, |s| s.dir.clone());
    let name = cluster_name(m.name.as_deref(), &first_dir);
    let mut s = String::new();
    write_header(&mut s, m, sources);
    let _ = writeln!(s, "name: {}", yaml_str(&name));
    s.push_str(
        "playbook: docker-compose            # runs `docker compose` (or docker-compose) in \
         compose_dir\n",
    );
    write_api(&mut s, m);
    let shared = SharedVars::of(m);
    shared.write(&mut s);
    if m.nodes
        .iter()
        .any(|(n, _)| n.host_from == "WK_CLUSTER_APIURL")
    {
        s.push_str(
            "# Hosts and API URLs come from WK_CLUSTER_APIURL: wkctl must reach them from \
             where it\n",
        );
        s.push_str("# runs (compose network aliases resolve only inside the compose network).\n");
    }
    s.push_str("nodes:\n");
    for (n, dir) in &m.nodes {
        write_node(&mut s, n, dir, &shared);
    }
    let nginx: Vec<&str> = sources
        .iter()
        .flat_map(|src| src.cluster.nginx.iter().map(String::as_str))
        .collect();
    if let Some(lb) = nginx.first() {
        s.push_str(&drain_examples(lb));
    }
    s.push_str(
        "policy:
  order: id                         # 1001 first (maintainers' advice, WuKongIM #310)
  canary: true                      # pause after the first node until confirmed (or --yes)
  soak: 30s
  stable_for: 10s
  node_timeout: 10m
  poll_interval: 1s
",
    );
    s
}

/// The schema line, where the manifest comes from, and one `# CHANGE:` line per warning.
fn write_header(s: &mut String, m: &Merged, sources: &[Source]) {
    let _ = writeln!(s, "{SCHEMA_LINE}");
    let files: Vec<String> = sources
        .iter()
        .map(|s| s.file.display().to_string())
        .collect();
    let _ = writeln!(
        s,
        "# Written by `wkctl init --from-compose {}`: one node per service",
        files.join(" --from-compose ")
    );
    let _ = writeln!(
        s,
        "# that sets WK_CLUSTER_NODEID. Review it, then: wkctl check --to {}",
        newest_release()
    );
    for w in &m.warnings {
        let _ = writeln!(s, "# CHANGE: {}", w.replace('\n', " "));
    }
}

/// `api:` and the commented `ssh:`: `token_env` is set when the services set a token.
fn write_api(s: &mut String, m: &Merged) {
    s.push_str("api:\n");
    if m.nodes.iter().any(|(n, _)| n.has_token) {
        s.push_str(
            "  token_env: WK_MANAGER_TOKEN       # the services set WK_MANAGERTOKEN: export it \
             as this\n",
        );
    } else {
        s.push_str("  # token_env: WK_MANAGER_TOKEN     # if the cluster has a managerToken\n");
    }
    s.push_str("  timeout: 5s\n");
    s.push_str("# ssh: { user: deploy }             # add when the services run on other hosts\n");
}

/// The template values every node has alike: written once under `vars:`, and per node
/// only where they differ.
struct SharedVars {
    dir: Option<String>,
    image: Option<String>,
    image_env: Option<String>,
    data_dir: Option<String>,
}

impl SharedVars {
    fn of(m: &Merged) -> SharedVars {
        SharedVars {
            dir: shared(m, |_, d| Some(d.display().to_string())),
            image: shared(m, |n, _| n.image_repo.clone()),
            image_env: shared(m, |n, _| n.image_env.clone()),
            data_dir: shared(m, |n, _| n.data_dir.clone()),
        }
    }

    /// The cluster-wide `vars:`.
    fn write(&self, s: &mut String) {
        s.push_str("vars:\n");
        if let Some(d) = &self.dir {
            let _ = writeln!(s, "  compose_dir: {}", yaml_str(d));
        }
        if let Some(repo) = &self.image {
            let _ = writeln!(s, "  image: {}", yaml_str(repo));
        }
        if let Some(env) = &self.image_env {
            let _ = writeln!(s, "  image_env: {}", yaml_str(env));
        }
        if let Some(d) = &self.data_dir {
            let _ = writeln!(
                s,
                "  data_dir: {}   # the volume mounted at /root/wukongim",
                yaml_str(d)
            );
        }
    }
}

/// The value `f` gives for every node, when it gives one and the same for all.
fn shared(
    m: &Merged,
    f: impl Fn(&compose::ComposeNode, &Path) -> Option<String>,
) -> Option<String> {
    let mut it = m.nodes.iter().map(|(n, d)| f(n, d));
    let first = it.next()??;
    it.all(|v| v.as_ref() == Some(&first)).then_some(first)
}

/// One node of `nodes:`, with where each value comes from and its own `vars`.
fn write_node(s: &mut String, n: &compose::ComposeNode, dir: &Path, shared: &SharedVars) {
    let _ = writeln!(s, "  - id: {}", n.id);
    let _ = writeln!(
        s,
        "    host: {}   # from {}",
        yaml_str(&n.host),
        n.host_from
    );
    if let Some(api) = &n.api {
        let _ = writeln!(s, "    api: {}   # from {}", yaml_str(api), n.api_from);
    }
    match &n.version {
        Some(v) => {
            let _ = writeln!(s, "    version: {v}   # from the image tag");
        }
        None => {
            s.push_str("    # version: v2.2.5-20260422   # the image tag is not a full version\n");
        }
    }
    let mut vars = vec![format!("service: {}", yaml_str(&n.service))];
    if let Some(env) = n.image_env.as_ref().filter(|_| shared.image_env.is_none()) {
        vars.push(format!("image_env: {}", yaml_str(env)));
    }
    if shared.dir.is_none() {
        vars.push(format!(
            "compose_dir: {}",
            yaml_str(&dir.display().to_string())
        ));
    }
    if let Some(d) = n.data_dir.as_ref().filter(|_| shared.data_dir.is_none()) {
        vars.push(format!("data_dir: {}", yaml_str(d)));
    }
    let _ = writeln!(s, "    vars: {{ {} }}", vars.join(", "));
}

/// Commented `drain`/`undrain` examples for a compose project with an nginx service in
/// front of the nodes (issue 19.3; upstream's `docker/cluster/docker-compose.yaml` has one,
/// facts §12). They mark the node's `server` line `down` in nginx's config and reload it,
/// so clients leave the node before its stop and come back once its gate held. Hook steps
/// live in a playbook file, so the example says how to get one.
fn drain_examples(lb: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Drain hooks: the compose project has an nginx service (`{lb}`) in front of the nodes."
    );
    s.push_str(
        "# To take each node out of nginx before its stop and back in once its gate held, copy
# the built-in playbook (`playbooks/docker-compose.yaml`) next to this file, set
# `playbook: ./docker-compose.yaml` above, and add under its `steps:` (adjust the config
# path to where your nginx.conf lists the nodes, one `server <host>:<port>;` line each):
",
    );
    let conf = "/etc/nginx/nginx.conf";
    let _ = writeln!(
        s,
        "#   drain: cd {{{{compose_dir}}}} && dc exec -T {lb} sh -c \"sed -i '/server {{{{node.host}}}}:/s/;$/ down;/' {conf} && nginx -s reload\""
    );
    let _ = writeln!(
        s,
        "#   undrain: cd {{{{compose_dir}}}} && dc exec -T {lb} sh -c \"sed -i '/server {{{{node.host}}}}:/s/ down;$/;/' {conf} && nginx -s reload\""
    );
    s
}

/// The compose project name, else the directory's name, made a valid cluster name.
fn cluster_name(compose_name: Option<&str>, dir: &Path) -> String {
    let raw = compose_name
        .map(str::to_string)
        .or_else(|| dir.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "wukongim".into()
    } else {
        cleaned
    }
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@-".contains(c))
        && !s.starts_with(['-', ':', '@'])
        && !s.contains(": ")
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

#[cfg(test)]
mod tests;
