//! `wkctl completions SHELL` and `wkctl schema KIND`: text for other tools,
//! generated from the clap types and the manifest/playbook types, printed on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, SchemaArgs, Shell};
use crate::error::Outcome;
use crate::output::Printer;

/// The completion script for a shell.
pub fn completion_script(shell: Shell) -> String {
    use clap_complete::Shell as S;
    let generator = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "wkctl", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The man page (roff) of `wkctl`, listing every subcommand (see `commands::man`).
pub fn man_page() -> anyhow::Result<String> {
    Ok(crate::commands::man::page(None)?)
}

pub fn completions(args: &CompletionsArgs, p: &Printer) -> anyhow::Result<Outcome> {
    let script = completion_script(args.shell);
    p.out(script.trim_end())?;
    Ok(Outcome::Success)
}

pub fn schema(args: &SchemaArgs, p: &Printer) -> anyhow::Result<Outcome> {
    p.out(crate::schema::render(args.which.into()).trim_end())?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBCOMMANDS: &[&str] = &[
        "check",
        "plan",
        "upgrade",
        "restart",
        "status",
        "doctor",
        "releases",
        "init",
        "demo",
        "completions",
        "man",
        "schema",
    ];

    #[test]
    fn every_shell_completes_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            let s = completion_script(shell);
            for sub in SUBCOMMANDS {
                assert!(s.contains(sub), "{shell:?} completion lacks `{sub}`");
            }
        }
    }

    #[test]
    fn the_man_page_lists_every_subcommand() {
        let page = man_page().unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH wkctl"),
            "{page}"
        );
        for sub in SUBCOMMANDS {
            assert!(
                page.contains(&format!("wkctl\\-{sub}")),
                "man page lacks `{sub}`"
            );
        }
    }
}
