//! The `wkctl` binary: parse arguments, build the runtime, run, map to an exit code.
//! Invoked through a link named `wksim`, it is the simulator (used by `wkctl demo`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0)
        .file_stem()
        .is_some_and(|s| s == "wksim")
    {
        return wkctl::sim::main();
    }
    let cli = match wkctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    let json = wkctl::wants_json(&cli.command);
    wkctl::init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            wkctl::output::eprint_error(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(wkctl::run(cli));
    let (code, message) = wkctl::error::exit_code(&result);
    if let Some(m) = message {
        wkctl::output::eprint_error(&m);
    }
    if json && let Some(doc) = wkctl::error::json_error(&result) {
        wkctl::output::print_json_line(&doc);
    }
    code
}

/// A command-line error: clap's message on stderr; with `--json` also a JSON error
/// object on stdout (same exit code).
fn parse_error(e: &clap::Error) -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    if json && e.use_stderr() {
        let rendered = e.to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        wkctl::output::print_json_line(&serde_json::json!({
            "type": "error",
            "data": {
                "kind": "input",
                "message": message,
                "hint": "see `wkctl <command> --help`",
                "exit_code": e.exit_code(),
            }
        }));
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
