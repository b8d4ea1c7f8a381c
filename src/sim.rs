//! wksim: a simulated WuKongIM v2 cluster on 127.0.0.1 (DESIGN §7).
//!
//! N nodes in one process, each with a real API listener and a cluster-port listener, serving
//! the v2 HTTP API with the shapes of facts §3, the restart timeline of facts §4.3/§4.4/§11.5,
//! per-version behaviour (facts §3.11, wksim's own table in `builds`, independent of wkctl's
//! `releases`) and injectable faults.
//! `model/` is pure (the cluster model and its timeline, builds, faults, clients; fake-clock
//! unit tests); `http/` renders and serves it (the node API's `views`, each node's `server`,
//! the `control` server); `shared` and `serve` are the async shell that owns the model and
//! the clock; `agent` is `wksim node` (one container per node); `ctl` is the client of the
//! control server.

// "WuKongIM" is a product name, not code; help texts come from doc comments.
#![allow(clippy::doc_markdown)]

use std::process::ExitCode;

use clap::Parser as _;

pub mod agent;
pub mod cli;
pub mod cluster_file;
pub mod ctl;
pub mod http;
pub mod model;
pub mod serve;
pub mod shared;

/// Entry point of the `wksim` binary (also reached through a `wksim` symlink to `wkctl`).
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match cli.cmd {
        cli::Cmd::Serve(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        cli::Cmd::Ctl(_) | cli::Cmd::Node(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match cli.cmd {
        cli::Cmd::Serve(args) => match runtime.block_on(serve::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{e:#}")),
        },
        cli::Cmd::Node(args) => match runtime.block_on(agent::run_node(args)) {
            Ok(code) => ExitCode::from(code),
            Err(e) => fail(&format!("{e:#}")),
        },
        cli::Cmd::Ctl(args) => match runtime.block_on(ctl::run(args)) {
            Ok(out) => {
                print_out(&out);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e:#}")),
        },
    }
}

#[allow(clippy::print_stdout)]
fn print_out(s: &str) {
    print!("{s}");
}

#[allow(clippy::print_stderr)]
fn fail(msg: &str) -> ExitCode {
    eprintln!("wksim: error: {}", msg.replace('\n', " "));
    ExitCode::FAILURE
}
