//! Command line of `wksim` (DESIGN §7): `serve` runs the simulated cluster, `ctl` drives it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A simulated WuKongIM v2 cluster on 127.0.0.1, for testing `wkctl` (and people) against
/// realistic restart timelines, version quirks and faults.
#[derive(Debug, Parser)]
#[command(name = "wksim", bin_name = "wksim", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run N simulated nodes in this process until SIGTERM/SIGINT
    Serve(ServeArgs),
    /// Control a running simulator (reads the control URL from STATE_DIR/cluster.json)
    Ctl(CtlArgs),
    /// One node's process in its own container: serves the node's API and cluster ports and
    /// asks the brain (`serve --external`) for every answer; exits when the node stops
    Node(NodeArgs),
}

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The brain's control URL
    #[arg(long, env = "WKSIM_BRAIN", default_value = "http://wkbrain:7000")]
    pub brain: String,
    /// This node's id (`WK_CLUSTER_NODEID`, as in upstream's compose files)
    #[arg(long, env = "WK_CLUSTER_NODEID")]
    pub id: u64,
    /// The build this image carries (set in the image with `ENV WKSIM_VERSION=…`)
    #[arg(long, env = "WKSIM_VERSION")]
    pub version: String,
    /// A fault this image carries, applied at every start (e.g. `crash-loop` for an image
    /// whose node crash-loops)
    #[arg(long, env = "WKSIM_FAULT")]
    pub fault: Option<String>,
    /// Data directory (upstream's compose mounts `./wukongimN_data` on `/root/wukongim`)
    #[arg(long, default_value = "/root/wukongim")]
    pub data_dir: PathBuf,
    /// API listen address (upstream `httpAddr`)
    #[arg(long, default_value = "0.0.0.0:5001")]
    pub api_listen: String,
    /// Cluster listen address (upstream `cluster.addr`)
    #[arg(long, default_value = "0.0.0.0:11110")]
    pub cluster_listen: String,
}

/// How a node reports its version (facts §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionStyle {
    /// With a leading `v`, like Docker images (`v2.1.2-20250120`)
    V,
    /// Without it, like GitHub release binaries (`2.1.2-20250120`)
    Release,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Number of nodes
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Id of the first node; the others follow consecutively
    #[arg(long, default_value_t = 1001)]
    pub first_id: u64,
    /// WuKongIM version every node starts with, e.g. `v2.0.10-20241221`
    #[arg(long, default_value = "v2.0.10-20241221")]
    pub version: String,
    /// Directory for `cluster.json` (addresses) and `events.jsonl` (every state change)
    #[arg(long)]
    pub state_dir: PathBuf,
    /// managerToken: every API request then needs header `token: SECRET` (else 401, empty body)
    #[arg(long)]
    pub token: Option<String>,
    /// Number of slots (`WK_CLUSTER_SLOTCOUNT`)
    #[arg(long, default_value_t = 64)]
    pub slot_count: u32,
    /// Replicas per slot (`WK_CLUSTER_SLOTREPLICACOUNT`), chosen round-robin
    #[arg(long, default_value_t = 3)]
    pub replicas: u32,
    /// Time acceleration: every simulated duration is divided by this (e.g. 20 = 20× faster)
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Clients per member node (`/varz.connections`); they reconnect to the other nodes
    /// when theirs stops, and some rebalance back.
    #[arg(long, default_value_t = 14)]
    pub clients: u64,
    /// First port to use (node i gets API BASE+2i and cluster BASE+2i+1, control BASE+2N);
    /// 0 picks free ports
    #[arg(long, default_value_t = 0)]
    pub base_port: u16,
    /// How versions are reported: `v` (Docker) or `release` (binary, no leading `v`)
    #[arg(long, value_enum, default_value_t = VersionStyle::V)]
    pub version_style: VersionStyle,
    /// Only the first N nodes are cluster members and running (default: all); the others can
    /// be started later with `ctl start` and then join
    #[arg(long)]
    pub joined: Option<usize>,
    /// Brain mode: no node runs here; each node's process is a `wksim node` agent (one
    /// container per node) that reports to this control server
    #[arg(long)]
    pub external: bool,
    /// Control server listen address in external mode (agents must reach it)
    #[arg(long, default_value = "0.0.0.0:7000")]
    pub listen: String,
    /// External mode: the host name of node number N (1-based), `{n}` replaced
    #[arg(long, default_value = "wukongim{n}")]
    pub node_host: String,
}

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// State directory given to `wksim serve`
    #[arg(long)]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

#[derive(Debug, Subcommand)]
pub enum CtlCmd {
    /// Graceful stop; returns once the process is down (API port refused)
    Stop { node: u64 },
    /// Start the process (optionally with a new version); returns immediately
    Start {
        node: u64,
        #[arg(long)]
        version: Option<String>,
    },
    /// Stop, then start with VERSION
    Restart {
        node: u64,
        #[arg(long)]
        version: String,
    },
    /// Kill and start again at once (optionally with a new version): back inside the
    /// controller's offline window, so never marked offline, but stale until it rejoins
    Bounce {
        node: u64,
        #[arg(long)]
        version: Option<String>,
    },
    /// Stop every node at once, then start them all together (optionally on VERSION): across
    /// the v2.1.0/v2.1.1 rewrite this leaves each node in a cluster of its own (#310)
    RestartAll {
        #[arg(long)]
        version: Option<String>,
    },
    /// Inject a fault: never-starts | crash-loop | wrong-version | slow-start SECS | no-rejoin |
    /// slow-rejoin SECS | slow-catch-up SECS | slow-migrate SECS | slow-join SECS (these act at
    /// the next start) | stuck-joining | blackhole | http500 | partition | token NEWTOKEN |
    /// log TEXT | config KEY VALUE | netsplit PEER_ID | leader-lost (these act immediately). SECS are
    /// simulated seconds
    Fault {
        node: u64,
        kind: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove every fault of the node
    Clear { node: u64 },
    /// Node table (id, api, state, version, online, controller, uptime, faults)
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Every event as JSON Lines
    Events,
    /// The node's simulated log
    Logs { node: u64 },
    /// The node's effective settings as WK_* KEY=VALUE lines
    Config { node: u64 },
    /// Exit 0 if NODE can reach ADDR (host:port) in the simulated network
    Netcheck { node: u64, addr: String },
}
