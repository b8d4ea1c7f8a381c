//! wkctl: safe rolling upgrades of WuKongIM v2 clusters.
//!
//! One node at a time, 1001 first, each gated on real readiness (see `DESIGN.md`).
//! The crate is a library with two binaries: `wkctl` (the tool) and `wksim` (a
//! simulator of a WuKongIM v2 cluster, used by `wkctl demo` and the tests).
//!
//! # Module map
//!
//! The layers, top to bottom; a module names only modules of its own layer or below
//! (`tests/cli/architecture.rs` fails when one below the commands names `commands` or
//! `cli`, or when the commands import each other in a cycle).
//!
//! - **The commands:** `cli` (flags; it converts them to the plain options below) and
//!   `commands` (one module per command: load the inputs, observe, call the deciders and
//!   the executor, print).
//! - **Shared by the commands:** `inputs` (the manifest, playbook and state directory,
//!   loaded once: [`inputs::Context`]), `observe` (probe the cluster once, judge it, plan
//!   with the versions it reports; what the state directory says about runs), `render`
//!   (the human plan and the status table).
//! - **Decide (pure, no I/O):** `version`, `releases` (catalog and upgrade rules),
//!   `manifest` and `playbook` (parsed inputs), `plan` (what will run, and the `--nodes`
//!   selection), `gate` (the readiness signals and the [`gate::Tracker`] that says wait,
//!   go on or stop), `checks` (findings from inputs and observations), `finding`.
//!   `tests/cli/architecture.rs` fails when one of them names `tokio`,
//!   `std::process`, `reqwest` or a module below that acts.
//! - **Change the cluster:** `execute` only: it runs a plan's steps on the nodes' hosts
//!   (through `transport`), saving state after each.
//! - **Other I/O:** `probe` (reads the nodes' HTTP APIs), `transport` (runs commands,
//!   locally or over ssh), `state` (the run state and lock on disk), `doctor` (collects
//!   logs and network checks), `notify` (webhooks and hook commands), `smoke` (a message
//!   round trip), `recover` (the recovery plan and its `recover.json`), `planfile` and
//!   `compose` (files), `sim` (the `wksim` simulator).
//! - **Talk to the operator:** `events` (the JSON event contract), `output` (lines,
//!   colours, questions; [`output::Opts`]; `output::progress` shows a run's events as
//!   progress bars or plain lines), `schema` (JSON Schemas; [`schema::Kind`]), `error`
//!   (exit codes).

pub mod checks;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod doctor;
pub mod error;
pub mod events;
pub mod execute;
pub mod finding;
pub mod gate;
pub mod inputs;
pub mod manifest;
pub mod notify;
pub mod observe;
pub mod output;
pub mod plan;
pub mod planfile;
pub mod playbook;
pub mod probe;
pub mod recover;
pub mod releases;
pub mod render;
pub mod schema;
pub mod scrub;
pub mod sim;
pub mod smoke;
pub mod state;
pub mod transport;
pub mod version;

use cli::{Cli, Command};
use error::Outcome;
use output::Printer;

/// `wkctl --version`: the package version and the git commit it was built from.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WKCTL_GIT_COMMIT"),
    ")"
);

/// The command writes JSON on stdout (`--json`): its errors are JSON objects there too.
pub fn wants_json(command: &Command) -> bool {
    match command {
        Command::Check(a) => a.json,
        Command::Plan(a) => a.format() == cli::PlanFormat::Json,
        Command::Upgrade(a) => a.json,
        Command::Restart(a) => a.json,
        Command::Status(a) => a.json,
        Command::Smoke(a) => a.json,
        Command::Doctor(a) => a.json,
        Command::Releases(a) => a.json,
        Command::History(a) => a.json,
        Command::Demo(a) => a.json,
        Command::Rollback(a) => a.json,
        Command::Recover(a) => a.json,
        _ => false,
    }
}

/// Runs one `wkctl` command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    // `demo --json` builds its own JSON printer for the run it drives.
    let json = wants_json(&cli.command) && !matches!(cli.command, Command::Demo(_));
    let p = Printer::new(&(&cli.global).into(), json);
    match &cli.command {
        Command::Check(a) => commands::check::run(&cli.global, a, &p).await,
        Command::Plan(a) => commands::plan::run(&cli.global, a, &p).await,
        Command::Releases(a) => commands::releases::run(a, &p),
        Command::Upgrade(a) => Box::pin(commands::upgrade::run(&cli.global, a, &p)).await,
        Command::Restart(a) => Box::pin(commands::restart::run(&cli.global, a, &p)).await,
        Command::Rollback(a) => commands::rollback::run(&cli.global, a, &p).await,
        Command::Recover(a) => Box::pin(commands::recover::run(&cli.global, a, &p)).await,
        Command::Status(a) => commands::status::run(&cli.global, a, &p).await,
        Command::Smoke(a) => commands::smoke::run(&cli.global, a, &p).await,
        Command::Demo(a) => Box::pin(commands::demo::run(&cli.global, a, &p)).await,
        Command::Doctor(a) => commands::doctor::run(&cli.global, a, &p).await,
        Command::History(a) => commands::history::run(&cli.global, a, &p),
        Command::Init(a) => commands::init::run(a, &p),
        Command::Completions(a) => commands::completions::completions(a, &p),
        Command::Man(a) => commands::man::run(a, &p),
        Command::Schema(a) => commands::completions::schema(a, &p),
    }
}

/// The log filter for `-q`/`-v`/`-vv`: `RUST_LOG` wins when set. Logs are for wkctl's own
/// modules; `-vvv` also lets the HTTP and runtime crates speak.
pub fn log_filter(quiet: bool, verbose: u8) -> String {
    if let Ok(env) = std::env::var("RUST_LOG")
        && !env.trim().is_empty()
    {
        return env;
    }
    match (quiet, verbose) {
        (true, _) => "off".into(),
        (false, 0) => "wkctl=warn".into(),
        (false, 1) => "wkctl=debug".into(),
        (false, 2) => "wkctl=trace".into(),
        (false, _) => "trace".into(),
    }
}

/// Installs the `tracing` subscriber: plain lines on stderr, filtered by [`log_filter`].
pub fn init_logging(global: &cli::Global) {
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(global.quiet, global.verbose))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("wkctl=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
