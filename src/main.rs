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
    let cli = wkctl::cli::Cli::parse();
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
    code
}
