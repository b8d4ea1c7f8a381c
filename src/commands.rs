//! One file per command. Shared loading of the manifest, playbook and target lives here.

pub mod apply_plan;
pub mod check;
pub mod completions;
pub mod demo;
pub mod demo_docker;
pub mod doctor;
pub mod history;
pub mod init;
pub mod live;
pub mod man;
pub mod plan;
pub mod recover;
pub mod releases;
pub mod restart;
pub mod rollback;
pub mod select;
pub mod smoke;
pub mod status;
pub mod upgrade;

use std::path::{Path, PathBuf};

use crate::cli::{Global, TargetArgs};
use crate::error::WkError;
use crate::manifest::{self, Manifest};
use crate::playbook::{self, Playbook};
use crate::releases::{RuleOptions, Target};

/// The manifest and its playbook, loaded and validated.
pub struct Context {
    pub manifest: Manifest,
    pub playbook: Playbook,
}

impl Context {
    pub fn load(global: &Global) -> Result<Context, WkError> {
        let path = manifest::resolve_path(global.manifest.as_deref());
        let manifest = manifest::load(&path)?;
        let dir = manifest_dir(&path);
        let playbook = playbook::load(&manifest.playbook, &dir)?;
        // Registers the manifest's secrets (token, webhook URL) for the scrub of host
        // output ([`crate::scrub::scrub_known`]) in every command, probing or not; a bad
        // token is reported where the client is used.
        let _ = crate::probe::Client::from_manifest(&manifest);
        Ok(Context { manifest, playbook })
    }
}

/// The directory holding the manifest (relative paths in it are resolved against it).
pub fn manifest_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

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

pub use crate::output::confirm;
