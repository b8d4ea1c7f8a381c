//! `wksim`: a simulated `WuKongIM` v2 cluster on 127.0.0.1 (see `wkctl::sim`).

fn main() -> std::process::ExitCode {
    wkctl::sim::main()
}
