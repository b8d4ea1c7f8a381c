//! wksim: a simulated WuKongIM v2 cluster (owned by the simulator work).

/// Placeholder until the simulator lands.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(2)
}
