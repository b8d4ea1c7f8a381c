//! One file per command. The inputs they load are in [`crate::inputs`]; the `--to` and
//! rule flags shared by several commands are resolved here.

pub mod apply_plan;
pub mod check;
pub mod completions;
pub mod demo;
pub mod doctor;
pub mod history;
pub mod init;
pub mod man;
pub mod plan;
pub mod recover;
pub mod releases;
pub mod restart;
pub mod rollback;
pub mod smoke;
pub mod status;
pub mod upgrade;

use crate::cli::TargetArgs;
use crate::error::WkError;
use crate::releases::{RuleOptions, Target};

/// Resolves `--to` through the release catalog.
pub fn target(args: &TargetArgs) -> Result<Target, WkError> {
    let to = args.to.as_deref().ok_or_else(|| {
        WkError::input(
            "`--to <VERSION>` is required",
            "e.g. `--to v2.1.2` (see `wkctl releases` for known versions)",
        )
    })?;
    crate::releases::resolve_target(to, args.allow_unknown_version)
        .map_err(|e| WkError::input(format!("--to: {}", e.message), e.hint))
}

pub fn rule_options(args: &TargetArgs) -> RuleOptions {
    RuleOptions {
        allow_downgrade: args.allow_downgrade,
        allow_downgrade_across_rewrite: args.allow_downgrade_across_rewrite,
    }
}
