//! Every clap type of `wkctl`, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Safe rolling upgrades for WuKongIM v2 clusters.
///
/// One node at a time, 1001 first, each node proven fully back (API, version, controller,
/// membership, config, settled slots, stable uptime) before the next is touched.
#[derive(Debug, Parser)]
#[command(name = "wkctl", version = crate::VERSION_LINE, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Start here: `wkctl demo` upgrades a simulated 3-node cluster end to end.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Cluster manifest [default: ./cluster.yaml]
    #[arg(
        short = 'm',
        long,
        global = true,
        env = "WKCTL_MANIFEST",
        value_name = "FILE"
    )]
    pub manifest: Option<PathBuf>,
    /// Only results and errors
    #[arg(short, long, global = true, env = "WKCTL_QUIET", value_parser = boolish())]
    pub quiet: bool,
    /// More detail on stderr: -v debug logs, -vv trace (`RUST_LOG` overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "WKCTL_VERBOSE")]
    pub verbose: u8,
    /// When to use colour
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, env = "WKCTL_COLOR")]
    pub color: ColorChoice,
    /// Plain lines instead of progress bars
    #[arg(long, global = true, env = "WKCTL_NO_PROGRESS", value_parser = boolish())]
    pub no_progress: bool,
    /// Send run events to a webhook URL or a command, given the event JSON on stdin
    /// (overrides the manifest's `notify:` target)
    #[arg(
        long,
        global = true,
        env = "WKCTL_NOTIFY",
        value_name = "URL|CMD",
        hide_env_values = true
    )]
    pub notify: Option<String>,
}

/// Boolean environment variables accept `1/0`, `true/false`, `yes/no`, `on/off` (and `y/n`,
/// `t/f`), case-insensitive, like most CLIs (issue 13.7); empty means false, as with an
/// unset variable. On the command line the flag alone means true.
pub fn parse_boolish(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        _ => Err("not a boolean: use 1/0, true/false, yes/no or on/off".to_string()),
    }
}

fn boolish() -> clap::builder::ValueParser {
    clap::builder::ValueParser::new(parse_boolish)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl From<&Global> for crate::output::Opts {
    fn from(g: &Global) -> Self {
        use crate::output::Color;
        crate::output::Opts {
            color: match g.color {
                ColorChoice::Auto => Color::Auto,
                ColorChoice::Always => Color::Always,
                ColorChoice::Never => Color::Never,
            },
            quiet: g.quiet,
            verbose: g.verbose,
            no_progress: g.no_progress,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pre-upgrade compatibility and cluster-health checks
    #[command(
        after_help = "Examples:\n  wkctl check --to v2.1.2\n  wkctl check --to v2.1.2 --offline --json\n\nExit: 0 no blocking finding, 1 blocked, 2 bad input."
    )]
    Check(CheckArgs),
    /// Print the exact steps `upgrade` would run, or write them as a plan file to review
    #[command(
        after_help = "Examples:\n  wkctl plan --to v2.1.2\n  wkctl plan --to v2.1.2 --offline --json > plan.json\n  wkctl plan --to v2.1.2 --out plan.json --format md > plan.md\n  wkctl upgrade --plan plan.json --expect-digest sha256:…\n  wkctl plan --restart --nodes 1002,1003 --out restart.json\n  wkctl plan --diff old.json new.json --format md\n\nExit: 0 no blocking finding, 1 blocked, 2 bad input."
    )]
    Plan(PlanArgs),
    /// Upgrade the cluster, one node at a time
    #[command(
        after_help = "Examples:\n  wkctl upgrade --to v2.1.2\n  wkctl upgrade --to v2.1.2 --dry-run\n  wkctl upgrade --resume\n  wkctl upgrade --plan plan.json --expect-digest sha256:… --max-age 24h --yes\n\nExit: 0 done, 1 refused or failed (state saved), 2 bad input, 130 interrupted."
    )]
    Upgrade(UpgradeArgs),
    /// Restart the cluster one node at a time on the version it runs, with the same gate
    #[command(
        after_help = "Examples:\n  wkctl restart --dry-run\n  wkctl restart --nodes 1002,1003 --yes\n  wkctl restart --resume\n  wkctl plan --restart --out restart.json\n  wkctl restart --plan restart.json --expect-digest sha256:… --yes\n\nExit: 0 done, 1 refused or failed (state saved), 2 bad input, 130 interrupted."
    )]
    Restart(RestartArgs),
    /// Roll back the node an unfinished upgrade failed on (playbook `rollback`, gated)
    #[command(
        after_help = "Examples:\n  wkctl rollback --node 1002\n  wkctl rollback --node 1002 --yes --json\n\nRefused while any other node is down. Exit: 0 rolled back, 1 refused or failed, 2 bad input."
    )]
    Rollback(RollbackArgs),
    /// Ordered cold start of a broken cluster (#310): stop all, start 1001 alone, then one at a time
    ///
    /// The maintainers' procedure for a cluster whose nodes no longer see each other (the
    /// console shows 1 node of 3 after every node was restarted at once, upstream #310, #408):
    /// doctor's report is saved beside the state, every node is stopped in reverse id order,
    /// the lowest id is started alone until its API answers, the next until a controller is
    /// elected and both are Joined and caught up, each other one at a time until it is online, Joined and
    /// caught up (gate signals D and E), and the run ends when the cluster is settled (F)
    /// with every manifest node a member. It is a full outage: it names every node, asks on
    /// a terminal, and needs `--yes-full-outage` otherwise. Refused on a healthy cluster and
    /// while an unfinished upgrade exists; takes the upgrade's locks; `--resume` continues
    /// from the saved step, observing a node before re-running its interrupted step.
    #[command(
        after_help = "Only for a cluster `check` shows broken (membership mismatch, no controller, nodes that do not see each other); a healthy cluster is restarted with `wkctl restart`.\n\nExamples:\n  wkctl recover --dry-run\n  wkctl recover --yes-full-outage\n  wkctl recover --resume --yes-full-outage\n\nExit: 0 recovered, 1 refused or failed (state saved), 2 bad input, 130 interrupted."
    )]
    Recover(RecoverArgs),
    /// The cluster as it really is, held against the manifest
    #[command(
        after_help = "Examples:\n  wkctl status\n  wkctl status --watch\n  wkctl status --json"
    )]
    Status(StatusArgs),
    /// End-to-end smoke test on every node: /route, a probe message, read back elsewhere
    #[command(
        after_help = "Needs `policy.smoke` (the probe channel and uid) in the manifest.\n\nExamples:\n  wkctl smoke\n  wkctl smoke --json\n\nExit: 0 passed on every node, 1 failed somewhere, 2 bad input."
    )]
    Smoke(SmokeArgs),
    /// Logs, network and settings of every node, checked at once
    #[command(after_help = "Examples:\n  wkctl doctor\n  wkctl doctor --output report.md")]
    Doctor(DoctorArgs),
    /// Past runs of this cluster: who, when, from → to, each node's result and time
    #[command(
        after_help = "Examples:\n  wkctl history\n  wkctl history --last 5\n  wkctl history --json | jq '.runs[-1].nodes'"
    )]
    History(HistoryArgs),
    /// The built-in catalog of WuKongIM releases and upgrade notes
    #[command(
        after_help = "Examples:\n  wkctl releases\n  wkctl releases --json | jq '.releases[0]'"
    )]
    Releases(ReleasesArgs),
    /// Write a starter cluster.yaml (or read one from a docker-compose file)
    #[command(
        after_help = "Examples:\n  wkctl init\n  wkctl init --from-compose docker-compose.yaml -o cluster.yaml\n  wkctl init -o - | less\n\nExit: 0 written, 1 the file exists (pass --force), 2 unreadable or invalid compose file."
    )]
    Init(InitArgs),
    /// Upgrade a simulated 3-node cluster end to end
    #[command(after_help = "Examples:\n  wkctl demo\n  wkctl demo --fault crash-loop")]
    Demo(DemoArgs),
    /// Shell completions on stdout
    #[command(
        after_help = "Examples:\n  wkctl completions bash > ~/.local/share/bash-completion/completions/wkctl\n  wkctl completions zsh > \"${fpath[1]}/_wkctl\"\n  wkctl completions fish > ~/.config/fish/completions/wkctl.fish\n  wkctl completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// Man pages (roff): `wkctl`'s on stdout, one subcommand's, or all of them into a directory
    #[command(
        after_help = "Examples:\n  wkctl man | man -l -\n  wkctl man upgrade | man -l -\n  wkctl man --all /usr/local/share/man/man1"
    )]
    Man(ManArgs),
    /// JSON Schema of the manifest, of a playbook or of a plan file
    #[command(
        after_help = "Examples:\n  wkctl schema manifest > cluster.schema.json\n  wkctl schema playbook\n\nEditors: put `# yaml-language-server: $schema=<url or path>` on the first line of cluster.yaml."
    )]
    Schema(SchemaArgs),
}

#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Target version: `v2.1.2` resolves to the full tag `v2.1.2-20250120`
    #[arg(long, value_name = "VERSION", env = "WKCTL_TO")]
    pub to: Option<String>,
    /// Accept a version that is not in the release catalog
    #[arg(long, env = "WKCTL_ALLOW_UNKNOWN_VERSION", value_parser = boolish())]
    pub allow_unknown_version: bool,
    /// Accept a downgrade (maintainers advise forward only)
    #[arg(long, env = "WKCTL_ALLOW_DOWNGRADE", value_parser = boolish())]
    pub allow_downgrade: bool,
    /// Accept a downgrade from v2.1.1+ to v2.1.0 or older (the cluster-layer rewrite): only
    /// after restoring every node's data directory from a backup taken before the upgrade
    #[arg(long, requires = "allow_downgrade")]
    pub allow_downgrade_across_rewrite: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only what needs no network: the manifest and the versions it declares
    #[arg(long)]
    pub offline: bool,
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// `plan`: the check's arguments, plus the plan file and its diff.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// Write the plan file for `upgrade --plan`: the complete plan, the inputs' digests and
    /// the observed cluster; prints the file's `sha256:…` digest to approve
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    pub out: Option<PathBuf>,
    /// What changed between two plan files (no cluster access)
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "against")]
    pub diff: Option<Vec<PathBuf>>,
    /// Plan now, and show what changed since the plan file OLD
    #[arg(long, value_name = "OLD")]
    pub against: Option<PathBuf>,
    /// Plan a rolling restart on the version each node runs (`wkctl restart`'s plan;
    /// with `--out`, the plan file `restart --plan` applies)
    #[arg(
        long,
        conflicts_with_all = ["to", "allow_unknown_version", "allow_downgrade", "offline", "diff"]
    )]
    pub restart: bool,
    /// Only these nodes (comma-separated ids), in the plan's order: the others are skipped
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "IDS",
        conflicts_with = "diff"
    )]
    pub nodes: Vec<u64>,
    /// Output format: `text`, `json` (as `--json`) or `md` (Markdown for a PR comment)
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<PlanFormat>,
}

impl PlanArgs {
    pub fn format(&self) -> PlanFormat {
        if self.check.json {
            PlanFormat::Json
        } else {
            self.format.unwrap_or(PlanFormat::Text)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Md,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long, env = "WKCTL_YES", value_parser = boolish())]
    pub yes: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Continue the unfinished run of this cluster
    #[arg(long)]
    pub resume: bool,
    /// Forget the unfinished run of this cluster (its state is kept as a backup file)
    #[arg(long, conflicts_with = "resume")]
    pub discard: bool,
    /// JSON Lines events on stdout, ending with `summary`
    #[arg(long)]
    pub json: bool,
    /// On failure, run the playbook's `rollback` for the failed node and gate it back
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Take the cluster lock even if another run seems to hold it
    #[arg(long)]
    pub break_lock: bool,
    /// Directory for state and lock [default: .wkctl next to the manifest]
    #[arg(long, env = "WKCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Only these nodes (comma-separated ids), in the plan's order, with the same gates
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub nodes: Vec<u64>,
    /// Run by `wkctl demo`: its state directory is deleted afterwards, so the summary
    /// never points at `--resume`.
    #[arg(skip)]
    pub demo: bool,
    #[command(flatten)]
    pub planned: PlanFileArgs,
}

/// `restart` (issue 19): `upgrade`'s flags that apply to a run with no version change.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long, env = "WKCTL_YES", value_parser = boolish())]
    pub yes: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Continue the unfinished restart of this cluster
    #[arg(long)]
    pub resume: bool,
    /// Forget the unfinished run of this cluster (its state is kept as a backup file)
    #[arg(long, conflicts_with = "resume")]
    pub discard: bool,
    /// JSON Lines events on stdout, ending with `summary` (with `--dry-run`: the plan)
    #[arg(long)]
    pub json: bool,
    /// Take the cluster lock even if another run seems to hold it
    #[arg(long)]
    pub break_lock: bool,
    /// Directory for state and lock [default: .wkctl next to the manifest]
    #[arg(long, env = "WKCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Only these nodes (comma-separated ids), in the plan's order, with the same gates
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub nodes: Vec<u64>,
    #[command(flatten)]
    pub planned: PlanFileArgs,
}

/// `upgrade --plan FILE [--expect-digest D] [--max-age AGE]` (issue 17), and
/// `restart --plan FILE …` for a restart plan (`plan --restart --out`).
#[derive(Debug, Args, Default, Clone)]
pub struct PlanFileArgs {
    /// Run exactly this plan file (`wkctl plan --out`); refused, nothing touched, if the
    /// manifest, the playbook, the nodes or the membership changed since
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "discard", "nodes"])]
    pub plan: Option<PathBuf>,
    /// With `--plan`: refuse unless the plan file's digest is this one (`sha256:…`)
    #[arg(long, value_name = "DIGEST", requires = "plan")]
    pub expect_digest: Option<String>,
    /// With `--plan`: refuse a plan older than this (e.g. `24h`)
    #[arg(long, value_name = "AGE", requires = "plan", value_parser = humantime::parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The node to roll back (the one the run failed on)
    #[arg(long, value_name = "ID")]
    pub node: u64,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short, long, env = "WKCTL_YES", value_parser = boolish())]
    pub yes: bool,
    /// JSON Lines events on stdout
    #[arg(long)]
    pub json: bool,
    /// Take the cluster lock even if another run seems to hold it
    #[arg(long)]
    pub break_lock: bool,
    /// Directory for state and lock [default: .wkctl next to the manifest]
    #[arg(long, env = "WKCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Accept the full outage: every node is stopped (required without a terminal)
    #[arg(long)]
    pub yes_full_outage: bool,
    /// Print the ordered plan and touch nothing
    #[arg(long, conflicts_with_all = ["resume", "discard"])]
    pub dry_run: bool,
    /// Continue the unfinished recover run from its step
    #[arg(long)]
    pub resume: bool,
    /// Forget the unfinished recover run (its state is kept aside)
    #[arg(long, conflicts_with = "resume")]
    pub discard: bool,
    /// JSON Lines events on stdout
    #[arg(long)]
    pub json: bool,
    /// Take the cluster lock even if another run seems to hold it
    #[arg(long)]
    pub break_lock: bool,
    /// Directory for state and lock [default: .wkctl next to the manifest]
    #[arg(long, env = "WKCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Redraw every poll interval until Ctrl-C
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Also write a Markdown report to this file
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Only the last N runs
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
    /// Directory for state and lock [default: .wkctl next to the manifest]
    #[arg(long, env = "WKCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Read nodes from WuKongIM docker-compose files (repeat it: one file per host)
    #[arg(long, value_name = "FILE")]
    pub from_compose: Vec<PathBuf>,
    /// Where to write the manifest
    #[arg(long, short, default_value = "cluster.yaml", value_name = "FILE")]
    pub output: PathBuf,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Inject a simulator fault into one node to watch a failed upgrade stop safely
    #[arg(long, value_enum)]
    pub fault: Option<DemoFault>,
    /// The node that gets the fault
    #[arg(long, default_value_t = 1002)]
    pub fault_node: u64,
    /// Simulator speed (higher is faster)
    #[arg(long, default_value_t = 4.0)]
    pub speed: f64,
    /// Target version
    #[arg(long, default_value = "v2.1.2")]
    pub to: String,
    /// JSON Lines events on stdout
    #[arg(long)]
    pub json: bool,
    /// Run the demo on real containers: a Docker Engine, Compose and the simulator's
    /// images (`tests/docker/build-images.sh`; no registry is needed)
    #[arg(long, conflicts_with = "fault")]
    pub docker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoFault {
    NeverStarts,
    CrashLoop,
    WrongVersion,
    SlowStart,
    NoRejoin,
    Blackhole,
}

impl DemoFault {
    pub fn sim_name(self) -> &'static str {
        match self {
            DemoFault::NeverStarts => "never-starts",
            DemoFault::CrashLoop => "crash-loop",
            DemoFault::WrongVersion => "wrong-version",
            DemoFault::SlowStart => "slow-start",
            DemoFault::NoRejoin => "no-rejoin",
            DemoFault::Blackhole => "blackhole",
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A subcommand's page, e.g. `upgrade` (default: the page of `wkctl`)
    #[arg(value_name = "SUBCOMMAND")]
    pub page: Option<String>,
    /// Write every page (`wkctl.1`, `wkctl-check.1`, …) into DIR and list them
    #[arg(long, value_name = "DIR", conflicts_with = "page")]
    pub all: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// `manifest` (cluster.yaml), `playbook` or `plan` (the plan file)
    #[arg(value_enum)]
    pub which: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Manifest,
    Playbook,
    /// The plan file of `plan --out`
    Plan,
}

impl From<SchemaKind> for crate::schema::Kind {
    fn from(k: SchemaKind) -> Self {
        match k {
            SchemaKind::Manifest => Self::Manifest,
            SchemaKind::Playbook => Self::Playbook,
            SchemaKind::Plan => Self::Plan,
        }
    }
}
